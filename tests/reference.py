"""Slow, obviously correct NumPy references for every op in docs/ops_contract.md.

This module is the executable spec the engine is tested against. It is written
independently of the engine's algorithm (no im2col/GEMM for convolution): every
convolution is a loop over kernel taps that adds one shifted, strided slice of
the zero-padded input times one kernel matrix; pooling loops over output
positions and gathers the in-bounds cells of each window. Everything is
computed in float64 and channels_last (NHWC / NLC, HWIO kernels); the
layout helpers at the end convert to and from PyTorch's channels_first layouts.

Backward references are written directly as adjoint loops (the same loops with
gather and scatter swapped); they are checked against finite differences and by
dot-product (adjoint) identities in the tests.

Assumptions the engine is held to (stated in docs/ops_contract.md unless noted):
* "same" padding uses the Keras/TensorFlow split: the extra cell goes after.
* max pooling ignores padded cells; average pooling leaves them out of the divisor.
* max-pool backward sends each window's gradient to the FIRST maximal element in
  row-major window order (not stated in the contract; TF/PyTorch CPU do the same).
  A NaN counts as maximal, so an all-or-part-NaN window routes to its first NaN.
* conv2d_transpose is the adjoint of conv2d on an input of the Keras output size,
  with that conv's Keras "same" split (TensorFlow semantics, pad before =
  total // 2). Keras on the torch backend rounds the other way in some cases
  (it warns "You might experience inconsistencies across backends").
* relu_backward at x == 0 is 0 (TF and PyTorch agree).
"""

import math

import numpy as np


# ---------------------------------------------------------------- arguments


