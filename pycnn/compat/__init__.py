"""Compatibility namespaces so notebooks written for tf.keras and tensorflow_datasets run on pycnn
with only their import lines changed:

    import pycnn.compat.tensorflow as tf
    import pycnn.compat.tensorflow_datasets as tfds

Only the calls listed in each module are provided; anything else raises an error that says
what to use instead.
"""
