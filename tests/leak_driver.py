"""Every pycnn op as a zero-argument call, success and error paths alike.

Used two ways:
  * tests/test_leaks.py imports CASES and measures traced memory, RSS and input
    reference counts over many calls (reliability.md B3);
  * run as a script it calls every case a few times and exits, for the C-level
    leak pass under LeakSanitizer (reliability.md B1), e.g. with the ASan build
    of .ci/run:
      PYTHONMALLOC=malloc ASAN_OPTIONS=detect_leaks=1 LD_PRELOAD=... python tests/leak_driver.py
    and for the valgrind smoke run (RELIABILITY.md).

Error cases reach the binding's and engine's failure branches (converter
failures, shape mismatches, engine status errors after the GIL is released),
where a missed Py_DECREF or free would hide.
"""
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

if __name__ == "__main__":   # run as a script: the repository root must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pycnn import _engine, ops  # noqa: E402

rng = np.random.default_rng(0)

X = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
W = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
B = rng.standard_normal(4).astype(np.float32)
DY = rng.standard_normal((2, 4, 4, 4)).astype(np.float32)
X1 = rng.standard_normal((2, 8, 3)).astype(np.float32)
W1 = rng.standard_normal((3, 3, 4)).astype(np.float32)
DY1 = rng.standard_normal((2, 6, 4)).astype(np.float32)
WD = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)          # depthwise, multiplier 2
DYD = rng.standard_normal((2, 4, 4, 6)).astype(np.float32)
WT = rng.standard_normal((3, 3, 4, 3)).astype(np.float32)          # transposed (kh, kw, filters, c_in)
DYT = rng.standard_normal((2, 12, 12, 4)).astype(np.float32)
DYP = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
DYP1 = rng.standard_normal((2, 4, 3)).astype(np.float32)
DYG = rng.standard_normal((2, 3)).astype(np.float32)
IDX = ops.max_pool2d(X, 2, return_indices=True)[1]                 # stored max-pool indices for DYP
IDX_FORGED = IDX.copy()
IDX_FORGED[1, 2, 2, 2] = 0                                           # a cell of another window
XD = rng.standard_normal((5, 7)).astype(np.float32)
WDN = rng.standard_normal((7, 4)).astype(np.float32)
DYDN = rng.standard_normal((5, 4)).astype(np.float32)
LOGITS = rng.standard_normal((5, 4)).astype(np.float32)
LABELS = np.array([0, 1, 2, 3, 0])
COLS = ops.im2col(X, 3)
X64 = X.astype(np.float64)
XP = rng.standard_normal((1, 5, 5, 40)).astype(np.float32)          # a GEMM layer: PackedKernel packs it
WP = rng.standard_normal((3, 3, 40, 36)).astype(np.float32)
XF = np.asfortranarray(X)                                            # copy path in the binding
XI = X.astype(np.int32)


def raises(exc, fn, *args, **kwargs):
    """A case that must raise exc (the error path under test)."""
    def call():
        try:
            fn(*args, **kwargs)
        except exc:
            return
        raise AssertionError(f"{fn.__name__} did not raise {exc.__name__}")
    return call


def engine_geometry():
    return (1, 1, 1, 1, 0, 0, 0, 0, 1)


