"""The C geometric warp (csrc/augment.c) against independent references.

References: a slow per-pixel NumPy implementation of SciPy's documented sampling rules
(written here), and scipy.ndimage.affine_transform / map_coordinates where installed.
"""
import numpy as np
import pytest

from pycnn import _engine
from pycnn.preprocessing import _warp
from pycnn.preprocessing.elastic import _gaussian_matrix, displacement_fields, elastic_transform

MODES = ["constant", "nearest", "reflect", "wrap"]


def _fold(c, n, mode):
    """SciPy's boundary rule for a real coordinate; None means "outside" (constant mode)."""
    if 0 <= c <= n - 1:
        return c
    if mode == "constant":
        return None
    if mode == "nearest":
        return min(max(c, 0.0), n - 1.0)
    if n == 1:
        return 0.0
    if mode == "wrap":                       # SciPy's "wrap": period n - 1
        return c % (n - 1)
    t = (c + 0.5) % (2 * n) - 0.5            # reflect: half-sample symmetric, period 2n
    return 2 * n - 1 - t if t > n - 0.5 else t


def _sample(img, r, c, order, mode, cval):
    h, w, ch = img.shape
    r, c = _fold(r, h, mode), _fold(c, w, mode)
    if r is None or c is None:
        return np.full(ch, cval)
    if order == 0:
        i, j = int(np.floor(r + 0.5)), int(np.floor(c + 0.5))
        return img[min(max(i, 0), h - 1), min(max(j, 0), w - 1)].astype(np.float64)
    i0, j0 = int(np.floor(r)), int(np.floor(c))
    fr, fc = r - i0, c - j0
    out = np.zeros(ch)
    for di, wi in ((0, 1 - fr), (1, fr)):
        for dj, wj in ((0, 1 - fc), (1, fc)):
            ii, jj = min(max(i0 + di, 0), h - 1), min(max(j0 + dj, 0), w - 1)
            out += wi * wj * img[ii, jj]
    return out


def reference_affine(x, mats, order, mode, cval):
    n, h, w, ch = x.shape
    y = np.zeros((n, h, w, ch))
    for k in range(n):
        for i in range(h):
            for j in range(w):
                r = mats[k, 0, 0] * i + mats[k, 0, 1] * j + mats[k, 0, 2]
                c = mats[k, 1, 0] * i + mats[k, 1, 1] * j + mats[k, 1, 2]
                y[k, i, j] = _sample(x[k], r, c, order, mode, cval)
    return y


