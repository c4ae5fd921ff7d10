"""The Model base class shared by Sequential and the functional Model: compile, fit, evaluate,
predict, the *_on_batch methods, summary and saving (Keras 3 signatures and semantics).

Subclasses provide the graph: ``call(inputs, training)``, ``_backward(grad, need_input_grad,
fused)`` and ``_output_layer()``.

Training notes
* Softmax (or sigmoid) output + (sparse) categorical (or binary) cross-entropy on probabilities
  is trained fused, like Keras's fit: the gradient with respect to the last layer's pre-activation
  is ``p - y``; the reported loss is Keras's clipped cross-entropy of the probabilities.
* The reported ``loss`` is the running mean over the epoch weighted by batch size, plus the
  regularization penalties; metrics are running means over samples.
* A non-finite loss (or gradient) stops training before the optimizer applies that step, restores
  any layer state the bad forward pass changed (BatchNormalization moving statistics), warns with
  the epoch, batch and learning rate, and records ``nan`` for that epoch in History.
* ``validation_split`` takes the *last* fraction of the samples, before shuffling (as Keras).
"""
import contextlib
import math
import os
import sys
import warnings

import numpy as np

from pycnn import activations, backend
from pycnn import callbacks as callbacks_module
from pycnn import losses as losses_module
from pycnn import metrics as metrics_module
from pycnn import optimizers as optimizers_module
from pycnn.layers.base import Layer, packed_kernels
from pycnn.progbar import Progbar

__all__ = ["Model"]


def _is_array_like(x):
    return isinstance(x, np.ndarray) or (hasattr(x, "__array__") and not hasattr(x, "__next__"))


