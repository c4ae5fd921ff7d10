"""Activation layers with parameters: ReLU, LeakyReLU, Softmax, ELU."""
import warnings

import numpy as np

from pycnn import activations, ops
from pycnn.layers.base import Layer


def _check_number(where, arg, value, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or (minimum is not None and value < minimum):
        rule = f"a finite number >= {minimum}" if minimum is not None else "a finite number"
        raise ValueError(f"{where}: {arg} must be {rule}; Received: {arg}={value!r}")
    return float(value)


class ReLU(Layer):
    """max_value if x >= max_value; x if threshold <= x < max_value; negative_slope*(x - threshold) otherwise."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        where = f"ReLU '{self.name}'"
        self.max_value = None if max_value is None else _check_number(where, "max_value", max_value, 0.0)
        self.negative_slope = _check_number(where, "negative_slope", negative_slope, 0.0)
        self.threshold = _check_number(where, "threshold", threshold, 0.0)
        self._x = None

    def _is_plain(self):
        return self.max_value is None and self.negative_slope == 0.0 and self.threshold == 0.0

    def call(self, inputs, training=False):
        self._x = inputs
        self._last_inputs = inputs
        if self._is_plain():
            return ops.relu(inputs)
        x = inputs
        y = np.where(x >= self.threshold, x, self.negative_slope * (x - self.threshold))
        if self.max_value is not None:
            y = np.minimum(y, self.max_value)
        return y.astype(x.dtype, copy=False)

    def backward(self, grad):
        self._require_call()
        dy, x = self._cast(grad), self._x
        if self._is_plain():
            return ops.relu_backward(dy, x)
        slope = np.where(x >= self.threshold, 1.0, self.negative_slope)
        if self.max_value is not None:
            slope = np.where(x >= self.max_value, 0.0, slope)
        return (dy * slope).astype(x.dtype, copy=False)

    def get_config(self):
        config = super().get_config()
        config.update({"max_value": self.max_value, "negative_slope": self.negative_slope,
                       "threshold": self.threshold})
        return config


class LeakyReLU(Layer):
    """x if x >= 0 else negative_slope * x (Keras 3 default negative_slope=0.3; 'alpha' accepted)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            warnings.warn("LeakyReLU: argument alpha is deprecated; use negative_slope instead", stacklevel=2)
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None:
            raise ValueError(f"LeakyReLU '{self.name}': negative_slope must be a finite number >= 0; "
                             f"Received: negative_slope=None")
        self.negative_slope = _check_number(f"LeakyReLU '{self.name}'", "negative_slope", negative_slope, 0.0)
        self._x = None

    def call(self, inputs, training=False):
        self._x = inputs
        self._last_inputs = inputs
        return ops.leaky_relu(inputs, negative_slope=self.negative_slope)

    def backward(self, grad):
        self._require_call()
        return ops.leaky_relu_backward(self._cast(grad), self._x, negative_slope=self.negative_slope)

    def get_config(self):
        config = super().get_config()
        config["negative_slope"] = self.negative_slope
        return config


class Softmax(Layer):
    """Softmax along ``axis`` (default -1)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Softmax '{self.name}': axis must be an int; Received: axis={axis!r}")
        self.axis = int(axis)
        self._x = None

    def _check_input_shape(self, input_shape):
        if isinstance(input_shape, list) or not -len(input_shape) <= self.axis < len(input_shape):
            raise ValueError(f"Softmax '{self.name}': axis must be within the input's {len(input_shape)} dims; "
                             f"got axis={self.axis} for input shape {input_shape}")

    def call(self, inputs, training=False):
        self._x = inputs
        self._last_inputs = inputs
        return ops.softmax(inputs, axis=self.axis)

    def backward(self, grad):
        self._require_call()
        return ops.softmax_backward(self._cast(grad), self._x, axis=self.axis)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


class ELU(Layer):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _check_number(f"ELU '{self.name}'", "alpha", alpha)
        self._x = None

    def call(self, inputs, training=False):
        self._x = inputs
        self._last_inputs = inputs
        return activations.elu(inputs, alpha=self.alpha)

    def backward(self, grad):
        self._require_call()
        x = self._x
        slope = np.where(x > 0, 1.0, self.alpha * np.exp(np.minimum(x, 0)))
        return (self._cast(grad) * slope).astype(x.dtype, copy=False)

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config
