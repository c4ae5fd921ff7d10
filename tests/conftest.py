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


@pytest.fixture(params=[1, 2], ids=["1T", "2T"])
def threads(request):
    """Runs the test at 1, then at 2 worker threads (restoring the count after)."""
    import pycnn
    before = pycnn.get_num_threads()
    pycnn.set_num_threads(request.param)
    yield request.param
    pycnn.set_num_threads(before)
