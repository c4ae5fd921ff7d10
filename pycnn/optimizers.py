"""Optimizers with Keras 3's update rules and defaults.

Each optimizer updates ``Variable.value`` in place from ``Variable.grad``:

    opt.apply(model.trainable_weights)                 # uses each variable's .grad
    opt.apply_gradients([(grad, variable), ...])       # Keras's form

Gradient clipping (applied before the update, as in Keras): ``clipnorm`` clips each variable's
gradient to that L2 norm, ``global_clipnorm`` clips all gradients jointly, ``clipvalue`` clips
element-wise. At most one of them may be set.

Adam uses Keras's epsilon placement: ``theta -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m /
(sqrt(v) + epsilon)`` -- epsilon is added to the *uncorrected* sqrt(v) (PyTorch adds it after bias
correction, so the two differ when sqrt(v) is comparable to epsilon).
"""
import math

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "get", "serialize", "deserialize"]


def _check_number(owner, name, value, low=None, high=None, low_open=False, high_open=False):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else ("> " if low_open else ">= ") + f"{low:g}"
        hi = "" if high is None else ("< " if high_open else "<= ") + f"{high:g}"
        rule = " and ".join(part for part in (lo, hi) if part)
        raise ValueError(f"{owner}: {name} must be a finite number{' ' + rule if rule else ''}; "
                         f"got {value!r}")
    return value


