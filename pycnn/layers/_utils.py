"""Argument normalisation and shape arithmetic shared by the layers (Keras rules)."""
import numpy as np

from pycnn import regularizers


def normalize_tuple(value, n, arg, where, allow_zero=False):
    """int -> (int,)*n; a length-n sequence of ints kept; anything else a ValueError in Keras's words."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * n
    elif isinstance(value, (tuple, list)) and len(value) == n and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        values = tuple(int(v) for v in value)
    else:
        raise ValueError(f"{where}: {arg} must be an int or a tuple of {n} ints; Received: {arg}={value!r}")
    lowest = 0 if allow_zero else 1
    if any(v < lowest for v in values):
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{where}: {arg} must be {rule}; Received: {arg}={value!r}")
    return values


def normalize_padding(value, where, allowed=("valid", "same")):
    if not isinstance(value, str) or value.lower() not in allowed:
        raise ValueError(f"{where}: padding must be one of {list(allowed)}; Received: padding={value!r}")
    return value.lower()


def normalize_data_format(value, where):
    if value is None:
        return "channels_last"
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"{where}: data_format must be 'channels_last' or 'channels_first'; "
                         f"Received: data_format={value!r}")
    return value


def check_unsupported(where, **kwargs):
    """Keras arguments pycnn does not implement are accepted only as None (so Keras configs load)."""
    for name, value in kwargs.items():
        if value is not None:
            raise ValueError(f"{where}: {name} must be None (pycnn does not implement {name}); got {value!r}")


def conv_output_length(n, k, s, d, padding):
    """Keras's output length of a convolution/pooling window along one dimension (None stays None)."""
    if n is None:
        return None
    if padding in ("same", "causal"):
        return -(-n // s)
    k_eff = d * (k - 1) + 1
    return (n - k_eff) // s + 1  # floor division: <= 0 when the window does not fit


def transpose_output_length(n, k, s, d, padding, output_padding):
    """Keras's Conv*Transpose output length (``_get_output_shape_given_tf_padding``)."""
    if n is None:
        return None
    k_eff = d * (k - 1) + 1
    if padding == "valid":
        op = max(k_eff, s) - k_eff if output_padding is None else output_padding
        return (n - 1) * s + k_eff + op
    if output_padding is None:
        return n * s
    return (n - 1) * s + k_eff % 2 + output_padding


def to_channels_last(x, data_format):
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def to_channels_first(x, data_format):
    return np.moveaxis(x, -1, 1) if data_format == "channels_first" else x


def channels_last_shape(shape, data_format):
    """Permute a (batch-including) shape tuple to channels_last order."""
    if data_format == "channels_first":
        return (shape[0],) + tuple(shape[2:]) + (shape[1],)
    return tuple(shape)


def from_channels_last_shape(shape, data_format):
    if data_format == "channels_first":
        return (shape[0], shape[-1]) + tuple(shape[1:-1])
    return tuple(shape)


def check_rank(layer, input_shape, rank, data_format="channels_last", what="input"):
    """Input must have rank+2 dims; a missing channel axis gets the x[..., None] hint."""
    where = f"{type(layer).__name__} '{layer.name}'"
    if isinstance(input_shape, list):
        raise ValueError(f"{where}: expects a single input; got {len(input_shape)} inputs")
    ndim = rank + 2
    if len(input_shape) == ndim:
        return
    layout = {1: "(batch, length, channels)", 2: "(batch, height, width, channels)",
              3: "(batch, depth, height, width, channels)"}[rank]
    if data_format == "channels_first":
        layout = {1: "(batch, channels, length)", 2: "(batch, channels, height, width)",
                  3: "(batch, channels, depth, height, width)"}[rank]
    hint = ""
    if len(input_shape) == ndim - 1:
        if data_format == "channels_first":
            hint = " (the channel axis 1 is missing; add it with x[:, None] or np.expand_dims(x, 1))"
        else:
            hint = (" (the channel axis -1 is missing, e.g. grayscale images; add it with x[..., None] "
                    "or np.expand_dims(x, -1))")
    raise ValueError(f"{where}: {what} must be {ndim}-D {layout}; got shape {tuple(input_shape)}{hint}")


def serialize_regularizer(reg):
    return None if reg is None else regularizers.serialize(reg)


def check_positive_int(value, arg, where):
    """Keras-style: a strictly positive integer (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{where}: {arg} must be a strictly positive integer; Received: {arg}={value!r}")
    return int(value)


def is_int_tuple(value):
    """A tuple/list of ints or None (a shape without the batch dim)."""
    return isinstance(value, (tuple, list)) and all(
        d is None or (isinstance(d, (int, np.integer)) and not isinstance(d, bool)) for d in value)


def resize_matrix(in_size, out_size, interpolation, dtype):
    """(out_size, in_size) matrix M with out = M @ in along one axis, Keras/TF half-pixel centres.

    bilinear: source coordinate (i + 0.5) * in/out - 0.5, clamped to the edge pixels
    (TF's half_pixel_centers, torch's align_corners=False); nearest: floor((i + 0.5) * in/out)
    (TF's half_pixel_centers nearest, torch's 'nearest-exact'). No antialiasing.
    """
    scale = in_size / out_size
    m = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.arange(out_size)
    if interpolation == "nearest":
        src = np.minimum(np.floor((rows + 0.5) * scale).astype(np.int64), in_size - 1)
        m[rows, src] = 1.0
        return m.astype(dtype)
    src = (rows + 0.5) * scale - 0.5
    floor = np.floor(src)
    frac = src - floor
    lower = np.clip(floor.astype(np.int64), 0, in_size - 1)
    upper = np.clip(floor.astype(np.int64) + 1, 0, in_size - 1)
    np.add.at(m, (rows, lower), 1.0 - frac)
    np.add.at(m, (rows, upper), frac)
    return m.astype(dtype)


def resize_nhwc(x, mh, mw):
    """Apply row matrix mh (out_h, h) and column matrix mw (out_w, w) to NHWC x via ops.dense."""
    from pycnn import ops
    # (n, h, w, c) -> (n, w, c, h) @ mh.T -> (n, w, c, oh)
    t = ops.dense(np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1))), np.ascontiguousarray(mh.T))
    # -> (n, oh, c, w) @ mw.T -> (n, oh, c, ow) -> (n, oh, ow, c)
    t = ops.dense(np.ascontiguousarray(np.transpose(t, (0, 3, 2, 1))), np.ascontiguousarray(mw.T))
    return np.ascontiguousarray(np.transpose(t, (0, 1, 3, 2)))
