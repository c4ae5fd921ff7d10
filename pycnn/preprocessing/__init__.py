"""Data augmentation: Keras's ImageDataGenerator, elastic deformation, random layers, image helpers."""
from pycnn.preprocessing import image
from pycnn.preprocessing.elastic import elastic_transform
from pycnn.preprocessing.image import ImageDataGenerator
from pycnn.preprocessing.layers import (RandomBrightness, RandomContrast, RandomElasticTransform, RandomFlip,
                                        RandomRotation, RandomShear, RandomTranslation, RandomZoom)

__all__ = ["image", "ImageDataGenerator", "elastic_transform", "RandomFlip", "RandomRotation",
           "RandomTranslation", "RandomZoom", "RandomShear", "RandomContrast", "RandomBrightness",
           "RandomElasticTransform"]
