"""The engine's alternative convolution paths against the NumPy reference.

The sweep in test_ops_reference.py uses small channel counts, so some paths the
engine picks by shape are reached only here:

* backward-data of a stride-1 convolution on 1-3 images with more than 8 input
  channels runs as the forward convolution of dy with flipped, channel-swapped
  filters (also for dilation, asymmetric padding and groups, and inside the
  stride-1 transposed convolution, whose forward pass is a backward-data pass);
* 1x1 convolutions and dense layers with few rows split their columns across
  threads, and backward-filter then gives each column block a single owner (as
  it does, from one im2col buffer the threads share, for up to 4 short chunks
  of deep layers);
* im2col copies a kernel row's taps in one run when they are contiguous, with
  zeros where the window hangs over the border (kernels wider than the image);
* the AVX-512 GEMM packs full 8-row blocks of A with an in-register transpose
  (any depth, including depths that are not a multiple of 8);
* depthwise layers with one filter per channel run in channel blocks of 16
  (plus a tail), and gather dx from the output pixels that read each input;
* grouped layers with up to 8 input and output channels per group (depthwise
  with a multiplier too) run the same direct loops over channel-expanded rows
  (a ring of rows per slot) or, when a group's channels divide the vector
  (cig == cog in 2, 4, 8), in place with the group's channels spread in
  registers; blocks of several output pixels where the window is inside the
  image, single pixels at the borders; thin layers whose expanded rows would
  not fit the ring keep the GEMM per group.
* layers with few channels (one group, stride_w 1, c_in <= 32, c_out <= 16:
  LeNet's) run forward and backward-filter as direct kernels over expanded
  input rows (conv_low_channel.c): output rows cut into register segments
  whose lane patterns repeat every C / gcd(C, lanes) vectors (c_out 1, 5, 6,
  7, 12, 16), rows longer than one segment and a partial last one, rows of
  padding only, chunks that cut an image or hold several, bit-identical sums
  at 1 and 2 threads; with AVX2 or AVX-512, also filters filling 2-6 whole
  vectors (24 to 96) from up to 128 input channels (VGG16 conv1_1,
  1-D CNNs), and their flipped backward-data up to 32 filters; strides along
  the row when the filters fill whole vectors (ResNet's and AlexNet's stems),
  the expanded rows then split into stride phases.
* GEMM layers cut into several chunks pack their filters once per pass, shared
  by every chunk and thread (forward as w, backward-data as w^T, per group),
  in column blocks split across threads: one image cut into pieces, a batch
  in chunks of images, groups, 1x1 layers (a last chunk of 3 rows), more than
  GEMM_NC (1024) columns and more than GEMM_KC (512) rows; a forward pass with
  fewer chunks than threads gives each thread a block of output columns (and
  its own im2col), also with filters over 4 MB, whose chunks are longer.
* strided backward-data (GEMM + col2im) of an image cut into pieces scatters
  the even pieces of every image, then the odd ones, when the dx rows they
  write are apart from the next piece but one's (one image, an odd count of
  pieces, two pieces per image); otherwise a thread still owns whole images.
Each case runs at 1 and 2 threads and compares with tests/reference.py.
"""
import numpy as np
import pytest

import pycnn
from pycnn import ops
from tests import reference as ref
from tests.reference import assert_matches, random_array

DTYPES = [np.dtype(np.float32), np.dtype(np.float64)]


def _check_conv(rng, dtype, x_shape, kernel_shape, with_bias=True, **options):
    x = random_array(rng, x_shape, dtype)
    kernel = random_array(rng, kernel_shape, dtype)
    bias = random_array(rng, (kernel_shape[-1],), dtype) if with_bias else None
    y = ops.conv2d(x, kernel, bias, **options)
    assert_matches(y, ref.conv2d(x, kernel, bias, **options), dtype, "y")
    dy = random_array(rng, y.shape, dtype)
    dx, dk, db = ops.conv2d_backward(dy, x, kernel, bias, **options)
    exp_dx, exp_dk, exp_db = ref.conv2d_backward(dy, x, kernel, bias, **options)
    assert_matches(dx, exp_dx, dtype, "dx")
    assert_matches(dk, exp_dk, dtype, "dkernel")
    if with_bias:
        assert_matches(db, exp_db, dtype, "dbias")


