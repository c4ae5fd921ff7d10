"""A small ``tensorflow_datasets`` stand-in: ``tfds.load`` of MNIST and CIFAR-10 as whole arrays.

    import pycnn.compat.tensorflow_datasets as tfds
    (x_train, y_train), (x_test, y_test) = tfds.load("mnist", split=["train", "test"],
                                                     as_supervised=True, batch_size=-1)

Images come as TFDS gives them (uint8, ``(n, 28, 28, 1)`` or ``(n, 32, 32, 3)``), labels as
int64 ``(n,)``.  Data are read by ``pycnn.datasets`` (``data_dir``, else ``$PYCNN_DATA_DIR``,
the cache, then a download).  Split slices like ``"train[:10%]"`` or ``"test[100:200]"`` work.
"""
import re

import numpy as np

from pycnn import datasets as _datasets
from pycnn.compat.tensorflow import _tensor

__all__ = ["load", "as_numpy"]

_LOADERS = {"mnist": _datasets.mnist, "cifar10": _datasets.cifar10}
_SPLIT = re.compile(r"^(train|test)(?:\[(-?\d*)(%?):(-?\d*)(%?)\])?$")


def _parse_split(split):
    match = _SPLIT.match(split.replace(" ", ""))
    if not match:
        raise ValueError(f"tfds.load: split must be 'train' or 'test', optionally sliced like 'train[:80%]' or "
                         f"'test[10:20]'; got {split!r} (combine splits with NumPy instead of '+')")
    name, start, start_pct, stop, stop_pct = match.groups()
    return name, (start, start_pct), (stop, stop_pct)


def _bound(value, n):
    text, pct = value
    if text in (None, ""):
        return None
    number = int(text)
    return int(round(number * n / 100)) if pct else number


def _one_split(module, split, as_supervised, shuffle_files, data_dir, cache):
    split_name, start, stop = _parse_split(split)
    if split_name not in cache:
        cache[split_name] = module.load_data(path=data_dir, subset=split_name)
    x, y = cache[split_name]
    n = len(x)
    x, y = x[_bound(start, n):_bound(stop, n)], y[_bound(start, n):_bound(stop, n)]
    if shuffle_files:
        # TFDS shuffles the order of its files, not of every example; a permutation is the closest.
        order = np.random.default_rng().permutation(len(x))
        x, y = x[order], y[order]
    if x.ndim == 3:
        x = x[..., None]                    # TFDS images always have a channel axis
    image, label = _tensor(x), _tensor(np.asarray(y).reshape(-1), "int64")
    return (image, label) if as_supervised else {"image": image, "label": label}


def load(name, split=None, as_supervised=False, batch_size=None, shuffle_files=False, data_dir=None,
         with_info=False, download=True):
    """``tfds.load`` for ``"mnist"`` and ``"cifar10"`` with ``batch_size=-1`` (whole splits as Tensors).

    ``split``: a split string or a list of them (``None`` gives a dict of both splits).
    ``as_supervised=True`` gives ``(image, label)`` pairs, else ``{"image": ..., "label": ...}``.
    """
    key = str(name).split(":")[0].lower()
    if key not in _LOADERS:
        raise ValueError(f"tfds.load: name must be one of {sorted(_LOADERS)}; got {name!r} "
                         f"(for other data use pycnn.datasets or NumPy arrays)")
    if batch_size != -1:
        raise ValueError(f"tfds.load: batch_size must be -1 (the whole split as arrays); got {batch_size!r} "
                         f"(pycnn has no tf.data pipelines: load with batch_size=-1 and pass "
                         f"batch_size=... to model.fit)")
    if with_info:
        raise ValueError(f"tfds.load: with_info must be False; got True (class names are in "
                         f"pycnn.datasets.{key}.class_names)")
    module = _LOADERS[key]
    cache = {}
    if split is None:
        return {s: _one_split(module, s, as_supervised, shuffle_files, data_dir, cache)
                for s in ("train", "test")}
    if isinstance(split, (list, tuple)):
        return [_one_split(module, s, as_supervised, shuffle_files, data_dir, cache) for s in split]
    return _one_split(module, split, as_supervised, shuffle_files, data_dir, cache)


def as_numpy(dataset):
    """``tfds.as_numpy``: the same structure with plain NumPy arrays."""
    if isinstance(dataset, dict):
        return {k: as_numpy(v) for k, v in dataset.items()}
    if isinstance(dataset, (list, tuple)):
        return type(dataset)(as_numpy(v) for v in dataset)
    return np.asarray(dataset)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"tfds.{name}: not provided by pycnn.compat; use tfds.load(..., batch_size=-1) "
                         f"or pycnn.datasets")
