"""VGG16 and VGG19 (Simonyan & Zisserman 2014) with Keras's layer names and arguments."""
from pycnn import layers
from pycnn.applications import _common
from pycnn.models import Model

__all__ = ["VGG16", "VGG19"]


def _vgg(name, label, convs_per_block, include_top, weights, input_tensor, input_shape, pooling, classes,
         classifier_activation):
    _common.check_common_args(label, weights, pooling, classes)
    # five 2x2 pools need at least 32x32; the ImageNet top flattens the 7x7x512 map of a 224x224 input
    x_in = _common.model_input(label, input_tensor, input_shape, 224, 32, include_top)
    x = x_in
    for block, (filters, n) in enumerate(zip((64, 128, 256, 512, 512), convs_per_block), start=1):
        for i in range(1, n + 1):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{i}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = _common.pool_features(x, pooling)
    return _common.finish(Model(x_in, x, name=name), weights)


def VGG16(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg16"):
    """VGG16: 138,357,544 parameters (14,714,688 without the top). Preprocessing: ``mode="caffe"``."""
    return _vgg(name, "VGG16", (2, 2, 3, 3, 3), include_top, weights, input_tensor, input_shape, pooling,
                classes, classifier_activation)


def VGG19(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg19"):
    """VGG19: 143,667,240 parameters (20,024,384 without the top). Preprocessing: ``mode="caffe"``."""
    return _vgg(name, "VGG19", (2, 2, 4, 4, 4), include_top, weights, input_tensor, input_shape, pooling,
                classes, classifier_activation)