FLIPPED_CASES = {
    "same 3x3, one image": ((1, 9, 11, 12), (3, 3, 12, 10), {"padding": "same"}),
    "valid 5x5, three images": ((3, 12, 10, 16), (5, 5, 16, 9), {}),
    "dilation 2": ((2, 13, 12, 10), (3, 3, 10, 20), {"padding": "same", "dilation_rate": 2}),
    "asymmetric padding": ((1, 10, 9, 11), (4, 3, 11, 7), {"padding": ((2, 1), (0, 2))}),
    "2 groups": ((1, 8, 8, 18), (3, 3, 9, 12), {"padding": "same", "groups": 2}),
    "one output channel per group": ((2, 7, 9, 12), (3, 3, 4, 3), {"groups": 3}),
    "kernel 1x3": ((1, 6, 17, 9), (1, 3, 9, 40), {"padding": "same"}),
    # Channel counts past the flip's 32-wide transpose tiles, with remainders.
    "70 -> 45 channels": ((1, 6, 5, 70), (3, 3, 70, 45), {"padding": "same"}),
    "2 groups of 35 -> 33": ((1, 5, 6, 70), (2, 3, 35, 66), {"padding": "same", "groups": 2}),
    # A batch, input channels dividing a vector, few filters: the flipped
    # convolution takes the low-channel kernels (at any batch size).
    "a batch, 1 -> 6 (LeNet c1)": ((5, 12, 12, 1), (5, 5, 1, 6), {"padding": "same"}),
    "a batch, 4 -> 8": ((6, 9, 10, 4), (3, 3, 4, 8), {"padding": "same"}),
    "a batch, 16 -> 4, valid 5x5": ((4, 11, 10, 16), (5, 5, 16, 4), {}),
    "a batch, 2 -> 32, asymmetric padding": ((4, 8, 9, 2), (3, 2, 2, 32), {"padding": ((2, 0), (1, 0))}),
    # Input channels filling whole vectors, up to 32 filters: the wide low-channel kernels.
    "a batch, 32 -> 32, same": ((4, 9, 10, 32), (3, 3, 32, 32), {"padding": "same"}),
    "a batch, 32 -> 16, valid 5x5": ((3, 11, 10, 32), (5, 5, 32, 16), {}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(FLIPPED_CASES))
def test_backward_data_as_flipped_convolution(rng, threads, dtype, case):
    x_shape, kernel_shape, options = FLIPPED_CASES[case]
    _check_conv(rng, dtype, x_shape, kernel_shape, **options)


def _check_transposed(rng, dtype, x_shape, kernel_shape):
    """Stride-1 transposed convolution, forward and backward, for "valid" and "same"."""
    x = random_array(rng, x_shape, dtype)
    kernel = random_array(rng, kernel_shape, dtype)   # (kh, kw, filters, c_in)
    bias = random_array(rng, (kernel_shape[2],), dtype)
    for padding in ("valid", "same"):
        y = ops.conv2d_transpose(x, kernel, bias, padding=padding)
        assert_matches(y, ref.conv2d_transpose(x, kernel, bias, padding=padding), dtype, "y")
        dy = random_array(rng, y.shape, dtype)
        got = ops.conv2d_transpose_backward(dy, x, kernel, bias, padding=padding)
        expected = ref.conv2d_transpose_backward(dy, x, kernel, bias, padding=padding)
        for name, g, e in zip(("dx", "dkernel", "dbias"), got, expected):
            assert_matches(g, e, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_stride_one_transposed_convolution(rng, threads, dtype):
    _check_transposed(rng, dtype, (1, 7, 8, 10), (3, 3, 12, 10))


COLUMN_SPLIT_CASES = {
    "dense, 5 rows": ((5, 70), 200),
    "dense, 300 rows": ((300, 130), 129),
    "dense, 1 row": ((1, 64), 256),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(COLUMN_SPLIT_CASES))
def test_dense_column_split(rng, threads, dtype, case):
    x_shape, units = COLUMN_SPLIT_CASES[case]
    x = random_array(rng, x_shape, dtype)
    kernel = random_array(rng, (x_shape[1], units), dtype)
    bias = random_array(rng, (units,), dtype)
    x64, k64 = x.astype(np.float64), kernel.astype(np.float64)
    assert_matches(ops.dense(x, kernel, bias), x64 @ k64 + bias, dtype, "y")
    dy = random_array(rng, (x_shape[0], units), dtype)
    dx, dk, db = ops.dense_backward(dy, x, kernel, bias)
    dy64 = dy.astype(np.float64)
    assert_matches(dx, dy64 @ k64.T, dtype, "dx")
    assert_matches(dk, x64.T @ dy64, dtype, "dkernel")
    assert_matches(db, dy64.sum(0), dtype, "dbias")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("x_shape", [(1, 6, 5, 40), (2, 12, 11, 300), (3, 12, 11, 300)],
                         ids=["one chunk", "4 pieces of images", "6 pieces: slot partials"])
def test_short_chunks_backward_filter_by_columns(rng, threads, dtype, x_shape):
    # Up to 4 chunks under 256 rows and >= 64 output channels: dw is split by
    # columns, the threads sharing one im2col buffer (each writing a share of
    # its rows), chunk after chunk.  More chunks go to the slot partials.
    _check_conv(rng, dtype, x_shape, (3, 3, x_shape[-1], 140), padding="same")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_pointwise_conv_column_split(rng, threads, dtype):
    _check_conv(rng, dtype, (1, 5, 7, 96), (1, 1, 96, 192))


IM2COL_CASES = {
    "window wider than the image": ((2, 5, 4, 3), (3, 7, 3, 4), {"padding": "same"}),
    "stride 2, same": ((2, 9, 11, 5), (3, 5, 5, 6), {"padding": "same", "strides": 2}),
    "stride 3, explicit": ((1, 10, 13, 2), (4, 4, 2, 3), {"padding": ((1, 2), (3, 0)), "strides": (2, 3)}),
    "dilation 3 along w": ((1, 8, 14, 4), (2, 3, 4, 5), {"padding": "same", "dilation_rate": (1, 3)}),
    "1 input channel": ((3, 12, 12, 1), (5, 5, 1, 6), {"padding": "same"}),
    # One input channel and stride_w 1: im2col built by taps, transposed; a large
    # image is cut into pieces that start in the middle of an output row.
    "1 input channel, pieces start mid-row": ((1, 100, 97, 1), (3, 3, 1, 4), {"padding": "same"}),
    "1 input channel, stride (2, 1), dilation": ((2, 15, 13, 1), (3, 3, 1, 5),
                                                 {"strides": (2, 1), "dilation_rate": (1, 2)}),
    "16 output channels": ((2, 9, 9, 6), (5, 5, 6, 16), {}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(IM2COL_CASES))
def test_im2col_borders(rng, threads, dtype, case):
    x_shape, kernel_shape, options = IM2COL_CASES[case]
    _check_conv(rng, dtype, x_shape, kernel_shape, **options)
    # im2col as an op: the same patches as the reference, and col2im its adjoint.
    x = random_array(rng, x_shape, dtype)
    kernel_size = kernel_shape[:2]
    cols = ops.im2col(x, kernel_size, **options)
    # A convolution with the identity filters (one per patch entry) lists the patches.
    identity = np.eye(np.prod(kernel_shape[:3]), dtype=dtype).reshape(kernel_shape[:3] + (-1,))
    expected_cols = ref.conv2d(x, identity, **options)
    assert_matches(cols.reshape(expected_cols.shape), expected_cols, dtype, "cols")


@pytest.mark.parametrize("depth", [7, 8, 9, 64, 300])
def test_gemm_depths_for_packed_blocks(rng, threads, depth):
    # 8-row blocks of A are packed by the SIMD routine; the depth's remainder
    # (depth % 8) and the last partial block of rows by the portable loop.
    x = random_array(rng, (37, depth), np.float32)
    kernel = random_array(rng, (depth, 45), np.float32)
    assert_matches(ops.dense(x, kernel), x.astype(np.float64) @ kernel, np.float32, "y")


DEPTHWISE_CASES = {
    "16 channels, same": ((2, 9, 10, 16), (3, 3), {"padding": "same"}),
    "35 channels (two blocks and a tail)": ((1, 8, 7, 35), (3, 3), {"padding": "same"}),
    "5 channels, stride 2": ((3, 11, 9, 5), (3, 3), {"padding": "same", "strides": 2}),
    "dilation 2, valid": ((1, 12, 12, 20), (3, 3), {"dilation_rate": 2}),
    "kernel wider than the image": ((2, 6, 4, 17), (3, 7), {"padding": "same"}),
    "stride 3, explicit padding": ((1, 13, 14, 9), (4, 5), {"padding": ((1, 2), (2, 0)), "strides": (3, 2)}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(DEPTHWISE_CASES))
def test_depthwise_multiplier_one(rng, threads, dtype, case):
    # One filter per channel: channel blocks kept in registers, and dx gathered
    # row by row from the output pixels that read each input pixel.
    x_shape, kernel_hw, options = DEPTHWISE_CASES[case]
    _check_depthwise(rng, dtype, x_shape, kernel_hw, 1, options)


def _check_depthwise(rng, dtype, x_shape, kernel_hw, multiplier, options):
    x = random_array(rng, x_shape, dtype)
    kernel = random_array(rng, kernel_hw + (x_shape[-1], multiplier), dtype)
    bias = random_array(rng, (x_shape[-1] * multiplier,), dtype)
    y = ops.depthwise_conv2d(x, kernel, bias, **options)
    assert_matches(y, ref.depthwise_conv2d(x, kernel, bias, **options), dtype, "y")
    dy = random_array(rng, y.shape, dtype)
    got = ops.depthwise_conv2d_backward(dy, x, kernel, bias, **options)
    expected = ref.depthwise_conv2d_backward(dy, x, kernel, bias, **options)
    for name, g, e in zip(("dx", "dkernel", "dbias"), got, expected):
        assert_matches(g, e, dtype, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_disjoint_windows_scatter_by_chunks(rng, threads, dtype):
    # Windows that do not overlap (stride >= window) scatter dx chunk by chunk,
    # in parallel even for one image: the U-Net up-convolution (2x2, stride 2)
    # and a convolution whose stride leaves gaps between windows.
    x = random_array(rng, (1, 40, 44, 24), dtype)
    kernel = random_array(rng, (2, 2, 16, 24), dtype)   # (kh, kw, filters, c_in)
    y = ops.conv2d_transpose(x, kernel, strides=2)
    assert_matches(y, ref.conv2d_transpose(x, kernel, strides=2), dtype, "y")
    dy = random_array(rng, y.shape, dtype)
    for name, g, e in zip(("dx", "dkernel"), ops.conv2d_transpose_backward(dy, x, kernel, strides=2),
                          ref.conv2d_transpose_backward(dy, x, kernel, strides=2)):
        assert_matches(g, e, dtype, name)
    _check_conv(rng, dtype, (1, 61, 47, 12), (2, 2, 12, 20), strides=3)


LOW_CHANNEL_CASES = {
    "LeNet c1: 1 -> 6, same": ((3, 28, 28, 1), (5, 5, 1, 6), {"padding": "same"}),
    "LeNet c3: 6 -> 16, valid": ((3, 14, 14, 6), (5, 5, 6, 16), {}),
    "one image, 3 -> 6": ((1, 12, 13, 3), (5, 5, 3, 6), {"padding": "same"}),
    "1 filter": ((2, 9, 11, 3), (3, 3, 3, 1), {"padding": "same"}),
    "5 filters, asymmetric padding": ((2, 9, 12, 2), (4, 3, 2, 5), {"padding": ((2, 1), (0, 2))}),
    "7 filters, stride_h 2": ((2, 13, 10, 3), (3, 3, 3, 7), {"padding": "same", "strides": (2, 1)}),
    "8 filters": ((2, 7, 9, 2), (3, 2, 2, 8), {"padding": "same"}),
    "12 filters": ((2, 7, 9, 3), (2, 2, 3, 12), {"padding": "same"}),
    "16 filters, dilation 2": ((2, 13, 12, 2), (3, 3, 2, 16), {"padding": "same", "dilation_rate": 2}),
    "8 input channels": ((2, 8, 9, 8), (3, 3, 8, 6), {"padding": "same"}),
    "32 input channels (the most)": ((2, 7, 9, 32), (3, 3, 32, 7), {"padding": "same"}),
    "long rows, 6 filters": ((2, 5, 75, 2), (3, 5, 2, 6), {"padding": "same"}),
    "long rows, 16 filters": ((1, 4, 61, 1), (2, 3, 1, 16), {}),
    # Filters filling 2-6 whole vectors (AVX2 and AVX-512 float32; 24 only on AVX2,
    # 112 is past the limit): register tiles of pixels x filters.
    "wide: 3 -> 64 (VGG16 conv1_1)": ((1, 20, 23, 3), (3, 3, 3, 64), {"padding": "same"}),
    "wide: 3 -> 32, 1-D kernel 7": ((4, 1, 70, 3), (1, 7, 3, 32), {"padding": ((0, 0), (3, 3))}),
    "wide: 32 -> 32, valid": ((3, 10, 11, 32), (3, 3, 32, 32), {}),
    "wide: 8 -> 48, dilation 2": ((2, 13, 12, 8), (3, 3, 8, 48), {"padding": "same", "dilation_rate": 2}),
    "wide: 5 -> 24": ((2, 7, 9, 5), (3, 3, 5, 24), {"padding": "same"}),
    "wide: 128 -> 64 (the most input channels)": ((1, 6, 7, 128), (3, 3, 128, 64), {"padding": "same"}),
    "wide: long rows, 64 filters": ((1, 3, 150, 4), (2, 3, 4, 64), {}),
    "wide: rows of padding only, 32 filters": ((2, 6, 7, 2), (1, 3, 2, 32), {"padding": ((2, 3), (1, 1))}),
    "wide: stride_h 2, 32 filters": ((2, 13, 10, 3), (3, 3, 3, 32), {"padding": "same", "strides": (2, 1)}),
    "wide: 3 -> 80": ((2, 7, 9, 3), (3, 3, 3, 80), {"padding": "same"}),
    "wide: 3 -> 96": ((2, 8, 21, 3), (3, 3, 3, 96), {"padding": "same"}),
    "past the wide limit: 3 -> 112": ((2, 7, 9, 3), (3, 3, 3, 112), {"padding": "same"}),
    # A stride along the row reads expanded rows split into stride phases (filters
    # filling whole vectors: 8 and 16 on the portable and AVX2 builds too).
    "strided: 7x7 stride 2, 3 -> 64 (ResNet stem)": ((1, 30, 31, 3), (7, 7, 3, 64), {"padding": "same", "strides": 2}),
    "strided: 11x11 stride 4, 3 -> 96 (AlexNet stem)": ((2, 35, 39, 3), (11, 11, 3, 96), {"strides": 4}),
    "strided: 5x5 stride 3, 2 -> 16": ((2, 17, 20, 2), (5, 5, 2, 16), {"strides": 3}),
    "strided: stride 2, dilation 3 (phase wraps)": ((1, 12, 40, 3), (3, 3, 3, 32), {"strides": 2, "dilation_rate": (1, 3)}),
    "strided: stride 2, 8 filters": ((2, 9, 11, 3), (3, 3, 3, 8), {"padding": "same", "strides": 2}),
    "strided: 1-D, stride 2, 4 -> 32": ((3, 1, 61, 4), (1, 5, 4, 32), {"padding": ((0, 0), (2, 2)), "strides": (1, 2)}),
    "stride beyond the kernel keeps the GEMM": ((1, 9, 9, 3), (2, 2, 3, 32), {"strides": 3}),
    # A 1-wide kernel allows any dilation; the kernels never step from its column.
    "1x1 kernel, dilation_w 2**63 - 1, 16 filters": ((1, 3, 5, 2), (1, 1, 2, 16), {"dilation_rate": (1, 2**63 - 1)}),
    "long rows, 5 filters, dilation_w 3": ((1, 3, 90, 1), (1, 4, 1, 5), {"dilation_rate": (1, 3)}),
    "kernel as large as the padded input": ((2, 5, 6, 3), (7, 8, 3, 5), {"padding": ((1, 1), (1, 1))}),
    "rows of padding only": ((2, 6, 7, 2), (1, 3, 2, 6), {"padding": ((2, 3), (1, 1))}),
    "one image cut between rows": ((1, 48, 50, 1), (3, 3, 1, 6), {"padding": "same"}),
    "cut image, stride_h 2": ((1, 90, 40, 2), (4, 3, 2, 5), {"padding": "same", "strides": (2, 1)}),
    "several images per chunk": ((9, 10, 10, 2), (3, 3, 2, 4), {"padding": "same"}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(LOW_CHANNEL_CASES))
def test_low_channel_direct(rng, threads, dtype, case):
    x_shape, kernel_shape, options = LOW_CHANNEL_CASES[case]
    _check_conv(rng, dtype, x_shape, kernel_shape, **options)
    _check_conv(rng, dtype, x_shape, kernel_shape, with_bias=False, **options)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_low_channel_transposed_convolution(rng, threads, dtype):
    # Stride 1: the transposed forward's backward-data and its backward-filter are
    # the low-channel passes of a convolution with negative trailing padding.
    _check_transposed(rng, dtype, (2, 7, 8, 3), (3, 4, 5, 3))


LOW_CHANNEL_SPLIT_CASES = {
    "LeNet c1, 8 images": ((8, 28, 28, 1), (5, 5, 1, 6), {"padding": "same"}),
    "LeNet c3, 8 images": ((8, 14, 14, 6), (5, 5, 6, 16), {}),
    "one image cut between rows, stride_h 2": ((1, 96, 64, 3), (3, 3, 3, 7), {"padding": "same", "strides": (2, 1)}),
    "wide: VGG16 conv1_1, one image cut between rows": ((1, 64, 40, 3), (3, 3, 3, 64), {"padding": "same"}),
    "wide: 32 -> 32, 8 images": ((8, 12, 12, 32), (3, 3, 32, 32), {"padding": "same"}),
    "strided: ResNet stem, one image cut between rows": ((1, 64, 48, 3), (7, 7, 3, 64), {"padding": "same", "strides": 2}),
}


def _passes_at_1_and_2_threads(x, kernel, bias, dy, options):
    """(y, dx, dkernel, dbias) of conv2d at 1 thread, then at 2."""
    before = pycnn.get_num_threads()
    results = []
    try:
        for count in (1, 2):
            pycnn.set_num_threads(count)
            y = ops.conv2d(x, kernel, bias, **options)
            results.append((y,) + tuple(ops.conv2d_backward(dy, x, kernel, bias, **options)))
    finally:
        pycnn.set_num_threads(before)
    return results


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(LOW_CHANNEL_SPLIT_CASES))
def test_low_channel_threads_bit_identical(rng, dtype, case):
    # Big enough for both threads to work on several chunks: the forward values
    # and the slot-by-slot weight-gradient sums must not depend on the thread count.
    x_shape, kernel_shape, options = LOW_CHANNEL_SPLIT_CASES[case]
    x = random_array(rng, x_shape, dtype)
    kernel = random_array(rng, kernel_shape, dtype)
    bias = random_array(rng, (kernel_shape[-1],), dtype)
    dy = random_array(rng, ops.conv2d(x, kernel, bias, **options).shape, dtype)
    results = _passes_at_1_and_2_threads(x, kernel, bias, dy, options)
    for name, at in (("y", 0), ("dkernel", 2), ("dbias", 3)):
        assert results[0][at].tobytes() == results[1][at].tobytes(), name
    assert_matches(results[0][2], ref.conv2d_backward(dy, x, kernel, bias, **options)[1], dtype, "dkernel")


# Work the threads share: filters packed once per pass, output columns of one
# chunk, and col2im pieces scattered even then odd.
SHARED_WORK_CASES = {
    # 1600 rows in 4 pieces; backward-data runs the flipped forward convolution.
    "packed: one image in pieces, 3x3": ((1, 40, 40, 24), (3, 3, 24, 40), {"padding": "same"}),
    # 3 chunks of 2 images; strided, so backward-data is GEMM + col2im with w^T packed.
    "packed: a batch in chunks, stride 2": ((6, 20, 20, 24), (3, 3, 24, 48), {"padding": "same", "strides": 2}),
    "packed: 2 groups of 12 -> 48": ((2, 24, 24, 24), (3, 3, 12, 96), {"padding": "same", "groups": 2}),
    "packed: 1x1, last chunk of 3 rows": ((1, 3, 257, 40), (1, 1, 40, 72), {}),
    "packed: 1x1 to 1040 channels": ((1, 20, 30, 8), (1, 1, 8, 1040), {}),
    # k = 1152: three GEMM_KC blocks forward, 1152 packed columns backward.
    "packed: k past GEMM_KC and GEMM_NC": ((8, 16, 16, 128), (3, 3, 128, 40), {"padding": "same", "strides": 2}),
    "one chunk, output columns split": ((1, 14, 14, 24), (3, 3, 24, 96), {"padding": "same"}),
    "filters over 4 MB: one longer chunk": ((1, 10, 10, 256), (3, 3, 256, 520), {"padding": "same"}),
    # 4 chunks of 100 rows: dw by column blocks from an im2col both threads write.
    "dw by columns: 4 short chunks": ((1, 20, 20, 256), (3, 3, 256, 64), {"padding": "same"}),
    "col2im: one image, 4 pieces, 7x7 stride 2": ((1, 64, 64, 3), (7, 7, 3, 40), {"padding": "same", "strides": 2}),
    "col2im: 2 images of 3 pieces": ((2, 80, 100, 8), (7, 7, 8, 36), {"padding": "same", "strides": 2}),
    "col2im: 3 images of 2 pieces": ((3, 60, 60, 4), (5, 5, 4, 48), {"padding": "same", "strides": 2}),
    "col2im: dilated rows": ((1, 70, 64, 3), (3, 3, 3, 40), {"strides": 2, "dilation_rate": (2, 1)}),
    # Pieces shorter than an output row: not apart, so one thread scatters them all.
    "col2im: pieces within a row": ((1, 8, 1200, 4), (3, 3, 4, 40), {"strides": 2}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(SHARED_WORK_CASES))
def test_work_shared_between_threads(rng, threads, dtype, case):
    x_shape, kernel_shape, options = SHARED_WORK_CASES[case]
    _check_conv(rng, dtype, x_shape, kernel_shape, **options)


@pytest.mark.parametrize("case", list(SHARED_WORK_CASES))
def test_shared_work_same_bits_for_any_thread_count(rng, case):
    # The threads pack different column blocks of the shared filters, compute
    # different output columns or scatter different pieces; every pass must
    # still give the same bytes at 1 and 2 threads.
    x_shape, kernel_shape, options = SHARED_WORK_CASES[case]
    x = random_array(rng, x_shape, np.float32)
    kernel = random_array(rng, kernel_shape, np.float32)
    bias = random_array(rng, (kernel_shape[-1],), np.float32)
    dy = random_array(rng, ops.conv2d(x, kernel, bias, **options).shape, np.float32)
    one, two = _passes_at_1_and_2_threads(x, kernel, bias, dy, options)
    for name, a, b in zip(("y", "dx", "dkernel", "dbias"), one, two):
        assert a.tobytes() == b.tobytes(), name


@pytest.mark.parametrize("case", ["dense", "1x1", "padded 1x1", "3x3 one image", "low channel"])
def test_empty_batch_zeroes_weight_gradients(case):
    # Batch 0 with >= 128 filters (the column-split backward-filter paths) or few
    # channels (the low-channel path leaves an empty batch to the slot path): dw and
    # dbias must be zeros.  The engine is called directly on NaN-filled outputs,
    # since a fresh NumPy array would often be zero already.
    from pycnn import _engine
    x_shape, kernel_shape, pads = {
        "dense": ((0, 1, 1, 70), (1, 1, 70, 300), (0, 0, 0, 0)),
        "1x1": ((0, 5, 5, 16), (1, 1, 16, 192), (0, 0, 0, 0)),
        "padded 1x1": ((0, 1, 1, 1), (1, 1, 1, 4096), (2, 2, 2, 2)),
        "3x3 one image": ((0, 6, 5, 40), (3, 3, 40, 140), (1, 1, 1, 1)),
        "low channel": ((0, 6, 5, 2), (3, 3, 2, 6), (1, 1, 1, 1)),
    }[case]
    geometry = (1, 1, 1, 1) + pads + (1,)
    oh = x_shape[1] + pads[0] + pads[1] - kernel_shape[0] + 1
    ow = x_shape[2] + pads[2] + pads[3] - kernel_shape[1] + 1
    x = np.zeros(x_shape, np.float32)
    dy = np.zeros((0, oh, ow, kernel_shape[-1]), np.float32)
    ws_bytes = _engine.conv2d_workspace_size(x_shape, kernel_shape, False, geometry)
    dw = np.full(kernel_shape, np.nan, np.float32)
    db = np.full(kernel_shape[-1], np.nan, np.float32)
    _engine.conv2d_backward_filter(x, dy, dw, db, np.empty(max(ws_bytes, 1), np.uint8), geometry)
    assert (dw == 0).all() and (db == 0).all()


# (x shape, kernel shape (kh, kw, cig, c_out), options): grouped layers that take
# the thin-group kernels.  Channel counts give whole channel blocks and tails
# (blocks of 16 floats or 8 doubles), groups that do and do not divide a block.
THIN_GROUP_CASES = {
    "ResNeXt 4x4 per group, same": ((1, 12, 13, 32), (3, 3, 4, 32), {"padding": "same", "groups": 8}),
    "4x4 per group, tail channels": ((2, 9, 11, 36), (3, 3, 4, 36), {"padding": "same", "groups": 9}),
    "2x2 per group, stride 2": ((2, 11, 12, 20), (3, 3, 2, 20), {"padding": "same", "groups": 10, "strides": 2}),
    "8x8 per group, tail": ((1, 10, 9, 40), (3, 3, 8, 40), {"padding": "same", "groups": 5}),
    "cig 2, cog 3 (expanded rows)": ((2, 10, 9, 8), (3, 3, 2, 12), {"padding": "same", "groups": 4}),
    "cig 3, cog 5, stride 3": ((1, 14, 13, 9), (3, 3, 3, 15), {"groups": 3, "strides": 3}),
    "cig 5, cog 2, dilation 2": ((2, 13, 12, 20), (3, 3, 5, 8), {"groups": 4, "dilation_rate": 2}),
    "4x4 per group, dilation 2, same": ((1, 12, 14, 16), (3, 3, 4, 16), {"groups": 4, "dilation_rate": 2,
                                                                       "padding": "same"}),
    "even kernel, Keras same (asymmetric)": ((2, 9, 10, 24), (4, 2, 4, 24), {"padding": "same", "groups": 6}),
    "explicit asymmetric padding, strides (3, 2)": ((1, 13, 14, 12), (4, 5, 2, 18),
                                                    {"padding": ((1, 2), (2, 0)), "strides": (3, 2), "groups": 6}),
    "kernel wider than the image": ((2, 6, 3, 16), (3, 5, 4, 16), {"padding": "same", "groups": 4}),
    "one image cut into chunks mid-row": ((1, 37, 43, 16), (3, 3, 4, 16), {"padding": "same", "groups": 4}),
    "several images per chunk": ((5, 9, 10, 16), (3, 3, 2, 24), {"padding": "same", "groups": 8}),
    "rows too long for the ring: GEMM per group": ((1, 3, 3000, 16), (3, 3, 8, 16), {"padding": "same",
                                                                                  "groups": 2}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(THIN_GROUP_CASES))
def test_thin_groups(rng, threads, dtype, case):
    x_shape, kernel_shape, options = THIN_GROUP_CASES[case]
    _check_conv(rng, dtype, x_shape, kernel_shape, **options)


DEPTHWISE_MULTIPLIER_CASES = {
    "multiplier 2, same": ((2, 9, 10, 12), (3, 3), 2, {"padding": "same"}),
    "multiplier 3, stride 2, 7 channels": ((1, 11, 12, 7), (3, 3), 3, {"padding": "same", "strides": 2}),
    "multiplier 2, dilation 2": ((1, 12, 12, 16), (3, 3), 2, {"dilation_rate": 2}),
    "multiplier 4, even kernel": ((3, 8, 9, 8), (2, 4), 4, {"padding": "same"}),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", list(DEPTHWISE_MULTIPLIER_CASES))
def test_depthwise_multiplier_above_one(rng, threads, dtype, case):
    # cig 1, cog = multiplier: the thin-group kernels with x expanded by the multiplier.
    x_shape, kernel_hw, multiplier, options = DEPTHWISE_MULTIPLIER_CASES[case]
    _check_depthwise(rng, dtype, x_shape, kernel_hw, multiplier, options)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", ["ResNeXt 4x4 per group, same", "cig 2, cog 3 (expanded rows)",
                                  "one image cut into chunks mid-row", "several images per chunk",
                                  "8x8 per group, tail"])
def test_thin_groups_same_bits_for_any_thread_count(rng, dtype, case):
    # The filter gradient sums slot partials of fixed chunks: 1 and 2 threads
    # must give the same bits (and forward, backward-data too).
    x_shape, kernel_shape, options = THIN_GROUP_CASES[case]
    x = random_array(rng, x_shape, dtype)
    kernel = random_array(rng, kernel_shape, dtype)
    bias = random_array(rng, (kernel_shape[-1],), dtype)
    y_shape = ops.conv2d(x, kernel, bias, **options).shape
    dy = np.cos(np.arange(np.prod(y_shape), dtype=dtype)).reshape(y_shape)
    results = _passes_at_1_and_2_threads(x, kernel, bias, dy, options)
    for name, one, two in zip(("y", "dx", "dkernel", "dbias"), *results):
        assert np.array_equal(one, two), name


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_thin_groups_empty_batch(dtype):
    x = np.zeros((0, 7, 8, 16), dtype)
    kernel = np.ones((3, 3, 4, 16), dtype)
    bias = np.ones(16, dtype)
    y = ops.conv2d(x, kernel, bias, padding="same", groups=4)
    assert y.shape == (0, 7, 8, 16)
    dx, dk, db = ops.conv2d_backward(np.zeros_like(y), x, kernel, bias, padding="same", groups=4)
    assert dx.shape == x.shape and (dk == 0).all() and (db == 0).all()
