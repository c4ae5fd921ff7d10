"""Standard CNN architectures with the Keras applications API.

    from pycnn.applications import VGG16, preprocess_input
    base = VGG16(include_top=False, weights="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                 input_shape=(128, 128, 3))

``weights`` is None (Keras initialisation), a local file (Keras-applications HDF5 ``.h5``, a PyTorch
state dict ``.pth``/``.pt``, ``.safetensors``, or a pycnn model/weights file), or for LeNet5 ``"mnist"``.
"""
from pycnn.applications import blocks, imagenet_utils, weights
from pycnn.applications.alexnet import AlexNet
from pycnn.applications.blocks import (bottleneck_block, inception_module, residual_block, separable_block,
                                       unet_decoder_block, unet_encoder_block)
from pycnn.applications.conv1d_nets import ConvNetQuake, KeywordSpottingNet
from pycnn.applications.googlenet import GoogLeNet
from pycnn.applications.imagenet_utils import decode_predictions, preprocess_input
from pycnn.applications.lenet import LeNet5
from pycnn.applications.mobilenet import MobileNet
from pycnn.applications.resnet import ResNet18, ResNet34, ResNet50
from pycnn.applications.unet import UNet
from pycnn.applications.vgg import VGG16, VGG19
from pycnn.applications.xception import Xception
from pycnn.applications.zfnet import ZFNet

__all__ = ["LeNet5", "AlexNet", "ZFNet", "VGG16", "VGG19", "GoogLeNet", "ResNet18", "ResNet34", "ResNet50",
           "Xception", "MobileNet", "UNet", "ConvNetQuake", "KeywordSpottingNet",
           "residual_block", "bottleneck_block", "inception_module", "separable_block", "unet_encoder_block",
           "unet_decoder_block", "preprocess_input", "decode_predictions", "blocks", "imagenet_utils", "weights"]
