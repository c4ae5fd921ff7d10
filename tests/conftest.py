"""Shared fixtures for the engine tests (tests/test_ops_*.py, tests/test_lecture_numbers.py)."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh, seeded generator per test so every test is reproducible on its own."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def ops():
    """The functional API under test (imported lazily so reference self-checks run without it)."""
    import pycnn.ops
    return pycnn.ops
