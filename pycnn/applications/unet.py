"""U-Net (Ronneberger et al. 2015) for per-pixel classification.

``padding="valid"`` is the original network: unpadded 3x3 convs, so the output is smaller than the
input and the encoder maps are centre-cropped before concatenation (572x572 -> 388x388 at depth 4).
``padding="same"`` keeps the size (input divisible by ``2**depth``) and needs no cropping.
"""
from pycnn import layers
from pycnn.applications.blocks import unet_decoder_block, unet_encoder_block
from pycnn.layers.base import KerasTensor
from pycnn.models import Model

__all__ = ["UNet", "unet_valid_sizes"]


def _valid_output(size, depth):
    """Output size of the valid-padding U-Net for an input ``size``, or None if some level does not fit
    (odd map before a pool or a map shrinking below 1)."""
    for _ in range(depth):
        size -= 4
        if size < 2 or size % 2:
            return None
        size //= 2
    size -= 4
    if size < 1:
        return None
    for _ in range(depth):
        size = 2 * size - 4
        if size < 1:
            return None
    return size


def unet_valid_sizes(depth=4, limit=1024):
    """The input sizes <= ``limit`` that the valid-padding U-Net of this depth accepts."""
    return [s for s in range(1, limit + 1) if _valid_output(s, depth) is not None]


def UNet(input_shape=(572, 572, 1), classes=2, depth=4, filters=64, padding="valid", batch_norm=False,
         final_activation=None, input_tensor=None, weights=None, name="unet"):
    """U-Net with ``depth`` poolings and ``filters * 2**level`` channels per level; the head is a 1x1
    conv to ``classes`` channels with ``final_activation`` (None -> logits, or 'softmax'/'sigmoid')."""
    if padding not in ("valid", "same"):
        raise ValueError(f"UNet: padding must be 'valid' or 'same'; got {padding!r}")
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"UNet: depth must be an int >= 1; got {depth!r}")
    if not isinstance(filters, int) or filters < 1:
        raise ValueError(f"UNet: filters must be a positive int; got {filters!r}")
    if not isinstance(classes, int) or classes < 1:
        raise ValueError(f"UNet: classes must be a positive int; got {classes!r}")
    if input_tensor is not None:
        if not isinstance(input_tensor, KerasTensor):
            raise TypeError(f"UNet: input_tensor must be a KerasTensor; got {type(input_tensor).__name__}")
        input_shape = tuple(input_tensor.shape[1:])
    if len(input_shape) != 3 or any(d is None for d in input_shape[:2]):
        raise ValueError(f"UNet: input_shape must be (height, width, channels) with known sizes; "
                         f"got {input_shape}")
    for d in input_shape[:2]:
        if padding == "valid" and _valid_output(d, depth) is None:
            valid = unet_valid_sizes(depth, limit=max(d + 200, 300))
            below = [s for s in valid if s < d][-1:]
            above = [s for s in valid if s > d][:1]
            raise ValueError(f"UNet: input height/width must be a size the valid-padding U-Net of depth "
                             f"{depth} accepts (minimum {valid[0]}; sizes step by {2 ** depth}); got {d} "
                             f"(nearest valid: {below + above})")
        if padding == "same" and (d % 2 ** depth or d < 2 ** depth):
            raise ValueError(f"UNet: input height/width must be a positive multiple of 2**depth = "
                             f"{2 ** depth} with padding='same'; got {d}")
    x_in = input_tensor if input_tensor is not None else layers.Input(shape=tuple(input_shape))
    x, skips = x_in, []
    for level in range(depth):
        x, skip = unet_encoder_block(x, filters * 2 ** level, padding, batch_norm, name=f"enc{level + 1}")
        skips.append(skip)
    x, _ = unet_encoder_block(x, filters * 2 ** depth, padding, batch_norm, pool=False, name="bottleneck")
    for level in reversed(range(depth)):
        x = unet_decoder_block(x, skips[level], filters * 2 ** level, padding, batch_norm, name=f"dec{level + 1}")
    x = layers.Conv2D(classes, 1, activation=final_activation, name="segmentation")(x)
    model = Model(x_in, x, name=name)
    if weights is not None:
        from pycnn.applications.weights import load_weights
        load_weights(model, weights)
    return model
