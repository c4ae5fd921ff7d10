"""Building blocks of the standard architectures, as functions on symbolic tensors.

Each takes a KerasTensor and a ``name`` prefix and returns the block's output tensor; layer names
follow the Keras applications so weight files map one to one.
"""
from pycnn import layers

__all__ = ["residual_block", "bottleneck_block", "inception_module", "separable_block",
           "unet_encoder_block", "unet_decoder_block", "conv_bn_relu"]


def _conv(x, filters, kernel_size, strides, name, use_bias, explicit_padding=False):
    """A 'same'-sized conv. With ``explicit_padding`` the padding is symmetric (PyTorch's
    ``padding=k//2``) through a ZeroPadding2D, which differs from Keras's 'same' split when strided."""
    if explicit_padding and strides != 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=name + "_pad")(x)
        return layers.Conv2D(filters, kernel_size, strides=strides, use_bias=use_bias, name=name + "_conv")(x)
    return layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
                         name=name + "_conv")(x)


def conv_bn_relu(x, filters, kernel_size, strides=1, name="conv", epsilon=1e-3, use_bias=False):
    """Conv2D ('same') -> BatchNormalization -> ReLU, named ``<name>_conv/_bn/_relu``."""
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
                      name=name + "_conv")(x)
    x = layers.BatchNormalization(epsilon=epsilon, name=name + "_bn")(x)
    return layers.Activation("relu", name=name + "_relu")(x)


def residual_block(x, filters, strides=1, conv_shortcut=None, name="block", epsilon=1e-5, use_bias=False):
    """The basic block of ResNet-18/34 (He et al. 2016): two 3x3 convs with BN, plus the input.

    The shortcut is a strided 1x1 conv + BN (``<name>_0_*``) when the shape changes (or when
    ``conv_shortcut=True``); strided 3x3 convs pad symmetrically by 1 as torchvision does, so
    torchvision weights give the same outputs. Names: ``<name>_1_conv``, ``_1_bn``, ``_1_relu``,
    ``_2_conv``, ``_2_bn``, ``_add``, ``_out``.
    """
    if conv_shortcut is None:
        conv_shortcut = strides != 1 or x.shape[-1] != filters
    if conv_shortcut:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=use_bias, name=name + "_0_conv")(x)
        shortcut = layers.BatchNormalization(epsilon=epsilon, name=name + "_0_bn")(shortcut)
    else:
        shortcut = x
    y = _conv(x, filters, 3, strides, name + "_1", use_bias, explicit_padding=True)
    y = layers.BatchNormalization(epsilon=epsilon, name=name + "_1_bn")(y)
    y = layers.Activation("relu", name=name + "_1_relu")(y)
    y = _conv(y, filters, 3, 1, name + "_2", use_bias)
    y = layers.BatchNormalization(epsilon=epsilon, name=name + "_2_bn")(y)
    y = layers.Add(name=name + "_add")([shortcut, y])
    return layers.Activation("relu", name=name + "_out")(y)


def bottleneck_block(x, filters, strides=1, conv_shortcut=True, name="block", epsilon=1.001e-5, use_bias=True):
    """Keras ResNet50's bottleneck block (``resnet.block1``): 1x1 (strided) -> 3x3 -> 1x1 with
    ``4 * filters`` outputs, BN after each, plus the (projected) input. Keras keeps conv biases
    (``use_bias=True``) and puts the stride on the first 1x1 conv (ResNet v1, not torchvision's v1.5).
    """
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=strides, use_bias=use_bias, name=name + "_0_conv")(x)
        shortcut = layers.BatchNormalization(epsilon=epsilon, name=name + "_0_bn")(shortcut)
    else:
        shortcut = x
    y = layers.Conv2D(filters, 1, strides=strides, use_bias=use_bias, name=name + "_1_conv")(x)
    y = layers.BatchNormalization(epsilon=epsilon, name=name + "_1_bn")(y)
    y = layers.Activation("relu", name=name + "_1_relu")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=use_bias, name=name + "_2_conv")(y)
    y = layers.BatchNormalization(epsilon=epsilon, name=name + "_2_bn")(y)
    y = layers.Activation("relu", name=name + "_2_relu")(y)
    y = layers.Conv2D(4 * filters, 1, use_bias=use_bias, name=name + "_3_conv")(y)
    y = layers.BatchNormalization(epsilon=epsilon, name=name + "_3_bn")(y)
    y = layers.Add(name=name + "_add")([shortcut, y])
    return layers.Activation("relu", name=name + "_out")(y)


def _branch_conv(x, filters, kernel_size, name, batch_norm):
    if batch_norm:
        return conv_bn_relu(x, filters, kernel_size, name=name, epsilon=1e-3)
    return layers.Conv2D(filters, kernel_size, padding="same", activation="relu", name=name + "_conv")(x)


