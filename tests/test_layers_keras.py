"""pycnn layers against Keras 3 itself (torch backend) with identical weights.

Skipped with a reason when Keras 3 or its torch backend is not installed.
"""
import inspect
import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras", reason="Keras 3 with the torch backend is not installed (pip install torch keras); "
                                            "Keras oracle comparisons skipped")
if keras.backend.backend() != "torch":
    pytest.skip(f"Keras oracle tests expect KERAS_BACKEND=torch; got {keras.backend.backend()}",
                allow_module_level=True)

from pycnn import layers as L  # noqa: E402

KL = keras.layers
# Keras's torch backend trips NumPy 2's __array__(copy=...) deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _compare(ours, theirs, x, training=False, atol=1e-5, rtol=1e-4):
    """Build both on x, copy Keras's weights into ours, compare outputs and parameter counts."""
    expected = keras.ops.convert_to_numpy(theirs(x, training=training))
    ours(x)
    ours.set_weights(theirs.get_weights())
    got = ours(x, training=training)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=atol, rtol=rtol)
    assert ours.count_params() == theirs.count_params()
    return got


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CONV2D = [
    dict(filters=4, kernel_size=3),
    dict(filters=4, kernel_size=3, strides=2, padding="same"),
    dict(filters=4, kernel_size=(4, 3), strides=(2, 1), padding="same"),
    dict(filters=6, kernel_size=3, padding="same", dilation_rate=2, groups=3),
    dict(filters=5, kernel_size=5, padding="same", activation="relu"),
    dict(filters=2, kernel_size=1, use_bias=False, activation="sigmoid"),
]


@pytest.mark.parametrize("kwargs", CONV2D, ids=str)
def test_conv2d(kwargs):
    _compare(L.Conv2D(**kwargs), KL.Conv2D(**kwargs, bias_initializer="random_normal"), _x((2, 9, 8, 6)))


@pytest.mark.parametrize("kwargs", [dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2),
                                    dict(filters=3, kernel_size=4, strides=2, padding="same"),
                                    dict(filters=4, kernel_size=2, groups=2)], ids=str)
def test_conv1d(kwargs):
    _compare(L.Conv1D(**kwargs), KL.Conv1D(**kwargs, bias_initializer="random_normal"), _x((2, 11, 4)))


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, depth_multiplier=2, padding="same", strides=2),
                                    dict(kernel_size=(3, 2))], ids=str)
def test_depthwise_conv2d(kwargs):
    _compare(L.DepthwiseConv2D(**kwargs), KL.DepthwiseConv2D(**kwargs, bias_initializer="random_normal"),
             _x((2, 7, 8, 3)))


def test_separable_conv2d():
    kwargs = dict(filters=5, kernel_size=3, depth_multiplier=2, padding="same", activation="tanh")
    _compare(L.SeparableConv2D(**kwargs), KL.SeparableConv2D(**kwargs, bias_initializer="random_normal"),
             _x((2, 7, 8, 3)))


@pytest.mark.parametrize("kwargs", [dict(filters=4, kernel_size=2, strides=2),
                                    dict(filters=4, kernel_size=2, strides=2, padding="same"),
                                    dict(filters=4, kernel_size=3, padding="same"),
                                    dict(filters=4, kernel_size=3, strides=2),
                                    dict(filters=4, kernel_size=3, strides=2, output_padding=1)], ids=str)
def test_conv2d_transpose(kwargs):
    _compare(L.Conv2DTranspose(**kwargs), KL.Conv2DTranspose(**kwargs, bias_initializer="random_normal"),
             _x((2, 5, 6, 3)))


def test_dense_on_nd_input():
    _compare(L.Dense(7, activation="softmax"), KL.Dense(7, activation="softmax", bias_initializer="random_normal"),
             _x((2, 3, 5)))


@pytest.mark.parametrize("ours,theirs,shape", [
    (lambda: L.MaxPooling2D(), lambda: KL.MaxPooling2D(), (2, 9, 8, 3)),
    (lambda: L.MaxPooling2D(3, 2, padding="same"), lambda: KL.MaxPooling2D(3, 2, padding="same"), (2, 9, 8, 3)),
    # Average pooling with padding="same" is not compared here: Keras's torch backend zero-pads
    # the input first, so padded cells enter the divisor, unlike Keras on TF/JAX (and pycnn).
    # test_layers.py checks it against tests/reference.py instead.
    (lambda: L.AveragePooling2D(2, padding="same"), lambda: KL.AveragePooling2D(2, padding="same"),
     (2, 8, 6, 3)),
    (lambda: L.AveragePooling2D((2, 2), strides=2), lambda: KL.AveragePooling2D((2, 2), strides=2), (2, 28, 28, 6)),
    (lambda: L.MaxPooling1D(3, 2), lambda: KL.MaxPooling1D(3, 2), (2, 11, 3)),
    (lambda: L.AveragePooling1D(2, padding="same"), lambda: KL.AveragePooling1D(2, padding="same"), (2, 11, 3)),
    (lambda: L.GlobalAveragePooling2D(), lambda: KL.GlobalAveragePooling2D(), (2, 5, 4, 3)),
    (lambda: L.GlobalMaxPooling2D(keepdims=True), lambda: KL.GlobalMaxPooling2D(keepdims=True), (2, 5, 4, 3)),
    (lambda: L.Flatten(data_format="channels_first"), lambda: KL.Flatten(data_format="channels_first"),
     (2, 3, 4, 5)),
    (lambda: L.UpSampling2D((2, 3), interpolation="bilinear"), lambda: KL.UpSampling2D((2, 3),
                                                                                       interpolation="bilinear"),
     (2, 4, 5, 3)),
    (lambda: L.UpSampling2D(2), lambda: KL.UpSampling2D(2), (2, 4, 5, 3)),
    (lambda: L.Resizing(7, 3), lambda: KL.Resizing(7, 3), (2, 5, 8, 3)),
    (lambda: L.Resizing(10, 16), lambda: KL.Resizing(10, 16), (2, 5, 8, 3)),
    (lambda: L.Resizing(7, 3, interpolation="nearest"), lambda: KL.Resizing(7, 3, interpolation="nearest"),
     (2, 5, 8, 3)),
    (lambda: L.Resizing(11, 13, interpolation="nearest"), lambda: KL.Resizing(11, 13, interpolation="nearest"),
     (2, 5, 8, 3)),
    (lambda: L.ZeroPadding2D(((1, 2), (0, 3))), lambda: KL.ZeroPadding2D(((1, 2), (0, 3))), (2, 4, 5, 3)),
    (lambda: L.Cropping2D(((1, 2), (0, 3))), lambda: KL.Cropping2D(((1, 2), (0, 3))), (2, 6, 5, 3)),
    (lambda: L.LeakyReLU(), lambda: KL.LeakyReLU(), (2, 6)),
    (lambda: L.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2),
     lambda: KL.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2), (2, 6)),
    (lambda: L.Activation("gelu"), lambda: KL.Activation("gelu"), (2, 6)),
    (lambda: L.Activation("selu"), lambda: KL.Activation("selu"), (2, 6)),
    (lambda: L.Activation("swish"), lambda: KL.Activation("swish"), (2, 6)),
    (lambda: L.Activation("softplus"), lambda: KL.Activation("softplus"), (2, 6)),
])
def test_weightless_layers(ours, theirs, shape):
    _compare(ours(), theirs(), _x(shape))


