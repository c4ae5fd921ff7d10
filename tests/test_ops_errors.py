"""Bad inputs to the functional ops: exception class and message (reliability.md section (a)).

One row per bad input of rows 1-31 of the table that applies to pycnn.ops (the "Row" column
of each id names it). Every message must follow "<op>: <what> must be <rule>; got <values>"
closely enough that the regex finds the op name, the argument and the offending value.
Rows not testable here: 7 (no ceil_mode in the contract), 9 (needs > 2**31-element arrays),
20-22 (tests/test_ops_layouts.py), 23 and 28 (no out= argument), 31 (Ctrl-C needs a timed test).
"""

import threading
import tracemalloc

import numpy as np
import pytest

from tests import reference as ref

X = np.ones((2, 8, 8, 3), np.float32)      # NHWC
K = np.ones((3, 3, 3, 4), np.float32)      # HWIO
X1 = np.ones((2, 10, 3), np.float32)       # NLC
K1 = np.ones((3, 3, 4), np.float32)
KT = np.ones((3, 3, 2, 3), np.float32)     # Keras transposed (kh, kw, filters, c_in)
KD = np.ones((3, 3, 3, 2), np.float32)     # depthwise (kh, kw, c_in, multiplier)
HUGE = 2**62


def row(number, name, call, exc, pattern):
    return pytest.param(call, exc, pattern, id=f"row{number:02d}-{name}")


