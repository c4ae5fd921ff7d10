"""ResNet (He et al. 2016): ResNet18/34 with basic blocks, ResNet50 with bottleneck blocks.

* ``ResNet50`` is Keras's (``keras.applications.ResNet50``): conv biases kept, stride on the first 1x1
  conv of a bottleneck, BN epsilon 1.001e-5 — 25,636,712 parameters as Keras counts them (53,120 of
  them the BN moving statistics).
* ``ResNet18`` / ``ResNet34`` follow torchvision (no conv biases, BN epsilon 1e-5, symmetric padding
  of strided convs) with Keras-style layer names, so torchvision state dicts load and give the same
  outputs. torchvision counts 11,689,512 / 21,797,672 parameters, which are pycnn's *trainable*
  parameters; pycnn's total adds the BN moving statistics (non-trainable), as Keras would.
"""
from pycnn import layers
from pycnn.applications import _common
from pycnn.applications.blocks import bottleneck_block, residual_block
from pycnn.models import Model

__all__ = ["ResNet18", "ResNet34", "ResNet50"]


def _stem(x, epsilon, use_bias):
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(64, 7, strides=2, use_bias=use_bias, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=epsilon, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    # zero padding equals PyTorch's -inf padding here: the input is a ReLU output (>= 0)
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def _top(x, include_top, pooling, classes, classifier_activation):
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return _common.pool_features(x, pooling)


def _basic_resnet(label, name, blocks, include_top, weights, input_tensor, input_shape, pooling, classes,
                  classifier_activation):
    _common.check_common_args(label, weights, pooling, classes)
    x_in = _common.model_input(label, input_tensor, input_shape, 224, 32, include_top)
    x = _stem(x_in, 1e-5, False)
    for stage, (filters, n) in enumerate(zip((64, 128, 256, 512), blocks), start=2):
        for i in range(1, n + 1):
            strides = 2 if (i == 1 and stage > 2) else 1
            x = residual_block(x, filters, strides=strides, name=f"conv{stage}_block{i}")
    x = _top(x, include_top, pooling, classes, classifier_activation)
    return _common.finish(Model(x_in, x, name=name), weights)


def ResNet18(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet18"):
    """ResNet-18 (torchvision layout, Keras names). Minimum input 32x32."""
    return _basic_resnet("ResNet18", name, (2, 2, 2, 2), include_top, weights, input_tensor, input_shape,
                         pooling, classes, classifier_activation)


def ResNet34(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet34"):
    """ResNet-34 (torchvision layout, Keras names). Minimum input 32x32."""
    return _basic_resnet("ResNet34", name, (3, 4, 6, 3), include_top, weights, input_tensor, input_shape,
                         pooling, classes, classifier_activation)


def ResNet50(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet50"):
    """Keras's ResNet50 (25,636,712 params; 23,587,712 without the top). Minimum input 32x32.
    Preprocessing: ``mode="caffe"``."""
    _common.check_common_args("ResNet50", weights, pooling, classes)
    x_in = _common.model_input("ResNet50", input_tensor, input_shape, 224, 32, include_top)
    x = _stem(x_in, 1.001e-5, True)
    for stage, (filters, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3)), start=2):
        for i in range(1, n + 1):
            strides = 2 if (i == 1 and stage > 2) else 1
            x = bottleneck_block(x, filters, strides=strides, conv_shortcut=(i == 1), name=f"conv{stage}_block{i}")
    x = _top(x, include_top, pooling, classes, classifier_activation)
    return _common.finish(Model(x_in, x, name=name), weights)
