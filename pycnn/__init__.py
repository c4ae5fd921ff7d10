"""pycnn: convolutional neural networks for teaching, on a fast C engine.

    import pycnn
    y = pycnn.ops.conv2d(x, kernel, padding="same")      # NHWC, HWIO like Keras
    edges = pycnn.correlate2d(image, pycnn.filters.sobel_x(), mode="same")
    pycnn.conv_output_size(227, 11, strides=4)           # 55
"""
from . import filters, ops
from .geometry import conv_output_size, receptive_field
from .imaging import convolve2d, correlate2d
from .ops import get_memory_limit, get_num_threads, set_memory_limit, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "ops", "filters", "convolve2d", "correlate2d", "conv_output_size", "receptive_field",
    "set_num_threads", "get_num_threads", "set_memory_limit", "get_memory_limit",
]
