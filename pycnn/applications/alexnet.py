"""AlexNet in torchvision's single-tower form (Krizhevsky 2014, "one weird trick"): 61,100,840 params."""
from pycnn import layers
from pycnn.applications import _common
from pycnn.models import Model

__all__ = ["AlexNet"]


def AlexNet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
            classifier_activation="softmax", dropout=0.5, name="alexnet"):
    """torchvision's AlexNet: convs 64/192/384/256/256 (11x11/4, 5x5, 3x3...) with symmetric padding,
    three 3x3/2 max pools, then Dropout-Dense(4096)-Dropout-Dense(4096)-Dense(classes). The top needs the
    6x6x256 map of a 224x224 input (torchvision's adaptive pooling to 6x6 is the identity there).
    Minimum input 63x63 (torchvision's ``min_size``)."""
    _common.check_common_args("AlexNet", weights, pooling, classes)
    x_in = _common.model_input("AlexNet", input_tensor, input_shape, 224, 63, include_top)
    x = layers.ZeroPadding2D(2, name="conv1_pad")(x_in)
    x = layers.Conv2D(64, 11, strides=4, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(192, 5, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(dropout, name="drop6")(x)
        x = layers.Dense(4096, activation="relu", name="fc6")(x)
        x = layers.Dropout(dropout, name="drop7")(x)
        x = layers.Dense(4096, activation="relu", name="fc7")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = _common.pool_features(x, pooling)
    return _common.finish(Model(x_in, x, name=name), weights)
