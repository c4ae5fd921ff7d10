"""ImageNet input preprocessing and prediction decoding (Keras's ``imagenet_utils``).

Modes (which one a model family expects):

* ``"caffe"`` — VGG16, VGG19, ResNet50: RGB -> BGR, subtract the ImageNet BGR means
  [103.939, 116.779, 123.68], no scaling (input in 0..255).
* ``"tf"`` — Xception, MobileNet, Inception: ``x / 127.5 - 1`` (to [-1, 1]).
* ``"torch"`` — torchvision-trained weights (ResNet18/34, AlexNet, GoogLeNet): ``x / 255``, then
  subtract [0.485, 0.456, 0.406] and divide by [0.229, 0.224, 0.225] per RGB channel.

Unlike Keras, ``preprocess_input`` never modifies its argument in place: it returns a new float array.

pycnn does not ship the ImageNet class index (no package on the build machine provides the 1000
class names with a licence we could check), so ``decode_predictions`` takes the class names as an
argument.
"""
import numpy as np

__all__ = ["preprocess_input", "decode_predictions", "MODES"]

MODES = {"vgg16": "caffe", "vgg19": "caffe", "resnet50": "caffe", "xception": "tf", "mobilenet": "tf",
         "resnet18": "torch", "resnet34": "torch", "alexnet": "torch", "googlenet": "torch"}

_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])
_TORCH_MEAN = np.array([0.485, 0.456, 0.406])
_TORCH_STD = np.array([0.229, 0.224, 0.225])


def preprocess_input(x, data_format=None, mode="caffe"):
    """Preprocess a batch (or one image) of RGB images in 0..255 for ``mode`` ('caffe', 'tf' or 'torch').
    ``data_format`` 'channels_last' (default) or 'channels_first'. Returns float32 (float64 stays float64)."""
    if mode not in ("caffe", "tf", "torch"):
        raise ValueError(f"preprocess_input: mode must be 'caffe', 'tf' or 'torch'; got {mode!r}")
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(f"preprocess_input: data_format must be 'channels_last' or 'channels_first'; "
                         f"got {data_format!r}")
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"preprocess_input: x must be a real numeric array; got dtype {x.dtype}")
    x = x.astype(np.float64 if x.dtype == np.float64 else np.float32)   # always a copy
    axis = -1 if data_format in (None, "channels_last") else (0 if x.ndim == 3 else 1)
    if x.ndim < 3 or x.shape[axis] != 3:
        raise ValueError(f"preprocess_input: x must be RGB images with 3 channels on axis {axis}; "
                         f"got shape {x.shape}")
    shape = [1] * x.ndim
    shape[axis] = 3
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        return ((x / 255.0 - _TORCH_MEAN.reshape(shape)) / _TORCH_STD.reshape(shape)).astype(x.dtype)
    x = np.flip(x, axis=axis)                      # RGB -> BGR
    return (x - _CAFFE_MEAN_BGR.reshape(shape)).astype(x.dtype)


def decode_predictions(preds, class_names, top=5):
    """The ``top`` classes of each row of ``preds`` (N, C) as lists of ``(class_id, name, score)``,
    best first. ``class_names``: C names (class_id is then the index) or C ``(id, name)`` pairs such as
    Keras's ImageNet index values ``("n01440764", "tench")``."""
    preds = np.asarray(preds)
    if preds.ndim != 2:
        raise ValueError(f"decode_predictions: preds must have shape (samples, classes); got {preds.shape}")
    if len(class_names) != preds.shape[1]:
        raise ValueError(f"decode_predictions: class_names must have one entry per class ({preds.shape[1]}); "
                         f"got {len(class_names)}")
    if not isinstance(top, int) or top < 1:
        raise ValueError(f"decode_predictions: top must be a positive int; got {top!r}")
    entries = [tuple(c) if isinstance(c, (tuple, list)) else (i, c) for i, c in enumerate(class_names)]
    results = []
    for row in preds:
        order = np.argsort(-row, kind="stable")[:top]
        results.append([(entries[i][0], entries[i][1], float(row[i])) for i in order])
    return results
