"""Random augmentation layers with Keras 3's names and units, active only when ``training=True``.

In inference (``training=False``) every layer returns its input unchanged.  Geometric
layers build one sampling matrix per image about the image centre and run the C warp;
``backward`` is the exact transpose of the warp that was applied, so the layers can sit
anywhere in a model.  Units follow Keras 3:

* ``RandomRotation(factor)``: angle ``factor * 360`` degrees (a float f means [-f, f]).
* ``RandomTranslation(height_factor, width_factor)``: fractions of the height / width.
* ``RandomZoom(height_factor, width_factor=None)``: ``1 + factor`` scaling of the sampled
  area, positive = zoom out; width follows height when None (aspect ratio kept).
* ``RandomShear(x_factor, y_factor)``: shear coefficients.
* ``RandomContrast(factor)``: ``(x - mean) * c + mean`` per image and channel with
  ``c ~ U(1 - f, 1 + f)`` (a pair (a, b): ``U(1 - a, 1 + b)``), clipped to ``value_range``.
* ``RandomBrightness(factor)``: adds ``delta * (high - low)`` with ``delta ~ U(-f, f)``,
  clipped to ``value_range``.
* ``RandomElasticTransform(factor, scale)``: applied with probability ``factor``;
  ``alpha = 0.1 * s * max(h, w)``, ``sigma = 0.05 * s * min(h, w)`` with ``s ~ U(0, scale)``.

Differences from Keras 3: the sampler is SciPy's (``fill_mode="wrap"`` has period n - 1,
``"reflect"`` is half-sample symmetric on every backend), pixel centres are at
``(h - 1) / 2, (w - 1) / 2``, and random streams come from NumPy generators.
"""
import numpy as np

from pycnn import backend
from pycnn.layers.base import Layer
from pycnn.preprocessing import _warp
from pycnn.preprocessing.elastic import displacement_fields

_INTERPOLATION = {"nearest": 0, "bilinear": 1}


def _factor_pair(where, name, value, symmetric=True, lower_bound=None):
    """A float f -> (-f, f) (or (0, f) when not symmetric); a pair -> itself (sorted check)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(isinstance(v, (int, float, np.integer, np.floating)) for v in value):
            raise ValueError(f"{where}: {name} must be a float or a pair of floats; Received: {name}={value!r}")
        lo, hi = float(value[0]), float(value[1])
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        f = abs(float(value))
        lo, hi = (-f, f) if symmetric else (0.0, f)
    else:
        raise ValueError(f"{where}: {name} must be a float or a pair of floats; Received: {name}={value!r}")
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi or (lower_bound is not None and lo < lower_bound):
        bound = f" and lower >= {lower_bound}" if lower_bound is not None else ""
        raise ValueError(f"{where}: {name} must satisfy lower <= upper{bound}; Received: {name}={value!r}")
    return lo, hi


class _RandomLayer(Layer):
    """Shared seed handling and the training switch."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"{type(self).__name__} '{self.name}': seed must be a non-negative int or None; "
                             f"Received: seed={seed!r}")
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._applied = None

    @property
    def _where(self):
        return f"{type(self).__name__} '{self.name}'"

    def _generator(self):
        return self._rng if self._rng is not None else backend.get_rng()

    def _check_input_shape(self, input_shape):
        if not isinstance(input_shape, tuple) or len(input_shape) != 4:
            raise ValueError(f"{self._where}: input must be 4-D (batch, height, width, channels); "
                             f"got shape {input_shape}")

    def call(self, inputs, training=False):
        self._last_inputs = inputs
        if not training or len(inputs) == 0:
            self._applied = None
            return inputs
        return self._augment(inputs)

    def backward(self, grad):
        self._require_call()
        grad = self._cast(grad)
        if self._applied is None:
            return grad
        return self._backward(grad)

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config


