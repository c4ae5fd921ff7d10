"""2-D convolution and cross-correlation of images, the way an image-processing course states them.

``convolve2d`` and ``correlate2d`` follow ``scipy.signal.convolve2d`` / ``correlate2d``
(zero boundary, the same "full" / "same" / "valid" output sizes and alignment, and the
same default ``mode="full"``), so a lecture example written with SciPy gives the same
numbers here. The heavy work runs in pycnn's C engine (``pycnn.ops.conv2d`` and
``pycnn.ops.depthwise_conv2d``).

Convolution versus correlation: ``convolve2d`` flips the kernel (true convolution);
``correlate2d`` does not. A ``Conv2D`` layer computes ``correlate2d(..., mode="valid")``
(plus a bias) — every deep-learning framework calls that a "convolution".

Image and kernel shapes:

* image ``(H, W)`` with kernel ``(kh, kw)`` -> one map ``(oh, ow)``;
* image ``(H, W, C)`` with kernel ``(kh, kw)`` -> the kernel filters each channel on its
  own, result ``(oh, ow, C)`` (like filtering the R, G and B planes separately);
* image ``(H, W, C)`` with kernel ``(kh, kw, C)`` -> each channel is filtered with its own
  kernel slice and the results are summed into one map ``(oh, ow)``, exactly what a
  convolutional layer with one filter (and no bias) computes. ``convolve2d`` flips such a
  kernel in the two spatial axes only.

Output size per axis (n = image size, k = kernel size): "full" n + k - 1, "same" n,
"valid" n - k + 1 (the kernel must fit inside the image).

Dtypes: bool, integer and float images and kernels are accepted. The result is float32
when image and kernel promote to float32 under NumPy's rules, otherwise float64
(integers are computed in float64; float16 and long double are computed in float64).
"""

from importlib import resources

import numpy as np

from pycnn import ops

_MODES = ("full", "same", "valid")


