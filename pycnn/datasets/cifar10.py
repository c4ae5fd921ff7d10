"""CIFAR-10 (Krizhevsky, Nair, Hinton; cite Krizhevsky 2009, "Learning Multiple Layers of
Features from Tiny Images").

``load_data()`` returns Keras's arrays: ``(x_train, y_train), (x_test, y_test)`` with ``x``
uint8 ``(50000, 32, 32, 3)`` / ``(10000, 32, 32, 3)`` and ``y`` uint8 ``(50000, 1)`` /
``(10000, 1)``.

Sources: the official *binary* archive ``cifar-10-binary.tar.gz`` (never the pickled
"python version"), read member by member in memory and never extracted; a folder with the
already-extracted ``cifar-10-batches-bin/``; or a pair of ``.npz`` files with arrays ``x``
(uint8, (n, 32, 32, 3)) and ``y`` (labels 0..9) named ``cifar10_train*.npz`` and
``cifar10_test*.npz`` (the layout of the shared data folder's ``cifar10/``).
"""
import os
import tarfile
import zlib
from pathlib import Path

import numpy as np

from pycnn.datasets._download import RemoteFile, locate, verify
from pycnn.errors import IntegrityError
from pycnn.datasets._idx import check_subset
from pycnn.datasets._npz import check_images, read_npz

class_names = ["airplane", "automobile", "bird", "cat", "deer",
               "dog", "frog", "horse", "ship", "truck"]

# The Toronto page publishes only the md5 of the binary archive; md5 + exact size pin it.
ARCHIVE = RemoteFile("cifar-10-binary.tar.gz",
                     ("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",),
                     md5="c32a1d4ab5d03f1284b67883e8d87530", size=170052171)

FOLDER = "cifar-10-batches-bin"
TRAIN_MEMBERS = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_MEMBERS = ("test_batch.bin",)
RECORD_BYTES = 1 + 32 * 32 * 3          # label byte, then the red, green and blue planes
MAX_BATCH_BYTES = 10000 * RECORD_BYTES  # 30,730,000: every official batch file has exactly this

# sha256 of the .npz subset files in the shared data folder, verified when the names match.
KNOWN_NPZ = {
    "cifar10_train_first4000.npz": "8a2ef25d618807c80550d625e74298b1cca3de2ed704cb7a12bfc63870971f9e",
    "cifar10_test_first1000.npz": "17c3a200314854ed3bccec9ab20c7eb5c9bada28ed3077ddbf41411b19a79273",
}


def parse_batch(name, data):
    """Decode one binary batch (records of 1 label byte + 3,072 pixel bytes) to (x, y)."""
    if len(data) == 0 or len(data) % RECORD_BYTES or len(data) > MAX_BATCH_BYTES:
        raise IntegrityError(
            f"cifar10: {name} must be a positive multiple of {RECORD_BYTES} bytes and at most "
            f"{MAX_BATCH_BYTES:,}; got {len(data):,} bytes (truncated or not a CIFAR-10 batch)")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    y = records[:, :1].copy()
    if y.max() > 9:
        raise IntegrityError(f"cifar10: labels in {name} must be in 0..9; got {int(y.max())}")
    x = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return x, y


def read_archive(path):
    """Read the batches of a binary-version archive without extracting anything to disk.

    Only the exact expected member names are read; each must be a regular file of a
    bounded size.  Every other member (``..`` paths, links, devices ...) is ignored.
    """
    wanted = {f"{FOLDER}/{m}": m for m in TRAIN_MEMBERS + TEST_MEMBERS}
    batches = {}
    try:
        with tarfile.open(path, "r:gz") as tf:
            for member in tf:
                short = wanted.get(member.name)
                if short is None:
                    continue
                if short in batches:
                    raise IntegrityError(f"cifar10: archive {path} holds {member.name} twice")
                if not member.isfile():
                    raise IntegrityError(
                        f"cifar10: archive member {member.name} must be a regular file; got a "
                        f"{'symlink' if member.issym() else 'hard link' if member.islnk() else 'special file'}"
                        f" (refusing a hostile archive)")
                if member.size > MAX_BATCH_BYTES:
                    raise IntegrityError(
                        f"cifar10: archive member {member.name} must be at most "
                        f"{MAX_BATCH_BYTES:,} bytes; got {member.size:,} (refusing a hostile archive)")
                data = tf.extractfile(member).read(MAX_BATCH_BYTES + 1)
                batches[short] = parse_batch(member.name, data)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise IntegrityError(f"cifar10: {path} is not a readable tar.gz archive ({exc})") from exc
    missing = [f"{FOLDER}/{m}" for m in TRAIN_MEMBERS + TEST_MEMBERS if m not in batches]
    if missing:
        raise IntegrityError(f"cifar10: archive {path} must contain {', '.join(missing)}; they are missing")
    return _join(batches)


