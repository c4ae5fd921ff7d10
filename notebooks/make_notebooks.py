"""Write the course notebooks (exercise and solution from one source, without outputs).

    python notebooks/make_notebooks.py

In the cell sources below, ``«answer»`` marks a blank: the solution keeps ``answer``, the
exercise shows ``?`` (so the student's cell does not run until it is filled in).
"""
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
BLANK = re.compile(r"«(.*?)»", re.S)

# Makes the notebooks find the data offline: $PYCNN_DATA_DIR if set, else ../shared/data
# next to the repository (the CI layout), else pycnn's own cache / download.
SETUP_DATA = '''import os
from pathlib import Path
for _candidate in (os.environ.get("PYCNN_DATA_DIR"), "../../shared/data", "../shared/data"):
    if _candidate and Path(_candidate).is_dir():
        os.environ["PYCNN_DATA_DIR"] = str(Path(_candidate).resolve())
        break'''


def solution_text(source):
    return BLANK.sub(lambda m: m.group(1), source)


def exercise_text(source):
    return BLANK.sub("?", source)


def build(cells, variant):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source, *only in cells:
        if only and only[0] != variant:
            continue
        text = solution_text(source) if variant in ("solution", "lecture") else exercise_text(source)
        text = text.strip("\n")
        nb.cells.append(nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text))
    return nb


def write(name, nb):
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    nbformat.validate(nb)
    nbformat.write(nb, str(HERE / name))


def main():
    sys.path.insert(0, str(HERE))
    import notebook_sources as src
    for stem, cells in (("Tutorial_1", src.TUTORIAL_1), ("Tutorial_2", src.TUTORIAL_2)):
        if cells:
            write(f"{stem}_ex.ipynb", build(cells, "exercise"))
            write(f"{stem}_solution.ipynb", build(cells, "solution"))
    if src.LECTURE:
        write("Lecture_CNN_basics.ipynb", build(src.LECTURE, "lecture"))


if __name__ == "__main__":
    main()
