"""Memory layouts and degenerate batches (reliability.md rows 18-22, B7).

Every array argument is passed as a non-contiguous view, Fortran-order copy, negative-stride
view, read-only array, byte-swapped ('>f4'/'>f8') copy and unaligned buffer. The result must
equal the C-contiguous result exactly (same bytes) and no input may change (sha256 of its
bytes before and after). Batch 0 must give correctly shaped empty results and zero
(initialised) weight gradients.
"""

import hashlib

import numpy as np
import pytest

from tests import reference as ref


# ------------------------------------------------------------ layout variants


def non_contiguous(a):
    """A strided view (every other element of a wider last axis) with a's values."""
    if a.ndim == 0:
        return a.copy()
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    view = wide[..., ::2]
    assert not view.flags.c_contiguous or a.size <= 1
    return view


def fortran_order(a):
    return np.asfortranarray(a)


def negative_strides(a):
    """A view with negative strides on every axis that reads back as a."""
    flipped = np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])
    return flipped[(slice(None, None, -1),) * a.ndim]


def read_only(a):
    b = a.copy()
    b.setflags(write=False)
    return b


def byte_swapped(a):
    return a.astype(a.dtype.newbyteorder())


def unaligned(a):
    """A copy of a in a buffer that starts one byte past an aligned address."""
    buf = np.frombuffer(bytearray(a.nbytes + 1), dtype=a.dtype, count=a.size, offset=1)
    out = buf.reshape(a.shape)
    out[...] = a
    assert a.size == 0 or not out.flags.aligned
    return out


VARIANTS = {"non_contiguous": non_contiguous, "fortran": fortran_order,
            "negative_strides": negative_strides, "read_only": read_only,
            "byte_swapped": byte_swapped, "unaligned": unaligned}


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


# ------------------------------------------------------------ op samples


def _samples(rng, dtype):
    """(name, callable(ops, *arrays), arrays) for forward and backward ops of every family."""
    r = lambda *shape: rng.standard_normal(shape).astype(dtype)
    x4, k4, b4 = r(2, 6, 5, 3), r(3, 3, 3, 4), r(4)
    x3, k3, b3 = r(2, 9, 3), r(3, 3, 4), r(4)
    kd, bd = r(3, 3, 3, 2), r(6)
    kt, bt = r(3, 3, 2, 3), r(2)
    conv = dict(strides=2, padding="same")
    return [
        ("conv2d", lambda o, x, k, b: o.conv2d(x, k, b, **conv), (x4, k4, b4)),
        ("conv2d_backward", lambda o, dy, x, k, b: o.conv2d_backward(dy, x, k, b, **conv),
         (r(2, 3, 3, 4), x4, k4, b4)),
        ("conv2d_channels_first", lambda o, x, k: o.conv2d(x, k, None, padding=1,
                                                           data_format="channels_first"),
         (r(2, 3, 6, 5), r(4, 3, 3, 3))),
        ("conv1d", lambda o, x, k, b: o.conv1d(x, k, b, padding="causal", dilation_rate=2),
         (x3, k3, b3)),
        ("conv1d_backward", lambda o, dy, x, k, b: o.conv1d_backward(
            dy, x, k, b, padding="causal", dilation_rate=2), (r(2, 9, 4), x3, k3, b3)),
        ("depthwise_conv2d", lambda o, x, k, b: o.depthwise_conv2d(x, k, b, **conv), (x4, kd, bd)),
        ("depthwise_conv2d_backward", lambda o, dy, x, k, b: o.depthwise_conv2d_backward(
            dy, x, k, b, **conv), (r(2, 3, 3, 6), x4, kd, bd)),
        ("conv2d_transpose", lambda o, x, k, b: o.conv2d_transpose(x, k, b, **conv), (x4, kt, bt)),
        ("conv2d_transpose_backward", lambda o, dy, x, k, b: o.conv2d_transpose_backward(
            dy, x, k, b, **conv), (r(2, 12, 10, 2), x4, kt, bt)),
        ("max_pool2d", lambda o, x: o.max_pool2d(x, 3, 2, "same"), (x4,)),
        ("max_pool2d_backward", lambda o, dy, x: o.max_pool2d_backward(dy, x, 3, 2, "same"),
         (r(2, 3, 3, 3), x4)),
        ("avg_pool2d", lambda o, x: o.avg_pool2d(x, 2, 1, "same"), (x4,)),
        ("avg_pool2d_backward", lambda o, dy, x: o.avg_pool2d_backward(dy, x, 2, 1, "same"),
         (r(2, 6, 5, 3), x4)),
        ("max_pool1d", lambda o, x: o.max_pool1d(x, 2), (x3,)),
        ("avg_pool1d_backward", lambda o, dy, x: o.avg_pool1d_backward(dy, x, 3, 2),
         (r(2, 4, 3), x3)),
        ("global_avg_pool2d", lambda o, x: o.global_avg_pool2d(x), (x4,)),
        ("global_max_pool2d_backward", lambda o, dy, x: o.global_max_pool2d_backward(dy, x),
         (r(2, 3), x4)),
        ("global_max_pool1d", lambda o, x: o.global_max_pool1d(x, keepdims=True), (x3,)),
        ("dense", lambda o, x, k, b: o.dense(x, k, b), (r(4, 5), r(5, 3), r(3))),
        ("dense_backward", lambda o, dy, x, k, b: o.dense_backward(dy, x, k, b),
         (r(4, 3), r(4, 5), r(5, 3), r(3))),
        ("relu", lambda o, x: o.relu(x), (r(3, 4),)),
        ("relu_backward", lambda o, dy, x: o.relu_backward(dy, x), (r(3, 4), r(3, 4))),
        ("leaky_relu", lambda o, x: o.leaky_relu(x, 0.1), (r(3, 4),)),
        ("leaky_relu_backward", lambda o, dy, x: o.leaky_relu_backward(dy, x, 0.1), (r(3, 4), r(3, 4))),
        ("batch_norm", lambda o, x, g, b: o.batch_norm(x, gamma=g, beta=b), (x4, r(3), r(3))),
        ("batch_norm_inference_axis1", lambda o, x, m, v: o.batch_norm(x, m, v, axis=1),
         (x4, r(6), np.abs(r(6)))),
        ("batch_norm_backward", lambda o, dy, x, m, v, g, b: o.batch_norm_backward(dy, x, m, v, g, b),
         (r(2, 6, 5, 3), x4, r(3), np.abs(r(3)), r(3), r(3))),
        ("sigmoid", lambda o, x: o.sigmoid(x), (r(3, 4),)),
        ("softmax_backward", lambda o, dy, x: o.softmax_backward(dy, x, axis=0),
         (r(3, 4), r(3, 4))),
        ("softmax_cross_entropy", lambda o, x, p: o.softmax_cross_entropy(x, p),
         (r(4, 3), ref.softmax(r(4, 3)).astype(dtype))),
        ("mse", lambda o, a, b: o.mse(a, b), (r(3, 4), r(3, 4))),
        ("im2col", lambda o, x: o.im2col(x, 3, 2, "same"), (x4,)),
        ("col2im", lambda o, c: o.col2im(c, (2, 6, 5, 3), 3, 2, "same"), (r(2, 3, 3, 27),)),
    ]


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def _assert_same_result(got, expected, what):
    for g, e in zip(_as_tuple(got), _as_tuple(expected)):
        if e is None:
            assert g is None, what
            continue
        g, e = np.asarray(g), np.asarray(e)
        assert g.shape == e.shape, what
        assert g.dtype.type is e.dtype.type, f"{what}: dtype {g.dtype} vs {e.dtype}"
        np.testing.assert_array_equal(g, e, err_msg=what)


