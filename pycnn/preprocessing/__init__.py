"""Data augmentation: Keras's ImageDataGenerator, elastic deformation, random layers, image helpers."""
import importlib

# pycnn.layers re-exports the random layers defined here, and they subclass pycnn.layers.base.Layer:
# importing pycnn.layers first completes that cycle in the one order that works, whichever of the
# two packages a script imports first.
import pycnn.layers  # noqa: F401
from pycnn.preprocessing.layers import (RandomBrightness, RandomContrast, RandomElasticTransform, RandomFlip,
                                        RandomRotation, RandomShear, RandomTranslation, RandomZoom)

__all__ = ["image", "ImageDataGenerator", "elastic_transform", "RandomFlip", "RandomRotation",
           "RandomTranslation", "RandomZoom", "RandomShear", "RandomContrast", "RandomBrightness",
           "RandomElasticTransform"]

# pycnn.layers imports the random layers above; the generator and image helpers load on first use.
_LAZY = {"image": None, "ImageDataGenerator": "image", "elastic_transform": "elastic"}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _LAZY[name] is None:
        return importlib.import_module(f"{__name__}.{name}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