def _join(batches):
    x_train = np.concatenate([batches[m][0] for m in TRAIN_MEMBERS])
    y_train = np.concatenate([batches[m][1] for m in TRAIN_MEMBERS])
    return (x_train, y_train), batches[TEST_MEMBERS[0]]


def read_batch_folder(folder):
    """Read an already-extracted ``cifar-10-batches-bin`` folder."""
    batches = {}
    for m in TRAIN_MEMBERS + TEST_MEMBERS:
        p = Path(folder) / m
        if not p.is_file():
            raise FileNotFoundError(f"cifar10: {folder} must contain {m}; got no such file")
        if p.stat().st_size > MAX_BATCH_BYTES:
            raise IntegrityError(f"cifar10: {p} must be at most {MAX_BATCH_BYTES:,} bytes; got {p.stat().st_size:,}")
        batches[m] = parse_batch(str(p), p.read_bytes())
    return _join(batches)


def read_npz_pair(train_path, test_path):
    out = []
    for p in (train_path, test_path):
        p = Path(p)
        if p.name in KNOWN_NPZ:
            verify("cifar10", RemoteFile(p.name, (), sha256=KNOWN_NPZ[p.name]), p)
        arrays = read_npz("cifar10", p, ("x", "y"))
        check_images("cifar10", p.name, arrays["x"], arrays["y"], (32, 32, 3))
        out.append((arrays["x"], arrays["y"].astype(np.uint8).reshape(-1, 1)))
    return out[0], out[1]


def _find_in_folder(folder):
    """The first CIFAR-10 source in ``folder`` (or its ``cifar10/``): archive, batches, .npz pair."""
    for d in (Path(folder) / "cifar10", Path(folder)):
        if (d / ARCHIVE.name).is_file():
            return "archive", d / ARCHIVE.name
        if (d / FOLDER / TEST_MEMBERS[0]).is_file():
            return "batches", d / FOLDER
        trains, tests = sorted(d.glob("cifar10_train*.npz")), sorted(d.glob("cifar10_test*.npz"))
        if trains or tests:
            if len(trains) != 1 or len(tests) != 1:
                raise FileNotFoundError(
                    f"cifar10: {d} must hold exactly one cifar10_train*.npz and one cifar10_test*.npz; "
                    f"got {[p.name for p in trains]} and {[p.name for p in tests]}")
            return "npz", (trains[0], tests[0])
    return None


def _read(kind, where):
    if kind == "archive":
        verify("cifar10", ARCHIVE, where)
        return read_archive(where)
    if kind == "batches":
        return read_batch_folder(where)
    return read_npz_pair(*where)


def load_data(path=None, subset=None):
    """Load CIFAR-10 as ``(x_train, y_train), (x_test, y_test)`` (uint8, Keras shapes).

    Args:
        path: the official ``cifar-10-binary.tar.gz``, or a folder holding it, an extracted
            ``cifar-10-batches-bin/``, or a ``cifar10_train*.npz`` / ``cifar10_test*.npz``
            pair (directly or in ``cifar10/``).  Default: ``$PYCNN_DATA_DIR``, then the
            cache (``$PYCNN_HOME`` or ``~/.cache/pycnn``), then a download of the archive.
        subset: ``None`` for both splits, ``"train"`` or ``"test"`` for that ``(x, y)`` pair.
    """
    check_subset("cifar10", subset, (None, "train", "test"))
    source = None
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            source = ("archive", p)
        elif p.is_dir():
            source = _find_in_folder(p)
        if source is None:
            raise FileNotFoundError(
                f"cifar10: path={str(path)!r} must be {ARCHIVE.name} ({ARCHIVE.digest_text()}) or a "
                f"folder holding it, {FOLDER}/, or a cifar10_train*.npz + cifar10_test*.npz pair; "
                f"got nothing usable there")
    elif os.environ.get("PYCNN_DATA_DIR"):
        source = _find_in_folder(os.environ["PYCNN_DATA_DIR"])
    if source is None:
        archive = locate("cifar10", "cifar10", [ARCHIVE])[ARCHIVE.name]
        source = ("archive", archive)
    train, test = _read(*source)
    if subset is None:
        return train, test
    return train if subset == "train" else test