def as_tuple(value, n, name="value"):
    """An int or a length-n sequence of ints as an n-tuple."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must have {n} entries; got {value}")
    return value


def effective_kernel(k, d):
    return d * (k - 1) + 1


def same_padding(n, k, s, d=1):
    """Keras/TensorFlow "same" split for one spatial dim: (before, after)."""
    out = -(-n // s)
    total = max((out - 1) * s + effective_kernel(k, d) - n, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, in_sizes, kernel_sizes, strides, dilations):
    """Every contract padding form -> a list of (before, after) per spatial dim."""
    nd = len(in_sizes)
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return [(0, 0)] * nd
        if mode == "same":
            return [same_padding(n, k, s, d)
                    for n, k, s, d in zip(in_sizes, kernel_sizes, strides, dilations)]
        if mode == "causal" and nd == 1:
            return [(effective_kernel(kernel_sizes[0], dilations[0]) - 1, 0)]
        raise ValueError(f"unknown padding {padding!r}")
    if isinstance(padding, (int, np.integer)):
        return [(int(padding), int(padding))] * nd
    padding = tuple(padding)
    if nd == 1:
        if len(padding) == 1:
            return [(int(padding[0]), int(padding[0]))]
        if len(padding) == 2 and all(isinstance(p, (int, np.integer)) for p in padding):
            return [(int(padding[0]), int(padding[1]))]
        if len(padding) == 1 and len(padding[0]) == 2:
            return [tuple(int(p) for p in padding[0])]
    if len(padding) != nd:
        raise ValueError(f"padding {padding!r} does not match {nd} spatial dims")
    pads = []
    for p in padding:
        if isinstance(p, (int, np.integer)):
            pads.append((int(p), int(p)))
        else:
            before, after = p
            pads.append((int(before), int(after)))
    return pads


def output_size(n, k, s, d, before, after):
    """floor((n + before + after - k_eff) / s) + 1; <= 0 means no valid output."""
    return (n + before + after - effective_kernel(k, d)) // s + 1


def _pad_spatial(x, pads, value=0.0):
    """Pad the spatial axes (all but the first and the last) of x."""
    width = [(0, 0)] + [tuple(p) for p in pads] + [(0, 0)]
    return np.pad(x, width, mode="constant", constant_values=value)


def _tap(stride, dilation, tap, out):
    """Slice of the padded input that kernel tap `tap` touches for outputs 0..out-1."""
    start = tap * dilation
    return slice(start, start + stride * (out - 1) + 1, stride)


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


# ---------------------------------------------------------------- convolution


def _conv2d_geometry(x_shape, kernel_shape, strides, padding, dilation_rate):
    _, h, w, _ = x_shape
    kh, kw = kernel_shape[:2]
    sh, sw = as_tuple(strides, 2, "strides")
    dh, dw = as_tuple(dilation_rate, 2, "dilation_rate")
    pads = resolve_padding(padding, (h, w), (kh, kw), (sh, sw), (dh, dw))
    oh = output_size(h, kh, sh, dh, *pads[0])
    ow = output_size(w, kw, sw, dw, *pads[1])
    if oh <= 0 or ow <= 0:
        raise ValueError(f"empty output ({oh}, {ow})")
    return (sh, sw), (dh, dw), pads, (oh, ow)


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1):
    """Grouped, strided, dilated, padded 2-D cross-correlation, NHWC x HWIO."""
    x, kernel, bias = _f64(x), _f64(kernel), _f64(bias)
    n, _, _, c_in = x.shape
    kh, kw, cin_g, c_out = kernel.shape
    assert cin_g * groups == c_in and c_out % groups == 0
    (sh, sw), (dh, dw), pads, (oh, ow) = _conv2d_geometry(
        x.shape, kernel.shape, strides, padding, dilation_rate)
    xp = _pad_spatial(x, pads)
    cout_g = c_out // groups
    y = np.zeros((n, oh, ow, c_out))
    for g in range(groups):
        ci = slice(g * cin_g, (g + 1) * cin_g)
        co = slice(g * cout_g, (g + 1) * cout_g)
        for a in range(kh):
            for b in range(kw):
                patch = xp[:, _tap(sh, dh, a, oh), _tap(sw, dw, b, ow), ci]
                y[..., co] += np.einsum("nhwc,cd->nhwd", patch, kernel[a, b, :, co])
    if bias is not None:
        y += bias
    return y


def conv2d_backward(dy, x, kernel, bias=None, strides=1, padding="valid",
                    dilation_rate=1, groups=1):
    """(dx, dkernel, dbias) of conv2d: the tap loop with gather and scatter swapped."""
    dy, x, kernel = _f64(dy), _f64(x), _f64(kernel)
    n, h, w, c_in = x.shape
    kh, kw, cin_g, c_out = kernel.shape
    (sh, sw), (dh, dw), pads, (oh, ow) = _conv2d_geometry(
        x.shape, kernel.shape, strides, padding, dilation_rate)
    xp = _pad_spatial(x, pads)
    dxp = np.zeros_like(xp)
    dkernel = np.zeros_like(kernel)
    cout_g = c_out // groups
    for g in range(groups):
        ci = slice(g * cin_g, (g + 1) * cin_g)
        co = slice(g * cout_g, (g + 1) * cout_g)
        for a in range(kh):
            for b in range(kw):
                rows, cols = _tap(sh, dh, a, oh), _tap(sw, dw, b, ow)
                dxp[:, rows, cols, ci] += np.einsum("nhwd,cd->nhwc", dy[..., co],
                                                    kernel[a, b, :, co])
                dkernel[a, b, :, co] += np.einsum("nhwc,nhwd->cd", xp[:, rows, cols, ci],
                                                  dy[..., co])
    (pt, _), (pl, _) = pads
    dx = dxp[:, pt:pt + h, pl:pl + w, :]
    dbias = None if bias is None else dy.sum(axis=(0, 1, 2))
    return dx, dkernel, dbias


def _conv1d_as_2d(x, kernel, strides, padding, dilation_rate):
    """A 1-D conv is a 2-D conv over an image of height 1 (explicit padding)."""
    x = _f64(x)
    kernel = _f64(kernel)
    s = as_tuple(strides, 1, "strides")[0]
    d = as_tuple(dilation_rate, 1, "dilation_rate")[0]
    (before, after), = resolve_padding(padding, (x.shape[1],), (kernel.shape[0],), (s,), (d,))
    return x[:, None], kernel[None], (1, s), ((0, 0), (before, after)), (1, d)


def conv1d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, groups=1):
    """NLC x (k, c_in/groups, c_out); padding also "causal" (d*(k-1) zeros before)."""
    x2, k2, s2, p2, d2 = _conv1d_as_2d(x, kernel, strides, padding, dilation_rate)
    return conv2d(x2, k2, bias, s2, p2, d2, groups)[:, 0]


def conv1d_backward(dy, x, kernel, bias=None, strides=1, padding="valid",
                    dilation_rate=1, groups=1):
    x2, k2, s2, p2, d2 = _conv1d_as_2d(x, kernel, strides, padding, dilation_rate)
    dx, dk, db = conv2d_backward(_f64(dy)[:, None], x2, k2, bias, s2, p2, d2, groups)
    return dx[:, 0], dk[0], db


def depthwise_conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1):
    """kernel (kh, kw, c_in, dm); output channel c*dm + m = channel c times filter m."""
    x, kernel, bias = _f64(x), _f64(kernel), _f64(bias)
    n, _, _, c_in = x.shape
    kh, kw, _, dm = kernel.shape
    (sh, sw), (dh, dw), pads, (oh, ow) = _conv2d_geometry(
        x.shape, kernel.shape, strides, padding, dilation_rate)
    xp = _pad_spatial(x, pads)
    y = np.zeros((n, oh, ow, c_in, dm))
    for a in range(kh):
        for b in range(kw):
            patch = xp[:, _tap(sh, dh, a, oh), _tap(sw, dw, b, ow), :]
            y += patch[..., None] * kernel[a, b]
    y = y.reshape(n, oh, ow, c_in * dm)
    if bias is not None:
        y += bias
    return y


def depthwise_conv2d_backward(dy, x, kernel, bias=None, strides=1, padding="valid",
                              dilation_rate=1):
    dy, x, kernel = _f64(dy), _f64(x), _f64(kernel)
    n, h, w, c_in = x.shape
    kh, kw, _, dm = kernel.shape
    (sh, sw), (dh, dw), pads, (oh, ow) = _conv2d_geometry(
        x.shape, kernel.shape, strides, padding, dilation_rate)
    xp = _pad_spatial(x, pads)
    dy5 = dy.reshape(n, oh, ow, c_in, dm)
    dxp = np.zeros_like(xp)
    dkernel = np.zeros_like(kernel)
    for a in range(kh):
        for b in range(kw):
            rows, cols = _tap(sh, dh, a, oh), _tap(sw, dw, b, ow)
            dxp[:, rows, cols, :] += (dy5 * kernel[a, b]).sum(axis=-1)
            dkernel[a, b] += np.einsum("nhwc,nhwcm->cm", xp[:, rows, cols, :], dy5)
    (pt, _), (pl, _) = pads
    dx = dxp[:, pt:pt + h, pl:pl + w, :]
    dbias = None if bias is None else dy.sum(axis=(0, 1, 2))
    return dx, dkernel, dbias


# ---------------------------------------------------------------- transposed convolution


def conv_transpose_output_size(n, k, s, d, padding, output_padding):
    """Keras rules (keras backend_utils._get_output_shape_given_tf_padding)."""
    k_eff = effective_kernel(k, d)
    if padding == "valid":
        op = max(k_eff, s) - k_eff if output_padding is None else output_padding
        return (n - 1) * s + k_eff + op
    if output_padding is None:
        return n * s
    return (n - 1) * s + k_eff % 2 + output_padding


def _conv_transpose_geometry(x_shape, kernel_shape, strides, padding, output_padding,
                             dilation_rate):
    _, h, w, _ = x_shape
    kh, kw = kernel_shape[:2]
    strides = as_tuple(strides, 2, "strides")
    dilations = as_tuple(dilation_rate, 2, "dilation_rate")
    ops = (None, None) if output_padding is None else as_tuple(output_padding, 2)
    mode = padding.lower()
    geometry = []
    for n, k, s, d, op in zip((h, w), (kh, kw), strides, dilations, ops):
        out = conv_transpose_output_size(n, k, s, d, mode, op)
        full = (n - 1) * s + effective_kernel(k, d)   # span of all scattered taps
        # The forward conv that maps `out` back to `n` pads `total` cells; the
        # transposed output is the scatter span cropped by that conv's "before" pad.
        total = full - out
        before = max(total, 0) // 2 if mode == "same" else 0
        geometry.append((s, d, out, before, max(full, before + out)))
    return geometry


def conv2d_transpose(x, kernel, bias=None, strides=1, padding="valid", output_padding=None,
                     dilation_rate=1):
    """x NHWC (c_in), Keras kernel (kh, kw, filters, c_in) -> NHWC (filters)."""
    x, kernel, bias = _f64(x), _f64(kernel), _f64(bias)
    n, h, w, _ = x.shape
    kh, kw, filters, _ = kernel.shape
    (sh, dh, oh, ph, fh), (sw, dw, ow, pw, fw) = _conv_transpose_geometry(
        x.shape, kernel.shape, strides, padding, output_padding, dilation_rate)
    full = np.zeros((n, fh, fw, filters))
    for a in range(kh):
        for b in range(kw):
            full[:, _tap(sh, dh, a, h), _tap(sw, dw, b, w), :] += np.einsum(
                "nhwc,fc->nhwf", x, kernel[a, b])
    y = full[:, ph:ph + oh, pw:pw + ow, :].copy()
    if bias is not None:
        y += bias
    return y


def conv2d_transpose_backward(dy, x, kernel, bias=None, strides=1, padding="valid",
                              output_padding=None, dilation_rate=1):
    dy, x, kernel = _f64(dy), _f64(x), _f64(kernel)
    n, h, w, _ = x.shape
    kh, kw, filters, _ = kernel.shape
    (sh, dh, oh, ph, fh), (sw, dw, ow, pw, fw) = _conv_transpose_geometry(
        x.shape, kernel.shape, strides, padding, output_padding, dilation_rate)
    dfull = np.zeros((n, fh, fw, filters))
    dfull[:, ph:ph + oh, pw:pw + ow, :] = dy
    dx = np.zeros_like(x)
    dkernel = np.zeros_like(kernel)
    for a in range(kh):
        for b in range(kw):
            g = dfull[:, _tap(sh, dh, a, h), _tap(sw, dw, b, w), :]
            dx += np.einsum("nhwf,fc->nhwc", g, kernel[a, b])
            dkernel[a, b] += np.einsum("nhwf,nhwc->fc", g, x)
    dbias = None if bias is None else dy.sum(axis=(0, 1, 2))
    return dx, dkernel, dbias


# ---------------------------------------------------------------- pooling


def _pool_windows(x_shape, pool_size, strides, padding):
    """Per output position, the in-bounds input rows/cols of its window, row-major."""
    _, h, w, _ = x_shape
    kh, kw = as_tuple(pool_size, 2, "pool_size")
    sh, sw = (kh, kw) if strides is None else as_tuple(strides, 2, "strides")
    (pt, pb), (pl, pr) = resolve_padding(padding, (h, w), (kh, kw), (sh, sw), (1, 1))
    oh = output_size(h, kh, sh, 1, pt, pb)
    ow = output_size(w, kw, sw, 1, pl, pr)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"empty output ({oh}, {ow})")
    windows = {}
    for i in range(oh):
        for j in range(ow):
            # The window clipped to the image (a window of 2**31 rows must not be walked).
            rows = range(max(i * sh - pt, 0), min(i * sh - pt + kh, h))
            cols = range(max(j * sw - pl, 0), min(j * sw - pl + kw, w))
            cells = [(r, c) for r in rows for c in cols]
            windows[i, j] = cells
    return (oh, ow), windows


def max_pool2d(x, pool_size, strides=None, padding="valid"):
    x = _f64(x)
    (oh, ow), windows = _pool_windows(x.shape, pool_size, strides, padding)
    y = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for (i, j), cells in windows.items():
        vals = np.stack([x[:, r, c, :] for r, c in cells], axis=1)   # (n, cells, c)
        y[:, i, j, :] = np.max(vals, axis=1)   # np.max propagates NaN
    return y


def max_pool2d_backward(dy, x, pool_size, strides=None, padding="valid"):
    """Each window's gradient goes to its first maximal cell (row-major); NaN is maximal."""
    dy, x = _f64(dy), _f64(x)
    (oh, ow), windows = _pool_windows(x.shape, pool_size, strides, padding)
    dx = np.zeros_like(x)
    n, c = x.shape[0], x.shape[3]
    batch_idx, chan_idx = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for (i, j), cells in windows.items():
        vals = np.stack([x[:, r, c_, :] for r, c_ in cells], axis=1)
        first = np.argmax(vals, axis=1)   # first occurrence; first NaN if any NaN
        rows = np.array([r for r, _ in cells])[first]
        cols = np.array([c_ for _, c_ in cells])[first]
        np.add.at(dx, (batch_idx, rows, cols, chan_idx), dy[:, i, j, :])
    return dx


