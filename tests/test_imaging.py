"""pycnn.imaging: convolve2d / correlate2d against scipy.signal, to_grayscale, sample_image."""

import doctest
import hashlib
import pathlib

import numpy as np
import pytest

from pycnn import imaging
from pycnn.imaging import convolve2d, correlate2d, sample_image, to_grayscale

signal = pytest.importorskip("scipy.signal", reason="scipy is the oracle for convolve2d/correlate2d")

MODES = ["full", "same", "valid"]
# (image shape, kernel shape): odd, even, non-square, 1x1, kernel as large as the image.
CASES = [
    ((7, 9), (3, 3)),
    ((7, 9), (2, 2)),
    ((9, 7), (4, 3)),
    ((6, 8), (2, 5)),
    ((8, 8), (5, 4)),
    ((5, 6), (1, 1)),
    ((1, 7), (1, 3)),
    ((4, 5), (4, 5)),
]
# Kernels larger than the image only make sense in "full" and "same".
BIG_KERNEL_CASES = [((4, 5), (6, 7)), ((3, 3), (4, 2)), ((2, 9), (5, 3))]


@pytest.mark.parametrize("image_shape,kernel_shape", CASES)
@pytest.mark.parametrize("mode", MODES)
def test_convolve2d_matches_scipy(rng, image_shape, kernel_shape, mode):
    image = rng.standard_normal(image_shape)
    kernel = rng.standard_normal(kernel_shape)
    got = convolve2d(image, kernel, mode=mode)
    want = signal.convolve2d(image, kernel, mode=mode)
    assert got.shape == want.shape
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("image_shape,kernel_shape", CASES)
@pytest.mark.parametrize("mode", MODES)
def test_correlate2d_matches_scipy(rng, image_shape, kernel_shape, mode):
    image = rng.standard_normal(image_shape)
    kernel = rng.standard_normal(kernel_shape)
    got = correlate2d(image, kernel, mode=mode)
    want = signal.correlate2d(image, kernel, mode=mode)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("image_shape,kernel_shape", BIG_KERNEL_CASES)
