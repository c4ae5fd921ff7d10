"""conv2d(..., algorithm="winograd_2x2" / "winograd_4x4") against the float64 reference and an error bound.

The error bound.  Winograd F(m x m, 3x3) computes an m x m output tile as
Y = A^T [sum_c (G g_c G^T) (.) (B^T d_c B)] A from the (m + 2)^2 input tile d
(Lavin & Gray, arXiv 1509.09308; the matrices are written out again below, from
the paper, independently of csrc/conv_winograd.c).  Expanding the products,
every output is a sum of terms (matrix entries) * x[p] * w[q] that cancel
exactly to the convolution; each term passes through at most N roundings, so
by the standard model (Higham, "Accuracy and Stability of Numerical
Algorithms", 2nd ed., sec. 3.1)

    |y_wino - y_exact| <= gamma_N * E,    gamma_N = N u / (1 - N u),  u = eps / 2,
    E = |A^T| [sum_c (|G| |g_c| |G^T|) (.) (|B^T| |d_c| |B|)] |A| + |bias|

(the same algorithm on absolute values).  N counts the roundings on a term's
path in the engine: the input transform (2 passes of at most 3 roundings for
m = 4 -- e.g. (4 d0 - 5 d2) + d4 -- and 1 for m = 2), the filter transform
(2 passes; m = 4: two additions, the rounded -1/6 or 1/24 and the product, 4;
m = 2: two additions and an exact halving, 2), the GEMM's product and sum over
c_in (c_in), the output transform (2 passes of at most 3 for m = 4, 2 for
m = 2) and the bias (1): N = c_in + 21 for F(4x4), c_in + 11 for F(2x2).

In the form C_m * eps * (|x| (*) |w|): E = sum over channels, input pixels p
of the tile and taps q of K_m(o, p, q) |x[p]| |w[q]|, where K_m >= 1 on the
pairs p = o + q of the convolution itself and K_m > 0 for other pixels of the
tile; the largest K_m is the square of the largest entry of the 1-D
|A^T| |G| |B^T| product: 4 for F(2x2) and (32/3)^2 = 113.8 for F(4x4).  So
the error of one output scales with |x| over its whole input tile, not only
over its own 3x3 window -- a bound in the window's |x| (*) |w| alone is false
(test_error_comes_from_the_whole_tile shows an output whose window is all
zeros and whose Winograd value is not).
"""
import numpy as np
import pytest

import pycnn
from pycnn import ops
from tests import reference as ref

ALGORITHMS = {"winograd_2x2": 2, "winograd_4x4": 4}

# Lavin & Gray's matrices (points 0, 1, -1, inf and 0, 1, -1, 2, -2, inf).
MATRICES = {
    2: (np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], float),
        np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]]),
        np.array([[1, 1, 1, 0], [0, 1, -1, -1]], float)),
    4: (np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                  [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], float),
        np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                  [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]]),
        np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], float)),
}
ROUNDINGS = {2: 11, 4: 21}   # N - c_in, derived in the module docstring


