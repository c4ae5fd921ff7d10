"""Every op of pycnn.ops, forward and backward, against the NumPy reference in tests/reference.py.

The sweep covers strides 1-3, every padding form (valid, same, int, per-dim tuple,
explicit asymmetric, causal), dilation 1-3, groups (incl. depthwise), odd sizes,
kernel equal to the input, batch 0/1/several, both data formats and both float
dtypes, on small shapes so the whole file runs in seconds.

channels_first runs convert inputs to PyTorch's layouts (NCHW / NCL, OIHW / OIL,
depthwise (c_in*dm, 1, kh, kw), transposed (c_in, filters, kh, kw)), call the op with
data_format="channels_first", convert the results back and compare with the
channels_last reference. The kernel gradient is expected in the kernel's layout.

The first section checks the reference itself (against scipy.signal and by
adjoint identities) and needs no engine.
"""

import itertools

import numpy as np
import pytest
import scipy.signal

from tests import reference as ref
from tests.reference import assert_matches, random_array

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
DTYPES = [F32, F64]


# ============================================================ the reference checks itself


def test_reference_conv2d_matches_scipy_correlate(rng):
    x = rng.standard_normal((1, 7, 6, 1))
    k = rng.standard_normal((3, 2, 1, 1))
    expected = scipy.signal.correlate(x[0, :, :, 0], k[:, :, 0, 0], mode="valid")
    np.testing.assert_allclose(ref.conv2d(x, k)[0, :, :, 0], expected, rtol=1e-12)
    # "full" correlation == valid correlation over an input padded by k - 1 on every side.
    expected = scipy.signal.correlate(x[0, :, :, 0], k[:, :, 0, 0], mode="full")
    np.testing.assert_allclose(ref.conv2d(x, k, padding=((2, 2), (1, 1)))[0, :, :, 0], expected,
                               rtol=1e-12)


def test_reference_conv2d_multichannel_dilated_strided_matches_scipy(rng):
    x = rng.standard_normal((2, 9, 8, 3))
    k = rng.standard_normal((3, 2, 3, 4))
    got = ref.conv2d(x, k, strides=(2, 3), dilation_rate=(2, 1))
    k_dilated = np.zeros((5, 2, 3, 4))
    k_dilated[::2] = k
    for n in range(2):
        for o in range(4):
            full = sum(scipy.signal.correlate(x[n, :, :, c], k_dilated[:, :, c, o], mode="valid")
                       for c in range(3))
            np.testing.assert_allclose(got[n, :, :, o], full[::2, ::3], rtol=1e-12, atol=1e-12)


def test_reference_conv1d_causal_matches_numpy_correlate(rng):
    x = rng.standard_normal((1, 10, 1))
    k = rng.standard_normal((3, 1, 1))
    got = ref.conv1d(x, k, padding="causal", dilation_rate=2)
    padded = np.concatenate([np.zeros(4), x[0, :, 0]])
    expected = np.correlate(padded, np.array([k[0, 0, 0], 0, k[1, 0, 0], 0, k[2, 0, 0]]), "valid")
    np.testing.assert_allclose(got[0, :, 0], expected, rtol=1e-12)


@pytest.mark.parametrize("n, k, s, before, after", [
    # The Keras/TF split table of keras-semantics.md section 1.2.
    (28, 5, 1, 2, 2), (28, 4, 1, 1, 2), (28, 3, 2, 0, 1), (32, 3, 2, 0, 1), (7, 3, 2, 1, 1),
    (64, 4, 2, 1, 1)])
def test_reference_same_padding_split(n, k, s, before, after):
    assert ref.same_padding(n, k, s) == (before, after)


@pytest.mark.parametrize("n, k, s, padding, output_padding, expected", [
    (4, 3, 2, "valid", None, 9), (4, 2, 2, "valid", None, 8), (4, 1, 3, "valid", None, 12),
    (4, 3, 2, "valid", 1, 10), (4, 3, 2, "same", None, 8), (4, 3, 2, "same", 0, 7),
    (4, 3, 2, "same", 1, 8), (4, 2, 2, "same", 1, 7)])
def test_reference_transpose_output_size_keras_rules(n, k, s, padding, output_padding, expected):
    assert ref.conv_transpose_output_size(n, k, s, 1, padding, output_padding) == expected


def _dot(a, b):
    return float(np.sum(np.asarray(a) * np.asarray(b)))


@pytest.mark.parametrize("strides, padding, dilation, groups", [
    (1, "valid", 1, 1), (2, "same", 1, 2), (3, ((1, 0), (2, 1)), 2, 1), ((2, 1), 1, (1, 3), 4)])