class Optimizer:
    """Base class: learning rate, iteration counter, clipping, per-variable slot state."""

    #: names of the per-variable slots (each the shape of its variable)
    slot_names = ()

    def __init__(self, learning_rate, name=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, weight_decay=None):
        owner = type(self).__name__
        self._learning_rate = _check_number(owner, "learning_rate", learning_rate, low=0,
                                            low_open=True)
        given = [k for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                ("global_clipnorm", global_clipnorm)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"{owner}: only one of clipnorm, clipvalue and global_clipnorm may be "
                             f"set; got {', '.join(given)}")
        self.clipnorm = None if clipnorm is None else _check_number(owner, "clipnorm", clipnorm, 0, low_open=True)
        self.clipvalue = None if clipvalue is None else _check_number(owner, "clipvalue", clipvalue, 0, low_open=True)
        self.global_clipnorm = (None if global_clipnorm is None else
                                _check_number(owner, "global_clipnorm", global_clipnorm, 0, low_open=True))
        self.weight_decay = (None if weight_decay is None else
                             _check_number(owner, "weight_decay", weight_decay, 0))
        self.name = name or _snake(owner)
        self.iterations = 0
        self._slots = {}          # id(variable) -> {slot name: array}
        self._variables = []      # variables the state was built for, in order

    # -- learning rate -------------------------------------------------------------------------
    @property
    def learning_rate(self):
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        # Schedules may anneal to exactly zero, so >= 0 here (the constructor requires > 0).
        self._learning_rate = _check_number(type(self).__name__, "learning_rate", value, low=0)

    lr = learning_rate

    # -- state ---------------------------------------------------------------------------------
    @property
    def built(self):
        return bool(self._variables)

    def build(self, variables):
        """Create the slots for ``variables`` (done automatically on the first update)."""
        for var in variables:
            if id(var) not in self._slots:
                self._slots[id(var)] = self._make_slots(var)
                self._variables.append(var)

    def _make_slots(self, var):
        return {name: np.zeros_like(var.value) for name in self.slot_names}

    def count_params(self):
        """Number of optimizer variables like Keras's summary: iterations + learning_rate + every
        slot element (0 before the first update)."""
        if not self.built:
            return 0
        return 2 + sum(a.size for slots in self._slots.values() for a in slots.values())

    def state_nbytes(self):
        """Bytes of the optimizer variables as Keras's summary counts them (4 bytes each for the
        iteration counter and the learning rate)."""
        if not self.built:
            return 0
        return 4 + 4 + sum(a.nbytes for slots in self._slots.values() for a in slots.values())

    def get_state(self):
        """[(name, array)] of the iteration counter and every slot, in build order."""
        state = [("iterations", np.array(self.iterations, dtype=np.int64))]
        for i, var in enumerate(self._variables):
            for slot, arr in self._slots[id(var)].items():
                state.append((f"{i}/{var.name}/{slot}", arr))
        return state

    def set_state(self, variables, state):
        """Restore ``get_state()`` output for ``variables`` (the same order as when saved)."""
        state = dict(state)
        self._slots = {}
        self._variables = []
        self.build(variables)
        for i, var in enumerate(self._variables):
            for slot, arr in self._slots[id(var)].items():
                key = f"{i}/{var.name}/{slot}"
                if key not in state or state[key].shape != arr.shape:
                    raise ValueError(f"{type(self).__name__}.set_state: missing or mis-shaped slot "
                                     f"{key!r}")
                arr[...] = state[key]
        self.iterations = int(state["iterations"])

    # -- updates -------------------------------------------------------------------------------
    def apply(self, variables):
        """One update of every variable in ``variables`` from its ``.grad`` (None grads skipped)."""
        pairs = [(v.grad, v) for v in variables if v.grad is not None]
        self.apply_gradients(pairs)

    def apply_gradients(self, grads_and_vars):
        pairs = [(np.asarray(g), v) for g, v in grads_and_vars if g is not None]
        for g, v in pairs:
            if g.shape != v.value.shape:
                raise ValueError(f"{type(self).__name__}: gradient for '{v.name}' must have the "
                                 f"variable's shape {v.value.shape}; got {g.shape}")
        grads = self._clip([g for g, _ in pairs])
        self.build([v for _, v in pairs])
        self.iterations += 1
        lr = self._learning_rate
        for g, (_, var) in zip(grads, pairs):
            if g.dtype != var.value.dtype:
                g = g.astype(var.value.dtype)
            if self.weight_decay:
                var.value -= var.value * (lr * self.weight_decay)
            self._update(var.value, g, self._slots[id(var)], lr)

    def _clip(self, grads):
        if self.clipnorm is not None:
            out = []
            for g in grads:
                norm = math.sqrt(float(np.vdot(g, g)))
                out.append(g * (self.clipnorm / norm) if norm > self.clipnorm else g)
            return out
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            if norm > self.global_clipnorm:
                return [g * (self.global_clipnorm / norm) for g in grads]
            return grads
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    def _update(self, value, grad, slots, lr):
        raise TypeError(f"{type(self).__name__} must define _update")

    # -- config --------------------------------------------------------------------------------
    def get_config(self):
        config = {"name": self.name, "learning_rate": self._learning_rate}
        for key in ("clipnorm", "clipvalue", "global_clipnorm", "weight_decay"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        config.update(self._extra_config())
        return config

    def _extra_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(learning_rate={self._learning_rate:g})"


def _snake(name):
    return {"SGD": "sgd", "RMSprop": "rmsprop"}.get(name, name.lower())


class SGD(Optimizer):
    """Keras SGD: ``v = momentum*v - lr*g; theta += v`` (Nesterov: ``theta += momentum*v - lr*g``)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name=None, **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)
        self.momentum = _check_number("SGD", "momentum", momentum, 0, 1)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"SGD: nesterov must be True or False; got {nesterov!r}")
        self.nesterov = bool(nesterov)
        self.slot_names = ("momentum",) if self.momentum > 0 else ()

    def _extra_config(self):
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def _update(self, value, grad, slots, lr):
        if not self.momentum:
            value -= lr * grad
            return
        m = slots["momentum"]
        m *= self.momentum
        m -= lr * grad
        if self.nesterov:
            value += self.momentum * m - lr * grad
        else:
            value += m


class Adam(Optimizer):
    """Keras Adam (defaults lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 name=None, **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)
        self.beta_1 = _check_number("Adam", "beta_1", beta_1, 0, 1, high_open=True)
        self.beta_2 = _check_number("Adam", "beta_2", beta_2, 0, 1, high_open=True)
        self.epsilon = _check_number("Adam", "epsilon", epsilon, 0)
        self.amsgrad = bool(amsgrad)
        self.slot_names = ("momentum", "velocity") + (("velocity_hat",) if self.amsgrad else ())

    def _extra_config(self):
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad}

    def _update(self, value, grad, slots, lr):
        t = self.iterations
        alpha = lr * math.sqrt(1.0 - self.beta_2 ** t) / (1.0 - self.beta_1 ** t)
        m, v = slots["momentum"], slots["velocity"]
        m += (grad - m) * (1.0 - self.beta_1)
        v += (grad * grad - v) * (1.0 - self.beta_2)
        if self.amsgrad:
            np.maximum(slots["velocity_hat"], v, out=slots["velocity_hat"])
            v = slots["velocity_hat"]
        value -= (alpha * m) / (np.sqrt(v) + self.epsilon)


