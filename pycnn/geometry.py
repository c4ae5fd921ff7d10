"""Shape arithmetic of convolution and pooling: output sizes and receptive fields.

Notation (per spatial axis): n input size, k kernel (or pool) size, s stride, d dilation,
p zero padding, k_eff = d (k - 1) + 1 the span a dilated kernel covers.

* Output size, the lecture's ``W2 = floor((W1 - f + 2p) / s) + 1`` with dilation:
  ``floor((n + p_before + p_after - k_eff) / s) + 1``; Keras ``padding="same"`` gives
  ``ceil(n / s)`` whatever k and d are; ``"valid"`` means p = 0.
* Receptive field of a stack (Araujo et al., "Computing Receptive Fields of
  Convolutional Neural Networks", Distill 2019): starting from size r = 1, jump j = 1
  (distance in input pixels between neighbouring units) and start 0, each layer does
  ``r += (k_eff - 1) * j``, ``start += ((k_eff - 1) / 2 - p_before) * j``, ``j *= s``.
"""

from typing import NamedTuple

__all__ = ["conv_output_size", "receptive_field", "ReceptiveField", "FieldStep"]


def conv_output_size(n, kernel_size, strides=1, padding=0, dilation_rate=1):
    """Output size of a convolution or pooling window sliding over ``n`` positions.

    Parameters
    ----------
    n : int or tuple of int
        Input size (e.g. width), or one size per spatial axis such as ``(H, W)``.
    kernel_size, strides, dilation_rate : int or tuple of int
        Window size, step and dilation; an int applies to every axis.
    padding : int, "valid", "same", or tuple
        int p: p zeros on both sides of every axis (the lecture's formula);
        "valid": no padding; "same": Keras/TensorFlow "same", output ``ceil(n / s)``;
        a tuple gives one entry per axis, each an int (both sides) or a
        ``(before, after)`` pair, e.g. ``((0, 1), (0, 1))``.

    Returns
    -------
    int, or a tuple of int (one per axis) when any argument is a tuple (or a padding tuple
    is given); scalar arguments are then used on every axis.

    Raises ValueError when the output would be empty (the effective kernel is larger than
    the padded input) and for non-positive sizes, strides or dilations or negative padding.

    Examples
    --------
    >>> conv_output_size(227, 11, strides=4)           # AlexNet conv1
    55
    >>> conv_output_size(5, 3, strides=2, padding=1)
    3
    >>> conv_output_size((28, 28), 5, padding="same")
    (28, 28)
    """
    func = "conv_output_size"
    dims = _count_dims(func, n=n, kernel_size=kernel_size, strides=strides,
                       dilation_rate=dilation_rate, padding=padding)
    sizes = _per_axis(func, "n", n, dims, minimum=1)
    kernels = _per_axis(func, "kernel_size", kernel_size, dims, minimum=1)
    steps = _per_axis(func, "strides", strides, dims, minimum=1)
    dilations = _per_axis(func, "dilation_rate", dilation_rate, dims, minimum=1)
    pads = _padding_per_axis(func, padding, dims)
    out = []
    for axis in range(dims):
        out.append(_axis_output(func, axis if dims > 1 else None, sizes[axis], kernels[axis],
                                steps[axis], dilations[axis], pads[axis]))
    return out[0] if not _any_tuple(n, kernel_size, strides, dilation_rate, padding) else tuple(out)


class FieldStep(NamedTuple):
    """Receptive field after one layer (ints, or tuples with one value per axis).

    name: the layer's name (or "layer <i>"); kernel_size, strides, dilation_rate: as used;
    size: receptive field size in input pixels; jump: input pixels between neighbouring
    output units (the product of the strides so far); start: input coordinate of the
    centre of the first output unit's field (pixel i has its centre at i; negative or
    half-integer values happen with padding and even kernels), always float;
    output_size: the layer's output size when ``input_size`` was given, else None.
    """

    name: str
    kernel_size: object
    strides: object
    dilation_rate: object
    size: object
    jump: object
    start: object
    output_size: object


