"""Functional ops on NumPy arrays: the convolution family, pooling, dense,
activations and losses, each with its backward pass.

Layouts follow Keras: channels_last input (N, H, W, C) / (N, L, C) with HWIO
kernels (kh, kw, c_in / groups, c_out).  ``data_format="channels_first"``
takes PyTorch's layouts (NCHW input, OIHW kernels) and is converted here, at
the boundary; results come back in the caller's layout.  The result dtype is
the input dtype (float32 is the fast path, float64 is complete).

This module is the only importer of the C extension.  It checks shapes and
arguments and names them in errors; the engine re-checks as a safety net.
"""
import numbers
import os
import threading
from collections import namedtuple

import numpy as np

from . import _engine
from ._args import (as_float_array, check_data_format, explicit_padding, int_tuple,
                    same_float_dtype, shape_str)

__all__ = [
    "conv1d", "conv1d_backward", "conv2d", "conv2d_backward",
    "depthwise_conv2d", "depthwise_conv2d_backward",
    "conv2d_transpose", "conv2d_transpose_backward",
    "max_pool1d", "max_pool1d_backward", "max_pool2d", "max_pool2d_backward",
    "avg_pool1d", "avg_pool1d_backward", "avg_pool2d", "avg_pool2d_backward",
    "global_avg_pool1d", "global_avg_pool1d_backward", "global_avg_pool2d", "global_avg_pool2d_backward",
    "global_max_pool1d", "global_max_pool1d_backward", "global_max_pool2d", "global_max_pool2d_backward",
    "dense", "dense_backward", "PackedKernel",
    "relu", "relu_backward", "leaky_relu", "leaky_relu_backward", "sigmoid", "sigmoid_backward",
    "clamp", "clamp_backward",
    "tanh", "tanh_backward", "softmax", "softmax_backward", "batch_norm", "batch_norm_backward",
    "softmax_cross_entropy", "mse", "im2col", "col2im",
    "set_num_threads", "get_num_threads", "set_memory_limit", "get_memory_limit",
]

_INT64_MAX = 2**63 - 1

# ---------------------------------------------------------------- settings


def set_num_threads(n):
    """Use up to `n` threads in the engine's kernels (results do not depend on it)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"set_num_threads: n must be an int >= 1; got {n!r}")
    return _engine.set_num_threads(int(n))


def get_num_threads():
    """The number of threads the engine's kernels may use."""
    return _engine.get_num_threads()


def _default_memory_limit():
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.8)
    except (ValueError, OSError, AttributeError):
        return 8 << 30


_memory_limit = _default_memory_limit()


def set_memory_limit(nbytes):
    """Refuse (with MemoryError) any single op needing more than `nbytes`
    of output plus scratch memory.  The default is 80% of physical memory."""
    global _memory_limit
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 1:
        raise ValueError(f"set_memory_limit: nbytes must be an int >= 1; got {nbytes!r}")
    _memory_limit = int(nbytes)


def get_memory_limit():
    return _memory_limit


def _gib(nbytes):
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**28 else f"{nbytes / 2**20:.1f} MiB"


def _reserve(op, what, nbytes):
    """MemoryError before allocating when one op would exceed the limit."""
    if nbytes > _memory_limit:
        raise MemoryError(f"{op}: needs {_gib(nbytes)} ({what}) but the pycnn memory limit is "
                          f"{_gib(_memory_limit)}; use a smaller batch_size or raise "
                          f"pycnn.set_memory_limit()")


def _checked_count(op, what, dims):
    """Product of dims as a Python int, with ValueError when it overflows int64."""
    count = 1
    for d in dims:
        count *= int(d)
    if count > _INT64_MAX:
        raise ValueError(f"{op}: {what} size overflows int64 ({' * '.join(str(int(d)) for d in dims)})")
    return count


# Scratch buffers up to _SCRATCH_KEEP bytes are reused per thread (a fresh page costs
# ~11 us to touch); larger ones are allocated per call and freed, so one huge op does
# not pin its workspace for the rest of the session.
_scratch = threading.local()
_SCRATCH_KEEP = 32 << 20


def _workspace(op, nbytes):
    if nbytes == 0:
        return None
    buffer = getattr(_scratch, "buffer", None)
    if buffer is not None and buffer.size >= nbytes:
        return buffer
    _reserve(op, "scratch workspace", nbytes)
    buffer = np.empty(nbytes, dtype=np.uint8)
    if nbytes <= _SCRATCH_KEEP:
        _scratch.buffer = buffer
    return buffer


def _empty(op, what, shape, dtype, extra_bytes=0):
    count = _checked_count(op, what, shape)
    nbytes = count * np.dtype(dtype).itemsize
    if nbytes > _INT64_MAX:
        raise ValueError(f"{op}: {what} size overflows int64 ({' * '.join(str(int(d)) for d in shape)} "
                         f"* {np.dtype(dtype).itemsize} bytes)")
    _reserve(op, what, nbytes + extra_bytes)
    return np.empty(shape, dtype=dtype)


def _contiguous(array, dtype):
    """C-contiguous, aligned, native byte order copy when needed (never in place)."""
    return np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("="))


# ------------------------------------------------------ convolution family

_ConvGeometry = namedtuple("_ConvGeometry", "strides dilations pads groups out_sizes")


def _check_input(op, x, rank, data_format, what="input"):
    """x must be (N, *spatial, C); error with a hint for the usual mistakes."""
    ndim = rank + 2
    if x.ndim != ndim:
        if rank == 1:
            layout = "(N, C, L)" if data_format == "channels_first" else "(N, L, C)"
        else:
            layout = "(N, C, H, W)" if data_format == "channels_first" else "(N, H, W, C)"
        hint = ""
        if x.ndim == ndim - 1:
            hint = (" (add a batch axis with x[None] for a single example, or a channel axis with "
                    "x[..., None] for single-channel data)")
        raise ValueError(f"{op}: {what} must be {ndim}-D {layout}; got shape {shape_str(x.shape)}{hint}")
    spatial = x.shape[1:-1]
    if x.shape[-1] < 1 or any(s < 1 for s in spatial):
        raise ValueError(f"{op}: {what} spatial size and channels must be >= 1; got shape {shape_str(x.shape)}")


def _to_last(x, rank):
    """NC... -> N...C (a view)."""
    return np.moveaxis(x, 1, -1)


def _to_first(x, rank):
    return np.moveaxis(x, -1, 1)


