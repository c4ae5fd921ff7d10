"""The CNN lecture's worked numbers, computed by pycnn and checked against the hand results.

Every expected value below is worked out by hand from the lecture's formulas
(W2 = (W1 - F + 2P) / S + 1, parameters = (F*F*D + 1) * K), not taken from pycnn's output.
"""

import numpy as np
import pytest


def test_alexnet_conv1_output_size():
    import pycnn
    # (227 - 11 + 2*0) / 4 + 1 = 216 / 4 + 1 = 55
    assert pycnn.conv_output_size(227, 11, strides=4, padding=0) == 55


def test_small_strided_padded_output_size():
    import pycnn
    # (5 - 3 + 2*1) / 2 + 1 = 4 / 2 + 1 = 3
    assert pycnn.conv_output_size(5, 3, strides=2, padding=1) == 3


def test_six_5x5_filters_on_32x32x3(ops, rng):
    x = rng.standard_normal((1, 32, 32, 3)).astype(np.float32)
    kernel = rng.standard_normal((5, 5, 3, 6)).astype(np.float32)
    bias = np.zeros(6, np.float32)
    y = ops.conv2d(x, kernel, bias)
    # (32 - 5) / 1 + 1 = 28 per side, one map per filter
    assert y.shape == (1, 28, 28, 6)
    # each filter: 5*5*3 weights + 1 bias; six filters
    assert kernel.size + bias.size == (5 * 5 * 3 + 1) * 6 == 456
    # A fully connected layer from every input value to every output value instead:
    inputs, outputs = int(np.prod(x.shape[1:])), int(np.prod(y.shape[1:]))
    assert (inputs, outputs) == (3072, 4704)
    assert inputs * outputs == 14_450_688


# 6x6 image: left half 10, right half 0 -> a vertical edge down the middle.
STEP_IMAGE = np.array([[10, 10, 10, 0, 0, 0]] * 6, dtype=np.float64)
VERTICAL_EDGE = np.array([[1, 0, -1]] * 3, dtype=np.float64)
HORIZONTAL_EDGE = VERTICAL_EDGE.T.copy()   # [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]


def _filter(ops, image, kernel):
    """One grayscale image through conv2d (cross-correlation, valid): 6x6 -> 4x4."""
    return ops.conv2d(image[None, :, :, None], kernel[:, :, None, None])[0, :, :, 0]


def test_vertical_edge_detector_on_step_image(ops):
    # Window at column 0: 3*(10 - 10) = 0; columns 1, 2: 3*(10 - 0) = 30; column 3: 0.
    expected = np.array([[0, 30, 30, 0],
                         [0, 30, 30, 0],
                         [0, 30, 30, 0],
                         [0, 30, 30, 0]], dtype=np.float64)
    np.testing.assert_array_equal(_filter(ops, STEP_IMAGE, VERTICAL_EDGE), expected)


def test_horizontal_edge_detector_ignores_a_vertical_edge(ops):
    # Every window has equal top and bottom rows, so every output is 0.
    np.testing.assert_array_equal(_filter(ops, STEP_IMAGE, HORIZONTAL_EDGE), np.zeros((4, 4)))


def test_horizontal_edge_detector_on_rotated_step_image(ops):
    # Top half 10, bottom half 0: rows 1 and 2 straddle the edge, 3*(10 - 0) = 30.
    expected = np.array([[0, 0, 0, 0],
                         [30, 30, 30, 30],
                         [30, 30, 30, 30],
                         [0, 0, 0, 0]], dtype=np.float64)
    np.testing.assert_array_equal(_filter(ops, STEP_IMAGE.T.copy(), HORIZONTAL_EDGE), expected)


def test_dark_to_bright_edge_flips_the_sign(ops):
    # Mirror image (left 0, right 10): the same detector now gives -30.
    mirrored = STEP_IMAGE[:, ::-1].copy()
    expected = np.array([[0, -30, -30, 0]] * 4, dtype=np.float64)
    np.testing.assert_array_equal(_filter(ops, mirrored, VERTICAL_EDGE), expected)


@pytest.mark.parametrize("n, k, s, p, expected", [
    (32, 5, 1, 0, 28),     # the 32x32x3 example
    (32, 5, 1, 2, 32),     # padding (F - 1) / 2 keeps the size
    (7, 3, 1, 0, 5), (7, 3, 2, 0, 3), (7, 3, 3, 0, 2),   # 7x7 input, 3x3 filter, strides 1-3
    (28, 2, 2, 0, 14),     # 2x2 pooling halves the map
])
def test_lecture_output_size_table(n, k, s, p, expected):
    import pycnn
    assert pycnn.conv_output_size(n, k, strides=s, padding=p) == expected
