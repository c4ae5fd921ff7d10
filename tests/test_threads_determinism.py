"""Results are bit-identical for any thread count (pycnn.h: work is split into
chunks fixed by the shape, and partial sums are added in a fixed order).

Every op with a reduction across chunks is run at 1, 2 and 3 threads on
shapes big enough to be split into more chunks than work slots (so slots
reduce several chunks each): convolution backward-filter (weights and bias),
dense backward, pooling backward (overlapping windows add into the same
cell), transposed convolution (its forward scatters, its backward reduces),
depthwise, grouped and 1-D convolutions.  Each op is also checked once
against a float64 NumPy reference, so identical-but-wrong cannot pass.
"""
import numpy as np
import pytest

import pycnn
from pycnn import ops


@pytest.fixture(scope="module", autouse=True)
def restore_threads():
    before = pycnn.get_num_threads()
    yield
    pycnn.set_num_threads(before)


def _threads_available():
    pycnn.set_num_threads(2)
    return pycnn.get_num_threads() == 2


def _run_at(threads, fn):
    pycnn.set_num_threads(threads)
    assert pycnn.get_num_threads() == threads
    out = fn()
    return out if isinstance(out, tuple) else (out,)


def _assert_bit_identical(fn, threads=(1, 2, 3)):
    if not _threads_available():
        pytest.skip("the engine was built without OpenMP: it always runs on one thread")
    results = [_run_at(t, fn) for t in threads]
    for t, result in zip(threads[1:], results[1:]):
        for i, (a, b) in enumerate(zip(results[0], result)):
            if a is None:
                assert b is None
                continue
            assert a.dtype == b.dtype and a.shape == b.shape
            # Compare the bytes: equal floats could still differ in the sign of a zero.
            assert a.tobytes() == b.tobytes(), (
                f"output {i} differs between 1 and {t} threads "
                f"(max abs diff {np.max(np.abs(a.astype(np.float64) - b)):.3g})")
    return results[0]


