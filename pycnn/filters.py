"""Classic hand-designed image kernels, and the edge detection a CNN's first layer learns.

Every kernel is returned by a function, as a new float64 array (so changing one never
changes the next), and can also be looked up by name with :func:`get`. Kernels are written
for **cross-correlation**, the operation a ``Conv2D`` layer and :func:`apply` perform (no
flip): the kernel's top-left weight multiplies the top-left pixel under it. With that
orientation:

* ``vertical_edge`` (the lecture's ``[[1, 0, -1]] * 3``) is positive where the image is
  brighter on the left than on the right;
* ``sobel_x``, ``prewitt_x`` and ``scharr_x`` (``[-1, 0, 1]`` columns) are positive where
  brightness increases to the right, ``*_y`` where it increases downwards (row index).

>>> from pycnn import filters
>>> filters.get("sobel_x")
array([[-1.,  0.,  1.],
       [-2.,  0.,  2.],
       [-1.,  0.,  1.]])
"""

import math

import numpy as np

from pycnn.imaging import correlate2d, to_grayscale

__all__ = [
    "vertical_edge", "horizontal_edge", "sobel_x", "sobel_y", "prewitt_x", "prewitt_y",
    "scharr_x", "scharr_y", "laplacian", "ridge", "box_blur", "gaussian_blur", "sharpen",
    "emboss", "get", "names", "apply", "edge_map",
]


def vertical_edge():
    """The lecture's vertical edge detector ``[[1, 0, -1], [1, 0, -1], [1, 0, -1]]``.

    On a 6 x 6 image whose left half is 10 and right half 0 it gives 30 in the two
    middle columns of the "valid" output and 0 elsewhere: a bright stripe on the edge.
    """
    return np.array([[1, 0, -1]] * 3, dtype=np.float64)


def horizontal_edge():
    """The transpose of :func:`vertical_edge`: positive where the top is brighter than the bottom."""
    return vertical_edge().T.copy()


def sobel_x():
    """Sobel derivative in x ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]``: smooths in y, differentiates in x."""
    return np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)


def sobel_y():
    """Sobel derivative in y (the transpose of :func:`sobel_x`): positive where brightness increases downwards."""
    return sobel_x().T.copy()


def prewitt_x():
    """Prewitt derivative in x ``[[-1, 0, 1]] * 3`` (equal smoothing weights, unlike Sobel's 1-2-1)."""
    return np.array([[-1, 0, 1]] * 3, dtype=np.float64)


def prewitt_y():
    """Prewitt derivative in y (the transpose of :func:`prewitt_x`)."""
    return prewitt_x().T.copy()


def scharr_x():
    """Scharr derivative in x ``[[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]``: better rotational symmetry than Sobel."""
    return np.array([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]], dtype=np.float64)


def scharr_y():
    """Scharr derivative in y (the transpose of :func:`scharr_x`)."""
    return scharr_x().T.copy()


def laplacian(neighbours=4):
    """Discrete Laplacian (second derivative), zero on flat and linearly varying regions.

    ``neighbours=4``: ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``;
    ``neighbours=8``: ``[[1, 1, 1], [1, -8, 1], [1, 1, 1]]`` (also uses the diagonals).
    """
    if isinstance(neighbours, bool) or neighbours not in (4, 8):
        raise ValueError(f"laplacian: neighbours must be 4 or 8; got {neighbours!r}")
    if neighbours == 4:
        return np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
    return np.array([[1, 1, 1], [1, -8, 1], [1, 1, 1]], dtype=np.float64)


def ridge():
    """Ridge / outline detector ``[[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]`` (minus the 8-neighbour Laplacian).

    Bright where a pixel is brighter than its surroundings: thin lines and outlines.
    """
    return -laplacian(8)


def box_blur(size=3):
    """Mean filter: a ``size x size`` kernel of ``1 / size**2`` (sums to 1)."""
    size = _positive_int("box_blur", "size", size)
    return np.full((size, size), 1.0 / (size * size))


def gaussian_blur(size=5, sigma=1.0):
    """Normalised Gaussian blur kernel (sums to 1), ``size x size``, standard deviation ``sigma`` pixels.

    Weights are ``exp(-(dy**2 + dx**2) / (2 sigma**2))`` at integer offsets from the centre
    ``(size - 1) / 2`` (half-integer offsets for an even ``size``), divided by their sum.
    """
    size = _positive_int("gaussian_blur", "size", size)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)) \
            or not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"gaussian_blur: sigma must be a positive finite number; got {sigma!r}")
    offsets = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-offsets ** 2 / (2.0 * float(sigma) ** 2))
    kernel = np.outer(g, g)  # separable: the 2-D Gaussian is the outer product of 1-D ones
    return kernel / kernel.sum()