def _tiles(x, pads, m):
    """Input tiles (n, tiles_h, tiles_w, m + 2, m + 2, c) of x padded by pads, zeros past the edges."""
    n, h, w, c = x.shape
    (top, bottom), (left, right) = pads
    oh, ow = h + top + bottom - 2, w + left + right - 2
    th, tw = -(-oh // m), -(-ow // m)
    padded = np.zeros((n, th * m + 2, tw * m + 2, c))
    padded[:, top:top + h, left:left + w] = x
    tiles = np.empty((n, th, tw, m + 2, m + 2, c))
    for i in range(th):
        for j in range(tw):
            tiles[:, i, j] = padded[:, i * m:i * m + m + 2, j * m:j * m + m + 2]
    return tiles, (oh, ow)


def winograd(x, kernel, bias, pads, m, matrices=None, absolute=False):
    """Winograd F(m x m, 3x3) in float64 (absolute=True: on |x|, |w| with |B^T|, |G|, |A^T|)."""
    bt, g, at = MATRICES[m] if matrices is None else matrices
    x, kernel = np.asarray(x, np.float64), np.asarray(kernel, np.float64)
    if absolute:
        bt, g, at, x, kernel = map(np.abs, (bt, g, at, x, kernel))
    tiles, (oh, ow) = _tiles(x, pads, m)
    v = np.einsum("ai,ntuijc,bj->ntuabc", bt, tiles, bt)
    u = np.einsum("ak,klco,bl->abco", g, kernel, g)
    y = np.einsum("ia,ntuabo,jb->ntuijo", at, np.einsum("ntuabc,abco->ntuabo", v, u), at)
    n, th, tw = tiles.shape[:3]
    y = y.transpose(0, 1, 3, 2, 4, 5).reshape(n, th * m, tw * m, -1)[:, :oh, :ow]
    if bias is not None:
        y = y + (np.abs(bias) if absolute else bias)
    return y


def error_bound(x, kernel, bias, pads, m, dtype):
    u = np.finfo(dtype).eps / 2
    rounds = kernel.shape[2] + ROUNDINGS[m]
    return rounds * u / (1 - rounds * u) * winograd(x, kernel, bias, pads, m, absolute=True)


def _pads(x_shape, padding):
    return ref.resolve_padding(padding, x_shape[1:3], (3, 3), (1, 1), (1, 1))


def assert_within_bound(y, x, kernel, bias, padding, m, what=""):
    pads = _pads(x.shape, padding)
    exact = ref.conv2d(x, kernel, bias, padding=padding)
    bound = error_bound(x, kernel, bias, pads, m, y.dtype)
    err = np.abs(y.astype(np.float64) - exact)
    assert y.shape == exact.shape and y.dtype == x.dtype, what
    bad = err > bound
    assert not bad.any(), (f"{what}: {bad.sum()} outputs outside the bound; worst err/bound "
                           f"{np.max(err / np.maximum(bound, 1e-300)):.3g} at {np.argwhere(bad)[0].tolist()}")
    return err, bound


def _random(rng, shape, dtype, spread=0.0):
    """Normal values times 10^uniform(-spread, spread): spread > 0 gives a large dynamic range."""
    values = rng.standard_normal(shape) * 10.0 ** rng.uniform(-spread, spread, shape)
    return values.astype(dtype)


SHAPES = [
    # (x shape, c_out, padding)
    ((1, 8, 8, 3), 4, "same"),
    ((1, 7, 9, 5), 6, "valid"),
    ((3, 11, 10, 16), 17, "same"),
    ((2, 13, 6, 1), 1, ((2, 0), (1, 3))),
    ((1, 1, 1, 2), 3, "same"),           # one pixel: every tap but the centre is padding
    ((2, 3, 3, 4), 2, "valid"),           # one output, smaller than a tile
    ((1, 2, 5, 7), 5, ((1, 0), (0, 1))),  # a 1-row output
    ((1, 9, 9, 70), 65, "same"),          # channels past the 64-channel transform chunks
    ((1, 5, 4, 33), 70, "valid"),
    ((2, 25, 23, 8), 9, "same"),           # several tile blocks
    ((1, 4, 6, 520), 130, "same"),        # transformed filters in two output-channel groups
]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", SHAPES, ids=lambda c: f"{c[0]}->{c[1]}")
def test_matches_reference_within_bound(rng, threads, algorithm, dtype, case):
    x_shape, c_out, padding = case
    x = _random(rng, x_shape, dtype)
    kernel = _random(rng, (3, 3, x_shape[3], c_out), dtype)
    bias = _random(rng, (c_out,), dtype)
    y = ops.conv2d(x, kernel, bias, padding=padding, algorithm=algorithm)
    err, bound = assert_within_bound(y, x, kernel, bias, padding, ALGORITHMS[algorithm], str(case))
    # And a plain relative check on top of the elementwise bound.
    exact = ref.conv2d(x, kernel, bias, padding=padding)
    scale = max(1.0, np.abs(exact).max())
    assert err.max() <= (1e-3 if dtype == np.float32 else 1e-11) * scale


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_bound_holds_for_a_large_dynamic_range(rng, algorithm, dtype):
    """Values spread over 12 decades: small outputs next to huge inputs in the same tile."""
    m = ALGORITHMS[algorithm]
    for trial in range(3):
        x = _random(rng, (2, 10, 11, 12), dtype, spread=6)
        kernel = _random(rng, (3, 3, 12, 7), dtype, spread=3)
        bias = _random(rng, (7,), dtype, spread=2)
        y = ops.conv2d(x, kernel, bias, padding="same", algorithm=algorithm)
        assert_within_bound(y, x, kernel, bias, "same", m, f"trial {trial}")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_bound_holds_under_cancellation(rng, algorithm):
    """Filters summing to zero over a constant image: the exact result is the bias alone."""
    kernel = _random(rng, (3, 3, 6, 5), np.float32)
    kernel -= kernel.mean(axis=(0, 1), keepdims=True)
    x = np.full((1, 12, 12, 6), 1000.0, np.float32) * rng.uniform(0.5, 2.0, 6).astype(np.float32)
    y = ops.conv2d(x, kernel, np.ones(5, np.float32), padding="valid", algorithm=algorithm)
    assert_within_bound(y, x, kernel, np.ones(5, np.float32), "valid", ALGORITHMS[algorithm])


def test_error_comes_from_the_whole_tile():
    """One large input outside output (0, 0)'s window but inside its F(4x4) tile: the exact
    output is 0, the Winograd one is not (the rounded 1/6, 1/24 of G do not cancel), yet it is
    within the tile bound.  A bound in the window's |x| (*) |w| alone would be 0 here."""
    x = np.zeros((1, 6, 6, 1), np.float32)
    x[0, 4, 4, 0] = 1e6
    kernel = np.full((3, 3, 1, 1), 0.3, np.float32)
    y = ops.conv2d(x, kernel, algorithm="winograd_4x4")
    assert ref.conv2d(x, kernel)[0, 0, 0, 0] == 0
    assert y[0, 0, 0, 0] != 0
    assert_within_bound(y, x, kernel, None, "valid", 4)


@pytest.mark.parametrize("m", [2, 4])
def test_bound_rejects_a_wrong_transform(rng, m):
    """The bound has teeth: Winograd with one matrix entry changed (here simulated in float64)
    breaks it at most outputs, while the correct matrices stay far inside."""
    x = _random(rng, (1, 9, 9, 8), np.float64)
    kernel = _random(rng, (3, 3, 8, 4), np.float64)
    pads = _pads(x.shape, "same")
    exact = ref.conv2d(x, kernel, padding="same")
    bound = error_bound(x, kernel, None, pads, m, np.float32)
    assert np.all(np.abs(winograd(x, kernel, None, pads, m) - exact) <= bound)
    for which in range(3):
        broken = [a.copy() for a in MATRICES[m]]
        broken[which][1, 1] *= 1.01
        err = np.abs(winograd(x, kernel, None, pads, m, matrices=broken) - exact)
        assert np.mean(err > bound) > 0.2, f"changing matrix {which} went unnoticed"


def test_float64_is_much_tighter(rng):
    x = _random(rng, (1, 12, 12, 16), np.float64)
    kernel = _random(rng, (3, 3, 16, 8), np.float64)
    for algorithm, m in ALGORITHMS.items():
        y64 = ops.conv2d(x, kernel, padding="same", algorithm=algorithm)
        y32 = ops.conv2d(x.astype(np.float32), kernel.astype(np.float32), padding="same", algorithm=algorithm)
        exact = ref.conv2d(x, kernel, padding="same")
        err64 = np.abs(y64 - exact).max()
        assert err64 <= error_bound(x, kernel, None, _pads(x.shape, "same"), m, np.float64).max()
        assert err64 < 1e-6 * np.abs(y32 - exact).max()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_one_and_two_threads_are_bytewise_identical(rng, algorithm, dtype):
    before = pycnn.get_num_threads()
    # Many tile blocks; and few tiles with output columns split across threads.
    for x_shape, c_out in (((2, 40, 36, 16), 24), ((1, 20, 20, 32), 192), ((1, 6, 6, 64), 256)):
        x = _random(rng, x_shape, dtype)
        kernel = _random(rng, (3, 3, x_shape[3], c_out), dtype)
        bias = _random(rng, (c_out,), dtype)
        results = []
        for n in (1, 2):
            pycnn.set_num_threads(n)
            results.append(ops.conv2d(x, kernel, bias, padding="same", algorithm=algorithm).tobytes())
        pycnn.set_num_threads(before)
        assert results[0] == results[1], x_shape


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_channels_first_batch_zero_and_no_bias(rng, algorithm):
    x = _random(rng, (2, 5, 7, 9), np.float32)       # NCHW
    kernel = _random(rng, (4, 5, 3, 3), np.float32)  # OIHW
    y = ops.conv2d(x, kernel, padding="same", data_format="channels_first", algorithm=algorithm)
    x_last, k_last = np.moveaxis(x, 1, -1), np.transpose(kernel, (2, 3, 1, 0))
    assert y.shape == (2, 4, 7, 9)
    assert_within_bound(np.ascontiguousarray(np.moveaxis(y, 1, -1)), x_last, k_last, None, "same",
                        ALGORITHMS[algorithm])
    empty = ops.conv2d(np.zeros((0, 6, 6, 3), np.float32), np.ones((3, 3, 3, 2), np.float32),
                       algorithm=algorithm)
    assert empty.shape == (0, 4, 4, 2) and empty.dtype == np.float32


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("activation, options, separate", [
    ("relu", {}, lambda y: ops.relu(y)),
    ("leaky_relu", {"negative_slope": 0.1}, lambda y: ops.leaky_relu(y, 0.1)),
    ("clamp", {"min_value": -0.5, "max_value": 0.5}, lambda y: ops.clamp(y, -0.5, 0.5)),
])
def test_fused_activation_equals_the_separate_op(rng, algorithm, dtype, activation, options, separate):
    # Edge tiles (7 is not a multiple of either tile) and a bias: the epilogue runs
    # on exactly the outputs the tile keeps, after their bias.
    x = _random(rng, (2, 7, 9, 5), dtype)
    kernel = _random(rng, (3, 3, 5, 6), dtype)
    bias = _random(rng, (6,), dtype)
    plain = ops.conv2d(x, kernel, bias, padding="same", algorithm=algorithm)
    fused = ops.conv2d(x, kernel, bias, padding="same", algorithm=algorithm, activation=activation, **options)
    assert fused.tobytes() == separate(plain).tobytes()


def test_auto_is_the_default_path(rng):
    x = _random(rng, (1, 9, 9, 8), np.float32)
    kernel = _random(rng, (3, 3, 8, 5), np.float32)
    assert ops.conv2d(x, kernel, algorithm="auto").tobytes() == ops.conv2d(x, kernel).tobytes()


@pytest.mark.parametrize("options, got", [
    ({"kernel_size": (5, 5)}, "got kernel (5, 5), strides (1, 1), dilation_rate (1, 1), groups 1"),
    ({"kernel_size": (3, 1)}, "got kernel (3, 1)"),
    ({"strides": 2}, "strides (2, 2)"),
    ({"strides": (1, 2)}, "strides (1, 2)"),
    ({"dilation_rate": 2}, "dilation_rate (2, 2)"),
    ({"groups": 2}, "groups 2"),
])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_shapes_winograd_cannot_run(algorithm, options, got):
    options = dict(options)
    kh, kw = options.pop("kernel_size", (3, 3))
    groups = options.get("groups", 1)
    x = np.ones((1, 9, 9, 4), np.float32)
    kernel = np.ones((kh, kw, 4 // groups, 4), np.float32)
    with pytest.raises(ValueError) as info:
        ops.conv2d(x, kernel, padding="same", algorithm=algorithm, **options)
    message = str(info.value)
    assert message.startswith(f"conv2d: algorithm='{algorithm}' needs a 3x3 kernel, strides 1, dilation_rate 1 "
                              f"and groups 1")
    assert got in message


def test_unknown_algorithm():
    x, kernel = np.ones((1, 5, 5, 2), np.float32), np.ones((3, 3, 2, 2), np.float32)
    with pytest.raises(ValueError, match=r"conv2d: algorithm must be one of 'auto', 'winograd_2x2', "
                                         r"'winograd_4x4'; got 'winograd'"):
        ops.conv2d(x, kernel, algorithm="winograd")
    with pytest.raises(TypeError, match=r"conv2d: algorithm must be a str.*got NoneType None"):
        ops.conv2d(x, kernel, algorithm=None)


def test_bad_shapes_still_named_first():
    """The usual conv2d checks run before the algorithm's: a channel mismatch names the shapes."""
    with pytest.raises(ValueError, match=r"input has 3 channels"):
        ops.conv2d(np.ones((1, 5, 5, 3), np.float32), np.ones((3, 3, 2, 4), np.float32), algorithm="winograd_4x4")
    with pytest.raises(ValueError, match=r"larger than padded input"):
        ops.conv2d(np.ones((1, 2, 2, 1), np.float32), np.ones((3, 3, 1, 1), np.float32), algorithm="winograd_2x2")


def test_engine_refuses_bad_calls_directly():
    """The binding's safety net: a bad tile, a 5x5 kernel or a short workspace is an error, never a crash."""
    from pycnn import _engine
    x, kernel = np.ones((1, 6, 6, 2), np.float32), np.ones((3, 3, 2, 3), np.float32)
    y = np.zeros((1, 4, 4, 3), np.float32)
    geometry = (1, 1, 1, 1, 0, 0, 0, 0, 1)
    with pytest.raises(ValueError):
        _engine.conv2d_winograd_workspace_size(x.shape, kernel.shape, False, geometry, 3)
    with pytest.raises(ValueError):
        _engine.conv2d_winograd_forward(x, np.ones((5, 5, 2, 3), np.float32), None, y, None, geometry, 4)
    with pytest.raises(ValueError):
        _engine.conv2d_winograd_forward(x, kernel, None, y, np.zeros(16, np.uint8), geometry, 4)
    with pytest.raises(ValueError):
        _engine.conv2d_winograd_forward(x, kernel, None, np.zeros((1, 5, 5, 3), np.float32), None, geometry, 2)


# ---------------------------------------------------------------- the layer option

def _model(algorithm):
    from pycnn import layers as L
    from pycnn.models import Sequential
    model = Sequential([L.Input((8, 8, 3)),
                        L.Conv2D(6, 3, padding="same", activation="relu", algorithm=algorithm, name="c1"),
                        L.Conv2D(4, (3, 3), padding="valid", algorithm=algorithm, name="c2"),
                        L.Flatten(), L.Dense(2)])
    return model


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_layer_trains_and_predicts_like_auto(rng, tmp_path, algorithm):
    x = rng.standard_normal((16, 8, 8, 3)).astype(np.float32)
    labels = rng.integers(0, 2, 16)
    wino, auto = _model(algorithm), _model("auto")
    start = [(rng.standard_normal(w.shape) * 0.3).astype(np.float32) for w in wino.get_weights()]
    wino.set_weights(start)
    auto.set_weights(start)
    for model in (wino, auto):
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    # Tolerances: measured differences (seeds 0-5, every ISA) are below 3e-5 before training, 1e-4
    # after, and 5e-7 in the weights.
    np.testing.assert_allclose(wino.predict(x, verbose=0), auto.predict(x, verbose=0), rtol=1e-3, atol=3e-4)
    # Two steps each from the same weights: the gradients are the exact convolution's, so the
    # weights stay close (they differ only through the forward's rounding).
    wino.fit(x, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
    auto.fit(x, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for got, expected, before in zip(wino.get_weights(), auto.get_weights(), start):
        assert np.abs(expected - before).max() > 1e-4   # training moved the weights
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # Both forward errors now reach the outputs through the (slightly different) trained weights.
    np.testing.assert_allclose(wino.predict(x, verbose=0), auto.predict(x, verbose=0), rtol=1e-3, atol=1e-3)

    layer = wino.get_layer("c1")
    assert layer.get_config()["algorithm"] == algorithm
    assert "algorithm" not in auto.get_layer("c1").get_config()   # Keras configs stay identical
    clone = type(layer).from_config(layer.get_config())
    assert clone.algorithm == algorithm and clone.get_config() == layer.get_config()

    path = str(tmp_path / "wino.pycnn")
    wino.save(path)
    loaded = pycnn.models.load_model(path)
    assert loaded.get_layer("c1").algorithm == algorithm
    assert loaded.get_layer("c2").algorithm == algorithm
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), wino.predict(x, verbose=0))


@pytest.mark.parametrize("options, received", [
    ({"kernel_size": 5}, "kernel_size=(5, 5)"),
    ({"strides": 2}, "strides=(2, 2)"),
    ({"dilation_rate": 2}, "dilation_rate=(2, 2)"),
    ({"groups": 2}, "groups=2"),
])
def test_layer_refuses_shapes_winograd_cannot_run(options, received):
    from pycnn import layers as L
    options = {"kernel_size": 3, **options}
    with pytest.raises(ValueError) as info:
        L.Conv2D(4, algorithm="winograd_4x4", name="stem", **options)
    message = str(info.value)
    assert message.startswith("Conv2D 'stem': algorithm='winograd_4x4' needs kernel_size (3, 3), strides (1, 1), "
                              "dilation_rate (1, 1) and groups 1; Received:")
    assert received in message


def test_layer_refuses_unknown_algorithm():
    from pycnn import layers as L
    with pytest.raises(ValueError, match=r"Conv2D 'c': algorithm must be one of 'auto', 'winograd_2x2', "
                                         r"'winograd_4x4'; Received: algorithm='fft'"):
        L.Conv2D(4, 3, algorithm="fft", name="c")


def test_layer_channels_first_and_float64(rng):
    from pycnn import layers as L
    x = rng.standard_normal((2, 3, 7, 7))
    wino = L.Conv2D(5, 3, padding="same", data_format="channels_first", dtype="float64",
                    algorithm="winograd_4x4")
    auto = L.Conv2D(5, 3, padding="same", data_format="channels_first", dtype="float64")
    y = wino(x)
    auto(x)
    auto.set_weights(wino.get_weights())
    assert y.dtype == np.float64 and y.shape == (2, 5, 7, 7)
    np.testing.assert_allclose(y, auto(x), rtol=1e-12, atol=1e-12)
