"""pycnn's model/weights file format (version 1) and model save/load.

File layout (all integers little-endian; no pickle anywhere)::

    offset  size  field
    0       8     magic  b"PYCNNMF\\x00"
    8       4     u32 format version (1)
    12      4     u32 flags (0)
    16      8     u64 H: header length in bytes (1 <= H <= 1 MiB)
    24      8     u64 D: tensor data length in bytes
    32      H     header: UTF-8 JSON object (below)
    32+H    P     zero padding so the data starts at a multiple of 8
    ...     D     tensor data: each tensor's raw little-endian bytes, C order, contiguous, in header order
    ...     32    SHA-256 of every preceding byte

The JSON header::

    {"format": "pycnn", "kind": "model" | "weights", "pycnn_format_version": 1,
     "model_config": {"class_name": ..., "config": ...} | null,   # kind "model" only
     "compile_config": {...} | null,                             # optimizer/loss/metrics
     "tensors": [{"name": "conv2d/kernel", "dtype": "float32", "shape": [5, 5, 1, 6],
                  "offsets": [0, 600], "group": "weights" | "optimizer"}, ...]}

dtypes are "float32", "float64" or "int64". Loading checks, before reading any tensor: the magic, the
version, the header length cap, that the file size equals exactly what the prefix declares (else
"truncated"), the SHA-256, the JSON, every tensor entry (dtype, shape, byte span = prod(shape) *
itemsize, offsets contiguous from 0 to D) and then every tensor against the model (count, shape,
dtype). Any failure raises ``pycnn.ModelFileError`` naming the first problem.

Writes are atomic: a temporary file in the destination directory is written, flushed and fsynced,
then ``os.replace``-d over the destination and the directory is fsynced, so an interrupted save
leaves the previous file intact.
"""
import math
import os
import struct
import warnings

import numpy as np

from pycnn.errors import ModelFileError

MAGIC = b"PYCNNMF\x00"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 1 << 20
MAX_NDIM = 8
_PREFIX = struct.Struct("<8sIIQQ")   # magic, version, flags, header length, data length
_DIGEST_BYTES = 32
_DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8"), "int64": np.dtype("<i8")}

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "write_tensor_file",
           "read_tensor_file", "MAGIC", "FORMAT_VERSION"]


# ---------------------------------------------------------------------------------------------
# Format layer: (header dict, [(name, array, group)]) <-> file
# ---------------------------------------------------------------------------------------------