def sharpen():
    """Sharpen ``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]``: the image plus its negative 4-neighbour Laplacian."""
    return np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64)


def emboss():
    """Emboss ``[[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]``: a diagonal derivative plus the image, a relief look."""
    return np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64)


_REGISTRY = {
    "vertical_edge": vertical_edge,
    "horizontal_edge": horizontal_edge,
    "sobel_x": sobel_x,
    "sobel_y": sobel_y,
    "prewitt_x": prewitt_x,
    "prewitt_y": prewitt_y,
    "scharr_x": scharr_x,
    "scharr_y": scharr_y,
    "laplacian": laplacian,
    "ridge": ridge,
    "box_blur": box_blur,
    "gaussian_blur": gaussian_blur,
    "sharpen": sharpen,
    "emboss": emboss,
}

# Gradient pairs (x, y) used by edge_map.
_EDGE_METHODS = {
    "sobel": (sobel_x, sobel_y),
    "prewitt": (prewitt_x, prewitt_y),
    "scharr": (scharr_x, scharr_y),
    "simple": (vertical_edge, horizontal_edge),
}


def names():
    """The kernel names :func:`get` knows, sorted."""
    return sorted(_REGISTRY)


def get(name, **params):
    """Return the kernel called ``name`` (case-insensitive), built with ``params`` if it takes any.

    >>> get("gaussian_blur", size=3, sigma=0.5).shape
    (3, 3)
    >>> get("laplacian", neighbours=8)[1, 1]
    np.float64(-8.0)
    """
    if not isinstance(name, str):
        raise TypeError(f"filters.get: name must be a string; got {type(name).__name__}")
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise ValueError(f"filters.get: name must be one of {', '.join(names())}; got {name!r}")
    try:
        return _REGISTRY[key](**params)
    except TypeError:
        raise TypeError(
            f"filters.get: parameters must be ones that filters.{key}() accepts; got {sorted(params)} "
            f"(see help(pycnn.filters.{key}))") from None


def apply(image, kernel_or_name, mode="same"):
    """Filter an image with a kernel (array) or a kernel name, by cross-correlation as a Conv2D layer does.

    ``mode="same"`` (default) keeps the image size with zero padding (see
    :func:`pycnn.imaging.correlate2d` for the modes and the shapes accepted; an RGB
    image with a 2-D kernel is filtered channel by channel). Named kernels use their
    default parameters (build other ones with :func:`get`) and are used in float32 when the
    image is float32, so a float32 image gives a float32 result.
    """
    if isinstance(kernel_or_name, str):
        kernel = get(kernel_or_name)
        if getattr(image, "dtype", None) == np.float32:
            kernel = kernel.astype(np.float32)
    else:
        kernel = kernel_or_name
    return correlate2d(image, kernel, mode=mode)


def edge_map(image, method="sobel"):
    """Gradient-magnitude edge map ``sqrt(gx**2 + gy**2)``, same size as the image.

    ``method`` picks the derivative pair: "sobel" (default), "prewitt", "scharr", or
    "simple" (the lecture's vertical/horizontal edge kernels). RGB(A) input is first
    converted to grayscale with the ITU-R BT.601 weights (:func:`pycnn.imaging.to_grayscale`).
    The border is extended by repeating the edge pixels (not zero padding), so the frame
    of the picture does not show up as an edge. Returns float64 (float32 for a float32
    image), in the units of the image times the kernel's gain (up to 4 x the step
    height for Sobel).
    """
    if not isinstance(method, str) or method.strip().lower() not in _EDGE_METHODS:
        raise ValueError(f"edge_map: method must be one of {', '.join(sorted(_EDGE_METHODS))}; got {method!r}")
    make_x, make_y = _EDGE_METHODS[method.strip().lower()]
    gray = to_grayscale(image)
    if gray.size == 0:
        raise ValueError(f"edge_map: image must not be empty; got shape {np.shape(image)}")
    padded = np.pad(gray, 1, mode="edge")  # all edge kernels are 3 x 3
    dtype = gray.dtype
    gx = correlate2d(padded, make_x().astype(dtype), mode="valid")
    gy = correlate2d(padded, make_y().astype(dtype), mode="valid")
    return np.hypot(gx, gy)


def _positive_int(func, what, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{func}: {what} must be a positive integer; got {value!r}")
    return int(value)