@pytest.mark.parametrize("mode", ["full", "same"])
def test_kernel_larger_than_image(rng, image_shape, kernel_shape, mode):
    image = rng.standard_normal(image_shape)
    kernel = rng.standard_normal(kernel_shape)
    np.testing.assert_allclose(convolve2d(image, kernel, mode), signal.convolve2d(image, kernel, mode),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(correlate2d(image, kernel, mode), signal.correlate2d(image, kernel, mode),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_photo_sized_images_match_scipy(rng, mode):
    # Sizes where the engine works in several chunks/tiles, unlike the tiny cases above.
    photo = sample_image()
    kernel = rng.standard_normal((5, 4))
    np.testing.assert_allclose(correlate2d(photo, kernel, mode), signal.correlate2d(photo.astype(float), kernel, mode),
                               rtol=1e-10, atol=1e-9)
    rgb = rng.random((97, 130, 3))
    got = convolve2d(rgb, kernel, mode)
    for c in range(3):
        np.testing.assert_allclose(got[..., c], signal.convolve2d(rgb[..., c], kernel, mode), rtol=1e-10, atol=1e-10)


def test_default_mode_is_full_like_scipy(rng):
    image = rng.standard_normal((5, 6))
    kernel = rng.standard_normal((3, 2))
    assert convolve2d(image, kernel).shape == (7, 7)
    np.testing.assert_allclose(correlate2d(image, kernel), signal.correlate2d(image, kernel), atol=1e-12)
    np.testing.assert_allclose(convolve2d(image, kernel), signal.convolve2d(image, kernel), atol=1e-12)


def test_hand_computed_valid_correlation():
    # Each output is the sum of the 2x2 window times [[1, 0], [0, -1]]: top-left minus bottom-right.
    image = np.arange(1, 10).reshape(3, 3)
    got = correlate2d(image, [[1, 0], [0, -1]], mode="valid")
    np.testing.assert_array_equal(got, [[1 - 5, 2 - 6], [4 - 8, 5 - 9]])
    # Convolution flips the kernel: bottom-right minus top-left.
    np.testing.assert_array_equal(convolve2d(image, [[1, 0], [0, -1]], mode="valid"), [[4, 4], [4, 4]])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("func,oracle", [(convolve2d, "convolve2d"), (correlate2d, "correlate2d")])
def test_multichannel_2d_kernel_filters_each_channel(rng, mode, func, oracle):
    image = rng.standard_normal((6, 7, 3))
    kernel = rng.standard_normal((3, 2))
    got = func(image, kernel, mode=mode)
    want = np.stack([getattr(signal, oracle)(image[:, :, c], kernel, mode=mode) for c in range(3)], axis=-1)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("func,oracle", [(convolve2d, "convolve2d"), (correlate2d, "correlate2d")])
def test_multichannel_3d_kernel_sums_over_channels(rng, mode, func, oracle):
    image = rng.standard_normal((7, 6, 4))
    kernel = rng.standard_normal((2, 3, 4))
    got = func(image, kernel, mode=mode)
    want = sum(getattr(signal, oracle)(image[:, :, c], kernel[:, :, c], mode=mode) for c in range(4))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_correlate_same_matches_keras_same_padding(rng):
    # A stride-1 Conv2D(padding="same") with one filter; tests/reference.py is an independent loop reference.
    from tests import reference
    image = rng.standard_normal((9, 8, 2))
    for kernel_shape in [(3, 3, 2), (4, 2, 2), (2, 5, 2)]:
        kernel = rng.standard_normal(kernel_shape)
        want = reference.conv2d(image[None], kernel[..., None], padding="same")[0, :, :, 0]
        np.testing.assert_allclose(correlate2d(image, kernel, mode="same"), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64, np.bool_])
def test_integer_and_bool_images_are_computed_in_float64(rng, dtype):
    image = rng.integers(0, 2 if dtype is np.bool_ else 200, size=(6, 5)).astype(dtype)
    kernel = np.array([[1, -2], [3, 1]], dtype=np.int64)
    got = convolve2d(image, kernel, mode="same")
    assert got.dtype == np.float64
    # No integer overflow: compare with SciPy on float64 copies.
    np.testing.assert_array_equal(got, signal.convolve2d(image.astype(np.float64), kernel.astype(np.float64),
                                                         mode="same"))


def test_large_uint8_values_do_not_wrap():
    image = np.full((3, 3), 255, dtype=np.uint8)
    assert correlate2d(image, np.ones((3, 3), dtype=np.uint8), mode="valid")[0, 0] == 9 * 255


def test_result_dtype_follows_numpy_promotion(rng):
    image32 = rng.standard_normal((5, 5)).astype(np.float32)
    kernel32 = rng.standard_normal((3, 3)).astype(np.float32)
    got = correlate2d(image32, kernel32, mode="same")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, signal.correlate2d(image32.astype(np.float64), kernel32.astype(np.float64),
                                                       mode="same"), rtol=1e-5, atol=1e-5)
    assert correlate2d(image32, kernel32.astype(np.float64)).dtype == np.float64
    assert correlate2d(image32.astype(np.uint8), kernel32).dtype == np.float32  # uint8 + float32 -> float32


def test_non_contiguous_inputs(rng):
    base = rng.standard_normal((12, 14))
    image = base[::2, ::-1]
    kernel = rng.standard_normal((4, 6))[::2, ::2]
    np.testing.assert_allclose(convolve2d(image, kernel, "valid"), signal.convolve2d(image, kernel, "valid"),
                               atol=1e-12)


def test_nested_lists_are_accepted():
    got = convolve2d([[1, 2], [3, 4]], [[0, 1], [1, 0]])
    np.testing.assert_array_equal(got, [[0, 1, 2], [1, 5, 4], [3, 4, 0]])


