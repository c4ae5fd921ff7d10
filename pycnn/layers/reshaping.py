"""Shape layers: Flatten, Reshape, UpSampling2D, ZeroPadding2D, Cropping2D."""
import numpy as np

from pycnn.layers import _utils as U
from pycnn.layers.base import Layer


def _prod(dims):
    return None if any(d is None for d in dims) else int(np.prod(dims, dtype=np.int64))


class Flatten(Layer):
    """(batch, ...) -> (batch, prod(...)); channels_first input is flattened in H, W, C order like Keras."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = U.normalize_data_format(data_format, f"Flatten '{self.name}'")
        self._in_shape = None

    def _check_input_shape(self, input_shape):
        if isinstance(input_shape, list):
            raise ValueError(f"Flatten '{self.name}': expects a single input; got {len(input_shape)} inputs")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], _prod(input_shape[1:]))

    def _to_last(self, x):
        return U.to_channels_last(x, self.data_format) if x.ndim >= 3 else x

    def call(self, inputs, training=False):
        self._last_inputs = inputs
        x = self._to_last(inputs)
        self._in_shape = x.shape
        return x.reshape(x.shape[0], _prod(x.shape[1:]))  # explicit size: -1 is ambiguous for batch 0

    def backward(self, grad):
        self._require_call()
        dx = self._cast(grad).reshape(self._in_shape)
        return U.to_channels_first(dx, self.data_format) if dx.ndim >= 3 else dx

    def get_config(self):
        config = super().get_config()
        config["data_format"] = self.data_format
        return config


class Reshape(Layer):
    """Reshape each sample to ``target_shape`` (batch dim excluded; one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        where = f"Reshape '{self.name}'"
        if not U.is_int_tuple(target_shape) or any(d is None or (d <= 0 and d != -1) for d in target_shape) \
                or sum(d == -1 for d in target_shape) > 1:
            raise ValueError(f"{where}: target_shape must be a tuple of positive ints with at most one -1; "
                             f"Received: target_shape={target_shape!r}")
        self.target_shape = tuple(int(d) for d in target_shape)

    def _resolve(self, input_shape):
        size = _prod(input_shape[1:])
        known = int(np.prod([d for d in self.target_shape if d != -1], dtype=np.int64))
        if size is None:
            return tuple(None if d == -1 else d for d in self.target_shape)
        if -1 in self.target_shape:
            if known == 0 or size % known:
                raise ValueError(f"Reshape '{self.name}': the total size must be unchanged; cannot reshape input "
                                 f"{tuple(input_shape)} ({size} values per sample) to {self.target_shape}")
            return tuple(size // known if d == -1 else d for d in self.target_shape)
        if known != size:
            raise ValueError(f"Reshape '{self.name}': the total size must be unchanged; got input "
                             f"{tuple(input_shape)} ({size} values per sample) and target_shape "
                             f"{self.target_shape} ({known} values)")
        return self.target_shape

    def _check_input_shape(self, input_shape):
        if isinstance(input_shape, list):
            raise ValueError(f"Reshape '{self.name}': expects a single input; got {len(input_shape)} inputs")
        self._resolve(input_shape)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolve(input_shape)

    def call(self, inputs, training=False):
        self._last_inputs = inputs
        return inputs.reshape((inputs.shape[0],) + self._resolve(inputs.shape))

    def backward(self, grad):
        self._require_call()
        return self._cast(grad).reshape(self._last_inputs.shape)

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config


class UpSampling2D(Layer):
    """Repeat rows/columns by ``size`` ('nearest') or resize bilinearly with half-pixel centres ('bilinear')."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        where = f"UpSampling2D '{self.name}'"
        self.size = U.normalize_tuple(size, 2, "size", where)
        self.data_format = U.normalize_data_format(data_format, where)
        if not isinstance(interpolation, str) or interpolation.lower() not in ("nearest", "bilinear"):
            raise ValueError(f"{where}: interpolation must be 'nearest' or 'bilinear'; "
                             f"Received: interpolation={interpolation!r}")
        self.interpolation = interpolation.lower()
        self._matrices = None

    def _check_input_shape(self, input_shape):
        U.check_rank(self, input_shape, 2, self.data_format)

    def compute_output_shape(self, input_shape):
        n, h, w, c = U.channels_last_shape(input_shape, self.data_format)
        out = (n, None if h is None else h * self.size[0], None if w is None else w * self.size[1], c)
        return U.from_channels_last_shape(out, self.data_format)

    def call(self, inputs, training=False):
        self._last_inputs = inputs
        x = U.to_channels_last(inputs, self.data_format)
        if self.interpolation == "nearest":
            y = np.repeat(np.repeat(x, self.size[0], axis=1), self.size[1], axis=2)
        else:
            _, h, w, _ = x.shape
            mh = U.resize_matrix(h, h * self.size[0], "bilinear", x.dtype)
            mw = U.resize_matrix(w, w * self.size[1], "bilinear", x.dtype)
            self._matrices = (mh, mw)
            y = U.resize_nhwc(x, mh, mw)
        return U.to_channels_first(y, self.data_format)

    def backward(self, grad):
        self._require_call()
        dy = U.to_channels_last(self._cast(grad), self.data_format)
        if self.interpolation == "nearest":
            n, oh, ow, c = dy.shape
            sh, sw = self.size
            dx = dy.reshape(n, oh // sh, sh, ow // sw, sw, c).sum(axis=(2, 4))
        else:
            mh, mw = self._matrices
            dx = U.resize_nhwc(dy, np.ascontiguousarray(mh.T), np.ascontiguousarray(mw.T))
        return U.to_channels_first(dx, self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update({"size": list(self.size), "data_format": self.data_format,
                       "interpolation": self.interpolation})
        return config


def _normalize_pairs(value, arg, where):
    """int -> ((v, v), (v, v)); (a, b) -> ((a, a), (b, b)); ((t, b), (l, r)) kept; all >= 0."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pairs = ((int(value),) * 2,) * 2
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        pairs = ((int(value[0]),) * 2, (int(value[1]),) * 2)
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(p, (tuple, list)) and len(p) == 2 and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in p) for p in value):
        pairs = tuple((int(p[0]), int(p[1])) for p in value)
    else:
        raise ValueError(f"{where}: {arg} must be an int, a tuple of 2 ints or a tuple of 2 tuples of 2 ints; "
                         f"Received: {arg}={value!r}")
    if any(v < 0 for p in pairs for v in p):
        raise ValueError(f"{where}: {arg} must be >= 0; Received: {arg}={value!r}")
    return pairs