def _random_case(rng, n=3, max_size=9):
    h, w, ch = (int(v) for v in rng.integers(1, max_size, 3))
    x = rng.standard_normal((n, h, w, ch))
    mats = rng.standard_normal((n, 2, 3)) * np.array([1.3, 1.3, 5.0])
    return x, mats


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_warp_matches_numpy_reference(mode, order, dtype):
    rng = np.random.default_rng(10 * MODES.index(mode) + order)
    for _ in range(6):
        x, mats = _random_case(rng)
        x = x.astype(dtype)
        got = _warp.affine_warp(x, mats, order, mode, cval=-2.5)
        assert got.dtype == dtype and got.shape == x.shape
        want = reference_affine(x.astype(np.float64), mats, order, mode, -2.5)
        np.testing.assert_allclose(got, want, atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", [0, 1])
def test_affine_warp_matches_scipy(mode, order):
    ndimage = pytest.importorskip("scipy.ndimage", reason="SciPy is the oracle for this comparison")
    rng = np.random.default_rng(7 + order)
    for _ in range(20):
        x, mats = _random_case(rng, n=2, max_size=14)
        got = _warp.affine_warp(x, mats, order, mode, cval=3.0)
        for k in range(len(x)):
            for c in range(x.shape[3]):
                want = ndimage.affine_transform(x[k, :, :, c], mats[k, :, :2], mats[k, :, 2],
                                                order=order, mode=mode, cval=3.0)
                np.testing.assert_allclose(got[k, :, :, c], want, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mild_transforms_of_larger_images_match_scipy(dtype):
    """Mostly-interior samples (the kernel's fast path) next to border samples."""
    ndimage = pytest.importorskip("scipy.ndimage", reason="SciPy is the oracle for this comparison")
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 255, (4, 40, 50, 3)).astype(dtype)
    mats = np.empty((4, 2, 3))
    for k in range(4):
        t = rng.uniform(-0.4, 0.4)
        z = rng.uniform(0.8, 1.2, 2)
        mats[k, :, :2] = [[np.cos(t) * z[0], -np.sin(t)], [np.sin(t), np.cos(t) * z[1]]]
        mats[k, :, 2] = rng.uniform(-6, 6, 2)
    for mode in MODES:
        got = _warp.affine_warp(x, mats, 1, mode, cval=-7.0)
        for k in range(4):
            for c in range(3):
                want = ndimage.affine_transform(x[k, :, :, c].astype(np.float64), mats[k, :, :2], mats[k, :, 2],
                                                order=1, mode=mode, cval=-7.0)
                np.testing.assert_allclose(got[k, :, :, c], want, atol=2e-4 if dtype == np.float32 else 1e-9)


def test_coords_warp_matches_scipy_map_coordinates():
    ndimage = pytest.importorskip("scipy.ndimage", reason="SciPy is the oracle for this comparison")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 10, 2))
    coords = rng.uniform(-4, 13, (2, 5, 6, 2))
    for mode in MODES:
        for order in (0, 1):
            got = _warp.coords_warp(x, coords, order, mode, cval=1.5)
            assert got.shape == (2, 5, 6, 2)
            for k in range(2):
                for c in range(2):
                    want = ndimage.map_coordinates(x[k, :, :, c], coords[k].transpose(2, 0, 1),
                                                   order=order, mode=mode, cval=1.5)
                    np.testing.assert_allclose(got[k, :, :, c], want, atol=1e-12)


def test_identity_flip_and_integer_shift_are_exact():
    x = np.arange(2 * 4 * 5 * 3, dtype=np.float32).reshape(2, 4, 5, 3)
    eye = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (2, 1, 1))
    np.testing.assert_array_equal(_warp.affine_warp(x, eye), x)
    flip = np.tile(np.array([[1.0, 0, 0], [0, -1.0, 4]]), (2, 1, 1))
    np.testing.assert_array_equal(_warp.affine_warp(x, flip, order=1), x[:, :, ::-1])
    shift = np.tile(np.array([[1.0, 0, 1], [0, 1.0, 0]]), (2, 1, 1))  # sample one row down
    y = _warp.affine_warp(x, shift, fill_mode="constant", cval=-1)
    np.testing.assert_array_equal(y[:, :3], x[:, 1:])
    assert np.all(y[:, 3] == -1)


def test_same_result_on_one_and_two_threads_and_batch_zero():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 32, 32, 3)).astype(np.float32)   # enough pixels to use 2 threads
    mats = rng.standard_normal((300, 2, 3)) * np.array([1, 1, 4.0])
    before = _engine.get_num_threads()
    try:
        _engine.set_num_threads(1)
        one = _warp.affine_warp(x, mats, 1, "reflect")
        _engine.set_num_threads(2)
        two = _warp.affine_warp(x, mats, 1, "reflect")
    finally:
        _engine.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    empty = _warp.affine_warp(np.zeros((0, 4, 4, 1)), np.zeros((0, 2, 3)))
    assert empty.shape == (0, 4, 4, 1)