def _rand(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _conv_reference_dw(x, dy, ksize, pad, stride=1):
    """float64 dW[i, j, c, o] = sum over n, oy, ox of x_pad[n, oy*s+i, ox*s+j, c] * dy[n, oy, ox, o]."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    oh, ow = dy.shape[1:3]
    dw = np.zeros((ksize, ksize, x.shape[3], dy.shape[3]))
    for i in range(ksize):
        for j in range(ksize):
            patch = xp[:, i:i + stride * oh:stride, j:j + stride * ow:stride]
            dw[i, j] = np.einsum("nhwc,nhwo->co", patch, dy.astype(np.float64))
    return dw


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_backward_is_thread_count_independent(rng, dtype):
    # 32x32x16 with a 3x3 kernel: ~590 KB of im2col per image, so one image
    # per chunk and 12 chunks over the 4 slots.
    x = _rand(rng, (12, 32, 32, 16), dtype)
    kernel = _rand(rng, (3, 3, 16, 24), dtype)
    bias = _rand(rng, (24,), dtype)
    dy = _rand(rng, (12, 32, 32, 24), dtype)
    dx, dkernel, dbias = _assert_bit_identical(
        lambda: ops.conv2d_backward(dy, x, kernel, bias, padding="same"))
    y = _assert_bit_identical(lambda: ops.conv2d(x, kernel, bias, padding="same"))[0]
    tol = 1e-3 if dtype == np.float32 else 1e-9
    np.testing.assert_allclose(dkernel, _conv_reference_dw(x, dy, 3, 1), rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(dbias, dy.astype(np.float64).sum((0, 1, 2)), rtol=tol, atol=tol * 10)
    assert np.isfinite(dx).all() and np.isfinite(y).all() and np.abs(dx).max() > 0


def test_strided_conv_backward_is_thread_count_independent(rng):
    x = _rand(rng, (10, 31, 29, 8))
    kernel = _rand(rng, (5, 5, 8, 12))
    dy = _rand(rng, (10, 14, 13, 12))
    dx, dkernel, _ = _assert_bit_identical(lambda: ops.conv2d_backward(dy, x, kernel, strides=2))
    np.testing.assert_allclose(dkernel, _conv_reference_dw(x, dy, 5, 0, stride=2), rtol=1e-3, atol=1e-2)


def test_dense_backward_is_thread_count_independent(rng):
    # 17000 rows: the 1x1-convolution path takes 4096 rows per chunk, so 5 chunks over 4 slots.
    x = _rand(rng, (17000, 100))
    kernel = _rand(rng, (100, 40))
    bias = _rand(rng, (40,))
    dy = _rand(rng, (17000, 40))
    dx, dkernel, dbias = _assert_bit_identical(lambda: ops.dense_backward(dy, x, kernel, bias))
    _assert_bit_identical(lambda: ops.dense(x, kernel, bias))
    np.testing.assert_allclose(dkernel, x.astype(np.float64).T @ dy, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(dbias, dy.astype(np.float64).sum(0), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(dx, dy.astype(np.float64) @ kernel.T, rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_dense_at_small_batch_is_thread_count_independent(rng, dtype):
    # 24 rows are one chunk: the 1x1 path splits the 300 output (and 260 input)
    # columns into blocks instead, and backward-filter gives each block of dw
    # one owner (no partial sums); the column blocks are not multiples of 32.
    x = _rand(rng, (24, 260), dtype)
    kernel = _rand(rng, (260, 300), dtype)
    bias = _rand(rng, (300,), dtype)
    dy = _rand(rng, (24, 300), dtype)
    dx, dkernel, dbias = _assert_bit_identical(lambda: ops.dense_backward(dy, x, kernel, bias))
    y = _assert_bit_identical(lambda: ops.dense(x, kernel, bias))[0]
    tol = 1e-3 if dtype == np.float32 else 1e-10
    x64, k64, dy64 = x.astype(np.float64), kernel.astype(np.float64), dy.astype(np.float64)
    np.testing.assert_allclose(y, x64 @ k64 + bias, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(dkernel, x64.T @ dy64, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(dbias, dy64.sum(0), rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(dx, dy64 @ k64.T, rtol=tol, atol=tol * 10)


def test_pointwise_conv_on_one_image_is_thread_count_independent(rng):
    # One 40x40 image (1600 rows): cut into 4 pieces of rows so both threads work.
    x = _rand(rng, (1, 40, 40, 96))
    kernel = _rand(rng, (1, 1, 96, 160))
    dy = _rand(rng, (1, 40, 40, 160))
    dx, dkernel, _ = _assert_bit_identical(lambda: ops.conv2d_backward(dy, x, kernel))
    y = _assert_bit_identical(lambda: ops.conv2d(x, kernel))[0]
    x2, dy2 = x.reshape(-1, 96).astype(np.float64), dy.reshape(-1, 160).astype(np.float64)
    np.testing.assert_allclose(y.reshape(-1, 160), x2 @ kernel[0, 0], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(dkernel[0, 0], x2.T @ dy2, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(dx.reshape(-1, 96), dy2 @ kernel[0, 0].T.astype(np.float64), rtol=1e-3, atol=1e-2)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_pool_backward_with_overlapping_windows_is_thread_count_independent(rng, mode):
    x = _rand(rng, (16, 29, 29, 8))
    forward = ops.max_pool2d if mode == "max" else ops.avg_pool2d
    backward = ops.max_pool2d_backward if mode == "max" else ops.avg_pool2d_backward
    y = forward(x, 3, 2, "same")
    dy = _rand(rng, y.shape)
    dx = _assert_bit_identical(lambda: backward(dy, x, 3, 2, "same"))[0]
    _assert_bit_identical(lambda: forward(x, 3, 2, "same"))
    # Every dy lands somewhere: the total is preserved (overlaps add, nothing is lost).
    np.testing.assert_allclose(dx.astype(np.float64).sum((1, 2)), dy.astype(np.float64).sum((1, 2)),
                               rtol=1e-4, atol=1e-3)


def test_conv2d_transpose_is_thread_count_independent(rng):
    # Stride 2, kernel 3: output cells receive taps from several inputs (scatter-add).
    x = _rand(rng, (12, 20, 20, 16))
    kernel = _rand(rng, (3, 3, 8, 16))     # Keras (kh, kw, filters, c_in)
    bias = _rand(rng, (8,))
    y = _assert_bit_identical(lambda: ops.conv2d_transpose(x, kernel, bias, strides=2, padding="same"))[0]
    dy = _rand(rng, y.shape)
    dx, dkernel, dbias = _assert_bit_identical(
        lambda: ops.conv2d_transpose_backward(dy, x, kernel, bias, strides=2, padding="same"))
    # Adjointness: <conv2d_transpose(x), dy> = <x, dx> (without bias), in float64.
    y0 = ops.conv2d_transpose(x.astype(np.float64), kernel.astype(np.float64), strides=2, padding="same")
    lhs = np.vdot(y0, dy.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), dx.astype(np.float64))
    assert lhs == pytest.approx(rhs, rel=1e-4)
    np.testing.assert_allclose(dbias, dy.astype(np.float64).sum((0, 1, 2)), rtol=1e-4, atol=1e-3)


def test_depthwise_and_grouped_backward_are_thread_count_independent(rng):
    x = _rand(rng, (16, 24, 24, 12))
    dw_kernel = _rand(rng, (3, 3, 12, 2))
    dy = _rand(rng, (16, 24, 24, 24))
    _, dkernel, _ = _assert_bit_identical(lambda: ops.depthwise_conv2d_backward(dy, x, dw_kernel, padding="same"))
    # Depthwise is grouped conv with one input channel per group: reference per channel.
    ref = np.zeros((3, 3, 12, 2))
    full = _conv_reference_dw(x, dy, 3, 1)   # (3, 3, 12, 24): every (c, o) pair
    for c in range(12):
        for m in range(2):
            ref[:, :, c, m] = full[:, :, c, c * 2 + m]
    np.testing.assert_allclose(dkernel, ref, rtol=1e-3, atol=1e-2)
    grouped = _rand(rng, (3, 3, 3, 24))
    _assert_bit_identical(lambda: ops.conv2d_backward(dy, x, grouped, padding="same", groups=4))


def test_conv1d_backward_is_thread_count_independent(rng):
    x = _rand(rng, (32, 500, 16))
    kernel = _rand(rng, (5, 16, 32))
    bias = _rand(rng, (32,))
    dy = _rand(rng, (32, 248, 32))
    dx, dkernel, dbias = _assert_bit_identical(lambda: ops.conv1d_backward(dy, x, kernel, bias, strides=2))
    dk64 = np.zeros((5, 16, 32))
    for t in range(5):
        dk64[t] = np.einsum("nlc,nlo->co", x[:, t:t + 2 * 248:2].astype(np.float64), dy.astype(np.float64))
    np.testing.assert_allclose(dkernel, dk64, rtol=1e-3, atol=1e-2)