class ReceptiveField(NamedTuple):
    """Result of :func:`receptive_field`: the final ``size``, ``jump`` and ``start``,
    and ``steps``, one :class:`FieldStep` per layer in order."""

    size: object
    jump: object
    start: object
    steps: tuple


def receptive_field(*layers, input_size=None):
    """Receptive field of a stack of convolution / pooling layers, layer by layer.

    Each layer may be:

    * an int ``k``: a k x k stride-1 convolution;
    * a tuple ``(kernel_size, strides)`` or ``(kernel_size, strides, dilation_rate)``
      (so ``(2, 2)`` is a 2-wide window with stride 2; per-axis values are tuples, e.g.
      ``((3, 1), (1, 1))``);
    * a dict with ``kernel_size`` (convolution) or ``pool_size`` (pooling, strides default
      to the pool size) and optional ``strides``, ``dilation_rate``, ``padding``
      ("valid" default, "same", "causal", int or per-axis tuple) and ``name``;
    * a layer object with a ``kernel_size`` or ``pool_size`` attribute and optional
      ``strides`` (None means the pool size), ``dilation_rate``, ``padding``, ``name``
      (e.g. ``Conv2D`` / ``MaxPooling2D``; layers such as activations, ``Flatten`` or
      ``Dense`` have no window and are rejected, and transposed convolutions are not
      supported).

    Padding changes only ``start`` (and the output sizes). Keras "same" padding with
    stride > 1 puts its padding depending on the input size: pass ``input_size`` then.
    ``input_size`` (int or per-axis tuple) also fills in each step's ``output_size``.

    Returns
    -------
    ReceptiveField(size, jump, start, steps): ints (start a float), or tuples with one
    value per axis when any layer or ``input_size`` uses per-axis tuples.

    Examples
    --------
    >>> receptive_field(3, 3).size                  # two 3x3 convs see 5x5
    5
    >>> rf = receptive_field(3, 3, {"pool_size": 2}, 3, 3)
    >>> rf.size, rf.jump
    (14, 2)
    """
    func = "receptive_field"
    if len(layers) == 1 and isinstance(layers[0], list):
        raise TypeError(f"{func}: layers must be passed as separate arguments; got one list "
                        "(unpack it: receptive_field(*layers))")
    specs = [_layer_spec(func, i, layer) for i, layer in enumerate(layers)]
    tuple_mode = any(spec.pop("tuple_mode") for spec in specs) or isinstance(input_size, (tuple, list))
    dims = max([len(spec[key]) for spec in specs for key in _PER_AXIS_KEYS if isinstance(spec[key], tuple)]
               + [len(input_size) if isinstance(input_size, (tuple, list)) else 1])
    sizes = None if input_size is None else _per_axis(func, "input_size", input_size, dims, minimum=1)

    size, jump, start = [1] * dims, [1] * dims, [0.0] * dims
    steps = []
    for i, spec in enumerate(specs):
        kernels = _per_axis(func, f"layers[{i}] kernel size", spec["kernel_size"], dims, minimum=1)
        strides = _per_axis(func, f"layers[{i}] strides", spec["strides"], dims, minimum=1)
        dilations = _per_axis(func, f"layers[{i}] dilation_rate", spec["dilation_rate"], dims, minimum=1)
        pads = _padding_per_axis(func, spec["padding"], dims, allow_causal=True)
        out_sizes = []
        for axis in range(dims):
            k_eff = dilations[axis] * (kernels[axis] - 1) + 1
            before, after = _resolve_padding(func, i, pads[axis], k_eff, strides[axis],
                                             None if sizes is None else sizes[axis])
            start[axis] += ((k_eff - 1) / 2 - before) * jump[axis]
            size[axis] += (k_eff - 1) * jump[axis]
            jump[axis] *= strides[axis]
            if sizes is not None:
                sizes[axis] = _axis_output(f"{func}: layers[{i}] ({spec['name']})", axis if dims > 1 else None,
                                           sizes[axis], kernels[axis], strides[axis], dilations[axis],
                                           (before, after))
                out_sizes.append(sizes[axis])
        pack = tuple if tuple_mode else (lambda values: values[0])
        steps.append(FieldStep(
            name=spec["name"], kernel_size=pack(kernels), strides=pack(strides), dilation_rate=pack(dilations),
            size=pack(list(size)), jump=pack(list(jump)), start=pack([float(v) for v in start]),
            output_size=None if sizes is None else pack(out_sizes)))
    pack = tuple if tuple_mode else (lambda values: values[0])
    return ReceptiveField(size=pack(size), jump=pack(jump), start=pack([float(v) for v in start]),
                          steps=tuple(steps))


