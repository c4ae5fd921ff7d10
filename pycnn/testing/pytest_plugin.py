"""pytest plugin: a ``notebook`` fixture holding the variables of an executed notebook.

    pytest --notebook notebooks/Tutorial_1_solution.ipynb tests/grading/

    def test_lenet(notebook):
        assert_param_count(notebook.model, 61_706)

The notebook is executed once per test session (cells that raise do not stop it; their
errors are in ``notebook.errors`` and in the message of any missing variable).  Options:
``--notebook PATH``, ``--notebook-timeout SECONDS`` (per cell, default 600).
"""
import pytest


def pytest_addoption(parser):
    group = parser.getgroup("pycnn", "pycnn notebook grading")
    group.addoption("--notebook", action="store", default=None, metavar="PATH",
                    help="notebook (.ipynb) to execute for the 'notebook' fixture")
    group.addoption("--notebook-timeout", action="store", type=float, default=600.0, metavar="SECONDS",
                    help="per-cell timeout when executing --notebook (default 600)")


@pytest.fixture(scope="session")
def notebook(request):
    """The executed ``--notebook PATH`` as a ``pycnn.testing.NotebookNamespace``."""
    path = request.config.getoption("--notebook", default=None)
    if not path:
        pytest.skip("no notebook to grade: run pytest with --notebook PATH")
    timeout = request.config.getoption("--notebook-timeout", default=600.0)
    # Imported here: the plugin loads in every pytest run, and pycnn is only needed to grade.
    from pycnn.testing.notebook import run_notebook
    return run_notebook(path, timeout=timeout, allow_errors=True)
