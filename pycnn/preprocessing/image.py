"""Image augmentation with Keras's legacy ``ImageDataGenerator`` API, plus image helpers.

``ImageDataGenerator`` takes every argument of Keras's and follows its semantics
(``keras/src/legacy/preprocessing/image.py``): the same random draws and units, the same
affine matrix ``R · T · Sh · Z`` about the image centre, SciPy's fill modes, the same
order of ``standardize``, the same implied flags and warnings.  Differences:

* The geometric warp runs in C on a whole batch at once (one fused matrix per image,
  flips folded in), multithreaded; ``interpolation_order`` is 0 or 1 (Keras accepts up
  to 5 through SciPy).
* ``brightness_range`` is applied in floating point without a Pillow round trip:
  ``clip(x * factor, 0, 255)`` for images in 0..255 (Keras quantises to 8 bits first,
  so values differ by at most about one grey level), and
  ``min + clip((x - min) * factor, 0, max - min)`` for images outside 0..255 (Keras
  rescales those to 0..255 first, which gives the same formula).
* Random numbers come from ``numpy.random.Generator``: ``pycnn.backend.get_rng()`` (seeded by
  ``pycnn.utils.set_random_seed``) unless a ``seed`` is passed; a seed gives the same batches
  on any thread count (the streams differ from Keras's ``np.random`` streams).
* ``standardize`` returns a new array (the input is not modified) and applies the
  samplewise statistics per image also when given a batch.
* ``elastic_alpha`` / ``elastic_sigma`` (pycnn extension) add an elastic deformation,
  fused with the affine warp into one sampling pass.
* ``flow`` takes no tuple-of-arrays ``x`` (extra model inputs).
"""
import math
import os
import warnings

import numpy as np

from pycnn import backend
from pycnn.imaging import to_grayscale
from pycnn.preprocessing import _warp
from pycnn.preprocessing.elastic import displacement_fields

__all__ = ["ImageDataGenerator", "NumpyArrayIterator", "load_img", "img_to_array",
           "array_to_img", "to_grayscale"]

_WHO = "ImageDataGenerator"