def max_pool2d_indices(x, pool_size, strides=None, padding="valid"):
    """Per output element, the position r * W + c (in its image plane) of the cell
    max_pool2d_backward routes its gradient to: the window's first maximal cell."""
    x = _f64(x)
    (oh, ow), windows = _pool_windows(x.shape, pool_size, strides, padding)
    indices = np.zeros((x.shape[0], oh, ow, x.shape[3]), dtype=np.int64)
    for (i, j), cells in windows.items():
        vals = np.stack([x[:, r, c, :] for r, c in cells], axis=1)
        positions = np.array([r * x.shape[2] + c for r, c in cells])
        indices[:, i, j, :] = positions[np.argmax(vals, axis=1)]   # first maximum; first NaN if any
    return indices


def avg_pool2d(x, pool_size, strides=None, padding="valid"):
    x = _f64(x)
    (oh, ow), windows = _pool_windows(x.shape, pool_size, strides, padding)
    y = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for (i, j), cells in windows.items():
        y[:, i, j, :] = sum(x[:, r, c, :] for r, c in cells) / len(cells)
    return y


def avg_pool2d_backward(dy, x, pool_size, strides=None, padding="valid"):
    dy, x = _f64(dy), _f64(x)
    (oh, ow), windows = _pool_windows(x.shape, pool_size, strides, padding)
    dx = np.zeros_like(x)
    for (i, j), cells in windows.items():
        for r, c in cells:
            dx[:, r, c, :] += dy[:, i, j, :] / len(cells)
    return dx


