"""pycnn.filters: kernel values, hand-computed responses, get/apply/edge_map against plain NumPy."""

import doctest

import numpy as np
import pytest

from pycnn import filters
from pycnn.imaging import correlate2d

ALL_NAMES = ["box_blur", "emboss", "gaussian_blur", "horizontal_edge", "laplacian", "prewitt_x", "prewitt_y",
             "ridge", "scharr_x", "scharr_y", "sharpen", "sobel_x", "sobel_y", "vertical_edge"]


def naive_correlate_valid(image, kernel):
    """Plain double loop over output positions: sum(window * kernel)."""
    kh, kw = kernel.shape
    out = np.empty((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i:i + kh, j:j + kw] * kernel)
    return out


# ------------------------------------------------------------------ kernel values


def test_lecture_vertical_edge_example():
    # The lecture: a 6x6 image, left half 10, right half 0, filtered with [[1, 0, -1]] x 3
    # gives a 4x4 map with 30 in the two middle columns (the detected edge) and 0 elsewhere.
    image = np.zeros((6, 6))
    image[:, :3] = 10
    got = filters.apply(image, "vertical_edge", mode="valid")
    np.testing.assert_array_equal(got, [[0, 30, 30, 0]] * 4)
    # Dark-to-bright flips the sign.
    np.testing.assert_array_equal(filters.apply(10 - image, "vertical_edge", mode="valid"), [[0, -30, -30, 0]] * 4)
    # The horizontal detector sees the same edge in the transposed image.
    np.testing.assert_array_equal(filters.apply(image.T, "horizontal_edge", mode="valid"), np.array([[0, 30, 30, 0]] * 4).T)