# ----------------------------------------------------------------------------- helpers

def _any_tuple(*values):
    return any(isinstance(v, (tuple, list)) for v in values)


def _count_dims(func, **values):
    """Number of spatial axes implied by the tuple arguments (1 when all are scalars)."""
    lengths = {name: len(v) for name, v in values.items() if isinstance(v, (tuple, list))}
    if len(set(lengths.values())) > 1:
        given = ", ".join(f"{name}={values[name]!r}" for name in lengths)
        raise ValueError(f"{func}: tuple arguments must have one entry per axis (the same length); got {given}")
    return next(iter(lengths.values()), 1)


def _check_int(func, what, value, minimum):
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{func}: {what} must be an integer; got {value!r} ({type(value).__name__})")
    value = int(value.__index__())
    if value < minimum:
        rule = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{func}: {what} must be {rule}; got {value}")
    return value


def _per_axis(func, what, value, dims, minimum):
    """A list of `dims` checked ints from an int (repeated) or a tuple of length `dims`."""
    if isinstance(value, (tuple, list)):
        if len(value) != dims:
            raise ValueError(f"{func}: {what} must have {dims} entries (one per axis); got {value!r}")
        return [_check_int(func, what, v, minimum) for v in value]
    return [_check_int(func, what, value, minimum)] * dims


def _padding_per_axis(func, padding, dims, allow_causal=False):
    """Per-axis padding: a keyword string or a (before, after) pair of ints."""
    if isinstance(padding, str):
        key = padding.lower()
        allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
        if key not in allowed:
            names = ", ".join(repr(a) for a in allowed)
            raise ValueError(f"{func}: padding must be an int, a tuple or one of {names}; got {padding!r}")
        if key == "causal" and dims != 1:
            raise ValueError(f"{func}: padding 'causal' must be used on 1-D inputs only; got {dims} axes")
        return [key] * dims
    if isinstance(padding, (tuple, list)):
        if len(padding) != dims:
            raise ValueError(f"{func}: padding must have {dims} entries (one per axis); got {padding!r}")
        pads = []
        for entry in padding:
            if isinstance(entry, (tuple, list)):
                if len(entry) != 2:
                    raise ValueError(f"{func}: an explicit padding entry must be a (before, after) pair; "
                                     f"got {entry!r} in padding={padding!r}")
                pads.append(tuple(_check_int(func, "padding", v, 0) for v in entry))
            else:
                p = _check_int(func, "padding", entry, 0)
                pads.append((p, p))
        return pads
    p = _check_int(func, "padding", padding, 0)
    return [(p, p)] * dims


