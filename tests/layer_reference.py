"""Slow, obviously correct NumPy references for layer behaviour not covered by tests/reference.py.

Everything is float64 and written as direct loops/formulas from the Keras documentation,
independent of how pycnn's layers compute the same thing.
"""
import math

import numpy as np


def batch_norm_train(x, gamma, beta, moving_mean, moving_var, momentum=0.99, epsilon=1e-3, axis=-1):
    """Keras training step: batch mean / biased variance over all axes but ``axis``; returns
    (y, new_moving_mean, new_moving_var)."""
    x = np.asarray(x, dtype=np.float64)
    axis = axis % x.ndim
    reduce_axes = tuple(a for a in range(x.ndim) if a != axis)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    mean = x.mean(axis=reduce_axes)
    var = ((x - mean.reshape(shape)) ** 2).mean(axis=reduce_axes)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + epsilon) * gamma.reshape(shape) \
        + beta.reshape(shape)
    return (y, moving_mean * momentum + mean * (1 - momentum), moving_var * momentum + var * (1 - momentum))


def batch_norm_inference(x, gamma, beta, moving_mean, moving_var, epsilon=1e-3, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    axis = axis % x.ndim
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return (x - moving_mean.reshape(shape)) / np.sqrt(moving_var.reshape(shape) + epsilon) \
        * gamma.reshape(shape) + beta.reshape(shape)


def resize_bilinear(x, out_h, out_w):
    """TF/Keras bilinear resize with half-pixel centres, pixel by pixel (NHWC)."""
    n, h, w, c = x.shape
    y = np.zeros((n, out_h, out_w, c))
    for i in range(out_h):
        src_y = (i + 0.5) * h / out_h - 0.5
        y0 = math.floor(src_y)
        fy = src_y - y0
        rows = (min(max(y0, 0), h - 1), min(max(y0 + 1, 0), h - 1))
        for j in range(out_w):
            src_x = (j + 0.5) * w / out_w - 0.5
            x0 = math.floor(src_x)
            fx = src_x - x0
            cols = (min(max(x0, 0), w - 1), min(max(x0 + 1, 0), w - 1))
            y[:, i, j] = ((1 - fy) * (1 - fx) * x[:, rows[0], cols[0]] + (1 - fy) * fx * x[:, rows[0], cols[1]]
                          + fy * (1 - fx) * x[:, rows[1], cols[0]] + fy * fx * x[:, rows[1], cols[1]])
    return y


def resize_nearest(x, out_h, out_w):
    """TF/Keras nearest resize with half-pixel centres: source index floor((i + 0.5) * in / out)."""
    n, h, w, c = x.shape
    rows = [min(int(math.floor((i + 0.5) * h / out_h)), h - 1) for i in range(out_h)]
    cols = [min(int(math.floor((j + 0.5) * w / out_w)), w - 1) for j in range(out_w)]
    return np.asarray(x, dtype=np.float64)[:, rows][:, :, cols]


def numerical_gradient(f, x, eps=1e-6):
    """Central finite differences of the scalar f() with respect to the array x (modified in place)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad
