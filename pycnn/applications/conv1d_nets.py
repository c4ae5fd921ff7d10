"""1-D CNNs for signals: a ConvNetQuake-style seismic classifier and a small keyword-spotting net."""
from pycnn import layers
from pycnn.applications import _common
from pycnn.models import Model

__all__ = ["ConvNetQuake", "KeywordSpottingNet"]


def ConvNetQuake(input_shape=(1000, 3), classes=7, conv_layers=8, filters=32, input_tensor=None, weights=None,
                 classifier_activation="softmax", name="convnetquake"):
    """ConvNetQuake (Perol, Gharbi & Denolle 2018): ``conv_layers`` Conv1D(32, 3, stride 2, 'same') +
    ReLU halving the window each time (1000 samples x 3 components -> 4 x 32), Flatten, one Dense to
    ``classes`` = location clusters + 1 (class 0 = noise / no event; the paper used 6 clusters -> 7).
    """
    _common.check_common_args("ConvNetQuake", weights, None, classes)
    if not isinstance(conv_layers, int) or conv_layers < 1:
        raise ValueError(f"ConvNetQuake: conv_layers must be an int >= 1; got {conv_layers!r}")
    if input_shape is None and input_tensor is None:
        input_shape = (1000, 3)
    # 'same' stride-2 convs shrink any length to >= 1 sample, so only Flatten needs a known length
    x_in = _common.model_input("ConvNetQuake", input_tensor, input_shape, (1000,), (1,), True, channels=None)
    x = x_in
    for i in range(1, conv_layers + 1):
        x = layers.Conv1D(filters, 3, strides=2, padding="same", activation="relu", name=f"conv{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return _common.finish(Model(x_in, x, name=name), weights)


def KeywordSpottingNet(input_shape=(98, 40), classes=12, filters=64, input_tensor=None, weights=None,
                       classifier_activation="softmax", dropout=0.2, name="keyword_spotting"):
    """A small 1-D CNN over a stream of audio features (e.g. 98 frames x 40 MFCC/log-mel bands of a 1 s
    clip), convolving along time: 3 x [Conv1D(k=3, 'same') -> BN -> ReLU -> MaxPool 2], global average
    pooling over time, Dropout, Dense(classes). Default 12 classes as in Speech Commands' 10 words +
    silence + unknown. Minimum 8 frames (three 2x poolings)."""
    _common.check_common_args("KeywordSpottingNet", weights, None, classes)
    if input_shape is None and input_tensor is None:
        input_shape = (98, 40)
    x_in = _common.model_input("KeywordSpottingNet", input_tensor, input_shape, (98,), (8,), False,
                               channels=None)
    x = x_in
    for i, f in enumerate((filters, filters, 2 * filters), start=1):
        x = layers.Conv1D(f, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"conv{i}_bn")(x)
        x = layers.Activation("relu", name=f"conv{i}_relu")(x)
        x = layers.MaxPooling1D(2, name=f"pool{i}")(x)
    x = layers.GlobalAveragePooling1D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return _common.finish(Model(x_in, x, name=name), weights)
