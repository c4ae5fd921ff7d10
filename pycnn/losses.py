"""Losses with Keras 3 semantics and their gradients.

Every loss object is callable like Keras (``loss(y_true, y_pred, sample_weight=None)`` returns a
float) and also provides ``value_and_grad(y_true, y_pred, sample_weight)`` which the training loop
uses: it returns the reduced loss and d(loss)/d(y_pred).

Reduction is Keras's ``"sum_over_batch_size"``: per-sample losses (already averaged over the last
axis for the regression losses) times the sample weights, summed, divided by the number of
per-sample values.

Cross-entropies on probabilities (``from_logits=False``) follow Keras: categorical renormalises
``p / sum(p)``, then both clip to ``[1e-7, 1 - 1e-7]`` before the log. When the model's last layer
applies softmax (or sigmoid) the training loop asks the loss for ``logits_grad`` instead, the fused
gradient ``p - y`` with respect to the pre-activation, which is what Keras computes in ``fit``.
"""
import numpy as np

from pycnn import backend

__all__ = [
    "Loss", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "BinaryCrossentropy",
    "MeanSquaredError", "MeanAbsoluteError", "Huber",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy",
    "mean_squared_error", "mean_absolute_error", "huber", "get", "serialize", "deserialize",
]


def _as_float_array(y_pred):
    y_pred = np.asarray(y_pred)
    if y_pred.dtype not in (np.float32, np.float64):
        y_pred = y_pred.astype(np.float32)
    return y_pred


def _sample_weight_array(sample_weight, n, name):
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight, dtype=np.float64)
    if sw.ndim == 2 and sw.shape[1] == 1:
        sw = sw[:, 0]
    if sw.shape != (n,):
        raise ValueError(f"{name}: sample_weight must have shape ({n},) (one weight per sample); "
                         f"got shape {sw.shape}")
    return sw


def _reduce(values, sample_weight):
    """Keras 'sum_over_batch_size': sum(values * weight) / values.size, plus the per-value scale
    the gradient needs (weight / size broadcast to values.shape)."""
    size = max(values.size, 1)
    if sample_weight is None:
        return float(values.sum(dtype=np.float64)) / size, 1.0 / size
    w = sample_weight.reshape((-1,) + (1,) * (values.ndim - 1))
    scale = np.broadcast_to(w / size, values.shape)
    return float((values * w).sum(dtype=np.float64)) / size, scale


def _match_rank(y_true, pred_shape):
    """Keras's squeeze_or_expand_to_same_rank for the element-wise losses."""
    if y_true.ndim == len(pred_shape) - 1 and pred_shape[-1] == 1:
        y_true = y_true[..., None]
    elif len(pred_shape) == y_true.ndim - 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return y_true


