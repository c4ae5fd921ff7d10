"""Dataset loaders on real local files, the bundled sample, parsers and splitting helpers."""
import gzip
import io
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pycnn.datasets import (IntegrityError, cifar10, class_counts, fashion_mnist, mnist,
                            plot_class_distribution, train_test_split)
from pycnn.datasets._idx import IMAGES_MAGIC, LABELS_MAGIC, parse_idx

# The shared data folder sits next to the repository (../shared/data); PYCNN_SHARED_DATA overrides.
SHARED = Path(os.environ.get("PYCNN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
needs_shared = pytest.mark.skipif(not (SHARED / "mnist").is_dir(),
                                  reason=f"shared data folder {SHARED} is absent")

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def offline_env(tmp_path, monkeypatch):
    """An empty cache, no data dir, and every download URL pointing at a closed port."""
    monkeypatch.setenv("PYCNN_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PYCNN_DATA_DIR", raising=False)
    return tmp_path


@needs_shared
def test_mnist_from_data_dir_matches_keras_shapes_and_official_counts(monkeypatch, tmp_path):
    monkeypatch.setenv("PYCNN_DATA_DIR", str(SHARED))
    monkeypatch.setenv("PYCNN_HOME", str(tmp_path / "cache"))
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert x_train.max() == 255 and x_train.min() == 0
    assert not (tmp_path / "cache").exists()   # nothing downloaded or cached


@needs_shared
def test_fashion_mnist_test_subset_loads_and_full_load_names_missing_train_files(offline_env, monkeypatch):
    monkeypatch.setenv("PYCNN_DATA_DIR", str(SHARED))
    x, y = fashion_mnist.load_data(subset="test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.shape == (10000,)
    assert np.bincount(y).tolist() == [1000] * 10
    monkeypatch.setattr(fashion_mnist, "FILES", {
        name: type(spec)(spec.name, ("http://127.0.0.1:9/" + spec.name,), spec.sha256, spec.md5, spec.size)
        for name, spec in fashion_mnist.FILES.items()})
    with pytest.raises(ConnectionError) as info:
        fashion_mnist.load_data()
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert "8d4fb7e6c68d591d4c3dfef9ec88bf0d" in msg            # its checksum
    assert str(offline_env / "cache" / "fashion-mnist") in msg  # where to put it
    assert "t10k" not in msg                                     # the test files were found


@needs_shared
def test_cifar10_npz_subset_from_data_dir(offline_env, monkeypatch):
    monkeypatch.setenv("PYCNN_DATA_DIR", str(SHARED))
    (x_train, y_train), (x_test, y_test) = cifar10.load_data()
    assert x_train.shape == (4000, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (4000, 1) and y_train.dtype == np.uint8
    assert x_test.shape == (1000, 32, 32, 3) and y_test.shape == (1000, 1)
    assert np.bincount(y_train[:, 0]).tolist() == [396, 366, 420, 384, 422, 393, 414, 385, 407, 413]
    assert y_test[:10, 0].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert cifar10.class_names[y_test[0, 0]] == "cat"


@needs_shared
def test_explicit_path_wins_and_corrupt_local_file_is_rejected(offline_env, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).write_bytes((SHARED / "mnist" / name).read_bytes())
    x, y = mnist.load_data(path=folder, subset="test")
    assert x.shape == (10000, 28, 28)
    data = bytearray((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())
    data[100] ^= 0xFF
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"t10k-labels-idx1-ubyte.gz .*sha256 f7ae60f9"):
        mnist.load_data(path=folder, subset="test")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz.*t10k-labels"):
        mnist.load_data(path=folder)


def test_bundled_sample_works_offline(offline_env):
    (x_train, y_train), (x_test, y_test) = mnist.load_data(subset="sample")
    assert x_train.shape == (4000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (4000,) and y_test.shape == (1000,) and x_test.shape == (1000, 28, 28)
    assert set(np.unique(y_train)) == set(range(10))
    assert mnist.SAMPLE_PATH.stat().st_size < 2_000_000
    assert not (offline_env / "cache").exists()


@needs_shared
def test_bundled_sample_is_the_start_of_real_mnist(monkeypatch):
    (xs, ys), (xt, yt) = mnist.load_data(subset="sample")
    (x_train, y_train) = mnist.load_data(path=SHARED, subset="train")
    (x_test, y_test) = mnist.load_data(path=SHARED, subset="test")
    np.testing.assert_array_equal(xs, x_train[:4000])
    np.testing.assert_array_equal(ys, y_train[:4000])
    np.testing.assert_array_equal(xt, x_test[:1000])
    np.testing.assert_array_equal(yt, y_test[:1000])


def test_bad_subset_names_the_choices():
    with pytest.raises(ValueError, match=r"subset must be one of .*'sample'.*got 'validation'"):
        mnist.load_data(subset="validation")
    with pytest.raises(ValueError, match="subset must be one of"):
        cifar10.load_data(subset="sample")


# ----------------------------------------------------------------- IDX parser
def _idx(magic, dims, payload):
    return gzip.compress(struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload)


def test_idx_parser_reads_a_small_valid_file():
    pixels = np.arange(2 * 28 * 28, dtype=np.uint32).astype(np.uint8)
    out = parse_idx("t", "img.gz", _idx(IMAGES_MAGIC, (2, 28, 28), pixels.tobytes()), IMAGES_MAGIC, (28, 28), 10)
    np.testing.assert_array_equal(out, pixels.reshape(2, 28, 28))
    labels = parse_idx("t", "lab.gz", _idx(LABELS_MAGIC, (3,), bytes([1, 2, 3])), LABELS_MAGIC, (), 10)
    assert labels.tolist() == [1, 2, 3]


@pytest.mark.parametrize("raw, pattern", [
    (_idx(LABELS_MAGIC, (2, 28, 28), bytes(2 * 784)), r"bad magic 0x00000801 \(expected 0x00000803"),
    (_idx(IMAGES_MAGIC, (2, 28, 27), bytes(2 * 28 * 27)), r"items of shape \(28, 28\)"),
    (_idx(IMAGES_MAGIC, (3, 28, 28), bytes(2 * 784)), r"must be 2,368 bytes for 3 items; got 1,584"),
    (_idx(IMAGES_MAGIC, (2, 28, 28), bytes(2 * 784 + 5)), r"truncated or padded"),
    (_idx(IMAGES_MAGIC, (2, 28, 28), bytes(2 * 784))[:-30], r"truncated|not a valid gzip"),
    (b"this is not gzip at all", r"not a valid gzip file"),
    (gzip.compress(b"\x00\x00"), r"16-byte IDX header"),
    (_idx(IMAGES_MAGIC, (50, 28, 28), bytes(50 * 784)), r"at most"),
])
def test_idx_parser_rejects_malformed_files(raw, pattern):
    with pytest.raises(IntegrityError, match=pattern):
        parse_idx("mnist", "x.gz", raw, IMAGES_MAGIC, (28, 28), 10)


def test_cifar_npz_validation(tmp_path):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    good_x = np.zeros((4, 32, 32, 3), np.uint8)
    np.savez(folder / "cifar10_train_small.npz", x=good_x, y=np.array([0, 1, 2, 3], np.uint8))
    np.savez(folder / "cifar10_test_small.npz", x=good_x[:2], y=np.array([9, 12], np.uint8))
    with pytest.raises(IntegrityError, match=r"labels in cifar10_test_small.npz must be in 0..9; got range 9..12"):
        cifar10.load_data(path=tmp_path)
    np.savez(folder / "cifar10_test_small.npz", x=good_x[:2].astype(np.float32), y=np.array([1, 2]))
    with pytest.raises(IntegrityError, match=r"must be uint8 of shape \(n, 32, 32, 3\); got float32"):
        cifar10.load_data(path=tmp_path)
    np.savez(folder / "cifar10_test_small.npz", x=good_x[:2], y=np.array([1, 2, 3]))
    with pytest.raises(IntegrityError, match=r"must have shape \(2,\) or \(2, 1\)"):
        cifar10.load_data(path=tmp_path)
    np.savez(folder / "cifar10_test_small.npz", x=good_x[:2], z=np.array([1, 2]))
    with pytest.raises(IntegrityError, match=r"array named 'y'"):
        cifar10.load_data(path=tmp_path)
    np.savez(folder / "cifar10_test_small.npz", x=good_x[:2], y=np.array([5, 6], np.uint8))
    (x, y), (xt, yt) = cifar10.load_data(path=tmp_path)
    assert y.shape == (4, 1) and yt[:, 0].tolist() == [5, 6] and yt.dtype == np.uint8


def test_npz_with_a_lying_header_is_rejected_before_allocating(tmp_path):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    good = np.zeros((2, 32, 32, 3), np.uint8)
    np.savez(folder / "cifar10_train_a.npz", x=good, y=np.array([0, 1], np.uint8))
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 32, 32, 3), np.uint8))
    # Rewrite the shape in the header to a huge one (the header is padded, so it stays valid).
    lying = buf.getvalue().replace(b"'shape': (2, 32, 32, 3)", b"'shape': (99999, 32, 32, 3)")
    with zipfile.ZipFile(folder / "cifar10_test_a.npz", "w") as zf:
        zf.writestr("x.npy", lying)
        labels = io.BytesIO()
        np.save(labels, np.array([0, 1], np.uint8))
        zf.writestr("y.npy", labels.getvalue())
    with pytest.raises(IntegrityError, match=r"declares shape \(99999, 32, 32, 3\)"):
        cifar10.load_data(path=tmp_path)
    huge = buf.getvalue().replace(b"'shape': (2, 32, 32, 3)", b"'shape': (9999999999999, 32, 3)")
    with zipfile.ZipFile(folder / "cifar10_test_a.npz", "w") as zf:
        zf.writestr("x.npy", huge)
    with pytest.raises(IntegrityError, match=r"must hold at most 1,073,741,824 bytes"):
        cifar10.load_data(path=tmp_path)


# ----------------------------------------------------------- splitting helpers
def test_train_test_split_sizes_disjoint_and_reproducible():
    x = np.arange(100).reshape(100, 1)
    y = np.arange(100) % 3
    xa, xb, ya, yb = train_test_split(x, y, test_size=0.2, seed=1)
    assert len(xa) == 80 and len(xb) == 20
    assert sorted(np.concatenate([xa, xb])[:, 0].tolist()) == list(range(100))
    np.testing.assert_array_equal(ya, xa[:, 0] % 3)
    again = train_test_split(x, y, test_size=0.2, seed=1)
    np.testing.assert_array_equal(again[0], xa)
    xa, xb, _, _ = train_test_split(x, y, test_size=10, train_size=30, shuffle=False)
    assert xa[:, 0].tolist() == list(range(30)) and xb[:, 0].tolist() == list(range(90, 100))
    xa, xb, _, _ = train_test_split(x, y, test_size=0.333)   # test rounds up, as scikit-learn
    assert len(xb) == 34 and len(xa) == 66


def test_train_test_split_stratified_keeps_class_proportions():
    y = np.repeat([0, 1, 2], [50, 30, 20])
    x = np.arange(100)
    xa, xb, ya, yb = train_test_split(x, y, test_size=0.3, stratify=y, seed=0)
    assert np.bincount(yb).tolist() == [15, 9, 6]
    assert np.bincount(ya).tolist() == [35, 21, 14]
    np.testing.assert_array_equal(y[xa], ya)
    one_hot = np.eye(3)[y]
    _, _, _, yb2 = train_test_split(x, one_hot, test_size=0.3, stratify=one_hot, seed=0)
    assert yb2.sum(axis=0).tolist() == [15, 9, 6]


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(test_size=1.5), ValueError, r"test_size as a fraction must be in \(0, 1\); got 1.5"),
    (dict(test_size=0), ValueError, r"test_size as a count must be in 1..9"),
    (dict(test_size=0.5, train_size=0.7), ValueError, r"at most the 10 samples"),
    (dict(test_size="a"), TypeError, r"test_size must be a float"),
    (dict(stratify=np.arange(10)), ValueError, r"at least 2 samples"),
    (dict(stratify=np.zeros(10), shuffle=False), ValueError, r"stratify requires shuffle=True"),
])
def test_train_test_split_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        train_test_split(np.zeros((10, 2)), np.zeros(10), **kwargs)


