"""The activation fused into the convolution forward (ops.conv2d(..., activation=...)).

The engine applies it to each chunk of the output right after the bias, on every
forward path it picks by shape (im2col + GEMM, the transposed "narrow" GEMM and
its im2col-by-tap variant, a GEMM per group, 1x1 direct with and without a column
split, thin groups in place and with expanded rows, depthwise, the low-channel
direct kernels, dense layers).  Each case checks, at 1 and 2 threads, that the
fused result has the same bytes as the convolution followed by the separate op,
and that it matches the float64 reference of tests/reference.py.  The backward
ops given the output y in place of the pre-activation z are checked to give the
same bytes (what the layers rely on to keep y only).
"""
import numpy as np
import pytest
import torch

import pycnn
from pycnn import ops
from tests import reference as ref
from tests.reference import assert_matches, random_array

DTYPES = [np.dtype(np.float32), np.dtype(np.float64)]

# name -> (ops keyword arguments, the separate op, the float64 reference)
ACTIVATIONS = {
    "relu": ({"activation": "relu"}, ops.relu, ref.relu),
    "leaky_relu (default slope)": ({"activation": "leaky_relu"}, ops.leaky_relu, ref.leaky_relu),
    "leaky_relu 0.01": ({"activation": "leaky_relu", "negative_slope": 0.01},
                        lambda z: ops.leaky_relu(z, negative_slope=0.01),
                        lambda z: ref.leaky_relu(z, negative_slope=0.01)),
    "relu6": ({"activation": "relu6"}, lambda z: ops.clamp(z, 0, 6), lambda z: ref.clamp(z, 0, 6)),
    "clamp": ({"activation": "clamp", "min_value": -1.5, "max_value": 2.25},
              lambda z: ops.clamp(z, -1.5, 2.25), lambda z: ref.clamp(z, -1.5, 2.25)),
}


def _check_fused(run, z, z_ref, dtype):
    """run(**activation kwargs) is the fused op; z its unfused output, z_ref the float64 reference."""
    for name, (kwargs, separate, reference) in ACTIVATIONS.items():
        y = run(**kwargs)
        expected = separate(z)
        assert y.dtype == expected.dtype and y.shape == expected.shape, name
        assert y.tobytes() == expected.tobytes(), f"{name}: fused != conv followed by the separate op"
        assert_matches(y, reference(z_ref), dtype, name)


