"""Convolution layers: Conv1D, Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose.

All share ``BaseConv``: argument validation in Keras's words, input-shape checks,
channels_first handled by moving the channel axis at the boundary (weights always keep
Keras's layouts), the activation and its derivative. A subclass only says which weights
it has and which ``pycnn.ops`` calls compute its forward and backward pass.
"""
from pycnn import activations, initializers, ops, regularizers
from pycnn.layers import _utils as U
from pycnn.layers.base import Layer, forward_kernel


class BaseConv(Layer):
    """Common machinery of the convolution layers (not used directly)."""

    _paddings = ("valid", "same")

    def __init__(self, rank, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 activation=None, use_bias=True, bias_initializer="zeros", bias_regularizer=None,
                 activity_regularizer=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        where = self._where
        self.rank = rank
        self.kernel_size = U.normalize_tuple(kernel_size, rank, "kernel_size", where)
        self.strides = U.normalize_tuple(strides, rank, "strides", where)
        self.padding = U.normalize_padding(padding, where, self._paddings)
        self.data_format = U.normalize_data_format(data_format, where)
        self.dilation_rate = U.normalize_tuple(dilation_rate, rank, "dilation_rate", where)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{where}: strides > 1 not supported in conjunction with dilation_rate > 1; "
                             f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        U.check_unsupported(where, activity_regularizer=activity_regularizer, bias_constraint=bias_constraint)
        self.bias = None
        self._cache = None

    @property
    def _where(self):
        return f"{type(self).__name__} '{self.name}'"

    # ---------------------------------------------------------------- shapes
    def _channel_axis(self):
        return 1 if self.data_format == "channels_first" else -1

    def _check_input_shape(self, input_shape):
        U.check_rank(self, input_shape, self.rank, self.data_format)
        channels = input_shape[self._channel_axis()]
        if channels is None:
            raise ValueError(f"{self._where}: the channel dimension of the input must be known; "
                             f"got shape {input_shape}")
        if self.built and channels != self._input_channels:
            hint = ""
            other = input_shape[-1 if self.data_format == "channels_first" else 1]
            if other == self._input_channels:
                hint = " (the layout looks swapped; check data_format)"
            raise ValueError(f"{self._where}: input must have {self._input_channels} channels (built for input "
                             f"{self.input_shape}); got {channels} channels in shape {input_shape}{hint}")
        self._check_channels(channels, input_shape)
        out = self.compute_output_shape(input_shape)
        spatial = U.channels_last_shape(out, self.data_format)[1:-1]
        if any(d is not None and d <= 0 for d in spatial):
            raise ValueError(
                f"{self._where}: output size must be > 0; got input {tuple(input_shape)} -> output {out} "
                f"(kernel_size={self.kernel_size}, strides={self.strides}, dilation_rate={self.dilation_rate}, "
                f"padding='{self.padding}': with 'valid' padding each spatial size must be at least "
                f"dilation*(kernel-1)+1; use padding='same', a smaller kernel or fewer pooling layers)")

    def _check_channels(self, channels, input_shape):
        """Subclass hook for channel/group divisibility rules."""

    def compute_output_shape(self, input_shape):
        shape = U.channels_last_shape(input_shape, self.data_format)
        spatial = tuple(self._output_length(i, n) for i, n in enumerate(shape[1:-1]))
        out = (shape[0],) + spatial + (self._output_channels(shape[-1]),)
        return U.from_channels_last_shape(out, self.data_format)

    def _output_length(self, i, n):
        return U.conv_output_length(n, self.kernel_size[i], self.strides[i], self.dilation_rate[i], self.padding)

    # ---------------------------------------------------------------- build / call / backward
    def build(self, input_shape):
        self._input_channels = U.channels_last_shape(input_shape, self.data_format)[-1]
        self._build_weights(self._input_channels)

    def _add_bias(self, size):
        if self.use_bias:
            self.bias = self.add_weight("bias", (size,), self.bias_initializer, regularizer=self.bias_regularizer)

    def _conv_args(self):
        return dict(strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate)

    def _bias_value(self):
        return None if self.bias is None else self.bias.value

    # Whether _forward takes the ops' activation arguments (the conv applies the activation).
    _fuses_activation = True

    def call(self, inputs, training=False):
        x = U.to_channels_last(inputs, self.data_format)
        fused = activations.fused(self.activation) if self._fuses_activation else None
        if fused is None:
            z = self._forward(x)
            y = self.activation(z)
            self._cache = (x, z, y)
        else:   # no pre-activation kept: backward works from y
            y = self._forward(x, **fused)
            self._cache = (x, None, y)
        self._last_inputs = inputs
        return U.to_channels_first(y, self.data_format)

    def backward(self, grad):
        return self._backward_from_output(grad, need_input_grad=True)

    def backward_weights_only(self, grad):
        """Like backward, for a layer whose input gradient nobody needs (a network's first
        layer): sets the weight gradients, skips the input gradient, returns None."""
        self._backward_from_output(grad, need_input_grad=False)

    def _backward_from_output(self, grad, need_input_grad):
        self._require_call()
        x, z, y = self._cache
        dy = U.to_channels_last(self._cast(grad), self.data_format)
        if z is None:
            dz = activations.backward_from_output(self.activation, dy, y)
        else:
            dz = activations.backward(self.activation, dy, z, y)
        dx = self._backward(dz, x, need_input_grad)
        return None if dx is None else U.to_channels_first(dx, self.data_format)

    def _set_bias_grad(self, dbias):
        if self.bias is not None:
            self._set_grad(self.bias, dbias)

    # ---------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update({
            "kernel_size": list(self.kernel_size), "strides": list(self.strides), "padding": self.padding,
            "data_format": self.data_format, "dilation_rate": list(self.dilation_rate),
            "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "bias_regularizer": U.serialize_regularizer(self.bias_regularizer),
        })
        return config