def test_reference_conv2d_backward_is_the_adjoint(rng, strides, padding, dilation, groups):
    x = rng.standard_normal((2, 8, 9, 4))
    k = rng.standard_normal((3, 2, 4 // groups, 4))
    y = ref.conv2d(x, k, None, strides, padding, dilation, groups)
    dy = rng.standard_normal(y.shape)
    dx, dk, _ = ref.conv2d_backward(dy, x, k, None, strides, padding, dilation, groups)
    # conv2d is linear in x and in k separately: <conv(x, k), dy> = <x, dx> = <k, dk>.
    assert _dot(y, dy) == pytest.approx(_dot(x, dx), rel=1e-12)
    assert _dot(y, dy) == pytest.approx(_dot(k, dk), rel=1e-12)


def test_reference_depthwise_equals_grouped_conv(rng):
    x = rng.standard_normal((2, 7, 6, 3))
    k = rng.standard_normal((3, 3, 3, 2))
    grouped = k.reshape(3, 3, 1, 6)            # group c owns outputs c*dm .. c*dm + dm - 1
    np.testing.assert_allclose(ref.depthwise_conv2d(x, k, None, 2, "same", 1),
                               ref.conv2d(x, grouped, None, 2, "same", 1, groups=3), rtol=1e-12)
    dy = rng.standard_normal(ref.depthwise_conv2d(x, k, None, 2, "same").shape)
    dx, dk, _ = ref.depthwise_conv2d_backward(dy, x, k, None, 2, "same")
    gdx, gdk, _ = ref.conv2d_backward(dy, x, grouped, None, 2, "same", 1, 3)
    np.testing.assert_allclose(dx, gdx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dk, gdk.reshape(3, 3, 3, 2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("strides, padding, output_padding, dilation", [
    (2, "valid", None, 1), (2, "same", None, 1), (3, "valid", 2, 1), (2, "same", 1, 2),
    (1, "same", None, 1)])
def test_reference_transpose_is_adjoint_of_its_own_backward(rng, strides, padding, output_padding,
                                                            dilation):
    x = rng.standard_normal((2, 4, 3, 3))
    k = rng.standard_normal((3, 2, 5, 3))
    y = ref.conv2d_transpose(x, k, None, strides, padding, output_padding, dilation)
    dy = rng.standard_normal(y.shape)
    dx, dk, _ = ref.conv2d_transpose_backward(dy, x, k, None, strides, padding, output_padding,
                                              dilation)
    assert _dot(y, dy) == pytest.approx(_dot(x, dx), rel=1e-12)
    assert _dot(y, dy) == pytest.approx(_dot(k, dk), rel=1e-12)


@pytest.mark.parametrize("strides, k", [(2, 3), (2, 2), (2, 4), (1, 3), (3, 5)])
def test_reference_transpose_same_is_adjoint_of_conv2d_same(rng, strides, k):
    # Holds whenever the Keras output size n*s maps back to n under conv2d "same".
    x = rng.standard_normal((1, 4, 5, 3))
    kernel = rng.standard_normal((k, k, 2, 3))
    y = ref.conv2d_transpose(x, kernel, None, strides, "same")
    z = rng.standard_normal(y.shape)
    assert _dot(ref.conv2d(z, kernel, None, strides, "same"), x) == pytest.approx(_dot(z, y),
                                                                                  rel=1e-12)


def test_reference_im2col_times_kernel_is_conv2d_and_col2im_is_adjoint(rng):
    x = rng.standard_normal((2, 6, 7, 3))
    k = rng.standard_normal((3, 2, 3, 4))
    cols = ref.im2col(x, (3, 2), (2, 1), "same", (1, 2))
    np.testing.assert_allclose(cols @ k.reshape(-1, 4), ref.conv2d(x, k, None, (2, 1), "same", (1, 2)),
                               rtol=1e-12, atol=1e-12)
    z = rng.standard_normal(cols.shape)
    assert _dot(cols, z) == pytest.approx(_dot(x, ref.col2im(z, x.shape, (3, 2), (2, 1), "same",
                                                              (1, 2))), rel=1e-12)


def test_reference_pools_by_hand():
    x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)   # [[1,2,3],[4,5,6],[7,8,9]]
    # "same" 2x2 stride 2 on 3x3: total pad 1 -> 0 before, 1 after; windows clip at the edge.
    np.testing.assert_array_equal(ref.max_pool2d(x, 2, 2, "same")[0, :, :, 0], [[5, 6], [8, 9]])
    np.testing.assert_allclose(ref.avg_pool2d(x, 2, 2, "same")[0, :, :, 0],
                               [[3.0, 4.5], [7.5, 9.0]])
    dy = np.ones((1, 2, 2, 1))
    np.testing.assert_allclose(ref.avg_pool2d_backward(dy, x, 2, 2, "same")[0, :, :, 0],
                               [[0.25, 0.25, 0.5], [0.25, 0.25, 0.5], [0.5, 0.5, 1.0]])
    ties = np.ones((1, 2, 2, 1))
    np.testing.assert_array_equal(ref.max_pool2d_backward(np.ones((1, 1, 1, 1)), ties, 2)[0, :, :, 0],
                                  [[1, 0], [0, 0]])


# ============================================================ conv-family sweep


def _conv_case(op, x_shape, k_shape, bias=True, **options):
    return dict(op=op, x_shape=x_shape, k_shape=k_shape, bias=bias, options=options)


def _conv2d_cases():
    cases = []
    paddings = ["valid", "same", 1, (1, 2), ((0, 2), (1, 0)), ((2, 1), (0, 1))]
    batches = itertools.cycle([2, 1, 3])
    for strides, padding in itertools.product([1, 2, 3], paddings):
        cases.append(_conv_case("conv2d", (next(batches), 7, 8, 3), (3, 3, 3, 4),
                                strides=strides, padding=padding))
    for dilation, padding in itertools.product([1, 2, 3], ["valid", "same", ((1, 0), (0, 2))]):
        cases.append(_conv_case("conv2d", (2, 9, 8, 2), (3, 2, 2, 3), bias=dilation != 2,
                                dilation_rate=dilation, padding=padding))
    cases += [
        _conv_case("conv2d", (2, 9, 9, 2), (2, 3, 2, 3), strides=2, dilation_rate=2, padding="same"),
        _conv_case("conv2d", (2, 8, 7, 2), (3, 3, 2, 2), strides=(1, 2), dilation_rate=(2, 1)),
        # groups, including one group per input channel (depthwise as a grouped conv)
        _conv_case("conv2d", (2, 6, 7, 4), (3, 3, 2, 6), groups=2),
        _conv_case("conv2d", (2, 7, 6, 4), (3, 3, 2, 4), groups=2, strides=2, padding="same"),
        _conv_case("conv2d", (1, 6, 6, 4), (3, 3, 1, 4), groups=4, padding="same"),
        _conv_case("conv2d", (2, 7, 7, 3), (2, 2, 1, 6), groups=3, strides=2, padding="same"),
        _conv_case("conv2d", (2, 8, 8, 6), (3, 3, 2, 6), groups=3, dilation_rate=2, padding=1),
        # edge shapes
        _conv_case("conv2d", (2, 5, 4, 3), (5, 4, 3, 2)),                 # kernel == input -> 1x1
        _conv_case("conv2d", (2, 5, 5, 3), (1, 1, 3, 4), strides=2),     # 1x1 kernel
        _conv_case("conv2d", (3, 1, 1, 2), (3, 3, 2, 2), padding="same"),  # 1x1 image, same
        _conv_case("conv2d", (2, 7, 7, 1), (2, 2, 1, 3), strides=3),     # stride > kernel
        _conv_case("conv2d", (2, 8, 8, 2), (2, 2, 2, 2), strides=2, padding="same"),  # even, even
        _conv_case("conv2d", (2, 8, 8, 2), (3, 3, 2, 2), strides=2, padding="same"),  # 0/1 split
        _conv_case("conv2d", (2, 5, 9, 2), (1, 3, 2, 1), strides=(1, 3), padding="same"),
        _conv_case("conv2d", (0, 6, 5, 3), (3, 3, 3, 4), padding="same"),  # batch 0
        _conv_case("conv2d", (0, 6, 5, 4), (3, 3, 2, 4), groups=2, strides=2),
    ]
    return cases


def _conv1d_cases():
    cases = []
    paddings = ["valid", "same", "causal", 2, (1, 3)]
    for strides, padding in itertools.product([1, 2, 3], paddings):
        cases.append(_conv_case("conv1d", (2, 11, 3), (3, 3, 4), strides=strides, padding=padding))
    for dilation, padding in itertools.product([2, 3], ["valid", "same", "causal"]):
        cases.append(_conv_case("conv1d", (2, 12, 2), (3, 2, 3), dilation_rate=dilation,
                                padding=padding, bias=False))
    cases += [
        _conv_case("conv1d", (2, 9, 4), (3, 2, 6), groups=2, padding="causal"),
        _conv_case("conv1d", (2, 9, 4), (2, 1, 8), groups=4, strides=2, padding="same"),
        _conv_case("conv1d", (1, 5, 2), (5, 2, 3)),                       # kernel == input
        _conv_case("conv1d", (3, 1, 2), (4, 2, 2), padding="causal"),
        _conv_case("conv1d", (0, 7, 2), (3, 2, 3), padding="causal", dilation_rate=2),
    ]
    return cases


def _depthwise_cases():
    cases = []
    for dm, strides, padding in itertools.product([1, 2], [1, 2, 3], ["valid", "same"]):
        cases.append(_conv_case("depthwise_conv2d", (2, 7, 8, 3), (3, 3, 3, dm), strides=strides,
                                padding=padding, bias=strides != 2))
    cases += [
        _conv_case("depthwise_conv2d", (2, 9, 9, 2), (3, 3, 2, 3), dilation_rate=2, padding="same"),
        _conv_case("depthwise_conv2d", (2, 9, 8, 2), (2, 3, 2, 1), dilation_rate=3),
        _conv_case("depthwise_conv2d", (1, 6, 7, 2), (2, 2, 2, 2), padding=((0, 1), (1, 0))),
        _conv_case("depthwise_conv2d", (2, 4, 5, 3), (4, 5, 3, 2)),        # kernel == input
        _conv_case("depthwise_conv2d", (2, 8, 8, 4), (3, 3, 4, 1), strides=2, padding="same"),
        _conv_case("depthwise_conv2d", (0, 6, 6, 3), (3, 3, 3, 2), padding="same"),
    ]
    return cases


def _transpose_cases():
    cases = []
    for strides, padding, k in itertools.product([1, 2, 3], ["valid", "same"], [2, 3]):
        cases.append(_conv_case("conv2d_transpose", (2, 4, 5, 3), (k, k, 2, 3), strides=strides,
                                padding=padding, bias=k == 3))
    cases += [
        _conv_case("conv2d_transpose", (2, 4, 3, 3), (3, 3, 2, 3), strides=2, padding="valid",
                   output_padding=1),
        _conv_case("conv2d_transpose", (2, 4, 3, 3), (3, 3, 2, 3), strides=2, padding="same",
                   output_padding=0),
        _conv_case("conv2d_transpose", (2, 4, 3, 3), (3, 3, 2, 3), strides=2, padding="same",
                   output_padding=1),
        _conv_case("conv2d_transpose", (2, 3, 4, 2), (2, 2, 3, 2), strides=3, padding="same",
                   output_padding=(2, 1)),
        _conv_case("conv2d_transpose", (2, 3, 3, 2), (1, 1, 2, 2), strides=2, padding="valid"),
        _conv_case("conv2d_transpose", (2, 4, 4, 2), (3, 3, 3, 2), dilation_rate=2, padding="same"),
        _conv_case("conv2d_transpose", (2, 3, 4, 2), (2, 3, 3, 2), dilation_rate=(2, 1),
                   padding="valid"),
        _conv_case("conv2d_transpose", (1, 4, 4, 2), (2, 2, 4, 2), strides=2, padding="same"),
        _conv_case("conv2d_transpose", (2, 3, 5, 2), (3, 2, 2, 2), strides=(2, 3), padding="same"),
        _conv_case("conv2d_transpose", (2, 4, 3, 2), (4, 2, 3, 2), strides=2, padding="same",
                   output_padding=0),                    # even kernel, op 0: out = (n-1)*s
        _conv_case("conv2d_transpose", (0, 3, 3, 2), (3, 3, 2, 2), strides=2, padding="same"),
    ]
    return cases


CONV_CASES = _conv2d_cases() + _conv1d_cases() + _depthwise_cases() + _transpose_cases()


def _case_id(case):
    opts = ",".join(f"{k}={v}" for k, v in case["options"].items()).replace(" ", "")
    return f"{case['op']}-x{case['x_shape']}-k{case['k_shape']}-{opts}".replace(" ", "")


# Each conv case runs in float32 channels_last and in float64 in one of the two layouts;
# every fourth case also runs float32 channels_first. That keeps the sweep to a few hundred
# tests while every op, padding form and stride is seen in both dtypes and both layouts.
def _conv_params():
    params = []
    for i, case in enumerate(CONV_CASES):
        runs = [(F32, "channels_last"), (F64, "channels_first" if i % 2 else "channels_last")]
        if i % 4 == 0:
            runs.append((F32, "channels_first"))
        params += [pytest.param(case, dtype, fmt, id=f"{_case_id(case)}-{dtype.name}-{fmt}")
                   for dtype, fmt in runs]
    return params


CONV_PARAMS = _conv_params()


def kernel_to_channels_first(op, kernel):
    if op == "depthwise_conv2d":
        return ref.depthwise_to_torch(kernel)
    if op == "conv2d_transpose":
        return ref.transpose_kernel_to_torch(kernel)
    return ref.hwio_to_oihw(kernel)


def kernel_from_channels_first(op, kernel, x_channels_last):
    if op == "depthwise_conv2d":
        return ref.depthwise_from_torch(kernel, x_channels_last.shape[-1])
    if op == "conv2d_transpose":
        return ref.transpose_kernel_from_torch(kernel)
    return ref.oihw_to_hwio(kernel)


def _conv_inputs(case, dtype, rng):
    x = random_array(rng, case["x_shape"], dtype)
    kernel = random_array(rng, case["k_shape"], dtype)
    kh, kw, k2, k3 = (1,) + case["k_shape"] if len(case["k_shape"]) == 3 else case["k_shape"]
    # Bias length: filters (conv), filters at axis 2 (Keras transposed), c_in * dm (depthwise).
    n_out = {"conv2d_transpose": k2, "depthwise_conv2d": k2 * k3}.get(case["op"], k3)
    bias = random_array(rng, (n_out,), dtype) if case["bias"] else None
    return x, kernel, bias


def _call_conv(ops, case, x, kernel, bias, data_format, dy=None):
    """Run the op (or its backward when dy is given) in data_format; results channels_last."""
    op = case["op"]
    if data_format == "channels_first":
        x_in = ref.nhwc_to_nchw(x)
        k_in = kernel_to_channels_first(op, kernel)
    else:
        x_in, k_in = x, kernel
    if dy is None:
        y = getattr(ops, op)(x_in, k_in, bias, data_format=data_format, **case["options"])
        return ref.nchw_to_nhwc(y) if data_format == "channels_first" else y
    dy_in = ref.nhwc_to_nchw(dy) if data_format == "channels_first" else dy
    dx, dk, db = getattr(ops, op + "_backward")(dy_in, x_in, k_in, bias, data_format=data_format,
                                               **case["options"])
    if data_format == "channels_first":
        assert dx.shape == x_in.shape and dk.shape == k_in.shape
        dx, dk = ref.nchw_to_nhwc(dx), kernel_from_channels_first(op, dk, x)
    return dx, dk, db


@pytest.mark.parametrize("case, dtype, data_format", CONV_PARAMS)
def test_conv_forward(ops, rng, case, dtype, data_format):
    x, kernel, bias = _conv_inputs(case, dtype, rng)
    expected = getattr(ref, case["op"])(x, kernel, bias, **case["options"])
    got = _call_conv(ops, case, x, kernel, bias, data_format)
    assert_matches(got, expected, dtype, case["op"])


@pytest.mark.parametrize("case, dtype, data_format", CONV_PARAMS)
def test_conv_backward(ops, rng, case, dtype, data_format):
    x, kernel, bias = _conv_inputs(case, dtype, rng)
    y_shape = getattr(ref, case["op"])(x, kernel, bias, **case["options"]).shape
    dy = random_array(rng, y_shape, dtype)
    exp_dx, exp_dk, exp_db = getattr(ref, case["op"] + "_backward")(dy, x, kernel, bias,
                                                                    **case["options"])
    dx, dk, db = _call_conv(ops, case, x, kernel, bias, data_format, dy=dy)
    assert_matches(dx, exp_dx, dtype, "dx")
    assert_matches(dk, exp_dk, dtype, "dkernel")
    if bias is None:
        assert db is None
    else:
        assert_matches(db, exp_db, dtype, "dbias")


# ============================================================ pooling sweep


def _pool_cases():
    cases = []
    settings_2d = [
        (2, None, "valid"), (3, None, "valid"), (2, 1, "valid"), (3, 2, "valid"), ((2, 3), (1, 2), "valid"),
        (2, None, "same"), (3, 2, "same"), (3, 1, "same"), ((3, 2), (2, 1), "same"), (2, 3, "same"),
        (3, 2, 1), (3, 1, (1, 0)), (2, 2, ((0, 1), (1, 0))), (7, None, "valid"),
    ]
    settings_1d = [(2, None, "valid"), (3, 2, "valid"), (3, 1, "same"), (2, None, "same"),
                   (4, 3, "same"), (3, 2, 1), (3, 3, (1, 0)), (9, None, "valid")]
    for kind in ("max", "avg"):
        for i, (pool, strides, padding) in enumerate(settings_2d):
            n = [2, 1, 3][i % 3]
            cases.append(dict(op=f"{kind}_pool2d", x_shape=(n, 7, 8, 3), pool_size=pool,
                              strides=strides, padding=padding))
        for pool, strides, padding in settings_1d:
            cases.append(dict(op=f"{kind}_pool1d", x_shape=(2, 9, 3), pool_size=pool,
                              strides=strides, padding=padding))
        cases.append(dict(op=f"{kind}_pool2d", x_shape=(0, 6, 6, 2), pool_size=2, strides=None,
                          padding="same"))
        cases.append(dict(op=f"{kind}_pool1d", x_shape=(0, 6, 2), pool_size=3, strides=2,
                          padding="valid"))
    return cases


POOL_PARAMS = [pytest.param(case, dtype, fmt,
                            id=f"{case['op']}-x{case['x_shape']}-p{case['pool_size']}-"
                               f"s{case['strides']}-{case['padding']}-{dtype.name}-{fmt}"
                               .replace(" ", ""))
               for i, case in enumerate(_pool_cases())
               for dtype in DTYPES
               for fmt in (["channels_last", "channels_first"] if (i + (dtype == F64)) % 2 == 0
                           else ["channels_last"])]


def _pool_kwargs(case):
    return dict(pool_size=case["pool_size"], strides=case["strides"], padding=case["padding"])


@pytest.mark.parametrize("case, dtype, data_format", POOL_PARAMS)
def test_pool_forward_and_backward(ops, rng, case, dtype, data_format):
    x = random_array(rng, case["x_shape"], dtype)
    expected = getattr(ref, case["op"])(x, **_pool_kwargs(case))
    dy = random_array(rng, expected.shape, dtype)
    expected_dx = getattr(ref, case["op"] + "_backward")(dy, x, **_pool_kwargs(case))
    cf = data_format == "channels_first"
    x_in = ref.nhwc_to_nchw(x) if cf else x
    dy_in = ref.nhwc_to_nchw(dy) if cf else dy
    y = getattr(ops, case["op"])(x_in, data_format=data_format, **_pool_kwargs(case))
    dx = getattr(ops, case["op"] + "_backward")(dy_in, x_in, data_format=data_format,
                                                **_pool_kwargs(case))
    if cf:
        y, dx = ref.nchw_to_nhwc(y), ref.nchw_to_nhwc(dx)
    assert_matches(y, expected, dtype, case["op"])
    assert_matches(dx, expected_dx, dtype, case["op"] + "_backward")


@pytest.mark.parametrize("op", ["max_pool2d", "max_pool1d"])
def test_max_pool_backward_routes_to_first_maximum(ops, rng, op):
    """ASSUMPTION (not in the contract; reported to the lead): with ties, the whole gradient
    of a window goes to its first maximal element in row-major window order (TF/PyTorch CPU)."""
    shape = (2, 6, 6, 3) if op == "max_pool2d" else (2, 9, 3)
    x = rng.integers(0, 2, size=shape).astype(np.float64)   # many ties, incl. all-equal windows
    for strides, padding in [(None, "valid"), (1, "valid"), (2, "same")]:
        y = getattr(ops, op)(x, 3, strides, padding)
        dy = rng.standard_normal(y.shape)
        got = getattr(ops, op + "_backward")(dy, x, 3, strides, padding)
        np.testing.assert_allclose(got, getattr(ref, op + "_backward")(dy, x, 3, strides, padding),
                                   rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding", ["same", 1, ((1, 0), (0, 1))])
def test_padded_cells_never_win_a_max_and_never_count_in_an_average(ops, rng, padding):
    # All inputs negative: a zero-padded max would return 0 at the border.
    x = -1.0 - rng.random((2, 5, 6, 3))
    y = ops.max_pool2d(x, 3, 2, padding)
    assert np.all(y < 0)
    np.testing.assert_allclose(y, ref.max_pool2d(x, 3, 2, padding), rtol=1e-12)
    # All inputs one: an average that counted padded zeros would drop below 1 at the border.
    np.testing.assert_allclose(ops.avg_pool2d(np.ones((2, 5, 6, 3)), 3, 2, padding), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ops.avg_pool1d(np.ones((2, 7, 3)), 3, 2, "same"), 1.0, rtol=1e-12)


# ============================================================ global pools


GLOBAL_OPS = ["global_avg_pool1d", "global_avg_pool2d", "global_max_pool1d", "global_max_pool2d"]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("op", GLOBAL_OPS)
@pytest.mark.parametrize("n", [0, 3])
def test_global_pool(ops, rng, op, keepdims, data_format, dtype, n):
    shape = (n, 5, 4, 3) if op.endswith("2d") else (n, 7, 3)
    x = random_array(rng, shape, dtype)
    ref_fn = ref.global_avg_pool if "avg" in op else ref.global_max_pool
    ref_bw = ref.global_avg_pool_backward if "avg" in op else ref.global_max_pool_backward
    expected = ref_fn(x, keepdims)
    dy = random_array(rng, expected.shape, dtype)
    expected_dx = ref_bw(dy, x, keepdims)
    cf = data_format == "channels_first"
    x_in = ref.nhwc_to_nchw(x) if cf else x
    dy_in = ref.nhwc_to_nchw(dy) if (cf and keepdims) else dy
    y = getattr(ops, op)(x_in, data_format=data_format, keepdims=keepdims)
    dx = getattr(ops, op + "_backward")(dy_in, x_in, data_format=data_format, keepdims=keepdims)
    if cf:
        dx = ref.nchw_to_nhwc(dx)
        if keepdims:
            y = ref.nchw_to_nhwc(y)
    assert_matches(y, expected, dtype, op)
    assert_matches(dx, expected_dx, dtype, op + "_backward")


# ============================================================ dense, activations, losses


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("x_shape, units, bias", [
    ((4, 5), 3, True), ((1, 7), 1, False), ((0, 5), 3, True), ((2, 3, 5), 4, True),
    ((3, 16), 10, False), ((5,), 3, True)])
def test_dense(ops, rng, x_shape, units, bias, dtype):
    x = random_array(rng, x_shape, dtype)
    kernel = random_array(rng, (x_shape[-1], units), dtype)
    b = random_array(rng, (units,), dtype) if bias else None
    assert_matches(ops.dense(x, kernel, b), ref.dense(x, kernel, b), dtype, "dense")
    dy = random_array(rng, x_shape[:-1] + (units,), dtype)
    dx, dk, db = ops.dense_backward(dy, x, kernel, b)
    exp_dx, exp_dk, exp_db = ref.dense_backward(dy, x, kernel, b)
    assert_matches(dx, exp_dx, dtype, "dx")
    assert_matches(dk, exp_dk, dtype, "dkernel")
    if b is None:
        assert db is None
    else:
        assert_matches(db, exp_db, dtype, "dbias")


ACTIVATIONS = [("relu", {}), ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.01}),
               ("sigmoid", {}), ("tanh", {}), ("softmax", {}), ("softmax", {"axis": 1}),
               ("softmax", {"axis": 0})]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("name, kwargs", ACTIVATIONS, ids=lambda v: str(v))
def test_activation(ops, rng, name, kwargs, dtype):
    x = (3 * rng.standard_normal((3, 4, 5))).astype(dtype)
    x[0, 0, :3] = [0.0, 40.0, -40.0]          # the relu kink and saturated sigmoid/tanh/softmax
    dy = random_array(rng, x.shape, dtype)
    assert_matches(getattr(ops, name)(x, **kwargs), getattr(ref, name)(x, **kwargs), dtype, name)
    assert_matches(getattr(ops, name + "_backward")(dy, x, **kwargs),
                   getattr(ref, name + "_backward")(dy, x, **kwargs), dtype, name + "_backward")


def test_relu_backward_at_zero_is_zero(ops):
    """ASSUMPTION (TF and PyTorch agree): the relu subgradient used at x == 0 is 0."""
    x = np.array([[-1.0, 0.0, 2.0]])
    np.testing.assert_array_equal(ops.relu_backward(np.ones_like(x), x), [[0.0, 0.0, 1.0]])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("label_kind", ["int", "one_hot", "probabilities", "int32"])
def test_softmax_cross_entropy(ops, rng, label_kind, dtype):
    logits = (3 * rng.standard_normal((6, 5))).astype(dtype)
    logits[0] = [50.0, -50.0, 0.0, 1.0, 2.0]   # large logits must not overflow
    labels = rng.integers(0, 5, size=6)
    if label_kind == "one_hot":
        labels = np.eye(5, dtype=dtype)[labels]
    elif label_kind == "probabilities":
        labels = ref.softmax(rng.standard_normal((6, 5))).astype(dtype)
    elif label_kind == "int32":
        labels = labels.astype(np.int32)
    loss, dlogits = ops.softmax_cross_entropy(logits, labels)
    exp_loss, exp_dlogits = ref.softmax_cross_entropy(logits, labels)
    assert float(loss) == pytest.approx(exp_loss, rel=ref.RTOL[dtype] * 10)
    assert_matches(dlogits, exp_dlogits, dtype, "dlogits")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (7,)])