def convolve2d(image, kernel, mode="full"):
    """True 2-D convolution (the kernel is flipped) with zero boundary, like ``scipy.signal.convolve2d``.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
    kernel : array_like, shape (kh, kw), or (kh, kw, C) to sum over channels
    mode : {"full", "same", "valid"}
        "full" (default, as in SciPy): every position where image and kernel overlap,
        size n + k - 1. "same": size n, centred on the "full" result as SciPy does
        (for even kernels the extra padding row/column goes on the top/left).
        "valid": only positions where the kernel lies fully inside the image, n - k + 1.

    Returns
    -------
    numpy.ndarray of shape (oh, ow), or (oh, ow, C) for a multichannel image with a
    2-D kernel. See the module docstring for the dtype rule.

    Examples
    --------
    >>> convolve2d([[1, 2], [3, 4]], [[0, 1], [1, 0]])
    array([[0., 1., 2.],
           [1., 5., 4.],
           [3., 4., 0.]])
    """
    image, kernel, dtype = _prepare("convolve2d", image, kernel, mode)
    # Convolution is correlation with the spatially flipped kernel.
    flipped = kernel[::-1, ::-1]
    kh, kw = kernel.shape[:2]
    # SciPy's "same" keeps full[(k-1)//2 : (k-1)//2 + n], i.e. k//2 zeros before.
    padding = _padding(mode, kh, kw, before=lambda k: k // 2)
    return _run(image, flipped, padding, dtype)


def correlate2d(image, kernel, mode="full"):
    """2-D cross-correlation (no kernel flip) with zero boundary, like ``scipy.signal.correlate2d``.

    This is what a convolutional layer computes: ``correlate2d(image, kernel, mode="valid")``
    equals ``pycnn.ops.conv2d`` with ``padding="valid"`` and one filter. The default mode is
    "full" to match SciPy; pass ``mode="valid"`` for the CNN layer's output.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, C)
    kernel : array_like, shape (kh, kw), or (kh, kw, C) to sum over channels
    mode : {"full", "same", "valid"}
        As in :func:`convolve2d`. In "same" mode the extra padding row/column of an even
        kernel goes on the bottom/right, as SciPy does here and as Keras ``padding="same"``
        does, so ``correlate2d(x, k, "same")`` matches a stride-1 ``Conv2D(padding="same")``.

    Returns
    -------
    numpy.ndarray of shape (oh, ow), or (oh, ow, C) for a multichannel image with a
    2-D kernel.

    Examples
    --------
    >>> correlate2d([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]], mode="valid")
    array([[-4., -4.],
           [-4., -4.]])
    """
    image, kernel, dtype = _prepare("correlate2d", image, kernel, mode)
    kh, kw = kernel.shape[:2]
    # SciPy's "same" keeps full[k//2 : k//2 + n], i.e. (k-1)//2 zeros before.
    padding = _padding(mode, kh, kw, before=lambda k: (k - 1) // 2)
    return _run(image, kernel, padding, dtype)


def to_grayscale(image):
    """Convert an image to one luminance channel with the ITU-R BT.601 weights.

    ``(H, W)`` is returned as is (as float), ``(H, W, 1)`` is squeezed, ``(H, W, 3)`` RGB
    becomes ``0.299 R + 0.587 G + 0.114 B`` and ``(H, W, 4)`` RGBA ignores the alpha
    channel. The result is float32 for a float32 image, float64 otherwise; the value
    range is kept (0-255 stays 0-255).
    """
    image = _as_real_array("to_grayscale", "image", image)
    dtype = np.float32 if image.dtype == np.float32 else np.float64
    if image.ndim == 2:
        return image.astype(dtype)
    if image.ndim == 3 and image.shape[-1] == 1:
        return image[..., 0].astype(dtype)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        weights = np.array([0.299, 0.587, 0.114], dtype=dtype)
        return image[..., :3].astype(dtype) @ weights
    raise ValueError(
        "to_grayscale: image must be (H, W), (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA; "
        f"got shape {image.shape}")


def sample_image():
    """The sample photo shipped with pycnn: "cameraman", 128 x 128 grayscale uint8 (0 = black).

    A 4 x 4 block-averaged version of scikit-image's ``camera.png`` (CC0, photographer
    Lav Varshney); see ``pycnn/data/ATTRIBUTION.md``. Returns a new array each call.
    """
    source = resources.files("pycnn") / "data" / "camera_128.npz"
    with source.open("rb") as f, np.load(f, allow_pickle=False) as archive:
        return np.array(archive["image"], dtype=np.uint8)


def _as_real_array(func, what, value):
    """np.asarray that accepts only bool/integer/float data (no complex, object or strings)."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ValueError(f"{func}: {what} must be a rectangular array of numbers; got {exc}") from None
    if not (array.dtype.kind in "biuf"):
        raise TypeError(
            f"{func}: {what} dtype must be bool, integer or float; got {array.dtype} "
            "(convert complex data to real and imaginary parts)")
    return array


def _prepare(func, image, kernel, mode):
    """Validate the arguments and return (image, kernel, compute dtype), both cast to that dtype."""
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{func}: mode must be one of 'full', 'same', 'valid'; got {mode!r}")
    image = _as_real_array(func, "image", image)
    kernel = _as_real_array(func, "kernel", kernel)
    if image.ndim not in (2, 3):
        raise ValueError(
            f"{func}: image must be 2-D (H, W) or 3-D (H, W, C); got shape {image.shape}"
            + (" (pass one image, not a batch; pycnn.ops.conv2d takes batches)" if image.ndim == 4 else ""))
    if kernel.ndim not in (2, 3):
        raise ValueError(f"{func}: kernel must be 2-D (kh, kw) or 3-D (kh, kw, C); got shape {kernel.shape}")
    if image.size == 0:
        raise ValueError(f"{func}: image must not be empty; got shape {image.shape}")
    if kernel.size == 0:
        raise ValueError(f"{func}: kernel must not be empty; got shape {kernel.shape}")
    if kernel.ndim == 3:
        if image.ndim != 3 or image.shape[2] != kernel.shape[2]:
            raise ValueError(
                f"{func}: a 3-D kernel must have one slice per image channel; got image.shape={image.shape}, "
                f"kernel.shape={kernel.shape} (use a 2-D kernel to filter every channel separately)")
    if mode == "valid" and (kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]):
        raise ValueError(
            f"{func}: kernel must fit inside the image in 'valid' mode; got image.shape={image.shape}, "
            f"kernel.shape={kernel.shape} (use mode='same' or 'full', or a smaller kernel)")
    dtype = np.float32 if np.result_type(image, kernel) == np.float32 else np.float64
    return image.astype(dtype, copy=False), kernel.astype(dtype, copy=False), dtype


def _padding(mode, kh, kw, before):
    """Explicit ((top, bottom), (left, right)) zero padding for a valid correlation."""
    if mode == "valid":
        return ((0, 0), (0, 0))
    if mode == "full":
        return ((kh - 1, kh - 1), (kw - 1, kw - 1))
    top, left = before(kh), before(kw)
    return ((top, kh - 1 - top), (left, kw - 1 - left))


def _run(image, kernel, padding, dtype):
    """Correlate one image with one kernel through the C engine (as a batch of one)."""
    kh, kw = kernel.shape[:2]
    if image.ndim == 2:
        out = ops.conv2d(image[None, :, :, None], kernel.reshape(kh, kw, 1, 1), padding=padding)
        return out[0, :, :, 0]
    if kernel.ndim == 2:
        # Same 2-D kernel for every channel: a depthwise conv with depth_multiplier 1.
        channels = image.shape[2]
        weights = np.ascontiguousarray(np.broadcast_to(kernel[:, :, None, None], (kh, kw, channels, 1)))
        out = ops.depthwise_conv2d(image[None], weights, padding=padding)
        return out[0]
    out = ops.conv2d(image[None], kernel[:, :, :, None], padding=padding)
    return out[0, :, :, 0]
