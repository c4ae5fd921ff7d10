"""Checked entry points to the C warps (csrc/augment.c) and the matrix algebra around them.

Matrices follow scipy.ndimage.affine_transform: a 2x3 matrix per image maps an output
(row, col) position to the input position that is sampled.
"""
import numpy as np

from pycnn import _engine

FILL_MODES = ("constant", "nearest", "reflect", "wrap")


def _kernel(name):
    """The engine entry point, or a clear error for an engine built before the warp existed."""
    try:
        return getattr(_engine, name)
    except AttributeError:
        raise ImportError(
            f"{name}: pycnn's C engine must include the augmentation kernels; got a build without "
            f"them (rebuild with: python setup.py build_ext --inplace)") from None


def check_fill_mode(who, fill_mode):
    if fill_mode not in FILL_MODES:
        raise ValueError(
            f"{who}: fill_mode must be one of {', '.join(repr(m) for m in FILL_MODES)}; got {fill_mode!r}")
    return FILL_MODES.index(fill_mode)


def check_order(who, order, name="interpolation_order"):
    if isinstance(order, bool) or order not in (0, 1):
        raise ValueError(
            f"{who}: {name} must be 0 (nearest) or 1 (bilinear); got {order!r} "
            f"(pycnn's C warp implements orders 0 and 1)")
    return int(order)


def check_cval(who, cval):
    try:
        value = float(cval)
    except (TypeError, ValueError):
        raise TypeError(f"{who}: cval must be a real number; got {cval!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{who}: cval must be finite; got {cval!r}")
    return value


def _float_images(who, x):
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{who}: images must be 4-D (n, height, width, channels); got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{who}: images must be float32 or float64; got {x.dtype}")
    return np.ascontiguousarray(x)


def affine_warp(x, matrices, order=1, fill_mode="nearest", cval=0.0):
    """Warp each image ``x[k]`` (NHWC float) by its 2x3 matrix ``matrices[k]`` in one C call."""
    x = _float_images("affine_warp", x)
    mode = check_fill_mode("affine_warp", fill_mode)
    order = check_order("affine_warp", order, "order")
    matrices = np.ascontiguousarray(matrices, dtype=np.float64)
    if matrices.shape != (len(x), 2, 3):
        raise ValueError(
            f"affine_warp: matrices must have shape ({len(x)}, 2, 3), one per image; got {matrices.shape}")
    y = np.empty_like(x)
    _kernel("affine_warp")(x, matrices, y, (order, mode, check_cval("affine_warp", cval)))
    return y


def coords_warp(x, coords, order=1, fill_mode="nearest", cval=0.0):
    """Sample each image ``x[k]`` at ``coords[k, i, j] = (row, col)`` (shape (n, oh, ow, 2))."""
    x = _float_images("coords_warp", x)
    mode = check_fill_mode("coords_warp", fill_mode)
    order = check_order("coords_warp", order, "order")
    coords = np.ascontiguousarray(coords, dtype=np.float64)
    if coords.ndim != 4 or coords.shape[0] != len(x) or coords.shape[3] != 2:
        raise ValueError(
            f"coords_warp: coords must have shape ({len(x)}, out_height, out_width, 2); got {coords.shape}")
    y = np.empty((len(x), coords.shape[1], coords.shape[2], x.shape[3]), dtype=x.dtype)
    _kernel("coords_warp")(x, coords, y, (order, mode, check_cval("coords_warp", cval)))
    return y


def keras_matrices(h, w, theta, tx, ty, shear, zx, zy, flip_horizontal, flip_vertical):
    """The (n, 2, 3) sampling matrices Keras's ``apply_affine_transform`` builds, plus flips.

    ``M = R · T · Sh · Z`` (degrees for theta and shear; tx belongs to the height and ty to
    the width, as Keras draws them), re-centred about ``(h/2 - 0.5, w/2 - 0.5)`` and then
    conjugated by the x/y swap exactly as Keras does, so the result feeds
    scipy-convention sampling.  Keras flips after warping; composing the flip on the
    right gives the same image in one pass.
    """
    n = len(theta)
    t = np.deg2rad(np.asarray(theta, dtype=np.float64))
    s = np.deg2rad(np.asarray(shear, dtype=np.float64))
    zx = np.asarray(zx, dtype=np.float64)
    zy = np.asarray(zy, dtype=np.float64)

    def stack(rows):
        m = np.zeros((n, 3, 3))
        for (i, j), v in rows.items():
            m[:, i, j] = v
        m[:, 2, 2] = 1.0
        return m

    rot = stack({(0, 0): np.cos(t), (0, 1): -np.sin(t), (1, 0): np.sin(t), (1, 1): np.cos(t)})
    shift = stack({(0, 0): 1.0, (1, 1): 1.0, (0, 2): tx, (1, 2): ty})
    shr = stack({(0, 0): 1.0, (0, 1): -np.sin(s), (1, 1): np.cos(s)})
    zoom = stack({(0, 0): zx, (1, 1): zy})
    m = rot @ shift @ shr @ zoom
    ox, oy = h / 2 - 0.5, w / 2 - 0.5
    offset = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]], dtype=np.float64)
    reset = np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]], dtype=np.float64)
    m = offset @ m @ reset
    m = m[:, [1, 0, 2]][:, :, [1, 0, 2]]   # Keras's swap of the x and y axes
    flip = np.tile(np.eye(3), (n, 1, 1))
    fh = np.asarray(flip_horizontal, dtype=bool)
    fv = np.asarray(flip_vertical, dtype=bool)
    flip[fh, 1, 1], flip[fh, 1, 2] = -1.0, w - 1
    flip[fv, 0, 0], flip[fv, 0, 2] = -1.0, h - 1
    m = m @ flip
    # Keras skips the warp when no transform was drawn; keep those matrices exactly identity.
    identity = ((t == 0) & (np.asarray(tx) == 0) & (np.asarray(ty) == 0) & (s == 0) & (zx == 1) & (zy == 1))
    m[identity] = flip[identity]
    return np.ascontiguousarray(m[:, :2, :])


