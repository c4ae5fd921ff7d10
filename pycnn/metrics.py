"""Streaming metrics (Keras 3 semantics): ``update_state`` per batch, ``result`` is the running
mean over all samples seen since ``reset_state``.

``compile(metrics=["accuracy"])`` resolves "accuracy"/"acc" from the target and output shapes like
Keras (binary when the output has one unit, sparse when the targets have one dimension less or a
trailing 1, categorical otherwise) and keeps the name you wrote as the History key.
"""
import numpy as np

from pycnn import losses as losses_module

__all__ = [
    "Metric", "Mean", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy", "CategoricalAccuracy",
    "SparseCategoricalAccuracy", "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
    "MeanAbsoluteError", "MeanSquaredError", "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy", "BinaryCrossentropy", "get",
]


class Metric:
    """Base class: keeps a weighted sum and a count; ``result() = total / count``."""

    def __init__(self, name=None):
        self.name = name or _snake(type(self).__name__)
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = np.asarray(self.values(np.asarray(y_true), np.asarray(y_pred)), dtype=np.float64)
        values = values.reshape(values.shape[0], -1).mean(axis=1) if values.ndim > 1 else values
        if sample_weight is None:
            self.total += float(values.sum())
            self.count += values.size
        else:
            w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            self.total += float((values * w).sum())
            self.count += float(w.sum())

    def values(self, y_true, y_pred):
        """Per-sample metric values."""
        raise TypeError(f"{type(self).__name__} must define values()")

    def result(self):
        return self.total / self.count if self.count else 0.0

    def get_config(self):
        return {"name": self.name}

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} result={self.result():.4f}>"


def _snake(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


class Mean(Metric):
    """Weighted mean of the values passed to ``update_state(values, sample_weight=None)``."""

    def update_state(self, values, sample_weight=None):
        values = np.asarray(values, dtype=np.float64)
        if sample_weight is None:
            self.total += float(values.sum())
            self.count += values.size
        else:
            w = np.broadcast_to(np.asarray(sample_weight, dtype=np.float64), values.shape)
            self.total += float((values * w).sum())
            self.count += float(w.sum())


class MeanMetricWrapper(Metric):
    """Mean over samples of ``fn(y_true, y_pred)`` (per-sample values)."""

    def __init__(self, fn, name=None, **kwargs):
        self._fn = fn
        self._kwargs = kwargs
        super().__init__(name=name or getattr(fn, "__name__", "metric"))

    def values(self, y_true, y_pred):
        return self._fn(y_true, y_pred, **self._kwargs)


def _labels_like(y_true, y_pred):
    """Integer labels from sparse targets (squeezing a trailing 1)."""
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return y_true


class Accuracy(Metric):
    """Fraction of predictions exactly equal to the targets."""

    def values(self, y_true, y_pred):
        return (y_true.reshape(y_pred.shape) == y_pred).astype(np.float64)


class BinaryAccuracy(Metric):
    def __init__(self, name="binary_accuracy", threshold=0.5):
        self.threshold = float(threshold)
        super().__init__(name=name)

    def values(self, y_true, y_pred):
        if y_true.ndim == y_pred.ndim - 1:
            y_true = y_true[..., None]
        return ((y_pred > self.threshold) == (y_true > 0.5)).astype(np.float64)


class CategoricalAccuracy(Metric):
    def __init__(self, name="categorical_accuracy"):
        super().__init__(name=name)

    def values(self, y_true, y_pred):
        return (y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)).astype(np.float64)


class SparseCategoricalAccuracy(Metric):
    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(name=name)

    def values(self, y_true, y_pred):
        labels = _labels_like(y_true, y_pred)
        return (labels.astype(np.int64) == y_pred.argmax(axis=-1)).astype(np.float64)


def _in_top_k(y_pred, labels, k):
    # Keras's in_top_k: the target counts as a hit when its score is among the k largest.
    target = np.take_along_axis(y_pred, labels[..., None].astype(np.intp), axis=-1)
    return ((y_pred > target).sum(axis=-1) < k).astype(np.float64)


class TopKCategoricalAccuracy(Metric):
    def __init__(self, k=5, name="top_k_categorical_accuracy"):
        if int(k) < 1:
            raise ValueError(f"TopKCategoricalAccuracy: k must be >= 1; got {k}")
        self.k = int(k)
        super().__init__(name=name)

    def values(self, y_true, y_pred):
        return _in_top_k(y_pred, y_true.argmax(axis=-1), self.k)


class SparseTopKCategoricalAccuracy(Metric):
    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy"):
        if int(k) < 1:
            raise ValueError(f"SparseTopKCategoricalAccuracy: k must be >= 1; got {k}")
        self.k = int(k)
        super().__init__(name=name)

    def values(self, y_true, y_pred):
        return _in_top_k(y_pred, _labels_like(y_true, y_pred), self.k)


class _LossMetric(Metric):
    loss_class = None

    def __init__(self, name=None, **kwargs):
        self._loss = self.loss_class(reduction="none", **kwargs)
        super().__init__(name=name or self._loss.name)

    def values(self, y_true, y_pred):
        return self._loss(y_true, y_pred)


class MeanAbsoluteError(_LossMetric):
    loss_class = losses_module.MeanAbsoluteError


class MeanSquaredError(_LossMetric):
    loss_class = losses_module.MeanSquaredError


class CategoricalCrossentropy(_LossMetric):
    loss_class = losses_module.CategoricalCrossentropy


class SparseCategoricalCrossentropy(_LossMetric):
    loss_class = losses_module.SparseCategoricalCrossentropy


class BinaryCrossentropy(_LossMetric):
    loss_class = losses_module.BinaryCrossentropy


_BY_NAME = {
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy, "bce": BinaryCrossentropy,
}


def get(identifier, y_true_shape=None, y_pred_shape=None):
    """A Metric from a string (named as written, e.g. 'acc' stays 'acc') or a Metric object.

    'accuracy'/'acc' need the target and prediction shapes to pick binary, sparse or categorical
    accuracy (Keras's rule)."""
    if isinstance(identifier, Metric):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"metrics.get: metric must be a string or a pycnn.metrics.Metric; got "
                        f"{type(identifier).__name__}")
    key = identifier.lower()
    if key in ("accuracy", "acc"):
        if y_true_shape is None or y_pred_shape is None:
            raise ValueError("metrics.get: 'accuracy' is resolved from the target and prediction "
                             "shapes; pass y_true_shape and y_pred_shape")
        if y_pred_shape[-1] == 1:
            return BinaryAccuracy(name=identifier)
        if len(y_true_shape) < len(y_pred_shape) or y_true_shape[-1] == 1:
            return SparseCategoricalAccuracy(name=identifier)
        return CategoricalAccuracy(name=identifier)
    cls = _BY_NAME.get(key)
    if cls is None:
        known = ", ".join(["accuracy", "acc"] + sorted(_BY_NAME))
        raise ValueError(f"metrics.get: metric must be one of {known}; got {identifier!r}")
    return cls(name=identifier)
