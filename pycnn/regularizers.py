"""Weight regularizers (Keras 3 names and defaults).

A regularizer maps a weight to a penalty added to the loss (``reg(w) -> float``) and
provides its gradient (``reg.gradient(w)``), which layers add to the weight's gradient.
As Keras documents, the strings 'l1', 'l2' and 'l1_l2' use factor 0.01 each.
"""
import numpy as np


def _check_factor(where, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{where}: {name} must be a finite number >= 0; got {name}={value!r}")
    return float(value)


class Regularizer:
    def __call__(self, x):
        raise TypeError(f"{type(self).__name__}: a regularizer must define __call__ and gradient")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """l1 * sum(|w|) + l2 * sum(w**2)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _check_factor(type(self).__name__, "l1", 0.0 if l1 is None else l1)
        self.l2 = _check_factor(type(self).__name__, "l2", 0.0 if l2 is None else l2)

    def __call__(self, x):
        x = np.asarray(x, dtype=np.float64)
        return self.l1 * float(np.abs(x).sum()) + self.l2 * float(np.square(x).sum())

    def gradient(self, x):
        x = np.asarray(x)
        return self.l1 * np.sign(x) + (2.0 * self.l2) * x

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """l1 * sum(|w|)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1, l2=0.0)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """l2 * sum(w**2)."""

    def __init__(self, l2=0.01):
        super().__init__(l1=0.0, l2=l2)

    def get_config(self):
        return {"l2": self.l2}


def l1_l2(l1=0.01, l2=0.01):
    """Keras's legacy helper: an L1L2 with both factors defaulting to 0.01."""
    return L1L2(l1=l1, l2=l2)


l1 = L1
l2 = L2

_BY_NAME = {"L1": L1, "L2": L2, "L1L2": L1L2, "l1": L1, "l2": L2, "l1_l2": l1_l2}


def serialize(regularizer):
    if isinstance(regularizer, Regularizer):
        return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
    raise TypeError(f"regularizers.serialize: regularizer must be a pycnn Regularizer; got {regularizer!r}")


def get(identifier):
    """A Regularizer from None, a name ('l2'), a config dict or an instance."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        factory = _BY_NAME.get(identifier)
        if factory is None:
            raise ValueError(f"regularizers.get: regularizer must be one of ['l1', 'l1_l2', 'l2']; "
                             f"got {identifier!r}")
        return factory()
    if isinstance(identifier, dict):
        cls = {"L1": L1, "L2": L2, "L1L2": L1L2}.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"regularizers.get: config class_name must be 'L1', 'L2' or 'L1L2'; "
                             f"got {identifier.get('class_name')!r}")
        return cls.from_config(identifier.get("config", {}))
    raise TypeError(f"regularizers.get: regularizer must be None, a name, a dict or a Regularizer "
                    f"(with __call__ and gradient); got {identifier!r}")