def test_merges():
    a, b = _x((2, 4, 3), 1), _x((2, 4, 3), 2)
    for ours, theirs in [(L.Add(), KL.Add()), (L.Multiply(), KL.Multiply()), (L.Concatenate(), KL.Concatenate())]:
        np.testing.assert_allclose(ours([a, b]), keras.ops.convert_to_numpy(theirs([a, b])), rtol=1e-6)


def test_batchnorm_training_inference_and_moving_stats():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((8, 5, 5, 4)) * 2 + 1).astype(np.float32)
    theirs, ours = KL.BatchNormalization(), L.BatchNormalization()
    theirs.build(x.shape)
    ours.build((None, 5, 5, 4))
    weights = [rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32),
               rng.standard_normal(4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)]
    theirs.set_weights(weights)
    ours.set_weights(weights)
    for training in (True, True, False):
        expected = keras.ops.convert_to_numpy(theirs(x, training=training))
        np.testing.assert_allclose(ours(x, training=training), expected, atol=1e-4, rtol=1e-4)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)
    theirs.trainable = ours.trainable = False
    np.testing.assert_allclose(ours(x, training=True), keras.ops.convert_to_numpy(theirs(x, training=True)),
                               atol=1e-4, rtol=1e-4)
    assert ours.count_params() == theirs.count_params()


def test_dropout_scaling_matches_keras():
    x = np.ones((100, 50), np.float32)
    expected = keras.ops.convert_to_numpy(KL.Dropout(0.25, seed=1)(x, training=True))
    got = L.Dropout(0.25, seed=1)(x, training=True)
    np.testing.assert_allclose(np.unique(expected), [0.0, 1 / 0.75], rtol=1e-6)
    np.testing.assert_allclose(np.unique(got), np.unique(expected), rtol=1e-6)


@pytest.mark.parametrize("name", ["Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose",
                                  "MaxPooling2D", "AveragePooling2D", "MaxPooling1D", "GlobalAveragePooling2D",
                                  "Dense", "Dropout", "SpatialDropout2D", "BatchNormalization", "ReLU",
                                  "LeakyReLU", "Softmax", "Concatenate", "UpSampling2D", "ZeroPadding2D",
                                  "Cropping2D", "Reshape", "Resizing", "Rescaling", "Flatten", "Activation"])
def test_argument_names_and_defaults_match_keras(name):
    ours = inspect.signature(getattr(L, name).__init__).parameters
    theirs = inspect.signature(getattr(KL, name).__init__).parameters
    positional = [p for p in theirs.values() if p.default is inspect.Parameter.empty
                  and p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
    ours_positional = [p for p in ours.values() if p.default is inspect.Parameter.empty
                       and p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
    assert [p.name for p in ours_positional] == [p.name for p in positional]
    for pname, param in ours.items():
        if pname in theirs and param.default is not inspect.Parameter.empty:
            want = theirs[pname].default
            if pname == "data_format" and want is None:
                continue
            assert param.default == want or (isinstance(want, tuple) and param.default == want), (pname, want)


def test_keras_configs_load_and_reproduce_outputs():
    x = _x((2, 6, 6, 3))
    for theirs in [KL.Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer="l2"),
                   KL.SeparableConv2D(4, 3), KL.BatchNormalization(momentum=0.9), KL.MaxPooling2D(),
                   KL.InputLayer(shape=(6, 6, 3))]:
        expected = keras.ops.convert_to_numpy(theirs(x)) if not isinstance(theirs, KL.InputLayer) else x
        ours = L.get(type(theirs).__name__).from_config(theirs.get_config())
        if ours.weights or not ours.built:
            ours(x)
            ours.set_weights(theirs.get_weights())
        np.testing.assert_allclose(ours(x), expected, atol=1e-5, rtol=1e-4)
    dense = L.Dense.from_config(KL.Dense(3, kernel_regularizer="l1").get_config())
    assert dense.kernel_regularizer.l1 == pytest.approx(0.01)
