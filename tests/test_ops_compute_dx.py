"""compute_dx=False (a network's first layer) skips only the input gradient."""
import numpy as np
import pytest

from pycnn import ops


@pytest.mark.parametrize("op, x_shape, k_shape, kwargs", [
    (ops.conv2d_backward, (3, 9, 8, 2), (3, 3, 2, 5), dict(padding="same", strides=2)),
    (ops.conv2d_backward, (2, 7, 7, 4), (3, 3, 2, 6), dict(groups=2, data_format="channels_last")),
    (ops.conv1d_backward, (2, 11, 3), (3, 3, 4), dict(padding="causal")),
    (ops.dense_backward, (5, 7), (7, 3), {}),
])
def test_weight_gradients_are_unchanged_and_dx_is_none(op, x_shape, k_shape, kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    kernel = rng.standard_normal(k_shape)
    bias = rng.standard_normal(k_shape[-1])
    forward = {ops.conv2d_backward: ops.conv2d, ops.conv1d_backward: ops.conv1d,
               ops.dense_backward: ops.dense}[op]
    dy = rng.standard_normal(forward(x, kernel, bias, **kwargs).shape)
    dx, dkernel, dbias = op(dy, x, kernel, bias, **kwargs)
    skipped = op(dy, x, kernel, bias, compute_dx=False, **kwargs)
    assert dx is not None and skipped[0] is None
    np.testing.assert_array_equal(skipped[1], dkernel)
    np.testing.assert_array_equal(skipped[2], dbias)


def test_first_layer_of_a_model_gets_the_same_gradients():
    """Training skips the first layer's dx; its weight gradients equal the full backward's."""
    from pycnn.layers import Conv2D, Dense, Flatten
    from pycnn.models import Sequential
    rng = np.random.default_rng(1)
    model = Sequential([Conv2D(3, 3, input_shape=(6, 6, 2), dtype="float64"), Flatten(),
                        Dense(2, dtype="float64")])
    x = rng.standard_normal((4, 6, 6, 2))
    dy = rng.standard_normal(model(x).shape)
    model._backward(dy, need_input_grad=True)
    full = [v.grad.copy() for v in model.trainable_weights]
    model._backward(dy, need_input_grad=False)
    for a, b in zip(full, [v.grad for v in model.trainable_weights]):
        np.testing.assert_array_equal(a, b)


def test_mse_rejects_a_complex_target():
    """Reliability finding H5: a complex target must not lose its imaginary part silently."""
    with pytest.raises(TypeError, match=r"mse: target dtype complex128"):
        ops.mse(np.zeros(3), np.zeros(3, complex))
