"""pycnn.ops against PyTorch and Keras 3 (torch backend) with identical weights, in float64.

PyTorch checks forward and backward (autograd) of conv1d/conv2d (strides, dilation, groups,
asymmetric padding via F.pad), depthwise (groups = c_in), transposed conv (output_padding,
"same"), max/avg pooling (avg with count_include_pad=False, the Keras rule).
Keras checks the layers whose semantics pycnn copies: Conv1D (causal, same), Conv2D "same"
with stride 2 on even sizes (0 before / 1 after), DepthwiseConv2D, Conv2DTranspose, pooling
"same" and global pooling.

Skipped, with the reason, when torch or keras is not installed
(`pip install torch keras`; keras must run on the torch backend).
"""

import os
import warnings

import numpy as np
import pytest

from tests import reference as ref

torch = pytest.importorskip("torch", reason="PyTorch oracle not installed (pip install torch)")
F = torch.nn.functional

RTOL = 1e-10

# keras' torch backend trips NumPy 2's __array__(copy=...) deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")


def _t(a, grad=False):
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float64, requires_grad=grad)


def _close(got, expected, what):
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: {got.shape} != {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=RTOL * scale, err_msg=what)


def _pad_nchw(x, pads):
    """F.pad with per-dim (before, after) given in spatial order."""
    flat = []
    for before, after in reversed(pads):
        flat += [before, after]
    return F.pad(x, flat)


# ============================================================ PyTorch


TORCH_CONV2D = [
    # (x NHWC, kernel HWIO, pycnn options, groups)
    ((2, 8, 7, 4), (3, 3, 4, 6), dict(strides=1, padding=1)),
    ((2, 9, 9, 4), (3, 2, 2, 6), dict(strides=(2, 1), padding=((0, 2), (1, 1)), dilation_rate=2,
                                      groups=2)),
    ((1, 8, 8, 3), (3, 3, 3, 4), dict(strides=2, padding="same")),   # TF split: 0 before, 1 after
    ((2, 7, 7, 2), (2, 2, 2, 3), dict(strides=3)),
    ((2, 6, 6, 4), (1, 1, 4, 5), dict()),
]


@pytest.mark.parametrize("x_shape, k_shape, options", TORCH_CONV2D)
def test_conv2d_matches_torch(ops, rng, x_shape, k_shape, options):
    x, k, b = rng.standard_normal(x_shape), rng.standard_normal(k_shape), rng.standard_normal(k_shape[-1])
    strides = ref.as_tuple(options.get("strides", 1), 2)
    dilation = ref.as_tuple(options.get("dilation_rate", 1), 2)
    groups = options.get("groups", 1)
    pads = ref.resolve_padding(options.get("padding", "valid"), x_shape[1:3], k_shape[:2],
                               strides, dilation)
    xt, kt, bt = _t(ref.nhwc_to_nchw(x), True), _t(ref.hwio_to_oihw(k), True), _t(b, True)
    yt = F.conv2d(_pad_nchw(xt, pads), kt, bt, stride=strides, dilation=dilation, groups=groups)
    dy = rng.standard_normal(yt.shape)
    yt.backward(_t(dy))
    # pycnn in channels_first with PyTorch layouts, so no conversion can hide a bug
    y = ops.conv2d(ref.nhwc_to_nchw(x), ref.hwio_to_oihw(k), b, data_format="channels_first",
                   **options)
    _close(y, yt.detach().numpy(), "conv2d")
    dx, dk, db = ops.conv2d_backward(dy, ref.nhwc_to_nchw(x), ref.hwio_to_oihw(k), b,
                                     data_format="channels_first", **options)
    _close(dx, xt.grad.numpy(), "dx")
    _close(dk, kt.grad.numpy(), "dkernel")
    _close(db, bt.grad.numpy(), "dbias")


@pytest.mark.parametrize("options", [dict(strides=2, padding=2), dict(dilation_rate=3, groups=2),
                                     dict(padding="causal", dilation_rate=2)])
