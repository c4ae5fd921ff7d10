"""Merge layers: Add, Multiply (elementwise, NumPy broadcasting over non-batch dims), Concatenate."""
import numpy as np

from pycnn.layers.base import Layer


def _unbroadcast(grad, shape):
    """Sum ``grad`` over the axes that broadcasting expanded to reach its shape from ``shape``."""
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


class _Merge(Layer):
    def _check_input_shape(self, input_shape):
        where = f"{type(self).__name__} '{self.name}'"
        if not isinstance(input_shape, list):
            raise ValueError(f"{where}: inputs must be a list of tensors; got a single input of shape {input_shape}")
        if len(input_shape) < 2:
            raise ValueError(f"{where}: inputs must be a list of at least 2 tensors; got {len(input_shape)}")
        self._merged_shape(input_shape)

    def _merged_shape(self, shapes):
        """Broadcast the non-batch dims (None = unknown)."""
        ndim = max(len(s) for s in shapes)
        out = []
        for i in range(1, ndim):
            dims = {s[i - ndim + len(s)] for s in shapes if i - ndim + len(s) >= 1}
            known = {d for d in dims if d is not None and d != 1}
            if len(known) > 1:
                raise ValueError(f"{type(self).__name__} '{self.name}': input shapes must be equal or broadcastable; "
                                 f"got {shapes}")
            out.append(known.pop() if known else (None if None in dims else 1))
        return (shapes[0][0],) + tuple(out)

    def compute_output_shape(self, input_shape):
        return self._merged_shape(input_shape)

    def call(self, inputs, training=False):
        self._last_inputs = list(inputs)
        self._check_input_shape([x.shape for x in inputs])
        return self._merge(inputs)


class Add(_Merge):
    """Elementwise sum of the inputs."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out

    def backward(self, grad):
        self._require_call()
        grad = self._cast(grad)
        return [_unbroadcast(grad, x.shape) for x in self._last_inputs]


class Multiply(_Merge):
    """Elementwise product of the inputs."""

    def _merge(self, inputs):
        out = inputs[0]
        for x in inputs[1:]:
            out = out * x
        return out

    def backward(self, grad):
        self._require_call()
        grad = self._cast(grad)
        grads = []
        for i, x in enumerate(self._last_inputs):
            others = grad
            for j, other in enumerate(self._last_inputs):
                if j != i:
                    others = others * other
            grads.append(_unbroadcast(others, x.shape))
        return grads


class Concatenate(Layer):
    """Concatenate a list of inputs along ``axis`` (default -1, the channels)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"Concatenate '{self.name}': axis must be an int; Received: axis={axis!r}")
        self.axis = int(axis)

    def _check_input_shape(self, input_shape):
        where = f"Concatenate '{self.name}'"
        if not isinstance(input_shape, list) or len(input_shape) < 2:
            n = len(input_shape) if isinstance(input_shape, list) else 1
            raise ValueError(f"{where}: inputs must be a list of at least 2 tensors; got {n}")
        ndim = len(input_shape[0])
        if any(len(s) != ndim for s in input_shape):
            raise ValueError(f"{where}: inputs must all have the same rank; got shapes {input_shape}")
        if not -ndim <= self.axis < ndim or self.axis % ndim == 0:
            raise ValueError(f"{where}: axis must index a non-batch dimension; got axis={self.axis} for shapes "
                             f"{input_shape}")
        axis = self.axis % ndim
        for i in range(1, ndim):
            if i == axis:
                continue
            dims = {s[i] for s in input_shape if s[i] is not None}
            if len(dims) > 1:
                raise ValueError(f"{where}: inputs must match in every dimension except the concat axis "
                                 f"{self.axis}; got shapes {input_shape} (crop or resize so they agree, e.g. "
                                 f"Cropping2D for U-Net skip connections)")

    def compute_output_shape(self, input_shape):
        ndim = len(input_shape[0])
        axis = self.axis % ndim
        out = []
        for i in range(ndim):
            dims = [s[i] for s in input_shape]
            if i == axis:
                out.append(None if None in dims else sum(dims))
            else:
                known = [d for d in dims if d is not None]
                out.append(known[0] if known else None)
        return tuple(out)

    def call(self, inputs, training=False):
        self._last_inputs = list(inputs)
        self._check_input_shape([x.shape for x in inputs])
        return np.concatenate(inputs, axis=self.axis)

    def backward(self, grad):
        self._require_call()
        grad = self._cast(grad)
        sizes = [x.shape[self.axis] for x in self._last_inputs]
        return np.split(grad, np.cumsum(sizes)[:-1], axis=self.axis)

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config
