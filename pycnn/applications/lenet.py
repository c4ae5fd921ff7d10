"""LeNet-5 (LeCun et al. 1998) in three variants, all with 61,706 parameters.

* ``"tutorial"`` — the Keras tutorial's version on 28x28x1: Conv2D(6, 5, 'same', sigmoid), AvgPool 2,
  Conv2D(16, 5, sigmoid), AvgPool 2, Flatten, Dense 120, Dense 84 (sigmoid), Dense 10 softmax.
* ``"classic"`` — the 1998 shapes on 32x32x1 with tanh: C1 valid 5x5, S2, C3 (full connection table,
  not the paper's partial one), S4, C5 as Dense(120) on the 5x5x16 map, F6 Dense(84), a softmax output
  in place of the fixed RBF layer.
* ``"relu"`` — the tutorial's shapes with ReLU and max pooling; the variant the shipped MNIST weights
  (``weights="mnist"``) were trained for by ``tools/train_lenet5_mnist.py``.
"""
import os

from pycnn import layers
from pycnn.applications import _common
from pycnn.models import Model

__all__ = ["LeNet5", "MNIST_WEIGHTS_PATH"]

MNIST_WEIGHTS_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data",
                                  "lenet5_mnist.pycnn")

_VARIANTS = {
    # variant: (input size, first conv padding, activation, pooling layer)
    "tutorial": (28, "same", "sigmoid", layers.AveragePooling2D),
    "classic": (32, "valid", "tanh", layers.AveragePooling2D),
    "relu": (28, "same", "relu", layers.MaxPooling2D),
}


def LeNet5(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=10,
           classifier_activation="softmax", variant=None, name="lenet5"):
    """LeNet-5. ``variant``: 'tutorial' (default), 'classic' or 'relu'. ``weights``: None, ``"mnist"``
    (the shipped weights of the 'relu' variant, the default variant then) or a weights file path."""
    if variant is None:
        variant = "relu" if weights == "mnist" else "tutorial"
    if weights == "mnist":
        if variant != "relu" or classes != 10:
            raise ValueError(f"LeNet5: weights='mnist' must be used with classes=10 and variant='relu' "
                             f"(the trained network); got variant={variant!r}, classes={classes}")
        if not os.path.isfile(MNIST_WEIGHTS_PATH):
            raise ValueError(f"LeNet5: weights='mnist' needs the shipped file {MNIST_WEIGHTS_PATH}; it is "
                             "missing (rerun tools/train_lenet5_mnist.py to recreate it)")
        if not include_top:
            # the file holds the whole network: load it whole, then keep its convolutional base
            full = LeNet5(weights="mnist", input_tensor=input_tensor, input_shape=input_shape, name=name)
            features = _common.pool_features(full.get_layer("pool2").output, pooling)
            return Model(full.inputs[0], features, name=name)
        weights = MNIST_WEIGHTS_PATH
    if variant not in _VARIANTS:
        raise ValueError(f"LeNet5: variant must be one of {sorted(_VARIANTS)}; got {variant!r}")
    _common.check_common_args("LeNet5", weights, pooling, classes)
    size, first_padding, act, pool = _VARIANTS[variant]
    # the two 5x5 convs and two 2x2 pools need a 5x5 map before Flatten: 28 with 'same', 32 with 'valid'
    x_in = _common.model_input("LeNet5", input_tensor, input_shape, size, size, include_top, channels=1)
    x = layers.Conv2D(6, 5, padding=first_padding, activation=act, name="conv1")(x_in)
    x = pool(2, name="pool1")(x)
    x = layers.Conv2D(16, 5, activation=act, name="conv2")(x)
    x = pool(2, name="pool2")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(120, activation=act, name="fc1")(x)
        x = layers.Dense(84, activation=act, name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = _common.pool_features(x, pooling)
    return _common.finish(Model(x_in, x, name=name), weights)