CASES = {
    # convolution family
    "conv2d": lambda: ops.conv2d(X, W, B, padding="same"),
    "conv2d_f64_fortran": lambda: ops.conv2d(np.asfortranarray(X64), W.astype(np.float64), strides=2),
    "conv2d_backward": lambda: ops.conv2d_backward(DY, X, W, B),
    "conv2d_channels_first": lambda: ops.conv2d(X.transpose(0, 3, 1, 2), W.transpose(3, 2, 0, 1),
                                                data_format="channels_first"),
    "conv1d": lambda: ops.conv1d(X1, W1, padding="causal"),
    "conv1d_backward": lambda: ops.conv1d_backward(DY1, X1, W1),
    "depthwise_conv2d": lambda: ops.depthwise_conv2d(X, WD),
    "depthwise_conv2d_backward": lambda: ops.depthwise_conv2d_backward(DYD, X, WD),
    "conv2d_transpose": lambda: ops.conv2d_transpose(X, WT, strides=2, padding="same"),
    "conv2d_transpose_backward": lambda: ops.conv2d_transpose_backward(DYT, X, WT, strides=2, padding="same"),
    "im2col": lambda: ops.im2col(X, 3),
    "col2im": lambda: ops.col2im(COLS, X.shape, 3),
    "dense": lambda: ops.dense(XD, WDN, B),
    "dense_backward": lambda: ops.dense_backward(DYDN, XD, WDN, B),
    # kernels packed (and Winograd-transformed) once, then read by a second forward
    "conv2d_packed_kernel": lambda: [ops.conv2d(XP, kernel, padding="same")
                                     for kernel in [ops.PackedKernel(WP)] * 2],
    "winograd_packed_kernel": lambda: [ops.conv2d(XP, kernel, padding="same", algorithm="winograd_4x4")
                                       for kernel in [ops.PackedKernel(WP)] * 2],
    # pooling
    "max_pool2d": lambda: ops.max_pool2d(X, 2),
    "max_pool2d_backward": lambda: ops.max_pool2d_backward(DYP, X, 2),
    "avg_pool2d": lambda: ops.avg_pool2d(X, 3, strides=2, padding="same"),
    "avg_pool2d_backward": lambda: ops.avg_pool2d_backward(DYP, X, 3, strides=2, padding="same"),
    "max_pool1d": lambda: ops.max_pool1d(X1, 2),
    "max_pool2d_indices": lambda: ops.max_pool2d(X, 2, return_indices=True),
    "max_pool2d_backward_indices": lambda: ops.max_pool2d_backward(DYP, X, 2, indices=IDX),
    "avg_pool1d_backward": lambda: ops.avg_pool1d_backward(DYP1, X1, 2),
    "global_avg_pool2d": lambda: ops.global_avg_pool2d(X),
    "global_max_pool2d_backward": lambda: ops.global_max_pool2d_backward(DYG, X),
    # activations (C engine)
    "relu": lambda: ops.relu(X),
    "relu_backward": lambda: ops.relu_backward(X, X),
    "leaky_relu_f64": lambda: ops.leaky_relu(X64, 0.1),
    "leaky_relu_backward": lambda: ops.leaky_relu_backward(X, X, 0.1),
    # batch normalization (C engine): training, inference, both backward modes, moved axis
    "batch_norm_training": lambda: ops.batch_norm(X, gamma=B[:3], beta=B[1:]),
    "batch_norm_inference": lambda: ops.batch_norm(X, B[:3], np.abs(B[1:]), B[:3]),
    "batch_norm_backward": lambda: ops.batch_norm_backward(X, X, B[:3], np.abs(B[1:]), B[:3], B[1:]),
    "batch_norm_backward_frozen_axis1": lambda: ops.batch_norm_backward(
        X, X, B[:2].repeat(3), np.abs(B[:2]).repeat(3), batch_stats=False, axis=1),
    # losses and the remaining activations (NumPy code: leaks here would be Python-level caches)
    "sigmoid": lambda: ops.sigmoid(X),
    "softmax_backward": lambda: ops.softmax_backward(LOGITS, LOGITS),
    "softmax_cross_entropy": lambda: ops.softmax_cross_entropy(LOGITS, LABELS),
    "mse": lambda: ops.mse(LOGITS, LOGITS * 0.5),
    # error paths in pycnn.ops
    "err_conv2d_stride0": raises(ValueError, ops.conv2d, X, W, strides=0),
    "err_conv2d_int_dtype": raises(TypeError, ops.conv2d, XI, W),
    "err_conv2d_mixed_dtype": raises(TypeError, ops.conv2d, X64, W),
    "err_conv2d_kernel_too_large": raises(ValueError, ops.conv2d, X, np.ones((9, 9, 3, 4), np.float32)),
    "err_conv2d_channels": raises(ValueError, ops.conv2d, X, np.ones((3, 3, 2, 4), np.float32)),
    "err_conv2d_backward_dy_shape": raises(ValueError, ops.conv2d_backward, DYP, X, W),
    "err_pool_size0": raises(ValueError, ops.max_pool2d, X, 0),
    "err_pool_forged_index": raises(ValueError, ops.max_pool2d_backward, DYP, X, 2, indices=IDX_FORGED),
    "err_memory_limit": raises(MemoryError, ops.conv2d, np.ones((1, 4096, 4096, 1), np.float32)[:, ::1],
                               np.ones((1, 1, 1, 4096), np.float32)),
    "err_dense_features": raises(ValueError, ops.dense, XD, W1),
    "err_batch_norm_gamma_shape": raises(ValueError, ops.batch_norm, X, gamma=B),
    "err_leaky_relu_slope": raises(TypeError, ops.leaky_relu, X, "0.1"),
    # error paths inside the binding (converters, shape checks, engine status)
    "err_engine_int_input": raises(TypeError, _engine.conv2d_forward, XI, W, None,
                                   np.empty((2, 4, 4, 4), np.float32), None, engine_geometry()),
    "err_engine_output_shape": raises(ValueError, _engine.conv2d_forward, X, W, B,
                                      np.empty((2, 5, 5, 4), np.float32), None, engine_geometry()),
    "err_engine_output_fortran": raises(ValueError, _engine.conv2d_forward, X, W, B,
                                        np.empty((2, 4, 4, 4), np.float32, order="F"), None, engine_geometry()),
    "err_engine_bad_geometry": raises(TypeError, _engine.conv2d_forward, XF, W, B,
                                      np.empty((2, 4, 4, 4), np.float32), None, (1, 1)),
    "err_engine_stride0": raises(ValueError, _engine.conv2d_forward, XF, W, B,
                                 np.empty((2, 4, 4, 4), np.float32), None, (0, 1, 1, 1, 0, 0, 0, 0, 1)),
    "err_engine_workspace_small": raises(ValueError, _engine.conv2d_forward, XF, W, B,
                                         np.empty((2, 4, 4, 4), np.float32), np.empty(8, np.uint8),
                                         engine_geometry()),
    "err_engine_packed_mismatch": raises(ValueError, _engine.conv2d_forward, XF, W, B,
                                         np.empty((2, 4, 4, 4), np.float32), None, engine_geometry(),
                                         (0, 0.0, 0.0, 0.0), np.zeros(256, np.uint8)),
    "err_engine_packed_not_bytes": raises(TypeError, _engine.conv2d_forward, XF, W, B,
                                          np.empty((2, 4, 4, 4), np.float32), None, engine_geometry(),
                                          (0, 0.0, 0.0, 0.0), np.zeros(256, np.float32)),
    "err_engine_bias_shape": raises(ValueError, _engine.conv2d_backward_filter, X, DY,
                                    np.empty((3, 3, 3, 4), np.float32), np.empty(3, np.float32), None,
                                    engine_geometry()),
    "err_engine_transpose_crop": raises(ValueError, _engine.conv2d_transpose_forward, X, WT, None,
                                        np.empty((2, 8, 8, 4), np.float32), None, (1, 1, 1, 1, 5, 0)),
    "err_engine_pool_padding": raises(ValueError, _engine.pool2d_forward, X, np.empty((2, 3, 3, 3), np.float32),
                                      (0, 2, 2, 2, 2, 2, 0, 0, 0)),
    "err_engine_pool_index_dtype": raises(TypeError, _engine.pool2d_backward_indices, IDX.astype(np.int64), DYP,
                                          np.empty_like(X), (0, 2, 2, 2, 2, 0, 0, 0, 0), "op"),
    "err_engine_pool_index_shape": raises(ValueError, _engine.pool2d_forward_indices, X,
                                          np.empty((2, 3, 3, 3), np.float32), np.empty((2, 3, 3, 2), np.int32),
                                          (0, 2, 2, 2, 2, 0, 0, 0, 0)),
    "err_engine_activation_mode": raises(ValueError, _engine.activation_forward, X, np.empty_like(X), (9, 0.0)),
    "err_engine_activation_dx_shape": raises(ValueError, _engine.activation_backward, XF, X, np.empty(3, np.float32),
                                             (0, 0.0)),
    "err_engine_batch_norm_workspace": raises(ValueError, _engine.batch_norm_forward_training, XD, None, None,
                                              np.empty_like(XD), np.empty(7, np.float32), np.empty(7, np.float32),
                                              np.empty(8, np.uint8), 1e-3),
    "err_engine_batch_norm_mean_shape": raises(ValueError, _engine.batch_norm_backward, XD, XD,
                                               np.empty(6, np.float32), np.ones(7, np.float32), None,
                                               np.empty_like(XD), None, None, None, 1e-3, True),
    "err_engine_im2col_cols": raises(ValueError, _engine.im2col, X, np.empty((2, 4, 4, 26), np.float32),
                                     (3, 3), engine_geometry()),
}