def _non_negative(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{_WHO}: {name} must be a number; got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{_WHO}: {name} must be a finite number >= 0; got {value!r}")
    return value


def _check_shift(name, value):
    """Keras accepts a float (fraction or pixels), an int (pixels, 0..n-1) or a list of values."""
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
            raise ValueError(f"{_WHO}: {name} as a list must be a non-empty 1-D list of numbers; got {value!r}")
        return list(value)
    return _non_negative(name, value)


class ImageDataGenerator:
    """Generate batches of augmented image data (Keras's legacy ``ImageDataGenerator``).

    See the module docstring for the few differences from Keras.  Geometric arguments:
    ``rotation_range`` (degrees), ``width_shift_range`` / ``height_shift_range`` (fraction
    of the size when < 1, else pixels; int n draws from -(n-1)..n-1; list = choices),
    ``shear_range`` (degrees), ``zoom_range`` (float z -> [1-z, 1+z], or [lo, hi]; > 1
    zooms out), ``horizontal_flip`` / ``vertical_flip`` (p = 0.5), ``fill_mode`` one of
    constant / nearest / reflect / wrap with ``cval``, ``interpolation_order`` 0 or 1.
    Colour: ``channel_shift_range``, ``brightness_range`` (a pair of factors).
    Normalisation (``standardize``, in this order): ``preprocessing_function``,
    ``rescale``, samplewise centre / std, featurewise centre / std, ZCA whitening.
    """

    def __init__(self, featurewise_center=False, samplewise_center=False,
                 featurewise_std_normalization=False, samplewise_std_normalization=False,
                 zca_whitening=False, zca_epsilon=1e-6, rotation_range=0, width_shift_range=0.0,
                 height_shift_range=0.0, brightness_range=None, shear_range=0.0, zoom_range=0.0,
                 channel_shift_range=0.0, fill_mode="nearest", cval=0.0, horizontal_flip=False,
                 vertical_flip=False, rescale=None, preprocessing_function=None, data_format=None,
                 validation_split=0.0, interpolation_order=1, dtype=None,
                 elastic_alpha=0.0, elastic_sigma=4.0):
        self.featurewise_center = bool(featurewise_center)
        self.samplewise_center = bool(samplewise_center)
        self.featurewise_std_normalization = bool(featurewise_std_normalization)
        self.samplewise_std_normalization = bool(samplewise_std_normalization)
        self.zca_whitening = bool(zca_whitening)
        self.zca_epsilon = _non_negative("zca_epsilon", zca_epsilon)
        self.rotation_range = _non_negative("rotation_range", rotation_range)
        self.width_shift_range = _check_shift("width_shift_range", width_shift_range)
        self.height_shift_range = _check_shift("height_shift_range", height_shift_range)
        self.shear_range = _non_negative("shear_range", shear_range)
        self.channel_shift_range = _non_negative("channel_shift_range", channel_shift_range)
        self._fill_code = _warp.check_fill_mode(_WHO, fill_mode)
        self.fill_mode = fill_mode
        self.cval = _warp.check_cval(_WHO, cval)
        self.interpolation_order = _warp.check_order(_WHO, interpolation_order)
        self.horizontal_flip = bool(horizontal_flip)
        self.vertical_flip = bool(vertical_flip)
        if rescale is not None and not isinstance(rescale, (int, float, np.integer, np.floating)):
            raise TypeError(f"{_WHO}: rescale must be a number or None; got {rescale!r}")
        self.rescale = rescale
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise TypeError(f"{_WHO}: preprocessing_function must be callable or None; got {preprocessing_function!r}")
        self.preprocessing_function = preprocessing_function
        self.dtype = np.dtype(backend.floatx() if dtype is None else dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"{_WHO}: dtype must be float32 or float64; got {dtype!r}")
        self.elastic_alpha = _non_negative("elastic_alpha", elastic_alpha)
        self.elastic_sigma = _non_negative("elastic_sigma", elastic_sigma)
        if self.elastic_alpha and not self.elastic_sigma:
            raise ValueError(f"{_WHO}: elastic_sigma must be > 0 when elastic_alpha is set; got {elastic_sigma!r}")

        if data_format is None:
            data_format = backend.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f"{_WHO}: data_format must be 'channels_last' or 'channels_first'; got {data_format!r}")
        self.data_format = data_format
        self.channel_axis, self.row_axis, self.col_axis = (3, 1, 2) if data_format == "channels_last" else (1, 2, 3)

        if not isinstance(validation_split, (int, float, np.integer, np.floating)) or isinstance(validation_split, bool) \
                or not 0 <= validation_split < 1:
            raise ValueError(f"{_WHO}: validation_split must be in [0, 1); got {validation_split!r}")
        self._validation_split = float(validation_split)

        if isinstance(zoom_range, (int, float, np.integer, np.floating)) and not isinstance(zoom_range, bool):
            lo, hi = 1 - zoom_range, 1 + zoom_range
        elif isinstance(zoom_range, (list, tuple)) and len(zoom_range) == 2 and all(
                isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in zoom_range):
            lo, hi = zoom_range
        else:
            raise ValueError(f"{_WHO}: zoom_range must be a float or a pair [lower, upper]; got {zoom_range!r}")
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo <= 0 or hi <= 0 or lo > hi:
            raise ValueError(
                f"{_WHO}: zoom_range must give zoom factors 0 < lower <= upper; got {zoom_range!r} "
                f"-> [{lo}, {hi}] (a float z means [1 - z, 1 + z], so z must be < 1)")
        self.zoom_range = [lo, hi]

        if brightness_range is not None:
            if not isinstance(brightness_range, (list, tuple, np.ndarray)) or len(brightness_range) != 2:
                raise ValueError(
                    f"{_WHO}: brightness_range must be a pair (lower, upper) of factors; got {brightness_range!r}")
            lo_b, hi_b = (float(v) for v in brightness_range)
            if not (np.isfinite(lo_b) and np.isfinite(hi_b)) or lo_b < 0 or lo_b > hi_b:
                raise ValueError(
                    f"{_WHO}: brightness_range must satisfy 0 <= lower <= upper; got {brightness_range!r}")
            brightness_range = (lo_b, hi_b)
        self.brightness_range = brightness_range

        # Implied flags, with Keras's warnings.
        if self.zca_whitening:
            if not self.featurewise_center:
                self.featurewise_center = True
                warnings.warn("This ImageDataGenerator specifies `zca_whitening`, which overrides "
                              "setting of `featurewise_center`.")
            if self.featurewise_std_normalization:
                self.featurewise_std_normalization = False
                warnings.warn("This ImageDataGenerator specifies `zca_whitening` which overrides "
                              "setting of `featurewise_std_normalization`.")
        if self.featurewise_std_normalization and not self.featurewise_center:
            self.featurewise_center = True
            warnings.warn("This ImageDataGenerator specifies `featurewise_std_normalization`, which "
                          "overrides setting of `featurewise_center`.")
        if self.samplewise_std_normalization and not self.samplewise_center:
            self.samplewise_center = True
            warnings.warn("This ImageDataGenerator specifies `samplewise_std_normalization`, which "
                          "overrides setting of `samplewise_center`.")

        self.mean = None
        self.std = None
        self.zca_whitening_matrix = None

    # ------------------------------------------------------------------ layout
    def _to_nhwc(self, x):
        return x if self.data_format == "channels_last" else np.moveaxis(x, 1, 3)

    def _from_nhwc(self, x):
        return x if self.data_format == "channels_last" else np.ascontiguousarray(np.moveaxis(x, 3, 1))

    # ------------------------------------------------------------- random draws
    def _rng(self, seed):
        return backend.get_rng() if seed is None else np.random.default_rng(seed)

    @staticmethod
    def _draw_shift(spec, n, size, rng):
        if isinstance(spec, list) or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool)):
            choices = np.asarray(spec, dtype=np.float64) if isinstance(spec, list) else np.arange(spec, dtype=np.float64)
            value = rng.choice(choices, n) * rng.choice(np.array([-1.0, 1.0]), n)
        else:
            value = rng.uniform(-spec, spec, n)
        if np.max(spec) < 1:
            value = value * size
        return value

    def _draw(self, n, h, w, rng):
        """Transform parameters for n images of size h x w, as arrays (Keras's draws, batched)."""
        zero = np.zeros(n)
        p = {
            "theta": rng.uniform(-self.rotation_range, self.rotation_range, n) if self.rotation_range else zero,
            "tx": self._draw_shift(self.height_shift_range, n, h, rng) if self._active(self.height_shift_range) else zero,
            "ty": self._draw_shift(self.width_shift_range, n, w, rng) if self._active(self.width_shift_range) else zero,
            "shear": rng.uniform(-self.shear_range, self.shear_range, n) if self.shear_range else zero,
        }
        if self.zoom_range[0] == 1 and self.zoom_range[1] == 1:
            p["zx"], p["zy"] = np.ones(n), np.ones(n)
        else:
            z = rng.uniform(self.zoom_range[0], self.zoom_range[1], (n, 2))
            p["zx"], p["zy"] = z[:, 0], z[:, 1]
        p["flip_horizontal"] = (rng.random(n) < 0.5) & self.horizontal_flip
        p["flip_vertical"] = (rng.random(n) < 0.5) & self.vertical_flip
        p["channel_shift_intensity"] = (rng.uniform(-self.channel_shift_range, self.channel_shift_range, n)
                                        if self.channel_shift_range else None)
        p["brightness"] = (rng.uniform(self.brightness_range[0], self.brightness_range[1], n)
                           if self.brightness_range is not None else None)
        if self.elastic_alpha:
            p["elastic"] = displacement_fields(n, h, w, self.elastic_alpha, self.elastic_sigma, rng)
        return p

    @staticmethod
    def _active(spec):
        return bool(np.any(np.asarray(spec) != 0)) if isinstance(spec, list) else bool(spec)

    def get_random_transform(self, img_shape, seed=None):
        """Random parameters for one image of shape ``img_shape`` (a dict, Keras's keys)."""
        if len(img_shape) != 3:
            raise ValueError(f"{_WHO}.get_random_transform: img_shape must be (rows, cols, channels) "
                             f"in the generator's data_format; got {tuple(img_shape)}")
        h, w = img_shape[self.row_axis - 1], img_shape[self.col_axis - 1]
        p = self._draw(1, h, w, self._rng(seed))
        out = {}
        for key, value in p.items():
            if value is None:
                out[key] = None
            elif key == "elastic":
                out[key] = value[0]
            elif key.startswith("flip"):
                out[key] = bool(value[0])
            else:
                out[key] = float(value[0])
        return out

    # ---------------------------------------------------------------- transforms
    def _apply_batch(self, x, p):
        """Apply batched parameters ``p`` to NHWC float images ``x`` (returns a new array)."""
        n, h, w, _ = x.shape
        mats = _warp.keras_matrices(h, w, p["theta"], p["tx"], p["ty"], p["shear"], p["zx"], p["zy"],
                                    p["flip_horizontal"], p["flip_vertical"])
        elastic = p.get("elastic")
        if elastic is not None:
            rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
            r = rows[None] + elastic[..., 0]
            c = cols[None] + elastic[..., 1]
            coords = np.empty((n, h, w, 2))
            coords[..., 0] = mats[:, 0, 0, None, None] * r + mats[:, 0, 1, None, None] * c + mats[:, 0, 2, None, None]
            coords[..., 1] = mats[:, 1, 0, None, None] * r + mats[:, 1, 1, None, None] * c + mats[:, 1, 2, None, None]
            x = _warp.coords_warp(x, coords, self.interpolation_order, self.fill_mode, self.cval)
        else:
            x = _warp.affine_warp(x, mats, self.interpolation_order, self.fill_mode, self.cval)
        shift = p.get("channel_shift_intensity")
        if shift is not None:
            shift = np.asarray(shift, dtype=np.float64)
            lo = x.min(axis=(1, 2, 3), keepdims=True)
            hi = x.max(axis=(1, 2, 3), keepdims=True)
            x = np.clip(x + shift[:, None, None, None].astype(x.dtype), lo, hi)
        bright = p.get("brightness")
        if bright is not None:
            x = _brightness(x, np.asarray(bright, dtype=np.float64))
        return x

    def apply_transform(self, x, transform_parameters):
        """Apply a parameter dict (as from ``get_random_transform``) to one 3-D image.

        Missing keys mean "no change", as in Keras.  Returns a new float array.
        """
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"{_WHO}.apply_transform: x must be one 3-D image; got shape {x.shape}")
        if not isinstance(transform_parameters, dict):
            raise TypeError(f"{_WHO}.apply_transform: transform_parameters must be a dict; "
                            f"got {type(transform_parameters).__name__}")
        tp = transform_parameters
        p = {key: np.array([tp.get(key, default)], dtype=np.float64)
             for key, default in (("theta", 0), ("tx", 0), ("ty", 0), ("shear", 0), ("zx", 1), ("zy", 1))}
        p["flip_horizontal"] = np.array([bool(tp.get("flip_horizontal", False))])
        p["flip_vertical"] = np.array([bool(tp.get("flip_vertical", False))])
        for key in ("channel_shift_intensity", "brightness"):
            p[key] = None if tp.get(key) is None else np.array([tp[key]], dtype=np.float64)
        p["elastic"] = None if tp.get("elastic") is None else np.asarray(tp["elastic"], dtype=np.float64)[None]
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else self.dtype
        batch = self._to_nhwc(x.astype(dtype, copy=False)[None])
        return self._from_nhwc(self._apply_batch(np.ascontiguousarray(batch), p))[0]

    def random_transform(self, x, seed=None):
        """Apply a random transformation to one 3-D image."""
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"{_WHO}.random_transform: x must be one 3-D image; got shape {x.shape}")
        return self.apply_transform(x, self.get_random_transform(x.shape, seed))

    def augment_batch(self, x, seed=None, rng=None):
        """Randomly transform a batch of images (n, ...) in one C call; returns a new array."""
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"{_WHO}.augment_batch: x must be 4-D; got shape {x.shape}")
        rng = rng if rng is not None else self._rng(seed)
        batch = np.ascontiguousarray(self._to_nhwc(x.astype(self.dtype, copy=False)))
        p = self._draw(len(batch), batch.shape[1], batch.shape[2], rng)
        return self._from_nhwc(self._apply_batch(batch, p))

    # ----------------------------------------------------------- normalisation
    def standardize(self, x):
        """Apply the normalisation configuration to one image (3-D) or a batch (4-D).

        Order as Keras: preprocessing_function (per image), rescale, samplewise centre,
        samplewise std, featurewise centre, featurewise std, ZCA.  Returns a new array.
        """
        x = np.array(x, dtype=self.dtype if np.asarray(x).dtype not in (np.float32, np.float64)
                     else np.asarray(x).dtype, copy=True)
        if x.ndim not in (3, 4):
            raise ValueError(f"{_WHO}.standardize: x must be one 3-D image or a 4-D batch; got shape {x.shape}")
        batch = self._standardize_batch(x if x.ndim == 4 else x[None])
        return batch if x.ndim == 4 else batch[0]

    def _standardize_batch(self, batch):
        """``standardize`` on a float batch this generator owns (modified in place when possible)."""
        if self.preprocessing_function:
            batch = np.stack([np.asarray(self.preprocessing_function(img), dtype=batch.dtype) for img in batch])
        if self.rescale:
            batch *= batch.dtype.type(self.rescale)
        if self.samplewise_center:
            batch -= np.mean(batch, axis=(1, 2, 3), keepdims=True)
        if self.samplewise_std_normalization:
            batch /= np.std(batch, axis=(1, 2, 3), keepdims=True) + 1e-6
        if self.featurewise_center:
            if self.mean is not None:
                batch -= self.mean
            else:
                warnings.warn("This ImageDataGenerator specifies `featurewise_center`, but it hasn't been "
                              "fit on any training data. Fit it first by calling `.fit(numpy_data)`.")
        if self.featurewise_std_normalization:
            if self.std is not None:
                batch /= self.std + 1e-6
            else:
                warnings.warn("This ImageDataGenerator specifies `featurewise_std_normalization`, but it "
                              "hasn't been fit on any training data. Fit it first by calling `.fit(numpy_data)`.")
        if self.zca_whitening:
            if self.zca_whitening_matrix is not None:
                flat = batch.reshape(len(batch), -1)
                batch = (flat @ self.zca_whitening_matrix).reshape(batch.shape).astype(batch.dtype, copy=False)
            else:
                warnings.warn("This ImageDataGenerator specifies `zca_whitening`, but it hasn't been fit on "
                              "any training data. Fit it first by calling `.fit(numpy_data)`.")
        return batch

    def fit(self, x, augment=False, rounds=1, seed=None):
        """Compute the featurewise statistics (mean, std, ZCA matrix) from sample data ``x``.

        ``x`` must be 4-D; channels other than 1, 3 or 4 only warn (as Keras).  ``rescale``
        is applied first; with ``augment`` the statistics come from ``rounds`` randomly
        augmented copies of the data.
        """
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 4:
            raise ValueError(f"{_WHO}.fit: x must have rank 4 (n, rows, cols, channels); got shape {x.shape}")
        if x.shape[self.channel_axis] not in (1, 3, 4):
            warnings.warn(
                f"Expected input to be images (as Numpy array) following the data format convention "
                f'"{self.data_format}" (channels on axis {self.channel_axis}), i.e. expected either 1, 3 or 4 '
                f"channels on axis {self.channel_axis}. However, it was passed an array with shape {x.shape} "
                f"({x.shape[self.channel_axis]} channels).")
        if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
            raise ValueError(f"{_WHO}.fit: rounds must be an int >= 1; got {rounds!r}")
        x = np.copy(x)
        if self.rescale:
            x *= x.dtype.type(self.rescale)
        if augment:
            rng = self._rng(seed)
            x = np.concatenate([self.augment_batch(x, rng=rng) for _ in range(rounds)])
        axes = (0, self.row_axis, self.col_axis)
        shape = [1, 1, 1]
        shape[self.channel_axis - 1] = x.shape[self.channel_axis]
        if self.featurewise_center:
            self.mean = np.mean(x, axis=axes).reshape(shape)
            x -= self.mean
        if self.featurewise_std_normalization:
            self.std = np.std(x, axis=axes).reshape(shape)
            x /= self.std + 1e-6
        if self.zca_whitening:
            n = len(x)
            flat = x.reshape(n, -1).astype(np.float64)
            u, s, _ = np.linalg.svd(flat.T, full_matrices=False)
            s_inv = np.sqrt(n) / (s + self.zca_epsilon)
            self.zca_whitening_matrix = ((u * s_inv) @ u.T).astype(self.dtype)

    # --------------------------------------------------------------------- flow
    def flow(self, x, y=None, batch_size=32, shuffle=True, sample_weight=None, seed=None,
             save_to_dir=None, save_prefix="", save_format="png", ignore_class_split=False, subset=None):
        """An endless iterator of ``(x_batch, y_batch)`` (just ``x_batch`` when y is None).

        ``len(it)`` is ``ceil(n / batch_size)`` (the last batch is short); the order is
        reshuffled every epoch; ``next(it)`` and ``it.next()`` both work, and
        ``model.fit(datagen.flow(x, y, batch_size=...))`` runs ``len(it)`` steps per epoch.
        With ``validation_split``, ``subset="validation"`` takes the *first* fraction of
        the rows and ``"training"`` the rest (Keras's rule).  ``save_to_dir`` writes every
        generated image (after ``standardize``, its min..max scaled to 0..255, as Keras does)
        as ``<save_prefix>_<index>_<random>.<save_format>`` (needs Pillow).
        """
        return NumpyArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle,
                                  sample_weight=sample_weight, seed=seed, save_to_dir=save_to_dir,
                                  save_prefix=save_prefix, save_format=save_format,
                                  ignore_class_split=ignore_class_split, subset=subset)


