"""Argument checking shared by the functional ops and the layers.

Every helper takes the op name first so that messages follow one pattern:
``"<op>: <what> must be <rule>; got <values> (<hint>)"``.
"""
import numbers
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def shape_str(shape):
    """(8, 28, 28, 3) -> '(8, 28, 28, 3)' (also for one-element tuples)."""
    items = [str(int(s)) if s is not None else "None" for s in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def as_float_array(op, name, value):
    """An ndarray of float32/float64 from any array-like, or a TypeError naming `name`.

    Integer, bool, complex and object inputs are rejected: the functional ops
    never guess a precision or silently drop an imaginary part.
    """
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{op}: {name} must be a NumPy array or nested list of numbers; "
                        f"got {type(value).__name__}")
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{op}: {name} could not be converted to an array ({exc})") from exc
    if array.dtype in FLOAT_DTYPES or (array.dtype.kind == "f" and array.dtype.itemsize in (4, 8)):
        return array
    if array.dtype.kind in "iub":
        raise TypeError(f"{op}: {name} dtype {array.dtype} is not supported (expected float32 or "
                        f"float64; convert with {name}.astype('float32'))")
    raise TypeError(f"{op}: {name} dtype {array.dtype} is not supported (expected a real "
                    f"floating-point dtype, float32 or float64)")


def same_float_dtype(op, **arrays):
    """The common dtype of the given arrays (None values skipped), or TypeError."""
    named = [(name, a) for name, a in arrays.items() if a is not None]
    dtypes = {np.dtype(a.dtype).newbyteorder("=") for _, a in named}
    if len(dtypes) > 1:
        listing = " and ".join(f"{name} dtype {a.dtype.name}" for name, a in named)
        raise TypeError(f"{op}: {listing} must match (cast them with .astype(...) to one dtype)")
    return dtypes.pop()   # native byte order, like the results


def int_tuple(op, name, value, rank, minimum=1):
    """An int or a sequence of `rank` ints -> tuple, each >= minimum."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an int or tuple of ints; got bool {value}")
    if isinstance(value, numbers.Integral):
        values = (int(value),) * rank
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise TypeError(f"{op}: {name} must be an int or tuple of ints; got "
                            f"{type(value).__name__} {value!r}") from None
        if len(values) != rank:
            raise ValueError(f"{op}: {name} must be an int or a tuple of {rank} ints; got {value!r}")
        checked = []
        for v in values:
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
                raise TypeError(f"{op}: {name} must be an int or tuple of ints; got "
                                f"{type(v).__name__} {v!r} in {value!r}")
            checked.append(operator.index(v))
        values = tuple(checked)
    if any(v > 2**63 - 1 for v in values):
        raise ValueError(f"{op}: {name} must be <= 9223372036854775807 (int64); got {value!r}")
    if any(v < minimum for v in values):
        shown = values if rank > 1 else values[0]
        raise ValueError(f"{op}: {name} must be >= {minimum}; got {shown}")
    return values


def same_padding(size, kernel, stride, dilation):
    """Keras/TensorFlow "same" split: (before, after), the extra cell after."""
    effective = dilation * (kernel - 1) + 1
    total = max((-(-size // stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def explicit_padding(op, padding, rank, sizes, kernels, strides, dilations, allow_causal=False):
    """Any accepted padding form -> ((before, after),) * rank of ints >= 0."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0),) * rank
        if mode == "same":
            return tuple(same_padding(n, k, s, d) for n, k, s, d in zip(sizes, kernels, strides, dilations))
        if mode == "causal" and allow_causal:
            return tuple((d * (k - 1), 0) for k, d in zip(kernels, dilations))
        allowed = '"valid", "same"' + (', "causal"' if allow_causal else "")
        raise ValueError(f"{op}: padding must be {allowed}, an int, a tuple or ((before, after), ...); "
                         f"got {padding!r}")
    if isinstance(padding, (bool, np.bool_)):
        raise TypeError(f"{op}: padding must be a string, an int or a tuple; got bool {padding}")
    if isinstance(padding, numbers.Integral):
        pads = ((int(padding), int(padding)),) * rank
    else:
        try:
            items = tuple(padding)
        except TypeError:
            raise TypeError(f"{op}: padding must be a string, an int or a tuple; got "
                            f"{type(padding).__name__} {padding!r}") from None
        if rank == 1 and len(items) == 2 and all(isinstance(v, numbers.Integral) for v in items):
            items = (tuple(items),)   # 1-D explicit padding is (before, after)
        if len(items) != rank:
            raise ValueError(f"{op}: padding must have {rank} entries (one per spatial dimension); "
                             f"got {padding!r}")
        pads = []
        for item in items:
            if isinstance(item, numbers.Integral) and not isinstance(item, (bool, np.bool_)):
                pads.append((int(item), int(item)))
            else:
                pair = int_tuple(op, "padding", item, 2, minimum=-(2**63))
                pads.append(pair)
        pads = tuple(pads)
    flat = tuple(p for pair in pads for p in pair)
    if any(p < 0 for p in flat):
        shown = flat if len(flat) > 1 else flat[0]
        raise ValueError(f"{op}: padding must be >= 0; got {shown}")
    return pads


def check_data_format(op, data_format):
    if data_format is None:
        return "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{op}: data_format must be 'channels_last' or 'channels_first'; got {data_format!r}")
    return data_format