def _check_positive_int(where, name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive integer; got {value!r}")
    return int(value)


def _kernels_packed_unless(callbacks):
    """predict / evaluate read each layer's kernel packed once for the whole call
    (layers.base.packed_kernels), unless the caller's callbacks, which run between
    batches and may change weights, were given."""
    return contextlib.nullcontext() if callbacks is not None else packed_kernels()


def _verbosity(where, verbose):
    if verbose == "auto" or verbose is True:
        return 1
    if verbose is False or verbose is None:
        return 0
    if isinstance(verbose, (int, np.integer)) and verbose in (0, 1, 2):
        return int(verbose)
    raise ValueError(f"{where}: verbose must be 0, 1, 2, 'auto', True or False; got {verbose!r}")


class _Batches:
    """Batches of arrays (x may be a list of arrays for multi-input models)."""

    def __init__(self, x, y, sample_weight, batch_size, shuffle, steps=None):
        self.x, self.y, self.sw = x, y, sample_weight
        self.n = _num_samples(x)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.passes = math.ceil(self.n / batch_size)
        self.steps = steps or self.passes
        self._order = None
        self._position = 0   # next batch index within the current pass
        self._buffers = {}

    def epoch(self):
        """Yield (x, y, sample_weight) for one epoch."""
        for _ in range(self.steps):
            if self._position == 0:
                self._order = backend.get_rng().permutation(self.n) if self.shuffle else None
            start = self._position * self.batch_size
            stop = min(start + self.batch_size, self.n)
            self._position = (self._position + 1) % self.passes
            if self._order is None:
                sel = slice(start, stop)   # views, no copies
                yield (_take(self.x, sel), None if self.y is None else _take(self.y, sel),
                       None if self.sw is None else self.sw[sel])
                continue
            sel = np.sort(self._order[start:stop])  # sorted rows: faster gathers, same batch
            yield (self._gather("x", self.x, sel), None if self.y is None else self._gather("y", self.y, sel),
                   None if self.sw is None else self.sw[sel])

    def _gather(self, key, arrays, sel):
        """Shuffled rows gathered into buffers allocated once per fit (the layers only read
        their inputs, and each step finishes before the next gather)."""
        if isinstance(arrays, list):
            return [self._gather((key, i), a, sel) for i, a in enumerate(arrays)]
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = np.empty((self.batch_size,) + arrays.shape[1:], dtype=arrays.dtype)
        out = buf[:len(sel)]
        np.take(arrays, sel, axis=0, out=out)
        return out


class _IterableBatches:
    """Batches from any iterable of (x, y) or (x, y, sample_weight) tuples: generators, lists of
    batches, or flow objects (re-iterated each epoch when iter() gives a fresh iterator)."""

    def __init__(self, data, steps, where, needs_targets=True):
        if not hasattr(data, "__iter__") and hasattr(data, "__getitem__") and hasattr(data, "__len__"):
            data = _IndexedBatches(data)   # a Keras Sequence / PyDataset: batches by index
        if not hasattr(data, "__iter__"):
            raise TypeError(f"{where}: x must be a NumPy array, a list of arrays, or an iterable "
                            f"of (x, y) batches; got {type(data).__name__}")
        self.data = data
        self.where = where
        self.needs_targets = needs_targets
        self.reiterable = iter(data) is not data
        if steps is None and hasattr(data, "__len__"):
            steps = len(data)
        self.steps = steps
        self._it = iter(data)
        self.exhausted = False

    def _next(self, allow_restart):
        try:
            return next(self._it)
        except StopIteration:
            if allow_restart and self.reiterable:
                self._it = iter(self.data)
                try:
                    return next(self._it)
                except StopIteration:
                    return None
            return None

    def epoch(self):
        if self.steps is None:
            if self.reiterable:
                self._it = iter(self.data)
            got = 0
            while True:
                batch = self._next(allow_restart=False)
                if batch is None:
                    break
                got += 1
                yield self._split(batch)
            if got == 0:
                self.exhausted = True
            return
        for _ in range(self.steps):
            batch = self._next(allow_restart=True)
            if batch is None:
                self.exhausted = True
                return
            yield self._split(batch)

    def _split(self, batch):
        if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
            x, y = batch[0], batch[1]
            sw = batch[2] if len(batch) == 3 else None
        elif not self.needs_targets:
            x, y, sw = (batch[0] if isinstance(batch, (tuple, list)) and len(batch) == 1 else batch), None, None
        else:
            raise ValueError(f"{self.where}: each batch must be a tuple (x, y) or (x, y, "
                             f"sample_weight); got {type(batch).__name__}"
                             f"{' of length ' + str(len(batch)) if isinstance(batch, (tuple, list)) else ''}")
        return x, y, (None if sw is None else np.asarray(sw))


class _IndexedBatches:
    """Iterates ``data[0] .. data[len(data) - 1]`` each pass, then calls ``data.on_epoch_end()``
    when it exists (the Keras Sequence protocol)."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        n = len(self.data)
        for i in range(n):
            batch = self.data[i]
            if i == n - 1 and hasattr(self.data, "on_epoch_end"):
                self.data.on_epoch_end()   # the last batch is already fetched: safe to reshuffle
            yield batch


def _num_samples(x):
    return x[0].shape[0] if isinstance(x, list) else x.shape[0]


def _take(x, sel):
    if isinstance(x, list):
        return [a[sel] for a in x]
    return x[sel]


def _class_labels(y):
    """Integer class labels of classification targets (one-hot or sparse), else None."""
    if y.ndim >= 2 and y.shape[-1] > 1:
        return y.reshape(-1, y.shape[-1]).argmax(axis=-1) if y.ndim == 2 else None
    labels = y.reshape(y.shape[0], -1)[:, 0] if y.ndim > 1 else y
    if labels.dtype.kind in "biu" or (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        return labels.astype(np.int64)
    return None


def _warn_if_sorted_split(y_train, y_val, fraction):
    """Keras takes the validation split from the *last* rows; on class-sorted data it then holds
    only a few classes (a classic source of 0 % validation accuracy)."""
    train, val = _class_labels(y_train), _class_labels(y_val)
    if train is None or val is None:
        return
    n_train, n_val = len(np.unique(train)), len(np.unique(val))
    if n_train >= 3 and len(val) >= 2 * n_train and n_val * 2 <= n_train:
        warnings.warn(f"fit: the validation split (the last {fraction:.0%} of the rows, taken before "
                      f"shuffling, as in Keras) contains {n_val} of the {n_train} classes in the "
                      "training part; if the data is sorted by class, shuffle it before fit",
                      UserWarning, stacklevel=3)


def _prefix_logs(logs, prefix):
    return {prefix + k: v for k, v in logs.items()}


class Model(Layer):
    """Base class of Sequential and the functional Model.

    ``pycnn.models.Model(inputs, outputs, name=None)`` builds a functional model (like Keras)."""

    _multi_output = False   # a functional model with several outputs sets it

    def __new__(cls, *args, **kwargs):
        if cls is Model:
            from pycnn.models.functional import Functional
            return super().__new__(Functional)
        return super().__new__(cls)

    def __init__(self, name=None, trainable=True, dtype="float32", **kwargs):
        super().__init__(name=name, trainable=trainable, dtype=dtype, **kwargs)
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._metric_specs = []
        self._metrics = None
        self._metrics_key = None
        self._loss_obj = None

    # ------------------------------------------------------------------ graph (subclasses)
    @property
    def layers(self):
        raise TypeError(f"{type(self).__name__} must define layers")

    def _leaf_layers(self):
        """Every non-model layer, recursively through nested models."""
        out = []
        for layer in self.layers:
            if isinstance(layer, Model):
                out.extend(layer._leaf_layers())
            else:
                out.append(layer)
        return out

    def get_layer(self, name=None, index=None):
        """The layer called ``name`` (or at position ``index`` of ``model.layers``)."""
        if index is not None:
            if name is not None:
                raise ValueError("get_layer: pass name or index, not both")
            layers = self.layers
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"get_layer: index must be in [0, {len(layers)}); got {index}")
            return layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r} in model '{self.name}'; layers are "
                         f"{[l.name for l in self.layers]}")

    def _cast(self, x):
        """Models pass inputs through unchanged; their first layers cast to their own dtype."""
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{type(self).__name__} '{self.name}': input must be a real numeric "
                            f"array; got dtype {x.dtype}")
        return x

    def backward(self, grad):
        """Gradient with respect to the model's inputs (sets .grad on every weight)."""
        return self._backward(grad, need_input_grad=True, fused=False)

    def _stateful_variables(self):
        """Non-trainable variables of trainable leaf layers: state a training forward pass may
        update (BatchNormalization moving statistics)."""
        out = []
        for layer in self._leaf_layers():
            if layer.trainable:
                out.extend(v for v in layer._variables if not v.trainable)
        return out

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Configure training: ``optimizer`` (name or object), ``loss`` (name or Loss),
        ``metrics`` (list of names or Metric objects; 'accuracy' is resolved from the shapes of
        the first batch and keeps its name). ``loss_weights``/``weighted_metrics`` must be None;
        ``run_eagerly``/``steps_per_execution``/``jit_compile``/``auto_scale_loss`` are accepted
        for compatibility and have no effect (pycnn always runs eagerly)."""
        if loss is None:
            raise ValueError("Model.compile: loss must be given (e.g. loss='categorical_crossentropy'); "
                             "got None")
        if loss_weights is not None or weighted_metrics is not None:
            raise ValueError("Model.compile: loss_weights and weighted_metrics must be None (single-"
                             "output models only)")
        if isinstance(loss, (list, tuple, dict)):
            raise ValueError(f"Model.compile: loss must be a single loss (pycnn trains single-output "
                             f"models); got {type(loss).__name__}")
        self.optimizer = optimizers_module.get(optimizer)
        self._loss_obj = losses_module.get(loss)
        self.loss = loss
        if metrics is None:
            metrics = []
        elif isinstance(metrics, (str, metrics_module.Metric)):
            metrics = [metrics]
        elif isinstance(metrics, dict):
            raise ValueError("Model.compile: metrics must be a list; got a dict (single-output models)")
        for m in metrics:
            if not isinstance(m, (str, metrics_module.Metric)):
                raise TypeError(f"Model.compile: each metric must be a name or a pycnn.metrics.Metric; "
                                f"got {type(m).__name__}")
            if isinstance(m, str):
                metrics_module.get(m, (None, 2), (None, 2))  # validates the name now
        self._metric_specs = list(metrics)
        self._metrics = None
        self.compiled = True
        self.stop_training = False

    @property
    def metrics_names(self):
        names = ["loss"]
        if self._metrics is not None:
            names += [m.name for m in self._metrics]
        else:
            names += [m if isinstance(m, str) else m.name for m in self._metric_specs]
        return names

    def _compile_config(self):
        if not self.compiled:
            return None
        specs = []
        for m in self._metric_specs:
            if not isinstance(m, str):
                return {"optimizer": optimizers_module.serialize(self.optimizer),
                        "loss": losses_module.serialize(self._loss_obj), "metrics": None}
            specs.append(m)
        return {"optimizer": optimizers_module.serialize(self.optimizer),
                "loss": losses_module.serialize(self._loss_obj), "metrics": specs}

    def _compile_from_config(self, config):
        self.compile(optimizer=optimizers_module.deserialize(config["optimizer"]),
                     loss=losses_module.deserialize(config["loss"]),
                     metrics=config.get("metrics") or None)

    def _require_compiled(self, where):
        if not self.compiled:
            raise ValueError(f"Model.{where}: the model must be compiled before {where}(); got an "
                             f"uncompiled model (call model.compile(optimizer='adam', "
                             f"loss='categorical_crossentropy', metrics=['accuracy']) first)")

    def _resolve_metrics(self, y_true, y_pred):
        """Create metric objects once the target and prediction shapes are known."""
        key = (np.shape(y_true)[1:], y_pred.shape[1:])      # per-sample shapes, not the batch size
        if self._metrics is not None and self._metrics_key == key:
            return
        self._metrics = [metrics_module.get(m, np.shape(y_true), y_pred.shape) for m in self._metric_specs]
        self._metrics_key = key

    # ------------------------------------------------------------------ fused output
    def _fusion(self):
        """How the loss combines with the output activation: None, or (kind, layer) where kind
        'layer' means the whole output layer is the activation and 'attribute' means the layer
        applies it after its own computation (Dense/Conv activation=)."""
        loss = self._loss_obj
        want = getattr(loss, "fusable_activation", None)
        if want is None or getattr(loss, "from_logits", True):
            return None
        layer = self._output_layer()
        if layer is None:
            return None
        target = activations.softmax if want == "softmax" else activations.sigmoid
        name = type(layer).__name__
        if name == "Softmax" and want == "softmax" and getattr(layer, "axis", None) == -1:
            return ("layer", layer)
        if getattr(layer, "activation", None) is target:
            return ("layer" if name == "Activation" else "attribute", layer)
        return None

    # ------------------------------------------------------------------ one step
    def _loss_and_grad(self, y_true, y_pred, sample_weight, fusion):
        loss = self._loss_obj
        if fusion is None:
            return loss.value_and_grad(y_true, y_pred, sample_weight)
        return loss.value(y_true, y_pred, sample_weight), loss.logits_grad(y_true, y_pred, sample_weight)

    def _train_step(self, x, y, sample_weight, plan):
        """Forward, loss, backward, update. Returns (batch loss incl. regularization, y_pred) or
        (non-finite loss, None) when the step was not applied."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # a diverging step is reported once, by the non-finite check, not by NumPy warnings
            return self._train_step_unchecked(x, y, sample_weight, plan)

    def _train_step_unchecked(self, x, y, sample_weight, plan):
        fusion, trainable, regularized, stateful, snapshots = plan
        for var, buf in zip(stateful, snapshots):
            np.copyto(buf, var.value)
        y_pred = self(x, training=True)
        y_true = self._loss_obj.prepare_targets(y, y_pred.shape)
        value, grad = self._loss_and_grad(y_true, y_pred, sample_weight, fusion)
        if regularized:
            value += sum(float(v.regularizer(v.value)) for v in regularized)
        if not math.isfinite(value):
            self._restore(stateful, snapshots)
            return value, None
        for v in trainable:
            v.grad = None
        self._backward(grad, need_input_grad=False, fused=fusion is not None)
        pairs = [(v.grad, v) for v in trainable if v.grad is not None]
        for g, _ in pairs:
            if not np.isfinite(g).all():
                self._restore(stateful, snapshots)
                return float("nan"), None
        self.optimizer.apply_gradients(pairs)
        return value, y_pred

    @staticmethod
    def _restore(stateful, snapshots):
        for var, buf in zip(stateful, snapshots):
            np.copyto(var.value, buf)

    def _training_plan(self):
        stateful = self._stateful_variables()
        return (self._fusion(), self.trainable_weights,
                [v for v in self.trainable_weights + self.non_trainable_weights if v.regularizer is not None],
                stateful, [np.empty_like(v.value) for v in stateful])

    # ------------------------------------------------------------------ data validation
    def _standardize_arrays(self, where, x, y, sample_weight=None, need_y=True):
        if isinstance(x, (list, tuple)) and x and all(_is_array_like(a) for a in x):
            x = [np.asarray(a) for a in x]
        else:
            x = np.asarray(x)
        arrays = x if isinstance(x, list) else [x]
        for a in arrays:
            if a.dtype.kind not in "biuf":
                raise TypeError(f"Model.{where}: x must be a numeric array; got dtype {a.dtype}")
            if a.ndim == 0:
                raise ValueError(f"Model.{where}: x must have a sample axis; got a scalar")
        n = arrays[0].shape[0]
        for a in arrays[1:]:
            if a.shape[0] != n:
                raise ValueError(f"Model.{where}: all inputs must have the same number of samples; got "
                                 f"{[b.shape[0] for b in arrays]}")
        if n == 0:
            raise ValueError(f"Model.{where}: x must contain at least one sample; got x.shape="
                             f"{arrays[0].shape}")
        if y is None:
            if need_y:
                raise ValueError(f"Model.{where}: y must be given with array inputs (or pass an "
                                 "iterable of (x, y) batches as x)")
        else:
            y = np.asarray(y)
            if y.ndim == 0 or y.shape[0] != n:
                raise ValueError(f"Model.{where}: x and y must have the same number of samples; got x "
                                 f"with {n} (x.shape={arrays[0].shape}) and y with "
                                 f"{y.shape[0] if y.ndim else 0} (y.shape={y.shape})")
            if y.dtype.kind not in "biuf":
                raise TypeError(f"Model.{where}: y must be numeric; got dtype {y.dtype}")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.ndim == 2 and sample_weight.shape[1] == 1:
                sample_weight = sample_weight[:, 0]
            if sample_weight.shape != (n,):
                raise ValueError(f"Model.{where}: sample_weight must have shape ({n},); got "
                                 f"{sample_weight.shape}")
        return x, y, sample_weight

    @staticmethod
    def _class_weights(class_weight, y, sample_weight):
        if not isinstance(class_weight, dict) or not class_weight:
            raise ValueError(f"Model.fit: class_weight must be a non-empty dict {{class: weight}}; "
                             f"got {class_weight!r}")
        labels = y.argmax(axis=-1) if (y.ndim > 1 and y.shape[-1] > 1) else y.reshape(y.shape[0], -1)[:, 0]
        labels = labels.astype(np.int64)
        largest = max(int(k) for k in class_weight)
        table = np.ones(max(largest, int(labels.max()) if labels.size else 0) + 1)
        for k, w in class_weight.items():
            if int(k) < 0:
                raise ValueError(f"Model.fit: class_weight keys must be class indices >= 0; got {k}")
            table[int(k)] = float(w)
        weights = table[labels]
        return weights if sample_weight is None else weights * sample_weight

    # ------------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs on arrays ``(x, y)`` or on an iterable of ``(x, y)`` /
        ``(x, y, sample_weight)`` batches (generator, flow object with ``__len__``, list).
        Returns a History whose ``history`` dict has 'loss', each metric name, 'val_' copies when
        validating, and 'learning_rate' when an LR callback writes it."""
        self._require_compiled("fit")
        verbose = _verbosity("Model.fit", verbose)
        batch_size = 32 if batch_size is None else _check_positive_int("Model.fit", "batch_size", batch_size)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"Model.fit: epochs must be an integer >= 0; got {epochs!r}")
        if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)) or initial_epoch < 0:
            raise ValueError(f"Model.fit: initial_epoch must be an integer >= 0; got {initial_epoch!r}")
        steps_per_epoch = _check_positive_int("Model.fit", "steps_per_epoch", steps_per_epoch, allow_none=True)
        validation_freq = _check_positive_int("Model.fit", "validation_freq", validation_freq)
        if not (isinstance(validation_split, (int, float)) and 0.0 <= validation_split < 1.0):
            raise ValueError(f"Model.fit: validation_split must be a float in [0, 1); got "
                             f"{validation_split!r}")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise ValueError(f"Model.fit: shuffle must be True or False; got {shuffle!r}")

        if x is not None and (_is_array_like(x) or (isinstance(x, (list, tuple)) and x and all(_is_array_like(a) for a in x))):
            x, y, sample_weight = self._standardize_arrays("fit", x, y, sample_weight)
            if class_weight is not None:
                sample_weight = self._class_weights(class_weight, y, sample_weight)
            if validation_data is None and validation_split:
                n = _num_samples(x)
                split = int(n * (1.0 - validation_split))
                if split == 0 or split == n:
                    raise ValueError(f"Model.fit: validation_split={validation_split} leaves "
                                     f"{split} training and {n - split} validation samples of {n}; "
                                     "both must be non-empty")
                _warn_if_sorted_split(y[:split], y[split:], validation_split)
                validation_data = (_take(x, slice(split, None)), y[split:]) + \
                    (() if sample_weight is None else (sample_weight[split:],))
                x, y = _take(x, slice(0, split)), y[:split]
                sample_weight = None if sample_weight is None else sample_weight[:split]
            data = _Batches(x, y, sample_weight, batch_size, bool(shuffle), steps_per_epoch)
        else:
            if y is not None:
                raise ValueError("Model.fit: y must be None when x is an iterable of (x, y) batches; "
                                 f"got y of type {type(y).__name__}")
            if validation_split:
                raise ValueError("Model.fit: validation_split needs array inputs; pass "
                                 "validation_data with a generator")
            if class_weight is not None or sample_weight is not None:
                raise ValueError("Model.fit: class_weight/sample_weight need array inputs; yield "
                                 "(x, y, sample_weight) batches from the generator instead")
            if x is None:
                raise ValueError("Model.fit: x must be given; got None")
            data = _IterableBatches(x, steps_per_epoch, "Model.fit")

        if validation_data is not None:
            validation_data = self._validation_source(validation_data, validation_batch_size or batch_size,
                                                      validation_steps)

        history = callbacks_module.History()
        cb_list = list(callbacks or [])
        if isinstance(callbacks, callbacks_module.Callback):
            cb_list = [callbacks]
        cbs = callbacks_module.CallbackList(cb_list + [history], self,
                                            {"verbose": verbose, "epochs": epochs, "steps": data.steps})
        self.stop_training = False
        self.history = history
        plan = None
        cbs.call("on_train_begin", None)
        target = data.steps
        for epoch in range(initial_epoch, epochs):
            for m in self._metrics or []:
                m.reset_state()
            loss_total, loss_count = 0.0, 0
            cbs.call("on_epoch_begin", epoch, None)
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}", file=sys.stdout, flush=True)
            bar = Progbar(target, verbose=verbose) if verbose else None
            logs, step, bad = {}, 0, None
            for step_index, (xb, yb, swb) in enumerate(data.epoch()):
                if yb is None:
                    raise ValueError("Model.fit: batches must include targets: (x, y) or (x, y, "
                                     "sample_weight)")
                cbs.call("on_train_batch_begin", step_index, None)
                if plan is None:
                    if not self.built:
                        self(xb if isinstance(xb, list) else np.asarray(xb)[:1], training=False)
                    plan = self._training_plan()
                value, y_pred = self._train_step(xb, yb, swb, plan)
                n_batch = _num_samples(xb) if isinstance(xb, list) else len(xb)
                if y_pred is None:
                    bad = value
                    logs = self._epoch_logs(float("nan"), 1)
                    self._warn_nonfinite(value, epoch, step_index)
                    cbs.call("on_train_batch_end", step_index, logs)
                    self.stop_training = True
                    break
                loss_total += value * n_batch
                loss_count += n_batch
                self._resolve_metrics(yb, y_pred)
                for m in self._metrics:
                    m.update_state(yb, y_pred)
                step = step_index + 1
                logs = self._epoch_logs(loss_total, loss_count)
                if bar is not None:
                    bar.update(step, logs.items(), finalize=False)
                cbs.call("on_train_batch_end", step_index, logs)
                if self.stop_training:
                    break
            if step == 0 and bad is None:
                if isinstance(data, _IterableBatches) and data.exhausted:
                    warnings.warn("Model.fit: the input ran out of data; training stopped (give "
                                  "steps_per_epoch, or make the generator repeat: it must yield "
                                  "steps_per_epoch * epochs batches)", RuntimeWarning, stacklevel=2)
                    break
            if target is None:
                target = step  # unknown length: the next epochs know it from the first
            epoch_logs = dict(logs)
            if (bad is None and validation_data is not None and (epoch + 1) % validation_freq == 0):
                val_logs = self._evaluate_source(validation_data)
                epoch_logs.update(_prefix_logs(val_logs, "val_"))
            if bar is not None:
                bar.target = bar.target or step
                bar.update(step, epoch_logs.items(), finalize=True)
            cbs.call("on_epoch_end", epoch, epoch_logs)
            if self.stop_training:
                break
        cbs.call("on_train_end", None)
        return history

    def _warn_nonfinite(self, value, epoch, batch):
        warnings.warn(f"fit: loss became {value} at epoch {epoch + 1}, batch {batch + 1} "
                      f"(learning_rate={self.optimizer.learning_rate:g}); training stopped and the "
                      "weights from before this step were kept (try a lower learning_rate, "
                      "clipnorm=1.0, or check the inputs for nan/inf)", RuntimeWarning, stacklevel=3)

    def _epoch_logs(self, loss_total, loss_count):
        logs = {"loss": loss_total / loss_count if loss_count else float("nan")}
        for m in self._metrics or []:
            logs[m.name] = m.result()
        return {k: logs[k] for k in sorted(logs)}

    def _validation_source(self, validation_data, batch_size, steps):
        if isinstance(validation_data, tuple) and len(validation_data) in (2, 3) and all(
                _is_array_like(a) or isinstance(a, list) for a in validation_data if a is not None):
            vx, vy = validation_data[0], validation_data[1]
            vsw = validation_data[2] if len(validation_data) == 3 else None
            vx, vy, vsw = self._standardize_arrays("fit", vx, vy, vsw)
            return ("arrays", vx, vy, vsw, batch_size)
        return ("iterable", validation_data, steps)

    def _evaluate_source(self, source):
        if source[0] == "arrays":
            _, vx, vy, vsw, bs = source
            batches = _Batches(vx, vy, vsw, bs, shuffle=False)
        else:
            batches = _IterableBatches(source[1], source[2], "Model.fit validation_data")
        with packed_kernels():
            return self._test_loop(batches, verbose=0, callbacks=None)

    # ------------------------------------------------------------------ evaluate / predict
    def _test_loop(self, batches, verbose, callbacks):
        if self._metrics is not None:
            for m in self._metrics:
                m.reset_state()
        loss_total, loss_count = 0.0, 0
        bar = Progbar(batches.steps, verbose=verbose) if verbose else None
        if callbacks is not None:
            callbacks.call("on_test_begin", None)
        step = 0
        for step_index, (xb, yb, swb) in enumerate(batches.epoch()):
            if callbacks is not None:
                callbacks.call("on_test_batch_begin", step_index, None)
            value, y_pred = self._test_step(xb, yb, swb)
            n_batch = _num_samples(xb) if isinstance(xb, list) else len(xb)
            loss_total += value * n_batch
            loss_count += n_batch
            step = step_index + 1
            logs = self._epoch_logs(loss_total, loss_count)
            if bar is not None:
                bar.update(step, logs.items(), finalize=False)
            if callbacks is not None:
                callbacks.call("on_test_batch_end", step_index, logs)
        if step == 0:
            raise ValueError("Model.evaluate: the data must contain at least one batch; got none")
        logs = self._epoch_logs(loss_total, loss_count)
        if bar is not None:
            bar.target = bar.target or step
            bar.update(step, logs.items(), finalize=True)
        if callbacks is not None:
            callbacks.call("on_test_end", logs)
        return logs

    def _test_step(self, x, y, sample_weight):
        if y is None:
            raise ValueError("Model.evaluate: batches must include targets: (x, y)")
        y_pred = self(x, training=False)
        loss = self._loss_obj
        y_true = loss.prepare_targets(y, y_pred.shape)
        value = loss.value(y_true, y_pred, sample_weight)
        value += sum(float(v.regularizer(v.value)) for v in self.weights if v.regularizer is not None)
        self._resolve_metrics(y, y_pred)
        for m in self._metrics:
            m.update_state(y, y_pred)
        return value, y_pred

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Loss (and metrics) on the data in inference mode: a float when there are no metrics,
        else ``[loss, *metrics]`` in ``metrics_names`` order, or a dict with ``return_dict``."""
        self._require_compiled("evaluate")
        verbose = _verbosity("Model.evaluate", verbose)
        batch_size = 32 if batch_size is None else _check_positive_int("Model.evaluate", "batch_size", batch_size)
        steps = _check_positive_int("Model.evaluate", "steps", steps, allow_none=True)
        if x is not None and (_is_array_like(x) or (isinstance(x, (list, tuple)) and x and all(_is_array_like(a) for a in x))):
            x, y, sample_weight = self._standardize_arrays("evaluate", x, y, sample_weight)
            batches = _Batches(x, y, sample_weight, batch_size, shuffle=False, steps=steps)
            batches.steps = min(batches.steps, batches.passes)   # one pass at most, as Keras
        else:
            if x is None:
                raise ValueError("Model.evaluate: x must be given; got None")
            batches = _IterableBatches(x, steps, "Model.evaluate")
        cbs = None
        if callbacks:
            cbs = callbacks_module.CallbackList(list(callbacks), self,
                                                {"verbose": verbose, "epochs": 1, "steps": batches.steps})
        with _kernels_packed_unless(cbs):
            logs = self._test_loop(batches, verbose, cbs)
        if return_dict:
            return logs
        if not self._metrics:
            return logs["loss"]
        return [logs["loss"]] + [logs[m.name] for m in self._metrics]

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` (array, list of arrays, or iterable of batches) in inference mode,
        computed ``batch_size`` samples at a time into one preallocated array."""
        verbose = _verbosity("Model.predict", verbose)
        batch_size = 32 if batch_size is None else _check_positive_int("Model.predict", "batch_size", batch_size)
        steps = _check_positive_int("Model.predict", "steps", steps, allow_none=True)
        cbs = None
        if callbacks:
            cbs = callbacks_module.CallbackList(list(callbacks), self, {"verbose": verbose, "epochs": 1})
        with _kernels_packed_unless(cbs):
            return self._predict_batches(x, batch_size, verbose, steps, cbs)

    def _predict_batches(self, x, batch_size, verbose, steps, cbs):
        if _is_array_like(x) or (isinstance(x, (list, tuple)) and x and all(_is_array_like(a) for a in x)):
            x, _, _ = self._standardize_arrays("predict", x, None, need_y=False)
            n = _num_samples(x)
            batches = _Batches(x, None, None, batch_size, shuffle=False, steps=steps)
            batches.steps = min(batches.steps, batches.passes)
            out = None
            bar = Progbar(batches.steps, verbose=verbose) if verbose else None
            if cbs:
                cbs.call("on_predict_begin", None)
            for i, (xb, _, _) in enumerate(batches.epoch()):
                if cbs:
                    cbs.call("on_predict_batch_begin", i, None)
                yb = self(xb, training=False)
                parts = list(yb) if isinstance(yb, (list, tuple)) else [yb]   # one array per output
                if out is None:
                    rows = min(n, batches.steps * batch_size)
                    out = [np.empty((rows,) + p.shape[1:], dtype=p.dtype) for p in parts]
                start = i * batch_size
                for buffer, part in zip(out, parts):
                    buffer[start:start + len(part)] = part
                if bar is not None:
                    bar.update(i + 1, finalize=i + 1 == batches.steps)
                if cbs:
                    cbs.call("on_predict_batch_end", i, {"outputs": yb})
            if cbs:
                cbs.call("on_predict_end", None)
            return out if self._multi_output else out[0]
        batches = _IterableBatches(x, steps, "Model.predict", needs_targets=False)
        outs = []
        for i, (xb, _, _) in enumerate(batches.epoch()):
            outs.append(np.array(self(xb, training=False)))
        if not outs:
            raise ValueError("Model.predict: the data must contain at least one batch; got none")
        return np.concatenate(outs, axis=0)

    # ------------------------------------------------------------------ on_batch
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and metrics) of that batch."""
        self._require_compiled("train_on_batch")
        x, y, sample_weight = self._standardize_arrays("train_on_batch", x, y, sample_weight)
        if class_weight is not None:
            sample_weight = self._class_weights(class_weight, y, sample_weight)
        if not self.built:
            self(x if isinstance(x, list) else x[:1], training=False)
        value, y_pred = self._train_step(x, y, sample_weight, self._training_plan())
        if y_pred is None:
            self._warn_nonfinite(value, 0, 0)
            logs = {"loss": value}
        else:
            self._resolve_metrics(y, y_pred)
            for m in self._metrics:
                m.reset_state()
                m.update_state(y, y_pred)
            logs = self._epoch_logs(value, 1)
        return self._format_batch_result(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) of one batch in inference mode."""
        self._require_compiled("test_on_batch")
        x, y, sample_weight = self._standardize_arrays("test_on_batch", x, y, sample_weight)
        for m in self._metrics or []:
            m.reset_state()
        value, _ = self._test_step(x, y, sample_weight)
        return self._format_batch_result(self._epoch_logs(value, 1), return_dict)

    def predict_on_batch(self, x):
        """Outputs for one batch in inference mode."""
        x, _, _ = self._standardize_arrays("predict_on_batch", x, None, need_y=False)
        return np.array(self(x, training=False))

    def _format_batch_result(self, logs, return_dict):
        if return_dict:
            return logs
        if not self._metrics:
            return logs["loss"]
        return [logs["loss"]] + [logs[m.name] for m in self._metrics]

    # ------------------------------------------------------------------ summary
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print the Keras 3 style table (to stdout, or line by line through ``print_fn``).
        ``summary_string()`` returns the same text instead of printing it."""
        from pycnn.models.summary import format_summary
        text = format_summary(self, line_length=line_length, positions=positions,
                              expand_nested=expand_nested, show_trainable=show_trainable,
                              layer_range=layer_range)
        if print_fn is None:
            print(text)
        else:
            for line in text.split("\n"):
                print_fn(line)

    def summary_string(self, line_length=None, positions=None, expand_nested=False,
                       show_trainable=False, layer_range=None):
        """The text ``summary()`` prints, as a string (for graders and tests)."""
        from pycnn.models.summary import format_summary
        return format_summary(self, line_length=line_length, positions=positions,
                              expand_nested=expand_nested, show_trainable=show_trainable,
                              layer_range=layer_range)

    # ------------------------------------------------------------------ saving
    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Save architecture, weights, compile settings and optimizer state to one file in pycnn's
        format (any extension; see pycnn.models.saving). Atomic: an interrupted save leaves the
        previous file intact."""
        from pycnn.models import saving
        if not overwrite and os.path.exists(filepath):
            raise ValueError(f"Model.save: {filepath!r} exists and overwrite=False")
        saving.save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        """Save only the weights (load with ``load_weights`` into the same architecture)."""
        from pycnn.models import saving
        if not overwrite and os.path.exists(filepath):
            raise ValueError(f"Model.save_weights: {filepath!r} exists and overwrite=False")
        saving.save_weights(self, filepath)

    def load_weights(self, filepath, skip_mismatch=False, strict=False):
        """Load weights from a file written by ``save_weights`` or ``save``. Every tensor is checked
        against the model before any is assigned; mismatches raise ModelFileError naming the
        layer and both shapes (``skip_mismatch=True`` skips those tensors instead)."""
        from pycnn.models import saving
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch, strict=strict)

    def _config_class_name(self):
        return type(self).__name__

    def to_json(self):
        import json
        return json.dumps({"class_name": self._config_class_name(), "config": self.get_config()})