# Shapes that take each forward path (see tests/test_conv_engine_paths.py for how the engine chooses).
PATH_CASES = {
    "im2col + GEMM": ((2, 9, 8, 40), (3, 3, 40, 70), {"padding": "same"}),
    "im2col + GEMM, image cut into chunks": ((1, 40, 36, 40), (3, 3, 40, 24), {"padding": "same"}),
    "im2col + GEMM, one chunk split by columns": ((1, 14, 14, 24), (3, 3, 24, 96), {"padding": "same"}),
    "narrow GEMM, few filters": ((2, 9, 8, 40), (3, 3, 40, 4), {"padding": "same", "strides": 2}),
    "narrow GEMM, im2col by tap": ((2, 12, 12, 1), (5, 5, 1, 20), {"padding": "same"}),
    "GEMM per group": ((1, 5, 6, 70), (2, 3, 35, 66), {"padding": "same", "groups": 2}),
    "1x1 direct": ((2, 6, 6, 16), (1, 1, 16, 128), {}),
    "1x1 direct, column split": ((1, 4, 5, 70), (1, 1, 70, 200), {}),
    "1x1 narrow": ((2, 6, 6, 16), (1, 1, 16, 3), {}),
    "thin groups, expanded rows": ((2, 10, 9, 8), (3, 3, 2, 12), {"padding": "same", "groups": 4}),
    "thin groups, in place": ((1, 12, 13, 32), (3, 3, 4, 32), {"padding": "same", "groups": 8}),
    "thin groups, image cut mid-row": ((1, 37, 43, 16), (3, 3, 4, 16), {"padding": "same", "groups": 4}),
    "low channel, LeNet c1": ((3, 28, 28, 1), (5, 5, 1, 6), {"padding": "same"}),
    "low channel, LeNet c3": ((3, 14, 14, 6), (5, 5, 6, 16), {}),
    "low channel, rows of padding only": ((2, 6, 7, 2), (1, 3, 2, 6), {"padding": ((2, 3), (1, 1))}),
    "low channel, image cut between rows": ((1, 48, 50, 1), (3, 3, 1, 6), {"padding": "same"}),
}


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no bias"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(PATH_CASES))
def test_conv2d_fused_activation_on_every_path(rng, threads, dtype, with_bias, case):
    x_shape, kernel_shape, options = PATH_CASES[case]
    x = random_array(rng, x_shape, dtype)
    kernel = random_array(rng, kernel_shape, dtype)
    bias = random_array(rng, (kernel_shape[-1],), dtype) if with_bias else None
    z = ops.conv2d(x, kernel, bias, **options)
    _check_fused(lambda **a: ops.conv2d(x, kernel, bias, **options, **a), z,
                 ref.conv2d(x, kernel, bias, **options), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_fused_activation(rng, threads, dtype, multiplier):
    x = random_array(rng, (2, 9, 10, 35), dtype)
    kernel = random_array(rng, (3, 3, 35, multiplier), dtype)
    bias = random_array(rng, (35 * multiplier,), dtype)
    options = {"padding": "same", "strides": 2}
    z = ops.depthwise_conv2d(x, kernel, bias, **options)
    _check_fused(lambda **a: ops.depthwise_conv2d(x, kernel, bias, **options, **a), z,
                 ref.depthwise_conv2d(x, kernel, bias, **options), dtype)


DENSE_CASES = {
    "1 row (B streamed, no packing)": ((1, 64), 256),
    "3 rows (B streamed, no packing)": ((3, 33), 70),
    "5 rows, column split": ((5, 70), 200),
    "300 rows": ((300, 130), 129),
    "narrow, 3 units": ((64, 50), 3),
    "3-D input": ((4, 6, 33), 17),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(DENSE_CASES))
def test_dense_fused_activation(rng, threads, dtype, case):
    x_shape, units = DENSE_CASES[case]
    x = random_array(rng, x_shape, dtype)
    kernel = random_array(rng, (x_shape[-1], units), dtype)
    bias = random_array(rng, (units,), dtype)
    z = ops.dense(x, kernel, bias)
    _check_fused(lambda **a: ops.dense(x, kernel, bias, **a), z, ref.dense(x, kernel, bias), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_conv1d_fused_activation(rng, threads, dtype):
    x = random_array(rng, (3, 50, 7), dtype)
    kernel = random_array(rng, (4, 7, 20), dtype)
    bias = random_array(rng, (20,), dtype)
    options = {"padding": "causal", "dilation_rate": 2}
    z = ops.conv1d(x, kernel, bias, **options)
    _check_fused(lambda **a: ops.conv1d(x, kernel, bias, **options, **a), z,
                 ref.conv1d(x, kernel, bias, **options), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_fused_activation_channels_first(rng, dtype):
    x = random_array(rng, (2, 5, 9, 8), dtype)            # NCHW
    kernel = random_array(rng, (7, 5, 3, 3), dtype)       # OIHW
    z = ops.conv2d(x, kernel, data_format="channels_first")
    y = ops.conv2d(x, kernel, data_format="channels_first", activation="relu")
    assert y.shape == z.shape and y.tobytes() == ops.relu(z).tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", ["im2col + GEMM", "1x1 direct", "thin groups, in place", "low channel, LeNet c1"])
def test_fused_activation_keeps_nan_and_infinities(rng, dtype, case):
    """NaN stays NaN and infinities are clamped exactly as by the separate op."""
    x_shape, kernel_shape, options = PATH_CASES[case]
    x = random_array(rng, x_shape, dtype)
    x[0, 1, 2, 0] = np.nan
    x[-1, -1, -1, -1] = np.inf
    kernel = random_array(rng, kernel_shape, dtype)
    z = ops.conv2d(x, kernel, **options)
    assert np.isnan(z).any()
    for name, (kwargs, separate, _) in ACTIVATIONS.items():
        assert ops.conv2d(x, kernel, **options, **kwargs).tobytes() == separate(z).tobytes(), name


@pytest.mark.parametrize("case", ["im2col + GEMM, image cut into chunks", "1x1 direct, column split",
                                  "thin groups, image cut mid-row", "low channel, image cut between rows"])
def test_fused_activation_is_thread_count_independent(rng, case):
    x_shape, kernel_shape, options = PATH_CASES[case]
    x = random_array(rng, x_shape, np.float32)
    kernel = random_array(rng, kernel_shape, np.float32)
    bias = random_array(rng, (kernel_shape[-1],), np.float32)
    before = pycnn.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            pycnn.set_num_threads(n)
            results.append([ops.conv2d(x, kernel, bias, **options, **kwargs).tobytes()
                            for kwargs, _, _ in ACTIVATIONS.values()])
    finally:
        pycnn.set_num_threads(before)
    assert results[0] == results[1]


# ---------------------------------------------------------------- clamp, and backward from the output

def _special_values(rng, dtype):
    """Random values plus the cases the activations treat specially: 0, -0, the clamp bounds,
    denormals, infinities and NaN."""
    special = np.array([0.0, -0.0, -1.5, 2.25, 6.0, 1e-42, -1e-42, np.inf, -np.inf, np.nan], dtype=dtype)
    return np.concatenate([random_array(rng, (1000,), dtype) * 4, special])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("bounds", [(0.0, 6.0), (-1.5, 2.25), (-np.inf, 0.5), (1.0, 1.0)])
def test_clamp_matches_pytorch_hardtanh(rng, dtype, bounds):
    lo, hi = bounds
    x = _special_values(rng, dtype)
    y = ops.clamp(x, lo, hi)
    expected = torch.nn.functional.hardtanh(torch.from_numpy(x), lo, hi).numpy()
    np.testing.assert_array_equal(y, expected)    # NaN where NaN; -0 == +0 by value
    np.testing.assert_array_equal(y, ref.clamp(x, lo, hi).astype(dtype))
    dy = random_array(rng, x.shape, dtype)
    t = torch.from_numpy(x.copy()).requires_grad_()
    torch.nn.functional.hardtanh(t, lo, hi).backward(torch.from_numpy(dy))
    dx = ops.clamp_backward(dy, x, lo, hi)
    # At NaN PyTorch passes dy through; pycnn gives 0, as its relu_backward does (NaN > 0 is false).
    finite = ~np.isnan(x)
    np.testing.assert_array_equal(dx[finite], t.grad.numpy()[finite])
    assert np.all(dx[~finite] == 0)
    np.testing.assert_array_equal(dx, ref.clamp_backward(dy, x, lo, hi).astype(dtype))


def test_clamp_at_zero_gives_positive_zero_like_relu():
    x = np.array([-0.0, -1.0, np.nan], np.float32)
    assert ops.clamp(x, 0, 6).tobytes() == ops.relu(x).tobytes()


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_backward_from_output_equals_backward_from_input(rng, dtype):
    z = _special_values(rng, dtype)
    dy = random_array(rng, z.shape, dtype)
    assert ops.relu_backward(dy, ops.relu(z)).tobytes() == ops.relu_backward(dy, z).tobytes()
    for slope in (0.0, 1e-3, 0.2, 1.0):
        y = ops.leaky_relu(z, negative_slope=slope)
        assert (ops.leaky_relu_backward(dy, y, negative_slope=slope).tobytes()
                == ops.leaky_relu_backward(dy, z, negative_slope=slope).tobytes()), slope
    for lo, hi in ((0.0, 6.0), (-1.5, 2.25)):
        y = ops.clamp(z, lo, hi)
        assert ops.clamp_backward(dy, y, lo, hi).tobytes() == ops.clamp_backward(dy, z, lo, hi).tobytes()


# ---------------------------------------------------------------- argument errors

def _small_conv():
    return np.ones((1, 4, 4, 2), np.float32), np.ones((3, 3, 2, 3), np.float32)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"activation": "gelu"}, ValueError, r"conv2d: activation must be None or one of \['clamp', 'leaky_relu', "
                                         r"'relu', 'relu6'\]; got 'gelu'"),
    ({"activation": np.maximum}, TypeError, r"conv2d: activation must be None or one of"),
    ({"activation": "relu", "negative_slope": 0.1}, ValueError,
     r"conv2d: negative_slope must be None unless activation is 'leaky_relu'"),
    ({"negative_slope": 0.1}, ValueError, r"negative_slope must be None unless"),
    ({"activation": "relu6", "max_value": 5}, ValueError,
     r"conv2d: min_value and max_value must be None unless activation is 'clamp'"),
    ({"activation": "clamp", "max_value": 5}, ValueError, r"conv2d: activation 'clamp' needs min_value and max_value"),
    ({"activation": "clamp", "min_value": 2, "max_value": 1}, ValueError,
     r"conv2d: min_value and max_value must be numbers with min_value <= max_value; got min_value=2, max_value=1"),
    ({"activation": "clamp", "min_value": float("nan"), "max_value": 1}, ValueError, r"min_value <= max_value"),
    ({"activation": "clamp", "min_value": "0", "max_value": 1}, TypeError, r"conv2d: min_value must be a real"),
    ({"activation": "leaky_relu", "negative_slope": True}, TypeError, r"conv2d: negative_slope must be a real"),
])
def test_bad_activation_arguments(kwargs, error, match):
    x, kernel = _small_conv()
    with pytest.raises(error, match=match):
        ops.conv2d(x, kernel, **kwargs)


