"""Pooling layers: Max/AveragePooling1D/2D and Global{Average,Max}Pooling1D/2D.

Keras semantics: strides default to pool_size; 'same' max pooling never picks a padded
cell and 'same' average pooling leaves padded cells out of the divisor (both done by
``pycnn.ops``). channels_first input is transposed at the boundary. In training calls max
pooling keeps the forward's argmax indices for its backward (as PyTorch does) rather than
searching x again; the gradient is the same bit for bit.
"""
import math

from pycnn import ops
from pycnn.layers import _utils as U
from pycnn.layers.base import Layer


class BasePooling(Layer):
    """Windowed pooling over rank spatial dims with a mode of 'max' or 'average'."""

    def __init__(self, rank, mode, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        self.rank, self.mode = rank, mode
        self.pool_size = U.normalize_tuple(pool_size, rank, "pool_size", where)
        self.strides = self.pool_size if strides is None else U.normalize_tuple(strides, rank, "strides", where)
        self.padding = U.normalize_padding(padding, where)
        self.data_format = U.normalize_data_format(data_format, where)
        self._x = None
        self._indices = None   # max: the forward's argmax positions, for backward

    def _ops(self):
        table = {(1, "max"): (ops.max_pool1d, ops.max_pool1d_backward),
                 (2, "max"): (ops.max_pool2d, ops.max_pool2d_backward),
                 (1, "average"): (ops.avg_pool1d, ops.avg_pool1d_backward),
                 (2, "average"): (ops.avg_pool2d, ops.avg_pool2d_backward)}
        return table[(self.rank, self.mode)]

    def _check_input_shape(self, input_shape):
        U.check_rank(self, input_shape, self.rank, self.data_format)
        out = self.compute_output_shape(input_shape)
        spatial = U.channels_last_shape(out, self.data_format)[1:-1]
        if any(d is not None and d <= 0 for d in spatial):
            raise ValueError(
                f"{type(self).__name__} '{self.name}': output size must be > 0; got input {tuple(input_shape)} -> "
                f"output {out} (pool_size={self.pool_size}, strides={self.strides}, padding='{self.padding}': "
                f"with 'valid' padding each spatial size must be at least pool_size; use padding='same' or "
                f"fewer downsampling layers)")

    def compute_output_shape(self, input_shape):
        shape = U.channels_last_shape(input_shape, self.data_format)
        spatial = tuple(U.conv_output_length(n, k, s, 1, self.padding)
                        for n, k, s in zip(shape[1:-1], self.pool_size, self.strides))
        return U.from_channels_last_shape((shape[0],) + spatial + (shape[-1],), self.data_format)

    def _args(self):
        return dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding)

    def call(self, inputs, training=False):
        x = U.to_channels_last(inputs, self.data_format)
        forward, _ = self._ops()
        self._x = x
        self._last_inputs = inputs
        # Training calls keep the argmax for backward; an inference call skips that cost (a
        # backward after it searches x again, same bytes).  int32 indices hold positions of
        # planes up to 2**31 - 1 cells; beyond, backward searches x too.
        if self.mode == "max" and training and math.prod(x.shape[1:-1]) <= 2**31 - 1:
            y, self._indices = forward(x, return_indices=True, **self._args())
        else:
            y, self._indices = forward(x, **self._args()), None
        return U.to_channels_first(y, self.data_format)

    def backward(self, grad):
        self._require_call()
        _, backward = self._ops()
        dy = U.to_channels_last(self._cast(grad), self.data_format)
        stored = {} if self._indices is None else {"indices": self._indices}
        return U.to_channels_first(backward(dy, self._x, **self._args(), **stored), self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": list(self.pool_size), "strides": list(self.strides), "padding": self.padding,
                       "data_format": self.data_format})
        return config


class MaxPooling1D(BasePooling):
    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(1, "max", pool_size, strides, padding, data_format, **kwargs)


class MaxPooling2D(BasePooling):
    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(2, "max", pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(BasePooling):
    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(1, "average", pool_size, strides, padding, data_format, **kwargs)


class AveragePooling2D(BasePooling):
    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(2, "average", pool_size, strides, padding, data_format, **kwargs)


class BaseGlobalPooling(Layer):
    """Reduce all spatial dims with 'max' or 'average'; keepdims keeps them as size 1."""

    def __init__(self, rank, mode, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.rank, self.mode = rank, mode
        self.data_format = U.normalize_data_format(data_format, f"{type(self).__name__} '{self.name}'")
        self.keepdims = bool(keepdims)
        self._x = None

    def _ops(self):
        table = {(1, "max"): (ops.global_max_pool1d, ops.global_max_pool1d_backward),
                 (2, "max"): (ops.global_max_pool2d, ops.global_max_pool2d_backward),
                 (1, "average"): (ops.global_avg_pool1d, ops.global_avg_pool1d_backward),
                 (2, "average"): (ops.global_avg_pool2d, ops.global_avg_pool2d_backward)}
        return table[(self.rank, self.mode)]

    def _check_input_shape(self, input_shape):
        U.check_rank(self, input_shape, self.rank, self.data_format)
        spatial = U.channels_last_shape(input_shape, self.data_format)[1:-1]
        if any(d == 0 for d in spatial):
            raise ValueError(f"{type(self).__name__} '{self.name}': spatial size must be > 0 to pool over; "
                             f"got input shape {tuple(input_shape)}")

    def compute_output_shape(self, input_shape):
        shape = U.channels_last_shape(input_shape, self.data_format)
        if not self.keepdims:
            return (shape[0], shape[-1])
        return U.from_channels_last_shape((shape[0],) + (1,) * self.rank + (shape[-1],), self.data_format)

    def call(self, inputs, training=False):
        x = U.to_channels_last(inputs, self.data_format)
        forward, _ = self._ops()
        self._x = x
        self._last_inputs = inputs
        y = forward(x, keepdims=self.keepdims)
        return U.to_channels_first(y, self.data_format) if self.keepdims else y

    def backward(self, grad):
        self._require_call()
        _, backward = self._ops()
        dy = self._cast(grad)
        if self.keepdims:
            dy = U.to_channels_last(dy, self.data_format)
        dx = backward(dy, self._x, keepdims=self.keepdims)
        return U.to_channels_first(dx, self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return config


class GlobalAveragePooling1D(BaseGlobalPooling):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(1, "average", data_format, keepdims, **kwargs)


class GlobalAveragePooling2D(BaseGlobalPooling):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(2, "average", data_format, keepdims, **kwargs)


class GlobalMaxPooling1D(BaseGlobalPooling):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(1, "max", data_format, keepdims, **kwargs)


class GlobalMaxPooling2D(BaseGlobalPooling):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(2, "max", data_format, keepdims, **kwargs)
