"""Small helpers with Keras names: ``to_categorical`` and ``set_random_seed``."""
import numpy as np

from pycnn import backend

__all__ = ["to_categorical", "set_random_seed"]


def to_categorical(x, num_classes=None):
    """One-hot encode integer labels (Keras's ``keras.utils.to_categorical``).

    A trailing axis of size 1 is squeezed first, so CIFAR-style labels of shape (n, 1) give (n, C)
    (not (n, 1, C) as ``tf.one_hot`` would). Returns float32. ``num_classes`` defaults to
    ``max(x) + 1``."""
    x = np.asarray(x)
    if x.dtype.kind == "f":
        if x.size and not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise ValueError("to_categorical: labels must be whole numbers; got non-integer values "
                             "(already one-hot? then no conversion is needed)")
    elif x.dtype.kind not in "biu":
        raise TypeError(f"to_categorical: labels must be integers; got dtype {x.dtype}")
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x.reshape(x.shape[:-1])
    labels = x.astype(np.int64)
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes <= 0:
        raise ValueError(f"to_categorical: num_classes must be a positive integer; got {num_classes!r}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels.max() if labels.max() >= num_classes else labels.min()
        raise ValueError(f"to_categorical: labels must be in [0, {num_classes}); got {bad}")
    out = np.zeros(labels.shape + (int(num_classes),), dtype=np.float32)
    np.put_along_axis(out, labels[..., None], 1.0, axis=-1)
    return out


def set_random_seed(seed):
    """Seed every random draw pycnn makes -- weight initialisation, shuffling in ``fit``, dropout
    masks and data augmentation all use ``pycnn.backend.get_rng()`` -- and NumPy's legacy global
    generator and Python's ``random`` (for user code that uses them)."""
    import random
    backend.set_seed(seed)
    np.random.seed(int(seed) % (2 ** 32))
    random.seed(int(seed))