def _conv_geometry(op, in_sizes, kernel_sizes, strides, padding, dilation_rate, rank,
                   allow_causal=False):
    strides = int_tuple(op, "strides", strides, rank)
    dilations = int_tuple(op, "dilation_rate", dilation_rate, rank)
    pads = explicit_padding(op, padding, rank, in_sizes, kernel_sizes, strides, dilations, allow_causal)
    out_sizes = []
    for n, k, s, d, (before, after) in zip(in_sizes, kernel_sizes, strides, dilations, pads):
        effective = d * (k - 1) + 1
        padded = n + before + after
        if padded > _INT64_MAX:
            raise ValueError(f"{op}: padded input size overflows int64 ({n} + {before} + {after})")
        if effective > padded:
            eff = tuple(dd * (kk - 1) + 1 for kk, dd in zip(kernel_sizes, dilations))
            padded_all = tuple(nn + b + a for nn, (b, a) in zip(in_sizes, pads))
            raise ValueError(
                f"{op}: effective kernel {shape_str(eff)} = dilation {shape_str(dilations)} * "
                f"(kernel {shape_str(kernel_sizes)} - 1) + 1 is larger than padded input "
                f"{shape_str(padded_all)}; output would be empty (reduce kernel_size/dilation or add padding)")
        out_sizes.append((padded - effective) // s + 1)
    return strides, dilations, pads, tuple(out_sizes)


def _engine_geometry(rank, strides, dilations, pads, groups):
    """The (stride_h, stride_w, dilation_h, dilation_w, pads..., groups) tuple; 1-D is H = 1."""
    if rank == 1:
        strides, dilations, pads = (1,) + strides, (1,) + dilations, ((0, 0),) + pads
    return (strides[0], strides[1], dilations[0], dilations[1],
            pads[0][0], pads[0][1], pads[1][0], pads[1][1], groups)


def _as_2d(array, rank):
    """1-D data (N, L, C) as the H = 1 case (N, 1, L, C), a view."""
    return array[:, None] if rank == 1 else array


def _kernel_2d(kernel, rank):
    """1-D kernels (k, c_in, c_out) as (1, k, c_in, c_out), a view."""
    return kernel[None] if rank == 1 else kernel


def _prepare_conv(op, x, kernel, bias, strides, padding, dilation_rate, groups, data_format, rank,
                  kernel_from_first, allow_causal=False, dy=None):
    """Validates a convolution call; returns channels_last contiguous arrays and the geometry."""
    data_format = check_data_format(op, data_format)
    x = as_float_array(op, "input", x)
    kernel = as_float_array(op, "kernel", _kernel_array(kernel))
    bias = None if bias is None else as_float_array(op, "bias", bias)
    dy = None if dy is None else as_float_array(op, "dy", dy)
    dtype = same_float_dtype(op, input=x, kernel=kernel, bias=bias, dy=dy)
    _check_input(op, x, rank, data_format)
    if kernel.ndim != rank + 2:
        layout = ("(k, c_in, c_out)" if rank == 1 else "(kh, kw, c_in, c_out)") \
            if data_format == "channels_last" else ("(c_out, c_in, k)" if rank == 1 else "(c_out, c_in, kh, kw)")
        raise ValueError(f"{op}: kernel must be {rank + 2}-D {layout}; got shape {shape_str(kernel.shape)}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
        raise TypeError(f"{op}: groups must be an int; got {type(groups).__name__} {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1; got {groups}")
    user_x_shape, user_k_shape = x.shape, kernel.shape
    if data_format == "channels_first":
        x = _to_last(x, rank)
        kernel = kernel_from_first(kernel)
    if any(k < 1 for k in kernel.shape):
        raise ValueError(f"{op}: kernel_size must be >= 1 in every dimension and the kernel must have "
                         f"channels; got kernel shape {shape_str(user_k_shape)}")
    c_in, k_in, c_out = x.shape[-1], kernel.shape[-2], kernel.shape[-1]
    if c_in % groups or c_out % groups:
        raise ValueError(f"{op}: input channels ({c_in}) and output channels ({c_out}) must be divisible "
                         f"by groups ({groups})")
    if k_in * groups != c_in:
        hint = ""
        if data_format == "channels_last" and user_x_shape[1] == k_in * groups:
            hint = "; did you mean data_format='channels_first'?"
        elif data_format == "channels_first" and user_x_shape[-1] == k_in * groups:
            hint = " (data_format is 'channels_first'; did you pass NHWC data?)"
        expects = f"{k_in}" if groups == 1 else f"{k_in} * groups {groups} = {k_in * groups}"
        raise ValueError(f"{op}: input has {c_in} channels (x.shape={shape_str(user_x_shape)}) but the kernel "
                         f"expects {expects} (kernel.shape={shape_str(user_k_shape)}){hint}")
    if bias is not None and bias.shape != (c_out,):
        raise ValueError(f"{op}: bias must have shape ({c_out},); got {shape_str(bias.shape)}")
    spatial = x.shape[1:-1]
    strides, dilations, pads, out_sizes = _conv_geometry(
        op, spatial, kernel.shape[:-2], strides, padding, dilation_rate, rank, allow_causal)
    geometry = _ConvGeometry(strides, dilations, pads, groups, out_sizes)
    out_shape = (x.shape[0],) + out_sizes + (c_out,)
    _checked_count(op, "output", out_shape + (dtype.itemsize,))
    if dy is not None:
        if data_format == "channels_first":
            dy = _to_last(dy, rank)
        if dy.shape != out_shape:
            expected = out_shape if data_format == "channels_last" else (out_shape[0], c_out) + out_sizes
            got = dy.shape if data_format == "channels_last" else _to_first(dy, rank).shape
            raise ValueError(f"{op}: dy must have the forward output's shape {shape_str(expected)}; "
                             f"got {shape_str(got)}")
        dy = _contiguous(dy, dtype)
    x = _contiguous(x, dtype)
    kernel = _contiguous(kernel, dtype)
    bias = None if bias is None else _contiguous(bias, dtype)
    return data_format, dtype, x, kernel, bias, dy, geometry


def _conv_workspace(op, x2, kernel2, dtype, engine_geometry):
    return _engine.conv2d_workspace_size(x2.shape, kernel2.shape, dtype == np.float64, engine_geometry)


# ------------------------------------------- fused activation (conv/dense forward)

_EPILOGUE_NONE = (0, 0.0, 0.0, 0.0)   # pycnn_epilogue: (mode, negative_slope, clamp_lo, clamp_hi)
_EPILOGUE_RELU, _EPILOGUE_LEAKY_RELU, _EPILOGUE_CLAMP = 1, 2, 3
_FUSED_ACTIVATIONS = ("clamp", "leaky_relu", "relu", "relu6")


def _real(op, name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: {name} must be a real number; got {value!r}")
    return float(value)


def _clamp_bounds(op, min_value, max_value):
    lo, hi = _real(op, "min_value", min_value), _real(op, "max_value", max_value)
    if lo != lo or hi != hi or lo > hi:
        raise ValueError(f"{op}: min_value and max_value must be numbers with min_value <= max_value; "
                         f"got min_value={min_value!r}, max_value={max_value!r}")
    return lo, hi


def _epilogue(op, activation, negative_slope, min_value, max_value):
    """The engine's epilogue tuple for the activation fused into a conv/dense forward.

    activation: None, "relu", "leaky_relu" (negative_slope, default 0.2), "relu6" (clamp to [0, 6])
    or "clamp" (min_value and max_value, PyTorch's hardtanh); each parameter only with its activation."""
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"{op}: activation must be None or one of {list(_FUSED_ACTIVATIONS)}; "
                        f"got {type(activation).__name__} {activation!r}")
    if activation is not None and activation not in _FUSED_ACTIVATIONS:
        raise ValueError(f"{op}: activation must be None or one of {list(_FUSED_ACTIVATIONS)}; got {activation!r}")
    if negative_slope is not None and activation != "leaky_relu":
        raise ValueError(f"{op}: negative_slope must be None unless activation is 'leaky_relu'; "
                         f"got negative_slope={negative_slope!r} with activation={activation!r}")
    if (min_value is not None or max_value is not None) and activation != "clamp":
        raise ValueError(f"{op}: min_value and max_value must be None unless activation is 'clamp'; "
                         f"got min_value={min_value!r}, max_value={max_value!r} with activation={activation!r}")
    if activation is None:
        return _EPILOGUE_NONE
    if activation == "relu":
        return (_EPILOGUE_RELU, 0.0, 0.0, 0.0)
    if activation == "leaky_relu":
        slope = 0.2 if negative_slope is None else _negative_slope(op, negative_slope)
        return (_EPILOGUE_LEAKY_RELU, slope, 0.0, 0.0)
    if activation == "relu6":
        return (_EPILOGUE_CLAMP, 0.0, 0.0, 6.0)
    if min_value is None or max_value is None:
        raise ValueError(f"{op}: activation 'clamp' needs min_value and max_value; "
                         f"got min_value={min_value!r}, max_value={max_value!r}")
    return (_EPILOGUE_CLAMP, 0.0) + _clamp_bounds(op, min_value, max_value)


def _conv_forward(op, rank, x, kernel, bias, dtype, geometry, epilogue=_EPILOGUE_NONE, packed_kernel=None):
    """packed_kernel: the PackedKernel that `kernel` (its copy, made contiguous) came from."""
    x2, k2 = _as_2d(x, rank), _kernel_2d(kernel, rank)
    eg = _engine_geometry(rank, geometry.strides, geometry.dilations, geometry.pads, geometry.groups)
    ws_bytes = _conv_workspace(op, x2, k2, dtype, eg)
    out_shape = (x.shape[0],) + geometry.out_sizes + (kernel.shape[-1],)
    y = _empty(op, "output", out_shape, dtype, extra_bytes=ws_bytes)
    packed = None if packed_kernel is None else packed_kernel._packed_for(op, x2, k2, eg)
    _engine.conv2d_forward(x2, k2, bias, _as_2d(y, rank), _workspace(op, ws_bytes), eg, epilogue, packed)
    return y


class PackedKernel:
    """A conv1d / conv2d / dense kernel fixed for many forward calls (inference).

    Pass it where those ops (and their backward functions) take ``kernel``.  It keeps a
    read-only copy of the kernel made when it was created, so later writes to the original
    array do not reach it: make a new one when the weights change.  ``copy=False`` reads
    the array itself (no copy when it is already C-contiguous in native byte order): the
    caller then promises not to change it while the PackedKernel is used.  The first forward whose
    engine path runs the blocked GEMM packs that copy into the GEMM's layout once; later
    forwards read the packed copy instead of packing the kernel again on every call (at
    batches of a few images or rows, that packing takes 15-45% of a deep convolution's or
    a dense layer's time).  conv2d's Winograd option likewise transforms the filters once per
    tile size.  Results are bitwise those of the plain kernel.  Layers use one
    inside ``Model.predict`` and ``Model.evaluate`` (see pycnn.layers.base).
    """

    __slots__ = ("kernel", "_packed", "_packed_groups", "_winograd")

    def __init__(self, kernel, *, copy=True):
        kernel = as_float_array("PackedKernel", "kernel", kernel)
        native = kernel.dtype.newbyteorder("=")
        kernel = np.array(kernel, dtype=native, order="C") if copy else np.ascontiguousarray(kernel, dtype=native)
        self.kernel = kernel.view()   # read-only, whether or not it shares the caller's memory
        self.kernel.flags.writeable = False
        self._packed = None          # the engine's packed filters (uint8), once a forward read them
        self._packed_groups = None   # the groups they were packed for
        self._winograd = {}          # Winograd tile -> the transformed filters (conv2d's algorithm option)

    def __reduce__(self):
        # Pickled or deep-copied as the kernel alone: the engine's copies depend on the
        # process's GEMM kernel (PYCNN_ISA), so they are made again where they are used.
        return (PackedKernel, (self.kernel,))

    def __repr__(self):
        state = "packed" if self._packed is not None else "not packed yet"
        return f"<PackedKernel shape={shape_str(self.kernel.shape)} dtype={self.kernel.dtype.name} ({state})>"

    def _packed_for(self, op, x2, k2, engine_geometry):
        """The packed filters for a forward of x2 by k2 (4-D views), packing them at the first
        call whose path reads them; None while no call has (the engine then reads k2)."""
        groups = engine_geometry[-1]
        if self._packed is not None and self._packed_groups == groups:
            return self._packed
        nbytes = _engine.conv2d_packed_filters_size(x2.shape, k2.shape, k2.dtype == np.float64, engine_geometry)
        if nbytes == 0:
            return None
        packed = _packing_buffer(op, nbytes)
        _engine.conv2d_pack_filters(x2, k2, packed, engine_geometry)
        self._packed, self._packed_groups = packed, groups
        return packed

    def _winograd_filters(self, op, x, k, engine_geometry, tile):
        """The Winograd-transformed filters for tile, made at the first forward that asks."""
        transformed = self._winograd.get(tile)
        if transformed is None:
            nbytes = _engine.conv2d_winograd_filters_size(x.shape, k.shape, k.dtype == np.float64,
                                                          engine_geometry, tile)
            transformed = _packing_buffer(op, nbytes)
            _engine.conv2d_winograd_transform_filters(x, k, transformed, engine_geometry, tile)
            self._winograd[tile] = transformed
        return transformed


def _packing_buffer(op, nbytes):
    """Bytes for a PackedKernel's engine copy, cache-line aligned like the engine's own buffers."""
    _reserve(op, "packed kernel", nbytes)
    raw = np.empty(nbytes + 64, dtype=np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + nbytes]


def _kernel_array(kernel):
    """The array a kernel argument stands for: a PackedKernel's copy, or the argument."""
    return kernel.kernel if isinstance(kernel, PackedKernel) else kernel


def _conv_backward(op, rank, x, kernel, bias, dy, dtype, geometry, compute_dx=True):
    x2, k2, dy2 = _as_2d(x, rank), _kernel_2d(kernel, rank), _as_2d(dy, rank)
    eg = _engine_geometry(rank, geometry.strides, geometry.dilations, geometry.pads, geometry.groups)
    ws_bytes = _conv_workspace(op, x2, k2, dtype, eg)
    dx = _empty(op, "dx", x.shape, dtype, extra_bytes=ws_bytes + kernel.nbytes) if compute_dx else None
    dkernel = np.empty(kernel.shape, dtype)
    dbias = None if bias is None else np.empty(bias.shape, dtype)
    workspace = _workspace(op, ws_bytes)
    if compute_dx:
        _engine.conv2d_backward_data(dy2, k2, _as_2d(dx, rank), workspace, eg)
    _engine.conv2d_backward_filter(x2, dy2, _kernel_2d(dkernel, rank), dbias, workspace, eg)
    return dx, dkernel, dbias


def _oihw_to_hwio(kernel):
    return np.moveaxis(kernel, (0, 1), (-1, -2))


def _hwio_to_oihw(kernel):
    return np.moveaxis(kernel, (-1, -2), (0, 1))


def _conv(op, rank, x, kernel, bias, strides, padding, dilation_rate, groups, data_format, dy=None,
          compute_dx=True, epilogue=_EPILOGUE_NONE):
    packed_kernel = kernel if isinstance(kernel, PackedKernel) else None
    data_format, dtype, x, kernel, bias, dy, geometry = _prepare_conv(
        op, x, kernel, bias, strides, padding, dilation_rate, groups, data_format, rank,
        _oihw_to_hwio, allow_causal=(rank == 1), dy=dy)
    if dy is None:
        y = _conv_forward(op, rank, x, kernel, bias, dtype, geometry, epilogue, packed_kernel)
        return _to_first(y, rank) if data_format == "channels_first" else y
    dx, dkernel, dbias = _conv_backward(op, rank, x, kernel, bias, dy, dtype, geometry, compute_dx)
    if data_format == "channels_first":
        dx = None if dx is None else _to_first(dx, rank)
        dkernel = _hwio_to_oihw(dkernel)
    return dx, dkernel, dbias


def conv1d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
           data_format="channels_last", *, activation=None, negative_slope=None, min_value=None, max_value=None):
    """1-D cross-correlation: x (N, L, C_in), kernel (k, C_in / groups, C_out) -> (N, L_out, C_out).

    padding: "valid", "same", "causal" (left-pad so output t sees inputs <= t),
    an int, or (before, after).  activation: see conv2d."""
    epilogue = _epilogue("conv1d", activation, negative_slope, min_value, max_value)
    return _conv("conv1d", 1, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
                 epilogue=epilogue)


def conv1d_backward(dy, x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
                    data_format="channels_last", *, compute_dx=True):
    """Gradients (dx, dkernel, dbias) of conv1d given dy; dbias is None without bias.
    compute_dx=False skips the input gradient (dx is None), e.g. for a network's first layer."""
    return _conv("conv1d_backward", 1, x, kernel, bias, strides, padding, dilation_rate, groups,
                 data_format, dy=dy, compute_dx=compute_dx)


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
           data_format="channels_last", algorithm="auto", *, activation=None, negative_slope=None, min_value=None,
           max_value=None):
    """2-D cross-correlation (what CNN layers compute):
    x (N, H, W, C_in), kernel (kh, kw, C_in / groups, C_out) -> (N, OH, OW, C_out),
    OH = floor((H + pad_top + pad_bottom - dilation * (kh - 1) - 1) / stride) + 1.

    algorithm: "auto" (the default: exact to float rounding) or, as an explicit
    option for 3x3 kernels with strides 1, dilation_rate 1 and groups 1,
    "winograd_2x2" / "winograd_4x4" (Winograd F(2x2,3x3) / F(4x4,3x3): fewer
    multiplies, larger rounding error, see _conv2d_winograd).

    activation is applied to each output right after the bias, with no extra pass over memory,
    bitwise equal to the separate op: None, "relu", "leaky_relu" (negative_slope, default 0.2),
    "relu6" (clamp to [0, 6]) or "clamp" (min_value, max_value: PyTorch's hardtanh, Keras's
    relu(max_value=...) when min_value is 0).  The matching backward ops accept the output in
    place of the pre-activation (relu_backward, leaky_relu_backward with negative_slope >= 0,
    clamp_backward)."""
    epilogue = _epilogue("conv2d", activation, negative_slope, min_value, max_value)
    tile = _winograd_tile("conv2d", algorithm)
    if tile is not None:
        return _conv2d_winograd("conv2d", tile, algorithm, x, kernel, bias, strides, padding, dilation_rate,
                                groups, data_format, epilogue)
    return _conv("conv2d", 2, x, kernel, bias, strides, padding, dilation_rate, groups, data_format,
                 epilogue=epilogue)


