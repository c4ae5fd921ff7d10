"""A ResNet basic block, an Inception module and a two-level U-Net, written once against the
Keras API and built with both Keras 3 (torch backend) and pycnn: with identical weights every
layer's output matches."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")   # before keras is imported

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="Keras 3 (torch backend) is the oracle for these tests")
if keras.backend.backend() != "torch":
    pytest.skip(f"needs KERAS_BACKEND=torch; got {keras.backend.backend()}", allow_module_level=True)

import pycnn
from pycnn import layers as pycnn_layers
from pycnn.models import Model as PycnnModel


def resnet_block(L, x):
    y = L.Conv2D(8, 3, padding="same", name="conv_a")(x)
    y = L.BatchNormalization(name="bn_a")(y)
    y = L.Activation("relu", name="relu_a")(y)
    y = L.Conv2D(8, 3, padding="same", name="conv_b")(y)
    y = L.BatchNormalization(name="bn_b")(y)
    shortcut = L.Conv2D(8, 1, name="shortcut")(x)
    y = L.Add(name="add")([y, shortcut])
    return L.Activation("relu", name="relu_out")(y)


def inception_module(L, x):
    b1 = L.Conv2D(4, 1, padding="same", activation="relu", name="b1_1x1")(x)
    b2 = L.Conv2D(3, 1, padding="same", activation="relu", name="b2_reduce")(x)
    b2 = L.Conv2D(6, 3, padding="same", activation="relu", name="b2_3x3")(b2)
    b3 = L.Conv2D(2, 1, padding="same", activation="relu", name="b3_reduce")(x)
    b3 = L.Conv2D(4, 5, padding="same", activation="relu", name="b3_5x5")(b3)
    b4 = L.MaxPooling2D(3, strides=1, padding="same", name="b4_pool")(x)
    b4 = L.Conv2D(2, 1, padding="same", activation="relu", name="b4_proj")(b4)
    return L.Concatenate(name="concat")([b1, b2, b3, b4])


def unet_two_levels(L, x):
    c1 = L.Conv2D(4, 3, padding="same", activation="relu", name="enc1")(x)
    p1 = L.MaxPooling2D(2, name="pool1")(c1)
    c2 = L.Conv2D(8, 3, padding="same", activation="relu", name="enc2")(p1)
    p2 = L.MaxPooling2D(2, name="pool2")(c2)
    b = L.Conv2D(16, 3, padding="same", activation="relu", name="bottom")(p2)
    u2 = L.Conv2DTranspose(8, 2, strides=2, padding="same", name="up2")(b)
    d2 = L.Conv2D(8, 3, padding="same", activation="relu", name="dec2")(L.Concatenate(name="cat2")([u2, c2]))
    u1 = L.Conv2DTranspose(4, 2, strides=2, padding="same", name="up1")(d2)
    d1 = L.Conv2D(4, 3, padding="same", activation="relu", name="dec1")(L.Concatenate(name="cat1")([u1, c1]))
    return L.Conv2D(1, 1, activation="sigmoid", name="mask")(d1)


@pytest.mark.parametrize("block, shape", [(resnet_block, (12, 12, 3)), (inception_module, (10, 10, 5)),
                                          (unet_two_levels, (16, 16, 2))])
def test_every_layer_matches_keras_on_identical_weights(block, shape):
    rng = np.random.default_rng(0)
    k_in = keras.Input(shape)
    k_model = keras.Model(k_in, block(keras.layers, k_in))
    pycnn.backend.clear_session()
    p_in = pycnn.Input(shape)
    p_model = PycnnModel(p_in, block(pycnn_layers, p_in))

    names = [layer.name for layer in k_model.layers if layer.weights]
    for name in names:
        k_layer = k_model.get_layer(name)
        weights = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in k_layer.get_weights()]
        if "bn" in name:   # moving variance must stay positive
            weights[3] = np.abs(weights[3]) + 0.5
        k_layer.set_weights(weights)
        p_model.get_layer(name).set_weights(weights)

    x = rng.standard_normal((3,) + shape).astype("float32")
    checked = [layer.name for layer in k_model.layers if not isinstance(layer, keras.layers.InputLayer)]
    k_outputs = keras.Model(k_in, [k_model.get_layer(n).output for n in checked]).predict(x, verbose=0)
    p_probe = PycnnModel(p_model.inputs, [p_model.get_layer(n).output for n in checked])
    p_outputs = p_probe.predict(x, verbose=0)
    for name, k_out, p_out in zip(checked, k_outputs, p_outputs):
        np.testing.assert_allclose(p_out, np.asarray(k_out), rtol=1e-4, atol=1e-4, err_msg=f"layer {name}")