def test_conv1d_matches_torch(ops, rng, options):
    x, k = rng.standard_normal((2, 12, 4)), rng.standard_normal((3, 4 // options.get("groups", 1), 6))
    s = options.get("strides", 1)
    d = options.get("dilation_rate", 1)
    (before, after), = ref.resolve_padding(options.get("padding", "valid"), (12,), (3,), (s,), (d,))
    xt, kt = _t(x.transpose(0, 2, 1), True), _t(ref.hwio_to_oihw(k), True)
    yt = F.conv1d(F.pad(xt, (before, after)), kt, None, stride=s, dilation=d,
                  groups=options.get("groups", 1))
    dy = rng.standard_normal(yt.shape)
    yt.backward(_t(dy))
    y = ops.conv1d(x.transpose(0, 2, 1).copy(), ref.hwio_to_oihw(k), None,
                   data_format="channels_first", **options)
    _close(y, yt.detach().numpy(), "conv1d")
    dx, dk, db = ops.conv1d_backward(dy, x.transpose(0, 2, 1).copy(), ref.hwio_to_oihw(k), None,
                                     data_format="channels_first", **options)
    _close(dx, xt.grad.numpy(), "dx")
    _close(dk, kt.grad.numpy(), "dkernel")
    assert db is None


@pytest.mark.parametrize("dm, options", [(1, dict(padding=1)), (2, dict(strides=2, dilation_rate=1)),
                                         (3, dict(dilation_rate=2, padding=2))])
def test_depthwise_conv2d_matches_torch_grouped_conv(ops, rng, dm, options):
    x, k = rng.standard_normal((2, 8, 7, 3)), rng.standard_normal((3, 3, 3, dm))
    b = rng.standard_normal(3 * dm)
    p = options.get("padding", 0)
    xt, kt, bt = _t(ref.nhwc_to_nchw(x), True), _t(ref.depthwise_to_torch(k), True), _t(b, True)
    yt = F.conv2d(xt, kt, bt, stride=options.get("strides", 1), padding=p,
                  dilation=options.get("dilation_rate", 1), groups=3)
    dy = rng.standard_normal(yt.shape)
    yt.backward(_t(dy))
    # channels_last, Keras kernel; compare after converting torch's results
    y = ops.depthwise_conv2d(x, k, b, **options)
    _close(y, ref.nchw_to_nhwc(yt.detach().numpy()), "depthwise_conv2d")
    dx, dk, db = ops.depthwise_conv2d_backward(ref.nchw_to_nhwc(dy), x, k, b, **options)
    _close(dx, ref.nchw_to_nhwc(xt.grad.numpy()), "dx")
    _close(dk, ref.depthwise_from_torch(kt.grad.numpy(), 3), "dkernel")
    _close(db, bt.grad.numpy(), "dbias")


TORCH_TRANSPOSE = [
    # (k, stride, dilation, pycnn padding, pycnn output_padding, torch padding, torch output_padding)
    (3, 2, 1, "valid", None, 0, 0),
    (3, 2, 1, "valid", 1, 0, 1),
    (2, 3, 1, "valid", None, 0, 1),      # Keras default op = max(k_eff, s) - k_eff = 1
    (4, 2, 1, "same", None, 1, 0),       # total = k - s = 2 -> crop 1 each side
    (2, 2, 1, "same", None, 0, 0),       # U-Net up-conv 2x2 / 2
    (3, 1, 2, "same", None, 2, 0),       # k_eff 5, stride 1 -> crop 2 each side
    (3, 2, 2, "valid", 1, 0, 1),
]


@pytest.mark.parametrize("k, s, d, padding, output_padding, torch_pad, torch_op", TORCH_TRANSPOSE)
def test_conv2d_transpose_matches_torch(ops, rng, k, s, d, padding, output_padding, torch_pad,
                                        torch_op):
    x = rng.standard_normal((2, 4, 3, 3))
    kernel = rng.standard_normal((k, k, 5, 3))          # Keras (kh, kw, filters, c_in)
    b = rng.standard_normal(5)
    xt, kt, bt = _t(ref.nhwc_to_nchw(x), True), _t(ref.transpose_kernel_to_torch(kernel), True), _t(b, True)
    yt = F.conv_transpose2d(xt, kt, bt, stride=s, padding=torch_pad, output_padding=torch_op,
                            dilation=d)
    dy = rng.standard_normal(yt.shape)
    yt.backward(_t(dy))
    options = dict(strides=s, padding=padding, output_padding=output_padding, dilation_rate=d)
    y = ops.conv2d_transpose(ref.nhwc_to_nchw(x), ref.transpose_kernel_to_torch(kernel), b,
                             data_format="channels_first", **options)
    _close(y, yt.detach().numpy(), "conv2d_transpose")
    dx, dk, db = ops.conv2d_transpose_backward(dy, ref.nhwc_to_nchw(x),
                                               ref.transpose_kernel_to_torch(kernel), b,
                                               data_format="channels_first", **options)
    _close(dx, xt.grad.numpy(), "dx")
    _close(dk, kt.grad.numpy(), "dkernel")
    _close(db, bt.grad.numpy(), "dbias")


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("pool, stride, pad", [(2, 2, 0), (3, 2, 1), (3, 1, 1), ((3, 2), (2, 1), (1, 0))])
def test_pool2d_matches_torch(ops, rng, kind, pool, stride, pad):
    x = rng.standard_normal((2, 7, 8, 3))
    xt = _t(ref.nhwc_to_nchw(x), True)
    if kind == "max":
        yt = F.max_pool2d(xt, pool, stride, pad)
    else:   # Keras/pycnn: padded cells are not counted in the average
        yt = F.avg_pool2d(xt, pool, stride, pad, count_include_pad=False)
    dy = rng.standard_normal(yt.shape)
    yt.backward(_t(dy))
    y = getattr(ops, f"{kind}_pool2d")(ref.nhwc_to_nchw(x), pool, stride, pad,
                                       data_format="channels_first")
    _close(y, yt.detach().numpy(), f"{kind}_pool2d")
    dx = getattr(ops, f"{kind}_pool2d_backward")(dy, ref.nhwc_to_nchw(x), pool, stride, pad,
                                                 data_format="channels_first")
    _close(dx, xt.grad.numpy(), f"{kind}_pool2d_backward")


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool1d_matches_torch(ops, rng, kind):
    x = rng.standard_normal((2, 11, 3))
    xt = _t(x.transpose(0, 2, 1), True)
    yt = (F.max_pool1d(xt, 3, 2, 1) if kind == "max"
          else F.avg_pool1d(xt, 3, 2, 1, count_include_pad=False))
    dy = rng.standard_normal(yt.shape)
    yt.backward(_t(dy))
    y = getattr(ops, f"{kind}_pool1d")(x, 3, 2, 1)
    _close(y, yt.detach().numpy().transpose(0, 2, 1), f"{kind}_pool1d")
    dx = getattr(ops, f"{kind}_pool1d_backward")(dy.transpose(0, 2, 1).copy(), x, 3, 2, 1)
    _close(dx, xt.grad.numpy().transpose(0, 2, 1), f"{kind}_pool1d_backward")


def test_losses_and_activations_match_torch(ops, rng):
    logits = rng.standard_normal((5, 4)) * 3
    labels = rng.integers(0, 4, 5)
    lt = _t(logits, True)
    loss_t = F.cross_entropy(lt, torch.tensor(labels))
    loss_t.backward()
    loss, dlogits = ops.softmax_cross_entropy(logits, labels)
    assert float(loss) == pytest.approx(loss_t.item(), rel=1e-12)
    _close(dlogits, lt.grad.numpy(), "dlogits")
    pred, target = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    pt = _t(pred, True)
    mse_t = F.mse_loss(pt, _t(target))
    mse_t.backward()
    loss, dpred = ops.mse(pred, target)
    assert float(loss) == pytest.approx(mse_t.item(), rel=1e-12)
    _close(dpred, pt.grad.numpy(), "dpred")
    x = rng.standard_normal((3, 5)) * 3
    _close(ops.softmax(x, axis=0), torch.softmax(_t(x), 0).numpy(), "softmax")
    _close(ops.sigmoid(x), torch.sigmoid(_t(x)).numpy(), "sigmoid")
    _close(ops.leaky_relu(x), F.leaky_relu(_t(x), 0.2).numpy(), "leaky_relu")


# ============================================================ Keras 3 (torch backend)


@pytest.fixture(scope="module")
def keras():
    os.environ["KERAS_BACKEND"] = "torch"
    keras = pytest.importorskip("keras", reason="Keras 3 oracle not installed (pip install keras)")
    if keras.backend.backend() != "torch":
        pytest.skip(f"Keras runs on the {keras.backend.backend()} backend; these tests need torch "
                    "(set KERAS_BACKEND=torch before keras is first imported)")
    # Weightless layers (pooling) compute in floatx whatever their dtype argument says.
    floatx = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield keras
    keras.config.set_floatx(floatx)


def _keras_call(keras, layer, x, weights=()):
    layer.build(x.shape)
    if weights:
        layer.set_weights(list(weights))
    return keras.ops.convert_to_numpy(layer(x))


@pytest.mark.parametrize("h, w, k, s", [(8, 8, 3, 2), (8, 6, 3, 2), (6, 6, 4, 2), (7, 7, 3, 2),
                                        (28, 28, 5, 1)])
def test_keras_conv2d_same(keras, ops, rng, h, w, k, s):
    """Keras "same" puts the odd padding cell after: 8x8, k 3, s 2 pads 0 before / 1 after."""
    x, kernel = rng.standard_normal((2, h, w, 3)), rng.standard_normal((k, k, 3, 4))
    b = rng.standard_normal(4)
    layer = keras.layers.Conv2D(4, k, strides=s, padding="same", dtype="float64")
    _close(ops.conv2d(x, kernel, b, strides=s, padding="same"),
           _keras_call(keras, layer, x, (kernel, b)), "Conv2D same")


def test_keras_conv2d_groups_dilation_and_dense(keras, ops, rng):
    x = rng.standard_normal((2, 9, 8, 6))
    kernel, b = rng.standard_normal((3, 3, 2, 9)), rng.standard_normal(9)
    layer = keras.layers.Conv2D(9, 3, padding="same", groups=3, dilation_rate=2, dtype="float64")
    _close(ops.conv2d(x, kernel, b, padding="same", groups=3, dilation_rate=2),
           _keras_call(keras, layer, x, (kernel, b)), "Conv2D groups")
    w, bd = rng.standard_normal((6, 4)), rng.standard_normal(4)
    layer = keras.layers.Dense(4, dtype="float64")
    # Keras' torch matmul loses float64 precision here (~1e-7 relative), like its mean.
    np.testing.assert_allclose(ops.dense(x, w, bd), _keras_call(keras, layer, x, (w, bd)),
                               rtol=1e-5, atol=1e-6, err_msg="Dense on 4-D input")


def test_keras_same_is_not_symmetric_padding_for_even_sizes(ops, rng):
    """The 0/1 split really matters: symmetric padding 1 (PyTorch's choice) gives other numbers."""
    x, kernel = rng.standard_normal((1, 8, 8, 1)), rng.standard_normal((3, 3, 1, 1))
    same = ops.conv2d(x, kernel, strides=2, padding="same")
    np.testing.assert_allclose(same, ops.conv2d(x, kernel, strides=2, padding=((0, 1), (0, 1))),
                               rtol=1e-12)
    assert not np.allclose(same, ops.conv2d(x, kernel, strides=2, padding=1))


@pytest.mark.parametrize("padding, s, d", [("causal", 1, 2), ("same", 2, 1), ("valid", 3, 1),
                                           ("causal", 1, 1)])
def test_keras_conv1d(keras, ops, rng, padding, s, d):
    x, kernel = rng.standard_normal((2, 10, 3)), rng.standard_normal((3, 3, 5))
    b = rng.standard_normal(5)
    layer = keras.layers.Conv1D(5, 3, strides=s, padding=padding, dilation_rate=d, dtype="float64")
    _close(ops.conv1d(x, kernel, b, strides=s, padding=padding, dilation_rate=d),
           _keras_call(keras, layer, x, (kernel, b)), f"Conv1D {padding}")


@pytest.mark.parametrize("dm, s, padding", [(1, 1, "same"), (2, 2, "same"), (3, 1, "valid")])
def test_keras_depthwise_conv2d(keras, ops, rng, dm, s, padding):
    x, kernel = rng.standard_normal((2, 8, 7, 3)), rng.standard_normal((3, 3, 3, dm))
    b = rng.standard_normal(3 * dm)
    layer = keras.layers.DepthwiseConv2D(3, strides=s, padding=padding, depth_multiplier=dm,
                                         dtype="float64")
    _close(ops.depthwise_conv2d(x, kernel, b, strides=s, padding=padding),
           _keras_call(keras, layer, x, (kernel, b)), "DepthwiseConv2D")


# Only settings where Keras' torch backend agrees with TensorFlow (Keras warns otherwise).
KERAS_TRANSPOSE = [(2, 2, "same", None), (2, 2, "valid", None), (3, 2, "valid", None),
                   (3, 2, "valid", 1), (4, 2, "same", None), (3, 1, "same", None),
                   (3, 3, "valid", 2), (1, 2, "valid", None), (3, 2, "same", 0),
                   # even kernel, output_padding 0: out = (n-1)*s, which conv2d "same" maps back
                   # to n-1, not n; Keras (torch) crops k_eff/2 from the start of the full output.
                   (2, 2, "same", 0), (4, 2, "same", 0)]


@pytest.mark.parametrize("k, s, padding, output_padding", KERAS_TRANSPOSE)
def test_keras_conv2d_transpose(keras, ops, rng, k, s, padding, output_padding):
    x, kernel = rng.standard_normal((2, 4, 5, 3)), rng.standard_normal((k, k, 2, 3))
    b = rng.standard_normal(2)
    layer = keras.layers.Conv2DTranspose(2, k, strides=s, padding=padding,
                                         output_padding=output_padding, dtype="float64")
    with warnings.catch_warnings():
        # Keras warns when its torch backend cannot match TensorFlow; that would void the oracle.
        warnings.filterwarnings("error", message=".*inconsistencies across backends.*")
        expected = _keras_call(keras, layer, x, (kernel, b))
    _close(ops.conv2d_transpose(x, kernel, b, strides=s, padding=padding,
                                output_padding=output_padding), expected, "Conv2DTranspose")


# Keras' torch backend pads an asymmetric "same" pooling window with *replicated* edge values
# (keras/src/backend/torch/nn.py::_apply_same_padding), which changes averages (TF does not);
# the average cases therefore use sizes whose "same" padding is symmetric. Replication cannot
# change a maximum, so the max cases include asymmetric padding (7x8, pool 3, stride 2: 1/1, 0/1).
@pytest.mark.parametrize("layer_name, op, shape, pool, s, padding", [
    ("MaxPooling2D", "max_pool2d", (2, 7, 8, 3), 3, 2, "same"),
    ("MaxPooling2D", "max_pool2d", (2, 7, 8, 3), 2, None, "valid"),
    ("AveragePooling2D", "avg_pool2d", (2, 7, 7, 3), 3, 2, "same"),
    ("AveragePooling2D", "avg_pool2d", (2, 7, 8, 3), (2, 3), (2, 1), "valid"),
    ("MaxPooling1D", "max_pool1d", (2, 10, 3), 2, None, "same"),
    ("AveragePooling1D", "avg_pool1d", (2, 9, 3), 3, 2, "same")])
def test_keras_pooling(keras, ops, rng, layer_name, op, shape, pool, s, padding):
    x = rng.standard_normal(shape)
    layer = getattr(keras.layers, layer_name)(pool, strides=s, padding=padding, dtype="float64")
    _close(getattr(ops, op)(x, pool, s, padding), _keras_call(keras, layer, x), layer_name)


@pytest.mark.parametrize("keepdims", [False, True])
def test_keras_global_pooling(keras, ops, rng, keepdims):
    x = rng.standard_normal((2, 5, 4, 3))
    for layer_name, op in [("GlobalAveragePooling2D", "global_avg_pool2d"),
                           ("GlobalMaxPooling2D", "global_max_pool2d")]:
        layer = getattr(keras.layers, layer_name)(keepdims=keepdims, dtype="float64")
        expected = _keras_call(keras, layer, x)
        # keras.ops.mean on the torch backend averages float64 in float32
        # (keras/src/backend/torch/numpy.py::mean casts to result_type(x, "float32")).
        np.testing.assert_allclose(getattr(ops, op)(x, keepdims=keepdims), expected, rtol=1e-6,
                                   atol=1e-7, err_msg=layer_name)
        assert expected.shape == ((2, 1, 1, 3) if keepdims else (2, 3))