class Loss:
    """Base class. Subclasses implement ``_values_and_grad(y_true, y_pred)`` returning the
    per-sample loss values and d(values)/d(y_pred) already summed per sample element."""

    #: the activation of the model's last layer that this loss can fuse with (see logits_grad)
    fusable_activation = None

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if reduction not in ("sum_over_batch_size", "sum", "none", None):
            raise ValueError(f"{type(self).__name__}: reduction must be 'sum_over_batch_size', "
                             f"'sum' or 'none'; got {reduction!r}")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction

    # -- public API ------------------------------------------------------------------------
    def __call__(self, y_true, y_pred, sample_weight=None):
        y_pred = _as_float_array(y_pred)
        y_true = self.prepare_targets(y_true, y_pred.shape)
        values, _ = self._values_and_grad(y_true, y_pred, need_grad=False)
        if self.reduction in (None, "none"):
            sw = _sample_weight_array(sample_weight, y_pred.shape[0], self.name)
            return values if sw is None else values * sw.reshape((-1,) + (1,) * (values.ndim - 1))
        sw = _sample_weight_array(sample_weight, values.shape[0] if values.ndim else 1, self.name)
        total, _ = _reduce(values, sw)
        if self.reduction == "sum":
            return total * max(values.size, 1)
        return total

    def value(self, y_true, y_pred, sample_weight=None):
        """The reduced loss for already validated targets (see prepare_targets)."""
        values, _ = self._values_and_grad(y_true, y_pred, need_grad=False)
        sw = _sample_weight_array(sample_weight, y_pred.shape[0], self.name)
        total, _ = _reduce(values, sw)
        return total * max(values.size, 1) if self.reduction == "sum" else total

    def value_and_grad(self, y_true, y_pred, sample_weight=None):
        """(mean loss, d loss / d y_pred) for already validated targets (see prepare_targets)."""
        values, dvalues = self._values_and_grad(y_true, y_pred, need_grad=True)
        sw = _sample_weight_array(sample_weight, y_pred.shape[0], self.name)
        total, scale = _reduce(values, sw)
        if self.reduction == "sum":
            total *= max(values.size, 1)
            scale = scale * max(values.size, 1)
        grad = dvalues * _expand_scale(scale, dvalues.ndim, values.ndim)
        return total, grad.astype(y_pred.dtype, copy=False)

    def logits_grad(self, y_true, probabilities, sample_weight=None):
        """Gradient of the reduced loss with respect to the *pre-activation* of a final softmax or
        sigmoid, given its output ``probabilities``: ``p * sum(y) - y`` (softmax) or ``p - y``
        (sigmoid), scaled like the reduction. Only valid when ``fusable_activation`` matches."""
        raise ValueError(f"{self.name}: cannot be fused with the last layer's activation")

    def prepare_targets(self, y_true, pred_shape):
        """Validate and convert the targets for predictions of shape ``pred_shape``."""
        y_true = np.asarray(y_true)
        if y_true.dtype.kind not in "biuf":
            raise TypeError(f"{self.name}: y_true must be numeric; got dtype {y_true.dtype}")
        if y_true.shape[:1] != tuple(pred_shape[:1]):
            raise ValueError(f"{self.name}: y_true has {y_true.shape[0] if y_true.ndim else 0} "
                             f"samples but predictions have {pred_shape[0]} "
                             f"(y_true.shape={y_true.shape}, y_pred.shape={tuple(pred_shape)})")
        return y_true

    def get_config(self):
        config = {"name": self.name, "reduction": self.reduction}
        config.update(self._extra_config())
        return config

    def _extra_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._extra_config().items())
        return f"{type(self).__name__}({args})"


def _expand_scale(scale, grad_ndim, values_ndim):
    if np.isscalar(scale):
        return scale
    return scale.reshape(scale.shape + (1,) * (grad_ndim - values_ndim))


