"""Layer machinery shared by every layer and model: Variable, Layer, KerasTensor, Node, Input.

A layer is used in two ways, as in Keras:

* eagerly, ``y = layer(x_array, training=...)``: the array is cast to the layer dtype
  (no rescaling), the layer is built from its shape on first use, and ``call`` runs and
  caches what ``backward(dy)`` needs;
* symbolically, ``y = layer(keras_tensor)``: the layer is built from the symbolic shape
  and a ``Node`` records the connection so a functional ``Model`` can replay the graph.

There is no autodiff: each layer's ``backward(dy)`` returns the gradient with respect to
the inputs of its most recent ``call`` and stores weight gradients in ``Variable.grad``.
"""
import contextlib
import re
import threading

import numpy as np

from pycnn import ops

_FLOAT_DTYPES = ("float32", "float64")

# Per-prefix counters for automatic names: conv2d, conv2d_1, conv2d_2, ...
_NAME_COUNTERS = {}


def clear_session():
    """Reset automatic layer names so the next Conv2D is called 'conv2d' again."""
    _NAME_COUNTERS.clear()


def to_snake_case(name):
    """Keras's class-name-to-layer-name rule: 'MaxPooling2D' -> 'max_pooling2d'."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix):
    """'prefix' the first time, then 'prefix_1', 'prefix_2', ... (until clear_session)."""
    count = _NAME_COUNTERS.get(prefix, 0)
    _NAME_COUNTERS[prefix] = count + 1
    return prefix if count == 0 else f"{prefix}_{count}"


def standardize_dtype(dtype, where):
    """Accept 'float32'/'float64' (or NumPy equivalents); anything else is a TypeError."""
    if dtype is None:
        return "float32"
    if isinstance(dtype, dict):  # a Keras 3 DTypePolicy config: {"class_name": "DTypePolicy", "config": {"name": ...}}
        dtype = dtype.get("config", {}).get("name", dtype)
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _FLOAT_DTYPES:
        raise TypeError(f"{where}: dtype must be 'float32' or 'float64'; got {dtype!r}")
    return name


def _shape_tuple(shape):
    """Normalise a shape (list/tuple, JSON lists) to a tuple of int-or-None."""
    return tuple(None if d is None else int(d) for d in shape)


def _is_shape(obj):
    return isinstance(obj, (tuple, list)) and all(d is None or isinstance(d, (int, np.integer)) for d in obj)


class Variable:
    """A weight: ``value`` (ndarray), ``grad`` (set by the owning layer's backward)."""

    def __init__(self, value, name, trainable=True, regularizer=None, dtype="float32"):
        self.value = np.array(value, dtype=standardize_dtype(dtype, f"Variable '{name}'"))
        self.grad = None
        self.name = name
        self.trainable = bool(trainable)
        self.regularizer = regularizer

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype.name

    @property
    def size(self):
        return self.value.size

    def numpy(self):
        """A copy of the current value."""
        return self.value.copy()

    def assign(self, value):
        """Overwrite the value in place; the shape must match."""
        value = np.asarray(value)
        if value.shape != self.value.shape:
            raise ValueError(f"Variable '{self.name}': assigned value must have shape {self.value.shape}; "
                             f"got {value.shape}")
        self.value[...] = value

    def __repr__(self):
        return f"<Variable '{self.name}' shape={self.shape} dtype={self.dtype} trainable={self.trainable}>"


# ------------------------------------------ kernels packed once per predict / evaluate call

_inference = threading.local()   # .kernels: the _PackedKernels of the running call, if any


class _PackedKernels:
    """During one Model.predict / evaluate call no weight changes, so each conv or dense kernel
    is packed for the engine once (the GEMM's layout, or Winograd's transform), at its second
    forward (a one-batch call packs nothing), and every later batch reads it (ops.PackedKernel)
    instead of packing it again."""

    def __init__(self):
        self._kernels = {}   # Variable -> None after its first forward, then its PackedKernel

    def kernel(self, variable):
        if variable not in self._kernels:
            self._kernels[variable] = None
            return variable.value
        packed = self._kernels[variable]
        if packed is None:
            packed = self._kernels[variable] = ops.PackedKernel(variable.value, copy=False)
        return packed


@contextlib.contextmanager
def packed_kernels():
    """Inference over many batches with fixed weights (Model.predict / evaluate, no callbacks
    that could change them): layers' kernels are packed once for the whole call."""
    outer = getattr(_inference, "kernels", None)
    _inference.kernels = outer if outer is not None else _PackedKernels()
    try:
        yield
    finally:
        _inference.kernels = outer


def forward_kernel(variable):
    """The kernel a layer's forward passes to the op: variable.value, or inside
    packed_kernels() the same values packed once for the whole call."""
    scope = getattr(_inference, "kernels", None)
    return variable.value if scope is None else scope.kernel(variable)


class KerasTensor:
    """A symbolic tensor: a shape (batch dimension None) and the layer call that produced it."""

    def __init__(self, shape, dtype="float32", name=None):
        self.shape = _shape_tuple(shape)
        self.dtype = standardize_dtype(dtype, "KerasTensor")
        self.name = name
        self._keras_history = None  # (layer, node_index, tensor_index)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


class Node:
    """One call of ``layer`` on symbolic tensors: which tensors went in, which came out."""

    def __init__(self, layer, input_tensors, output_tensors, call_kwargs=None):
        self.layer = layer
        self.input_tensors = list(input_tensors)
        self.output_tensors = list(output_tensors)
        self.call_kwargs = dict(call_kwargs or {})
        node_index = len(layer._inbound_nodes)
        layer._inbound_nodes.append(self)
        for i, tensor in enumerate(self.output_tensors):
            tensor._keras_history = (layer, node_index, i)

    @property
    def parent_nodes(self):
        """Nodes that produced this node's inputs."""
        parents = []
        for tensor in self.input_tensors:
            layer, node_index, _ = tensor._keras_history
            parents.append(layer._inbound_nodes[node_index])
        return parents

    def __repr__(self):
        return f"<Node layer={self.layer.name} inputs={len(self.input_tensors)} outputs={len(self.output_tensors)}>"


def _contains_keras_tensor(inputs):
    if isinstance(inputs, KerasTensor):
        return True
    return isinstance(inputs, (list, tuple)) and any(isinstance(t, KerasTensor) for t in inputs)


class Layer:
    """Base class of every layer and model.

    Subclasses implement ``build(input_shape)`` (create weights with ``add_weight``),
    ``call(inputs, training=False)``, ``backward(grad)``, ``compute_output_shape`` and
    ``get_config``; optionally ``_check_input_shape(shape)`` to validate every input
    shape (called before build and on each later call).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "build" in cls.__dict__:
            cls.build = _wrap_build(cls.__dict__["build"])

    def __init__(self, name=None, trainable=True, dtype="float32", input_shape=None, batch_input_shape=None,
                 batch_size=None, input_dim=None, **kwargs):
        cls_name = type(self).__name__
        if kwargs:
            raise TypeError(f"{cls_name}: unexpected keyword argument(s) {sorted(kwargs)} "
                            f"(check the spelling against the Keras signature)")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{cls_name}: name must be a non-empty string; got {name!r}")
        self.name = name if name is not None else unique_name(to_snake_case(cls_name))
        self.dtype = standardize_dtype(dtype, f"{cls_name} '{self.name}'")
        self._trainable = bool(trainable)
        self.built = False
        self._build_input_shape = None
        self._variables = []
        self._layers = []          # nested layers (models, wrappers): weights and trainable propagate
        self._inbound_nodes = []
        self._last_inputs = None   # set by call for backward
        # Keras's legacy input_shape / batch_input_shape / input_dim on the first layer.
        if input_dim is not None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            if not _is_shape(batch_input_shape):
                raise ValueError(f"{cls_name}: batch_input_shape must be a tuple of ints; got {batch_input_shape!r}")
            self._batch_input_shape = _shape_tuple(batch_input_shape)
        elif input_shape is not None:
            if isinstance(input_shape, (int, np.integer)):
                input_shape = (input_shape,)
            if not _is_shape(input_shape):
                raise ValueError(f"{cls_name}: input_shape must be a tuple of ints (without the batch "
                                 f"dimension); got {input_shape!r}")
            self._batch_input_shape = (batch_size,) + _shape_tuple(input_shape)
        else:
            self._batch_input_shape = None

    # ------------------------------------------------------------------ trainable / weights
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in self._layers:
            layer.trainable = value

    def _with_nested(self, own, nested_attribute):
        """own followed by each nested layer's `nested_attribute` list, shared variables once."""
        seen = {id(v) for v in own}
        for layer in self._layers:
            for v in getattr(layer, nested_attribute):
                if id(v) not in seen:
                    seen.add(id(v))
                    own.append(v)
        return own

    @property
    def weights(self):
        """Own trainable variables, own non-trainable variables, then nested layers' weights."""
        own = [v for v in self._variables if v.trainable] + [v for v in self._variables if not v.trainable]
        return self._with_nested(own, "weights")

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return self._with_nested([v for v in self._variables if v.trainable], "trainable_weights")

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        trainable_ids = {id(v) for v in self.trainable_weights}
        return [v for v in self.weights if id(v) not in trainable_ids]

    @property
    def variables(self):
        return self.weights

    def add_weight(self, name=None, shape=None, initializer=None, trainable=True, regularizer=None, dtype=None):
        """Create a Variable named '<layer>/<name>' initialised by ``initializer``."""
        from pycnn import initializers, regularizers

        if shape is None:
            shape = ()
        shape = tuple(int(d) for d in shape)
        dtype = self.dtype if dtype is None else standardize_dtype(dtype, f"{type(self).__name__} '{self.name}'")
        init = initializers.get("glorot_uniform" if initializer is None else initializer)
        value = np.asarray(init(shape, dtype=dtype))
        if value.shape != shape:
            raise ValueError(f"{type(self).__name__} '{self.name}': initializer for '{name}' must return shape "
                             f"{shape}; got {value.shape}")
        variable = Variable(value, name=f"{self.name}/{name or 'variable'}", trainable=trainable,
                            regularizer=regularizers.get(regularizer), dtype=dtype)
        self._variables.append(variable)
        return variable

    def count_params(self):
        if not self.built:
            raise ValueError(f"{type(self).__name__} '{self.name}': count_params needs a built layer; it has not "
                             f"been built yet (call it on data, or call layer.build(input_shape) first)")
        return int(sum(v.size for v in self.weights))

    def get_weights(self):
        """Copies of the weight values, in the order of ``layer.weights``."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights):
        """Set all weights from a list of arrays (shapes must match ``get_weights()``)."""
        where = f"{type(self).__name__} '{self.name}'"
        variables = self.weights
        weights = list(weights)
        if len(weights) != len(variables):
            raise ValueError(f"{where}: set_weights must receive {len(variables)} arrays "
                             f"({[v.name for v in variables]}); got {len(weights)}")
        arrays = []
        for variable, array in zip(variables, weights):
            array = np.asarray(array)
            if array.shape != variable.shape:
                raise ValueError(f"{where}: weight '{variable.name}' must have shape {variable.shape}; "
                                 f"got {array.shape}")
            if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
                raise TypeError(f"{where}: weight '{variable.name}' must be a real numeric array; "
                                f"got dtype {array.dtype}")
            arrays.append(array)
        for variable, array in zip(variables, arrays):  # validated first: all or nothing
            variable.value[...] = array  # in place: anything holding the array sees the new values

    def regularization_loss(self):
        """Sum of the regularizer penalties of the trainable weights (frozen layers add none, as in Keras)."""
        total = 0.0
        for v in self.trainable_weights:
            if v.regularizer is not None:
                total += float(v.regularizer(v.value))
        return total

    def _set_grad(self, variable, grad):
        """Store a weight gradient, adding the regularizer's gradient (the penalty is part of the loss)."""
        grad = np.asarray(grad, dtype=variable.value.dtype)
        if variable.regularizer is not None:
            grad = grad + variable.regularizer.gradient(variable.value).astype(variable.value.dtype, copy=False)
        variable.grad = grad

    # ------------------------------------------------------------------ shapes
    @staticmethod
    def _normalize_shape(input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and all(
                isinstance(s, (list, tuple)) for s in input_shape):
            return [_shape_tuple(s) for s in input_shape]
        if not _is_shape(input_shape):
            raise ValueError(f"build: input_shape must be a tuple of ints/None (or a list of them); "
                             f"got {input_shape!r}")
        return _shape_tuple(input_shape)

    def _check_input_shape(self, input_shape):
        """Validate an input shape (including batch dim). Overridden by layers with requirements."""

    def build(self, input_shape):
        """Create weights for ``input_shape``; layers without weights need not override it."""

    @property
    def input_shape(self):
        if self._build_input_shape is None:
            raise AttributeError(f"{type(self).__name__} '{self.name}': input_shape is defined once the layer "
                                 f"is built; it has not been built yet")
        return self._build_input_shape

    @property
    def output_shape(self):
        return self.compute_output_shape(self.input_shape)

    def compute_output_shape(self, input_shape):
        """Output shape for ``input_shape`` (batch dim included). Default: unchanged."""
        return input_shape

    @property
    def input(self):
        """The symbolic input of the layer's first call on KerasTensors."""
        return self._node_tensors("input_tensors", "input")

    @property
    def output(self):
        """The symbolic output of the layer's first call on KerasTensors."""
        return self._node_tensors("output_tensors", "output")

    def _node_tensors(self, attr, what):
        if not self._inbound_nodes:
            raise AttributeError(f"{type(self).__name__} '{self.name}': {what} is defined once the layer has been "
                                 f"called on a symbolic input (pycnn.Input); it has not been")
        tensors = getattr(self._inbound_nodes[0], attr)
        return tensors[0] if len(tensors) == 1 else list(tensors)

    # ------------------------------------------------------------------ calling
    def _cast(self, x):
        """Convert to an ndarray of the layer dtype (ints/bools/other floats cast, no rescaling)."""
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{type(self).__name__} '{self.name}': input must be a real numeric array; "
                            f"got dtype {x.dtype}")
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        return x

    def __call__(self, inputs, training=False, **kwargs):
        if _contains_keras_tensor(inputs):
            return self._symbolic_call(inputs, training=training, **kwargs)
        if isinstance(inputs, (list, tuple)):
            inputs = [self._cast(x) for x in inputs]
            shape = [(None,) + x.shape[1:] for x in inputs]
        else:
            inputs = self._cast(inputs)
            shape = (None,) + inputs.shape[1:]
            if inputs.ndim == 0:
                raise ValueError(f"{type(self).__name__} '{self.name}': input must have a batch dimension; "
                                 f"got a scalar")
        if not self.built:
            self.build(shape)
        else:
            self._check_input_shape(shape)
        return self.call(inputs, training=bool(training), **kwargs)

    def _symbolic_call(self, inputs, training=False, **kwargs):
        is_list = isinstance(inputs, (list, tuple))
        tensors = list(inputs) if is_list else [inputs]
        for t in tensors:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"{type(self).__name__} '{self.name}': all inputs must be symbolic tensors "
                                f"when any is; got {type(t).__name__}")
            if t._keras_history is None:
                raise ValueError(f"{type(self).__name__} '{self.name}': input tensor {t} was not produced by "
                                 f"pycnn.Input or a layer")
        shape = [t.shape for t in tensors] if is_list else tensors[0].shape
        if not self.built:
            self.build(shape)
        else:
            self._check_input_shape(shape)
        out_shape = self.compute_output_shape(shape)
        multi_out = isinstance(out_shape, list)
        out_shapes = out_shape if multi_out else [out_shape]
        outputs = [KerasTensor(s, dtype=self.dtype, name=self.name) for s in out_shapes]
        Node(self, tensors, outputs, call_kwargs=dict(kwargs, training=training))
        return outputs if multi_out else outputs[0]

    def call(self, inputs, training=False):
        """Forward computation. Default: identity (for layers that only reshape nothing)."""
        self._last_inputs = inputs
        return inputs

    def backward(self, grad):
        """Gradient w.r.t. the inputs of the latest call; sets ``.grad`` on each weight."""
        if type(self).call is not Layer.call:
            raise TypeError(f"{type(self).__name__} '{self.name}': backward must be defined to train through this "
                            f"layer; got none (implement backward(grad) returning d(loss)/d(inputs))")
        return grad

    def _require_call(self, what="backward"):
        if self._last_inputs is None:
            raise ValueError(f"{type(self).__name__} '{self.name}': {what} must follow a call on data; "
                             f"got no previous call")

    # ------------------------------------------------------------------ config
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = list(self._batch_input_shape)
        return config

    @classmethod
    def from_config(cls, config):
        """A new layer from ``get_config()`` output (Keras 3 configs load too when their
        Keras-only options are left at values that change nothing)."""
        config = {k: v for k, v in config.items() if not (k in _INERT_KERAS_OPTIONS and _INERT_KERAS_OPTIONS[k](v))}
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