def conv2d_backward(dy, x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1,
                    data_format="channels_last", *, compute_dx=True):
    """Gradients (dx, dkernel, dbias) of conv2d given dy.  dx is the
    "full" correlation of dy with the flipped kernel (the backward pass is a
    convolution); dkernel correlates the input with dy.  compute_dx=False
    skips the input gradient (dx is None), e.g. for a network's first layer."""
    return _conv("conv2d_backward", 2, x, kernel, bias, strides, padding, dilation_rate, groups,
                 data_format, dy=dy, compute_dx=compute_dx)


# conv2d's algorithm argument: "auto", or a Winograd output tile size.
CONV2D_ALGORITHMS = {"auto": None, "winograd_2x2": 2, "winograd_4x4": 4}


def _winograd_tile(op, algorithm):
    """The Winograd tile size an algorithm name asks for (None for "auto")."""
    choices = ", ".join(repr(a) for a in CONV2D_ALGORITHMS)
    if not isinstance(algorithm, str):
        raise TypeError(f"{op}: algorithm must be a str, one of {choices}; got {type(algorithm).__name__} "
                        f"{algorithm!r}")
    if algorithm not in CONV2D_ALGORITHMS:
        raise ValueError(f"{op}: algorithm must be one of {choices}; got {algorithm!r}")
    return CONV2D_ALGORITHMS[algorithm]


