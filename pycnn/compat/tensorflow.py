"""A small ``tensorflow`` stand-in: ``tf.keras`` (pycnn's Keras API) and a few tensor functions.

    import pycnn.compat.tensorflow as tf
    model = tf.keras.models.Sequential([tf.keras.Input((28, 28, 1)), tf.keras.layers.Conv2D(6, 5)])
    y = tf.one_hot([1, 0, 2], depth=3); y.numpy()

Provided: ``tf.keras`` (``models``, ``layers``, ``Input``, ``Sequential``, ``Model``,
``applications`` with ``VGG16`` and ``vgg16.preprocess_input``, ``preprocessing.image``,
``utils``, ``losses``, ``optimizers``, ``metrics``, ``callbacks``, ``datasets``),
``tf.one_hot``, ``tf.concat``, ``tf.squeeze``, ``tf.constant``, ``tf.convert_to_tensor``,
``tf.unique_with_counts``, ``tf.math.argmax`` / ``tf.argmax``, ``tf.math.round`` /
``tf.round``, ``tf.random.set_seed``.  Results are ``Tensor``: NumPy arrays with ``.numpy()``.
Eager NumPy values only: there is no graph, ``tf.function``, ``tf.data`` or ``GradientTape``.
"""
import types
from collections import namedtuple

import numpy as np

import pycnn
from pycnn import applications as _applications
from pycnn import callbacks as _callbacks
from pycnn import datasets as _datasets
from pycnn import layers as _layers
from pycnn import losses as _losses
from pycnn import metrics as _metrics
from pycnn import models as _models
from pycnn import optimizers as _optimizers
from pycnn import utils as _utils
from pycnn.preprocessing import image as _image

__all__ = ["keras", "Tensor", "one_hot", "concat", "squeeze", "constant", "convert_to_tensor",
           "unique_with_counts", "argmax", "round", "math", "random", "float32", "float64", "int32", "int64",
           "uint8"]

float32, float64, int32, int64, uint8 = "float32", "float64", "int32", "int64", "uint8"

# What to use instead of the TensorFlow features this namespace does not have.
_INSTEAD = {
    "data": "pass NumPy arrays to model.fit (batch_size=...) or use tf.keras.preprocessing.image.ImageDataGenerator",
    "function": "call the model directly; pycnn has no graph mode",
    "GradientTape": "use model.fit, or layer.backward(grad) for gradients",
    "Variable": "use NumPy arrays (layer weights are pycnn.layers.Variable)",
    "image": "use tf.keras.layers.Resizing or pycnn.preprocessing.image",
    "config": "use pycnn.set_num_threads / pycnn.set_memory_limit",
}


class Tensor(np.ndarray):
    """A NumPy array that also answers ``.numpy()`` like an eager TensorFlow tensor."""

    def numpy(self):
        """A plain ``numpy.ndarray`` copy of the values."""
        return np.array(self)

    def __array_wrap__(self, array, context=None, return_scalar=False):
        # Reductions to a scalar give a NumPy scalar, as with plain arrays.
        if array.ndim == 0:
            return array[()]
        return np.ndarray.__array_wrap__(self, array, context, return_scalar)


def _tensor(value, dtype=None):
    return np.asarray(value, dtype=dtype).view(Tensor)


def _unsupported(module_name):
    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        hint = _INSTEAD.get(name, "use NumPy or pycnn directly")
        raise AttributeError(f"{module_name}.{name}: not provided by pycnn.compat; {hint}")
    return __getattr__


def constant(value, dtype=None, shape=None):
    """``tf.constant``: a Tensor from a value (broadcast to ``shape`` if given)."""
    array = np.asarray(value, dtype=dtype)
    if shape is not None:
        array = np.broadcast_to(array, tuple(shape)).copy()
    return _tensor(array)


def convert_to_tensor(value, dtype=None):
    """``tf.convert_to_tensor``."""
    return _tensor(value, dtype)


def one_hot(indices, depth, on_value=1.0, off_value=0.0, axis=-1, dtype="float32"):
    """``tf.one_hot``: indices outside ``0..depth-1`` give an all-``off_value`` row, as in TensorFlow."""
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"tf.one_hot: indices must be integers; got dtype {indices.dtype}")
    depth = int(depth)
    hot = indices[..., None] == np.arange(depth)
    out = np.where(hot, on_value, off_value).astype(dtype)
    if axis != -1:
        out = np.moveaxis(out, -1, axis)
    return _tensor(out)