SAMPLE_NAMES = [s[0] for s in _samples(np.random.default_rng(0), np.float32)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_every_layout_gives_the_contiguous_result_and_leaves_inputs_alone(ops, rng, name, dtype):
    sample = {s[0]: s for s in _samples(rng, dtype)}[name]
    _, call, arrays = sample
    expected = call(ops, *arrays)
    for variant_name, variant in VARIANTS.items():
        inputs = [variant(a) for a in arrays]
        before = [_digest(a) for a in inputs]
        got = call(ops, *inputs)
        _assert_same_result(got, expected, f"{name} with {variant_name} inputs")
        assert [_digest(a) for a in inputs] == before, f"{name} modified a {variant_name} input"
        for a, original in zip(inputs, arrays):
            np.testing.assert_array_equal(a, original)


def test_mixed_layouts_in_one_call(ops, rng):
    x = rng.standard_normal((2, 7, 6, 3))
    k = rng.standard_normal((3, 2, 3, 4))
    b = rng.standard_normal(4)
    expected = ops.conv2d(x, k, b, padding="same")
    got = ops.conv2d(negative_strides(x), fortran_order(k), byte_swapped(b), padding="same")
    np.testing.assert_array_equal(got, expected)


def test_transposed_view_is_not_mistaken_for_another_layout(ops, rng):
    """A channels_first array built as a transposed NHWC view (C == H == W, so every axis
    has the same length) must be read by its shape and data_format, never by its strides."""
    x_nhwc = rng.standard_normal((2, 4, 4, 4))
    k = rng.standard_normal((3, 3, 4, 4))
    expected = ref.conv2d(x_nhwc, k, padding="same")
    x_view = np.moveaxis(x_nhwc, -1, 1)          # NCHW values, NHWC memory order
    got = ops.conv2d(x_view, ref.hwio_to_oihw(k), padding="same", data_format="channels_first")
    ref.assert_matches(ref.nchw_to_nhwc(got), expected, np.float64, "conv2d channels_first view")
    got = ops.conv2d(x_nhwc, k, padding="same")
    ref.assert_matches(got, expected, np.float64, "conv2d channels_last")


def test_outputs_are_fresh_writable_arrays(ops, rng):
    x = rng.standard_normal((1, 4, 4, 2))
    k = rng.standard_normal((3, 3, 2, 2))
    y = ops.conv2d(x, k)
    assert y.flags.writeable and y.flags.c_contiguous
    assert not np.shares_memory(y, x) and not np.shares_memory(y, k)
    y2 = ops.relu(x)
    assert not np.shares_memory(y2, x)


# ------------------------------------------------------------ batch 0


BATCH0_CONV = [
    ("conv2d", (0, 6, 5, 3), (3, 3, 3, 4), 4, dict(strides=2, padding="same"), (0, 3, 3, 4)),
    ("conv2d", (0, 6, 5, 3), (3, 3, 3, 4), None, dict(data_format="channels_first"), None),
    ("conv1d", (0, 9, 2), (3, 2, 5), 5, dict(padding="causal"), (0, 9, 5)),
    ("depthwise_conv2d", (0, 5, 5, 2), (3, 3, 2, 3), 6, dict(), (0, 3, 3, 6)),
    ("conv2d_transpose", (0, 3, 4, 2), (3, 3, 5, 2), 5, dict(strides=2, padding="same"),
     (0, 6, 8, 5)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("op, x_shape, k_shape, bias_len, options, y_shape", BATCH0_CONV,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(BATCH0_CONV)])
def test_batch_zero_conv(ops, rng, op, x_shape, k_shape, bias_len, options, y_shape, dtype):
    if options.get("data_format") == "channels_first":
        # (0, 6, 5, 3) read as NCHW: 6 channels of 5x3; OIHW kernel (4, 6, 3, 3) -> (0, 4, 3, 1)
        k_shape, y_shape = (4, 6, 3, 3), (0, 4, 3, 1)
    x = np.zeros(x_shape, dtype)
    kernel = rng.standard_normal(k_shape).astype(dtype)
    bias = rng.standard_normal(bias_len).astype(dtype) if bias_len else None
    forward, backward = getattr(ops, op), getattr(ops, op + "_backward")
    # Run a non-empty batch first so stale workspace memory would show up as garbage below.
    full = np.ones((3,) + x_shape[1:], dtype)
    backward(np.ones(forward(full, kernel, bias, **options).shape, dtype), full, kernel, bias,
             **options)
    y = forward(x, kernel, bias, **options)
    assert y.shape == y_shape and y.dtype == dtype
    dx, dk, db = backward(np.zeros(y_shape, dtype), x, kernel, bias, **options)
    assert dx.shape == x_shape and dx.dtype == dtype
    assert dk.shape == kernel.shape and dk.dtype == dtype
    np.testing.assert_array_equal(dk, 0.0)
    if bias is None:
        assert db is None
    else:
        assert db.shape == bias.shape and db.dtype == dtype
        np.testing.assert_array_equal(db, 0.0)


@pytest.mark.parametrize("op, x_shape, y_shape", [
    ("max_pool2d", (0, 6, 6, 2), (0, 3, 3, 2)), ("avg_pool2d", (0, 6, 6, 2), (0, 3, 3, 2)),
    ("max_pool1d", (0, 6, 2), (0, 3, 2)), ("avg_pool1d", (0, 6, 2), (0, 3, 2))])
def test_batch_zero_pool(ops, op, x_shape, y_shape):
    x = np.zeros(x_shape, np.float32)
    y = getattr(ops, op)(x, 2)
    assert y.shape == y_shape and y.dtype == np.float32
    dx = getattr(ops, op + "_backward")(np.zeros(y_shape, np.float32), x, 2)
    assert dx.shape == x_shape and dx.dtype == np.float32


def test_batch_zero_dense_and_global_pool(ops, rng):
    x = np.zeros((0, 5))
    kernel, bias = rng.standard_normal((5, 3)), rng.standard_normal(3)
    ops.dense_backward(np.ones((4, 3)), np.ones((4, 5)), kernel, bias)
    assert ops.dense(x, kernel, bias).shape == (0, 3)
    dx, dk, db = ops.dense_backward(np.zeros((0, 3)), x, kernel, bias)
    assert dx.shape == (0, 5)
    np.testing.assert_array_equal(dk, np.zeros((5, 3)))
    np.testing.assert_array_equal(db, np.zeros(3))
    x4 = np.zeros((0, 4, 4, 3))
    assert ops.global_avg_pool2d(x4).shape == (0, 3)
    assert ops.global_max_pool2d(x4, keepdims=True).shape == (0, 1, 1, 3)
    assert ops.global_max_pool2d_backward(np.zeros((0, 3)), x4).shape == (0, 4, 4, 3)