def _conv2d_winograd(op, tile, algorithm, x, kernel, bias, strides, padding, dilation_rate, groups,
                     data_format, epilogue=_EPILOGUE_NONE):
    """conv2d's forward by Winograd F(tile x tile, 3x3) (csrc/conv_winograd.c).  Each
    output's rounding error grows with the inputs of its whole (tile + 2)^2 input tile:
    |y - y_exact| <= gamma * (the same algorithm on absolute values), up to 4x (2x2)
    or 114x (4x4) the direct convolution's weighting (tests/test_winograd.py)."""
    packed_kernel = kernel if isinstance(kernel, PackedKernel) else None
    data_format, dtype, x, kernel, bias, _, geometry = _prepare_conv(
        op, x, kernel, bias, strides, padding, dilation_rate, groups, data_format, 2, _oihw_to_hwio)
    kernel_size = tuple(int(k) for k in kernel.shape[:2])
    if kernel_size != (3, 3) or geometry.strides != (1, 1) or geometry.dilations != (1, 1) or geometry.groups != 1:
        raise ValueError(f"{op}: algorithm={algorithm!r} needs a 3x3 kernel, strides 1, dilation_rate 1 and "
                         f"groups 1; got kernel {shape_str(kernel_size)}, strides {shape_str(geometry.strides)}, "
                         f"dilation_rate {shape_str(geometry.dilations)}, groups {geometry.groups} "
                         f"(use algorithm='auto' for this layer)")
    eg = _engine_geometry(2, geometry.strides, geometry.dilations, geometry.pads, geometry.groups)
    ws_bytes = _engine.conv2d_winograd_workspace_size(x.shape, kernel.shape, dtype == np.float64, eg, tile)
    y = _empty(op, "output", (x.shape[0],) + geometry.out_sizes + (kernel.shape[-1],), dtype,
               extra_bytes=ws_bytes)
    transformed = None if packed_kernel is None else packed_kernel._winograd_filters(op, x, kernel, eg, tile)
    _engine.conv2d_winograd_forward(x, kernel, bias, y, _workspace(op, ws_bytes), eg, tile, epilogue, transformed)
    return _to_first(y, 2) if data_format == "channels_first" else y


# Depthwise kernels (kh, kw, c_in, multiplier) are grouped HWIO kernels (kh, kw, 1, c_in * multiplier).

def _depthwise_from_first(kernel):
    # PyTorch (c_in * m, 1, kh, kw) -> (kh, kw, 1, c_in * m)
    return np.moveaxis(kernel, (0, 1), (-1, -2))


def _depthwise(op, x, kernel, bias, strides, padding, dilation_rate, data_format, dy=None,
               epilogue=_EPILOGUE_NONE):
    data_format = check_data_format(op, data_format)
    x_arr = as_float_array(op, "input", x)
    k_arr = as_float_array(op, "kernel", kernel)
    if k_arr.ndim != 4:
        layout = "(kh, kw, c_in, depth_multiplier)" if data_format == "channels_last" else \
            "(c_in * depth_multiplier, 1, kh, kw)"
        raise ValueError(f"{op}: kernel must be 4-D {layout}; got shape {shape_str(k_arr.shape)}")
    _check_input(op, x_arr, 2, data_format)
    c_in = x_arr.shape[1] if data_format == "channels_first" else x_arr.shape[-1]
    if data_format == "channels_last":
        if k_arr.shape[2] != c_in:
            hint = "; did you mean data_format='channels_first'?" if x_arr.shape[1] == k_arr.shape[2] else ""
            raise ValueError(f"{op}: input has {c_in} channels (x.shape={shape_str(x_arr.shape)}) but the kernel "
                             f"expects {k_arr.shape[2]} (kernel.shape={shape_str(k_arr.shape)}){hint}")
        multiplier = k_arr.shape[3]
        grouped = k_arr.reshape(k_arr.shape[:2] + (1, c_in * multiplier))
    else:
        if k_arr.shape[1] != 1 or k_arr.shape[0] % max(c_in, 1):
            raise ValueError(f"{op}: kernel must have shape (c_in * depth_multiplier, 1, kh, kw) with "
                             f"c_in={c_in}; got {shape_str(k_arr.shape)}")
        grouped = k_arr
    result = _conv(op, 2, x_arr, grouped, bias, strides, padding, dilation_rate, c_in, data_format, dy=dy,
                   epilogue=epilogue)
    if dy is None:
        return result
    dx, dgrouped, dbias = result
    return dx, dgrouped.reshape(k_arr.shape), dbias


def depthwise_conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1,
                     data_format="channels_last", *, activation=None, negative_slope=None, min_value=None,
                     max_value=None):
    """Each input channel convolved with its own depth_multiplier filters:
    kernel (kh, kw, c_in, depth_multiplier); output channel c * depth_multiplier + m.
    activation: see conv2d."""
    epilogue = _epilogue("depthwise_conv2d", activation, negative_slope, min_value, max_value)
    return _depthwise("depthwise_conv2d", x, kernel, bias, strides, padding, dilation_rate, data_format,
                      epilogue=epilogue)


def depthwise_conv2d_backward(dy, x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1,
                              data_format="channels_last"):
    """Gradients (dx, dkernel, dbias) of depthwise_conv2d."""
    return _depthwise("depthwise_conv2d_backward", x, kernel, bias, strides, padding, dilation_rate,
                      data_format, dy=dy)


def _transpose_geometry(op, in_sizes, kernel_sizes, strides, padding, output_padding, dilation_rate):
    """Keras's output sizes and the rows cut from the start of the full output."""
    strides = int_tuple(op, "strides", strides, 2)
    dilations = int_tuple(op, "dilation_rate", dilation_rate, 2)
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"{op}: padding must be 'valid' or 'same'; got {padding!r}")
    padding = padding.lower()
    if output_padding is not None:
        output_padding = int_tuple(op, "output_padding", output_padding, 2, minimum=0)
        for op_, s, d in zip(output_padding, strides, dilations):
            if op_ >= max(s, d):
                raise ValueError(f"{op}: output_padding {shape_str(output_padding)} must be smaller than "
                                 f"stride {shape_str(strides)} or dilation {shape_str(dilations)}")
    out_sizes, crops = [], []
    for i, (n, k, s, d) in enumerate(zip(in_sizes, kernel_sizes, strides, dilations)):
        effective = d * (k - 1) + 1
        if (n - 1) * s + effective > _INT64_MAX:
            raise ValueError(f"{op}: output size overflows int64 (({n} - 1) * stride {s} + "
                             f"effective kernel {effective})")
        extra = None if output_padding is None else output_padding[i]
        if padding == "valid":
            out = (n - 1) * s + effective + (max(effective, s) - effective if extra is None else extra)
        elif extra is None:
            out = n * s
        else:
            out = (n - 1) * s + effective % 2 + extra
        # The output is the span of all scattered taps, (n - 1) * s + k_eff, cropped at the
        # start by the "before" padding of the forward "same" conv that maps it back
        # (TensorFlow's rule; "valid" crops nothing).
        crop = max((n - 1) * s + effective - out, 0) // 2 if padding == "same" else 0
        if out < 1:
            raise ValueError(f"{op}: output size would be {out} < 1 for input size {n}, kernel {k}, "
                             f"stride {s}, output_padding {extra}")
        out_sizes.append(out)
        crops.append(crop)
    return strides, dilations, tuple(out_sizes), tuple(crops)


def _transpose_from_first(kernel):
    # PyTorch (c_in, filters, kh, kw) -> Keras (kh, kw, filters, c_in)
    return np.transpose(kernel, (2, 3, 1, 0))