def _read_umask():
    """The process umask (reading it means setting it; restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import: os.umask is process-wide, so it is not touched while threads may save.
_UMASK = _read_umask()


def _dtype_name(array, name):
    for key, dt in _DTYPES.items():
        if array.dtype.kind == dt.kind and array.dtype.itemsize == dt.itemsize:
            return key
    raise ValueError(f"save: tensor '{name}' must be float32, float64 or int64; got {array.dtype}")


def write_tensor_file(path, header, tensors):
    """Write ``header`` (a JSON-serialisable dict; its 'tensors' entry is filled here) and
    ``tensors`` ([(name, array, group)]) atomically to ``path``."""
    import hashlib   # hashlib, json and tempfile load on the first save/load, not with pycnn.models
    import json
    import tempfile
    path = os.fspath(path)
    entries, arrays, offset = [], [], 0
    for name, array, group in tensors:
        array = np.asarray(array)
        dtype = _dtype_name(array, name)
        array = np.asarray(array, dtype=_DTYPES[dtype], order="C")   # keeps 0-d shapes
        entries.append({"name": name, "dtype": dtype, "shape": list(array.shape),
                        "offsets": [offset, offset + array.nbytes], "group": group})
        arrays.append(array)
        offset += array.nbytes
    header = dict(header, tensors=entries)
    try:
        header_bytes = json.dumps(header, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"save: the model configuration is not JSON-serialisable ({exc}); layers "
                         "holding Python functions (e.g. Lambda) cannot be saved as a whole model "
                         "-- use model.save_weights(path) and rebuild the model in code") from None
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise ValueError(f"save: the header must be at most {MAX_HEADER_BYTES} bytes; got "
                         f"{len(header_bytes)} (the model configuration is too large)")
    pad = -(_PREFIX.size + len(header_bytes)) % 8
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0, len(header_bytes), offset)

    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                   dir=directory)
    except OSError as exc:
        raise OSError(exc.errno, f"save: could not write {path!r}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            digest = hashlib.sha256()
            for chunk in (prefix, header_bytes, b"\x00" * pad):
                digest.update(chunk)
                f.write(chunk)
            for array in arrays:
                view = memoryview(array).cast("B") if array.size else b""
                digest.update(view)
                f.write(view)
            f.write(digest.digest())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)   # mkstemp made it 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OSError(exc.errno, f"save: could not write {path!r}: {exc.strerror}") from exc
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems do not support fsync on directories
    finally:
        os.close(fd)


def _fail(path, message):
    raise ModelFileError(f"{os.path.basename(path)}: {message}")


def read_tensor_file(path):
    """Read and fully validate a pycnn file. Returns (header dict, {name: entry}, data memoryview,
    ordered entries). Raises ModelFileError on any problem."""
    import hashlib
    import json
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(_PREFIX.size)
            if len(head) < 8 or head[:8] != MAGIC:
                _fail(path, f"not a pycnn model/weights file (bad magic {head[:8]!r}; expected "
                            f"{MAGIC!r})")
            if len(head) < _PREFIX.size:
                _fail(path, f"truncated: {size} bytes is shorter than the {_PREFIX.size}-byte prefix")
            _, version, flags, header_len, data_len = _PREFIX.unpack(head)
            if version != FORMAT_VERSION:
                _fail(path, f"format version must be {FORMAT_VERSION}; got {version} (written by a "
                            "different pycnn version?)")
            if flags != 0:
                _fail(path, f"flags must be 0; got {flags}")
            if not 1 <= header_len <= MAX_HEADER_BYTES:
                _fail(path, f"header length must be in [1, {MAX_HEADER_BYTES}]; got {header_len}")
            pad = -(_PREFIX.size + header_len) % 8
            data_start = _PREFIX.size + header_len + pad
            expected = data_start + data_len + _DIGEST_BYTES
            if size < expected:
                _fail(path, f"truncated: header declares {data_len:,} bytes of tensor data, "
                            f"file has {max(size - data_start - _DIGEST_BYTES, 0):,} "
                            f"({size:,} bytes, expected {expected:,})")
            if size > expected:
                _fail(path, f"{size - expected:,} unexpected trailing bytes after the checksum "
                            f"(file has {size:,} bytes, expected {expected:,})")
            body = head + f.read(expected - _PREFIX.size)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    if len(body) != expected:
        _fail(path, f"truncated while reading: expected {expected:,} bytes, got {len(body):,}")
    view = memoryview(body)
    if hashlib.sha256(view[:-_DIGEST_BYTES]).digest() != bytes(view[-_DIGEST_BYTES:]):
        _fail(path, "checksum mismatch: the file is corrupted (SHA-256 of the contents does not "
                    "match the stored digest)")
    try:
        header = json.loads(bytes(view[_PREFIX.size:_PREFIX.size + header_len]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{os.path.basename(path)}: header is not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != "pycnn":
        _fail(path, "header must be a JSON object with format 'pycnn'")
    if header.get("kind") not in ("model", "weights"):
        _fail(path, f"header kind must be 'model' or 'weights'; got {header.get('kind')!r}")
    entries = header.get("tensors")
    if not isinstance(entries, list):
        _fail(path, "header 'tensors' must be a list")
    by_name, cursor = {}, 0
    for i, entry in enumerate(entries):
        _check_entry(path, i, entry, cursor, by_name)
        cursor = entry["offsets"][1]
    if cursor != data_len:
        _fail(path, f"tensor data must end at the declared data length {data_len:,}; tensors end "
                    f"at {cursor:,}")
    return header, by_name, view[data_start:data_start + data_len], entries


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_entry(path, i, entry, cursor, by_name):
    if not isinstance(entry, dict):
        _fail(path, f"tensor entry {i} must be an object")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        _fail(path, f"tensor entry {i}: name must be a non-empty string; got {name!r}")
    if name in by_name:
        _fail(path, f"tensor '{name}' appears twice")
    if entry.get("group") not in ("weights", "optimizer"):
        _fail(path, f"tensor '{name}': group must be 'weights' or 'optimizer'; got "
                    f"{entry.get('group')!r}")
    dtype = entry.get("dtype")
    if dtype not in _DTYPES:
        _fail(path, f"tensor '{name}': dtype must be one of {sorted(_DTYPES)}; got {dtype!r}")
    shape = entry.get("shape")
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or not all(_is_int(d) and 0 <= d < 2 ** 40 for d in shape)):
        _fail(path, f"tensor '{name}': shape must be a list of at most {MAX_NDIM} dimensions in "
                    f"[0, 2**40); got {shape!r}")
    offsets = entry.get("offsets")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets)
            or offsets[0] != cursor or offsets[1] < offsets[0]):
        _fail(path, f"tensor '{name}': data offsets {offsets!r} invalid (expected [{cursor}, ...]: "
                    "tensors are stored contiguously in header order)")
    nbytes = math.prod(shape) * _DTYPES[dtype].itemsize
    if offsets[1] - offsets[0] != nbytes:
        _fail(path, f"tensor '{name}': shape {tuple(shape)} of {dtype} needs {nbytes:,} bytes but "
                    f"its offsets span {offsets[1] - offsets[0]:,}")
    by_name[name] = entry


def _tensor(view, entry):
    begin, end = entry["offsets"]
    return np.frombuffer(view[begin:end], dtype=_DTYPES[entry["dtype"]]).reshape(entry["shape"])


# ---------------------------------------------------------------------------------------------
# Model layer
# ---------------------------------------------------------------------------------------------

def _weight_tensors(model):
    return [(v.name, v.value, "weights") for v in model.weights]


def _check_against_model(path, model, weight_entries, skip_mismatch=False):
    """Pair file tensors with model variables by position; raise on the first mismatch."""
    variables = model.weights
    if len(weight_entries) != len(variables) and not skip_mismatch:
        _fail(path, f"file has {len(weight_entries)} weight tensors, model '{model.name}' expects "
                    f"{len(variables)} (file: {[e['name'] for e in weight_entries][:6]}..., model: "
                    f"{[v.name for v in variables][:6]}...); was it saved from a different "
                    "architecture?")
    pairs = []
    for entry, var in zip(weight_entries, variables):
        file_shape, model_shape = tuple(entry["shape"]), tuple(var.shape)
        if file_shape != model_shape:
            if skip_mismatch:
                continue
            layer, _, weight = var.name.rpartition("/")
            _fail(path, f"layer '{layer or var.name}' {weight}: file has {file_shape} "
                        f"('{entry['name']}'), model expects {model_shape}")
        if entry["dtype"] not in ("float32", "float64"):
            _fail(path, f"tensor '{entry['name']}': dtype must be float32 or float64 for a "
                        f"weight; got {entry['dtype']}")
        pairs.append((entry, var))
    return pairs


def _assign(path, view, pairs, strict=False):
    bad = []
    arrays = []
    for entry, var in pairs:
        arr = _tensor(view, entry)
        n_bad = arr.size - int(np.count_nonzero(np.isfinite(arr)))
        if n_bad:
            bad.append((var.name, n_bad))
        arrays.append(arr)
    if bad and strict:
        _fail(path, f"{bad[0][1]} non-finite values in '{bad[0][0]}'")
    for (entry, var), arr in zip(pairs, arrays):
        var.value = np.array(arr, dtype=var.value.dtype)  # own, writable, native-endian copy
    for name, n_bad in bad:
        warnings.warn(f"{os.path.basename(path)}: {n_bad} non-finite values in '{name}'",
                      RuntimeWarning, stacklevel=3)


def save_model(model, path, include_optimizer=True):
    """Write architecture (get_config), compile settings, weights and optimizer state."""
    if not model.built:
        raise ValueError(f"save: model '{model.name}' must be built before saving (call it on data, "
                         "fit it, or give the first layer input_shape)")
    header = {"format": "pycnn", "kind": "model", "pycnn_format_version": FORMAT_VERSION,
              "model_config": {"class_name": model._config_class_name(), "config": model.get_config()},
              "compile_config": model._compile_config()}
    tensors = _weight_tensors(model)
    optimizer = getattr(model, "optimizer", None)
    if include_optimizer and optimizer is not None and optimizer.built and header["compile_config"]:
        index = {id(v): i for i, v in enumerate(model.weights)}
        order = [index[id(v)] for v in optimizer._variables if id(v) in index]
        header["optimizer_variables"] = order
        tensors += [("optimizer/" + name, arr, "optimizer") for name, arr in optimizer.get_state()]
    write_tensor_file(path, header, tensors)


def load_model(path, custom_objects=None, compile=True, strict=False):
    """Rebuild a model saved by ``model.save(path)``: architecture, weights, and (``compile=True``)
    its compile settings and optimizer state. Raises ModelFileError for any file problem."""
    from pycnn.models import model_from_config

    header, _, view, entries = read_tensor_file(path)
    if header["kind"] != "model":
        _fail(path, "is a weights-only file (written by save_weights); build the model in code "
                    "and call model.load_weights(path)")
    config = header.get("model_config")
    try:
        model = model_from_config(config, custom_objects=custom_objects)
    except ModelFileError:
        raise
    except (Exception, MemoryError, RecursionError) as exc:
        # the configuration is untrusted data: whatever a layer constructor raises on it (e.g. a
        # crafted Dense(units=10**12)) is reported as a problem of the file
        raise ModelFileError(f"{os.path.basename(path)}: cannot rebuild the model from its "
                             f"configuration: {type(exc).__name__}: {exc}") from exc
    weight_entries = [e for e in entries if e["group"] == "weights"]
    _assign(path, view, _check_against_model(path, model, weight_entries), strict=strict)
    compile_config = header.get("compile_config")
    if compile and compile_config:
        try:
            model._compile_from_config(compile_config)
        except (ValueError, TypeError, KeyError) as exc:
            raise ModelFileError(f"{os.path.basename(path)}: invalid compile configuration: "
                                 f"{exc}") from exc
        opt_entries = [e for e in entries if e["group"] == "optimizer"]
        order = header.get("optimizer_variables")
        if opt_entries and isinstance(order, list):
            _restore_optimizer(path, model, view, opt_entries, order)
    return model


def _restore_optimizer(path, model, view, entries, order):
    weights = model.weights
    if not all(_is_int(i) and 0 <= i < len(weights) for i in order):
        _fail(path, "optimizer_variables must index the model weights")
    state = [(e["name"][len("optimizer/"):], _tensor(view, e)) for e in entries]
    try:
        model.optimizer.set_state([weights[i] for i in order], state)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"{os.path.basename(path)}: optimizer state does not match the "
                             f"model: {exc}") from exc


def save_weights(model, path):
    """Write only the weights (in ``model.weights`` order)."""
    if not model.built:
        raise ValueError(f"save_weights: model '{model.name}' must be built before saving")
    header = {"format": "pycnn", "kind": "weights", "pycnn_format_version": FORMAT_VERSION,
              "model_config": None, "compile_config": None}
    write_tensor_file(path, header, _weight_tensors(model))


def load_weights(model, path, skip_mismatch=False, strict=False):
    """Load weights saved by ``save_weights`` or ``save`` into ``model`` (matched by position;
    every shape is checked first and nothing is assigned unless all match, unless
    ``skip_mismatch=True`` which skips mismatching tensors)."""
    if not model.built:
        raise ValueError(f"load_weights: model '{model.name}' must be built first (give the first "
                         "layer input_shape or call model.build(input_shape))")
    _, _, view, entries = read_tensor_file(path)
    weight_entries = [e for e in entries if e["group"] == "weights"]
    _assign(path, view, _check_against_model(path, model, weight_entries, skip_mismatch),
            strict=strict)
