"""Parsing of gzip-compressed IDX files (the MNIST / Fashion-MNIST format).

Header: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions,
then each dimension as a 32-bit big-endian integer, then the data, row-major.
Images are 0x00000803 (n, rows, cols), labels 0x00000801 (n,).  The decompressed size
must equal header + product(dims) exactly; anything else is an IntegrityError.
"""
import struct
import zlib

import numpy as np

from pycnn.errors import IntegrityError

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def _gunzip(dataset, name, raw, limit):
    """Decompress ``raw`` without ever holding more than ``limit`` + 1 bytes (gzip bombs)."""
    try:
        d = zlib.decompressobj(wbits=31)
        out = d.decompress(raw, limit + 1)
        if len(out) > limit:
            raise IntegrityError(
                f"{dataset}: {name} must decompress to at most {limit:,} bytes; got more "
                f"(not an IDX file of this dataset)")
        if not d.eof:
            raise IntegrityError(
                f"{dataset}: {name} is truncated: the gzip stream ends early "
                f"(re-download the file)")
        return out
    except zlib.error as exc:
        raise IntegrityError(f"{dataset}: {name} is not a valid gzip file ({exc})") from exc


def parse_idx(dataset, name, raw, magic, item_shape, max_items, compressed=True):
    """Return the uint8 array stored in an IDX file given as bytes.

    ``item_shape`` is the shape of one item after the count ((28, 28) for images, () for
    labels); ``max_items`` bounds the count (and the decompressed size).
    """
    ndim = 1 + len(item_shape)
    header_len = 4 + 4 * ndim
    item_bytes = int(np.prod(item_shape, dtype=np.int64)) if item_shape else 1
    limit = header_len + max_items * item_bytes
    data = _gunzip(dataset, name, raw, limit) if compressed else bytes(raw)
    if len(data) < header_len:
        raise IntegrityError(
            f"{dataset}: {name} must start with a {header_len}-byte IDX header; "
            f"got {len(data)} bytes in total (truncated file)")
    (got_magic,) = struct.unpack(">I", data[:4])
    if got_magic != magic:
        raise IntegrityError(
            f"{dataset}: {name} has bad magic 0x{got_magic:08x} (expected 0x{magic:08x}; "
            f"images and labels swapped, or not an IDX file)")
    dims = struct.unpack(f">{ndim}I", data[4:header_len])
    if tuple(dims[1:]) != tuple(item_shape):
        raise IntegrityError(
            f"{dataset}: {name} must hold items of shape {tuple(item_shape)}; got dims {dims}")
    n = dims[0]
    if n > max_items:
        raise IntegrityError(
            f"{dataset}: {name} must hold at most {max_items:,} items; got a header count of {n:,}")
    expected = header_len + n * item_bytes
    if len(data) != expected:
        raise IntegrityError(
            f"{dataset}: {name} must be {expected:,} bytes for {n:,} items; got {len(data):,} "
            f"(truncated or padded file)")
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape((n,) + tuple(item_shape)).copy()


def read_idx_file(dataset, path, magic, item_shape, max_items):
    """Read and parse one ``.gz`` IDX file from disk (plain, uncompressed IDX also accepted)."""
    with open(path, "rb") as f:
        raw = f.read()
    compressed = str(path).endswith(".gz")
    return parse_idx(dataset, getattr(path, "name", str(path)), raw, magic, item_shape,
                     max_items, compressed=compressed)


_TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
_TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
_SUBSETS = (None, "train", "test")


def check_subset(dataset, subset, allowed):
    if subset not in allowed:
        shown = ", ".join(repr(s) for s in allowed)
        raise ValueError(f"{dataset}.load_data: subset must be one of {shown}; got {subset!r}")


def load_idx_dataset(dataset, subdir, specs, path, subset, progress=True):
    """Load an MNIST-style dataset (four IDX files) from the first source that has it.

    ``subset=None`` returns ``(x_train, y_train), (x_test, y_test)`` as Keras does;
    ``"train"`` or ``"test"`` returns only that ``(x, y)`` pair and needs only its two files.
    """
    from pycnn.datasets._download import locate

    check_subset(f"{dataset}", subset, _SUBSETS)
    splits = {"train": _TRAIN_FILES, "test": _TEST_FILES}
    wanted = ["train", "test"] if subset is None else [subset]
    names = [name for split in wanted for name in splits[split]]
    files = locate(dataset, subdir, [specs[name] for name in names], path=path, progress=progress)
    out = {}
    for split in wanted:
        image_name, label_name = splits[split]
        max_items = 60000 if split == "train" else 10000
        x = read_idx_file(dataset, files[image_name], IMAGES_MAGIC, (28, 28), max_items)
        y = read_idx_file(dataset, files[label_name], LABELS_MAGIC, (), max_items)
        if len(x) != len(y):
            raise IntegrityError(
                f"{dataset}: {image_name} and {label_name} must hold the same number of items; "
                f"got {len(x):,} images and {len(y):,} labels")
        if y.size and y.max() > 9:
            raise IntegrityError(
                f"{dataset}: labels in {label_name} must be in 0..9; got {int(y.max())}")
        out[split] = (x, y)
    if subset is None:
        return out["train"], out["test"]
    return out[subset]