def _conv_transpose(op, x, kernel, bias, strides, padding, output_padding, dilation_rate, data_format,
                    dy=None):
    data_format = check_data_format(op, data_format)
    x = as_float_array(op, "input", x)
    kernel = as_float_array(op, "kernel", kernel)
    bias = None if bias is None else as_float_array(op, "bias", bias)
    dy = None if dy is None else as_float_array(op, "dy", dy)
    dtype = same_float_dtype(op, input=x, kernel=kernel, bias=bias, dy=dy)
    _check_input(op, x, 2, data_format)
    if kernel.ndim != 4:
        layout = "(kh, kw, filters, c_in)" if data_format == "channels_last" else "(c_in, filters, kh, kw)"
        raise ValueError(f"{op}: kernel must be 4-D {layout}; got shape {shape_str(kernel.shape)}")
    user_x_shape, user_k_shape = x.shape, kernel.shape
    if data_format == "channels_first":
        x = _to_last(x, 2)
        kernel = _transpose_from_first(kernel)
    if any(k < 1 for k in kernel.shape):
        raise ValueError(f"{op}: kernel_size must be >= 1 in every dimension; got kernel shape "
                         f"{shape_str(user_k_shape)}")
    c_in, filters = x.shape[-1], kernel.shape[2]
    if kernel.shape[3] != c_in:
        raise ValueError(f"{op}: input has {c_in} channels (x.shape={shape_str(user_x_shape)}) but the kernel "
                         f"expects {kernel.shape[3]} (kernel.shape={shape_str(user_k_shape)})")
    if bias is not None and bias.shape != (filters,):
        raise ValueError(f"{op}: bias must have shape ({filters},); got {shape_str(bias.shape)}")
    strides, dilations, out_sizes, crops = _transpose_geometry(
        op, x.shape[1:3], kernel.shape[:2], strides, padding, output_padding, dilation_rate)
    out_shape = (x.shape[0],) + out_sizes + (filters,)
    _checked_count(op, "output", out_shape + (dtype.itemsize,))
    engine_geometry = (strides[0], strides[1], dilations[0], dilations[1], crops[0], crops[1])
    ws_bytes = _engine.conv2d_transpose_workspace_size(x.shape, kernel.shape[:3], out_sizes,
                                                       dtype == np.float64, engine_geometry)
    x = _contiguous(x, dtype)
    kernel = _contiguous(kernel, dtype)
    bias = None if bias is None else _contiguous(bias, dtype)
    if dy is None:
        y = _empty(op, "output", out_shape, dtype, extra_bytes=ws_bytes)
        _engine.conv2d_transpose_forward(x, kernel, bias, y, _workspace(op, ws_bytes), engine_geometry)
        return _to_first(y, 2) if data_format == "channels_first" else y
    if data_format == "channels_first":
        dy = _to_last(dy, 2)
    if dy.shape != out_shape:
        raise ValueError(f"{op}: dy must have the forward output's shape {shape_str(out_shape)} "
                         f"(channels_last); got {shape_str(dy.shape)}")
    dy = _contiguous(dy, dtype)
    dx = _empty(op, "dx", x.shape, dtype, extra_bytes=ws_bytes)
    dkernel = np.empty(kernel.shape, dtype)
    dbias = None if bias is None else np.empty(bias.shape, dtype)
    _engine.conv2d_transpose_backward(x, kernel, dy, dx, dkernel, dbias, _workspace(op, ws_bytes),
                                      engine_geometry)
    if data_format == "channels_first":
        dx, dkernel = _to_first(dx, 2), np.transpose(dkernel, (3, 2, 0, 1))
    return dx, dkernel, dbias


def conv2d_transpose(x, kernel, bias=None, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                     data_format="channels_last"):
    """Transposed ("up-") convolution, the adjoint of conv2d w.r.t. its input.

    kernel is Keras's (kh, kw, filters, c_in).  Output size per dimension
    (Keras): valid -> (n - 1) * s + max(k_eff, s) (or + k_eff + output_padding);
    same -> n * s (or (n - 1) * s + k_eff % 2 + output_padding)."""
    return _conv_transpose("conv2d_transpose", x, kernel, bias, strides, padding, output_padding,
                           dilation_rate, data_format)


def conv2d_transpose_backward(dy, x, kernel, bias=None, strides=1, padding="valid", output_padding=None,
                              dilation_rate=1, data_format="channels_last"):
    """Gradients (dx, dkernel, dbias) of conv2d_transpose."""
    return _conv_transpose("conv2d_transpose_backward", x, kernel, bias, strides, padding, output_padding,
                           dilation_rate, data_format, dy=dy)


# ------------------------------------------------------------------ im2col

def _im2col_geometry(op, image_shape, kernel_size, strides, padding, dilation_rate):
    kernel_size = int_tuple(op, "kernel_size", kernel_size, 2)
    strides, dilations, pads, out_sizes = _conv_geometry(
        op, image_shape[1:3], kernel_size, strides, padding, dilation_rate, 2)
    cols_shape = (image_shape[0],) + out_sizes + (kernel_size[0] * kernel_size[1] * image_shape[3],)
    _checked_count(op, "cols", cols_shape + (8,))
    return kernel_size, _engine_geometry(2, strides, dilations, pads, 1), cols_shape


def im2col(x, kernel_size, strides=1, padding="valid", dilation_rate=1):
    """Patches of x (N, H, W, C) as rows: (N, OH, OW, kh * kw * C), patch order (kh, kw, C).

    conv2d(x, w) equals im2col(x, ...) @ w.reshape(-1, c_out): the forward
    pass of a convolution layer is one matrix multiplication."""
    op = "im2col"
    x = as_float_array(op, "x", x)
    _check_input(op, x, 2, "channels_last", what="x")
    kernel_size, geometry, cols_shape = _im2col_geometry(op, x.shape, kernel_size, strides, padding,
                                                         dilation_rate)
    cols = _empty(op, "cols", cols_shape, x.dtype.newbyteorder("="))
    _engine.im2col(_contiguous(x, cols.dtype), cols, kernel_size, geometry)
    return cols


def col2im(cols, input_shape, kernel_size, strides=1, padding="valid", dilation_rate=1):
    """Adjoint of im2col: sums each patch row of cols back into an (N, H, W, C) array."""
    op = "col2im"
    cols = as_float_array(op, "cols", cols)
    input_shape = int_tuple(op, "input_shape", input_shape, 4, minimum=0)
    if any(s < 1 for s in input_shape[1:]):
        raise ValueError(f"{op}: input_shape spatial size and channels must be >= 1; got "
                         f"{shape_str(input_shape)}")
    _checked_count(op, "input_shape", input_shape + (8,))
    kernel_size, geometry, expected = _im2col_geometry(op, input_shape, kernel_size, strides, padding,
                                                       dilation_rate)
    if cols.shape != expected:
        raise ValueError(f"col2im: cols must have shape {shape_str(expected)} for input_shape "
                         f"{shape_str(input_shape)}; got {shape_str(cols.shape)}")
    x = _empty(op, "output", input_shape, cols.dtype.newbyteorder("="))
    _engine.col2im(_contiguous(cols, x.dtype), x, kernel_size, geometry)
    return x


# ----------------------------------------------------------------- pooling

_POOL_MAX, _POOL_AVG = 0, 1