def test_non_contiguous_input_is_handled():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((3, 8, 9, 4))
    x = base[:, ::2, :, 1:3]
    mats = rng.standard_normal((3, 2, 3))
    np.testing.assert_allclose(_warp.affine_warp(x, mats, 1, "wrap"),
                               reference_affine(np.ascontiguousarray(x), mats, 1, "wrap", 0.0), atol=1e-12)


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: _warp.affine_warp(np.zeros((2, 4, 4)), np.zeros((2, 2, 3))), ValueError, r"4-D .*got shape \(2, 4, 4\)"),
    (lambda: _warp.affine_warp(np.zeros((2, 4, 4, 1), np.uint8), np.zeros((2, 2, 3))), TypeError, "float32 or float64"),
    (lambda: _warp.affine_warp(np.zeros((2, 4, 4, 1)), np.zeros((1, 2, 3))), ValueError, r"matrices must have shape \(2, 2, 3\)"),
    (lambda: _warp.affine_warp(np.zeros((1, 4, 4, 1)), np.zeros((1, 2, 3)), fill_mode="mirror"), ValueError, "fill_mode must be one of"),
    (lambda: _warp.affine_warp(np.zeros((1, 4, 4, 1)), np.zeros((1, 2, 3)), order=3), ValueError, "order must be 0"),
    (lambda: _warp.affine_warp(np.zeros((1, 4, 4, 1)), np.zeros((1, 2, 3)), cval=np.nan), ValueError, "cval must be finite"),
    (lambda: _warp.coords_warp(np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 4, 3))), ValueError, "coords must have shape"),
])
def test_bad_warp_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_engine_safety_net_rejects_mismatched_arrays():
    x = np.zeros((2, 4, 4, 1))
    with pytest.raises(ValueError):
        _engine.affine_warp(x, np.zeros((3, 2, 3)), np.empty_like(x), (1, 0, 0.0))
    with pytest.raises(ValueError):
        _engine.affine_warp(x, np.zeros((2, 2, 3)), np.empty((2, 4, 4, 2)), (1, 0, 0.0))
    with pytest.raises(ValueError):
        _engine.affine_warp(x, np.zeros((2, 2, 3)), np.empty_like(x), (1, 9, 0.0))
    with pytest.raises(ValueError):
        _engine.affine_warp(x, np.zeros((2, 2, 3)), np.empty_like(x), (2, 0, 0.0))


# ------------------------------------------------------------------- elastic
def test_gaussian_matrix_matches_scipy_gaussian_filter():
    ndimage = pytest.importorskip("scipy.ndimage", reason="SciPy is the oracle for this comparison")
    rng = np.random.default_rng(2)
    field = rng.standard_normal((11, 7))
    for sigma in (0.7, 2.0, 5.0):
        want = ndimage.gaussian_filter(field, sigma, mode="reflect", truncate=4.0)
        got = _gaussian_matrix(11, sigma) @ field @ _gaussian_matrix(7, sigma).T
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_elastic_transform_is_the_coordinate_warp_of_its_fields():
    rng_x = np.random.default_rng(5)
    x = rng_x.uniform(0, 1, (12, 10, 3)).astype(np.float32)
    out = elastic_transform(x, alpha=3.0, sigma=2.0, seed=11, fill_mode="reflect")
    disp = displacement_fields(1, 12, 10, 3.0, 2.0, np.random.default_rng(11))[0]
    rows, cols = np.meshgrid(np.arange(12.0), np.arange(10.0), indexing="ij")
    want = np.array([[_sample(x.astype(np.float64), rows[i, j] + disp[i, j, 0], cols[i, j] + disp[i, j, 1],
                              1, "reflect", 0.0) for j in range(10)] for i in range(12)])
    np.testing.assert_allclose(out, want, atol=1e-5)
    assert np.abs(disp).max() < 3.0 and np.abs(disp).max() > 0.05
    np.testing.assert_array_equal(elastic_transform(x, alpha=0.0, seed=1), x)
    gray = elastic_transform(x[..., 0], alpha=2.0, sigma=3.0, seed=1)
    assert gray.shape == (12, 10)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(alpha=-1), "alpha must be a finite number >= 0"),
    (dict(sigma=0), "sigma must be a finite number > 0"),
    (dict(fill_mode="bogus"), "fill_mode must be one of"),
])
def test_elastic_bad_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        elastic_transform(np.zeros((5, 5, 1)), **kwargs)


def test_benchmark_entry_point_runs():
    from pycnn.preprocessing import benchmark
    result = benchmark.run(images=256, keras_images=0)
    assert result["pycnn"] > 0 and result["keras"] is None and result["threads"] >= 1
