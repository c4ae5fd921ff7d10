"""Dropout layers (inverted dropout: kept units scaled by 1/(1-rate) during training only)."""
import numpy as np

from pycnn import backend
from pycnn.layers import _utils as U
from pycnn.layers.base import Layer


class Dropout(Layer):
    """Zero each unit with probability ``rate`` when training; masks from the seeded generator.

    ``noise_shape`` (batch dim included, None = take it from the input) broadcasts one mask
    value over the axes where it is 1. ``seed`` gives the layer its own generator; otherwise
    masks come from ``pycnn.backend.get_rng()`` (reseeded by ``set_seed``).
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) \
                or not 0 <= rate < 1:
            raise ValueError(f"{where}: rate must be a float in [0, 1); Received: rate={rate!r}")
        if noise_shape is not None and not U.is_int_tuple(noise_shape):
            raise ValueError(f"{where}: noise_shape must be a tuple of ints or None; "
                             f"Received: noise_shape={noise_shape!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"{where}: seed must be None or a non-negative integer; Received: seed={seed!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = None if seed is None else int(seed)
        self._generator = None if seed is None else np.random.default_rng(self.seed)
        self._mask = None

    def _noise_shape(self, shape):
        if self.noise_shape is None:
            return shape
        if len(self.noise_shape) != len(shape) or any(
                d is not None and d != 1 and d != n for d, n in zip(self.noise_shape, shape)):
            raise ValueError(f"{type(self).__name__} '{self.name}': noise_shape must broadcast to the input shape; "
                             f"got noise_shape={self.noise_shape} for input shape {shape}")
        return tuple(n if d is None else d for d, n in zip(self.noise_shape, shape))

    def call(self, inputs, training=False):
        self._last_inputs = inputs
        if not training or self.rate == 0:
            self._mask = None
            return inputs
        rng = self._generator if self._generator is not None else backend.get_rng()
        keep = rng.random(self._noise_shape(inputs.shape), dtype=np.float32) >= self.rate
        # Scale folded into the mask so forward and backward apply the same factor.
        self._mask = np.multiply(keep, 1.0 / (1.0 - self.rate), dtype=inputs.dtype)
        return inputs * self._mask

    def backward(self, grad):
        self._require_call()
        grad = self._cast(grad)
        return grad if self._mask is None else grad * self._mask

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed,
                       "noise_shape": None if self.noise_shape is None else list(self.noise_shape)})
        return config


class SpatialDropout1D(Dropout):
    """Drops whole channels of (batch, steps, channels) input."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)

    def _check_input_shape(self, input_shape):
        U.check_rank(self, input_shape, 1)

    def _noise_shape(self, shape):
        return (shape[0], 1, shape[2])

    def get_config(self):
        config = super().get_config()
        del config["noise_shape"]
        return config


class SpatialDropout2D(Dropout):
    """Drops whole feature maps (channels) of 4-D input."""

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        self.data_format = U.normalize_data_format(data_format, f"SpatialDropout2D '{self.name}'")

    def _check_input_shape(self, input_shape):
        U.check_rank(self, input_shape, 2, self.data_format)

    def _noise_shape(self, shape):
        if self.data_format == "channels_first":
            return (shape[0], shape[1], 1, 1)
        return (shape[0], 1, 1, shape[3])

    def get_config(self):
        config = super().get_config()
        del config["noise_shape"]
        config["data_format"] = self.data_format
        return config