def test_mse(ops, rng, shape, dtype):
    pred, target = random_array(rng, shape, dtype), random_array(rng, shape, dtype)
    loss, dpred = ops.mse(pred, target)
    exp_loss, exp_dpred = ref.mse(pred, target)
    assert float(loss) == pytest.approx(exp_loss, rel=ref.RTOL[dtype] * 10)
    assert_matches(dpred, exp_dpred, dtype, "dpred")


# ============================================================ im2col / col2im


IM2COL_CASES = [
    dict(kernel_size=3), dict(kernel_size=(2, 3), strides=2), dict(kernel_size=3, padding="same"),
    dict(kernel_size=3, strides=(2, 1), padding="same", dilation_rate=(1, 2)),
    dict(kernel_size=2, strides=3, padding=((1, 0), (0, 2))), dict(kernel_size=(3, 1), padding=1),
    dict(kernel_size=(6, 5)), dict(kernel_size=2, dilation_rate=3),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("options", IM2COL_CASES, ids=lambda o: str(o).replace(" ", ""))
@pytest.mark.parametrize("n", [0, 2])
def test_im2col_col2im(ops, rng, options, dtype, n):
    x = random_array(rng, (n, 6, 5, 3), dtype)
    expected = ref.im2col(x, **options)
    assert_matches(ops.im2col(x, **options), expected, dtype, "im2col")
    cols = random_array(rng, expected.shape, dtype)
    assert_matches(ops.col2im(cols, x.shape, **options), ref.col2im(cols, x.shape, **options),
                   dtype, "col2im")


# ============================================================ shapes that cross GEMM blocks


# The engine's GEMM packs KC = 256 deep, MC = 96 rows, NC = 2048 columns in micro-tiles of up to
# 8 x 32 (csrc/gemm_tiles.h); tiny sweep shapes never leave the first block, these do.
MEDIUM_CONV = [
    # x (N, H, W, C), kernel (kh, kw, c_in/groups, c_out), options -> M = N*OH*OW, K, N = c_out
    ((3, 13, 11, 37), (3, 3, 37, 70), dict(padding="same")),            # M 429, K 333, N 70
    ((2, 17, 16, 30), (3, 3, 15, 34), dict(strides=2, groups=2)),       # K 135 per group
    ((4, 9, 10, 300), (1, 1, 300, 19), dict()),                          # 1x1: K 300, M 360
    ((1, 20, 20, 3), (5, 5, 3, 129), dict(padding="same", dilation_rate=2)),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("x_shape, k_shape, options", MEDIUM_CONV,
                         ids=[f"x{c[0]}-k{c[1]}".replace(" ", "") for c in MEDIUM_CONV])
def test_conv2d_medium_shapes_cross_gemm_blocks(ops, rng, x_shape, k_shape, options, dtype):
    x, k = random_array(rng, x_shape, dtype), random_array(rng, k_shape, dtype)
    b = random_array(rng, (k_shape[-1],), dtype)
    expected = ref.conv2d(x, k, b, **options)
    assert_matches(ops.conv2d(x, k, b, **options), expected, dtype, "conv2d")
    dy = random_array(rng, expected.shape, dtype)
    dx, dk, db = ops.conv2d_backward(dy, x, k, b, **options)
    exp_dx, exp_dk, exp_db = ref.conv2d_backward(dy, x, k, b, **options)
    assert_matches(dx, exp_dx, dtype, "dx")
    assert_matches(dk, exp_dk, dtype, "dkernel")
    assert_matches(db, exp_db, dtype, "dbias")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("x_shape, units", [((7, 600), 130), ((3, 5), 2100), ((100, 97), 33)])
def test_dense_medium_shapes_cross_gemm_blocks(ops, rng, x_shape, units, dtype):
    x, k = random_array(rng, x_shape, dtype), random_array(rng, (x_shape[-1], units), dtype)
    b = random_array(rng, (units,), dtype)
    assert_matches(ops.dense(x, k, b), ref.dense(x, k, b), dtype, "dense")
    dy = random_array(rng, x_shape[:-1] + (units,), dtype)
    for got, want, what in zip(ops.dense_backward(dy, x, k, b), ref.dense_backward(dy, x, k, b),
                               ("dx", "dkernel", "dbias")):
        assert_matches(got, want, dtype, what)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_transpose_and_depthwise_medium_shapes(ops, rng, dtype):
    x = random_array(rng, (2, 12, 11, 40), dtype)
    kt = random_array(rng, (3, 3, 33, 40), dtype)
    assert_matches(ops.conv2d_transpose(x, kt, None, 2, "same"),
                   ref.conv2d_transpose(x, kt, None, 2, "same"), dtype, "conv2d_transpose")
    kd = random_array(rng, (3, 3, 40, 2), dtype)
    assert_matches(ops.depthwise_conv2d(x, kd, None, 1, "same"),
                   ref.depthwise_conv2d(x, kd, None, 1, "same"), dtype, "depthwise_conv2d")


# ============================================================ random configurations


def _random_padding(rng, rank):
    forms = ["valid", "same", int(rng.integers(0, 3))]
    if rank == 2:
        forms += [tuple(int(p) for p in rng.integers(0, 3, 2)),
                  tuple(tuple(int(p) for p in rng.integers(0, 3, 2)) for _ in range(2))]
    else:
        forms += ["causal", tuple(int(p) for p in rng.integers(0, 3, 2))]
    return forms[int(rng.integers(len(forms)))]


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("op", ["conv2d", "conv1d"])
def test_conv_random_configurations(ops, op, seed):
    """Seeded random geometry (deterministic): either the op matches the reference forward and
    backward, or the output would be empty and the op says so with a ValueError."""
    rng = np.random.default_rng(1000 + seed)
    rank = 2 if op == "conv2d" else 1
    groups = int(rng.choice([1, 1, 2, 3]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    spatial = tuple(int(v) for v in rng.integers(1, 9, rank))
    kernel_size = tuple(int(v) for v in rng.integers(1, 5, rank))
    options = dict(strides=tuple(int(v) for v in rng.integers(1, 4, rank)),
                   dilation_rate=tuple(int(v) for v in rng.integers(1, 4, rank)),
                   padding=_random_padding(rng, rank), groups=groups)
    dtype = DTYPES[seed % 2]
    x = random_array(rng, (int(rng.integers(0, 4)),) + spatial + (c_in,), dtype)
    kernel = random_array(rng, kernel_size + (c_in // groups, c_out), dtype)
    bias = random_array(rng, (c_out,), dtype) if seed % 3 else None
    try:
        expected = getattr(ref, op)(x, kernel, bias, **options)
    except ValueError:          # the reference found an empty output
        with pytest.raises(ValueError, match=rf"{op}: effective kernel"):
            getattr(ops, op)(x, kernel, bias, **options)
        return
    assert_matches(getattr(ops, op)(x, kernel, bias, **options), expected, dtype, op)
    dy = random_array(rng, expected.shape, dtype)
    got = getattr(ops, op + "_backward")(dy, x, kernel, bias, **options)
    want = getattr(ref, op + "_backward")(dy, x, kernel, bias, **options)
    for g, w, what in zip(got, want, ("dx", "dkernel", "dbias")):
        if w is None:
            assert g is None
        else:
            assert_matches(g, w, dtype, what)
