"""Reading dataset arrays from ``.npz`` files without trusting them.

``numpy.load(allow_pickle=False)`` refuses pickles, but a tiny member can still declare a
huge shape and make NumPy try to allocate it.  Each member's header is therefore read
first and its declared size compared with the member's real size before the array is
loaded; then dtype, shape and label range are checked.
"""
import math
import zipfile

import numpy as np

from pycnn.errors import IntegrityError

# Largest array read from a dataset .npz (all of CIFAR-10's training images are 153.6 MB).
MAX_ARRAY_BYTES = 1 << 30


def _read_member(dataset, name, zf, key):
    try:
        info = zf.getinfo(key + ".npy")
    except KeyError:
        raise IntegrityError(
            f"{dataset}: {name} must contain an array named {key!r}; got "
            f"{sorted(n[:-4] for n in zf.namelist() if n.endswith('.npy'))}") from None
    with zf.open(info) as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except ValueError as exc:
            raise IntegrityError(f"{dataset}: {name}[{key!r}] has a malformed .npy header ({exc})") from exc
        if dtype.hasobject:
            raise IntegrityError(f"{dataset}: {name}[{key!r}] must hold numbers; got dtype {dtype}")
        nbytes = math.prod(shape) * dtype.itemsize   # Python ints: no overflow
        if nbytes > MAX_ARRAY_BYTES or any(d < 0 for d in shape):
            raise IntegrityError(
                f"{dataset}: {name}[{key!r}] must hold at most {MAX_ARRAY_BYTES:,} bytes; got shape {shape} "
                f"of {dtype} ({nbytes:,} bytes)")
        header_end = f.tell()
        if header_end + nbytes != info.file_size:
            raise IntegrityError(
                f"{dataset}: {name}[{key!r}] declares shape {shape} ({nbytes:,} bytes) but the "
                f"member holds {info.file_size - header_end:,} bytes of data (truncated or corrupt)")
        data = f.read(nbytes)
    if len(data) != nbytes:
        raise IntegrityError(f"{dataset}: {name}[{key!r}] is truncated")
    arr = np.frombuffer(data, dtype=dtype)
    arr = arr.reshape(shape, order="F" if fortran else "C")
    return np.ascontiguousarray(arr).astype(dtype.newbyteorder("="), copy=True)


def read_npz(dataset, path, keys):
    """Return ``{key: array}`` for the named arrays of the ``.npz`` file at ``path``."""
    name = getattr(path, "name", str(path))
    try:
        with zipfile.ZipFile(path) as zf:
            return {key: _read_member(dataset, name, zf, key) for key in keys}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise IntegrityError(f"{dataset}: {name} is not a readable .npz file ({exc})") from exc


def check_images(dataset, name, x, y, image_shape, n_classes=10):
    """Validate an (images, labels) pair: uint8 images of ``image_shape``, labels in range."""
    if x.dtype != np.uint8 or x.ndim != 1 + len(image_shape) or x.shape[1:] != tuple(image_shape):
        raise IntegrityError(
            f"{dataset}: images in {name} must be uint8 of shape (n, {', '.join(map(str, image_shape))}); "
            f"got {x.dtype} {x.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise IntegrityError(f"{dataset}: labels in {name} must be integers; got {y.dtype}")
    if y.shape not in ((len(x),), (len(x), 1)):
        raise IntegrityError(
            f"{dataset}: labels in {name} must have shape ({len(x)},) or ({len(x)}, 1) to match "
            f"{len(x)} images; got {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise IntegrityError(
            f"{dataset}: labels in {name} must be in 0..{n_classes - 1}; got range "
            f"{int(y.min())}..{int(y.max())}")