def concat(values, axis):
    """``tf.concat``."""
    return _tensor(np.concatenate([np.asarray(v) for v in values], axis=axis))


def squeeze(input, axis=None):
    """``tf.squeeze``: drop size-1 axes (only those in ``axis`` when given)."""
    array = np.asarray(input)
    if axis is not None:
        axes = (axis,) if np.isscalar(axis) else tuple(axis)
        bad = [a for a in axes if array.shape[a] != 1]
        if bad:
            raise ValueError(f"tf.squeeze: axis must name axes of size 1; got axis={axis} for shape {array.shape}")
        return _tensor(np.squeeze(array, axis=axes))
    return _tensor(np.squeeze(array))


UniqueWithCounts = namedtuple("UniqueWithCounts", ["y", "idx", "count"])


def unique_with_counts(x, out_idx="int32"):
    """``tf.unique_with_counts``: unique values in order of first occurrence (not sorted, unlike
    ``np.unique``), the index of each element in ``y``, and each value's count."""
    array = np.asarray(x)
    if array.ndim != 1:
        raise ValueError(f"tf.unique_with_counts: x must be 1-D; got shape {array.shape} (flatten it first)")
    sorted_unique, first_index, inverse, counts = np.unique(array, return_index=True, return_inverse=True,
                                                            return_counts=True)
    order = np.argsort(first_index, kind="stable")       # sorted position -> first-occurrence rank
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return UniqueWithCounts(_tensor(sorted_unique[order]), _tensor(rank[inverse.reshape(-1)], out_idx),
                            _tensor(counts[order], out_idx))


def argmax(input, axis=None, output_type="int64"):
    """``tf.math.argmax``: like TensorFlow, ``axis=None`` means axis 0."""
    return _tensor(np.argmax(np.asarray(input), axis=0 if axis is None else axis), output_type)


def round(x):  # noqa: A001  (tf.round shadows the builtin in TensorFlow too)
    """``tf.math.round``: halves round to even, as TensorFlow (and NumPy) do."""
    return _tensor(np.round(np.asarray(x)))


def _set_seed(seed):
    _utils.set_random_seed(seed)


math = types.ModuleType("pycnn.compat.tensorflow.math", "tf.math: argmax, round, reduce_sum, reduce_mean.")
math.argmax = argmax
math.round = round
math.reduce_sum = lambda x, axis=None: _tensor(np.sum(np.asarray(x), axis=axis))
math.reduce_mean = lambda x, axis=None: _tensor(np.mean(np.asarray(x), axis=axis))
math.__getattr__ = _unsupported("tf.math")
reduce_sum, reduce_mean = math.reduce_sum, math.reduce_mean

random = types.ModuleType("pycnn.compat.tensorflow.random", "tf.random: set_seed.")
random.set_seed = _set_seed
random.__getattr__ = _unsupported("tf.random")


def _namespace(name, doc, **members):
    module = types.ModuleType(f"pycnn.compat.tensorflow.{name}", doc)
    module.__dict__.update(members)
    module.__getattr__ = _unsupported(f"tf.{name}")
    return module


_vgg16 = _namespace("keras.applications.vgg16", "VGG16 and its preprocess_input (caffe mode, BGR).",
                    VGG16=_applications.VGG16,
                    preprocess_input=_applications.preprocess_input,  # 'caffe' mode by default, as Keras's vgg16
                    decode_predictions=_applications.decode_predictions)

_app_members = {name: getattr(_applications, name) for name in _applications.__all__}
_app_members["vgg16"] = _vgg16

_image_ns = _namespace("keras.preprocessing.image", "ImageDataGenerator and image helpers.",
                       **{name: getattr(_image, name) for name in
                          ("ImageDataGenerator", "array_to_img", "img_to_array", "load_img")})

keras = _namespace(
    "keras", "tf.keras backed by pycnn.",
    models=_models, layers=_layers, Input=_layers.Input, Sequential=_models.Sequential, Model=_models.Model,
    applications=_namespace("keras.applications", "pycnn.applications", **_app_members),
    preprocessing=_namespace("keras.preprocessing", "image preprocessing", image=_image_ns),
    utils=_namespace("keras.utils", "to_categorical, set_random_seed",
                     to_categorical=_utils.to_categorical, set_random_seed=_utils.set_random_seed),
    losses=_losses, optimizers=_optimizers, metrics=_metrics, callbacks=_callbacks, datasets=_datasets,
    backend=pycnn.backend,
)


def __getattr__(name):
    return _unsupported("tf")(name)
