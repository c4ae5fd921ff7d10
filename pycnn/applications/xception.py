"""Xception (Chollet 2017) as ``keras.applications.Xception``: 22,910,480 parameters.

Layer names are Keras's; the four residual-projection Conv2D/BatchNormalization pairs are unnamed in
Keras too (automatic names such as ``conv2d``/``batch_normalization``).
"""
from pycnn import layers
from pycnn.applications import _common
from pycnn.models import Model

__all__ = ["Xception"]


def _sep_bn(x, filters, name):
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(name=name + "_bn")(x)


def _projection(x, filters):
    r = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x)
    return layers.BatchNormalization()(r)


def Xception(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="xception"):
    """Xception: entry flow (blocks 1-4), middle flow (8 x block 5-12), exit flow (13-14).
    Default input 299x299, minimum 71x71; preprocessing ``mode="tf"``."""
    _common.check_common_args("Xception", weights, pooling, classes)
    x_in = _common.model_input("Xception", input_tensor, input_shape, 299, 71, include_top)
    x = layers.Conv2D(32, 3, strides=2, use_bias=False, name="block1_conv1")(x_in)
    x = layers.BatchNormalization(name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    x = layers.Conv2D(64, 3, use_bias=False, name="block1_conv2")(x)
    x = layers.BatchNormalization(name="block1_conv2_bn")(x)
    x = layers.Activation("relu", name="block1_conv2_act")(x)

    for block, filters in ((2, 128), (3, 256), (4, 728)):
        residual = _projection(x, filters)
        if block > 2:
            x = layers.Activation("relu", name=f"block{block}_sepconv1_act")(x)
        x = _sep_bn(x, filters, f"block{block}_sepconv1")
        x = layers.Activation("relu", name=f"block{block}_sepconv2_act")(x)
        x = _sep_bn(x, filters, f"block{block}_sepconv2")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{block}_pool")(x)
        x = layers.Add()([x, residual])

    for block in range(5, 13):
        residual = x
        for i in (1, 2, 3):
            x = layers.Activation("relu", name=f"block{block}_sepconv{i}_act")(x)
            x = _sep_bn(x, 728, f"block{block}_sepconv{i}")
        x = layers.Add()([x, residual])

    residual = _projection(x, 1024)
    x = layers.Activation("relu", name="block13_sepconv1_act")(x)
    x = _sep_bn(x, 728, "block13_sepconv1")
    x = layers.Activation("relu", name="block13_sepconv2_act")(x)
    x = _sep_bn(x, 1024, "block13_sepconv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="block13_pool")(x)
    x = layers.Add()([x, residual])

    x = _sep_bn(x, 1536, "block14_sepconv1")
    x = layers.Activation("relu", name="block14_sepconv1_act")(x)
    x = _sep_bn(x, 2048, "block14_sepconv2")
    x = layers.Activation("relu", name="block14_sepconv2_act")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = _common.pool_features(x, pooling)
    return _common.finish(Model(x_in, x, name=name), weights)