def _pool1d_as_2d(x, pool_size, strides, padding):
    k = as_tuple(pool_size, 1, "pool_size")[0]
    s = k if strides is None else as_tuple(strides, 1, "strides")[0]
    x = _f64(x)
    (before, after), = resolve_padding(padding, (x.shape[1],), (k,), (s,), (1,))
    return x[:, None], (1, k), (1, s), ((0, 0), (before, after))


def max_pool1d(x, pool_size, strides=None, padding="valid"):
    return max_pool2d(*_pool1d_as_2d(x, pool_size, strides, padding))[:, 0]


def avg_pool1d(x, pool_size, strides=None, padding="valid"):
    return avg_pool2d(*_pool1d_as_2d(x, pool_size, strides, padding))[:, 0]


def max_pool1d_backward(dy, x, pool_size, strides=None, padding="valid"):
    x2, k, s, p = _pool1d_as_2d(x, pool_size, strides, padding)
    return max_pool2d_backward(_f64(dy)[:, None], x2, k, s, p)[:, 0]


def max_pool1d_indices(x, pool_size, strides=None, padding="valid"):
    """Positions along L (the 2-D positions with H = 1)."""
    return max_pool2d_indices(*_pool1d_as_2d(x, pool_size, strides, padding))[:, 0]


def avg_pool1d_backward(dy, x, pool_size, strides=None, padding="valid"):
    x2, k, s, p = _pool1d_as_2d(x, pool_size, strides, padding)
    return avg_pool2d_backward(_f64(dy)[:, None], x2, k, s, p)[:, 0]


