"""pycnn: convolutional neural networks for teaching, on a fast C engine.

    import pycnn
    from pycnn.models import Sequential
    from pycnn.layers import Conv2D, AveragePooling2D, Flatten, Dense

    y = pycnn.ops.conv2d(x, kernel, padding="same")      # NHWC, HWIO like Keras
    edges = pycnn.correlate2d(image, pycnn.filters.sobel_x(), mode="same")
    pycnn.conv_output_size(227, 11, strides=4)           # 55

``import pycnn`` loads only the engine and the functional ops; every other sub-package
(layers, models, datasets, applications, ...) and the names re-exported from them are
imported on first use (PEP 562), so a script pays only for what it touches.
"""
import importlib

from . import ops
from .errors import IntegrityError, ModelFileError
from .geometry import conv_output_size, receptive_field
from .ops import get_memory_limit, get_num_threads, set_memory_limit, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "ops", "layers", "models", "losses", "optimizers", "metrics", "callbacks", "utils", "datasets",
    "activations", "initializers", "regularizers", "backend", "filters", "Input",
    "Model", "Sequential", "load_model",
    "convolve2d", "correlate2d", "conv_output_size", "receptive_field",
    "set_num_threads", "get_num_threads", "set_memory_limit", "get_memory_limit",
    "ModelFileError", "IntegrityError",
]

# Sub-modules reachable as attributes of ``pycnn`` without an explicit import.
_LAZY_SUBMODULES = frozenset({
    "activations", "applications", "backend", "callbacks", "compat", "datasets", "filters", "geometry",
    "imaging", "initializers", "layers", "losses", "metrics", "models", "optimizers", "preprocessing",
    "regularizers", "testing", "utils", "visualize",
})
# Re-exported name -> the sub-module that defines it.
_LAZY_NAMES = {
    "Input": "layers", "Model": "models", "Sequential": "models", "load_model": "models",
    "convolve2d": "imaging", "correlate2d": "imaging",
}


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")   # also binds pycnn.<name>
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY_SUBMODULES | set(_LAZY_NAMES))
