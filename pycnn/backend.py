"""Process-wide state shared by layers: the seeded random generator and name counters.

Every random draw in pycnn (weight initialisation, dropout masks, and anything else
that calls ``get_rng()``) comes from one NumPy ``Generator`` so that
``set_seed(seed)`` makes a whole run reproducible (``pycnn.utils.set_random_seed``
calls it).
"""
import numpy as np

# Created on first use: numpy.random costs ~10 ms to import, which a script that never draws
# a random number (loading a trained model, calling the functional ops) should not pay.
_rng = None


def set_seed(seed):
    """Reseed the global generator used for initialisation, dropout and shuffling."""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_seed: seed must be a non-negative integer; got {seed!r}")
    _rng = np.random.default_rng(int(seed))


def get_rng():
    """The global ``numpy.random.Generator`` (replaced by ``set_seed``)."""
    global _rng
    if _rng is None:
        _rng = np.random.default_rng()
    return _rng


def floatx():
    """Default float dtype of layers and weights (Keras's ``floatx``)."""
    return "float32"


def image_data_format():
    """Default image layout of layers (Keras's ``image_data_format``)."""
    return "channels_last"


def epsilon():
    """Fuzz factor used by losses and metrics (Keras's ``epsilon``)."""
    return 1e-7


def clear_session():
    """Reset automatic layer names (conv2d, conv2d_1, ... start again at conv2d)."""
    from pycnn.layers import base
    base.clear_session()
