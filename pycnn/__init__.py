"""pycnn: convolutional neural networks for teaching, on a fast C engine.

    import pycnn
    y = pycnn.ops.conv2d(x, kernel, padding="same")      # NHWC, HWIO like Keras
"""
from . import ops
from .ops import get_memory_limit, get_num_threads, set_memory_limit, set_num_threads

__version__ = "0.1.0"

__all__ = ["ops", "set_num_threads", "get_num_threads", "set_memory_limit", "get_memory_limit"]