def _spatial_axes(ndim):
    return tuple(range(1, ndim - 1))


def global_avg_pool(x, keepdims=False):
    """Channels_last, any number of spatial dims (1-D: NLC, 2-D: NHWC)."""
    x = _f64(x)
    return x.mean(axis=_spatial_axes(x.ndim), keepdims=keepdims)


def global_max_pool(x, keepdims=False):
    x = _f64(x)
    return x.max(axis=_spatial_axes(x.ndim), keepdims=keepdims)


def global_avg_pool_backward(dy, x, keepdims=False):
    dy, x = _f64(dy), _f64(x)
    axes = _spatial_axes(x.ndim)
    count = int(np.prod([x.shape[a] for a in axes]))
    if not keepdims:
        dy = np.expand_dims(dy, axes)
    return np.broadcast_to(dy / count, x.shape).copy()


def global_max_pool_backward(dy, x, keepdims=False):
    """Gradient to the first maximal position in row-major spatial order."""
    dy, x = _f64(dy), _f64(x)
    n, c = x.shape[0], x.shape[-1]
    flat = x.reshape(n, int(np.prod(x.shape[1:-1])), c)
    first = np.argmax(flat, axis=1)                        # (n, c)
    dflat = np.zeros_like(flat)
    dflat[np.arange(n)[:, None], first, np.arange(c)[None, :]] = dy.reshape(n, c)
    return dflat.reshape(x.shape)