def test_fixed_kernel_values():
    np.testing.assert_array_equal(filters.vertical_edge(), [[1, 0, -1], [1, 0, -1], [1, 0, -1]])
    np.testing.assert_array_equal(filters.horizontal_edge(), [[1, 1, 1], [0, 0, 0], [-1, -1, -1]])
    np.testing.assert_array_equal(filters.sobel_x(), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(filters.sobel_y(), [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
    np.testing.assert_array_equal(filters.prewitt_x(), [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]])
    np.testing.assert_array_equal(filters.prewitt_y(), [[-1, -1, -1], [0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(filters.scharr_x(), [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]])
    np.testing.assert_array_equal(filters.scharr_y(), [[-3, -10, -3], [0, 0, 0], [3, 10, 3]])
    np.testing.assert_array_equal(filters.laplacian(), [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    np.testing.assert_array_equal(filters.laplacian(8), [[1, 1, 1], [1, -8, 1], [1, 1, 1]])
    np.testing.assert_array_equal(filters.ridge(), [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])
    np.testing.assert_array_equal(filters.sharpen(), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    np.testing.assert_array_equal(filters.emboss(), [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    for name in ALL_NAMES:
        assert filters.get(name).dtype == np.float64


def test_kernels_are_fresh_arrays():
    k = filters.sobel_x()
    k[0, 0] = 99
    assert filters.sobel_x()[0, 0] == -1
    g = filters.get("gaussian_blur")
    g[:] = 0
    assert filters.get("gaussian_blur").sum() == pytest.approx(1.0)


@pytest.mark.parametrize("name,expected", [("sobel_x", 8.0), ("prewitt_x", 6.0), ("scharr_x", 32.0),
                                           ("vertical_edge", -6.0)])
def test_derivatives_on_a_ramp(name, expected):
    # Brightness = column index: right minus left neighbour is 2, times the column weights (1+2+1 for Sobel...).
    ramp = np.tile(np.arange(7.0), (5, 1))
    np.testing.assert_allclose(filters.apply(ramp, name, mode="valid"), np.full((3, 5), expected))
    # The y kernel sees no change along the rows.
    y_name = name.replace("_x", "_y").replace("vertical", "horizontal")
    np.testing.assert_allclose(filters.apply(ramp, y_name, mode="valid"), 0.0, atol=1e-12)
    np.testing.assert_allclose(filters.apply(ramp.T, y_name, mode="valid"), np.full((5, 3), expected))


def test_laplacian_of_a_parabola_is_two():
    parabola = np.tile(np.arange(6.0) ** 2, (4, 1))  # f = x**2, f'' = 2
    np.testing.assert_allclose(filters.apply(parabola, "laplacian", mode="valid"), 2.0)
    np.testing.assert_allclose(filters.apply(parabola, filters.laplacian(8), mode="valid"), 3 * 2.0)


def test_kernel_sums():
    for name in ["sobel_x", "sobel_y", "prewitt_x", "prewitt_y", "scharr_x", "scharr_y", "vertical_edge",
                 "horizontal_edge", "laplacian", "ridge"]:
        assert filters.get(name).sum() == 0, name  # flat regions give 0
    for name in ["sharpen", "emboss", "box_blur", "gaussian_blur"]:
        assert filters.get(name).sum() == pytest.approx(1.0), name  # flat regions keep their brightness
    assert filters.laplacian(8).sum() == 0


@pytest.mark.parametrize("size", [1, 2, 3, 5, 6])
def test_box_blur(size):
    k = filters.box_blur(size)
    assert k.shape == (size, size)
    np.testing.assert_allclose(k, 1.0 / size ** 2)


@pytest.mark.parametrize("size,sigma", [(3, 0.5), (5, 1.0), (7, 2.0), (4, 1.5), (1, 1.0)])
def test_gaussian_blur_is_a_normalised_gaussian(size, sigma):
    k = filters.gaussian_blur(size, sigma)
    assert k.shape == (size, size)
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])
    # Independent formula on a grid of squared distances from the centre.
    yy, xx = np.mgrid[0:size, 0:size]
    c = (size - 1) / 2
    expected = np.exp(-((yy - c) ** 2 + (xx - c) ** 2) / (2 * sigma ** 2))
    np.testing.assert_allclose(k, expected / expected.sum(), rtol=1e-12)
    if size % 2:
        assert k[size // 2, size // 2] == k.max()


def test_box_blur_averages_a_neighbourhood():
    image = np.arange(16.0).reshape(4, 4)
    got = filters.apply(image, "box_blur", mode="valid")
    np.testing.assert_allclose(got, [[5, 6], [9, 10]])  # mean of each 3x3 window of 0..15


@pytest.mark.parametrize("func,args,fragment", [
    (filters.laplacian, (6,), "laplacian: neighbours must be 4 or 8; got 6"),
    (filters.box_blur, (0,), "box_blur: size must be a positive integer; got 0"),
    (filters.box_blur, (2.5,), "box_blur: size must be a positive integer; got 2.5"),
    (filters.gaussian_blur, (5, 0.0), "gaussian_blur: sigma must be a positive finite number; got 0.0"),
    (filters.gaussian_blur, (5, float("nan")), "gaussian_blur: sigma must be a positive finite number"),
    (filters.gaussian_blur, (-1, 1.0), "gaussian_blur: size must be a positive integer; got -1"),
])
def test_kernel_parameter_errors(func, args, fragment):
    with pytest.raises(ValueError) as info:
        func(*args)
    assert fragment in str(info.value)


# ------------------------------------------------------------------ get / apply


def test_get_knows_every_kernel():
    assert filters.names() == ALL_NAMES
    for name in ALL_NAMES:
        np.testing.assert_array_equal(filters.get(name), getattr(filters, name)())
    np.testing.assert_array_equal(filters.get("  Sobel_X "), filters.sobel_x())
    np.testing.assert_array_equal(filters.get("gaussian_blur", size=3, sigma=0.7), filters.gaussian_blur(3, 0.7))
    np.testing.assert_array_equal(filters.get("laplacian", neighbours=8), filters.laplacian(8))


def test_get_errors():
    with pytest.raises(ValueError) as info:
        filters.get("sobel")
    message = str(info.value)
    assert message.startswith("filters.get: name must be one of ") and "'sobel'" in message
    for name in ALL_NAMES:
        assert name in message
    with pytest.raises(TypeError, match="filters.get: parameters must be ones that filters.sobel_x"):
        filters.get("sobel_x", size=3)
    with pytest.raises(TypeError, match="filters.get: name must be a string; got int"):
        filters.get(3)


def test_apply_is_same_mode_correlation(rng):
    image = rng.standard_normal((9, 11))
    kernel = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(filters.apply(image, kernel), correlate2d(image, kernel, mode="same"))
    # No flip: a kernel with one off-centre tap picks the neighbour it points at.
    picker = np.zeros((3, 3))
    picker[1, 2] = 1  # the right-hand neighbour
    np.testing.assert_array_equal(filters.apply(image, picker)[:, :-1], image[:, 1:])
    got = filters.apply(image, "sobel_x", mode="valid")
    np.testing.assert_allclose(got, naive_correlate_valid(image, filters.sobel_x()), rtol=1e-12, atol=1e-12)


def test_apply_keeps_float32_for_named_kernels(rng):
    image = rng.standard_normal((6, 6)).astype(np.float32)
    assert filters.apply(image, "sharpen").dtype == np.float32
    assert filters.apply(image.astype(np.float64), "sharpen").dtype == np.float64


def test_apply_filters_rgb_channel_by_channel(rng):
    rgb = rng.integers(0, 256, size=(5, 6, 3)).astype(np.uint8)
    got = filters.apply(rgb, "box_blur", mode="valid")
    assert got.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_allclose(got[..., c], naive_correlate_valid(rgb[..., c].astype(float), filters.box_blur()),
                                   rtol=1e-12)


# ------------------------------------------------------------------ edge_map


def numpy_edge_map(gray, kx, ky):
    """Independent gradient magnitude: edge-replicated border, shifted-slice sums."""
    padded = np.pad(gray.astype(np.float64), 1, mode="edge")
    h, w = gray.shape
    gx = np.zeros((h, w))
    gy = np.zeros((h, w))
    for dy in range(3):
        for dx in range(3):
            window = padded[dy:dy + h, dx:dx + w]
            gx += kx[dy][dx] * window
            gy += ky[dy][dx] * window
    return np.sqrt(gx ** 2 + gy ** 2)


SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
SOBEL_Y = [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]


@pytest.mark.parametrize("method,kx", [
    ("sobel", SOBEL_X),
    ("prewitt", [[-1, 0, 1]] * 3),
    ("scharr", [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]),
    ("simple", [[1, 0, -1]] * 3),
])
def test_edge_map_matches_numpy(rng, method, kx):
    ky = np.array(kx).T
    gray = rng.integers(0, 256, size=(13, 10)).astype(np.uint8)
    got = filters.edge_map(gray, method=method)
    assert got.shape == gray.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, numpy_edge_map(gray, kx, ky), rtol=1e-12, atol=1e-9)


def test_edge_map_converts_rgb_with_bt601(rng):
    rgb = rng.random((8, 9, 3))
    gray = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    np.testing.assert_allclose(filters.edge_map(rgb), numpy_edge_map(gray, SOBEL_X, SOBEL_Y), rtol=1e-12,
                               atol=1e-12)
    assert filters.edge_map(rgb.astype(np.float32)).dtype == np.float32


def test_edge_map_of_a_step_and_of_a_flat_image():
    flat = np.full((6, 7), 50.0)
    np.testing.assert_array_equal(filters.edge_map(flat), 0.0)  # no frame around the picture
    step = np.zeros((5, 6))
    step[:, 3:] = 10.0
    expected = np.zeros((5, 6))
    expected[:, 2:4] = 40.0  # Sobel column weights 1 + 2 + 1 times the step of 10
    np.testing.assert_allclose(filters.edge_map(step), expected)


def test_edge_map_errors():
    with pytest.raises(ValueError, match=r"edge_map: method must be one of prewitt, scharr, simple, sobel; got 'canny'"):
        filters.edge_map(np.zeros((4, 4)), method="canny")
    with pytest.raises(ValueError, match=r"to_grayscale: image must be"):
        filters.edge_map(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match=r"edge_map: image must not be empty"):
        filters.edge_map(np.zeros((0, 4)))


def test_docstring_examples():
    result = doctest.testmod(filters, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
