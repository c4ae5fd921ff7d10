"""Course notebooks: each tutorial is executed through its grading suite (the pytest plugin's
``--notebook`` option, as an instructor runs it): the solution passes, the exercise fails with
messages that tell the student what to do.  Data come from ../shared/data (offline)."""
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
GRADING = REPO / "tests" / "grading"
DATA_DIR = (REPO.parent / "shared" / "data").resolve()

pytest.importorskip("nbclient", reason="nbclient is needed to execute notebooks (pip install nbclient)")
pytestmark = pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no offline data in {DATA_DIR}")


def _plugin_args():
    """-p for the plugin unless the installed package already registers it (pytest11 entry point)."""
    registered = any(ep.value.startswith("pycnn.testing.pytest_plugin")
                     for ep in metadata.entry_points(group="pytest11"))
    return [] if registered else ["-p", "pycnn.testing.pytest_plugin"]


def grade(suite, notebook):
    env = dict(os.environ, PYCNN_DATA_DIR=str(DATA_DIR),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "pytest", "-q", "--tb=line", "-p", "no:cacheprovider", *_plugin_args(),
           str(GRADING / suite), "--notebook", str(NOTEBOOKS / notebook), "--notebook-timeout", "300"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def test_notebooks_are_committed_without_outputs():
    import nbformat
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        stale = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not stale, f"{path.name}: cells {stale} carry outputs (regenerate with notebooks/make_notebooks.py)"


def test_tutorial_1_solution_passes_grading():
    run = grade("test_tutorial_1.py", "Tutorial_1_solution.ipynb")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "8 passed" in run.stdout


def test_tutorial_1_exercise_fails_grading_with_readable_messages():
    run = grade("test_tutorial_1.py", "Tutorial_1_ex.ipynb")
    assert run.returncode == 1, run.stdout[-4000:] + run.stderr[-2000:]
    assert "8 failed" in run.stdout
    # Each failure names the missing variable, the cell to fix and what to do.
    assert "defines no variable 'model'" in run.stdout
    assert "replace every ? by your answer" in run.stdout
    assert "see cell" in run.stdout


def test_tutorial_2_solution_passes_grading():
    run = grade("test_tutorial_2.py", "Tutorial_2_solution.ipynb")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "7 passed" in run.stdout


def test_tutorial_2_exercise_fails_grading_with_readable_messages():
    run = grade("test_tutorial_2.py", "Tutorial_2_ex.ipynb")
    assert run.returncode == 1, run.stdout[-4000:] + run.stderr[-2000:]
    assert "7 failed" in run.stdout
    assert "defines no variable 'counts'" in run.stdout
    assert "replace every ? by your answer" in run.stdout


def test_lecture_notebook_runs_and_its_numbers_match_the_slides():
    from pycnn.testing import run_notebook
    env = {"PYCNN_DATA_DIR": str(DATA_DIR),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    ns = run_notebook(NOTEBOOKS / "Lecture_CNN_basics.ipynb", timeout=300, env=env)
    assert ns.errors == []
    # hand-worked values: step image through [[1, 0, -1]] * 3 gives 0, 30, 30, 0 on every row
    assert ns.by_hand.tolist() == [[0, 30, 30, 0]] * 4
    assert ns.dense_weights == 3072 * 4704 == 14_450_688
    assert ns.conv.count_params() == (5 * 5 * 3 + 1) * 6 == 456
    assert ns.inception.output_shape == (None, 28, 28, 64 + 128 + 32 + 32)
    assert ns.unet.output_shape == (None, 388, 388, 2)          # the U-Net paper's 572 -> 388
    assert ns.wave_accuracy > 0.8, f"the 1-D CNN must detect the synthetic events; got {ns.wave_accuracy}"
