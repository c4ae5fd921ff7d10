"""Sequential: a plain stack of layers (Keras 3 semantics)."""

from pycnn.layers.base import InputLayer, KerasTensor, Layer
from pycnn.models.training import Model

__all__ = ["Sequential"]


def _format_shape(shape):
    return str(tuple(shape))


class Sequential(Model):
    """``Sequential([Conv2D(...), ...])`` or ``model.add(layer)``.

    The model is built as soon as the input shape is known: from ``input_shape=`` on the first
    layer, a leading ``pycnn.Input``/``InputLayer``, ``model.build(input_shape)``, or the first batch
    it sees. Building checks each layer in turn and reports the per-layer shape trace when a shape
    becomes invalid (e.g. the spatial size shrinking to zero)."""

    def __init__(self, layers=None, name=None, trainable=True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)
        self._layers = []
        self._input_layer = None
        for layer in layers or []:
            self.add(layer)
        if not trainable:
            self.trainable = False  # propagate; True must not unfreeze layers passed in frozen

    # ------------------------------------------------------------------ structure
    @property
    def layers(self):
        return list(self._layers)

    def add(self, layer):
        """Append a layer (or a model); builds it right away when the input shape is known."""
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history[0]
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError(f"Sequential '{self.name}': an Input must be the first layer; got it "
                                 f"after {len(self._layers)} layers")
            self._input_layer = layer
            self._maybe_build()
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential '{self.name}': add() needs a Layer; got "
                            f"{type(layer).__name__}")
        if any(existing is layer for existing in self._layers):
            raise ValueError(f"Sequential '{self.name}': layer '{layer.name}' is already in the model")
        names = {l.name for l in self._layers}
        if layer.name in names:
            raise ValueError(f"Sequential '{self.name}': layer names must be unique; '{layer.name}' is "
                             "used twice")
        self._layers.append(layer)
        if self.built:
            try:
                self._build_layers(self._build_input_shape)
            except ValueError:
                self._layers.pop()
                raise
        else:
            self._maybe_build()

    def pop(self):
        """Remove and return the last layer."""
        if not self._layers:
            raise ValueError(f"Sequential '{self.name}': pop() needs at least one layer; the model "
                             "has none")
        return self._layers.pop()

    def _declared_input_shape(self):
        if self._input_layer is not None:
            return self._input_layer.batch_shape
        if not self._layers:
            return None
        first = self._layers[0]
        if getattr(first, "_batch_input_shape", None) is not None:
            return first._batch_input_shape
        if isinstance(first, Model) and first.built and not isinstance(first._build_input_shape, list):
            return first._build_input_shape   # a (pretrained) model as the first layer
        return None

    def _maybe_build(self):
        shape = self._declared_input_shape()
        if shape is not None and self._layers:
            self.build(shape)

    # ------------------------------------------------------------------ build
    def build(self, input_shape=None):
        """Build every layer for ``input_shape`` (batch dimension included, e.g. (None, 28, 28, 1))."""
        if input_shape is None:
            input_shape = self._declared_input_shape()
            if input_shape is None:
                raise ValueError(f"Sequential '{self.name}': build needs an input_shape; got None "
                                 "(give the first layer input_shape=(...), start with "
                                 "pycnn.Input(shape), or call model.build((None, ...)))")
        if not self._layers:
            raise ValueError(f"Sequential '{self.name}': the model must have at least one layer to "
                             "be built")
        self._build_layers(tuple(input_shape))

    def _check_input_shape(self, input_shape):
        if not self.built or isinstance(input_shape, list):
            return
        expected = self._build_input_shape
        if len(input_shape) != len(expected) or any(
                e is not None and g is not None and e != g for e, g in zip(expected[1:], input_shape[1:])):
            hint = ""
            if len(input_shape) + 1 == len(expected) and expected[-1] == 1:
                hint = " (the channel axis is missing; add it with x[..., None] or np.expand_dims(x, -1))"
            raise ValueError(f"Sequential '{self.name}': input shape must be {expected}; got "
                             f"{tuple(input_shape)}{hint}")

    def _build_layers(self, input_shape):
        trace = [("input", input_shape)]
        shape = input_shape
        for layer in self._layers:
            try:
                if not layer.built:
                    layer.build(shape)
                elif hasattr(layer, "_check_input_shape"):
                    layer._check_input_shape(shape)
                out = layer.compute_output_shape(shape)
            except ValueError as exc:
                raise ValueError(f"{exc}\nShape trace of Sequential '{self.name}':\n"
                                 + _trace_text(trace) + f"\n  {layer.name} ({type(layer).__name__})"
                                 f" <- fails on input {_format_shape(shape)}") from None
            if not isinstance(out, list) and any(d is not None and d <= 0 for d in out[1:]):
                trace.append((f"{layer.name} ({type(layer).__name__})", out))
                raise ValueError(f"Sequential '{self.name}': layer '{layer.name}' output shape must "
                                 f"have positive sizes; got {_format_shape(out)} (the spatial size "
                                 "collapsed: use padding='same', fewer pooling layers or a larger "
                                 "input)\nShape trace:\n" + _trace_text(trace))
            trace.append((f"{layer.name} ({type(layer).__name__})", out))
            shape = out
        self._build_input_shape = tuple(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    @property
    def output_shape(self):
        if not self.built:
            raise AttributeError(f"Sequential '{self.name}': output_shape is defined once the model is "
                                 "built")
        return self.compute_output_shape(self._build_input_shape)

    # ------------------------------------------------------------------ forward / backward
    def call(self, inputs, training=False):
        x = inputs
        for layer in self._layers:
            x = layer(x, training=training)
        self._last_inputs = inputs
        return x

    def _output_layer(self):
        if not self._layers or isinstance(self._layers[-1], Model):
            return None
        return self._layers[-1]

    def _backward(self, grad, need_input_grad=True, fused=False):
        layers = self._layers
        if need_input_grad:
            stop = 0
        else:
            stop = next((i for i, l in enumerate(layers) if l.trainable_weights), len(layers))
        last = len(layers) - 1
        for i in range(last, stop - 1, -1):
            layer = layers[i]
            if i == last and fused:
                grad = _backward_pre_activation(layer, grad)
            elif isinstance(layer, Model):
                grad = layer._backward(grad, need_input_grad=need_input_grad or i > stop, fused=False)
            elif i == stop and not need_input_grad and hasattr(layer, "backward_weights_only"):
                grad = layer.backward_weights_only(grad)   # nothing below needs this gradient
            else:
                grad = layer.backward(grad)
        return grad

    # ------------------------------------------------------------------ config
    def get_config(self):
        from pycnn.models.functional import serialize_layer
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype,
                  "layers": [serialize_layer(l) for l in self._layers]}
        if self.built:
            config["build_input_shape"] = list(self._build_input_shape)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from pycnn.models.functional import deserialize_layer
        config = dict(config)
        layers = [deserialize_layer(c, custom_objects) for c in config.pop("layers")]
        build_shape = config.pop("build_input_shape", None)
        model = cls(layers, **config)
        if build_shape is not None and not model.built:
            model.build(tuple(build_shape))
        return model


def _trace_text(trace):
    return "\n".join(f"  {name:<40} {_format_shape(shape)}" for name, shape in trace)


def _backward_pre_activation(layer, dz):
    """Backward through ``layer`` given the gradient with respect to its pre-activation (the fused
    softmax/sigmoid + cross-entropy path). A layer that *is* the activation passes dz through."""
    from pycnn import activations
    if type(layer).__name__ in ("Softmax", "Activation"):
        return dz
    hook = getattr(layer, "backward_from_pre_activation", None)
    if hook is not None:
        return hook(dz)
    # Dense/Conv apply activations.backward(self.activation, ...) inside backward; with the
    # identity activation that step passes dz through unchanged.
    saved = layer.activation
    layer.activation = activations.linear
    try:
        return layer.backward(dz)
    finally:
        layer.activation = saved
