"""Every layer's backward against central finite differences in float64.

The loss is sum(layer(x) * r) (+ the layer's regularization penalty) for a fixed random r,
so d(loss)/d(output) = r is what ``backward`` receives.
"""
import numpy as np
import pytest

from pycnn import layers as L
from tests.layer_reference import numerical_gradient

F64 = {"dtype": "float64"}


def _random_inputs(shapes, rng):
    if isinstance(shapes, list):
        return [rng.standard_normal(s) for s in shapes]
    return rng.standard_normal(shapes)


def check_gradients(layer, x, training=False, rng=None, atol=1e-6, rtol=1e-5):
    rng = rng or np.random.default_rng(1)
    y = layer(x, training=training)
    r = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(layer(x, training=training) * r)) + layer.regularization_loss()

    layer(x, training=training)
    dx = layer.backward(r)
    analytic = {id(v): v.grad.copy() for v in layer.trainable_weights}
    inputs = x if isinstance(x, list) else [x]
    grads = dx if isinstance(x, list) else [dx]
    assert len(grads) == len(inputs)
    for xi, gi in zip(inputs, grads):
        assert gi.shape == xi.shape and gi.dtype == np.float64
        np.testing.assert_allclose(gi, numerical_gradient(loss, xi), atol=atol, rtol=rtol)
    for v in layer.trainable_weights:
        np.testing.assert_allclose(analytic[id(v)], numerical_gradient(loss, v.value), atol=atol, rtol=rtol,
                                   err_msg=v.name)


CASES = [
    ("conv2d_valid", lambda: L.Conv2D(3, 3, activation="tanh", **F64), (2, 5, 5, 2)),
    ("conv2d_same_stride2_groups", lambda: L.Conv2D(4, (3, 2), strides=2, padding="same", groups=2, **F64),
     (2, 6, 5, 4)),
    ("conv2d_dilated", lambda: L.Conv2D(2, 3, padding="same", dilation_rate=2, activation="sigmoid", **F64),
     (1, 6, 6, 2)),
    ("conv2d_channels_first", lambda: L.Conv2D(2, 3, data_format="channels_first", use_bias=False, **F64),
     (2, 3, 5, 4)),
    ("conv2d_l2", lambda: L.Conv2D(2, 2, kernel_regularizer="l2", bias_regularizer=L1Reg(), **F64), (1, 4, 4, 2)),
    ("conv1d_causal", lambda: L.Conv1D(3, 3, padding="causal", dilation_rate=2, **F64), (2, 7, 2)),
    ("conv1d_same_stride2", lambda: L.Conv1D(2, 4, strides=2, padding="same", activation="elu", **F64), (2, 9, 3)),
    ("depthwise", lambda: L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, **F64), (2, 5, 5, 2)),
    ("separable", lambda: L.SeparableConv2D(3, 3, depth_multiplier=2, activation="softplus", **F64), (2, 5, 5, 2)),
    ("conv_transpose_same", lambda: L.Conv2DTranspose(3, 3, strides=2, padding="same", **F64), (2, 3, 3, 2)),
    ("conv_transpose_valid", lambda: L.Conv2DTranspose(2, 2, strides=2, **F64), (1, 3, 4, 2)),
    ("conv_transpose_outpad", lambda: L.Conv2DTranspose(2, 3, strides=2, output_padding=1, **F64), (1, 3, 3, 2)),
    ("depthwise_channels_first", lambda: L.DepthwiseConv2D(2, data_format="channels_first", **F64), (1, 2, 4, 3)),
    ("conv_transpose_channels_first", lambda: L.Conv2DTranspose(2, 2, strides=2, data_format="channels_first",
                                                                **F64), (1, 3, 2, 3)),
    ("separable_channels_first", lambda: L.SeparableConv2D(2, 2, data_format="channels_first", **F64),
     (1, 2, 3, 3)),
    ("conv1d_channels_first", lambda: L.Conv1D(2, 2, data_format="channels_first", **F64), (2, 3, 5)),
    ("maxpool2d", lambda: L.MaxPooling2D(2, **F64), (2, 4, 6, 2)),
    ("maxpool2d_same", lambda: L.MaxPooling2D(3, strides=2, padding="same", **F64), (1, 5, 5, 2)),
    ("avgpool2d_same", lambda: L.AveragePooling2D(3, strides=2, padding="same", **F64), (1, 5, 6, 2)),
    ("avgpool2d_channels_first", lambda: L.AveragePooling2D(2, data_format="channels_first", **F64), (1, 2, 4, 4)),
    ("maxpool1d", lambda: L.MaxPooling1D(3, strides=2, **F64), (2, 7, 2)),
    ("avgpool1d_same", lambda: L.AveragePooling1D(2, padding="same", **F64), (2, 5, 2)),
    ("gap2d", lambda: L.GlobalAveragePooling2D(**F64), (2, 3, 4, 3)),
    ("gmp2d_keepdims", lambda: L.GlobalMaxPooling2D(keepdims=True, **F64), (2, 3, 4, 3)),
    ("gap1d_channels_first", lambda: L.GlobalAveragePooling1D(data_format="channels_first", **F64), (2, 3, 5)),
    ("gmp1d", lambda: L.GlobalMaxPooling1D(**F64), (2, 5, 3)),
    ("dense", lambda: L.Dense(4, activation="relu", **F64), (3, 5)),
    ("dense_3d_l1l2", lambda: L.Dense(3, kernel_regularizer="l1_l2", **F64), (2, 3, 4)),
    ("bn_train", lambda: L.BatchNormalization(**F64), (4, 3, 3, 2)),
    ("bn_axis1_no_scale", lambda: L.BatchNormalization(axis=1, scale=False, **F64), (4, 3, 2, 2)),
    ("bn_dense_no_center", lambda: L.BatchNormalization(center=False, **F64), (5, 3)),
    ("activation_swish", lambda: L.Activation("swish", **F64), (2, 5)),
    ("activation_gelu", lambda: L.Activation("gelu", **F64), (2, 5)),
    ("activation_selu", lambda: L.Activation("selu", **F64), (2, 5)),
    ("activation_softmax", lambda: L.Activation("softmax", **F64), (3, 4)),
    ("activation_leaky_relu", lambda: L.Activation("leaky_relu", **F64), (3, 4)),
    ("relu_full", lambda: L.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2, **F64), (3, 6)),
    ("leaky_relu", lambda: L.LeakyReLU(**F64), (3, 6)),
    ("softmax_axis1", lambda: L.Softmax(axis=1, **F64), (2, 4, 3)),
    ("elu", lambda: L.ELU(alpha=0.5, **F64), (3, 6)),
    ("flatten", lambda: L.Flatten(**F64), (2, 3, 2, 2)),
    ("flatten_channels_first", lambda: L.Flatten(data_format="channels_first", **F64), (2, 3, 2, 2)),
    ("reshape", lambda: L.Reshape((-1, 2), **F64), (2, 3, 4)),
    ("upsampling_nearest", lambda: L.UpSampling2D((2, 3), **F64), (2, 2, 3, 2)),
    ("upsampling_bilinear", lambda: L.UpSampling2D(2, interpolation="bilinear", **F64), (2, 3, 3, 2)),
    ("upsampling_bilinear_channels_first", lambda: L.UpSampling2D(2, interpolation="bilinear",
                                                                  data_format="channels_first", **F64),
     (1, 2, 2, 3)),
    ("zero_padding_channels_first", lambda: L.ZeroPadding2D(1, data_format="channels_first", **F64), (1, 2, 2, 3)),
    ("cropping_channels_first", lambda: L.Cropping2D((1, 0), data_format="channels_first", **F64), (1, 2, 4, 3)),
    ("resizing_channels_first", lambda: L.Resizing(3, 2, data_format="channels_first", **F64), (1, 2, 4, 3)),
    ("spatial_dropout_inference", lambda: L.SpatialDropout2D(0.5, **F64), (1, 2, 2, 3)),
    ("zero_padding", lambda: L.ZeroPadding2D(((1, 0), (2, 1)), **F64), (2, 3, 3, 2)),
    ("cropping", lambda: L.Cropping2D(((1, 0), (0, 2)), **F64), (2, 4, 5, 2)),
    ("resizing_bilinear_down", lambda: L.Resizing(3, 4, **F64), (2, 5, 7, 2)),
    ("resizing_nearest_up", lambda: L.Resizing(5, 3, interpolation="nearest", **F64), (1, 3, 2, 2)),
    ("rescaling", lambda: L.Rescaling(1 / 255, offset=-1.0, **F64), (2, 4)),
    ("add_broadcast", lambda: L.Add(**F64), [(2, 3, 3, 2), (2, 1, 1, 2)]),
    ("multiply", lambda: L.Multiply(**F64), [(2, 3, 2), (2, 3, 2), (2, 3, 2)]),
    ("concatenate", lambda: L.Concatenate(**F64), [(2, 3, 2), (2, 3, 4)]),
    ("concatenate_axis1", lambda: L.Concatenate(axis=1, **F64), [(2, 1, 2), (2, 3, 2)]),
    ("lambda_with_backward", lambda: L.Lambda(lambda x: x ** 2, backward=lambda x, g: 2 * x * g, **F64), (2, 3)),
]