def _axis_output(func, axis, n, k, s, d, pad):
    """Output size on one axis; `pad` is "valid", "same" or a (before, after) pair."""
    k_eff = d * (k - 1) + 1
    if pad == "same":
        return -(-n // s)
    before, after = (0, 0) if pad == "valid" else pad
    padded = n + before + after
    if padded < k_eff:
        where = "" if axis is None else f" on axis {axis}"
        raise ValueError(
            f"{func}: output size must be positive{where}; got n={n}, kernel_size={k}, dilation_rate={d} "
            f"(effective kernel {k_eff}), padding=({before}, {after}), strides={s}: "
            f"floor(({n} + {before + after} - {k_eff}) / {s}) + 1 = {(padded - k_eff) // s + 1} "
            "(the window is larger than the padded input; use padding='same', more padding or a smaller "
            "kernel/dilation)")
    return (padded - k_eff) // s + 1


def _resolve_padding(func, index, pad, k_eff, s, n):
    """(before, after) zeros for one axis of one layer; Keras "same" needs n when s > 1."""
    if pad == "valid":
        return 0, 0
    if pad == "causal":
        return k_eff - 1, 0
    if pad == "same":
        if n is None:
            if s != 1:
                raise ValueError(
                    f"{func}: input_size must be given for padding='same' with strides > 1; got layers[{index}] "
                    f"with strides={s} and input_size=None (Keras puts the 'same' padding depending on the "
                    "input size; pass e.g. input_size=(224, 224))")
            total = k_eff - 1
        else:
            total = max((-(-n // s) - 1) * s + k_eff - n, 0)
        return total // 2, total - total // 2
    return pad


_PER_AXIS_KEYS = ("kernel_size", "strides", "dilation_rate", "padding")
_SPEC_KEYS = {"kernel_size", "pool_size", "strides", "dilation_rate", "padding", "name"}


def _layer_spec(func, index, layer):
    """Normalise one layer description to a dict (values still ints or tuples)."""
    default_name = f"layer {index}"
    if isinstance(layer, bool):
        raise TypeError(f"{func}: layers[{index}] must be an int, tuple, dict or layer object; got {layer!r}")
    if hasattr(layer, "__index__"):
        spec = {"kernel_size": layer, "strides": 1, "dilation_rate": 1, "padding": "valid", "name": default_name}
    elif isinstance(layer, tuple):
        if not 1 <= len(layer) <= 3:
            raise ValueError(f"{func}: layers[{index}] as a tuple must be (kernel_size, strides[, dilation_rate]); "
                             f"got {layer!r}")
        kernel, strides, dilation = (tuple(layer) + (1, 1))[:3]
        spec = {"kernel_size": kernel, "strides": strides, "dilation_rate": dilation, "padding": "valid",
                "name": default_name}
    elif isinstance(layer, dict):
        unknown = set(layer) - _SPEC_KEYS
        if unknown:
            raise ValueError(f"{func}: layers[{index}] keys must be among {', '.join(sorted(_SPEC_KEYS))}; "
                             f"got unknown {sorted(unknown)}")
        spec = _window_spec(func, index, layer.get, "kernel_size" in layer, "pool_size" in layer, default_name)
    else:
        if "Transpose" in type(layer).__name__:
            raise TypeError(f"{func}: layers[{index}] must be a convolution or pooling layer; got a transposed "
                            f"convolution ({type(layer).__name__}), which enlarges the map instead")
        has_kernel = getattr(layer, "kernel_size", None) is not None
        has_pool = getattr(layer, "pool_size", None) is not None
        if not (has_kernel or has_pool):
            raise TypeError(
                f"{func}: layers[{index}] must have a kernel_size or pool_size; got {type(layer).__name__} "
                "(pass only the convolution and pooling layers)")
        spec = _window_spec(func, index, lambda key, default=None: getattr(layer, key, default),
                            has_kernel, has_pool, default_name)
    spec["padding"] = spec["padding"] if spec["padding"] is not None else "valid"
    for key in _PER_AXIS_KEYS:
        if isinstance(spec[key], list):
            spec[key] = tuple(spec[key])
    spec["tuple_mode"] = any(isinstance(spec[key], tuple) for key in _PER_AXIS_KEYS)
    return spec


def _window_spec(func, index, lookup, has_kernel, has_pool, default_name):
    if has_kernel == has_pool:
        raise ValueError(f"{func}: layers[{index}] must have exactly one of kernel_size or pool_size; "
                         f"got {'both' if has_kernel else 'neither'}")
    window = lookup("kernel_size") if has_kernel else lookup("pool_size")
    strides = lookup("strides", None)
    if strides is None:
        strides = 1 if has_kernel else window
    dilation = lookup("dilation_rate", None)
    name = lookup("name", None)
    return {"kernel_size": window, "strides": strides, "dilation_rate": 1 if dilation is None else dilation,
            "padding": lookup("padding", None), "name": default_name if name is None else str(name)}
