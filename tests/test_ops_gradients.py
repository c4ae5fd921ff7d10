"""Every backward op against central finite differences of its forward op, in float64.

For an op y = f(x, w, b) and a random upstream gradient dy, the backward op must return
the gradient of L = sum(f(x, w, b) * dy) with respect to each input. We perturb every
element of every input by +-eps (eps = 1e-6, small shapes) and compare
(L(+eps) - L(-eps)) / (2 eps) with the analytic gradient. Tolerances follow
torch.autograd.gradcheck's float64 defaults (atol 1e-5, rtol 1e-3) tightened for the
linear ops, whose central differences are exact up to rounding.

The last section runs the same check on the reference implementations of the non-linear
ops (pools, activations, losses), so the executable spec is itself verified.
"""

import numpy as np
import pytest

from tests import reference as ref

EPS = 1e-6


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Finite differences call each forward op hundreds of times on tiny arrays, where waking
    worker threads costs more than the work on a busy machine. Thread-count independence is
    tested in test_ops_errors.py; here one thread keeps the module fast."""
    import pycnn
    previous = pycnn.get_num_threads()
    pycnn.set_num_threads(1)
    yield
    pycnn.set_num_threads(previous)


def numeric_gradient(loss, array, eps=EPS):
    """Central differences of the scalar loss() with respect to every element of array (in place)."""
    grad = np.zeros(array.shape)
    flat = array.reshape(-1)               # a view: array is C-contiguous float64
    assert np.shares_memory(flat, array)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = loss()
        flat[i] = old - eps
        minus = loss()
        flat[i] = old
        grad.reshape(-1)[i] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(forward, backward, arrays, dy, names, atol=1e-6, rtol=1e-5):
    """forward(*arrays) -> y; backward(dy, *arrays) -> gradient(s) in the order of names."""
    analytic = backward(dy, *arrays)
    if not isinstance(analytic, tuple):
        analytic = (analytic,)
    for array, name, grad in zip(arrays, names, analytic):
        if name is None:
            continue
        numeric = numeric_gradient(lambda: float(np.sum(forward(*arrays) * dy)), array)
        np.testing.assert_allclose(grad, numeric, rtol=rtol, atol=atol,
                                   err_msg=f"d{name} disagrees with finite differences")


def _rand(rng, shape):
    return np.ascontiguousarray(rng.standard_normal(shape))


# ------------------------------------------------------------ convolutions


CONV_GRAD_CASES = [
    ("conv2d", (2, 5, 6, 3), (3, 3, 3, 4), 4, dict(strides=2, padding="same")),
    ("conv2d", (1, 6, 5, 4), (2, 3, 2, 4), 4, dict(padding=((1, 0), (2, 1)), dilation_rate=2,
                                                    groups=2)),
    ("conv2d", (2, 7, 7, 2), (2, 2, 2, 3), None, dict(strides=3)),
    ("conv2d", (2, 6, 5, 3), (3, 2, 3, 2), 2, dict(strides=(2, 1), padding=(1, 2),
                                                    data_format="channels_first")),
    ("conv1d", (2, 9, 2), (3, 2, 3), 3, dict(padding="causal", dilation_rate=2)),
    ("conv1d", (2, 8, 4), (2, 2, 4), None, dict(strides=2, padding="same", groups=2)),
    ("depthwise_conv2d", (2, 6, 5, 2), (3, 3, 2, 2), 4, dict(strides=2, padding="same")),
    ("depthwise_conv2d", (1, 7, 7, 3), (2, 2, 3, 1), None, dict(dilation_rate=2)),
    ("conv2d_transpose", (2, 3, 4, 3), (3, 3, 2, 3), 2, dict(strides=2, padding="same")),
    ("conv2d_transpose", (1, 3, 3, 2), (3, 2, 3, 2), 3, dict(strides=2, padding="valid",
                                                            output_padding=1)),
    ("conv2d_transpose", (2, 3, 3, 2), (2, 2, 2, 2), None, dict(dilation_rate=2, padding="same")),
]


def _channels_first_shapes(op, x_shape, k_shape):
    """Input/kernel shapes in PyTorch layouts, for the channels_first cases."""
    x = ref.nhwc_to_nchw(np.zeros(x_shape)).shape
    if op == "depthwise_conv2d":
        return x, ref.depthwise_to_torch(np.zeros(k_shape)).shape
    if op == "conv2d_transpose":
        return x, ref.transpose_kernel_to_torch(np.zeros(k_shape)).shape
    return x, ref.hwio_to_oihw(np.zeros(k_shape)).shape


@pytest.mark.parametrize("op, x_shape, k_shape, bias_len, options", CONV_GRAD_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CONV_GRAD_CASES)])
def test_conv_backward_matches_finite_differences(ops, rng, op, x_shape, k_shape, bias_len,
                                                  options):
    if options.get("data_format") == "channels_first":
        x_shape, k_shape = _channels_first_shapes(op, x_shape, k_shape)
    x, kernel = _rand(rng, x_shape), _rand(rng, k_shape)
    arrays = [x, kernel] + ([_rand(rng, (bias_len,))] if bias_len else [])
    forward = getattr(ops, op)
    backward = getattr(ops, op + "_backward")
    dy = _rand(rng, forward(*arrays, **options).shape)
    check_gradients(lambda *a: forward(*a, **options),
                    lambda g, *a: backward(g, *a, **options)[:len(a)],
                    arrays, dy, ["x", "kernel", "bias"])
    if not bias_len:
        assert backward(dy, *arrays, **options)[2] is None


# ------------------------------------------------------------ pooling


POOL_GRAD_CASES = [
    ("max_pool2d", (2, 5, 6, 2), dict(pool_size=3, strides=2, padding="same")),
    ("max_pool2d", (1, 5, 5, 2), dict(pool_size=2, strides=1)),
    ("max_pool2d", (1, 6, 5, 3), dict(pool_size=(3, 2), strides=(2, 1), padding=1,
                                      data_format="channels_first")),
    ("avg_pool2d", (2, 5, 6, 2), dict(pool_size=3, strides=2, padding="same")),
    ("avg_pool2d", (1, 6, 6, 2), dict(pool_size=2)),
    ("avg_pool2d", (1, 5, 5, 2), dict(pool_size=3, strides=1, padding=((1, 0), (0, 1)))),
    ("max_pool1d", (2, 9, 2), dict(pool_size=3, strides=2, padding="same")),
    ("avg_pool1d", (2, 9, 2), dict(pool_size=4, strides=3, padding="same")),
    ("avg_pool1d", (1, 8, 3), dict(pool_size=3, strides=1, padding=1,
                                   data_format="channels_first")),
]


@pytest.mark.parametrize("op, x_shape, options", POOL_GRAD_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(POOL_GRAD_CASES)])
def test_pool_backward_matches_finite_differences(ops, rng, op, x_shape, options):
    # Distinct, well-separated values: no ties within eps, so max pooling is differentiable.
    x = rng.permutation(np.prod(x_shape)).reshape(x_shape) * 0.1 + 0.01 * _rand(rng, x_shape)
    x = np.ascontiguousarray(x)
    forward = getattr(ops, op)
    dy = _rand(rng, forward(x, **options).shape)
    check_gradients(lambda a: forward(a, **options),
                    lambda g, a: getattr(ops, op + "_backward")(g, a, **options),
                    [x], dy, ["x"])


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("op", ["global_avg_pool1d", "global_avg_pool2d", "global_max_pool1d",
                                "global_max_pool2d"])
def test_global_pool_backward_matches_finite_differences(ops, rng, op, keepdims):
    shape = (2, 4, 3, 3) if op.endswith("2d") else (2, 5, 3)
    x = np.ascontiguousarray(rng.permutation(np.prod(shape)).reshape(shape) * 0.1)
    forward = getattr(ops, op)
    dy = _rand(rng, forward(x, keepdims=keepdims).shape)
    check_gradients(lambda a: forward(a, keepdims=keepdims),
                    lambda g, a: getattr(ops, op + "_backward")(g, a, keepdims=keepdims),
                    [x], dy, ["x"])


# ------------------------------------------------------------ dense, activations, losses


@pytest.mark.parametrize("x_shape, bias", [((3, 4), True), ((2, 3, 4), False)])
def test_dense_backward_matches_finite_differences(ops, rng, x_shape, bias):
    arrays = [_rand(rng, x_shape), _rand(rng, (4, 3))] + ([_rand(rng, (3,))] if bias else [])
    dy = _rand(rng, x_shape[:-1] + (3,))
    check_gradients(ops.dense, lambda g, *a: ops.dense_backward(g, *a)[:len(a)], arrays, dy,
                    ["x", "kernel", "bias"])


ACTIVATION_GRAD_CASES = [("relu", {}), ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.3}),
                         ("sigmoid", {}), ("tanh", {}), ("softmax", {}), ("softmax", {"axis": 0}),
                         ("softmax", {"axis": 1})]


@pytest.mark.parametrize("name, kwargs", ACTIVATION_GRAD_CASES, ids=lambda v: str(v))
def test_activation_backward_matches_finite_differences(ops, rng, name, kwargs):
    x = _rand(rng, (3, 4, 2)) * 2
    x += np.sign(x) * 0.05                 # keep relu/leaky_relu away from the kink at 0
    dy = _rand(rng, x.shape)
    check_gradients(lambda a: getattr(ops, name)(a, **kwargs),
                    lambda g, a: getattr(ops, name + "_backward")(g, a, **kwargs), [x], dy, ["x"])


@pytest.mark.parametrize("label_kind", ["int", "probabilities"])
def test_softmax_cross_entropy_gradient_matches_finite_differences(ops, rng, label_kind):
    logits = _rand(rng, (4, 5)) * 2
    labels = (rng.integers(0, 5, size=4) if label_kind == "int"
              else ref.softmax(rng.standard_normal((4, 5))))
    _, dlogits = ops.softmax_cross_entropy(logits, labels)
    numeric = numeric_gradient(lambda: float(ops.softmax_cross_entropy(logits, labels)[0]), logits)
    np.testing.assert_allclose(dlogits, numeric, rtol=1e-5, atol=1e-8)


def test_mse_gradient_matches_finite_differences(ops, rng):
    pred, target = _rand(rng, (3, 4)), _rand(rng, (3, 4))
    _, dpred = ops.mse(pred, target)
    numeric = numeric_gradient(lambda: float(ops.mse(pred, target)[0]), pred)
    np.testing.assert_allclose(dpred, numeric, rtol=1e-5, atol=1e-8)


def test_col2im_is_the_gradient_of_im2col(ops, rng):
    x = _rand(rng, (1, 5, 4, 2))
    options = dict(kernel_size=(3, 2), strides=(2, 1), padding="same", dilation_rate=(1, 2))
    dcols = _rand(rng, ops.im2col(x, **options).shape)
    check_gradients(lambda a: ops.im2col(a, **options),
                    lambda g, a: ops.col2im(g, a.shape, **options), [x], dcols, ["x"])


# ------------------------------------------------------------ the reference's own backward


REFERENCE_CASES = [
    ("max_pool2d", (1, 5, 5, 2), dict(pool_size=3, strides=2, padding="same")),
    ("avg_pool2d", (1, 5, 4, 2), dict(pool_size=(2, 3), strides=1, padding="same")),
    ("max_pool1d", (2, 7, 1), dict(pool_size=3, strides=2, padding=1)),
    ("avg_pool1d", (2, 7, 1), dict(pool_size=3, strides=2, padding="same")),
    ("conv2d_transpose_x", (1, 3, 3, 2), dict(strides=2, padding="same")),
]


@pytest.mark.parametrize("op, x_shape, options", REFERENCE_CASES, ids=[c[0] for c in REFERENCE_CASES])
def test_reference_backward_matches_finite_differences(rng, op, x_shape, options):
    x = np.ascontiguousarray(rng.permutation(np.prod(x_shape)).reshape(x_shape) * 0.1)
    if op == "conv2d_transpose_x":
        kernel = _rand(rng, (3, 3, 2, x_shape[-1]))
        forward = lambda a: ref.conv2d_transpose(a, kernel, **options)
        backward = lambda g, a: ref.conv2d_transpose_backward(g, a, kernel, **options)[0]
    else:
        forward = lambda a: getattr(ref, op)(a, **options)
        backward = lambda g, a: getattr(ref, op + "_backward")(g, a, **options)
    dy = _rand(rng, forward(x).shape)
    check_gradients(forward, backward, [x], dy, ["x"])


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh", "softmax"])
def test_reference_activation_backward_matches_finite_differences(rng, name):
    x = _rand(rng, (3, 4)) + 0.05
    dy = _rand(rng, x.shape)
    check_gradients(getattr(ref, name), getattr(ref, name + "_backward"), [x], dy, ["x"])


def test_reference_loss_gradients_match_finite_differences(rng):
    logits, target = _rand(rng, (4, 3)), ref.softmax(_rand(rng, (4, 3)))
    for labels in (np.array([0, 2, 1, 1]), target):
        numeric = numeric_gradient(lambda: ref.softmax_cross_entropy(logits, labels)[0], logits)
        np.testing.assert_allclose(ref.softmax_cross_entropy(logits, labels)[1], numeric,
                                   rtol=1e-6, atol=1e-9)
    numeric = numeric_gradient(lambda: ref.mse(logits, target)[0], logits)
    np.testing.assert_allclose(ref.mse(logits, target)[1], numeric, rtol=1e-6, atol=1e-9)