def test_bad_activation_arguments_name_the_op():
    x, kernel = _small_conv()
    with pytest.raises(ValueError, match=r"^dense: activation must be"):
        ops.dense(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), activation="softmax")
    with pytest.raises(ValueError, match=r"^conv1d: activation must be"):
        ops.conv1d(np.ones((1, 5, 2), np.float32), np.ones((3, 2, 4), np.float32), activation="tanh")
    with pytest.raises(ValueError, match=r"^depthwise_conv2d: activation must be"):
        ops.depthwise_conv2d(x, np.ones((3, 3, 2, 1), np.float32), activation="Relu")
    with pytest.raises(ValueError, match=r"^clamp: min_value and max_value must be"):
        ops.clamp(x, 1, 0)
    with pytest.raises(TypeError, match=r"^clamp_backward: max_value must be a real"):
        ops.clamp_backward(x, x, 0, None)


def test_engine_rejects_a_bad_epilogue():
    """The engine re-checks what ops validated (a safety net for other callers)."""
    from pycnn import _engine
    x, kernel = _small_conv()
    y = np.empty((1, 2, 2, 3), np.float32)
    geometry = (1, 1, 1, 1, 0, 0, 0, 0, 1)
    workspace = np.empty(_engine.conv2d_workspace_size(x.shape, kernel.shape, False, geometry), np.uint8)
    for epilogue in ((7, 0.0, 0.0, 0.0), (3, 0.0, 1.0, 0.0), (3, 0.0, float("nan"), 1.0)):
        with pytest.raises(ValueError):
            _engine.conv2d_forward(x, kernel, None, y, workspace, geometry, epilogue)