def test_train_test_split_length_mismatch():
    with pytest.raises(ValueError, match=r"same number of samples; got x.shape=\(10, 2\), y.shape=\(9,\)"):
        train_test_split(np.zeros((10, 2)), np.zeros(9))


def test_class_counts_matches_a_plain_count():
    y = np.array([[3], [1], [3], [0], [3]])
    counts = class_counts(y, class_names=["a", "b", "c", "d"])
    assert counts.classes.tolist() == [0, 1, 3] and counts.counts.tolist() == [1, 1, 3]
    assert counts.names == ["a", "b", "d"]
    assert class_counts(np.eye(4)[[2, 2, 1]]).counts.tolist() == [1, 2]
    with pytest.raises(ValueError, match="class_names must name every class"):
        class_counts(y, class_names=["a"])


def test_plot_class_distribution_draws_one_bar_per_class():
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is an optional dependency")
    matplotlib.use("Agg")
    ax = plot_class_distribution(np.array([0, 1, 1, 2, 2, 2]), class_names=["x", "y", "z"])
    assert [round(p.get_height()) for p in ax.patches] == [1, 2, 3]


def test_keras_layout_mnist_npz_is_accepted_and_validated(tmp_path):
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8), y_train=np.arange(6, dtype=np.uint8),
                  x_test=rng.integers(0, 256, (2, 28, 28), dtype=np.uint8), y_test=np.array([9, 0], np.uint8))
    np.savez(tmp_path / "digits.npz", **arrays)
    (x, y), (xt, yt) = mnist.load_data(path=tmp_path / "digits.npz")
    np.testing.assert_array_equal(x, arrays["x_train"])
    assert yt.tolist() == [9, 0]
    np.savez(tmp_path / "mnist.npz", **arrays)       # Keras's file name: its sha256 is pinned
    with pytest.raises(IntegrityError, match="sha256 731c5ac6"):
        mnist.load_data(path=tmp_path / "mnist.npz")
