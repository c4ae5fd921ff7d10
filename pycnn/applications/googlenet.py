"""GoogLeNet / Inception v1 (Szegedy et al. 2015) as torchvision builds it, without auxiliary heads.

torchvision's units are conv (no bias) + BatchNorm(eps 1e-3) + ReLU, and its "5x5" branch uses a 3x3
kernel; with those choices the trainable parameters are torchvision's 6,624,904 (pycnn's total adds the
BN moving statistics, non-trainable). ``batch_norm=False, branch3_kernel=5`` gives the 2014 paper's
plain conv + bias units with 5x5 branches instead. Max pools use 'same' padding, which equals
torchvision's ``ceil_mode=True`` pooling whenever the pooled maps have even sizes (any input that is a
multiple of 32, e.g. 224); torchvision state dicts load onto the same layers.
"""
from pycnn import layers
from pycnn.applications import _common
from pycnn.applications.blocks import conv_bn_relu, inception_module
from pycnn.models import Model

__all__ = ["GoogLeNet"]

# (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj) of each inception module, Table 1 of the paper
_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64), "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64), "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def GoogLeNet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
              classifier_activation="softmax", dropout=0.2, batch_norm=True, branch3_kernel=3, name="googlenet"):
    """Inception v1. Minimum input 15x15 (torchvision's ``min_size``)."""
    _common.check_common_args("GoogLeNet", weights, pooling, classes)
    x_in = _common.model_input("GoogLeNet", input_tensor, input_shape, 224, 15, include_top)

    def unit(x, filters, kernel_size, strides, unit_name):
        if batch_norm:
            return conv_bn_relu(x, filters, kernel_size, strides=strides, name=unit_name, epsilon=1e-3)
        return layers.Conv2D(filters, kernel_size, strides=strides, padding="same", activation="relu",
                             name=unit_name + "_conv")(x)

    x = layers.ZeroPadding2D(3, name="conv1_pad")(x_in)
    if batch_norm:
        x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
        x = layers.BatchNormalization(epsilon=1e-3, name="conv1_bn")(x)
        x = layers.Activation("relu", name="conv1_relu")(x)
    else:
        x = layers.Conv2D(64, 7, strides=2, activation="relu", name="conv1_conv")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = unit(x, 64, 1, 1, "conv2")
    x = unit(x, 192, 3, 1, "conv3")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    for key, filters in _MODULES.items():
        x = inception_module(x, *filters, name=f"inception{key}", batch_norm=batch_norm,
                             branch3_kernel=branch3_kernel)
        if key == "3b":
            x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool3")(x)
        elif key == "4e":
            x = layers.MaxPooling2D(2, strides=2, padding="same", name="pool4")(x)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = _common.pool_features(x, pooling)
    return _common.finish(Model(x_in, x, name=name), weights)
