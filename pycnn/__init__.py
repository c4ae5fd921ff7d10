"""pycnn: convolutional neural networks for teaching, on a fast C engine.

    import pycnn
    from pycnn.models import Sequential
    from pycnn.layers import Conv2D, AveragePooling2D, Flatten, Dense

    y = pycnn.ops.conv2d(x, kernel, padding="same")      # NHWC, HWIO like Keras
    edges = pycnn.correlate2d(image, pycnn.filters.sobel_x(), mode="same")
    pycnn.conv_output_size(227, 11, strides=4)           # 55
"""
from . import ops
from . import activations, backend, filters, initializers, layers, regularizers
from . import callbacks, losses, metrics, models, optimizers, utils
from . import datasets
from .errors import IntegrityError, ModelFileError
from .geometry import conv_output_size, receptive_field
from .imaging import convolve2d, correlate2d
from .layers import Input
from .models import Model, Sequential, load_model
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