class Conv(BaseConv):
    """Grouped N-D convolution with a kernel (*kernel_size, c_in/groups, filters): Conv1D, Conv2D."""

    def __init__(self, rank, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(rank, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         bias_initializer=bias_initializer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, bias_constraint=bias_constraint, **kwargs)
        where = self._where
        filters = U.check_positive_int(filters, "filters", where)
        groups = U.check_positive_int(groups, "groups", where)
        if filters % groups:
            raise ValueError(f"{where}: filters must be evenly divisible by groups; "
                             f"Received: groups={groups}, filters={filters}")
        U.check_unsupported(where, kernel_constraint=kernel_constraint)
        self.filters = filters
        self.groups = groups
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel = None

    def _check_channels(self, channels, input_shape):
        if channels % self.groups:
            raise ValueError(f"{self._where}: input channels must be evenly divisible by groups; Received "
                             f"groups={self.groups}, but the input has {channels} channels (full input shape is "
                             f"{tuple(input_shape)})")

    def _output_channels(self, c_in):
        return self.filters

    def _build_weights(self, c_in):
        shape = self.kernel_size + (c_in // self.groups, self.filters)
        self.kernel = self.add_weight("kernel", shape, self.kernel_initializer, regularizer=self.kernel_regularizer)
        self._add_bias(self.filters)

    def _ops(self):
        return (ops.conv1d, ops.conv1d_backward) if self.rank == 1 else (ops.conv2d, ops.conv2d_backward)

    def _forward(self, x, **activation):
        forward, _ = self._ops()
        return forward(x, forward_kernel(self.kernel), self._bias_value(), groups=self.groups,
                       **self._conv_args(), **activation)

    def _backward(self, dz, x, need_input_grad=True):
        _, backward = self._ops()
        dx, dkernel, dbias = backward(dz, x, self.kernel.value, self._bias_value(), groups=self.groups,
                                      compute_dx=need_input_grad, **self._conv_args())
        self._set_grad(self.kernel, dkernel)
        self._set_bias_grad(dbias)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters, "groups": self.groups,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": U.serialize_regularizer(self.kernel_regularizer),
        })
        return config


class Conv1D(Conv):
    """1-D convolution over (batch, length, channels); padding 'valid', 'same' or 'causal'."""

    _paddings = ("valid", "same", "causal")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(1, filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, groups=groups, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer, **kwargs)