def L1Reg():
    from pycnn.regularizers import L1
    return L1(0.05)


@pytest.mark.parametrize("name,factory,shape", CASES, ids=[c[0] for c in CASES])
def test_backward_matches_finite_differences(name, factory, shape):
    rng = np.random.default_rng(0)
    layer = factory()
    x = _random_inputs(shape, rng)
    check_gradients(layer, x, training=name.startswith("bn_"))  # BatchNormalization with batch statistics


def test_batchnorm_inference_gradient():
    rng = np.random.default_rng(0)
    layer = L.BatchNormalization(**F64)
    x = rng.standard_normal((4, 3))
    layer(x, training=True)  # move the statistics away from (0, 1)
    layer.gamma.value[:] = [0.5, 2.0, -1.0]
    check_gradients(layer, x, training=False)


def test_frozen_batchnorm_gradient_uses_moving_statistics():
    rng = np.random.default_rng(0)
    layer = L.BatchNormalization(**F64)
    x = rng.standard_normal((4, 3))
    layer(x, training=True)
    layer.trainable = False
    # Frozen: even training=True is inference mode, so the gradient is that of a fixed affine map.
    check_gradients(layer, x, training=True)
    before = layer.moving_mean.numpy()
    layer(x, training=True)
    np.testing.assert_array_equal(layer.moving_mean.value, before)


def test_dropout_backward_uses_the_forward_mask():
    rng = np.random.default_rng(0)
    layer = L.Dropout(0.4, seed=3, **F64)
    x = rng.standard_normal((50, 20)) + 5.0  # nonzero everywhere so y / x recovers the mask
    y = layer(x, training=True)
    g = rng.standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(g), g * (y / x), rtol=1e-12)
    layer(x, training=False)
    np.testing.assert_array_equal(layer.backward(g), g)


def test_spatial_dropout_backward_matches_mask():
    rng = np.random.default_rng(0)
    layer = L.SpatialDropout2D(0.5, seed=1, **F64)
    x = rng.standard_normal((3, 4, 4, 6)) + 5.0
    y = layer(x, training=True)
    g = rng.standard_normal(x.shape)
    np.testing.assert_allclose(layer.backward(g), g * (y / x), rtol=1e-12)