def inception_module(x, filters_1x1, filters_3x3_reduce, filters_3x3, filters_5x5_reduce, filters_5x5,
                     filters_pool_proj, name="inception", batch_norm=True, branch3_kernel=5):
    """GoogLeNet's inception module (Szegedy et al. 2015): four parallel branches concatenated on
    channels — 1x1; 1x1 -> 3x3; 1x1 -> ``branch3_kernel`` x ``branch3_kernel`` (5 in the paper,
    3 in torchvision's GoogLeNet); 3x3 max pool (stride 1) -> 1x1. ``batch_norm=True`` uses
    torchvision's conv (no bias) + BN(eps 1e-3) + ReLU units, else conv + bias + ReLU as in 2014.
    """
    b1 = _branch_conv(x, filters_1x1, 1, name + "_b1", batch_norm)
    b2 = _branch_conv(x, filters_3x3_reduce, 1, name + "_b2a", batch_norm)
    b2 = _branch_conv(b2, filters_3x3, 3, name + "_b2b", batch_norm)
    b3 = _branch_conv(x, filters_5x5_reduce, 1, name + "_b3a", batch_norm)
    b3 = _branch_conv(b3, filters_5x5, branch3_kernel, name + "_b3b", batch_norm)
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name=name + "_b4_pool")(x)
    b4 = _branch_conv(b4, filters_pool_proj, 1, name + "_b4", batch_norm)
    return layers.Concatenate(axis=-1, name=name + "_concat")([b1, b2, b3, b4])


def separable_block(x, filters, strides=1, block_id=1, epsilon=1e-3):
    """MobileNet's depthwise separable unit (Howard et al. 2017): depthwise 3x3 -> BN -> ReLU6 ->
    pointwise 1x1 -> BN -> ReLU6. Strided blocks pad asymmetrically (0 before, 1 after) with a
    ZeroPadding2D and a 'valid' depthwise conv, exactly as Keras's MobileNet. Names follow Keras:
    ``conv_pad_<id>``, ``conv_dw_<id>``, ``conv_dw_<id>_bn``, ``conv_dw_<id>_relu``, ``conv_pw_<id>``...
    with ``<id>`` = ``block_id``.
    """
    if strides == 1:
        y = x
    else:
        y = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block_id}")(x)
    y = layers.DepthwiseConv2D(3, strides=strides, padding="same" if strides == 1 else "valid", use_bias=False,
                               name=f"conv_dw_{block_id}")(y)
    y = layers.BatchNormalization(epsilon=epsilon, name=f"conv_dw_{block_id}_bn")(y)
    y = layers.ReLU(6.0, name=f"conv_dw_{block_id}_relu")(y)
    y = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"conv_pw_{block_id}")(y)
    y = layers.BatchNormalization(epsilon=epsilon, name=f"conv_pw_{block_id}_bn")(y)
    return layers.ReLU(6.0, name=f"conv_pw_{block_id}_relu")(y)


def _double_conv(x, filters, padding, batch_norm, name):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding=padding, use_bias=not batch_norm, name=f"{name}_conv{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def unet_encoder_block(x, filters, padding="valid", batch_norm=False, pool=True, name="enc"):
    """U-Net contracting step (Ronneberger et al. 2015): two 3x3 convs + ReLU, then 2x2 max pool.
    Returns ``(pooled, skip)``; ``skip`` is the pre-pool map copied to the decoder. With
    ``pool=False`` (the bottleneck) ``pooled`` is the conv output itself."""
    skip = _double_conv(x, filters, padding, batch_norm, name)
    if not pool:
        return skip, skip
    return layers.MaxPooling2D(2, name=name + "_pool")(skip), skip


def unet_decoder_block(x, skip, filters, padding="valid", batch_norm=False, name="dec"):
    """U-Net expanding step: 2x2 up-convolution (Conv2DTranspose, stride 2) halving the channels,
    copy-and-crop of the encoder's ``skip`` to the up-sampled size (centre crop; a no-op with 'same'
    padding), concatenation, two 3x3 convs + ReLU."""
    up = layers.Conv2DTranspose(filters, 2, strides=2, name=name + "_upconv")(x)
    dh = skip.shape[1] - up.shape[1]
    dw = skip.shape[2] - up.shape[2]
    if dh < 0 or dw < 0:
        raise ValueError(f"unet_decoder_block '{name}': skip map must be at least as large as the "
                         f"up-sampled map; got skip {skip.shape} and up-sampled {up.shape}")
    if dh or dw:
        skip = layers.Cropping2D(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)), name=name + "_crop")(skip)
    x = layers.Concatenate(axis=-1, name=name + "_concat")([skip, up])
    return _double_conv(x, filters, padding, batch_norm, name)
