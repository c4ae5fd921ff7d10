"""Elastic deformation (Simard, Steinkraus & Platt, 2003): local warping of images.

Each pixel gets a random displacement drawn uniformly from [-1, 1] in each direction;
the two displacement fields are smoothed with a Gaussian of standard deviation
``sigma`` pixels and scaled by ``alpha`` pixels, and the image is resampled at
``(row + d_row, col + d_col)`` by the C warp.  Small ``sigma`` gives noisy, local
jitter; large ``sigma`` gives smooth, rubber-sheet deformations.
"""
import numpy as np

from pycnn import backend
from pycnn.preprocessing import _warp


def _gaussian_matrix(n, sigma):
    """The (n, n) matrix of a 1-D Gaussian filter with SciPy's "reflect" boundary.

    Matches ``scipy.ndimage.gaussian_filter1d(mode="reflect", truncate=4.0)``: the kernel
    radius is ``int(4 * sigma + 0.5)`` and taps beyond an edge fold back (dcba|abcd).
    """
    radius = int(4.0 * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    g = np.zeros((n, n))
    period = 2 * n
    for i in range(n):
        j = np.mod(i + taps, period)
        j = np.where(j >= n, period - 1 - j, j)
        np.add.at(g[i], j, kernel)
    return g


def displacement_fields(n, h, w, alpha, sigma, rng):
    """Smoothed random displacements, shape (n, h, w, 2) (row and column offsets in pixels)."""
    raw = rng.uniform(-1.0, 1.0, (n, h, w, 2))
    gh, gw = _gaussian_matrix(h, sigma), _gaussian_matrix(w, sigma)
    smooth = np.einsum("ij,njkc,lk->nilc", gh, raw, gw, optimize=True)
    return alpha * smooth


def _check_positive(who, name, value, allow_zero):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{who}: {name} must be a number; got {value!r}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{who}: {name} must be a finite number {rule}; got {value!r}")
    return float(value)


def elastic_transform(x, alpha=34.0, sigma=4.0, seed=None, interpolation_order=1,
                      fill_mode="reflect", cval=0.0):
    """Elastically deform one image (h, w, c), a grayscale image (h, w) or a batch (n, h, w, c).

    Args:
        alpha: displacement strength in pixels (after smoothing); 0 returns a copy.
        sigma: Gaussian smoothing of the displacement fields, in pixels (> 0).
        seed: int seed; default ``pycnn.backend.get_rng()``.
        interpolation_order: 0 (nearest) or 1 (bilinear).
        fill_mode, cval: how positions outside the image are filled (constant / nearest /
            reflect / wrap), as for ``ImageDataGenerator``.
    Returns a float array of the input's shape (float32 unless the input is float64).
    """
    who = "elastic_transform"
    alpha = _check_positive(who, "alpha", alpha, allow_zero=True)
    sigma = _check_positive(who, "sigma", sigma, allow_zero=False)
    x = np.asarray(x)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"{who}: x must be (h, w), (h, w, c) or (n, h, w, c); got shape {x.shape}")
    dtype = np.float64 if x.dtype == np.float64 else np.float32
    batch = x.astype(dtype)
    if x.ndim == 2:
        batch = batch[None, :, :, None]
    elif x.ndim == 3:
        batch = batch[None]
    n, h, w, _ = batch.shape
    rng = backend.get_rng() if seed is None else np.random.default_rng(seed)
    disp = displacement_fields(n, h, w, alpha, sigma, rng)
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    coords = np.stack([rows[None] + disp[..., 0], cols[None] + disp[..., 1]], axis=-1)
    out = _warp.coords_warp(np.ascontiguousarray(batch), coords, interpolation_order, fill_mode, cval)
    return out.reshape(x.shape)
