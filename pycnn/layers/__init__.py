"""Keras-compatible layers (channels_last NHWC, HWIO kernels).

Every layer has build / call / backward / compute_output_shape / count_params /
get_weights / set_weights / get_config / from_config and Keras's argument names.
"""
from pycnn.layers.activation import ELU, LeakyReLU, ReLU, Softmax
from pycnn.layers.base import Input, InputLayer, KerasTensor, Layer, Node, Variable, clear_session
from pycnn.layers.convolutional import Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D
from pycnn.layers.core import Activation, Dense, Lambda
from pycnn.layers.merging import Add, Concatenate, Multiply
from pycnn.layers.normalization import BatchNormalization
from pycnn.layers.pooling import (AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D,
                                  GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPooling1D,
                                  MaxPooling2D)
from pycnn.layers.preprocessing import Rescaling, Resizing
from pycnn.layers.regularization import Dropout, SpatialDropout1D, SpatialDropout2D
from pycnn.layers.reshaping import Cropping2D, Flatten, Reshape, UpSampling2D, ZeroPadding2D
# Keras 3 keeps its augmentation layers in keras.layers too (active only with training=True).
from pycnn.preprocessing.layers import (RandomBrightness, RandomContrast, RandomElasticTransform, RandomFlip,
                                        RandomRotation, RandomShear, RandomTranslation, RandomZoom)

__all__ = [
    "Layer", "Variable", "KerasTensor", "Node", "Input", "InputLayer", "clear_session",
    "Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "Dense", "Activation", "Lambda", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "BatchNormalization",
    "ReLU", "LeakyReLU", "Softmax", "ELU", "Add", "Concatenate", "Multiply",
    "Flatten", "Reshape", "UpSampling2D", "ZeroPadding2D", "Cropping2D", "Resizing", "Rescaling",
    "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomShear", "RandomContrast",
    "RandomBrightness", "RandomElasticTransform",
    "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D",
    "GlobalMaxPool2D", "Convolution1D", "Convolution2D", "Convolution2DTranspose", "SeparableConvolution2D",
    "get", "serialize", "deserialize",
]

# Keras's short aliases
MaxPool1D, MaxPool2D = MaxPooling1D, MaxPooling2D
AvgPool1D, AvgPool2D = AveragePooling1D, AveragePooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
Convolution1D, Convolution2D, Convolution2DTranspose = Conv1D, Conv2D, Conv2DTranspose
SeparableConvolution2D = SeparableConv2D

# Name -> class, for from_config / model deserialisation (pycnn model files hold data only:
# a config's class_name is looked up here, never imported or evaluated).
LAYER_CLASSES = {cls.__name__: cls for cls in (
    InputLayer, Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose, MaxPooling1D, MaxPooling2D,
    AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D,
    GlobalMaxPooling2D, Flatten, Reshape, Dense, Dropout, SpatialDropout1D, SpatialDropout2D, BatchNormalization,
    Activation, ReLU, LeakyReLU, Softmax, ELU, Add, Concatenate, Multiply, UpSampling2D, ZeroPadding2D,
    Cropping2D, Resizing, Rescaling, Lambda, RandomFlip, RandomRotation, RandomTranslation, RandomZoom,
    RandomShear, RandomContrast, RandomBrightness, RandomElasticTransform)}


def get(class_name):
    """The layer class for a config's class_name (ValueError naming the known ones otherwise)."""
    cls = LAYER_CLASSES.get(class_name)
    if cls is None:
        raise ValueError(f"layers.get: class_name must be a pycnn layer; got {class_name!r} "
                         f"(known: {sorted(LAYER_CLASSES)})")
    return cls


def serialize(layer):
    """{'class_name': ..., 'config': layer.get_config()}."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(config):
    """A new layer from serialize()'s output."""
    return get(config["class_name"]).from_config(config["config"])