@pytest.mark.parametrize("func", [convolve2d, correlate2d])
@pytest.mark.parametrize("image,kernel,mode,exc,fragments", [
    (np.zeros((4, 4)), np.ones((2, 2)), "ful", ValueError, ["mode must be one of", "'ful'"]),
    (np.zeros(5), np.ones((2, 2)), "full", ValueError, ["image must be 2-D (H, W) or 3-D", "(5,)"]),
    (np.zeros((1, 4, 4, 1)), np.ones((2, 2)), "full", ValueError, ["(1, 4, 4, 1)", "not a batch"]),
    (np.zeros((4, 4)), np.ones(3), "full", ValueError, ["kernel must be 2-D", "(3,)"]),
    (np.zeros((0, 4)), np.ones((2, 2)), "full", ValueError, ["image must not be empty", "(0, 4)"]),
    (np.zeros((4, 4)), np.ones((0, 2)), "full", ValueError, ["kernel must not be empty"]),
    (np.zeros((4, 4)), np.ones((2, 2, 3)), "full", ValueError, ["one slice per image channel", "(2, 2, 3)"]),
    (np.zeros((4, 4, 2)), np.ones((2, 2, 3)), "same", ValueError, ["image.shape=(4, 4, 2)"]),
    (np.zeros((4, 4)), np.ones((5, 2)), "valid", ValueError, ["must fit inside the image", "(5, 2)"]),
    (np.zeros((4, 4), dtype=complex), np.ones((2, 2)), "full", TypeError, ["image dtype", "complex128"]),
    (np.zeros((4, 4)), np.array([["a", "b"]]), "full", TypeError, ["kernel dtype"]),
    (np.zeros((4, 4), dtype=object), np.ones((2, 2)), "full", TypeError, ["image dtype", "object"]),
    ([[1, 2], [3]], np.ones((1, 1)), "full", ValueError, ["image must be a rectangular array"]),
])
def test_errors_name_the_function_and_values(func, image, kernel, mode, exc, fragments):
    with pytest.raises(exc) as info:
        func(image, kernel, mode=mode)
    message = str(info.value)
    assert message.startswith(f"{func.__name__}: ")
    for fragment in fragments:
        assert fragment in message


# ------------------------------------------------------------------ to_grayscale


def test_to_grayscale_uses_bt601_weights(rng):
    rgb = rng.integers(0, 256, size=(4, 5, 3)).astype(np.uint8)
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    np.testing.assert_allclose(to_grayscale(rgb), 0.299 * r + 0.587 * g + 0.114 * b, rtol=1e-12)
    rgba = np.concatenate([rgb, np.full((4, 5, 1), 7, np.uint8)], axis=-1)
    np.testing.assert_allclose(to_grayscale(rgba), to_grayscale(rgb))  # alpha ignored
    np.testing.assert_array_equal(to_grayscale(rgb[..., :1]), rgb[..., 0])
    assert to_grayscale(rgb.astype(np.float32)).dtype == np.float32
    assert to_grayscale(rgb[..., 0]).dtype == np.float64
    # Pure white stays white: the weights sum to 1.
    assert to_grayscale(np.full((1, 1, 3), 255.0))[0, 0] == pytest.approx(255.0)


def test_to_grayscale_rejects_other_channel_counts():
    with pytest.raises(ValueError, match=r"to_grayscale: image must be .*got shape \(2, 2, 2\)"):
        to_grayscale(np.zeros((2, 2, 2)))


# ------------------------------------------------------------------ sample image


def test_sample_image_is_the_shipped_photo():
    image = sample_image()
    assert image.shape == (128, 128) and image.dtype == np.uint8
    # A real photo, not a blank or synthetic array: wide range, many distinct values.
    assert image.min() < 20 and image.max() > 230 and len(np.unique(image)) > 150
    image[0, 0] = 0
    assert sample_image() is not image  # a fresh array each call


def test_sample_image_file_loads_without_pickle():
    path = pathlib.Path(imaging.__file__).parent / "data" / "camera_128.npz"
    with np.load(path, allow_pickle=False) as archive:
        assert archive.files == ["image"]
        assert archive["image"].dtype == np.uint8


def test_sample_image_is_the_block_mean_of_camera_png():
    source = pathlib.Path("/work/shared/data/images/camera.png")
    if not source.exists():
        pytest.skip("the shared data folder with camera.png is not available")
    pil_image = pytest.importorskip("PIL.Image", reason="Pillow decodes the original PNG")
    with pil_image.open(source) as img:
        full = np.asarray(img, dtype=np.float64)
    # Independent route: sum the 16 strided sub-images instead of reshaping.
    total = sum(full[i::4, j::4] for i in range(4) for j in range(4))
    expected = np.floor(total / 16 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(sample_image(), expected)
    assert hashlib.sha256(sample_image().tobytes()).hexdigest() in (
        (pathlib.Path(imaging.__file__).parent / "data" / "ATTRIBUTION.md").read_text())


def test_docstring_examples():
    result = doctest.testmod(imaging, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
