"""The C kernels behind relu / leaky_relu / sigmoid / tanh and batch normalization
(csrc/activation.c, csrc/batchnorm.c).

Activations: the previous NumPy expressions are the specification (np.maximum(x, 0) for relu,
np.where(x > 0, ...) for the rest), so results must be the same bytes, NaN, infinities and
signed zeros included, for every size around the vector width and the 16384-element blocks.
sigmoid and tanh are checked in ulps against float64 NumPy over a dense sweep of float32
values, against libm in float64, and their backward passes bytewise against the chain rule
applied to their own forward output.

Batch norm: float64 NumPy references (two-pass mean and biased variance), central finite
differences in float64 for every gradient, PyTorch's batch_norm as an oracle, accuracy of the
float32 statistics over millions of rows, and bit-identical results for 1, 2 and 3 threads.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import pycnn
from pycnn import _engine, ops

DTYPES = [np.float32, np.float64]
# Around SIMD widths (4/8/16 lanes) and the 16384-element work blocks.
SIZES = [0, 1, 3, 7, 8, 17, 31, 33, 1000, 16383, 16384, 16385, 3 * 16384 + 5]
SLOPES = [0.2, 0.0, 1.0, 1.7, -0.5]


@pytest.fixture(autouse=True)
def restore_threads():
    before = pycnn.get_num_threads()
    yield
    pycnn.set_num_threads(before)


def _threads_available():
    pycnn.set_num_threads(2)
    return pycnn.get_num_threads() == 2


def _specials(dtype):
    return np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-310, -1e-310,
                     np.finfo(dtype).max, -np.finfo(dtype).max, np.finfo(dtype).tiny, 2.5, -2.5], dtype)


def _values(rng, size, dtype):
    """Random values of either sign with special values sprinkled in."""
    x = rng.standard_normal(size).astype(dtype)
    specials = _specials(dtype)
    if size:
        at = rng.integers(0, size, min(size, 40))
        x[at] = specials[rng.integers(0, len(specials), len(at))]
    return x


def _same_bytes(got, expected, what):
    assert got.dtype == expected.dtype and got.shape == expected.shape, what
    assert got.tobytes() == expected.tobytes(), (
        f"{what}: {np.count_nonzero(got.view(np.uint8) != expected.view(np.uint8))} bytes differ")


# ------------------------------------------------------------------ activations


def numpy_relu(x):
    return np.maximum(x, x.dtype.type(0))


def numpy_relu_backward(dy, x):
    return np.where(x > 0, dy, dy.dtype.type(0))


def numpy_leaky(x, slope):
    with np.errstate(all="ignore"):
        return np.where(x > 0, x, x * x.dtype.type(slope))


def numpy_leaky_backward(dy, x, slope):
    with np.errstate(all="ignore"):
        return np.where(x > 0, dy, dy * dy.dtype.type(slope))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_relu_matches_the_numpy_definition_bytewise(rng, dtype, size):
    x, dy = _values(rng, size, dtype), _values(rng, size, dtype)
    _same_bytes(ops.relu(x), numpy_relu(x), "relu")
    _same_bytes(ops.relu_backward(dy, x), numpy_relu_backward(dy, x), "relu_backward")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [0, 1, 17, 16385])
@pytest.mark.parametrize("slope", SLOPES)
def test_leaky_relu_matches_the_numpy_definition_bytewise(rng, dtype, size, slope):
    x, dy = _values(rng, size, dtype), _values(rng, size, dtype)
    _same_bytes(ops.leaky_relu(x, slope), numpy_leaky(x, slope), "leaky_relu")
    _same_bytes(ops.leaky_relu_backward(dy, x, slope), numpy_leaky_backward(dy, x, slope),
                "leaky_relu_backward")


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_start_offset_within_a_cache_line(rng, dtype):
    """Arrays starting anywhere within 64 bytes: the loops peel a head up to the output's alignment."""
    base, dbase = _values(rng, 1000, dtype), _values(rng, 1000, dtype)
    for k in range(17):
        x, dy = base[k:k + 100 + k], dbase[k:k + 100 + k]
        _same_bytes(ops.relu(x), numpy_relu(x), f"relu offset {k}")
        _same_bytes(ops.leaky_relu_backward(dy, x, 0.3), numpy_leaky_backward(dy, x, 0.3), f"leaky offset {k}")
        out = np.empty(len(x) + 16, dtype)[k:k + len(x)]          # an output at the same offsets
        _engine.activation_backward(x, dy, out, (0, 0.0))
        _same_bytes(out, numpy_relu_backward(dy, x), f"relu_backward output offset {k}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_one_by_one(dtype):
    x = _specials(dtype)
    dy = np.full_like(x, 3.0)
    dy[::3] = np.nan
    y = ops.relu(x)
    _same_bytes(y, numpy_relu(x), "relu")
    assert np.isnan(y[0]) and np.signbit(y[1]) and np.isnan(y[1])  # NaN kept with its sign
    assert y[3] == 0 and not np.signbit(y[5])                         # -inf -> 0, -0 -> +0
    _same_bytes(ops.relu_backward(dy, x), numpy_relu_backward(dy, x), "relu_backward")
    _same_bytes(ops.leaky_relu(x, 0.0), numpy_leaky(x, 0.0), "leaky_relu slope 0")   # -inf * 0 = NaN
    _same_bytes(ops.leaky_relu_backward(dy, x, 0.3), numpy_leaky_backward(dy, x, 0.3), "leaky backward")


@pytest.mark.parametrize("shape", [(), (1,), (2, 3, 5), (4, 1, 7, 3)])
def test_any_shape_and_zero_dim(rng, shape):
    x = rng.standard_normal(shape)
    y = ops.relu(x)
    assert isinstance(y, np.ndarray) and y.shape == shape and y.dtype == np.float64
    np.testing.assert_array_equal(y, np.maximum(x, 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_layouts(rng, dtype):
    x = rng.standard_normal((6, 10)).astype(dtype)
    dy = rng.standard_normal((6, 10)).astype(dtype)
    views = [x[:, ::2], x.T, x[::-1, ::-1], x.astype(x.dtype.newbyteorder())]
    grads = [dy[:, ::2], dy.T, dy[::-1, ::-1], dy.astype(dy.dtype.newbyteorder())]
    for xv, dyv in zip(views, grads):
        y = ops.leaky_relu(xv, 0.1)
        assert y.dtype == np.dtype(dtype) and y.flags.c_contiguous
        _same_bytes(y, numpy_leaky(np.ascontiguousarray(xv, dtype), 0.1), "leaky_relu view")
        _same_bytes(ops.relu_backward(dyv, xv),
                    numpy_relu_backward(np.ascontiguousarray(dyv, dtype), np.ascontiguousarray(xv, dtype)),
                    "relu_backward view")


def test_activations_threads_bit_identical(rng):
    if not _threads_available():
        pytest.skip("the engine was built without OpenMP")
    x, dy = _values(rng, 700_001, np.float32), _values(rng, 700_001, np.float32)
    results = []
    for threads in (1, 2, 3):
        pycnn.set_num_threads(threads)
        results.append([ops.relu(x), ops.relu_backward(dy, x), ops.leaky_relu(x, 0.3),
                        ops.leaky_relu_backward(dy, x, 0.3), ops.sigmoid(x), ops.sigmoid_backward(dy, x),
                        ops.tanh(x), ops.tanh_backward(dy, x)])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.tobytes() == b.tobytes()


def test_portable_and_simd_loops_agree():
    """PYCNN_ISA=ref runs the portable loops; the default the AVX2 build when the CPU has it."""
    code = ("import hashlib, numpy as np\n"
            "from pycnn import ops\n"
            "rng = np.random.default_rng(5)\n"
            "h = hashlib.sha256()\n"
            "for dtype in (np.float32, np.float64):\n"
            "    x = rng.standard_normal(40_003).astype(dtype); x[::97] = np.nan; x[::89] = -0.0\n"
            "    dy = rng.standard_normal(40_003).astype(dtype)\n"
            "    for y in (ops.relu(x), ops.relu_backward(dy, x), ops.leaky_relu(x, 0.3),\n"
            "              ops.leaky_relu_backward(dy, x, 0.3), ops.sigmoid(x), ops.sigmoid_backward(dy, x),\n"
            "              ops.tanh(x), ops.tanh_backward(dy, x)):\n"
            "        h.update(y.tobytes())\n"
            "print(h.hexdigest())\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digests = {}
    for isa in ("ref", None):
        env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
        env.pop("PYCNN_ISA", None)
        if isa:
            env["PYCNN_ISA"] = isa
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=repo, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        digests[isa] = out.stdout.strip()
    assert digests["ref"] == digests[None]


def _ulps(got, exact):
    """|got - exact| in units of float32's spacing at the exact value."""
    spacing = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / spacing


def _float32_sweep(rng):
    """Every region of both functions: dense over [-110, 110], around tanh's switch at |x| = 0.625,
    tiny values, the denormal outputs of sigmoid near -100, and random normals."""
    return np.concatenate([np.linspace(-110, 110, 1_000_001), np.linspace(-0.7, 0.7, 100_001),
                           np.geomspace(1e-30, 1e-3, 1000), -np.geomspace(1e-30, 1e-3, 1000),
                           np.linspace(-104, -86, 10_001), 4 * rng.standard_normal(100_000)]).astype(np.float32)


def test_sigmoid_and_tanh_float32_within_3_ulp(rng):
    x = _float32_sweep(rng)
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        exact_sigmoid = 1.0 / (1.0 + np.exp(-x64))
    exact_tanh = np.tanh(x64)
    assert _ulps(ops.sigmoid(x), exact_sigmoid).max() <= 3
    assert _ulps(ops.tanh(x), exact_tanh).max() <= 2


def test_sigmoid_and_tanh_float64_match_libm(rng):
    x = np.concatenate([np.linspace(-700, 700, 20_001), rng.standard_normal(10_000)])   # 1 / (1 + e^-x) exact here
    with np.errstate(over="ignore"):
        exact = 1.0 / (1.0 + np.exp(-x))
    np.testing.assert_allclose(ops.sigmoid(x), exact, rtol=1e-15, atol=0)
    np.testing.assert_allclose(ops.tanh(x), np.tanh(x), rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_and_tanh_special_values(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e4, -1e4], dtype)
    s, t = ops.sigmoid(x), ops.tanh(x)
    assert np.isnan(s[0]) and np.isnan(t[0])
    np.testing.assert_array_equal(s[1:], [1, 0, 0.5, 0.5, 1, 0])
    np.testing.assert_array_equal(t[1:], [1, -1, 0, 0, 1, -1])
    assert np.signbit(t[4]) and not np.signbit(t[3])   # tanh keeps the sign of zero
    dy = np.full_like(x, 2.0)
    ds, dt = ops.sigmoid_backward(dy, x), ops.tanh_backward(dy, x)
    assert np.isnan(ds[0]) and np.isnan(dt[0])
    np.testing.assert_array_equal(ds[1:], [0, 0, 0.5, 0.5, 0, 0])
    np.testing.assert_array_equal(dt[1:], [0, 0, 2, 2, 0, 0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [0, 1, 17, 16385, 3 * 16384 + 5])
def test_sigmoid_and_tanh_backward_is_the_chain_rule_on_the_forward_output(rng, dtype, size):
    """The backward passes recompute y from x exactly as the forward pass does."""
    x, dy = _values(rng, size, dtype), _values(rng, size, dtype)
    one = dtype(1)
    with np.errstate(all="ignore"):
        y = ops.sigmoid(x)
        _same_bytes(ops.sigmoid_backward(dy, x), dy * y * (one - y), "sigmoid_backward")
        t = ops.tanh(x)
        _same_bytes(ops.tanh_backward(dy, x), dy * (one - t * t), "tanh_backward")


def test_activation_argument_errors():
    with pytest.raises(TypeError, match=r"leaky_relu: negative_slope must be a real number; got 'a'"):
        ops.leaky_relu(np.ones(3), "a")
    with pytest.raises(TypeError, match=r"leaky_relu_backward: negative_slope .*True"):
        ops.leaky_relu_backward(np.ones(3), np.ones(3), True)
    with pytest.raises(TypeError, match=r"leaky_relu_backward: .*float32.*float64|float64.*float32"):
        ops.leaky_relu_backward(np.ones(3, np.float32), np.ones(3))
    with pytest.raises(TypeError, match=r"relu: input dtype int64"):
        ops.relu(np.ones(3, np.int64))


def test_activation_engine_safety_net():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"activation: output has shape \(3, 2\)"):
        _engine.activation_forward(x, np.empty((3, 2), np.float32), (0, 0.0))
    with pytest.raises(ValueError, match=r"activation: output .*float64"):
        _engine.activation_forward(x, np.empty((2, 3), np.float64), (0, 0.0))
    with pytest.raises(ValueError, match=r"activation: .*parameter is out of range"):
        _engine.activation_forward(x, np.empty((2, 3), np.float32), (7, 0.0))
    with pytest.raises(ValueError, match=r"activation_backward: dx has shape"):
        _engine.activation_backward(x, x, np.empty(6, np.float32), (1, 0.2))
    with pytest.raises(ValueError, match=r"output must be a writable"):
        _engine.activation_forward(x, np.empty((2, 3), np.float32)[:, ::-1], (0, 0.0))
    with pytest.raises(TypeError):
        _engine.activation_forward(x, np.empty((2, 3), np.float32), (0,))


# ------------------------------------------------------------------ batch norm references


def _channel_view(x, axes):
    """x with the channel axes last, as float64 [rows, channels]."""
    others = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(np.asarray(x, np.float64), others + list(axes))
    return moved.reshape(-1, int(np.prod([x.shape[a] for a in axes])))


def ref_batch_norm(x, gamma, beta, epsilon, axes, mean=None, var=None):
    """Float64 two-pass statistics and the normalised output, in x's layout."""
    x2 = _channel_view(x, axes)
    if mean is None:
        mean = x2.mean(axis=0)
        var = ((x2 - mean) ** 2).mean(axis=0)
    mean, var = np.asarray(mean, np.float64).reshape(-1), np.asarray(var, np.float64).reshape(-1)
    y2 = (x2 - mean) / np.sqrt(var + epsilon)
    if gamma is not None:
        y2 = y2 * np.asarray(gamma, np.float64).reshape(-1)
    if beta is not None:
        y2 = y2 + np.asarray(beta, np.float64).reshape(-1)
    others = [a for a in range(x.ndim) if a not in axes]
    order = others + list(axes)
    y = y2.reshape([x.shape[a] for a in order]).transpose(np.argsort(order))
    return y, mean, var


def _normalised_axes(axis, ndim):
    return sorted(a % ndim for a in ([axis] if isinstance(axis, int) else axis))


def _params(rng, shape, dtype, with_gamma=True, with_beta=True):
    gamma = (rng.standard_normal(shape) + 1.5).astype(dtype) if with_gamma else None
    beta = rng.standard_normal(shape).astype(dtype) if with_beta else None
    return gamma, beta


def _tolerance(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


# Shapes and axes: one row, one channel, odd sizes, channels above the 256-channel stack
# arrays, rows over several 8-block chunks, channels_first and multi-axis normalisation.
BN_CASES = [
    ((1, 1), -1), ((1, 5), -1), ((17, 3), -1), ((2, 5, 7, 64), -1), ((3, 300), -1), ((5000, 1), -1),
    ((3000, 64), -1), ((2, 3, 4, 5), 1), ((2, 6, 5, 3), [1, 3]), ((4, 9, 2), -2), ((7,), 0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis", BN_CASES)
def test_batch_norm_training_forward_matches_float64_reference(rng, dtype, shape, axis):
    axes = _normalised_axes(axis, len(shape))
    cshape = tuple(shape[a] for a in axes)
    x = (rng.standard_normal(shape) * 3 + 5).astype(dtype)
    for with_gamma, with_beta in ((True, True), (False, True), (True, False), (False, False)):
        gamma, beta = _params(rng, cshape, dtype, with_gamma, with_beta)
        y, mean, var = ops.batch_norm(x, gamma=gamma, beta=beta, epsilon=1e-3, axis=axis)
        y_ref, mean_ref, var_ref = ref_batch_norm(x, gamma, beta, 1e-3, axes)
        assert y.dtype == dtype and mean.dtype == dtype and var.dtype == dtype
        assert y.shape == shape and mean.shape == cshape and var.shape == cshape
        assert y.flags.c_contiguous
        tol = _tolerance(dtype)
        np.testing.assert_allclose(mean.reshape(-1), mean_ref, **tol)
        np.testing.assert_allclose(var.reshape(-1), var_ref, rtol=tol["rtol"], atol=tol["atol"] * 10)
        np.testing.assert_allclose(y, y_ref, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis", BN_CASES)
def test_batch_norm_inference_forward_matches_float64_reference(rng, dtype, shape, axis):
    axes = _normalised_axes(axis, len(shape))
    cshape = tuple(shape[a] for a in axes)
    x = rng.standard_normal(shape).astype(dtype)
    mean = rng.standard_normal(cshape).astype(dtype)
    var = rng.uniform(0.1, 3, cshape).astype(dtype)
    gamma, beta = _params(rng, cshape, dtype)
    y, mean_out, var_out = ops.batch_norm(x, mean, var, gamma, beta, epsilon=0.01, axis=axis)
    y_ref, _, _ = ref_batch_norm(x, gamma, beta, 0.01, axes, mean, var)
    np.testing.assert_allclose(y, y_ref, **_tolerance(dtype))
    np.testing.assert_array_equal(mean_out, mean)
    np.testing.assert_array_equal(var_out, var)


def test_float32_statistics_stay_accurate_over_millions_of_rows(rng):
    """A large offset over 3 million rows: naive float32 sums (or E[x^2] - E[x]^2) lose
    most digits here; the blocked two-pass statistics merged in double do not."""
    x = (1000.0 + rng.standard_normal((3_000_000, 2)) * np.array([1.0, 0.01])).astype(np.float32)
    y, mean, var = ops.batch_norm(x, epsilon=1e-12)
    x64 = x.astype(np.float64)
    mean_ref = x64.mean(axis=0)
    var_ref = ((x64 - mean_ref) ** 2).mean(axis=0)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-7)
    np.testing.assert_allclose(var, var_ref, rtol=2e-6)
    # The output is normalised: mean ~0 and variance ~1 up to float32 rounding of x - mean.
    np.testing.assert_allclose(y.astype(np.float64).mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(y.astype(np.float64).var(axis=0), 1, rtol=1e-4)


def test_batch_norm_nan_and_inf_stay_in_their_channel(rng):
    x = rng.standard_normal((50, 4))
    x[7, 1] = np.nan
    x[3, 2] = np.inf
    y, mean, var = ops.batch_norm(x)
    assert np.isnan(mean[1]) and np.isnan(var[1]) and np.isnan(y[:, 1]).all()
    assert np.isinf(mean[2]) and np.isnan(var[2])
    y_ref, _, _ = ref_batch_norm(x[:, [0, 3]], None, None, 1e-3, [1])
    np.testing.assert_allclose(y[:, [0, 3]], y_ref, rtol=1e-12, atol=1e-12)
    dx, dgamma, dbeta = ops.batch_norm_backward(np.ones_like(x), x, mean, var, np.ones(4), np.zeros(4))
    assert np.isfinite(dx[:, [0, 3]]).all() and np.isfinite(dbeta).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_layouts_give_the_contiguous_result(rng, dtype):
    x = rng.standard_normal((4, 5, 6)).astype(dtype)
    gamma, beta = _params(rng, (6,), dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    expected = ops.batch_norm(x, gamma=gamma, beta=beta)
    expected_grads = ops.batch_norm_backward(dy, x, expected[1], expected[2], gamma, beta)
    for view in (lambda a: np.asfortranarray(a), lambda a: a[::-1][::-1],
                 lambda a: a.astype(a.dtype.newbyteorder()),
                 lambda a: np.repeat(a, 2, axis=-1)[..., ::2]):
        got = ops.batch_norm(view(x), gamma=view(gamma), beta=view(beta))
        for g, e in zip(got, expected):
            _same_bytes(g, e, "batch_norm view")
        grads = ops.batch_norm_backward(view(dy), view(x), view(got[1]), view(got[2]), view(gamma), view(beta))
        for g, e in zip(grads, expected_grads):
            _same_bytes(g, e, "batch_norm_backward view")


def test_batch_norm_empty_inputs():
    x = np.ones((0, 3), np.float32)
    with pytest.raises(ValueError, match=r"batch_norm: batch statistics need at least one value per channel"):
        ops.batch_norm(x)
    y, mean, var = ops.batch_norm(x, np.zeros(3, np.float32), np.ones(3, np.float32))
    assert y.shape == (0, 3) and y.dtype == np.float32
    dx, dgamma, dbeta = ops.batch_norm_backward(x, x, np.zeros(3, np.float32), np.ones(3, np.float32),
                                                np.ones(3, np.float32), np.zeros(3, np.float32))
    assert dx.shape == (0, 3)
    np.testing.assert_array_equal(dgamma, 0)
    np.testing.assert_array_equal(dbeta, 0)
    y, mean, var = ops.batch_norm(np.ones((4, 0)))
    assert y.shape == (4, 0) and mean.shape == (0,) and var.shape == (0,)
    dx, dgamma, dbeta = ops.batch_norm_backward(np.ones((4, 0)), np.ones((4, 0)), mean, var, np.ones(0))
    assert dx.shape == (4, 0) and dgamma.shape == (0,) and dbeta is None


# ------------------------------------------------------------------ batch norm gradients


def _loss_and_grads(x, gamma, beta, weights, epsilon, axis, stats=None):
    """sum(y * weights) and its gradients through pycnn's forward and backward."""
    mean, var = (None, None) if stats is None else stats
    y, mean, var = ops.batch_norm(x, mean, var, gamma, beta, epsilon, axis)
    dx, dgamma, dbeta = ops.batch_norm_backward(weights, x, mean, var, gamma, beta, epsilon, axis,
                                                batch_stats=stats is None)
    return np.sum(y * weights), dx, dgamma, dbeta


def _numeric_grad(f, a, h=1e-6):
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        saved = a[i]
        a[i] = saved + h
        up = f()
        a[i] = saved - h
        down = f()
        a[i] = saved
        g[i] = (up - down) / (2 * h)
    return g


@pytest.mark.parametrize("shape, axis", [((5, 3), -1), ((2, 3, 4), -1), ((3, 2, 2, 3), 1), ((4, 3, 2), [1, 2])])
@pytest.mark.parametrize("batch_stats", [True, False])
def test_batch_norm_gradients_by_central_differences(rng, shape, axis, batch_stats):
    axes = _normalised_axes(axis, len(shape))
    cshape = tuple(shape[a] for a in axes)
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = _params(rng, cshape, np.float64)
    weights = rng.standard_normal(shape)
    stats = None if batch_stats else (rng.standard_normal(cshape), rng.uniform(0.5, 2, cshape))
    _, dx, dgamma, dbeta = _loss_and_grads(x, gamma, beta, weights, 1e-3, axis, stats)
    loss = lambda: _loss_and_grads(x, gamma, beta, weights, 1e-3, axis, stats)[0]
    np.testing.assert_allclose(dx, _numeric_grad(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dgamma, _numeric_grad(loss, gamma), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(dbeta, _numeric_grad(loss, beta), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(17, 3), (3000, 64), (2, 300), (4100, 1)])
@pytest.mark.parametrize("batch_stats", [True, False])
def test_batch_norm_backward_matches_the_closed_form(rng, dtype, shape, batch_stats):
    """dx = g * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat)) in float64 (frozen: g * inv_std * dy)."""
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    gamma, beta = _params(rng, shape[1:], dtype)
    if batch_stats:
        _, mean, var = ops.batch_norm(x)
    else:
        mean, var = rng.standard_normal(shape[1:]).astype(dtype), rng.uniform(0.5, 2, shape[1:]).astype(dtype)
    dx, dgamma, dbeta = ops.batch_norm_backward(dy, x, mean, var, gamma, beta, batch_stats=batch_stats)
    x64, dy64, g64 = x.astype(np.float64), dy.astype(np.float64), gamma.astype(np.float64)
    inv = 1 / np.sqrt(var.astype(np.float64) + 1e-3)
    x_hat = (x64 - mean.astype(np.float64)) * inv
    dbeta_ref, dgamma_ref = dy64.sum(0), (dy64 * x_hat).sum(0)
    dx_ref = g64 * inv * dy64
    if batch_stats:
        dx_ref = g64 * inv * (dy64 - dy64.mean(0) - x_hat * (dy64 * x_hat).mean(0))
    scale = np.sqrt(shape[0])
    tol = dict(rtol=1e-4, atol=1e-4 * scale) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10 * scale)
    np.testing.assert_allclose(dbeta, dbeta_ref, **tol)
    np.testing.assert_allclose(dgamma, dgamma_ref, **tol)
    np.testing.assert_allclose(dx, dx_ref, rtol=tol["rtol"], atol=tol["atol"] / scale)


def test_batch_norm_backward_without_parameters(rng):
    x, dy = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    _, mean, var = ops.batch_norm(x)
    dx, dgamma, dbeta = ops.batch_norm_backward(dy, x, mean, var)
    assert dgamma is None and dbeta is None
    dx_g, _, _ = ops.batch_norm_backward(dy, x, mean, var, np.ones(2))
    np.testing.assert_array_equal(dx, dx_g)
    dx_frozen, _, _ = ops.batch_norm_backward(dy, x, mean, var, batch_stats=False)
    np.testing.assert_allclose(dx_frozen, dy / np.sqrt(var + 1e-3), rtol=1e-15)


def test_batch_norm_against_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 5, 6, 7)) * 2 + 3          # NHWC
    gamma, beta = _params(rng, (7,), np.float64)
    dy = rng.standard_normal(x.shape)
    y, mean, var = ops.batch_norm(x, gamma=gamma, beta=beta, epsilon=1e-3)
    dx, dgamma, dbeta = ops.batch_norm_backward(dy, x, mean, var, gamma, beta, epsilon=1e-3)

    tx = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    tg, tb = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    running_mean, running_var = torch.zeros(7, dtype=torch.float64), torch.ones(7, dtype=torch.float64)
    ty = torch.nn.functional.batch_norm(tx, running_mean, running_var, tg, tb, training=True, momentum=1.0,
                                        eps=1e-3)
    ty.backward(torch.tensor(dy.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, ty.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mean, running_mean.numpy(), rtol=1e-12)   # momentum 1: the batch mean
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dgamma, tg.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dbeta, tb.grad.numpy(), rtol=1e-10)

    # Inference with given statistics.
    ty = torch.nn.functional.batch_norm(torch.tensor(x.transpose(0, 3, 1, 2)), torch.tensor(mean),
                                        torch.tensor(var), torch.tensor(gamma), torch.tensor(beta),
                                        training=False, eps=1e-3)
    y_inf, _, _ = ops.batch_norm(x, mean, var, gamma, beta, epsilon=1e-3)
    np.testing.assert_allclose(y_inf, ty.numpy().transpose(0, 2, 3, 1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(64, 20, 20, 16), (20000, 3), (40, 512)])
def test_batch_norm_threads_bit_identical(rng, dtype, shape):
    """Many chunks per thread: statistics and gradient sums must not depend on the split."""
    if not _threads_available():
        pytest.skip("the engine was built without OpenMP")
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    gamma, beta = _params(rng, shape[-1:], dtype)
    results = []
    for threads in (1, 2, 3):
        pycnn.set_num_threads(threads)
        y, mean, var = ops.batch_norm(x, gamma=gamma, beta=beta)
        grads = ops.batch_norm_backward(dy, x, mean, var, gamma, beta)
        frozen = ops.batch_norm_backward(dy, x, mean, var, gamma, beta, batch_stats=False)
        results.append((y, mean, var) + grads + frozen)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert a.tobytes() == b.tobytes()


# ------------------------------------------------------------------ batch norm errors


def test_batch_norm_argument_errors():
    x = np.ones((4, 3), np.float32)
    c = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"batch_norm: mean and variance must both be given .*variance=None"):
        ops.batch_norm(x, c)
    with pytest.raises(ValueError, match=r"batch_norm: epsilon must be a number > 0; got 0"):
        ops.batch_norm(x, epsilon=0)
    with pytest.raises(ValueError, match=r"batch_norm: gamma must have the shape .*\(3,\); got \(4,\)"):
        ops.batch_norm(x, gamma=np.ones(4, np.float32))
    with pytest.raises(TypeError, match=r"batch_norm: input dtype float32 and gamma dtype float64 must match"):
        ops.batch_norm(x, gamma=np.ones(3))
    with pytest.raises(ValueError, match=r"batch_norm: axis must name distinct axes of the 2-D input; got 2"):
        ops.batch_norm(x, axis=2)
    with pytest.raises(ValueError, match=r"batch_norm: axis .*\[1, -1\]"):
        ops.batch_norm(x, axis=[1, -1])
    with pytest.raises(TypeError, match=r"batch_norm: axis must be an int or a list of ints; got 1.5"):
        ops.batch_norm(x, axis=1.5)
    with pytest.raises(ValueError, match=r"batch_norm_backward: dy must have the input's shape \(4, 3\); got \(3, 4\)"):
        ops.batch_norm_backward(np.ones((3, 4), np.float32), x, c, c)
    with pytest.raises(TypeError, match=r"batch_norm_backward: variance must be an array"):
        ops.batch_norm_backward(x, x, c, None)
    with pytest.raises(TypeError, match=r"batch_norm: input dtype int64"):
        ops.batch_norm(np.ones((4, 3), np.int64))


def test_batch_norm_engine_safety_net():
    x = np.ones((4, 3), np.float32)
    c = np.ones(3, np.float32)
    ws = np.empty(_engine.batch_norm_workspace_size(4, 3, False, 1e-3), np.uint8)
    out = np.empty((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"batch_norm: input must be 2-D"):
        _engine.batch_norm_forward_training(x.reshape(-1), None, None, out, c.copy(), c.copy(), ws, 1e-3)
    with pytest.raises(ValueError, match=r"batch_norm: mean has shape \(2,\)"):
        _engine.batch_norm_forward_training(x, None, None, out, np.empty(2, np.float32), c.copy(), ws, 1e-3)
    with pytest.raises(ValueError, match=r"batch_norm: workspace is smaller"):
        _engine.batch_norm_forward_training(x, None, None, out, c.copy(), c.copy(), np.empty(8, np.uint8), 1e-3)
    with pytest.raises(ValueError, match=r"batch_norm: workspace is smaller"):
        _engine.batch_norm_forward_inference(x, c, c, None, None, out, None, 1e-3)
    with pytest.raises(ValueError, match=r"batch_norm: .*epsilon not > 0"):
        _engine.batch_norm_forward_inference(x, c, c, None, None, out, ws, float("nan"))
    with pytest.raises(ValueError, match=r"batch_norm: every size must be >= 1"):
        _engine.batch_norm_workspace_size(4, 0, False, 1e-3)
    with pytest.raises(ValueError, match=r"batch_norm: array size overflows int64"):
        _engine.batch_norm_workspace_size(2**40, 2**30, True, 1e-3)
    with pytest.raises(ValueError, match=r"batch_norm_backward: dgamma has shape \(4,\)"):
        _engine.batch_norm_backward(x, x, c, c, None, out, np.empty(4, np.float32), None, ws, 1e-3, True)
    with pytest.raises(ValueError, match=r"batch_norm: every size must be >= 1"):
        _engine.batch_norm_forward_training(np.ones((0, 3), np.float32), None, None, np.empty((0, 3), np.float32),
                                            c.copy(), c.copy(), ws, 1e-3)