ERROR_INPUTS = [
    # --- 1: effective (dilated) kernel larger than the padded input
    row(1, "conv2d-dilated-kernel-too-large",
        lambda o: o.conv2d(np.ones((1, 4, 4, 1), "f4"), np.ones((3, 3, 1, 1), "f4"), dilation_rate=2),
        ValueError, r"conv2d: .*effective kernel \(5, 5\).*padded input \(4, 4\)"),
    row(1, "conv1d-kernel-too-large", lambda o: o.conv1d(X1, np.ones((11, 3, 4), "f4")),
        ValueError, r"conv1d: .*kernel.*\(11,?\).*\(10,?\)"),
    row(1, "depthwise-kernel-too-large",
        lambda o: o.depthwise_conv2d(np.ones((1, 2, 9, 3), "f4"), KD), ValueError,
        r"depthwise_conv2d: .*kernel.*padded input \(2, 9\)"),
    row(1, "max_pool2d-window-too-large", lambda o: o.max_pool2d(X, 9), ValueError,
        r"max_pool2d: .*pool_size \(9, 9\).*\(8, 8\)"),
    row(1, "im2col-kernel-too-large", lambda o: o.im2col(X, (9, 3)), ValueError,
        r"im2col: .*kernel.*\(9, 3\).*\(8, 8\)"),
    # --- 2 / 3: stride, dilation <= 0 and negative padding
    row(2, "conv2d-stride-0", lambda o: o.conv2d(X, K, strides=(0, 1)), ValueError,
        r"conv2d: .*strides.*>= 1.*\(0, 1\)"),
    row(2, "max_pool2d-stride-0", lambda o: o.max_pool2d(X, 2, strides=(0, 2)), ValueError,
        r"max_pool2d: .*strides.*>= 1.*\(0, 2\)"),
    row(2, "avg_pool1d-stride-0", lambda o: o.avg_pool1d(X1, 2, strides=0), ValueError,
        r"avg_pool1d: .*strides.*>= 1.*0"),
    row(2, "conv2d_transpose-stride-0", lambda o: o.conv2d_transpose(X, KT, strides=0), ValueError,
        r"conv2d_transpose: .*strides.*>= 1.*0"),
    row(2, "im2col-stride-0", lambda o: o.im2col(X, 3, strides=(1, 0)), ValueError,
        r"im2col: .*strides.*>= 1.*\(1, 0\)"),
    row(3, "conv2d-negative-stride", lambda o: o.conv2d(X, K, strides=(-1, 1)), ValueError,
        r"conv2d: .*strides.*>= 1.*\(-1, 1\)"),
    row(3, "conv2d-negative-padding", lambda o: o.conv2d(X, K, padding=(-1, 0)), ValueError,
        r"conv2d: .*padding.*>= 0.*-1"),
    row(3, "conv2d-negative-explicit-padding",
        lambda o: o.conv2d(X, K, padding=((0, 0), (2, -3))), ValueError, r"conv2d: .*padding.*>= 0.*-3"),
    row(3, "conv1d-negative-padding", lambda o: o.conv1d(X1, K1, padding=-2), ValueError,
        r"conv1d: .*padding.*>= 0.*-2"),
    row(3, "max_pool2d-negative-padding", lambda o: o.max_pool2d(X, 2, padding=-1), ValueError,
        r"max_pool2d: .*pad.*-1"),
    row(3, "conv2d-dilation-0", lambda o: o.conv2d(X, K, dilation_rate=0), ValueError,
        r"conv2d: .*dilation_rate.*>= 1.*0"),
    row(3, "conv1d-negative-dilation", lambda o: o.conv1d(X1, K1, dilation_rate=-1), ValueError,
        r"conv1d: .*dilation_rate.*>= 1.*-1"),
    row(3, "depthwise-dilation-0", lambda o: o.depthwise_conv2d(X, KD, dilation_rate=(1, 0)),
        ValueError, r"depthwise_conv2d: .*dilation_rate.*>= 1.*\(1, 0\)"),
    # --- 4: zero kernel size
    row(4, "conv2d-zero-kernel-height", lambda o: o.conv2d(X, np.ones((0, 3, 3, 4), "f4")),
        ValueError, r"conv2d: .*kernel.*\(0, 3, 3, 4\)"),
    row(4, "conv2d-zero-filters", lambda o: o.conv2d(X, np.ones((3, 3, 3, 0), "f4")), ValueError,
        r"conv2d: .*\(3, 3, 3, 0\)"),
    row(4, "max_pool2d-pool-size-0", lambda o: o.max_pool2d(X, (0, 2)), ValueError,
        r"max_pool2d: .*pool_size.*>= 1.*\(0, 2\)"),
    row(4, "im2col-kernel-size-0", lambda o: o.im2col(X, 0), ValueError,
        r"im2col: .*kernel_size.*>= 1.*0"),
    # --- 5: pool padding larger than half the window
    row(5, "avg_pool2d-pad-over-half", lambda o: o.avg_pool2d(X, 3, 1, padding=2), ValueError,
        r"avg_pool2d: .*pad.*half.*2.*3"),
    row(5, "max_pool1d-pad-over-half", lambda o: o.max_pool1d(X1, 2, 1, padding=((2, 0),)),
        ValueError, r"max_pool1d: .*pad.*half.*2.*2"),
    # --- 8: sizes whose products overflow int64
    row(8, "conv2d-padding-overflows",
        lambda o: o.conv2d(np.ones((1, 4, 4, 1), "f4"), np.ones((3, 3, 1, 1), "f4"), padding=HUGE),
        ValueError, r"conv2d: .*overflows int64"),
    row(8, "conv2d-output-count-overflows",
        lambda o: o.conv2d(np.ones((1, 4, 4, 1), "f4"), np.ones((3, 3, 1, 1), "f4"), padding=2**40),
        ValueError, r"conv2d: .*output.*overflows int64"),
    row(8, "conv1d-causal-dilation-overflows",
        lambda o: o.conv1d(np.ones((1, 4, 1), "f4"), np.ones((3, 1, 1), "f4"), padding="causal",
                           dilation_rate=HUGE), ValueError, r"conv1d: .*overflows int64"),
    row(8, "im2col-padding-overflows", lambda o: o.im2col(X, 3, padding=HUGE), ValueError,
        r"im2col: .*overflows int64"),
    row(8, "conv2d_transpose-stride-overflows",
        lambda o: o.conv2d_transpose(np.ones((1, 4, 4, 1), "f4"), np.ones((3, 3, 1, 1), "f4"),
                                     strides=HUGE), ValueError, r"conv2d_transpose: .*overflows int64"),
    row(8, "col2im-input-shape-overflows",
        lambda o: o.col2im(np.ones((1, 1, 1, 9), "f4"), (2**40, 2**40, 3, 1), 3), ValueError,
        r"col2im: .*(overflow|input_shape)"),
    # --- 11 / 12: groups
    row(11, "conv2d-groups-0", lambda o: o.conv2d(X, K, groups=0), ValueError,
        r"conv2d: .*groups.*>= 1.*0"),
    row(11, "conv1d-groups-negative", lambda o: o.conv1d(X1, K1, groups=-1), ValueError,
        r"conv1d: .*groups.*>= 1.*-1"),
    row(12, "conv2d-channels-not-divisible-by-groups",
        lambda o: o.conv2d(np.ones((1, 8, 8, 6), "f4"), np.ones((3, 3, 2, 4), "f4"), groups=4),
        ValueError, r"conv2d: .*divisible by groups.*4"),
    row(12, "conv2d-filters-not-divisible-by-groups",
        lambda o: o.conv2d(np.ones((1, 8, 8, 4), "f4"), np.ones((3, 3, 2, 3), "f4"), groups=2),
        ValueError, r"conv2d: .*\(3\).*divisible by groups \(2\)"),
    # --- 13: channel mismatch, with a data_format hint
    row(13, "conv2d-nchw-data-as-channels-last",
        lambda o: o.conv2d(np.ones((2, 3, 8, 8), "f4"), K), ValueError,
        r"conv2d: .*8 channels.*\(2, 3, 8, 8\).*expects 3.*data_format"),
    row(13, "conv2d-nhwc-data-as-channels-first",
        lambda o: o.conv2d(X, np.ones((4, 3, 3, 3), "f4"), data_format="channels_first"),
        ValueError, r"conv2d: .*8 channels.*\(2, 8, 8, 3\).*expects 3.*data_format"),
    row(13, "conv1d-channel-mismatch", lambda o: o.conv1d(X1, np.ones((3, 5, 4), "f4")),
        ValueError, r"conv1d: .*3 channels.*expects 5"),
    row(13, "depthwise-channel-mismatch",
        lambda o: o.depthwise_conv2d(X, np.ones((3, 3, 5, 1), "f4")), ValueError,
        r"depthwise_conv2d: .*3 channels.*expects 5"),
    row(13, "conv2d_transpose-channel-mismatch",
        lambda o: o.conv2d_transpose(X, np.ones((3, 3, 2, 5), "f4")), ValueError,
        r"conv2d_transpose: .*3 channels.*expects 5"),
    row(13, "dense-feature-mismatch", lambda o: o.dense(np.ones((2, 2048)), np.ones((1568, 10))),
        ValueError, r"dense: .*1568.*2048"),
    # --- 14: transposed conv output_padding >= stride
    row(14, "conv2d_transpose-output-padding-equals-stride",
        lambda o: o.conv2d_transpose(X, KT, strides=2, output_padding=2), ValueError,
        r"conv2d_transpose: .*output_padding \(2, 2\).*smaller than stride \(2, 2\)"),
    row(14, "conv2d_transpose-output-padding-above-stride",
        lambda o: o.conv2d_transpose(X, KT, strides=(2, 1), output_padding=(1, 1)), ValueError,
        r"conv2d_transpose: .*output_padding \(1, 1\).*stride \(2, 1\)"),
    # --- 15: bias length
    row(15, "conv2d-bias-length", lambda o: o.conv2d(X, K, np.ones(8, "f4")), ValueError,
        r"conv2d: .*bias.*\(4,\).*\(8,?\)"),
    row(15, "conv2d-bias-2d", lambda o: o.conv2d(X, K, np.ones((1, 4), "f4")), ValueError,
        r"conv2d: .*bias.*\(4,\).*\(1, 4\)"),
    row(15, "depthwise-bias-length", lambda o: o.depthwise_conv2d(X, KD, np.ones(3, "f4")),
        ValueError, r"depthwise_conv2d: .*bias.*\(6,\).*\(3,?\)"),
    row(15, "conv2d_transpose-bias-length", lambda o: o.conv2d_transpose(X, KT, np.ones(3, "f4")),
        ValueError, r"conv2d_transpose: .*bias.*\(2,\).*\(3,?\)"),
    row(15, "dense-bias-length",
        lambda o: o.dense(np.ones((2, 5)), np.ones((5, 3)), np.ones(4)), ValueError,
        r"dense: .*bias.*\(3,\).*\(4,?\)"),
    # --- 17: wrong ndim, with the batch / channel axis hint
    row(17, "conv2d-single-image-no-batch-axis",
        lambda o: o.conv2d(np.ones((28, 28, 1), "f4"), np.ones((3, 3, 1, 1), "f4")), ValueError,
        r"conv2d: input must be 4-D.*\(28, 28, 1\).*batch axis"),
    row(17, "conv2d-mnist-no-channel-axis",
        lambda o: o.conv2d(np.ones((60, 28, 28), "f4"), np.ones((3, 3, 1, 1), "f4")), ValueError,
        r"conv2d: input must be 4-D.*\(60, 28, 28\).*channel axis"),
    row(17, "conv2d-2d-input", lambda o: o.conv2d(np.ones((1, 512), "f4"), K), ValueError,
        r"conv2d: input must be 4-D.*\(1, 512\)"),
    row(17, "conv2d-5d-input", lambda o: o.conv2d(np.ones((1, 2, 8, 8, 3), "f4"), K), ValueError,
        r"conv2d: input must be 4-D.*\(1, 2, 8, 8, 3\)"),
    row(17, "conv2d-0d-input", lambda o: o.conv2d(np.float32(1.0), K), ValueError,
        r"conv2d: input must be 4-D.*\(\)"),
    row(17, "conv1d-2d-input", lambda o: o.conv1d(np.ones((10, 3), "f4"), K1), ValueError,
        r"conv1d: input must be 3-D.*\(10, 3\).*batch axis"),
    row(17, "conv2d-3d-kernel", lambda o: o.conv2d(X, np.ones((3, 3, 3), "f4")), ValueError,
        r"conv2d: kernel must be 4-D.*\(3, 3, 3\)"),
    row(17, "max_pool2d-3d-input", lambda o: o.max_pool2d(np.ones((8, 8, 3), "f4"), 2),
        ValueError, r"max_pool2d: input must be 4-D.*\(8, 8, 3\)"),
    row(17, "global_avg_pool2d-2d-input", lambda o: o.global_avg_pool2d(np.ones((8, 3), "f4")),
        ValueError, r"global_avg_pool2d: input must be 4-D.*\(8, 3\)"),
    row(17, "softmax_cross_entropy-1d-logits",
        lambda o: o.softmax_cross_entropy(np.ones(10), np.array([1])), ValueError,
        r"softmax_cross_entropy: logits must be 2-D.*\(10,?\)"),
    # --- 19: zero-size channel or spatial dims
    row(19, "conv2d-zero-height", lambda o: o.conv2d(np.ones((1, 0, 8, 3), "f4"), K), ValueError,
        r"conv2d: .*>= 1.*\(1, 0, 8, 3\)"),
    row(19, "conv2d-zero-channels",
        lambda o: o.conv2d(np.ones((1, 8, 8, 0), "f4"), np.ones((3, 3, 0, 4), "f4")), ValueError,
        r"conv2d: .*>= 1.*\(1, 8, 8, 0\)"),
    row(19, "avg_pool1d-zero-length", lambda o: o.avg_pool1d(np.ones((1, 0, 3), "f4"), 2),
        ValueError, r"avg_pool1d: .*>= 1.*\(1, 0, 3\)"),
    # --- 24: mixed float32 / float64
    row(24, "conv2d-float64-input-float32-kernel", lambda o: o.conv2d(X.astype("f8"), K), TypeError,
        r"conv2d: .*float64.*float32"),
    row(24, "conv2d-float32-bias-float64", lambda o: o.conv2d(X, K, np.ones(4)), TypeError,
        r"conv2d: .*float32.*float64"),
    row(24, "conv2d_backward-dy-float64",
        lambda o: o.conv2d_backward(np.ones((2, 6, 6, 4)), X, K), TypeError,
        r"conv2d_backward: .*float64.*float32|conv2d_backward: .*float32.*float64"),
    row(24, "dense-mixed", lambda o: o.dense(np.ones((2, 5), "f4"), np.ones((5, 3))), TypeError,
        r"dense: .*float32.*float64"),
    row(24, "relu_backward-mixed", lambda o: o.relu_backward(np.ones(3), np.ones(3, "f4")),
        TypeError, r"relu_backward: .*float64.*float32"),
    # --- 25 / 26: integer, bool, complex, object and other dtypes
    row(25, "conv2d-int64-input", lambda o: o.conv2d(X.astype("i8"), K), TypeError,
        r"conv2d: .*int64"),
    row(25, "max_pool2d-uint8-images", lambda o: o.max_pool2d(X.astype("u1"), 2), TypeError,
        r"max_pool2d: .*uint8"),
    row(25, "conv2d-int-kernel", lambda o: o.conv2d(X, K.astype("i4")), TypeError,
        r"conv2d: .*kernel.*int32"),
    row(25, "relu-bool", lambda o: o.relu(np.ones(3, bool)), TypeError, r"relu: .*bool"),
    row(25, "dense-int-list", lambda o: o.dense([[1, 2]], np.ones((2, 2))), TypeError,
        r"dense: .*int64"),
    row(26, "conv2d-complex64", lambda o: o.conv2d(X.astype("c8"), K), TypeError,
        r"conv2d: .*complex64"),
    row(26, "sigmoid-complex128", lambda o: o.sigmoid(np.ones(3, complex)), TypeError,
        r"sigmoid: .*complex128"),
    row(26, "dense-object", lambda o: o.dense(np.array([[1.0, "a"]], dtype=object), np.ones((2, 2))),
        TypeError, r"dense: .*object"),
    row(26, "tanh-datetime", lambda o: o.tanh(np.array(["2020-01-01"], dtype="datetime64[D]")),
        TypeError, r"tanh: .*datetime64"),
    row(26, "conv2d-float16", lambda o: o.conv2d(X.astype("f2"), K.astype("f2")), TypeError,
        r"conv2d: .*float16"),
    row(26, "softmax-string-array", lambda o: o.softmax(np.array(["a", "b"])), TypeError,
        r"softmax: .*(<U1|str)"),
    # --- 27: not array-like
    row(27, "conv2d-None", lambda o: o.conv2d(None, K), TypeError, r"conv2d: input .*NoneType"),
    row(27, "conv2d-str", lambda o: o.conv2d("abc", K), TypeError, r"conv2d: input .*str"),
    row(27, "conv2d-kernel-None", lambda o: o.conv2d(X, None), TypeError, r"conv2d: kernel .*NoneType"),
    row(27, "max_pool2d-None", lambda o: o.max_pool2d(None, 2), TypeError, r"max_pool2d: .*NoneType"),
    row(27, "relu-ragged-list", lambda o: o.relu([[1.0, 2.0], [3.0]]), ValueError, r"relu: input"),
    # --- 29: sizes of the wrong type or beyond int64
    row(29, "conv2d-float-stride", lambda o: o.conv2d(X, K, strides=1.5), TypeError,
        r"conv2d: strides.*float 1\.5"),
    row(29, "conv2d-bool-stride", lambda o: o.conv2d(X, K, strides=True), TypeError,
        r"conv2d: strides.*bool"),
    row(29, "max_pool2d-float-pool-size", lambda o: o.max_pool2d(X, 2.0), TypeError,
        r"max_pool2d: pool_size.*float"),
    row(29, "conv2d-string-groups", lambda o: o.conv2d(X, K, groups="2"), TypeError,
        r"conv2d: groups.*str"),
    row(29, "conv2d-stride-beyond-int64", lambda o: o.conv2d(X, K, strides=2**70),
        (OverflowError, ValueError), r"strides|int64|too (big|large)"),
    # --- other argument checks of the contract
    row(0, "conv2d-unknown-padding", lambda o: o.conv2d(X, K, padding="full"), ValueError,
        r"conv2d: padding.*'full'"),
    row(0, "conv2d-causal-padding", lambda o: o.conv2d(X, K, padding="causal"), ValueError,
        r"conv2d: padding.*'causal'"),
    row(0, "conv2d_transpose-int-padding", lambda o: o.conv2d_transpose(X, KT, padding=1),
        ValueError, r"conv2d_transpose: padding.*'valid'.*'same'.*1"),
    row(0, "conv2d-bad-data-format", lambda o: o.conv2d(X, K, data_format="NHWC"), ValueError,
        r"conv2d: data_format.*'NHWC'"),
    row(0, "conv2d-padding-tuple-length", lambda o: o.conv2d(X, K, padding=(1, 1, 1)), ValueError,
        r"conv2d: padding.*\(1, 1, 1\)"),
    row(0, "conv2d_backward-dy-shape", lambda o: o.conv2d_backward(np.ones((2, 5, 5, 4), "f4"), X, K),
        ValueError, r"conv2d_backward: dy .*\(2, 6, 6, 4\).*\(2, 5, 5, 4\)"),
    row(0, "max_pool2d_backward-dy-shape",
        lambda o: o.max_pool2d_backward(np.ones((2, 3, 3, 3), "f4"), X, 2), ValueError,
        r"max_pool2d_backward: dy .*\(2, 4, 4, 3\).*\(2, 3, 3, 3\)"),
    row(0, "relu_backward-shape", lambda o: o.relu_backward(np.ones((2, 3)), np.ones((3, 2))),
        ValueError, r"relu_backward: dy .*\(3, 2\).*\(2, 3\)"),
    row(0, "leaky_relu-slope-string", lambda o: o.leaky_relu(X, "0.2"), TypeError,
        r"leaky_relu: negative_slope must be a real number; got '0.2'"),
    row(0, "batch_norm-gamma-shape", lambda o: o.batch_norm(X, gamma=np.ones(4, "f4")), ValueError,
        r"batch_norm: gamma must have the shape .*\(3,\); got \(4,\)"),
    row(0, "batch_norm-epsilon-0", lambda o: o.batch_norm(X, epsilon=0.0), ValueError,
        r"batch_norm: epsilon must be a number > 0; got 0.0"),
    row(0, "batch_norm-mean-without-variance", lambda o: o.batch_norm(X, np.zeros(3, "f4")), ValueError,
        r"batch_norm: mean and variance must both be given"),
    row(0, "batch_norm-empty-batch-statistics", lambda o: o.batch_norm(np.ones((0, 4, 4, 3), "f4")), ValueError,
        r"batch_norm: batch statistics need at least one value per channel; got input shape \(0, 4, 4, 3\)"),
    row(0, "batch_norm_backward-dy-shape",
        lambda o: o.batch_norm_backward(np.ones((2, 8, 8, 4), "f4"), X, np.zeros(3, "f4"), np.ones(3, "f4")),
        ValueError, r"batch_norm_backward: dy must have the input's shape \(2, 8, 8, 3\); got \(2, 8, 8, 4\)"),
    row(0, "softmax_cross_entropy-label-out-of-range",
        lambda o: o.softmax_cross_entropy(np.ones((3, 10)), np.array([1, 10, 2])), ValueError,
        r"softmax_cross_entropy: labels .*\[0, 10\).*10.*index 1"),
    row(0, "softmax_cross_entropy-negative-label",
        lambda o: o.softmax_cross_entropy(np.ones((3, 10)), np.array([1, -1, 2])), ValueError,
        r"softmax_cross_entropy: labels .*\[0, 10\).*-1"),
    row(0, "softmax_cross_entropy-label-shape",
        lambda o: o.softmax_cross_entropy(np.ones((3, 10)), np.ones((3, 9))), ValueError,
        r"softmax_cross_entropy: labels .*\(3, 9\)"),
    row(0, "softmax_cross_entropy-label-count",
        lambda o: o.softmax_cross_entropy(np.ones((3, 10)), np.array([1, 2])), ValueError,
        r"softmax_cross_entropy: labels .*2.*3"),
    row(0, "mse-shape", lambda o: o.mse(np.ones((3, 2)), np.ones((2, 3))), ValueError,
        r"mse: target .*\(3, 2\).*\(2, 3\)"),
    row(0, "col2im-cols-shape", lambda o: o.col2im(np.ones((2, 6, 6, 26), "f4"), X.shape, 3),
        ValueError, r"col2im: cols .*\(2, 6, 6, 27\).*\(2, 6, 6, 26\)"),
]