# ---------------------------------------------------------------- dense, activations, losses


def dense(x, kernel, bias=None):
    x, kernel, bias = _f64(x), _f64(kernel), _f64(bias)
    y = np.einsum("...i,io->...o", x, kernel)
    return y if bias is None else y + bias


def dense_backward(dy, x, kernel, bias=None):
    dy, x, kernel = _f64(dy), _f64(x), _f64(kernel)
    dx = np.einsum("...o,io->...i", dy, kernel)
    dkernel = x.reshape(-1, kernel.shape[0]).T @ dy.reshape(-1, kernel.shape[1])
    dbias = None if bias is None else dy.reshape(-1, kernel.shape[1]).sum(axis=0)
    return dx, dkernel, dbias


def relu(x):
    x = _f64(x)
    return np.where(x > 0, x, 0.0)


def relu_backward(dy, x):
    return np.where(_f64(x) > 0, _f64(dy), 0.0)


def leaky_relu(x, negative_slope=0.2):
    x = _f64(x)
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_backward(dy, x, negative_slope=0.2):
    return _f64(dy) * np.where(_f64(x) > 0, 1.0, negative_slope)


def clamp(x, min_value, max_value):
    """PyTorch's hardtanh (relu6 is clamp(x, 0, 6)); NaN propagates through np.maximum/np.minimum."""
    return np.minimum(np.maximum(_f64(x), min_value), max_value)


def clamp_backward(dy, x, min_value, max_value):
    """dy strictly inside (min_value, max_value), 0 at and beyond the bounds (PyTorch's hardtanh_backward)."""
    x = _f64(x)
    return np.where((x > min_value) & (x < max_value), _f64(dy), 0.0)


def sigmoid(x):
    x = _f64(x)
    # Two branches so neither exp overflows.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_backward(dy, x):
    s = sigmoid(x)
    return _f64(dy) * s * (1.0 - s)


def tanh(x):
    return np.tanh(_f64(x))


def tanh_backward(dy, x):
    return _f64(dy) * (1.0 - np.tanh(_f64(x)) ** 2)