def _snake(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _check_from_logits(owner, from_logits):
    if not isinstance(from_logits, (bool, np.bool_)):
        raise TypeError(f"{owner}: from_logits must be True or False; got {from_logits!r}")
    return bool(from_logits)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class CategoricalCrossentropy(Loss):
    """Cross-entropy for one-hot (or probability) targets of the same shape as the predictions."""

    fusable_activation = "softmax"

    def __init__(self, from_logits=False, label_smoothing=0.0, name="categorical_crossentropy",
                 reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        self.from_logits = _check_from_logits("CategoricalCrossentropy", from_logits)
        if not (0.0 <= float(label_smoothing) <= 1.0):
            raise ValueError("CategoricalCrossentropy: label_smoothing must be in [0, 1]; "
                             f"got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def _extra_config(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

    def prepare_targets(self, y_true, pred_shape):
        y_true = super().prepare_targets(y_true, pred_shape)
        pred_shape = tuple(pred_shape)
        if y_true.shape != pred_shape:
            hint = ""
            if y_true.ndim == len(pred_shape) - 1 or (y_true.shape[1:] == (1,) and pred_shape[-1] > 1):
                hint = ("; these look like integer class labels: use "
                        "loss='sparse_categorical_crossentropy' or one-hot encode them with "
                        "pycnn.utils.to_categorical(y)")
            raise ValueError(f"{self.name}: y_true shape {y_true.shape} does not match predictions "
                             f"{pred_shape}{hint}")
        y_true = y_true.astype(np.float64 if y_true.dtype == np.float64 else np.float32, copy=False)
        if self.label_smoothing:
            k = pred_shape[-1]
            y_true = y_true * (1.0 - self.label_smoothing) + self.label_smoothing / k
        return y_true

    def _values_and_grad(self, y, p, need_grad):
        y = y.astype(p.dtype, copy=False)
        if self.from_logits:
            z = p - p.max(axis=-1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=-1, keepdims=True))
            values = -(y * (z - lse)).sum(axis=-1)
            grad = _softmax(p) * y.sum(axis=-1, keepdims=True) - y if need_grad else None
            return values, grad
        eps = backend.epsilon()
        total = p.sum(axis=-1, keepdims=True)
        q = p / total
        qc = np.clip(q, eps, 1.0 - eps)
        values = -(y * np.log(qc)).sum(axis=-1)
        if not need_grad:
            return values, None
        g = np.where((q >= eps) & (q <= 1.0 - eps), -y / qc, 0.0)
        grad = (g - (g * q).sum(axis=-1, keepdims=True)) / total
        return values, grad

    def logits_grad(self, y_true, probabilities, sample_weight=None):
        y = y_true.astype(probabilities.dtype, copy=False)
        grad = probabilities * y.sum(axis=-1, keepdims=True) - y
        return _scaled_fused_grad(grad, sample_weight, self)


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy for integer class labels of shape (n,) or (n, 1)."""

    fusable_activation = "softmax"

    def __init__(self, from_logits=False, ignore_class=None, name="sparse_categorical_crossentropy",
                 reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        self.from_logits = _check_from_logits("SparseCategoricalCrossentropy", from_logits)
        if ignore_class is not None:
            raise ValueError("SparseCategoricalCrossentropy: ignore_class must be None "
                             f"(pycnn does not support ignored classes); got {ignore_class!r}")
        self.ignore_class = None

    def _extra_config(self):
        return {"from_logits": self.from_logits}

    def prepare_targets(self, y_true, pred_shape):
        y_true = super().prepare_targets(y_true, pred_shape)
        pred_shape = tuple(pred_shape)
        labels = y_true
        if labels.ndim == len(pred_shape) and labels.shape[-1] == 1:
            labels = labels[..., 0]
        if labels.shape != pred_shape[:-1]:
            hint = ""
            if y_true.shape == pred_shape:
                hint = ("; these look like one-hot labels: use loss='categorical_crossentropy' "
                        "or pass integer labels y.argmax(axis=-1)")
            raise ValueError(f"{self.name}: y_true shape {y_true.shape} does not match predictions "
                             f"{pred_shape}; expected integer labels of shape {pred_shape[:-1]}"
                             f"{hint}")
        if labels.dtype.kind == "f":
            if labels.size and not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                bad = np.flatnonzero((labels != np.round(labels)) | ~np.isfinite(labels))[0]
                raise ValueError(f"{self.name}: labels must be whole numbers (class indices); got "
                                 f"{labels.reshape(-1)[bad]!r} at index {bad} (one-hot or "
                                 "probability targets need loss='categorical_crossentropy')")
        num_classes = pred_shape[-1]
        flat = labels.reshape(-1)
        if flat.size:
            lo, hi = flat.min(), flat.max()
            if lo < 0 or hi >= num_classes:
                bad_value = hi if hi >= num_classes else lo
                idx = int(np.flatnonzero(flat == bad_value)[0])
                hint = ""
                if lo >= 1 and hi == num_classes:
                    hint = " (labels 1..{0}? subtract 1)".format(num_classes)
                elif hi >= num_classes:
                    hint = f" (the last layer has {num_classes} units; does it need {int(hi) + 1}?)"
                raise ValueError(f"{self.name}: labels must be in [0, {num_classes}); got "
                                 f"{bad_value.item()} at index {idx}{hint}")
        return labels.astype(np.intp, copy=False)

    def _onehot(self, labels, p):
        y = np.zeros(p.shape, dtype=p.dtype)
        np.put_along_axis(y, labels[..., None], 1.0, axis=-1)
        return y

    def _values_and_grad(self, labels, p, need_grad):
        if self.from_logits:
            z = p - p.max(axis=-1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=-1, keepdims=True))
            values = -(np.take_along_axis(z, labels[..., None], axis=-1) - lse)[..., 0]
            grad = None
            if need_grad:
                grad = _softmax(p)
                np.put_along_axis(grad, labels[..., None],
                                  np.take_along_axis(grad, labels[..., None], axis=-1) - 1.0, axis=-1)
            return values, grad
        # Same arithmetic as CategoricalCrossentropy on probabilities (Keras's numpy/torch path).
        return CategoricalCrossentropy._values_and_grad(self, self._onehot(labels, p), p, need_grad)

    def logits_grad(self, labels, probabilities, sample_weight=None):
        grad = probabilities.copy()
        idx = labels[..., None]
        np.put_along_axis(grad, idx, np.take_along_axis(grad, idx, axis=-1) - 1.0, axis=-1)
        return _scaled_fused_grad(grad, sample_weight, self)


class BinaryCrossentropy(Loss):
    """Element-wise binary cross-entropy averaged over the last axis."""

    fusable_activation = "sigmoid"

    def __init__(self, from_logits=False, label_smoothing=0.0, name="binary_crossentropy",
                 reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        self.from_logits = _check_from_logits("BinaryCrossentropy", from_logits)
        if not (0.0 <= float(label_smoothing) <= 1.0):
            raise ValueError("BinaryCrossentropy: label_smoothing must be in [0, 1]; "
                             f"got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)

    def _extra_config(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing}

    def prepare_targets(self, y_true, pred_shape):
        y_true = _match_rank(super().prepare_targets(y_true, pred_shape), tuple(pred_shape))
        if y_true.shape != tuple(pred_shape):
            raise ValueError(f"{self.name}: y_true shape {y_true.shape} does not match predictions "
                             f"{tuple(pred_shape)} (binary cross-entropy compares element-wise; "
                             "for integer class labels with a softmax output use "
                             "loss='sparse_categorical_crossentropy')")
        y_true = y_true.astype(np.float32, copy=False)
        if self.label_smoothing:
            y_true = y_true * (1.0 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y_true

    def _values_and_grad(self, y, p, need_grad):
        y = y.astype(p.dtype, copy=False)
        c = p.shape[-1] if p.ndim else 1
        if self.from_logits:
            values = (np.maximum(p, 0) - p * y + np.log1p(np.exp(-np.abs(p)))).mean(axis=-1)
            grad = (_sigmoid(p) - y) / c if need_grad else None
            return values, grad
        eps = backend.epsilon()
        q = np.clip(p, eps, 1.0 - eps)
        values = -(y * np.log(q) + (1.0 - y) * np.log1p(-q)).mean(axis=-1)
        if not need_grad:
            return values, None
        grad = np.where((p >= eps) & (p <= 1.0 - eps), (q - y) / (q * (1.0 - q)), 0.0) / c
        return values, grad

    def logits_grad(self, y_true, probabilities, sample_weight=None):
        c = probabilities.shape[-1]
        grad = (probabilities - y_true.astype(probabilities.dtype, copy=False)) / c
        return _scaled_fused_grad(grad, sample_weight, self)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _scaled_fused_grad(grad, sample_weight, loss):
    # one loss value per position along all axes but the last (the class / unit axis)
    n_values = max(grad.size // max(grad.shape[-1], 1), 1)
    sw = _sample_weight_array(sample_weight, grad.shape[0], loss.name)
    scale = 1.0 if loss.reduction == "sum" else 1.0 / n_values
    if sw is not None:
        grad = grad * sw.reshape((-1,) + (1,) * (grad.ndim - 1))
    return (grad * scale).astype(grad.dtype, copy=False)


class _Elementwise(Loss):
    """Losses that compare y_pred and y_true element-wise and average over the last axis."""

    def prepare_targets(self, y_true, pred_shape):
        y_true = _match_rank(super().prepare_targets(y_true, pred_shape), tuple(pred_shape))
        try:
            np.broadcast_shapes(y_true.shape, tuple(pred_shape))
        except ValueError:
            raise ValueError(f"{self.name}: y_true shape {y_true.shape} does not match predictions "
                             f"{tuple(pred_shape)}") from None
        if y_true.shape != tuple(pred_shape):
            raise ValueError(f"{self.name}: y_true shape {y_true.shape} does not match predictions "
                             f"{tuple(pred_shape)}")
        return y_true.astype(np.float32, copy=False)

    def _values_and_grad(self, y, p, need_grad):
        err = p - y.astype(p.dtype, copy=False)
        c = p.shape[-1] if p.ndim > 1 else 1
        values, dvalues = self._pointwise(err, need_grad)
        if p.ndim > 1:
            values = values.mean(axis=-1)
        return values, (dvalues / c if need_grad else None)


class MeanSquaredError(_Elementwise):
    def __init__(self, name="mean_squared_error", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)

    def _pointwise(self, err, need_grad):
        return err * err, (2.0 * err if need_grad else None)


class MeanAbsoluteError(_Elementwise):
    def __init__(self, name="mean_absolute_error", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)

    def _pointwise(self, err, need_grad):
        return np.abs(err), (np.sign(err) if need_grad else None)


class Huber(_Elementwise):
    def __init__(self, delta=1.0, name="huber_loss", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        if not (np.isfinite(delta) and delta > 0):
            raise ValueError(f"Huber: delta must be a finite number > 0; got {delta!r}")
        self.delta = float(delta)

    def _extra_config(self):
        return {"delta": self.delta}

    def _pointwise(self, err, need_grad):
        a = np.abs(err)
        quad = a <= self.delta
        values = np.where(quad, 0.5 * err * err, self.delta * a - 0.5 * self.delta ** 2)
        grad = np.where(quad, err, self.delta * np.sign(err)) if need_grad else None
        return values, grad


# -- functional forms (per-sample values, like keras.losses.<name>) --------------------------

def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-sample categorical cross-entropy (Keras's ``keras.losses.categorical_crossentropy``)."""
    return CategoricalCrossentropy(from_logits, label_smoothing, reduction="none")(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    """Per-sample sparse categorical cross-entropy."""
    return SparseCategoricalCrossentropy(from_logits, reduction="none")(y_true, y_pred)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    """Per-sample binary cross-entropy (mean over the last axis)."""
    return BinaryCrossentropy(from_logits, label_smoothing, reduction="none")(y_true, y_pred)


def mean_squared_error(y_true, y_pred):
    """Per-sample mean squared error (mean over the last axis)."""
    return MeanSquaredError(reduction="none")(y_true, y_pred)


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean absolute error (mean over the last axis)."""
    return MeanAbsoluteError(reduction="none")(y_true, y_pred)


def huber(y_true, y_pred, delta=1.0):
    """Per-sample Huber loss (mean over the last axis)."""
    return Huber(delta, reduction="none")(y_true, y_pred)


_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "huber": Huber,
    "huber_loss": Huber,
}
_CLASSES = {cls.__name__: cls for cls in (CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                          BinaryCrossentropy, MeanSquaredError, MeanAbsoluteError,
                                          Huber)}
_FUNCTIONS = {categorical_crossentropy: CategoricalCrossentropy,
              sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
              binary_crossentropy: BinaryCrossentropy, mean_squared_error: MeanSquaredError,
              mean_absolute_error: MeanAbsoluteError, huber: Huber}


def get(identifier):
    """A Loss object from a name ('categorical_crossentropy', 'mse', 'Huber', ...), a Loss, one of
    the functions in this module, or a config dict {'class_name', 'config'}."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        key = identifier if identifier in _CLASSES else identifier.lower()
        cls = _CLASSES.get(key) or _BY_NAME.get(key)
        if cls is None:
            known = ", ".join(sorted(_BY_NAME))
            raise ValueError(f"losses.get: loss must be one of {known} or a Loss object; "
                             f"got {identifier!r}")
        return cls()
    if identifier in _FUNCTIONS:
        return _FUNCTIONS[identifier]()
    raise TypeError(f"losses.get: loss must be a string or a pycnn.losses.Loss object; got "
                    f"{type(identifier).__name__} (wrap custom functions in a Loss subclass that "
                    "implements _values_and_grad)")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config):
    try:
        cls = _CLASSES[config["class_name"]]
        return cls.from_config(dict(config["config"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"losses.deserialize: not a pycnn loss config: {config!r}") from exc
