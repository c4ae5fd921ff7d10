"""python -m pycnn.demo: runs, and prints correct numbers for the photo and for LeNet-5."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from pycnn import demo
from pycnn.imaging import sample_image

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def output():
    import io
    from contextlib import redirect_stdout
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        status = demo.main(["--epochs", "2"])
    assert status == 0
    return buffer.getvalue()


def mean_abs_valid_response(image, kernel):
    """Independent 'valid' cross-correlation by summing shifted slices."""
    kernel = np.asarray(kernel, dtype=np.float64)
    h, w = image.shape
    total = np.zeros((h - 2, w - 2))
    for dy in range(3):
        for dx in range(3):
            total += kernel[dy, dx] * image[dy:dy + h - 2, dx:dx + w - 2]
    return np.abs(total).mean()


def test_image_line(output):
    assert "Sample image: 'cameraman' (CC0, Lav Varshney), shape (128, 128), dtype uint8" in output


def test_lecture_toy_example(output):
    assert len(re.findall(r"^\s+0\s+30\s+30\s+0$", output, flags=re.M)) == 4


def test_filter_responses_match_numpy(output):
    pixels = sample_image().astype(np.float64)
    kernels = {
        "vertical_edge": [[1, 0, -1]] * 3,
        "horizontal_edge": np.array([[1, 0, -1]] * 3).T,
        "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        "sobel_y": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]).T,
        "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    }
    for name, kernel in kernels.items():
        match = re.search(rf"^\s+{name}\s+\(126, 126\)\s+([\d.]+)\s", output, flags=re.M)
        assert match, name
        assert float(match.group(1)) == pytest.approx(mean_abs_valid_response(pixels, kernel), abs=0.006)
    assert re.search(r"^\s+sobel magnitude\s+\(128, 128\)\s+[\d.]+", output, flags=re.M)


def test_ascii_edge_map(output):
    rows = re.findall(r"^   \|(.*)\|$", output, flags=re.M)
    assert len(rows) == 32 and all(len(row) == 64 for row in rows)
    text = "".join(rows)
    assert set(text) <= set(demo.ASCII_RAMP)
    # A photo has both empty sky and strong edges.
    assert text.count(" ") > 200 and text.count("@") > 10


def test_ascii_art_hand_computed():
    image = np.zeros((4, 4))
    image[:2, :2] = 1.0  # only the top-left quarter is "edge"
    assert demo.ascii_art(image, width=2) == ["@ "]  # one row of 4x2 blocks: means 0.5 and 0
    assert demo.ascii_art(np.zeros((4, 4)), width=2) == ["  "]


def test_lenet_walkthrough(output):
    expected = [  # (layer label, output shape, parameters) of Tutorial 1's LeNet-5 (Keras summary)
        ("Conv2D 6, 5x5, same", "(28, 28, 6)", "156"),
        ("AveragePooling2D 2x2", "(14, 14, 6)", "0"),
        ("Conv2D 16, 5x5, valid", "(10, 10, 16)", "2,416"),
        ("AveragePooling2D 2x2", "(5, 5, 16)", "0"),
        ("Flatten", "(400,)", "0"),
        ("Dense 120", "(120,)", "48,120"),
        ("Dense 84", "(84,)", "10,164"),
        ("Dense 10", "(10,)", "850"),
    ]
    table = output[output.index("2. LeNet-5"):].splitlines()[2:2 + len(expected)]
    for line, (label, shape, params) in zip(table, expected):
        assert line.strip().startswith(label), line
        # Shape by formula and shape from the real ops call, then the parameter count.
        assert line.count(shape) == 2, line
        assert line.split()[-1] == params, line
    assert "Total params: 61,706" in output
    assert "Formula and ops agree on every shape." in output
    assert "MISMATCH" not in output


def test_out_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    monkeypatch.setitem(sys.modules, "matplotlib.image", None)
    assert demo.main(["--epochs", "0", "--out", str(tmp_path / "pngs")]) == 0
    assert "Note: matplotlib is not installed, so no PNG files were written" in capsys.readouterr().out
    assert not (tmp_path / "pngs").exists()


def test_out_writes_pngs(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib writes the PNG files")
    assert demo.main(["--epochs", "0", "--out", str(tmp_path)]) == 0
    files = sorted(p.name for p in tmp_path.glob("*.png"))
    assert "sample_image.png" in files and "sobel_magnitude.png" in files and len(files) == 7
    assert (tmp_path / "sobel_magnitude.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Saved 7 PNG files" in capsys.readouterr().out


def test_help(capsys):
    with pytest.raises(SystemExit) as info:
        demo.main(["--help"])
    assert info.value.code == 0
    assert "--out DIR" in capsys.readouterr().out


def test_python_dash_m():
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-m", "pycnn.demo", "--epochs", "1"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Total params: 61,706" in result.stdout


def test_lenet_trains_on_the_bundled_sample(output):
    """Two epochs of Tutorial 1's network on 4,000 real digits clearly beat chance (10%)."""
    line = next(l for l in output.splitlines() if "test accuracy on the 1,000 sample digits" in l)
    accuracy = float(line.split(":")[1].split()[0])
    assert accuracy > 0.7, line
    assert "Epoch 2/2" in output