class _GeometricLayer(_RandomLayer):
    """A random affine warp per image; subclasses return the (n, 2, 3) sampling matrices."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        _warp.check_fill_mode(self._where, fill_mode)
        if interpolation not in _INTERPOLATION:
            raise ValueError(f"{self._where}: interpolation must be 'nearest' or 'bilinear'; "
                             f"Received: interpolation={interpolation!r}")
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.fill_value = _warp.check_cval(self._where, fill_value)

    @staticmethod
    def _about_centre(a, h, w):
        """Sampling matrices (n, 2, 3) for linear parts ``a`` (n, 2, 2) acting about the centre."""
        centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
        m = np.zeros((len(a), 2, 3))
        m[:, :, :2] = a
        m[:, :, 2] = centre - a @ centre
        return m

    def _augment(self, x):
        n, h, w, _ = x.shape
        mats = self._matrices(n, h, w, self._generator())
        self._applied = mats
        return _warp.affine_warp(x, mats, _INTERPOLATION[self.interpolation], self.fill_mode, self.fill_value)

    def _backward(self, grad):
        shape = self._last_inputs.shape
        coords = _warp.affine_coords(self._applied, shape[1], shape[2])
        return _warp.coords_warp_adjoint(grad, coords, shape, _INTERPOLATION[self.interpolation], self.fill_mode)

    def get_config(self):
        config = super().get_config()
        config.update({"fill_mode": self.fill_mode, "interpolation": self.interpolation,
                       "fill_value": self.fill_value})
        return config


class RandomFlip(_RandomLayer):
    """Flip each image horizontally and/or vertically with probability 0.5."""

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise ValueError(f"{self._where}: mode must be 'horizontal', 'vertical' or 'horizontal_and_vertical'; "
                             f"Received: mode={mode!r}")
        self.mode = mode

    def _augment(self, x):
        rng = self._generator()
        n = len(x)
        flip_h = (rng.random(n) < 0.5) & (self.mode != "vertical")
        flip_v = (rng.random(n) < 0.5) & (self.mode != "horizontal")
        self._applied = (flip_h, flip_v)
        return self._flip(x)

    def _flip(self, x):
        flip_h, flip_v = self._applied
        out = x.copy()
        out[flip_h] = out[flip_h][:, :, ::-1]
        out[flip_v] = out[flip_v][:, ::-1]
        return out

    _backward = _flip   # a flip is its own transpose

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config


class RandomRotation(_GeometricLayer):
    """Rotate by ``factor * 360`` degrees (float f: uniform in [-f, f]; or a (lower, upper) pair)."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = _factor_pair(self._where, "factor", factor)

    def _matrices(self, n, h, w, rng):
        # Positive angles turn the content counter-clockwise (Keras 3), so the sampling
        # matrix rotates the other way.
        t = -rng.uniform(self.factor[0], self.factor[1], n) * 2 * np.pi
        a = np.stack([np.stack([np.cos(t), -np.sin(t)], -1), np.stack([np.sin(t), np.cos(t)], -1)], 1)
        return self._about_centre(a, h, w)

    def get_config(self):
        config = super().get_config()
        config["factor"] = list(self.factor)
        return config


class RandomTranslation(_GeometricLayer):
    """Shift by fractions of the height and width (float f: uniform in [-f, f])."""

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = _factor_pair(self._where, "height_factor", height_factor)
        self.width_factor = _factor_pair(self._where, "width_factor", width_factor)

    def _matrices(self, n, h, w, rng):
        dy = rng.uniform(*self.height_factor, n) * h
        dx = rng.uniform(*self.width_factor, n) * w
        m = self._about_centre(np.tile(np.eye(2), (n, 1, 1)), h, w)
        m[:, 0, 2] -= dy    # content moves down by dy: sample dy rows above
        m[:, 1, 2] -= dx
        return m

    def get_config(self):
        config = super().get_config()
        config.update({"height_factor": list(self.height_factor), "width_factor": list(self.width_factor)})
        return config


class RandomZoom(_GeometricLayer):
    """Zoom by ``1 + factor`` (positive zooms out); width_factor None keeps the aspect ratio."""

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor = _factor_pair(self._where, "height_factor", height_factor, lower_bound=-1.0)
        self.width_factor = (None if width_factor is None else
                             _factor_pair(self._where, "width_factor", width_factor, lower_bound=-1.0))
        if self.height_factor[0] <= -1 or (self.width_factor is not None and self.width_factor[0] <= -1):
            raise ValueError(f"{self._where}: zoom factors must be > -1 (a factor of -1 zooms to a point); "
                             f"Received: height_factor={height_factor!r}, width_factor={width_factor!r}")

    def _matrices(self, n, h, w, rng):
        zy = 1.0 + rng.uniform(*self.height_factor, n)
        zx = zy if self.width_factor is None else 1.0 + rng.uniform(*self.width_factor, n)
        a = np.zeros((n, 2, 2))
        a[:, 0, 0], a[:, 1, 1] = zy, zx
        return self._about_centre(a, h, w)

    def get_config(self):
        config = super().get_config()
        config.update({"height_factor": list(self.height_factor),
                       "width_factor": None if self.width_factor is None else list(self.width_factor)})
        return config


class RandomShear(_GeometricLayer):
    """Shear along x (columns shift with the row) and y (rows shift with the column)."""

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                 seed=None, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.x_factor = _factor_pair(self._where, "x_factor", x_factor)
        self.y_factor = _factor_pair(self._where, "y_factor", y_factor)

    def _matrices(self, n, h, w, rng):
        sx = rng.uniform(*self.x_factor, n)
        sy = rng.uniform(*self.y_factor, n)
        a = np.tile(np.eye(2), (n, 1, 1))
        a[:, 1, 0] = sx      # input column = column + sx * (row - centre)
        a[:, 0, 1] = sy
        return self._about_centre(a, h, w)

    def get_config(self):
        config = super().get_config()
        config.update({"x_factor": list(self.x_factor), "y_factor": list(self.y_factor)})
        return config


def _value_range(where, value_range):
    if not isinstance(value_range, (list, tuple)) or len(value_range) != 2 or not value_range[0] < value_range[1]:
        raise ValueError(f"{where}: value_range must be a pair (low, high) with low < high; "
                         f"Received: value_range={value_range!r}")
    return float(value_range[0]), float(value_range[1])


