"""Dense, Activation and Lambda layers."""
import numpy as np

from pycnn import activations, initializers, ops, regularizers
from pycnn.layers import _utils as U
from pycnn.layers.base import Layer, forward_kernel


class Dense(Layer):
    """``activation(x @ kernel + bias)`` on the last axis of an input of any rank >= 2."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        where = f"Dense '{self.name}'"
        self.units = U.check_positive_int(units, "units", where)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        U.check_unsupported(where, activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                            bias_constraint=bias_constraint)
        self.kernel = self.bias = None
        self._cache = None

    def _check_input_shape(self, input_shape):
        where = f"Dense '{self.name}'"
        if isinstance(input_shape, list):
            raise ValueError(f"{where}: expects a single input; got {len(input_shape)} inputs")
        if len(input_shape) < 2:
            raise ValueError(f"{where}: input must have at least 2 dims (batch, features); got shape {input_shape}")
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"{where}: the last dimension of the input must be known; got shape {input_shape}")
        if self.built and features != self.kernel.shape[0]:
            raise ValueError(
                f"{where}: expected {self.kernel.shape[0]} input features (built for input {self.input_shape}); "
                f"got {features} in input shape {tuple(input_shape)} (did the image size or the layers before "
                f"Flatten change since the model was built?)")

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer,
                                        regularizer=self.bias_regularizer)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def call(self, inputs, training=False):
        bias = None if self.bias is None else self.bias.value
        fused = activations.fused(self.activation)
        if fused is None:
            z = ops.dense(inputs, forward_kernel(self.kernel), bias)
            y = self.activation(z)
            self._cache = (inputs, z, y)
        else:   # no pre-activation kept: backward works from y
            y = ops.dense(inputs, forward_kernel(self.kernel), bias, **fused)
            self._cache = (inputs, None, y)
        self._last_inputs = inputs
        return y

    def backward(self, grad):
        return self._backward_from_output(grad, need_input_grad=True)

    def backward_weights_only(self, grad):
        """Like backward, for a layer whose input gradient nobody needs (a network's first
        layer): sets the weight gradients, skips the input gradient, returns None."""
        self._backward_from_output(grad, need_input_grad=False)

    def _backward_from_output(self, grad, need_input_grad):
        self._require_call()
        x, z, y = self._cache
        if z is None:
            dz = activations.backward_from_output(self.activation, self._cast(grad), y)
        else:
            dz = activations.backward(self.activation, self._cast(grad), z, y)
        bias = None if self.bias is None else self.bias.value
        dx, dkernel, dbias = ops.dense_backward(dz, x, self.kernel.value, bias, compute_dx=need_input_grad)
        self._set_grad(self.kernel, dkernel)
        if self.bias is not None:
            self._set_grad(self.bias, dbias)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units, "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": U.serialize_regularizer(self.kernel_regularizer),
            "bias_regularizer": U.serialize_regularizer(self.bias_regularizer),
        })
        return config


class Activation(Layer):
    """Applies an activation function by name ('relu', 'softmax', ...) or a built-in function."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)
        self._cache = None

    def call(self, inputs, training=False):
        y = self.activation(inputs)
        self._cache = (inputs, y)
        self._last_inputs = inputs
        return y

    def backward(self, grad):
        self._require_call()
        x, y = self._cache
        return activations.backward(self.activation, self._cast(grad), x, y)

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config


class Lambda(Layer):
    """Wraps ``function(x)`` as a layer (forward only unless ``backward(inputs, grad) -> dinputs`` is given).

    The function is never stored in a saved config (pycnn model files hold data, not code);
    rebuild the layer in code, or pass ``function`` (and ``backward``) to ``from_config``.
    """

    def __init__(self, function, output_shape=None, arguments=None, backward=None, mask=None, **kwargs):
        super().__init__(**kwargs)
        where = f"Lambda '{self.name}'"
        if not callable(function):
            raise TypeError(f"{where}: function must be callable; got {function!r}")
        if backward is not None and not callable(backward):
            raise TypeError(f"{where}: backward must be callable(inputs, grad) -> dinputs or None; got {backward!r}")
        if output_shape is not None and not callable(output_shape):
            if not U.is_int_tuple(output_shape):
                raise ValueError(f"{where}: output_shape must be a tuple of ints/None (without the batch dim) or a "
                                 f"callable; got {output_shape!r}")
            output_shape = tuple(output_shape)
        U.check_unsupported(where, mask=mask)
        self.function = function
        self.backward_function = backward
        self.output_shape_arg = output_shape
        self.arguments = dict(arguments or {})

    def compute_output_shape(self, input_shape):
        if callable(self.output_shape_arg):
            return self.output_shape_arg(input_shape)
        if self.output_shape_arg is not None:
            batch = input_shape[0][0] if isinstance(input_shape, list) else input_shape[0]
            return (batch,) + self.output_shape_arg
        # Infer by running the function on zeros with a batch of 1 (unknown dims are 1 too).
        def probe(shape):
            return np.zeros(tuple(1 if d is None else d for d in shape), dtype=self.dtype)
        try:
            sample = probe(input_shape) if not isinstance(input_shape, list) else [probe(s) for s in input_shape]
            out = np.asarray(self.function(sample, **self.arguments))
        except Exception as exc:  # the user's function may raise anything on a dummy input
            raise ValueError(f"Lambda '{self.name}': output_shape must be given when it cannot be inferred by "
                             f"running the function on zeros of shape {input_shape}; the function raised "
                             f"{type(exc).__name__}: {exc}") from exc
        return (None,) + out.shape[1:]

    def call(self, inputs, training=False):
        self._last_inputs = inputs
        return self._cast(self.function(inputs, **self.arguments))

    def backward(self, grad):
        if self.backward_function is None:
            raise TypeError(f"Lambda '{self.name}': backward must be given to pass gradients through this layer; "
                            f"got backward=None (use Lambda(function, backward=lambda inputs, grad: ...) or a "
                            f"built-in layer)")
        self._require_call()
        return self.backward_function(self._last_inputs, self._cast(grad))

    def get_config(self):
        config = super().get_config()
        config.update({"function": getattr(self.function, "__name__", repr(self.function)),
                       "output_shape": (list(self.output_shape_arg)
                                        if isinstance(self.output_shape_arg, tuple) else None),
                       "arguments": self.arguments})
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if not callable(config.get("function")):
            raise ValueError(f"Lambda.from_config: function must be a callable; got {config.get('function')!r} "
                             f"(configs store only the function's name, never code; put the function itself in "
                             f"the config or rebuild the Lambda layer in code)")
        if config.get("output_shape") is not None and not callable(config["output_shape"]):
            config["output_shape"] = tuple(config["output_shape"])
        return cls(**config)