class Conv2D(Conv):
    """2-D convolution (cross-correlation) over NHWC input with an HWIO kernel.

    ``algorithm`` is a pycnn extension, not a Keras argument: "auto" (the default
    path) or, for 3x3 kernels with strides 1, dilation_rate 1 and groups 1,
    "winograd_2x2" / "winograd_4x4" to run the forward pass by Winograd (faster on
    channel-rich layers, with a larger but bounded rounding error; see
    ``pycnn.ops.conv2d``).  The backward pass is always the exact convolution's.
    It is saved in ``get_config()`` only when it is not "auto", so Keras configs
    stay the same."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, *, algorithm="auto", **kwargs):
        super().__init__(2, filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, groups=groups, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer, **kwargs)
        self.algorithm = self._check_algorithm(algorithm)

    def _check_algorithm(self, algorithm):
        where = self._where
        choices = ", ".join(repr(a) for a in ops.CONV2D_ALGORITHMS)
        if not isinstance(algorithm, str) or algorithm not in ops.CONV2D_ALGORITHMS:
            raise ValueError(f"{where}: algorithm must be one of {choices}; Received: algorithm={algorithm!r}")
        if algorithm != "auto" and (self.kernel_size != (3, 3) or self.strides != (1, 1)
                                    or self.dilation_rate != (1, 1) or self.groups != 1):
            raise ValueError(f"{where}: algorithm={algorithm!r} needs kernel_size (3, 3), strides (1, 1), "
                             f"dilation_rate (1, 1) and groups 1; Received: kernel_size={self.kernel_size}, "
                             f"strides={self.strides}, dilation_rate={self.dilation_rate}, groups={self.groups}")
        return algorithm

    def _forward(self, x, **activation):
        if self.algorithm == "auto":
            return super()._forward(x, **activation)
        return ops.conv2d(x, forward_kernel(self.kernel), self._bias_value(), groups=self.groups,
                          algorithm=self.algorithm, **self._conv_args(), **activation)

    def get_config(self):
        config = super().get_config()
        if self.algorithm != "auto":
            config["algorithm"] = self.algorithm
        return config


class DepthwiseConv2D(BaseConv):
    """Per-channel 2-D convolution; kernel (kh, kw, c_in, depth_multiplier), output channel c*dm + m."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(2, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         bias_initializer=bias_initializer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, bias_constraint=bias_constraint, **kwargs)
        depth_multiplier = U.check_positive_int(depth_multiplier, "depth_multiplier", self._where)
        U.check_unsupported(self._where, depthwise_constraint=depthwise_constraint)
        self.depth_multiplier = depth_multiplier
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_kernel = None

    def _output_channels(self, c_in):
        return None if c_in is None else c_in * self.depth_multiplier

    def _build_weights(self, c_in):
        self.depthwise_kernel = self.add_weight("depthwise_kernel", self.kernel_size + (c_in, self.depth_multiplier),
                                                self.depthwise_initializer, regularizer=self.depthwise_regularizer)
        self._add_bias(c_in * self.depth_multiplier)

    def _forward(self, x, **activation):
        return ops.depthwise_conv2d(x, self.depthwise_kernel.value, self._bias_value(), **self._conv_args(),
                                    **activation)

    def _backward(self, dz, x, need_input_grad=True):   # computes dx regardless
        dx, dkernel, dbias = ops.depthwise_conv2d_backward(dz, x, self.depthwise_kernel.value, self._bias_value(),
                                                           **self._conv_args())
        self._set_grad(self.depthwise_kernel, dkernel)
        self._set_bias_grad(dbias)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update({
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "depthwise_regularizer": U.serialize_regularizer(self.depthwise_regularizer),
        })
        return config


