"""Activation functions (Keras names) and their derivatives.

``get(identifier)`` returns the function for a name ('relu', 'softmax', ...), None/'linear'
giving ``linear``. Layers that apply an activation call ``backward(fn, dy, x, y)`` with the
pre-activation ``x`` and output ``y`` of the forward pass to get d(loss)/dx.
relu, leaky_relu, relu6, sigmoid, tanh and softmax run in the C engine (``pycnn.ops``).

relu, leaky_relu and relu6 can also run inside the convolution/dense forward (``fused(fn)``
gives the ops arguments); their derivative then comes from the output alone
(``backward_from_output``), so those layers keep y and not the pre-activation.
"""
import math

import numpy as np

from pycnn import ops

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_erf = np.frompyfunc(math.erf, 1, 1)


def linear(x):
    return x


def relu(x):
    return ops.relu(x)


def leaky_relu(x, negative_slope=0.2):
    return ops.leaky_relu(x, negative_slope=negative_slope)


def relu6(x):
    return ops.clamp(x, 0.0, 6.0)


def sigmoid(x):
    return ops.sigmoid(x)


def tanh(x):
    return ops.tanh(x)


def softmax(x, axis=-1):
    return ops.softmax(x, axis=axis)


def elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


def selu(x):
    return (_SELU_SCALE * elu(x, _SELU_ALPHA)).astype(x.dtype, copy=False)


def softplus(x):
    return np.logaddexp(0, x).astype(x.dtype, copy=False)


def silu(x):
    return (x * ops.sigmoid(x)).astype(x.dtype, copy=False)


swish = silu


def gelu(x, approximate=False):
    if approximate:
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)
        return (0.5 * x * (1.0 + np.tanh(inner))).astype(x.dtype, copy=False)
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))
    return (x * cdf).astype(x.dtype, copy=False)


# ---------------------------------------------------------------- derivatives: (dy, x, y) -> dx
def _linear_backward(dy, x, y):
    return dy


def _elu_derivative(x, alpha):
    return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0)))


def _softplus_backward(dy, x, y):
    return (dy * ops.sigmoid(x)).astype(x.dtype, copy=False)


def _silu_backward(dy, x, y):
    s = ops.sigmoid(x)
    return (dy * (s + x * s * (1.0 - s))).astype(x.dtype, copy=False)


def _gelu_backward(dy, x, y, approximate=False):
    if approximate:
        c = math.sqrt(2.0 / math.pi)
        t = np.tanh(c * (x + 0.044715 * x ** 3))
        d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * x * x)
    else:
        cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        d = cdf + x * pdf
    return (dy * d).astype(x.dtype, copy=False)


_BACKWARD = {
    linear: _linear_backward,
    relu: lambda dy, x, y: ops.relu_backward(dy, x),
    sigmoid: lambda dy, x, y: ops.sigmoid_backward(dy, x),
    tanh: lambda dy, x, y: ops.tanh_backward(dy, x),
    softmax: lambda dy, x, y: ops.softmax_backward(dy, x, axis=-1),
    leaky_relu: lambda dy, x, y: ops.leaky_relu_backward(dy, x, negative_slope=0.2),
    relu6: lambda dy, x, y: ops.clamp_backward(dy, x, 0.0, 6.0),
    elu: lambda dy, x, y: (dy * _elu_derivative(x, 1.0)).astype(x.dtype, copy=False),
    selu: lambda dy, x, y: (dy * _SELU_SCALE * _elu_derivative(x, _SELU_ALPHA)).astype(x.dtype, copy=False),
    softplus: _softplus_backward,
    silu: _silu_backward,
    gelu: _gelu_backward,
}

_BY_NAME = {
    "linear": linear, "relu": relu, "leaky_relu": leaky_relu, "relu6": relu6, "sigmoid": sigmoid, "tanh": tanh,
    "softmax": softmax, "elu": elu, "selu": selu, "softplus": softplus, "silu": silu, "swish": silu,
    "gelu": gelu,
}


# Activations the conv/dense ops apply in their forward pass (their activation= arguments, same
# bytes as the function above), and the derivative from the output y: the same bytes as from the
# pre-activation, because y > 0 iff x > 0 (leaky slope >= 0) and 0 < y < 6 iff 0 < x < 6.
_FUSED = {
    relu: {"activation": "relu"},
    leaky_relu: {"activation": "leaky_relu", "negative_slope": 0.2},
    relu6: {"activation": "relu6"},
}

_BACKWARD_FROM_OUTPUT = {
    linear: lambda dy, y: dy,
    relu: lambda dy, y: ops.relu_backward(dy, y),
    leaky_relu: lambda dy, y: ops.leaky_relu_backward(dy, y, negative_slope=0.2),
    relu6: lambda dy, y: ops.clamp_backward(dy, y, 0.0, 6.0),
}


def fused(fn):
    """The ops keyword arguments (activation=...) that apply fn inside conv/dense, or None."""
    return _FUSED.get(fn)


def backward_from_output(fn, dy, y):
    """d(loss)/dx for ``y = fn(x)`` from y alone (fn linear or one that ``fused`` accepts)."""
    derivative = _BACKWARD_FROM_OUTPUT.get(fn)
    if derivative is None:
        raise TypeError(f"activations.backward_from_output: activation must be linear, relu, leaky_relu or "
                        f"relu6; got {getattr(fn, '__name__', fn)!r}")
    return derivative(dy, y)


def get(identifier):
    """The activation function for a name, None ('linear'), or a callable (returned as is)."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _BY_NAME.get(identifier)
        if fn is None:
            raise ValueError(f"activations.get: activation must be one of {sorted(_BY_NAME)}; got {identifier!r}")
        return fn
    if callable(identifier):
        return identifier
    raise TypeError(f"activations.get: activation must be a name or a callable; got {identifier!r}")


def serialize(fn):
    """The Keras name of a built-in activation (what get_config stores)."""
    for name, candidate in _BY_NAME.items():
        if candidate is fn:
            return name
    raise TypeError(f"activations.serialize: activation must be a built-in pycnn activation to be saved in a "
                    f"config; got {getattr(fn, '__name__', fn)!r}")


def has_backward(fn):
    return fn in _BACKWARD


def backward(fn, dy, x, y):
    """d(loss)/dx for ``y = fn(x)`` given d(loss)/dy."""
    derivative = _BACKWARD.get(fn)
    if derivative is None:
        raise TypeError(f"activations.backward: activation must be a built-in activation to be differentiated; "
                        f"got custom function {getattr(fn, '__name__', fn)!r} (use a built-in name such as "
                        f"'relu', or an Activation/Lambda layer with backward=)")
    return derivative(dy, x, y)