class RMSprop(Optimizer):
    """Keras RMSprop (lr=0.001, rho=0.9, momentum=0, epsilon=1e-7 inside the square root)."""

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 name=None, **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)
        self.rho = _check_number("RMSprop", "rho", rho, 0, 1, high_open=True)
        self.momentum = _check_number("RMSprop", "momentum", momentum, 0, 1)
        self.epsilon = _check_number("RMSprop", "epsilon", epsilon, 0)
        self.centered = bool(centered)
        self.slot_names = (("velocity",) + (("momentum",) if self.momentum > 0 else ())
                           + (("average_gradient",) if self.centered else ()))

    def _extra_config(self):
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}

    def _update(self, value, grad, slots, lr):
        v = slots["velocity"]
        v *= self.rho
        v += (1.0 - self.rho) * grad * grad
        if self.centered:
            a = slots["average_gradient"]
            a *= self.rho
            a += (1.0 - self.rho) * grad
            denominator = v - a * a + self.epsilon
        else:
            denominator = v + self.epsilon
        increment = lr * grad / np.sqrt(denominator)
        if self.momentum > 0:
            m = slots["momentum"]
            m *= self.momentum
            m += increment
            value -= m
        else:
            value -= increment


class Adagrad(Optimizer):
    """Keras Adagrad (lr=0.001, initial_accumulator_value=0.1, epsilon=1e-7 inside the root)."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, name=None,
                 **kwargs):
        super().__init__(learning_rate, name=name, **kwargs)
        self.initial_accumulator_value = _check_number("Adagrad", "initial_accumulator_value",
                                                       initial_accumulator_value, 0)
        self.epsilon = _check_number("Adagrad", "epsilon", epsilon, 0)
        self.slot_names = ("accumulator",)

    def _make_slots(self, var):
        return {"accumulator": np.full_like(var.value, self.initial_accumulator_value)}

    def _extra_config(self):
        return {"initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}

    def _update(self, value, grad, slots, lr):
        acc = slots["accumulator"]
        acc += grad * grad
        value -= lr * grad / np.sqrt(acc + self.epsilon)


_CLASSES = {"SGD": SGD, "Adam": Adam, "RMSprop": RMSprop, "Adagrad": Adagrad}


def get(identifier):
    """An optimizer from a name ('adam', 'Adam', 'sgd', 'rmsprop', 'adagrad' -- Keras defaults), an
    Optimizer object, or a config dict {'class_name', 'config'}."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        by_lower = {k.lower(): v for k, v in _CLASSES.items()}
        cls = by_lower.get(identifier.lower())
        if cls is None:
            raise ValueError(f"optimizers.get: optimizer must be one of 'sgd', 'adam', 'rmsprop', "
                             f"'adagrad' or an Optimizer object; got {identifier!r}")
        return cls()
    raise TypeError(f"optimizers.get: optimizer must be a string or a pycnn.optimizers.Optimizer; "
                    f"got {type(identifier).__name__}")


def serialize(optimizer):
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config):
    try:
        cls = _CLASSES[config["class_name"]]
        return cls.from_config(dict(config["config"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"optimizers.deserialize: not a pycnn optimizer config: {config!r}") from exc
