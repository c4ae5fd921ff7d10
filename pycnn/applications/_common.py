"""Shared argument handling of the application constructors (Keras's ``obtain_input_shape`` rules)."""
import os

from pycnn import layers
from pycnn.layers.base import KerasTensor

POOLINGS = (None, "avg", "max")


def model_input(name, input_tensor, input_shape, default_size, min_size, include_top, channels=3,
                require_flatten=None):
    """The model's input tensor, after Keras's checks of ``input_tensor`` / ``input_shape``.

    Spatial sizes are checked against ``min_size`` whenever they are known. ``require_flatten`` (the
    top uses Flatten + Dense; default ``include_top``) needs known spatial sizes and defaults the input
    to ``default_size``; otherwise the default input is ``(None, None, channels)``.
    """
    if require_flatten is None:
        require_flatten = include_top
    if input_tensor is not None:
        if not isinstance(input_tensor, KerasTensor):
            raise TypeError(f"{name}: input_tensor must be a KerasTensor from pycnn.layers.Input; "
                            f"got {type(input_tensor).__name__}")
        shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != shape:
            raise ValueError(f"{name}: input_shape must match input_tensor's shape; got input_shape="
                             f"{tuple(input_shape)} and input_tensor shape {shape}")
        tensor = input_tensor
    else:
        if input_shape is None:
            if require_flatten:
                input_shape = _default_shape(default_size, channels)
            else:
                input_shape = (None,) * _rank(default_size) + (channels,)
        shape = tuple(input_shape)
        tensor = None
    check_shape(name, shape, default_size, min_size, channels, require_flatten)
    if tensor is None:
        tensor = layers.Input(shape=shape)
    return tensor


def _rank(size):
    return len(size) if isinstance(size, tuple) else 2


def _default_shape(size, channels):
    return (tuple(size) if isinstance(size, tuple) else (size, size)) + (channels,)


def check_shape(name, shape, default_size, min_size, channels, require_flatten):
    rank = _rank(default_size)
    if len(shape) != rank + 1:
        raise ValueError(f"{name}: input_shape must have {rank + 1} dims (spatial..., channels); "
                         f"got {shape}")
    if channels is not None and shape[-1] is not None and shape[-1] != channels:
        raise ValueError(f"{name}: input channels must be {channels}; got input_shape {shape}")
    spatial = shape[:-1]
    if require_flatten and any(d is None for d in spatial):
        raise ValueError(f"{name}: spatial input size must be known when include_top=True (the top "
                         f"flattens a fixed-size map); got input_shape {shape} (pass e.g. "
                         f"input_shape={_default_shape(default_size, channels)})")
    mins = min_size if isinstance(min_size, tuple) else (min_size,) * rank
    if any(d is not None and d < m for d, m in zip(spatial, mins)):
        raise ValueError(f"{name}: input spatial size must be >= {mins if rank > 1 else mins[0]} "
                         f"(the minimum for this architecture); got input_shape {shape}")


def check_common_args(name, weights, pooling, classes):
    """Keras's validation of weights / pooling / classes."""
    if not (weights is None or isinstance(weights, (str, os.PathLike))):
        raise TypeError(f"{name}: weights must be None or a file path; got {type(weights).__name__}")
    if weights == "imagenet":
        raise ValueError(f"{name}: weights must be None or a local weights file path; got 'imagenet' "
                         "(pycnn does not download ImageNet weights: download the Keras-applications .h5 "
                         "file yourself and pass its path, e.g. weights='vgg16_weights_tf_dim_ordering_"
                         "tf_kernels_notop.h5')")
    if weights is not None and not os.path.isfile(weights):
        raise ValueError(f"{name}: weights must be None or the path of an existing weights file; "
                         f"got {str(weights)!r} (file not found)")
    if pooling not in POOLINGS:
        raise ValueError(f"{name}: pooling must be None, 'avg' or 'max'; got {pooling!r}")
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise ValueError(f"{name}: classes must be a positive int; got {classes!r}")


def pool_features(x, pooling):
    """Keras's ``pooling`` argument for include_top=False."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def finish(model, weights):
    """Load ``weights`` (a file path) into the built model; ``None`` keeps the initialisation."""
    if weights is not None:
        from pycnn.applications.weights import load_weights
        load_weights(model, weights)
    return model
