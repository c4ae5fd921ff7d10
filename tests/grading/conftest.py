"""Grading suites: run with a notebook to grade, e.g.

    pytest tests/grading/test_tutorial_1.py --notebook notebooks/Tutorial_1_solution.ipynb

The ``notebook`` fixture and the ``--notebook`` option come from pycnn's pytest plugin
(``pycnn.testing.pytest_plugin``, registered by the package's pytest11 entry point; without
an installed package, add ``-p pycnn.testing.pytest_plugin``).  Without ``--notebook`` the
grading tests are skipped.
"""
from pathlib import Path

from pycnn.testing.pytest_plugin import notebook  # noqa: F401  (the fixture, also without the entry point)


def pytest_ignore_collect(collection_path, config):
    """Without --notebook, grading files are collected only when they or this folder are named on
    the command line (then they skip, saying what is missing); ``pytest tests`` leaves them out."""
    if config.getoption("--notebook", default=None) or not collection_path.name.startswith("test_"):
        return None
    named = {Path(arg.split("::")[0]).resolve() for arg in config.args}
    here = collection_path.resolve()
    return None if here in named or here.parent in named else True