def softmax(x, axis=-1):
    x = _f64(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_backward(dy, x, axis=-1):
    s = softmax(x, axis)
    dy = _f64(dy)
    return s * (dy - (dy * s).sum(axis=axis, keepdims=True))


def softmax_cross_entropy(logits, labels):
    """Mean over the batch of -sum(p * log_softmax); labels int (N,) or (N, C)."""
    logits = _f64(logits)
    n, c = logits.shape
    labels = np.asarray(labels)
    if labels.ndim == 1:
        probs = np.zeros((n, c))
        probs[np.arange(n), labels] = 1.0
    else:
        probs = _f64(labels)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -(probs * log_softmax).sum() / n
    dlogits = (np.exp(log_softmax) * probs.sum(axis=1, keepdims=True) - probs) / n
    return loss, dlogits


def mse(pred, target):
    """Mean over all elements of (pred - target)**2, and its gradient."""
    pred, target = _f64(pred), _f64(target)
    diff = pred - target
    return (diff ** 2).mean(), 2.0 * diff / diff.size


# ---------------------------------------------------------------- im2col / col2im


def im2col(x, kernel_size, strides=1, padding="valid", dilation_rate=1):
    """(N, oh, ow, kh*kw*C); column (a*kw + b)*C + c holds x_pad[i*sh + a*dh, j*sw + b*dw, c]."""
    x = _f64(x)
    n, h, w, c = x.shape
    kh, kw = as_tuple(kernel_size, 2, "kernel_size")
    (sh, sw), (dh, dw), pads, (oh, ow) = _conv2d_geometry(
        x.shape, (kh, kw), strides, padding, dilation_rate)
    xp = _pad_spatial(x, pads)
    cols = np.zeros((n, oh, ow, kh * kw * c))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    col = (a * kw + b) * c
                    cols[:, i, j, col:col + c] = xp[:, i * sh + a * dh, j * sw + b * dw, :]
    return cols


def col2im(cols, input_shape, kernel_size, strides=1, padding="valid", dilation_rate=1):
    """The adjoint of im2col: every patch entry is added back where it came from."""
    cols = _f64(cols)
    n, h, w, c = input_shape
    kh, kw = as_tuple(kernel_size, 2, "kernel_size")
    (sh, sw), (dh, dw), pads, (oh, ow) = _conv2d_geometry(
        input_shape, (kh, kw), strides, padding, dilation_rate)
    (pt, pb), (pl, pr) = pads
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c))
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    col = (a * kw + b) * c
                    xp[:, i * sh + a * dh, j * sw + b * dw, :] += cols[:, i, j, col:col + c]
    return xp[:, pt:pt + h, pl:pl + w, :]


# ---------------------------------------------------------------- layouts (channels_first)


def nhwc_to_nchw(x):
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def nchw_to_nhwc(x):
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def hwio_to_oihw(kernel):
    """Keras conv kernel (kh, kw, in, out) / (k, in, out) -> PyTorch (out, in, kh, kw) / (out, in, k)."""
    return np.ascontiguousarray(np.moveaxis(kernel, (-1, -2), (0, 1)))


def oihw_to_hwio(kernel):
    return np.ascontiguousarray(np.moveaxis(kernel, (0, 1), (-1, -2)))


def depthwise_to_torch(kernel):
    """Keras depthwise (kh, kw, c_in, dm) -> PyTorch grouped weight (c_in*dm, 1, kh, kw)."""
    kh, kw, c_in, dm = kernel.shape
    return np.ascontiguousarray(kernel.reshape(kh, kw, c_in * dm).transpose(2, 0, 1)[:, None])


def depthwise_from_torch(weight, c_in):
    c_out, _, kh, kw = weight.shape
    return np.ascontiguousarray(weight[:, 0].transpose(1, 2, 0).reshape(kh, kw, c_in, c_out // c_in))


def transpose_kernel_to_torch(kernel):
    """Keras Conv2DTranspose kernel (kh, kw, filters, in) -> PyTorch (in, filters, kh, kw)."""
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def transpose_kernel_from_torch(weight):
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def conv_output_size(n, k, strides=1, padding=0, dilation_rate=1):
    """The lecture formula floor((n + 2p - k_eff) / s) + 1 for a symmetric integer pad."""
    return math.floor((n + 2 * padding - effective_kernel(k, dilation_rate)) / strides) + 1


# ---------------------------------------------------------------- comparison helpers


# float32: rtol 1e-5; float64: rtol 1e-12. atol is rtol times the largest |reference|
# (at least 1), because an output that is a sum of many terms can cancel to ~0
# while its rounding error stays proportional to the size of the terms.
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def assert_matches(got, expected, dtype, what=""):
    """got has the expected dtype and shape and equals the float64 reference within tolerance."""
    dtype = np.dtype(dtype)
    expected = np.asarray(expected, dtype=np.float64)
    assert isinstance(got, np.ndarray), f"{what}: expected an ndarray, got {type(got).__name__}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    rtol = RTOL[dtype]
    scale = max(1.0, float(np.nanmax(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=rtol, atol=rtol * scale,
                               err_msg=what)


def random_array(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)
