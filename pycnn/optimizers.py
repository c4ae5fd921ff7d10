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

# Updates run over a variable in chunks of this many elements: a chunk's operands and the two work
# buffers (6 arrays of 128 KiB in float32) stay in the L2 cache across the update's ~10 passes,
# and no pass allocates a temporary the size of the variable. The rules are elementwise, so the
# result is the same bit for bit as updating the whole array at once.
_CHUNK = 1 << 15


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
        self._work = {}           # dtype -> two flat work buffers shared by every update

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

    def _scratch(self, like):
        """Two work arrays shaped like ``like``: views of buffers kept across variables and steps,
        so an update allocates nothing (the ufuncs write into them with ``out=``)."""
        n = like.size
        pool = self._work.get(like.dtype)
        if pool is None or pool[0].size < n:
            pool = self._work[like.dtype] = (np.empty(n, like.dtype), np.empty(n, like.dtype))
        first, second = pool[0][:n], pool[1][:n]
        return (first, second) if like.ndim == 1 else (first.reshape(like.shape), second.reshape(like.shape))

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
            value, slots = var.value, self._slots[id(var)]
            g = np.asarray(g, dtype=value.dtype)
            if value.size <= _CHUNK or not (value.flags.c_contiguous and g.flags.c_contiguous and all(
                    s.flags.c_contiguous for s in slots.values())):
                self._decay_and_update(value, g, slots, lr)   # small, or strided: all at once
                continue
            value, g = value.reshape(-1), g.reshape(-1)         # views, since all are contiguous
            slots = {name: s.reshape(-1) for name, s in slots.items()}
            for start in range(0, value.size, _CHUNK):
                part = slice(start, start + _CHUNK)
                self._decay_and_update(value[part], g[part], {name: s[part] for name, s in slots.items()}, lr)

    def _decay_and_update(self, value, grad, slots, lr):
        if self.weight_decay:
            decay, _ = self._scratch(value)
            np.multiply(value, lr * self.weight_decay, out=decay)
            value -= decay
        self._update(value, grad, slots, lr)

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
        """Update ``value`` in place from ``grad`` and the matching ``slots`` arrays. It must be
        elementwise: apply_gradients may pass consecutive chunks of a variable."""
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
        # Each line is one ufunc into a work buffer, in the order of the formula in the docstring.
        step, work = self._scratch(value)
        np.multiply(grad, lr, out=step)                 # lr * g
        if not self.momentum:
            value -= step
            return
        m = slots["momentum"]
        m *= self.momentum
        m -= step
        if self.nesterov:
            np.multiply(m, self.momentum, out=work)     # momentum * v - lr * g
            work -= step
            value += work
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
        a, b = self._scratch(value)
        np.subtract(grad, m, out=a)               # m += (g - m) * (1 - beta_1)
        a *= 1.0 - self.beta_1
        m += a
        np.multiply(grad, grad, out=a)            # v += (g * g - v) * (1 - beta_2)
        a -= v
        a *= 1.0 - self.beta_2
        v += a
        if self.amsgrad:
            np.maximum(slots["velocity_hat"], v, out=slots["velocity_hat"])
            v = slots["velocity_hat"]
        np.multiply(m, alpha, out=a)              # theta -= (alpha * m) / (sqrt(v) + epsilon)
        np.sqrt(v, out=b)
        b += self.epsilon
        a /= b
        value -= a


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
        work, denominator = self._scratch(value)
        v *= self.rho
        np.multiply(grad, 1.0 - self.rho, out=work)      # v += (1 - rho) * g * g
        work *= grad
        v += work
        if self.centered:
            a = slots["average_gradient"]
            a *= self.rho
            np.multiply(grad, 1.0 - self.rho, out=work)  # a += (1 - rho) * g
            a += work
            np.multiply(a, a, out=work)                  # v - a * a + epsilon
            np.subtract(v, work, out=denominator)
            denominator += self.epsilon
        else:
            np.add(v, self.epsilon, out=denominator)
        increment = work
        np.multiply(grad, lr, out=increment)             # lr * g / sqrt(denominator)
        np.sqrt(denominator, out=denominator)
        increment /= denominator
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
        step, root = self._scratch(value)
        np.multiply(grad, grad, out=step)         # acc += g * g
        acc += step
        np.multiply(grad, lr, out=step)           # theta -= lr * g / sqrt(acc + epsilon)
        np.add(acc, self.epsilon, out=root)
        np.sqrt(root, out=root)
        step /= root
        value -= step


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