def _brightness(x, factor):
    """Brightness scaling per image without Pillow (see the module docstring)."""
    f = factor[:, None, None, None]
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    hi = x.max(axis=(1, 2, 3), keepdims=True)
    in_range = (lo >= 0) & (hi <= 255)
    scaled_in = np.clip(x * f, 0, 255)
    scaled_out = lo + np.clip((x - lo) * f, 0, hi - lo)
    return np.where(in_range, scaled_in, scaled_out).astype(x.dtype, copy=False)


class NumpyArrayIterator:
    """Batches of augmented images from arrays (Keras's ``NumpyArrayIterator``)."""

    def __init__(self, x, y, image_data_generator, batch_size=32, shuffle=True, sample_weight=None,
                 seed=None, save_to_dir=None, save_prefix="", save_format="png", ignore_class_split=False,
                 subset=None):
        gen = image_data_generator
        who = f"{_WHO}.flow"
        if save_to_dir is not None:
            _pil(who)
            if not os.path.isdir(save_to_dir):
                raise ValueError(f"{who}: save_to_dir must be an existing folder; got {save_to_dir!r}")
            if save_format.lower() not in ("png", "jpeg", "jpg", "bmp", "gif", "tiff"):
                raise ValueError(f"{who}: save_format must be png, jpeg, bmp, gif or tiff; got {save_format!r}")
        self.save_to_dir, self.save_prefix, self.save_format = save_to_dir, save_prefix, save_format
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"{who}: x must be a rank-4 array of images; got shape {x.shape}")
        if x.shape[gen.channel_axis] not in (1, 3, 4):
            warnings.warn(
                f'NumpyArrayIterator is set to use the data format convention "{gen.data_format}" (channels on '
                f"axis {gen.channel_axis}), i.e. expected either 1, 3, or 4 channels on axis {gen.channel_axis}. "
                f"However, it was passed an array with shape {x.shape} ({x.shape[gen.channel_axis]} channels).")
        if y is not None:
            y = np.asarray(y)
            if len(x) != len(y):
                raise ValueError(
                    f"{who}: x (images) and y (labels) must have the same length; got x.shape={x.shape}, "
                    f"y.shape={y.shape}")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)
            if len(sample_weight) != len(x):
                raise ValueError(
                    f"{who}: sample_weight must have one weight per image; got x.shape={x.shape}, "
                    f"sample_weight.shape={sample_weight.shape}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"{who}: batch_size must be an int >= 1; got {batch_size!r}")
        if subset is not None:
            if subset not in ("training", "validation"):
                raise ValueError(f"{who}: subset must be 'training', 'validation' or None; got {subset!r}")
            if not gen._validation_split:
                raise ValueError(f"{who}: subset={subset!r} needs validation_split > 0 in the ImageDataGenerator")
            split = int(len(x) * gen._validation_split)
            if y is not None and not ignore_class_split and not np.array_equal(
                    np.unique(y[:split]), np.unique(y[split:])):
                raise ValueError(
                    f"{who}: training and validation subsets must contain the same classes after the split "
                    f"(validation = the first {split} rows); got different classes (if the arrays are sorted "
                    f"by label, shuffle them first, or pass ignore_class_split=True)")
            part = slice(None, split) if subset == "validation" else slice(split, None)
            x = x[part]
            y = y[part] if y is not None else None
            sample_weight = sample_weight[part] if sample_weight is not None else None
        self.x = np.asarray(x, dtype=gen.dtype)
        self.y, self.sample_weight = y, sample_weight
        self.image_data_generator = gen
        self.n = len(self.x)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else backend.get_rng()
        self.batch_index = 0
        self.total_batches_seen = 0
        self._set_index_array()

    def _set_index_array(self):
        self.index_array = self._rng.permutation(self.n) if self.shuffle else np.arange(self.n)

    def __len__(self):
        return math.ceil(self.n / self.batch_size)

    def on_epoch_end(self):
        """Reshuffle for the next epoch."""
        self._set_index_array()

    def reset(self):
        self.batch_index = 0

    def __getitem__(self, idx):
        if not 0 <= idx < len(self):
            raise IndexError(f"{_WHO}.flow: batch index must be in 0..{len(self) - 1}; got {idx}")
        idx_slice = self.index_array[self.batch_size * idx:self.batch_size * (idx + 1)]
        return self._batch(idx_slice)

    def _batch(self, index_array):
        gen = self.image_data_generator
        x = gen._standardize_batch(gen.augment_batch(self.x[index_array], rng=self._rng))
        if self.save_to_dir is not None:
            for i, j in enumerate(index_array):
                img = array_to_img(x[i], gen.data_format, scale=True)
                name = f"{self.save_prefix}_{j}_{int(self._rng.integers(10_000_000))}.{self.save_format}"
                img.save(os.path.join(self.save_to_dir, name))
        out = [x]
        if self.y is not None:
            out.append(self.y[index_array])
        if self.sample_weight is not None:
            out.append(self.sample_weight[index_array])
        return out[0] if len(out) == 1 else tuple(out)

    def __iter__(self):
        return self

    def __next__(self):
        if self.n == 0:
            raise StopIteration
        if self.batch_index >= len(self):
            self.batch_index = 0
            self.on_epoch_end()
        idx = self.batch_index
        self.batch_index += 1
        self.total_batches_seen += 1
        return self[idx]

    def next(self):
        """Legacy spelling of ``next(it)``."""
        return self.__next__()


# ---------------------------------------------------------------- image files
def _pil(who):
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(f"{who}: Pillow must be installed to read or write images; got ImportError "
                          f"(pip install pillow)") from exc
    return Image


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    """Load an image file as a PIL Image (Keras's ``load_img``; needs Pillow).

    ``color_mode`` is "grayscale", "rgb" or "rgba"; ``target_size`` (height, width)
    resizes with ``interpolation`` ("nearest", "bilinear", "bicubic", "lanczos", "box",
    "hamming"), centre-cropping first to the target's aspect ratio when ``keep_aspect_ratio``.
    """
    Image = _pil("load_img")
    modes = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}
    if color_mode not in modes:
        raise ValueError(f"load_img: color_mode must be 'grayscale', 'rgb' or 'rgba'; got {color_mode!r}")
    methods = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
               "lanczos": Image.LANCZOS, "box": Image.BOX, "hamming": Image.HAMMING}
    if interpolation not in methods:
        raise ValueError(f"load_img: interpolation must be one of {sorted(methods)}; got {interpolation!r}")
    with open(path, "rb") as f:
        img = Image.open(f)
        img.load()
    if img.mode != modes[color_mode]:
        img = img.convert(modes[color_mode])
    if target_size is not None:
        height, width = target_size
        if (img.size[0], img.size[1]) != (width, height):
            if keep_aspect_ratio:
                w, h = img.size
                crop_h = min(h, round(w * height / width))
                crop_w = min(w, round(h * width / height))
                top, left = (h - crop_h) // 2, (w - crop_w) // 2
                img = img.crop((left, top, left + crop_w, top + crop_h))
            img = img.resize((width, height), methods[interpolation])
    return img