def _fold(c, n, mode):
    """Vectorised copy of the C sampler's boundary rule (SciPy's map_coordinate) for one axis.

    Returns the folded coordinates and a mask of positions outside the image (constant mode).
    """
    c = np.asarray(c, dtype=np.float64)
    outside = ~np.isfinite(c) | (np.abs(c) >= 1e15)
    c = np.where(outside, 0.0, c)
    inside = (c >= 0) & (c <= n - 1)
    if mode == "constant":
        return c, outside | ~inside
    if mode == "nearest":
        return np.clip(c, 0, n - 1), np.zeros_like(outside)
    if n <= 1:
        return np.zeros_like(c), np.zeros_like(outside)
    if mode == "wrap":
        sz = n - 1.0
        neg = c + sz * (np.trunc(-c / sz) + 1.0)
        pos = c - sz * np.trunc(c / sz)
        folded = np.where(c < 0, neg, pos)
    else:  # reflect
        sz2 = 2.0 * n
        neg = np.where(c < -sz2, sz2 * np.trunc(-c / sz2) + c, c)
        neg = np.where(neg < -n, neg + sz2, -neg - 1.0)
        pos = c - sz2 * np.trunc(c / sz2)
        pos = np.where(pos >= n, sz2 - pos - 1.0, pos)
        folded = np.where(c < 0, neg, pos)
    return np.where(inside, c, folded), np.zeros_like(outside)


def coords_warp_adjoint(grad, coords, input_shape, order=1, fill_mode="nearest"):
    """The transpose of ``coords_warp`` (for backpropagation): scatters ``grad`` (n, oh, ow, c)
    onto the input positions it was sampled from; returns an array of ``input_shape``."""
    check_fill_mode("coords_warp_adjoint", fill_mode)
    n, h, w, ch = input_shape
    grad = np.asarray(grad)
    r, r_out = _fold(coords[..., 0], h, fill_mode)
    q, q_out = _fold(coords[..., 1], w, fill_mode)
    keep = ~(r_out | q_out)
    out = np.zeros((n, h, w, ch), dtype=np.float64)
    k = np.broadcast_to(np.arange(n)[:, None, None], r.shape)
    if order == 0:
        taps = [(np.clip(np.floor(r + 0.5), 0, h - 1), np.clip(np.floor(q + 0.5), 0, w - 1), np.ones_like(r))]
    else:
        r0, q0 = np.floor(r), np.floor(q)
        fr, fq = r - r0, q - q0
        taps = []
        for dr, wr in ((0, 1 - fr), (1, fr)):
            for dq, wq in ((0, 1 - fq), (1, fq)):
                taps.append((np.clip(r0 + dr, 0, h - 1), np.clip(q0 + dq, 0, w - 1), wr * wq))
    for rows, cols, weight in taps:
        weight = np.where(keep, weight, 0.0)
        np.add.at(out, (k.ravel(), rows.astype(np.int64).ravel(), cols.astype(np.int64).ravel()),
                  (grad * weight[..., None]).reshape(-1, ch))
    return out.astype(grad.dtype, copy=False)


def affine_coords(matrices, oh, ow):
    """The sampling coordinates (n, oh, ow, 2) of a batch of 2x3 matrices."""
    rows, cols = np.meshgrid(np.arange(oh, dtype=np.float64), np.arange(ow, dtype=np.float64), indexing="ij")
    m = np.asarray(matrices, dtype=np.float64)[:, :, :, None, None]
    return np.stack([m[:, 0, 0] * rows + m[:, 0, 1] * cols + m[:, 0, 2],
                     m[:, 1, 0] * rows + m[:, 1, 1] * cols + m[:, 1, 2]], axis=-1)