class ZeroPadding2D(Layer):
    """Pad rows/columns with zeros: padding int, (sym_h, sym_w) or ((top, bottom), (left, right))."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        where = f"ZeroPadding2D '{self.name}'"
        self.padding = _normalize_pairs(padding, "padding", where)
        self.data_format = U.normalize_data_format(data_format, where)

    def _check_input_shape(self, input_shape):
        U.check_rank(self, input_shape, 2, self.data_format)

    def compute_output_shape(self, input_shape):
        n, h, w, c = U.channels_last_shape(input_shape, self.data_format)
        (t, b), (l, r) = self.padding
        out = (n, None if h is None else h + t + b, None if w is None else w + l + r, c)
        return U.from_channels_last_shape(out, self.data_format)

    def call(self, inputs, training=False):
        self._last_inputs = inputs
        x = U.to_channels_last(inputs, self.data_format)
        y = np.pad(x, ((0, 0), self.padding[0], self.padding[1], (0, 0)))
        return U.to_channels_first(y, self.data_format)

    def backward(self, grad):
        self._require_call()
        dy = U.to_channels_last(self._cast(grad), self.data_format)
        (t, b), (l, r) = self.padding
        dx = dy[:, t:dy.shape[1] - b, l:dy.shape[2] - r, :]
        return U.to_channels_first(np.ascontiguousarray(dx), self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update({"padding": [list(p) for p in self.padding], "data_format": self.data_format})
        return config


class Cropping2D(Layer):
    """Remove rows/columns: cropping int, (sym_h, sym_w) or ((top, bottom), (left, right))."""

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        where = f"Cropping2D '{self.name}'"
        self.cropping = _normalize_pairs(cropping, "cropping", where)
        self.data_format = U.normalize_data_format(data_format, where)

    def _check_input_shape(self, input_shape):
        U.check_rank(self, input_shape, 2, self.data_format)
        _, h, w, _ = U.channels_last_shape(input_shape, self.data_format)
        (t, b), (l, r) = self.cropping
        if (h is not None and t + b >= h) or (w is not None and l + r >= w):
            raise ValueError(f"Cropping2D '{self.name}': cropping must leave at least one row and column; got "
                             f"cropping={self.cropping} for input shape {tuple(input_shape)}")

    def compute_output_shape(self, input_shape):
        n, h, w, c = U.channels_last_shape(input_shape, self.data_format)
        (t, b), (l, r) = self.cropping
        out = (n, None if h is None else h - t - b, None if w is None else w - l - r, c)
        return U.from_channels_last_shape(out, self.data_format)

    def call(self, inputs, training=False):
        self._last_inputs = inputs
        x = U.to_channels_last(inputs, self.data_format)
        (t, b), (l, r) = self.cropping
        y = x[:, t:x.shape[1] - b, l:x.shape[2] - r, :]
        return U.to_channels_first(np.ascontiguousarray(y), self.data_format)

    def backward(self, grad):
        self._require_call()
        dy = U.to_channels_last(self._cast(grad), self.data_format)
        dx = np.pad(dy, ((0, 0), self.cropping[0], self.cropping[1], (0, 0)))
        return U.to_channels_first(dx, self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update({"cropping": [list(p) for p in self.cropping], "data_format": self.data_format})
        return config