def img_to_array(img, data_format=None, dtype=None):
    """A PIL Image (or array-like) as a float array (h, w, c) (channels first if asked)."""
    data_format = data_format or backend.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"img_to_array: data_format must be 'channels_last' or 'channels_first'; got {data_format!r}")
    x = np.asarray(img, dtype=dtype or backend.floatx())
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise ValueError(f"img_to_array: image must be 2-D or 3-D; got shape {x.shape}")
    return np.ascontiguousarray(np.moveaxis(x, 2, 0)) if data_format == "channels_first" else x


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A 3-D array as a PIL Image (needs Pillow); ``scale`` maps its min..max to 0..255."""
    Image = _pil("array_to_img")
    data_format = data_format or backend.image_data_format()
    x = np.asarray(x, dtype=dtype or backend.floatx())
    if x.ndim != 3:
        raise ValueError(f"array_to_img: x must be a 3-D image array; got shape {x.shape}")
    if data_format == "channels_first":
        x = np.moveaxis(x, 0, 2)
    if scale:
        x = x - np.min(x)
        peak = np.max(x)
        if peak != 0:
            x = x / peak
        x = x * 255
    channels = x.shape[2]
    if channels not in (1, 3, 4):
        raise ValueError(f"array_to_img: x must have 1, 3 or 4 channels; got {channels} (shape {x.shape})")
    data = x.astype(np.uint8)
    if channels == 1:
        return Image.fromarray(data[:, :, 0], "L")
    return Image.fromarray(data, "RGB" if channels == 3 else "RGBA")