def _pool(op, mode, rank, x, pool_size, strides, padding, data_format, dy=None, return_indices=False,
          indices=None):
    data_format = check_data_format(op, data_format)
    x = as_float_array(op, "input", x)
    dy = None if dy is None else as_float_array(op, "dy", dy)
    dtype = same_float_dtype(op, input=x, dy=dy)
    _check_input(op, x, rank, data_format)
    if data_format == "channels_first":
        x = _to_last(x, rank)
    pool_size = int_tuple(op, "pool_size", pool_size, rank)
    strides = pool_size if strides is None else int_tuple(op, "strides", strides, rank)
    spatial = x.shape[1:-1]
    user_padding = padding
    pads = explicit_padding(op, padding, rank, spatial, pool_size, strides, (1,) * rank)
    if not isinstance(user_padding, str):
        for (before, after), k in zip(pads, pool_size):
            if max(before, after) > k // 2:
                raise ValueError(f"{op}: pad should be at most half of effective kernel size, but got "
                                 f"pad={max(before, after)}, kernel_size={k}")
    out_sizes = []
    for n, k, s, (before, after) in zip(spatial, pool_size, strides, pads):
        if k > n + before + after:
            raise ValueError(f"{op}: pool_size {shape_str(pool_size)} is larger than the padded input "
                             f"{shape_str(tuple(nn + b + a for nn, (b, a) in zip(spatial, pads)))}; "
                             f"output would be empty")
        out_sizes.append((n + before + after - k) // s + 1)
    out_shape = (x.shape[0],) + tuple(out_sizes) + (x.shape[-1],)
    geometry = (mode,) + _pool_engine_geometry(rank, pool_size, strides, pads)
    if return_indices or indices is not None:
        _check_index_plane(op, spatial)
    if dy is None:
        x = _contiguous(x, dtype)
        y = _empty(op, "output", out_shape, dtype)
        if not return_indices:
            _engine.pool2d_forward(_as_2d(x, rank), _as_2d(y, rank), geometry)
            return _to_first(y, rank) if data_format == "channels_first" else y
        positions = _empty(op, "indices", out_shape, np.int32, extra_bytes=y.nbytes)
        _engine.pool2d_forward_indices(_as_2d(x, rank), _as_2d(y, rank), _as_2d(positions, rank), geometry)
        if data_format == "channels_first":
            return _to_first(y, rank), _to_first(positions, rank)
        return y, positions
    if data_format == "channels_first":
        dy = _to_last(dy, rank)
    if dy.shape != out_shape:
        raise ValueError(f"{op}: dy must have the forward output's shape {shape_str(out_shape)} "
                         f"(channels_last); got {shape_str(dy.shape)}")
    dy = _contiguous(dy, dtype)
    dx = _empty(op, "dx", x.shape, dtype)
    if indices is None:
        _engine.pool2d_backward(_as_2d(_contiguous(x, dtype), rank), _as_2d(dy, rank), _as_2d(dx, rank), geometry)
    else:
        # x only gives the input's shape here: it is neither read nor copied.
        indices = _check_indices(op, indices, out_shape, data_format, rank)
        _engine.pool2d_backward_indices(_as_2d(indices, rank), _as_2d(dy, rank), _as_2d(dx, rank), geometry, op)
    return _to_first(dx, rank) if data_format == "channels_first" else dx


_INT32_MAX = 2**31 - 1


def _check_index_plane(op, spatial):
    positions = _checked_count(op, "image plane", spatial)
    if positions > _INT32_MAX:
        raise ValueError(f"{op}: the image plane must have at most 2**31 - 1 positions for int32 indices; got "
                         f"{' * '.join(str(n) for n in spatial)} = {positions}")


def _check_indices(op, indices, out_shape, data_format, rank):
    """The stored positions as a C-contiguous native int32 array in channels_last."""
    if not isinstance(indices, np.ndarray):
        raise TypeError(f"{op}: indices must be the int32 NumPy array returned with return_indices=True; "
                        f"got {type(indices).__name__}")
    if indices.dtype.kind != "i" or indices.dtype.itemsize != 4:
        raise TypeError(f"{op}: indices must have dtype int32 (as returned with return_indices=True); "
                        f"got {indices.dtype}")
    expected = out_shape if data_format == "channels_last" else (out_shape[0], out_shape[-1]) + out_shape[1:-1]
    if indices.shape != expected:
        raise ValueError(f"{op}: indices must have the forward output's shape {shape_str(expected)}; "
                         f"got {shape_str(indices.shape)}")
    if data_format == "channels_first":
        indices = _to_last(indices, rank)
    return _contiguous(indices, np.int32)


def _pool_engine_geometry(rank, pool_size, strides, pads):
    if rank == 1:
        pool_size, strides, pads = (1,) + pool_size, (1,) + strides, ((0, 0),) + pads
    return (pool_size[0], pool_size[1], strides[0], strides[1], pads[0][0], pads[0][1], pads[1][0], pads[1][1])


def max_pool1d(x, pool_size, strides=None, padding="valid", data_format="channels_last", return_indices=False):
    """Max over windows of (N, L, C); padded cells never win; NaN propagates.

    return_indices=True returns (y, indices): int32, shaped like y, each the
    position along L of the cell its output came from (the one
    max_pool1d_backward sends the gradient to)."""
    return _pool("max_pool1d", _POOL_MAX, 1, x, pool_size, strides, padding, data_format,
                 return_indices=return_indices)


def max_pool1d_backward(dy, x, pool_size, strides=None, padding="valid", data_format="channels_last",
                        indices=None):
    """dx; with the forward's indices, x only gives the input shape (the same dx, faster)."""
    return _pool("max_pool1d_backward", _POOL_MAX, 1, x, pool_size, strides, padding, data_format, dy=dy,
                 indices=indices)


def max_pool2d(x, pool_size, strides=None, padding="valid", data_format="channels_last", return_indices=False):
    """Max over windows of (N, H, W, C); strides default to pool_size.

    return_indices=True returns (y, indices): int32, shaped like y, each the
    position iy * W + ix within its image plane (per image and channel, as
    PyTorch's) of the cell its output came from: the first maximal cell of the
    window in row-major order, the first NaN if there is one, never a padded
    cell.  The plane must have at most 2**31 - 1 positions."""
    return _pool("max_pool2d", _POOL_MAX, 2, x, pool_size, strides, padding, data_format,
                 return_indices=return_indices)


def max_pool2d_backward(dy, x, pool_size, strides=None, padding="valid", data_format="channels_last",
                        indices=None):
    """dx: each dy goes to the first maximal cell of its window (row-major order).

    With indices from max_pool2d(..., return_indices=True) the cells are read
    from them instead of being found again in x (x then only gives the input
    shape); dx is bit for bit the same.  An index outside its own window is a
    ValueError."""
    return _pool("max_pool2d_backward", _POOL_MAX, 2, x, pool_size, strides, padding, data_format, dy=dy,
                 indices=indices)


def avg_pool1d(x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    """Mean over windows of (N, L, C); padded cells are excluded from the divisor (Keras)."""
    return _pool("avg_pool1d", _POOL_AVG, 1, x, pool_size, strides, padding, data_format)


def avg_pool1d_backward(dy, x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    return _pool("avg_pool1d_backward", _POOL_AVG, 1, x, pool_size, strides, padding, data_format, dy=dy)


def avg_pool2d(x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    """Mean over windows of (N, H, W, C); padded cells are excluded from the divisor (Keras)."""
    return _pool("avg_pool2d", _POOL_AVG, 2, x, pool_size, strides, padding, data_format)


def avg_pool2d_backward(dy, x, pool_size, strides=None, padding="valid", data_format="channels_last"):
    return _pool("avg_pool2d_backward", _POOL_AVG, 2, x, pool_size, strides, padding, data_format, dy=dy)


def _global_pool(op, mode, rank, x, data_format, keepdims, dy=None):
    data_format = check_data_format(op, data_format)
    x_arr = as_float_array(op, "input", x)
    _check_input(op, x_arr, rank, data_format)
    spatial = x_arr.shape[2:] if data_format == "channels_first" else x_arr.shape[1:-1]
    if dy is not None:
        dy = as_float_array(op, "dy", dy)
        n, c = x_arr.shape[0], (x_arr.shape[1] if data_format == "channels_first" else x_arr.shape[-1])
        kept = (n, c) + (1,) * rank if data_format == "channels_first" else (n,) + (1,) * rank + (c,)
        expected = kept if keepdims else (n, c)
        if dy.shape != expected:
            raise ValueError(f"{op}: dy must have the forward output's shape {shape_str(expected)}; "
                             f"got {shape_str(dy.shape)}")
        dy = dy.reshape(kept)
        return _pool(op, mode, rank, x_arr, spatial, None, "valid", data_format, dy=dy)
    y = _pool(op, mode, rank, x_arr, spatial, None, "valid", data_format)
    channels = y.shape[1] if data_format == "channels_first" else y.shape[-1]
    return y if keepdims else y.reshape(y.shape[0], channels)


def global_avg_pool1d(x, data_format="channels_last", keepdims=False):
    """Mean over the length axis: (N, L, C) -> (N, C)."""
    return _global_pool("global_avg_pool1d", _POOL_AVG, 1, x, data_format, keepdims)


def global_avg_pool1d_backward(dy, x, data_format="channels_last", keepdims=False):
    return _global_pool("global_avg_pool1d_backward", _POOL_AVG, 1, x, data_format, keepdims, dy=dy)


def global_avg_pool2d(x, data_format="channels_last", keepdims=False):
    """Mean over H and W: (N, H, W, C) -> (N, C)."""
    return _global_pool("global_avg_pool2d", _POOL_AVG, 2, x, data_format, keepdims)


def global_avg_pool2d_backward(dy, x, data_format="channels_last", keepdims=False):
    return _global_pool("global_avg_pool2d_backward", _POOL_AVG, 2, x, data_format, keepdims, dy=dy)


def global_max_pool1d(x, data_format="channels_last", keepdims=False):
    """Max over the length axis: (N, L, C) -> (N, C)."""
    return _global_pool("global_max_pool1d", _POOL_MAX, 1, x, data_format, keepdims)


def global_max_pool1d_backward(dy, x, data_format="channels_last", keepdims=False):
    return _global_pool("global_max_pool1d_backward", _POOL_MAX, 1, x, data_format, keepdims, dy=dy)


def global_max_pool2d(x, data_format="channels_last", keepdims=False):
    """Max over H and W: (N, H, W, C) -> (N, C)."""
    return _global_pool("global_max_pool2d", _POOL_MAX, 2, x, data_format, keepdims)


def global_max_pool2d_backward(dy, x, data_format="channels_last", keepdims=False):
    return _global_pool("global_max_pool2d_backward", _POOL_MAX, 2, x, data_format, keepdims, dy=dy)


# ------------------------------------------------------------------- dense

def _dense(op, x, kernel, bias, dy=None, compute_dx=True, epilogue=_EPILOGUE_NONE):
    packed_kernel = kernel if isinstance(kernel, PackedKernel) else None
    x = as_float_array(op, "input", x)
    kernel = as_float_array(op, "kernel", _kernel_array(kernel))
    bias = None if bias is None else as_float_array(op, "bias", bias)
    dy = None if dy is None else as_float_array(op, "dy", dy)
    dtype = same_float_dtype(op, input=x, kernel=kernel, bias=bias, dy=dy)
    if kernel.ndim != 2:
        raise ValueError(f"{op}: kernel must be 2-D (in_features, units); got shape {shape_str(kernel.shape)}")
    if x.ndim < 1:
        raise ValueError(f"{op}: input must have at least 1 dimension (..., {kernel.shape[0]}); got a scalar")
    features, units = kernel.shape
    if x.shape[-1] != features:
        raise ValueError(f"{op}: expected {features} input features (kernel.shape={shape_str(kernel.shape)}); "
                         f"got {x.shape[-1]} (x.shape={shape_str(x.shape)})")
    if features < 1 or units < 1:
        raise ValueError(f"{op}: kernel dimensions must be >= 1; got shape {shape_str(kernel.shape)}")
    if bias is not None and bias.shape != (units,):
        raise ValueError(f"{op}: bias must have shape ({units},); got {shape_str(bias.shape)}")
    lead = x.shape[:-1]
    rows = _checked_count(op, "input", lead)
    # A dense layer is a 1x1 convolution over `rows` one-pixel images.
    x4 = _contiguous(x, dtype).reshape(rows, 1, 1, features)
    k4 = _contiguous(kernel, dtype).reshape(1, 1, features, units)
    b = None if bias is None else _contiguous(bias, dtype)
    geometry = _ConvGeometry((1, 1), (1, 1), ((0, 0), (0, 0)), 1, (1, 1))
    if dy is None:
        return _conv_forward(op, 2, x4, k4, b, dtype, geometry, epilogue, packed_kernel).reshape(lead + (units,))
    if dy.shape != lead + (units,):
        raise ValueError(f"{op}: dy must have shape {shape_str(lead + (units,))}; got {shape_str(dy.shape)}")
    dy4 = _contiguous(dy, dtype).reshape(rows, 1, 1, units)
    dx, dkernel, dbias = _conv_backward(op, 2, x4, k4, b, dy4, dtype, geometry, compute_dx)
    return None if dx is None else dx.reshape(x.shape), dkernel.reshape(kernel.shape), dbias


def dense(x, kernel, bias=None, *, activation=None, negative_slope=None, min_value=None, max_value=None):
    """x (..., in) @ kernel (in, out) + bias (out,); activation: see conv2d."""
    return _dense("dense", x, kernel, bias, epilogue=_epilogue("dense", activation, negative_slope, min_value,
                                                                max_value))


def dense_backward(dy, x, kernel, bias=None, *, compute_dx=True):
    """Gradients (dx, dkernel, dbias) of dense; dbias is None without bias.
    compute_dx=False skips the input gradient (dx is None)."""
    return _dense("dense_backward", x, kernel, bias, dy=dy, compute_dx=compute_dx)


# ---------------------------------------------------- activations and losses

def _elementwise_pair(op, dy, x):
    dy = as_float_array(op, "dy", dy)
    x = as_float_array(op, "input", x)
    if dy.dtype.type is not x.dtype.type:   # float32 vs float64, whatever the byte order
        same_float_dtype(op, dy=dy, input=x)
    if dy.shape != x.shape:
        raise ValueError(f"{op}: dy must have the input's shape {shape_str(x.shape)}; got {shape_str(dy.shape)}")
    return dy, x


_RELU, _LEAKY_RELU, _SIGMOID, _TANH, _CLAMP = 0, 1, 2, 3, 4   # pycnn_activation_mode


def _negative_slope(op, negative_slope):
    if isinstance(negative_slope, (bool, np.bool_)) or not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"{op}: negative_slope must be a real number; got {negative_slope!r}")
    return float(negative_slope)


def _activation(op, mode, x, negative_slope, dy=None, params=None):
    """The engine's element-wise pass over x (forward) or over (x, dy) (backward).

    Kept lean (a relu on a cached activation takes ~60 us): the binding copies
    non-contiguous or unaligned arrays itself, so only the byte order is fixed here.
    params: the engine's full (mode, negative_slope, clamp_lo, clamp_hi) when clamping."""
    x = x if x.dtype.isnative else x.astype(x.dtype.newbyteorder("="))
    _reserve(op, "output" if dy is None else "dx", x.nbytes)
    out = np.empty(x.shape, x.dtype)
    params = (mode, negative_slope) if params is None else params
    if dy is None:
        _engine.activation_forward(x, out, params)
    else:
        dy = dy if dy.dtype.isnative else dy.astype(x.dtype)
        _engine.activation_backward(x, dy, out, params)
    return out


def relu(x):
    """max(x, 0); NaN stays NaN."""
    return _activation("relu", _RELU, as_float_array("relu", "input", x), 0.0)


def relu_backward(dy, x):
    """dy where x > 0, else 0.  x may be the forward's output relu(x): same result."""
    dy, x = _elementwise_pair("relu_backward", dy, x)
    return _activation("relu_backward", _RELU, x, 0.0, dy)


def leaky_relu(x, negative_slope=0.2):
    """x for x > 0, negative_slope * x otherwise."""
    slope = _negative_slope("leaky_relu", negative_slope)
    return _activation("leaky_relu", _LEAKY_RELU, as_float_array("leaky_relu", "input", x), slope)


def leaky_relu_backward(dy, x, negative_slope=0.2):
    """dy where x > 0, else negative_slope * dy.  With negative_slope >= 0, x may be the
    forward's output leaky_relu(x): same result."""
    slope = _negative_slope("leaky_relu_backward", negative_slope)
    dy, x = _elementwise_pair("leaky_relu_backward", dy, x)
    return _activation("leaky_relu_backward", _LEAKY_RELU, x, slope, dy)


def clamp(x, min_value, max_value):
    """min_value where x <= min_value, max_value where x >= max_value, else x (PyTorch's
    hardtanh; relu6 is clamp(x, 0, 6)).  -0 at min_value 0 gives +0 like relu; NaN stays NaN.
    The bounds are rounded to x's dtype."""
    lo, hi = _clamp_bounds("clamp", min_value, max_value)
    return _activation("clamp", _CLAMP, as_float_array("clamp", "input", x), 0.0, params=(_CLAMP, 0.0, lo, hi))


def clamp_backward(dy, x, min_value, max_value):
    """dy where min_value < x < max_value, else 0.  x may be the forward's output clamp(x): same result."""
    lo, hi = _clamp_bounds("clamp_backward", min_value, max_value)
    dy, x = _elementwise_pair("clamp_backward", dy, x)
    return _activation("clamp_backward", _CLAMP, x, 0.0, dy, params=(_CLAMP, 0.0, lo, hi))


def sigmoid(x):
    """1 / (1 + exp(-x)), without overflow for any x; NaN stays NaN."""
    return _activation("sigmoid", _SIGMOID, as_float_array("sigmoid", "input", x), 0.0)


def sigmoid_backward(dy, x):
    """dy * s * (1 - s) with s = sigmoid(x)."""
    dy, x = _elementwise_pair("sigmoid_backward", dy, x)
    return _activation("sigmoid_backward", _SIGMOID, x, 0.0, dy)


def tanh(x):
    """Hyperbolic tangent; NaN stays NaN."""
    return _activation("tanh", _TANH, as_float_array("tanh", "input", x), 0.0)


def tanh_backward(dy, x):
    """dy * (1 - tanh(x)**2)."""
    dy, x = _elementwise_pair("tanh_backward", dy, x)
    return _activation("tanh_backward", _TANH, x, 0.0, dy)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along axis, shifted by the max for stability."""
    x = as_float_array("softmax", "input", x)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_backward(dy, x, axis=-1):
    dy, x = _elementwise_pair("softmax_backward", dy, x)
    s = softmax(x, axis=axis)
    return s * (dy - np.sum(dy * s, axis=axis, keepdims=True))


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against labels, and its gradient.

    logits (N, C); labels either integer classes (N,) in [0, C) or one-hot /
    probability rows (N, C).  Returns (loss, dlogits) with dlogits =
    (softmax(logits) - onehot) / N: softmax and cross-entropy fused."""
    op = "softmax_cross_entropy"
    # Contiguous copies: the sums must not depend on the caller's memory layout.
    logits = np.ascontiguousarray(as_float_array(op, "logits", logits))
    if logits.ndim != 2:
        raise ValueError(f"{op}: logits must be 2-D (N, classes); got shape {shape_str(logits.shape)}")
    n, classes = logits.shape
    labels = np.ascontiguousarray(labels)
    if labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1 and classes != 1):
        labels = labels.reshape(-1)
        if labels.dtype.kind not in "iu":
            if labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
                labels = labels.astype(np.int64)
            else:
                raise TypeError(f"{op}: integer labels must have an integer dtype; got {labels.dtype}")
        if labels.shape[0] != n:
            raise ValueError(f"{op}: labels has {labels.shape[0]} samples but logits has {n}")
        bad = np.flatnonzero((labels < 0) | (labels >= classes))
        if bad.size:
            i = int(bad[0])
            hint = " (labels 1..C? subtract 1)" if labels[i] == classes and labels.min() >= 1 else ""
            raise ValueError(f"{op}: labels must be in [0, {classes}); got {labels[i]} at index {i}{hint}")
        targets = np.zeros_like(logits)
        targets[np.arange(n), labels] = 1
    elif labels.shape == logits.shape:
        targets = labels.astype(logits.dtype, copy=False)
    else:
        raise ValueError(f"{op}: labels must be integer classes ({n},) or one-hot ({n}, {classes}); "
                         f"got shape {shape_str(labels.shape)}")
    if n == 0:
        raise ValueError(f"{op}: logits has 0 samples; the mean loss is undefined")
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    loss = -np.sum(targets * log_probs) / n
    grad = (np.exp(log_probs) - targets) / logits.dtype.type(n)
    return logits.dtype.type(loss), grad


def mse(pred, target):
    """Mean squared error over every element, and its gradient 2 (pred - target) / size."""
    op = "mse"
    pred = np.ascontiguousarray(as_float_array(op, "pred", pred))
    target = np.asarray(target)
    if target.dtype.kind not in "biuf":
        raise TypeError(f"{op}: target dtype {target.dtype} is not supported (expected real numbers)")
    target = np.ascontiguousarray(target, dtype=pred.dtype)
    if target.shape != pred.shape:
        raise ValueError(f"{op}: target must have the prediction's shape {shape_str(pred.shape)}; "
                         f"got {shape_str(target.shape)}")
    if pred.size == 0:
        raise ValueError(f"{op}: pred is empty; the mean is undefined")
    diff = pred - target
    return pred.dtype.type(np.mean(diff * diff)), diff * pred.dtype.type(2.0 / pred.size)


# ------------------------------------------------------ batch normalization

def _bn_axes(op, axis, ndim):
    """The normalised (channel) axes, sorted and non-negative."""
    axes = [axis] if isinstance(axis, numbers.Integral) and not isinstance(axis, (bool, np.bool_)) else axis
    if not isinstance(axes, (list, tuple)) or not axes or not all(
            isinstance(a, numbers.Integral) and not isinstance(a, (bool, np.bool_)) for a in axes):
        raise TypeError(f"{op}: axis must be an int or a list of ints; got {axis!r}")
    if not all(-ndim <= a < ndim for a in axes) or len({a % ndim for a in axes}) != len(axes):
        raise ValueError(f"{op}: axis must name distinct axes of the {ndim}-D input; got {axis!r}")
    return sorted(int(a) % ndim for a in axes)


def _bn_epsilon(op, epsilon):
    if isinstance(epsilon, (bool, np.bool_)) or not isinstance(epsilon, numbers.Real) or not epsilon > 0:
        raise ValueError(f"{op}: epsilon must be a number > 0; got {epsilon!r}")
    return float(epsilon)


def _bn_prepare(op, x, axis, epsilon, dy=None, **channel_arrays):
    """Checked arrays and the [rows, c] layout the engine works on.

    The channel axes go last (a view when they already are), every other axis
    is flattened into rows; the per-channel arrays must have the channel shape."""
    x = as_float_array(op, "input", x)
    dy = None if dy is None else as_float_array(op, "dy", dy)
    arrays = {name: None if a is None else as_float_array(op, name, a) for name, a in channel_arrays.items()}
    dtype = same_float_dtype(op, input=x, dy=dy, **arrays)
    axes = _bn_axes(op, axis, x.ndim)
    epsilon = _bn_epsilon(op, epsilon)
    channel_shape = tuple(x.shape[a] for a in axes)
    for name, a in arrays.items():
        if a is not None and a.shape != channel_shape:
            raise ValueError(f"{op}: {name} must have the shape of the input's axis {axis!r}, "
                             f"{shape_str(channel_shape)}; got {shape_str(a.shape)} (input "
                             f"{shape_str(x.shape)})")
    if dy is not None and dy.shape != x.shape:
        raise ValueError(f"{op}: dy must have the input's shape {shape_str(x.shape)}; got {shape_str(dy.shape)}")
    order = [a for a in range(x.ndim) if a not in axes] + axes
    _checked_count(op, "input", x.shape)
    c = _checked_count(op, "channel", channel_shape)
    rows = _checked_count(op, "row", [x.shape[a] for a in order[:x.ndim - len(axes)]])

    def to_rows(a):
        return None if a is None else _contiguous(a.transpose(order), dtype).reshape(rows, c)

    def from_rows(a):
        a = a.reshape(tuple(x.shape[i] for i in order))
        return a if order == sorted(order) else np.ascontiguousarray(a.transpose(np.argsort(order)))

    flat = {name: None if a is None else _contiguous(a, dtype).reshape(c) for name, a in arrays.items()}
    return dtype, epsilon, channel_shape, rows, c, to_rows(x), to_rows(dy), flat, from_rows


def batch_norm(x, mean=None, variance=None, gamma=None, beta=None, epsilon=1e-3, axis=-1):
    """y = (x - mean) / sqrt(variance + epsilon) * gamma + beta per channel (axis), and (mean, variance).

    mean and variance None: the batch statistics of x over every axis but `axis`
    (biased variance, Keras's training mode); given: those (moving averages,
    inference), returned as given.  gamma None means 1, beta None means 0.
    Returns (y, mean, variance); the statistics have the shape of x's `axis`."""
    op = "batch_norm"
    if (mean is None) != (variance is None):
        raise ValueError(f"{op}: mean and variance must both be given (inference) or both be None (batch "
                         f"statistics); got mean={'None' if mean is None else 'an array'}, "
                         f"variance={'None' if variance is None else 'an array'}")
    dtype, epsilon, channel_shape, rows, c, x2, _, flat, from_rows = _bn_prepare(
        op, x, axis, epsilon, mean=mean, variance=variance, gamma=gamma, beta=beta)
    training = mean is None
    if training and rows == 0:
        raise ValueError(f"{op}: batch statistics need at least one value per channel; got input shape "
                         f"{shape_str(np.shape(x))}")
    if c == 0:
        y2 = np.empty((rows, 0), dtype)
        stats = (np.empty(0, dtype), np.empty(0, dtype)) if training else (flat["mean"], flat["variance"])
        return from_rows(y2), stats[0].reshape(channel_shape), stats[1].reshape(channel_shape)
    ws_bytes = _engine.batch_norm_workspace_size(rows, c, dtype == np.float64, epsilon)
    y2 = _empty(op, "output", (rows, c), dtype, extra_bytes=ws_bytes)
    workspace = _workspace(op, ws_bytes)
    if training:
        mean, variance = np.empty(c, dtype), np.empty(c, dtype)
        _engine.batch_norm_forward_training(x2, flat["gamma"], flat["beta"], y2, mean, variance, workspace, epsilon)
    else:
        mean, variance = flat["mean"], flat["variance"]
        _engine.batch_norm_forward_inference(x2, mean, variance, flat["gamma"], flat["beta"], y2, workspace,
                                             epsilon)
    return from_rows(y2), mean.reshape(channel_shape), variance.reshape(channel_shape)


def batch_norm_backward(dy, x, mean, variance, gamma=None, beta=None, epsilon=1e-3, axis=-1, batch_stats=True):
    """Gradients of batch_norm: (dx, dgamma, dbeta); dgamma None when gamma is None, dbeta when beta is.

    batch_stats=True: mean and variance are x's own batch statistics (batch_norm
    called without them), so the gradient also flows through them; False: they
    were given (moving averages) and dx = dy * gamma / sqrt(variance + epsilon)."""
    op = "batch_norm_backward"
    for name, a in (("mean", mean), ("variance", variance)):
        if a is None:
            raise TypeError(f"{op}: {name} must be an array (the statistics the forward used); got None")
    dtype, epsilon, channel_shape, rows, c, x2, dy2, flat, from_rows = _bn_prepare(
        op, x, axis, epsilon, dy=dy, mean=mean, variance=variance, gamma=gamma, beta=beta)
    dgamma = None if gamma is None else np.zeros(c, dtype)
    dbeta = None if beta is None else np.zeros(c, dtype)
    dx2 = _empty(op, "dx", (rows, c), dtype)
    if c > 0:
        ws_bytes = _engine.batch_norm_workspace_size(rows, c, dtype == np.float64, epsilon)
        _engine.batch_norm_backward(x2, dy2, flat["mean"], flat["variance"], flat["gamma"], dx2, dgamma, dbeta,
                                    _workspace(op, ws_bytes), epsilon, bool(batch_stats))
    return (from_rows(dx2), None if dgamma is None else dgamma.reshape(channel_shape),
            None if dbeta is None else dbeta.reshape(channel_shape))