# Keras 3 config keys pycnn has no feature for, with the test that their value is inert.
_INERT_KERAS_OPTIONS = {
    "quantization_config": lambda v: v is None, "lora_rank": lambda v: v is None, "lora_alpha": lambda v: True,
    "renorm": lambda v: v is False, "renorm_clipping": lambda v: v is None, "renorm_momentum": lambda v: True,
    "sparse": lambda v: v is False, "ragged": lambda v: v is False, "optional": lambda v: v is False,
}


def _wrap_build(original):
    """Wrap a build method so validation, the built flag and the recorded input shape are
    handled once, whichever way build is reached (directly, via __call__, via super())."""

    def build(self, input_shape=None):
        if getattr(self, "_in_build", False):
            return original(self, input_shape)
        # None is passed through for builds that find the shape themselves (Sequential.build()).
        shape = None if input_shape is None else self._normalize_shape(input_shape)
        if shape is not None:
            self._check_input_shape(shape)
        self._in_build = True
        try:
            original(self, shape)
        finally:
            self._in_build = False
        if shape is not None:
            self._build_input_shape = shape
        self.built = True

    build.__doc__ = original.__doc__
    build.__wrapped__ = original
    return build


Layer.build = _wrap_build(Layer.build)


class InputLayer(Layer):
    """The entry point of a functional model: holds the symbolic input tensor; identity on data."""

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, input_tensor=None, name=None,
                 input_shape=None, batch_input_shape=None, **kwargs):
        if shape is None:
            shape = input_shape
        if batch_shape is None:
            batch_shape = batch_input_shape
        if input_tensor is not None:
            if not isinstance(input_tensor, KerasTensor):
                raise TypeError(f"InputLayer: input_tensor must be a KerasTensor; got {type(input_tensor).__name__}")
            batch_shape = input_tensor.shape
            dtype = dtype or input_tensor.dtype
        if shape is not None and batch_shape is not None:
            raise ValueError(f"InputLayer: pass shape or batch_shape, not both; got shape={shape}, "
                             f"batch_shape={batch_shape}")
        if batch_shape is None:
            if shape is None:
                raise ValueError("InputLayer: shape must be given (the per-sample shape, e.g. (28, 28, 1)); "
                                 "got shape=None")
            if isinstance(shape, (int, np.integer)):
                shape = (shape,)
            if not _is_shape(shape):
                raise ValueError(f"InputLayer: shape must be a tuple of ints/None; got {shape!r}")
            if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size <= 0):
                raise ValueError(f"InputLayer: batch_size must be a positive integer; got {batch_size!r}")
            batch_shape = (batch_size,) + _shape_tuple(shape)
        elif not _is_shape(batch_shape) or len(batch_shape) == 0:
            raise ValueError(f"InputLayer: batch_shape must be a non-empty tuple of ints/None; got {batch_shape!r}")
        batch_shape = _shape_tuple(batch_shape)
        if any(d is not None and d < 0 for d in batch_shape):
            raise ValueError(f"InputLayer: shape dimensions must be >= 0 or None; got {batch_shape}")
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.batch_shape = batch_shape
        self._build_input_shape = batch_shape
        self.built = True
        tensor = input_tensor if input_tensor is not None else KerasTensor(batch_shape, self.dtype, name=self.name)
        Node(self, [], [tensor])
        self.output_tensor = tensor

    def _check_input_shape(self, input_shape):
        if isinstance(input_shape, list) or len(input_shape) != len(self.batch_shape) or any(
                want is not None and got is not None and want != got
                for want, got in zip(self.batch_shape[1:], input_shape[1:])):
            raise ValueError(f"InputLayer '{self.name}': input shape must be {self.batch_shape}; got {input_shape}"
                             + _missing_axis_hint(self.batch_shape, input_shape))

    def call(self, inputs, training=False):
        self._last_inputs = inputs
        return inputs

    def backward(self, grad):
        return grad

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "batch_shape": list(self.batch_shape),
                "dtype": self.dtype}


def _missing_axis_hint(expected, got):
    """Suggest x[..., None] when the data lacks exactly the trailing channel axis."""
    if isinstance(got, list) or isinstance(expected, list):
        return ""
    if len(got) + 1 == len(expected) and expected[-1] == 1:
        return " (the channel axis is missing; add it with x[..., None] or np.expand_dims(x, -1))"
    return ""


def Input(shape=None, batch_size=None, name=None, dtype="float32", tensor=None, batch_shape=None):
    """A symbolic input tensor for the functional API, e.g. ``Input(shape=(28, 28, 1))``."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape,
                       input_tensor=tensor, name=name)
    return layer.output_tensor