class SeparableConv2D(BaseConv):
    """Depthwise convolution (no bias) followed by a 1x1 pointwise convolution with bias."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(2, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         bias_initializer=bias_initializer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, bias_constraint=bias_constraint, **kwargs)
        where = self._where
        filters = U.check_positive_int(filters, "filters", where)
        depth_multiplier = U.check_positive_int(depth_multiplier, "depth_multiplier", where)
        U.check_unsupported(where, depthwise_constraint=depthwise_constraint,
                            pointwise_constraint=pointwise_constraint)
        self.filters = filters
        self.depth_multiplier = depth_multiplier
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.depthwise_kernel = self.pointwise_kernel = None

    def _output_channels(self, c_in):
        return self.filters

    def _build_weights(self, c_in):
        self.depthwise_kernel = self.add_weight("depthwise_kernel", self.kernel_size + (c_in, self.depth_multiplier),
                                                self.depthwise_initializer, regularizer=self.depthwise_regularizer)
        self.pointwise_kernel = self.add_weight("pointwise_kernel", (1, 1, c_in * self.depth_multiplier,
                                                                     self.filters),
                                                self.pointwise_initializer, regularizer=self.pointwise_regularizer)
        self._add_bias(self.filters)

    def _forward(self, x, **activation):
        self._depthwise_out = ops.depthwise_conv2d(x, self.depthwise_kernel.value, None, **self._conv_args())
        return ops.conv2d(self._depthwise_out, forward_kernel(self.pointwise_kernel), self._bias_value(),
                          **activation)

    def _backward(self, dz, x, need_input_grad=True):   # computes dx regardless
        dt, dpointwise, dbias = ops.conv2d_backward(dz, self._depthwise_out, self.pointwise_kernel.value,
                                                    self._bias_value())
        dx, ddepthwise, _ = ops.depthwise_conv2d_backward(dt, x, self.depthwise_kernel.value, None,
                                                          **self._conv_args())
        self._set_grad(self.depthwise_kernel, ddepthwise)
        self._set_grad(self.pointwise_kernel, dpointwise)
        self._set_bias_grad(dbias)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters, "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
            "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
            "depthwise_regularizer": U.serialize_regularizer(self.depthwise_regularizer),
            "pointwise_regularizer": U.serialize_regularizer(self.pointwise_regularizer),
        })
        return config


class Conv2DTranspose(BaseConv):
    """Transposed 2-D convolution; kernel (kh, kw, filters, c_in) as in Keras."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(2, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         bias_initializer=bias_initializer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, bias_constraint=bias_constraint, **kwargs)
        where = self._where
        filters = U.check_positive_int(filters, "filters", where)
        U.check_unsupported(where, kernel_constraint=kernel_constraint)
        if output_padding is not None:
            output_padding = U.normalize_tuple(output_padding, 2, "output_padding", where, allow_zero=True)
            if any(p >= s for p, s in zip(output_padding, self.strides)):
                raise ValueError(f"{where}: output_padding must be strictly less than strides; "
                                 f"Received: strides={self.strides}, output_padding={output_padding}")
        self.filters = filters
        self.output_padding = output_padding
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel = None

    # The transposed convolution adds its bias after a backward-data pass: no fused activation.
    _fuses_activation = False

    def _output_length(self, i, n):
        op = None if self.output_padding is None else self.output_padding[i]
        return U.transpose_output_length(n, self.kernel_size[i], self.strides[i], self.dilation_rate[i],
                                         self.padding, op)

    def _output_channels(self, c_in):
        return self.filters

    def _build_weights(self, c_in):
        self.kernel = self.add_weight("kernel", self.kernel_size + (self.filters, c_in), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self._add_bias(self.filters)

    def _forward(self, x):
        return ops.conv2d_transpose(x, self.kernel.value, self._bias_value(), output_padding=self.output_padding,
                                    **self._conv_args())

    def _backward(self, dz, x, need_input_grad=True):   # computes dx regardless
        dx, dkernel, dbias = ops.conv2d_transpose_backward(dz, x, self.kernel.value, self._bias_value(),
                                                           output_padding=self.output_padding, **self._conv_args())
        self._set_grad(self.kernel, dkernel)
        self._set_bias_grad(dbias)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "output_padding": None if self.output_padding is None else list(self.output_padding),
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": U.serialize_regularizer(self.kernel_regularizer),
        })
        return config
