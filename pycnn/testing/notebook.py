"""Execute a Jupyter notebook and hand its variables back to the caller (for grading).

The notebook runs in its own kernel (nbclient); at the end one extra cell pickles every
global variable that pickles (arrays, models, histories, numbers...) to a temporary file,
which is read back here.  Modules, and objects that do not pickle, are left out and listed
in ``skipped``.
"""
import os
import pickle
import re
import tempfile
import types
from pathlib import Path

__all__ = ["run_notebook", "NotebookNamespace"]

_DUMP_CELL = r'''
import builtins as _pycnn_builtins, pickle as _pycnn_pickle, types as _pycnn_types
_pycnn_saved, _pycnn_skipped = {}, {}
for _pycnn_name, _pycnn_value in list(globals().items()):
    if _pycnn_name.startswith("_") or _pycnn_name in ("In", "Out", "exit", "quit", "get_ipython"):
        continue
    if isinstance(_pycnn_value, _pycnn_types.ModuleType) or getattr(_pycnn_builtins, _pycnn_name, None) is not None:
        continue
    try:
        _pycnn_saved[_pycnn_name] = _pycnn_pickle.dumps(_pycnn_value)
    except Exception as _pycnn_error:
        _pycnn_skipped[_pycnn_name] = f"{type(_pycnn_error).__name__}: {_pycnn_error}"
with open(_pycnn_dump_path, "wb") as _pycnn_file:
    _pycnn_pickle.dump({"saved": _pycnn_saved, "skipped": _pycnn_skipped}, _pycnn_file)
'''


class NotebookNamespace(types.SimpleNamespace):
    """The executed notebook's variables as attributes.

    ``errors`` lists ``(cell index, error name, message)`` for cells that raised (when the
    notebook ran with ``allow_errors=True``); a missing variable raises ``AttributeError``
    that names those errors so a student sees why the variable was never defined.
    """

    def __init__(self, values, path, errors, skipped, notebook):
        super().__init__(**values)
        object.__setattr__(self, "_meta", {"path": str(path), "errors": errors, "skipped": skipped,
                                           "notebook": notebook})

    @property
    def path(self):
        return self._meta["path"]

    @property
    def errors(self):
        return self._meta["errors"]

    @property
    def skipped(self):
        return self._meta["skipped"]

    @property
    def executed_notebook(self):
        return self._meta["notebook"]

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        meta = object.__getattribute__(self, "_meta")
        if name in meta["skipped"]:
            raise AttributeError(f"notebook {meta['path']}: variable {name!r} exists but could not be sent back "
                                 f"to the grader ({meta['skipped'][name]})")
        message = f"notebook {meta['path']} defines no variable {name!r}"
        if meta["errors"]:
            cells = meta["notebook"].cells
            # The failing cell that mentions the variable is the one to fix; else the first failure.
            first = next((e for e in meta["errors"] if re.search(rf"\b{re.escape(name)}\b", cells[e[0]].source)),
                         meta["errors"][0])
            hint = "replace every ? by your answer; " if first[1] == "SyntaxError" else ""
            message += (f"; {len(meta['errors'])} cell(s) raised errors, see cell {first[0]}: "
                        f"{first[1]}: {first[2]} ({hint}fix that cell and run the notebook top to bottom)")
        else:
            message += " (define it in the notebook with exactly this name)"
        raise AttributeError(message)

    def __contains__(self, name):
        return name in self.__dict__ and name != "_meta"


def _cell_errors(nb):
    errors = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append((index, output.get("ename", "Error"), output.get("evalue", "")))
    return errors


def run_notebook(path, timeout=600, allow_errors=False, cwd=None, env=None, kernel_name="python3"):
    """Execute the notebook at ``path`` top to bottom and return its variables.

    Args:
        path: the ``.ipynb`` file.
        timeout: seconds allowed for each cell (nbclient's per-cell timeout).
        allow_errors: if False, the first failing cell raises ``nbclient``'s
            ``CellExecutionError``; if True, execution continues and the failures are in
            ``namespace.errors``.
        cwd: working directory of the kernel (default: the notebook's folder).
        env: extra environment variables for the kernel (e.g. ``{"PYCNN_DATA_DIR": ...}``).

    Returns:
        ``NotebookNamespace``: ``ns.model``, ``ns.history`` ... for every global variable that
        pickles; ``ns.errors`` and ``ns.executed_notebook`` (the notebook with outputs).
    """
    try:
        import nbformat
        from nbclient import NotebookClient
    except ImportError as exc:
        raise ImportError(f"run_notebook: nbclient and nbformat must be installed; got {exc} "
                          f"(pip install nbclient nbformat ipykernel)") from None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run_notebook: path must be an existing .ipynb file; got {str(path)!r}")
    nb = nbformat.read(str(path), as_version=4)
    fd, dump_path = tempfile.mkstemp(suffix=".pkl", prefix="pycnn_nb_")
    os.close(fd)
    nb.cells.append(nbformat.v4.new_code_cell(f"_pycnn_dump_path = {dump_path!r}\n" + _DUMP_CELL))
    saved_env = {}
    if env:
        for key, value in env.items():
            saved_env[key] = os.environ.get(key)
            os.environ[key] = str(value)
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=allow_errors,
                                resources={"metadata": {"path": str(cwd or path.parent.resolve())}})
        client.execute()
        with open(dump_path, "rb") as f:
            dump = pickle.load(f)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        Path(dump_path).unlink(missing_ok=True)
    values, skipped = {}, dict(dump["skipped"])
    for name, blob in dump["saved"].items():
        try:
            values[name] = pickle.loads(blob)
        except Exception as exc:  # e.g. a class defined inside the notebook
            skipped[name] = f"{type(exc).__name__}: {exc}"
    nb.cells.pop()  # the dump cell is ours, not the student's
    return NotebookNamespace(values, path, _cell_errors(nb), skipped, nb)
