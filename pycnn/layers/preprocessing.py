"""Preprocessing layers usable inside models: Resizing and Rescaling."""
import numpy as np

from pycnn.layers import _utils as U
from pycnn.layers.base import Layer


class Resizing(Layer):
    """Resize images to (height, width): 'bilinear' or 'nearest', Keras/TF half-pixel centres, no antialias."""

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, antialias=False,
                 data_format=None, **kwargs):
        super().__init__(**kwargs)
        where = f"Resizing '{self.name}'"
        self.height = U.check_positive_int(height, "height", where)
        self.width = U.check_positive_int(width, "width", where)
        if not isinstance(interpolation, str) or interpolation.lower() not in ("bilinear", "nearest"):
            raise ValueError(f"{where}: interpolation must be 'bilinear' or 'nearest'; "
                             f"Received: interpolation={interpolation!r}")
        for arg, value in (("crop_to_aspect_ratio", crop_to_aspect_ratio),
                           ("pad_to_aspect_ratio", pad_to_aspect_ratio), ("antialias", antialias)):
            if value:
                raise ValueError(f"{where}: {arg} must be False (pycnn does not implement it); "
                                 f"Received: {arg}={value!r}")
        if fill_mode != "constant" or fill_value != 0.0:
            raise ValueError(f"{where}: fill_mode/fill_value only apply with pad_to_aspect_ratio, which pycnn does "
                             f"not implement; got fill_mode={fill_mode!r}, fill_value={fill_value!r}")
        self.interpolation = interpolation.lower()
        self.data_format = U.normalize_data_format(data_format, where)
        self._matrices = None

    def __call__(self, inputs, training=False, **kwargs):
        # Like Keras, a single unbatched image (h, w, c) is accepted and returned unbatched.
        if isinstance(inputs, np.ndarray) and inputs.ndim == 3:
            return super().__call__(inputs[None], training=training, **kwargs)[0]
        return super().__call__(inputs, training=training, **kwargs)

    def _check_input_shape(self, input_shape):
        U.check_rank(self, input_shape, 2, self.data_format)
        _, h, w, _ = U.channels_last_shape(input_shape, self.data_format)
        if h == 0 or w == 0:
            raise ValueError(f"Resizing '{self.name}': input images must be at least 1x1; got shape {input_shape}")

    def compute_output_shape(self, input_shape):
        n, _, _, c = U.channels_last_shape(input_shape, self.data_format)
        return U.from_channels_last_shape((n, self.height, self.width, c), self.data_format)

    def call(self, inputs, training=False):
        self._last_inputs = inputs
        x = U.to_channels_last(inputs, self.data_format)
        _, h, w, _ = x.shape
        mh = U.resize_matrix(h, self.height, self.interpolation, x.dtype)
        mw = U.resize_matrix(w, self.width, self.interpolation, x.dtype)
        self._matrices = (mh, mw)
        return U.to_channels_first(U.resize_nhwc(x, mh, mw), self.data_format)

    def backward(self, grad):
        self._require_call()
        grad = self._cast(grad)
        if grad.ndim == 3:  # the latest call was on an unbatched image
            return self.backward(grad[None])[0]
        mh, mw = self._matrices
        dy = U.to_channels_last(grad, self.data_format)
        dx = U.resize_nhwc(dy, np.ascontiguousarray(mh.T), np.ascontiguousarray(mw.T))
        return U.to_channels_first(dx, self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update({"height": self.height, "width": self.width, "interpolation": self.interpolation,
                       "data_format": self.data_format})
        return config


class Rescaling(Layer):
    """``x * scale + offset`` (e.g. Rescaling(1/255) turns uint8 pixels into [0, 1])."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        where = f"Rescaling '{self.name}'"
        for arg, value in (("scale", scale), ("offset", offset)):
            array = np.asarray(value)
            if array.dtype.kind not in "biuf" or not np.all(np.isfinite(array)):
                raise ValueError(f"{where}: {arg} must be a finite number or array of numbers; "
                                 f"Received: {arg}={value!r}")
        self.scale = scale if np.ndim(scale) else float(scale)
        self.offset = offset if np.ndim(offset) else float(offset)

    def call(self, inputs, training=False):
        self._last_inputs = inputs
        scale = np.asarray(self.scale, dtype=inputs.dtype)
        offset = np.asarray(self.offset, dtype=inputs.dtype)
        return inputs * scale + offset

    def backward(self, grad):
        self._require_call()
        grad = self._cast(grad)
        return grad * np.asarray(self.scale, dtype=grad.dtype)

    def get_config(self):
        config = super().get_config()
        to_json = (lambda v: np.asarray(v).tolist() if np.ndim(v) else v)
        config.update({"scale": to_json(self.scale), "offset": to_json(self.offset)})
        return config
