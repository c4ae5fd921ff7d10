"""MobileNet v1 (Howard et al. 2017) as ``keras.applications.MobileNet``: 4,253,864 params at alpha=1."""
from pycnn import layers
from pycnn.applications import _common
from pycnn.applications.blocks import separable_block
from pycnn.models import Model

__all__ = ["MobileNet"]

# (pointwise filters, stride) of the 13 depthwise separable blocks
_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
           (512, 1), (1024, 2), (1024, 1)]


def MobileNet(input_shape=None, alpha=1.0, depth_multiplier=1, dropout=1e-3, include_top=True, weights=None,
              input_tensor=None, pooling=None, classes=1000, classifier_activation="softmax", name=None):
    """Keras's MobileNet (argument order as in Keras). ``depth_multiplier`` must be 1 (as Keras requires
    for its weights; the architecture here keeps it fixed). Minimum input 32x32; preprocessing
    ``mode="tf"``."""
    _common.check_common_args("MobileNet", weights, pooling, classes)
    if not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"MobileNet: alpha must be a positive number; got {alpha!r}")
    if depth_multiplier != 1:
        raise ValueError(f"MobileNet: depth_multiplier must be 1; got {depth_multiplier!r}")
    x_in = _common.model_input("MobileNet", input_tensor, input_shape, 224, 32, include_top)
    x = layers.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="conv1")(x_in)
    x = layers.BatchNormalization(name="conv1_bn")(x)
    x = layers.ReLU(6.0, name="conv1_relu")(x)
    for block_id, (filters, strides) in enumerate(_BLOCKS, start=1):
        x = separable_block(x, int(filters * alpha), strides=strides, block_id=block_id)
    if include_top:
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Conv2D(classes, 1, padding="same", name="conv_preds")(x)
        x = layers.Reshape((classes,), name="reshape_2")(x)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = _common.pool_features(x, pooling)
    if name is None:
        name = f"mobilenet_{alpha:0.2f}_{x_in.shape[1] if x_in.shape[1] else 224}"
    return _common.finish(Model(x_in, x, name=name), weights)