def model_cases(directory):
    """Training, prediction, saving and loading of a small model (files go to `directory`)."""
    from pycnn import layers
    from pycnn.errors import ModelFileError
    from pycnn.models import Sequential, load_model

    model = Sequential([layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)),
                        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(3)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = rng.standard_normal((16, 8, 8, 1)).astype(np.float32)
    y = np.arange(16) % 3
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    path = os.path.join(directory, "leak_model.pycnn")
    model.save(path)
    truncated = os.path.join(directory, "truncated.pycnn")
    with open(path, "rb") as f, open(truncated, "wb") as g:
        g.write(f.read()[:-40])
    return {
        "model_train_on_batch": lambda: model.train_on_batch(x, y),
        "model_fit_epoch": lambda: model.fit(x, y, epochs=1, batch_size=8, verbose=0),
        "model_predict": lambda: model.predict(x, verbose=0),
        "model_save": lambda: model.save(path),
        "model_load": lambda: load_model(path),
        "model_load_weights": lambda: model.load_weights(path),
        "err_load_truncated": raises(ModelFileError, load_model, truncated),
    }


def main(calls):
    with tempfile.TemporaryDirectory() as directory:
        cases = dict(CASES, **model_cases(directory))
        for name, fn in cases.items():
            for _ in range(calls):
                fn()
    print(f"leak_driver: {len(cases)} cases x {calls} calls, done")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
