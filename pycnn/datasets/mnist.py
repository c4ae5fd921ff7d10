"""MNIST handwritten digits (LeCun, Cortes, Burges; CC BY-SA 3.0).

``load_data()`` returns Keras's arrays: ``(x_train, y_train), (x_test, y_test)`` with
``x`` uint8 ``(60000, 28, 28)`` / ``(10000, 28, 28)`` and ``y`` uint8 ``(60000,)`` /
``(10000,)``, read from the four original IDX ``.gz`` files (sha256-verified).
"""
from pathlib import Path

import numpy as np

from pycnn.datasets._download import RemoteFile
from pycnn.datasets._idx import check_subset, load_idx_dataset
from pycnn.datasets._npz import check_images, read_npz

class_names = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]

_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def _spec(name, sha256, size):
    return RemoteFile(name, tuple(m + name for m in _MIRRORS), sha256=sha256, size=size)


FILES = {s.name: s for s in (
    _spec("train-images-idx3-ubyte.gz",
          "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    _spec("train-labels-idx1-ubyte.gz",
          "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    _spec("t10k-images-idx3-ubyte.gz",
          "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    _spec("t10k-labels-idx1-ubyte.gz",
          "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
)}

# Keras's own mnist.npz (x_train, y_train, x_test, y_test), accepted as path=.../mnist.npz.
KERAS_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

# The sample shipped in the package (first 4,000 train and 1,000 test digits, built by
# tools/make_mnist_sample.py); pinned so a damaged install is caught.
SAMPLE_PATH = Path(__file__).resolve().parent.parent / "data" / "mnist_sample.npz"
SAMPLE_SHA256 = "55a874a23afbebfbe04976c9b01e119d68d10894e888e6f48bd9dd592cdfe4b8"


def _load_npz(path, expected_sha256):
    from pycnn.datasets._download import verify
    name = Path(path).name
    if expected_sha256:
        verify("mnist", RemoteFile(name, (), sha256=expected_sha256), path)
    arrays = read_npz("mnist", path, ("x_train", "y_train", "x_test", "y_test"))
    check_images("mnist", name, arrays["x_train"], arrays["y_train"], (28, 28))
    check_images("mnist", name, arrays["x_test"], arrays["y_test"], (28, 28))
    return ((arrays["x_train"], arrays["y_train"].astype(np.uint8).reshape(-1)),
            (arrays["x_test"], arrays["y_test"].astype(np.uint8).reshape(-1)))


def load_data(path=None, subset=None):
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)`` (uint8, Keras shapes).

    Args:
        path: a folder holding the four IDX ``.gz`` files (directly or in ``mnist/``), or
            Keras's ``mnist.npz`` file.  Default: ``$PYCNN_DATA_DIR``, then the cache
            (``$PYCNN_HOME`` or ``~/.cache/pycnn``), then a download.
        subset: ``None`` for both splits; ``"train"`` or ``"test"`` for one ``(x, y)`` pair
            (only its two files are needed); ``"sample"`` for the small genuine sample
            shipped with pycnn (4,000 train + 1,000 test digits, no network or files
            needed), returned as ``(x_train, y_train), (x_test, y_test)``.
    """
    check_subset("mnist", subset, (None, "train", "test", "sample"))
    if subset == "sample":
        return _load_npz(SAMPLE_PATH, SAMPLE_SHA256)
    if path is not None and str(path).endswith(".npz"):
        if not Path(path).is_file():
            raise FileNotFoundError(f"mnist: path={str(path)!r} must be an existing .npz file; got no such file")
        pinned = KERAS_NPZ_SHA256 if Path(path).name == "mnist.npz" else None
        (train, test) = _load_npz(path, pinned)
        return (train, test) if subset is None else {"train": train, "test": test}[subset]
    return load_idx_dataset("mnist", "mnist", FILES, path, subset)
