"""Layers with activation relu / leaky_relu / relu6 run it inside the convolution or dense
forward and keep only the output y (no pre-activation); the backward pass takes the
derivative from y.  The same model with the activation as a separate Activation layer
(the unfused computation) must give the same bytes: predictions, gradients and weights
after two training steps."""
import numpy as np
import pytest

import pycnn
from pycnn import activations
from pycnn.layers import (Activation, Conv1D, Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D, Flatten,
                          SeparableConv2D)
from pycnn.models import Sequential

FUSED = ["relu", "leaky_relu", "relu6", activations.relu, activations.relu6]


def _name(activation):
    return activation if isinstance(activation, str) else f"callable {activation.__name__}"


# (input shape, factory(activation) -> the layer under test)
LAYERS = {
    "Conv2D": ((10, 9, 3), lambda a: Conv2D(6, 3, padding="same", activation=a)),
    "Conv2D channels_first": ((3, 10, 9), lambda a: Conv2D(5, 3, strides=2, data_format="channels_first",
                                                           activation=a)),
    "Conv2D 1x1 no bias": ((6, 7, 8), lambda a: Conv2D(40, 1, use_bias=False, activation=a)),
    "Conv2D groups": ((8, 8, 8), lambda a: Conv2D(12, 3, groups=4, activation=a)),
    "Conv1D": ((20, 4), lambda a: Conv1D(7, 5, padding="causal", activation=a)),
    "DepthwiseConv2D": ((9, 9, 5), lambda a: DepthwiseConv2D(3, depth_multiplier=2, activation=a)),
    "SeparableConv2D": ((9, 9, 4), lambda a: SeparableConv2D(6, 3, activation=a)),
    "Dense": ((30,), lambda a: Dense(20, activation=a)),
}


def _models(layer_case, activation):
    """The fused model and the same computation with the activation as its own layer, same weights."""
    input_shape, factory = LAYERS[layer_case]
    fused = Sequential([factory(activation), Flatten(), Dense(3)])
    separate = Sequential([factory(None), Activation(activation), Flatten(), Dense(3)])
    for model in (fused, separate):
        model.build((None,) + input_shape)
    separate.set_weights(fused.get_weights())
    # Scale the first layer's weights so that relu6 clips at 6 as well as at 0.
    first = [w * 4 for w in fused.layers[0].get_weights()]
    fused.layers[0].set_weights(first)
    separate.layers[0].set_weights(first)
    return fused, separate


@pytest.mark.parametrize("activation", FUSED, ids=_name)
@pytest.mark.parametrize("layer_case", list(LAYERS))
def test_fused_layer_equals_separate_activation_layer(rng, layer_case, activation):
    fused, separate = _models(layer_case, activation)
    x = rng.standard_normal((4,) + LAYERS[layer_case][0]).astype(np.float32)
    y_fused, y_separate = fused(x), separate(x)
    assert y_fused.tobytes() == y_separate.tobytes()
    layer = fused.layers[0]
    assert layer._cache[1] is None, "the fused layer must not keep its pre-activation"
    out = layer._cache[2]   # both sides of every kink are reached
    if activation == "leaky_relu":
        assert np.any(out < 0) and np.any(out > 0)
    else:
        assert np.any(out == 0) and np.any(out > 0)
        assert activation not in ("relu6", activations.relu6) or np.any(out == 6)
    dy = rng.standard_normal(y_fused.shape).astype(np.float32)
    dx_fused, dx_separate = fused.backward(dy), separate.backward(dy)
    assert dx_fused.tobytes() == dx_separate.tobytes()
    grads_fused = [v.grad for v in fused.trainable_weights]
    grads_separate = [v.grad for v in separate.trainable_weights]
    assert len(grads_fused) == len(grads_separate)
    for a, b in zip(grads_fused, grads_separate):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "relu6"])
@pytest.mark.parametrize("layer_case", ["Conv2D", "Conv2D channels_first", "Conv1D", "Dense"])
def test_two_training_steps_are_identical(rng, layer_case, activation):
    fused, separate = _models(layer_case, activation)
    x = rng.standard_normal((16,) + LAYERS[layer_case][0]).astype(np.float32)
    labels = rng.integers(0, 3, 16)
    results = []
    for model in (fused, separate):
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(x, labels, batch_size=8, epochs=1, verbose=0, shuffle=False)
        results.append((model.predict(x, verbose=0), model.get_weights()))
    assert results[0][0].tobytes() == results[1][0].tobytes()
    for a, b in zip(results[0][1], results[1][1]):
        assert a.tobytes() == b.tobytes()


def test_fused_layer_in_float64_and_at_two_threads(rng):
    fused = Sequential([Conv2D(6, 3, activation="relu", dtype="float64"), Flatten(), Dense(3, dtype="float64")])
    separate = Sequential([Conv2D(6, 3, dtype="float64"), Activation("relu", dtype="float64"), Flatten(),
                           Dense(3, dtype="float64")])
    for model in (fused, separate):
        model.build((None, 10, 9, 3))
    separate.set_weights(fused.get_weights())
    x = rng.standard_normal((3, 10, 9, 3))
    before = pycnn.get_num_threads()
    try:
        outputs = []
        for n in (1, 2):
            pycnn.set_num_threads(n)
            outputs.append((fused(x).tobytes(), fused.backward(np.ones((3, 3))).tobytes()))
        assert outputs[0] == outputs[1]
        y = fused(x)
        assert y.dtype == np.float64 and separate(x).tobytes() == y.tobytes()
        assert separate.backward(np.ones((3, 3))).tobytes() == fused.backward(np.ones((3, 3))).tobytes()
    finally:
        pycnn.set_num_threads(before)


def test_other_activations_and_transposed_conv_keep_the_pre_activation(rng):
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    for layer in (Conv2D(4, 3, activation="tanh"), Conv2D(4, 3), Conv2DTranspose(4, 3, activation="relu")):
        layer(x)
        assert layer._cache[1] is not None


def test_relu6_is_a_keras_activation(rng):
    x = np.array([-1.0, -0.0, 0.0, 3.0, 6.0, 7.0, np.nan], np.float32)
    np.testing.assert_array_equal(activations.get("relu6")(x), [0, 0, 0, 3, 6, 6, np.nan])
    assert activations.serialize(activations.relu6) == "relu6"
    dx = activations.backward(activations.relu6, np.ones_like(x), x, None)
    np.testing.assert_array_equal(dx, [0, 0, 0, 1, 0, 0, 0])


def test_backward_from_output_rejects_unfusable_activations():
    with pytest.raises(TypeError, match=r"activations.backward_from_output: activation must be linear, relu, "
                                        r"leaky_relu or relu6; got 'tanh'"):
        activations.backward_from_output(activations.tanh, np.ones(2), np.ones(2))