class RandomContrast(_RandomLayer):
    """``(x - mean) * c + mean`` per image and channel, ``c ~ U(1 - f, 1 + f)``, clipped to value_range."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(factor, (list, tuple)) and len(factor) == 2:
            lower, upper = (abs(float(v)) for v in factor)   # Keras: U(1 - lower, 1 + upper)
        else:
            lower = upper = abs(_factor_pair(self._where, "factor", factor)[1])
        if not (np.isfinite(lower) and np.isfinite(upper)) or lower > 1:
            raise ValueError(f"{self._where}: factor must keep the contrast factor >= 0 (lower <= 1); "
                             f"Received: factor={factor!r}")
        self.factor = (lower, upper)
        self.value_range = _value_range(self._where, value_range)

    def _augment(self, x):
        c = self._generator().uniform(1.0 - self.factor[0], 1.0 + self.factor[1], len(x))
        c = c.astype(x.dtype)[:, None, None, None]
        mean = x.mean(axis=(1, 2), keepdims=True)
        raw = (x - mean) * c + mean
        out = np.clip(raw, *self.value_range)
        self._applied = (c, (raw >= self.value_range[0]) & (raw <= self.value_range[1]))
        return out.astype(x.dtype, copy=False)

    def _backward(self, grad):
        c, mask = self._applied
        g = grad * mask
        return (c * g + (1 - c) * g.mean(axis=(1, 2), keepdims=True)).astype(grad.dtype, copy=False)

    def get_config(self):
        config = super().get_config()
        config.update({"factor": list(self.factor), "value_range": list(self.value_range)})
        return config


class RandomBrightness(_RandomLayer):
    """Add ``delta * (high - low)``, ``delta ~ U(-f, f)`` (or a pair) per image, clipped to value_range."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_pair(self._where, "factor", factor)
        if self.factor[0] < -1 or self.factor[1] > 1:
            raise ValueError(f"{self._where}: factor must lie in [-1, 1]; Received: factor={factor!r}")
        self.value_range = _value_range(self._where, value_range)

    def _augment(self, x):
        lo, hi = self.value_range
        delta = self._generator().uniform(self.factor[0], self.factor[1], len(x)) * (hi - lo)
        raw = x + delta.astype(x.dtype)[:, None, None, None]
        self._applied = (raw >= lo) & (raw <= hi)
        return np.clip(raw, lo, hi).astype(x.dtype, copy=False)

    def _backward(self, grad):
        return (grad * self._applied).astype(grad.dtype, copy=False)

    def get_config(self):
        config = super().get_config()
        config.update({"factor": list(self.factor), "value_range": list(self.value_range)})
        return config


class RandomElasticTransform(_RandomLayer):
    """Elastic deformation applied with probability ``factor``; strength ``s ~ U(0, scale)``."""

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_mode="reflect", fill_value=0.0,
                 value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = _factor_pair(self._where, "factor", factor, symmetric=False, lower_bound=0.0)
        self.scale = _factor_pair(self._where, "scale", scale, symmetric=False, lower_bound=0.0)
        if self.factor[1] > 1:
            raise ValueError(f"{self._where}: factor is a probability and must lie in [0, 1]; "
                             f"Received: factor={factor!r}")
        _warp.check_fill_mode(self._where, fill_mode)
        if interpolation not in _INTERPOLATION:
            raise ValueError(f"{self._where}: interpolation must be 'nearest' or 'bilinear'; "
                             f"Received: interpolation={interpolation!r}")
        self.interpolation, self.fill_mode = interpolation, fill_mode
        self.fill_value = _warp.check_cval(self._where, fill_value)
        self.value_range = _value_range(self._where, value_range)

    def _augment(self, x):
        rng = self._generator()
        n, h, w, _ = x.shape
        apply = rng.random(n) < rng.uniform(self.factor[0], self.factor[1], n)
        strength = rng.uniform(self.scale[0], self.scale[1], n)
        rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
        coords = np.broadcast_to(np.stack([rows, cols], -1), (n, h, w, 2)).copy()
        for k in np.flatnonzero(apply & (strength > 0)):
            alpha = 0.1 * strength[k] * max(h, w)
            sigma = 0.05 * strength[k] * min(h, w)
            coords[k] += displacement_fields(1, h, w, alpha, sigma, rng)[0]
        out = _warp.coords_warp(x, coords, _INTERPOLATION[self.interpolation], self.fill_mode, self.fill_value)
        lo, hi = self.value_range
        self._applied = (coords, (out >= lo) & (out <= hi))
        return np.clip(out, lo, hi).astype(x.dtype, copy=False)

    def _backward(self, grad):
        coords, mask = self._applied
        return _warp.coords_warp_adjoint(grad * mask, coords, self._last_inputs.shape,
                                         _INTERPOLATION[self.interpolation], self.fill_mode)

    def get_config(self):
        config = super().get_config()
        config.update({"factor": list(self.factor), "scale": list(self.scale), "interpolation": self.interpolation,
                       "fill_mode": self.fill_mode, "fill_value": self.fill_value,
                       "value_range": list(self.value_range)})
        return config
