"""ZFNet (Zeiler & Fergus 2013): AlexNet with a 7x7/2 first layer and a 5x5/2 second layer.

The feature-map sizes follow the paper's figure 3 on 224x224 inputs (110, 55, 26, 13, 13, 13, 6).
The paper's contrast normalisation after the first two layers is left out (pycnn has no LRN layer).
"""
from pycnn import layers
from pycnn.applications import _common
from pycnn.models import Model

__all__ = ["ZFNet"]


def ZFNet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", dropout=0.5, name="zfnet"):
    """ZFNet: 96/256/384/384/256 convs, Dense 4096-4096-classes. Minimum input 53x53."""
    _common.check_common_args("ZFNet", weights, pooling, classes)
    x_in = _common.model_input("ZFNet", input_tensor, input_shape, 224, 53, include_top)
    x = layers.ZeroPadding2D(1, name="conv1_pad")(x_in)
    x = layers.Conv2D(96, 7, strides=2, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = layers.Conv2D(256, 5, strides=2, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc6")(x)
        x = layers.Dropout(dropout, name="drop6")(x)
        x = layers.Dense(4096, activation="relu", name="fc7")(x)
        x = layers.Dropout(dropout, name="drop7")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = _common.pool_features(x, pooling)
    return _common.finish(Model(x_in, x, name=name), weights)