@pytest.mark.parametrize("call, exc, pattern", ERROR_INPUTS)
def test_bad_input_raises_with_a_clear_message(ops, call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(ops)


# ------------------------------------------------------------ row 6: stride > kernel is valid


def test_stride_larger_than_kernel_is_valid(ops, rng):
    x = rng.standard_normal((2, 9, 8, 2))
    k = rng.standard_normal((2, 2, 2, 3))
    ref.assert_matches(ops.conv2d(x, k, strides=4), ref.conv2d(x, k, strides=4), np.float64, "conv2d")
    ref.assert_matches(ops.max_pool2d(x, 2, 3), ref.max_pool2d(x, 2, 3), np.float64, "max_pool2d")


# ------------------------------------------------------------ row 10: memory limit


@pytest.fixture
def memory_limit():
    """Set a small pycnn memory limit for one test and always restore the previous one."""
    import pycnn
    previous = pycnn.get_memory_limit()
    yield pycnn.set_memory_limit
    pycnn.set_memory_limit(previous)


# Each call needs well over 1 MiB of output or workspace (conv2d output alone is 63 MiB).
@pytest.mark.parametrize("name, call", [
    ("conv2d", lambda o, x: o.conv2d(x, np.ones((3, 3, 3, 64), "f4"))),
    ("conv2d_backward", lambda o, x: o.conv2d_backward(np.ones((64, 62, 62, 4), "f4"), x,
                                                       np.ones((3, 3, 3, 4), "f4"))),
    ("max_pool2d", lambda o, x: o.max_pool2d(x, 1)),
    ("im2col", lambda o, x: o.im2col(x, 3)),
    ("conv2d_transpose", lambda o, x: o.conv2d_transpose(x, np.ones((3, 3, 8, 3), "f4"), strides=2)),
])
def test_memory_limit_refuses_before_allocating(ops, memory_limit, name, call):
    x = np.ones((64, 64, 64, 3), np.float32)            # 3 MiB, allocated before the limit
    memory_limit(1 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError, match=rf"{name}: needs .*memory limit is 1\.0 MiB"):
            call(ops, x)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # NumPy reports its buffers to tracemalloc: nothing near the refused size was allocated.
    assert peak < (4 << 20), f"{name} allocated {peak} bytes before refusing"


def test_memory_limit_setter_rejects_nonsense(ops):
    import pycnn
    for bad in (0, -5, 1.5, True, "64MiB?"):
        with pytest.raises((ValueError, TypeError), match=r"set_memory_limit: .*"):
            pycnn.set_memory_limit(bad)


# ------------------------------------------------------------ row 16: NaN and infinities


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_nan_propagates_through_max_pool_and_backward_stays_in_window(ops, dtype):
    x = np.arange(2 * 6 * 6 * 2, dtype=dtype).reshape(2, 6, 6, 2) / 10
    x[0, 1, 1, 0] = np.nan                  # one NaN in window (0, 0)
    x[1, 2:4, 2:4, 1] = np.nan               # an all-NaN window (1, 1)
    x[1, 4, 4, 0] = -np.inf
    y = ops.max_pool2d(x, 2)
    expected_nan = np.zeros(y.shape, bool)
    expected_nan[0, 0, 0, 0] = True
    expected_nan[1, 1, 1, 1] = True
    np.testing.assert_array_equal(np.isnan(y), expected_nan)
    dy = np.ones(y.shape, dtype)
    dx = ops.max_pool2d_backward(dy, x, 2)
    assert dx.shape == x.shape and np.all(np.isfinite(dx))
    # every window sends its whole gradient to exactly one of its own cells
    windows = dx.reshape(2, 3, 2, 3, 2, 2).transpose(0, 1, 3, 5, 2, 4).reshape(2, 3, 3, 2, 4)
    np.testing.assert_array_equal(windows.sum(axis=-1), dy)
    np.testing.assert_array_equal((windows != 0).sum(axis=-1), 1)
    # and a NaN window routes it to its NaN (the first NaN of the all-NaN window)
    assert dx[0, 1, 1, 0] == 1 and dx[1, 2, 2, 1] == 1


def test_all_negative_infinity_window_routes_inside_the_window(ops):
    x = np.full((1, 4, 4, 1), -np.inf)
    y = ops.max_pool2d(x, 2, padding="same")
    assert np.all(y == -np.inf)
    dx = ops.max_pool2d_backward(np.ones(y.shape), x, 2, padding="same")
    assert dx.sum() == 4 and np.all((dx == 0) | (dx == 1))
    gx = ops.global_max_pool2d_backward(np.ones((1, 1)), np.full((1, 3, 3, 1), np.nan))
    assert gx.sum() == 1 and gx[0, 0, 0, 0] == 1


@pytest.mark.parametrize("op", ["conv2d", "avg_pool2d", "global_avg_pool2d", "dense"])
def test_nan_and_inf_propagate_without_error(ops, op):
    x = np.ones((1, 4, 4, 2))
    x[0, 0, 0, 0] = np.nan
    x[0, 3, 3, 1] = np.inf
    y = {"conv2d": lambda: ops.conv2d(x, np.ones((2, 2, 2, 1))),
         "avg_pool2d": lambda: ops.avg_pool2d(x, 2),
         "global_avg_pool2d": lambda: ops.global_avg_pool2d(x),
         "dense": lambda: ops.dense(x, np.ones((2, 3)))}[op]()
    assert np.isnan(y).any() and np.isinf(y).any()


# ------------------------------------------------------------ row 30: threads


def test_concurrent_calls_match_serial_results(ops, rng):
    x = rng.standard_normal((4, 12, 12, 3)).astype(np.float32)
    k = rng.standard_normal((3, 3, 3, 8)).astype(np.float32)
    expected = ops.conv2d(x, k, padding="same")
    expected_dx = ops.conv2d_backward(expected, x, k, padding="same")[0]
    results, errors = [], []

    def worker():
        try:
            for _ in range(10):
                results.append((ops.conv2d(x, k, padding="same"), expected))
                results.append((ops.conv2d_backward(expected, x, k, padding="same")[0], expected_dx))
        except Exception as exc:    # reported below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 80
    for got, want in results:
        np.testing.assert_array_equal(got, want)


def test_results_do_not_depend_on_the_thread_count(ops, rng):
    """DESIGN rule 6: fixed-size chunks, so 1 and 2 threads give bit-identical results."""
    import pycnn
    x = rng.standard_normal((4, 13, 11, 37)).astype(np.float32)
    k = rng.standard_normal((3, 3, 37, 40)).astype(np.float32)
    previous = pycnn.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            pycnn.set_num_threads(threads)
            y = ops.conv2d(x, k, padding="same")
            results.append((y,) + ops.conv2d_backward(y, x, k, padding="same")[:2]
                           + (ops.max_pool2d_backward(x, x, 3, 1, "same"),))
    finally:
        pycnn.set_num_threads(previous)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)
