"""Layer API: shapes, parameter counts, configs, weights, initializers, BatchNormalization,
Dropout, naming and dtype rules. Oracles: hand-computed Keras numbers, tests/reference.py,
tests/layer_reference.py."""
import json

import numpy as np
import pytest

from pycnn import backend, initializers, regularizers
from pycnn import layers as L
from tests import layer_reference as LR

# (id, factory, per-sample input shape(s)) covering every layer and the main options.
SHAPE_CASES = [
    ("conv2d_valid", lambda: L.Conv2D(4, 3), (9, 8, 3)),
    ("conv2d_same_s2", lambda: L.Conv2D(4, 3, strides=2, padding="same"), (9, 8, 3)),
    ("conv2d_dilated", lambda: L.Conv2D(2, 3, dilation_rate=(2, 1)), (9, 8, 3)),
    ("conv2d_groups", lambda: L.Conv2D(4, 1, groups=2), (5, 5, 6)),
    ("conv2d_channels_first", lambda: L.Conv2D(4, (3, 2), strides=(1, 2), data_format="channels_first"), (3, 7, 9)),
    ("conv1d_causal", lambda: L.Conv1D(4, 3, padding="causal", dilation_rate=2), (11, 3)),
    ("conv1d_s3", lambda: L.Conv1D(4, 3, strides=3), (11, 3)),
    ("depthwise", lambda: L.DepthwiseConv2D(3, depth_multiplier=3, padding="same", strides=2), (7, 6, 2)),
    ("separable", lambda: L.SeparableConv2D(5, 3, depth_multiplier=2), (7, 6, 2)),
    ("conv_transpose_same", lambda: L.Conv2DTranspose(3, 3, strides=2, padding="same"), (4, 5, 2)),
    ("conv_transpose_valid", lambda: L.Conv2DTranspose(3, 3, strides=2), (4, 5, 2)),
    ("conv_transpose_outpad", lambda: L.Conv2DTranspose(3, 3, strides=3, output_padding=(1, 2)), (4, 5, 2)),
    ("maxpool2d", lambda: L.MaxPooling2D(), (9, 8, 3)),
    ("maxpool2d_same", lambda: L.MaxPooling2D(3, strides=2, padding="same"), (9, 8, 3)),
    ("avgpool2d", lambda: L.AveragePooling2D(pool_size=(2, 2), strides=2), (28, 28, 6)),
    ("avgpool2d_channels_first", lambda: L.AveragePooling2D(2, data_format="channels_first"), (3, 7, 9)),
    ("maxpool1d", lambda: L.MaxPooling1D(), (9, 3)),
    ("avgpool1d_same", lambda: L.AveragePooling1D(3, strides=2, padding="same"), (9, 3)),
    ("gap2d", lambda: L.GlobalAveragePooling2D(), (5, 4, 3)),
    ("gmp2d_keepdims", lambda: L.GlobalMaxPooling2D(keepdims=True), (5, 4, 3)),
    ("gap1d", lambda: L.GlobalAveragePooling1D(), (5, 3)),
    ("gmp1d_channels_first", lambda: L.GlobalMaxPooling1D(data_format="channels_first", keepdims=True), (3, 5)),
    ("flatten", lambda: L.Flatten(), (5, 4, 3)),
    ("flatten_channels_first", lambda: L.Flatten(data_format="channels_first"), (3, 5, 4)),
    ("reshape", lambda: L.Reshape((2, -1)), (5, 4, 3)),
    ("dense", lambda: L.Dense(7), (5,)),
    ("dense_nd", lambda: L.Dense(7), (4, 5)),
    ("dropout", lambda: L.Dropout(0.5), (4, 5)),
    ("spatial_dropout1d", lambda: L.SpatialDropout1D(0.5), (4, 5)),
    ("spatial_dropout2d", lambda: L.SpatialDropout2D(0.5), (4, 5, 3)),
    ("batchnorm", lambda: L.BatchNormalization(), (4, 5, 3)),
    ("activation", lambda: L.Activation("relu"), (4, 5)),
    ("relu", lambda: L.ReLU(6.0), (4, 5)),
    ("leaky_relu", lambda: L.LeakyReLU(), (4, 5)),
    ("softmax", lambda: L.Softmax(), (4, 5)),
    ("elu", lambda: L.ELU(), (4, 5)),
    ("add", lambda: L.Add(), [(4, 5, 3), (4, 5, 3)]),
    ("multiply", lambda: L.Multiply(), [(4, 5, 3), (1, 1, 3)]),
    ("concatenate", lambda: L.Concatenate(), [(4, 5, 3), (4, 5, 2)]),
    ("upsampling_nearest", lambda: L.UpSampling2D((2, 3)), (4, 5, 3)),
    ("upsampling_bilinear", lambda: L.UpSampling2D(interpolation="bilinear"), (4, 5, 3)),
    ("zero_padding", lambda: L.ZeroPadding2D(((1, 2), (0, 3))), (4, 5, 3)),
    ("cropping", lambda: L.Cropping2D(((1, 2), (0, 3))), (6, 5, 3)),
    ("resizing", lambda: L.Resizing(7, 3), (4, 5, 3)),
    ("resizing_channels_first", lambda: L.Resizing(7, 3, data_format="channels_first"), (3, 4, 5)),
    ("rescaling", lambda: L.Rescaling(1 / 255), (4, 5, 3)),
    ("lambda", lambda: L.Lambda(lambda x: x[:, ::2]), (6, 3)),
]


def _data(shape, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    if isinstance(shape, list):
        return [rng.standard_normal((batch,) + s).astype(np.float32) for s in shape]
    return rng.standard_normal((batch,) + shape).astype(np.float32)


def _batch_shape(shape):
    return [(None,) + s for s in shape] if isinstance(shape, list) else (None,) + shape


@pytest.mark.parametrize("name,factory,shape", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_compute_output_shape_matches_real_output(name, factory, shape):
    layer = factory()
    y = layer(_data(shape), training=True)
    predicted = layer.compute_output_shape(_batch_shape(shape))
    assert predicted == (None,) + y.shape[1:]
    assert layer.output_shape == predicted
    # The symbolic path agrees too.
    symbolic = factory()
    inputs = [L.Input(s) for s in shape] if isinstance(shape, list) else L.Input(shape)
    out = symbolic(inputs)
    assert out.shape == predicted
    assert out._keras_history[0] is symbolic
    assert y.dtype == np.float32


CONFIG_CASES = [c for c in SHAPE_CASES if c[0] != "lambda"]  # Lambda configs hold no code: tested below


@pytest.mark.parametrize("name,factory,shape", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_round_trip(name, factory, shape):
    layer = factory()
    x = _data(shape)
    layer(x)
    config = layer.get_config()
    json.dumps(config)  # JSON-serialisable
    clone = type(layer).from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    clone(x)
    clone.set_weights(layer.get_weights())
    a, b = layer(x), clone(x)
    for ya, yb in zip(a if isinstance(a, list) else [a], b if isinstance(b, list) else [b]):
        np.testing.assert_array_equal(ya, yb)
    assert L.deserialize(L.serialize(layer)).get_config() == config


# ------------------------------------------------------------------ parameter counts
def test_lenet5_parameter_counts():
    backend.clear_session()
    model = [L.Conv2D(6, 5, padding="same", activation="tanh", input_shape=(28, 28, 1)),
             L.AveragePooling2D(pool_size=(2, 2), strides=2),
             L.Conv2D(16, 5, activation="tanh"),
             L.AveragePooling2D(pool_size=(2, 2), strides=2),
             L.Flatten(),
             L.Dense(120, activation="tanh"), L.Dense(84, activation="tanh"), L.Dense(10, activation="softmax")]
    x = L.Input((28, 28, 1))
    for layer in model:
        x = layer(x)
    assert [layer.count_params() for layer in model] == [156, 0, 2416, 0, 0, 48120, 10164, 850]
    assert x.shape == (None, 10)
    assert [layer.name for layer in model] == ["conv2d", "average_pooling2d", "conv2d_1", "average_pooling2d_1",
                                               "flatten", "dense", "dense_1", "dense_2"]
    assert model[0]._batch_input_shape == (None, 28, 28, 1)


@pytest.mark.parametrize("layer,shape,expected", [
    # Keras formulas (docs/keras-semantics §1.1): k*k*in/g*f + f etc.
    (lambda: L.Conv2D(8, 3, groups=2), (5, 5, 4), 3 * 3 * 2 * 8 + 8),
    (lambda: L.Conv1D(8, 5, use_bias=False), (9, 3), 5 * 3 * 8),
    (lambda: L.DepthwiseConv2D(3, depth_multiplier=2), (5, 5, 4), 3 * 3 * 4 * 2 + 4 * 2),
    (lambda: L.SeparableConv2D(6, 3, depth_multiplier=2), (5, 5, 4), 3 * 3 * 4 * 2 + 4 * 2 * 6 + 6),
    (lambda: L.Conv2DTranspose(6, 2, strides=2), (5, 5, 4), 2 * 2 * 4 * 6 + 6),
    (lambda: L.BatchNormalization(), (5, 5, 32), 4 * 32),
    (lambda: L.BatchNormalization(center=False), (7,), 3 * 7),
    (lambda: L.Dense(3), (4, 5), 5 * 3 + 3),
])
def test_parameter_counts(layer, shape, expected):
    layer = layer()
    layer.build((None,) + shape)
    assert layer.count_params() == expected


def test_weight_shapes_and_names_follow_keras():
    backend.clear_session()
    conv = L.Conv2D(8, (3, 2), input_shape=(10, 10, 4))
    conv.build((None, 10, 10, 4))
    assert [(v.name, v.shape) for v in conv.weights] == [("conv2d/kernel", (3, 2, 4, 8)), ("conv2d/bias", (8,))]
    transpose = L.Conv2DTranspose(8, 3)
    transpose.build((None, 5, 5, 4))
    assert transpose.kernel.shape == (3, 3, 8, 4)
    bn = L.BatchNormalization()
    bn.build((None, 6))
    assert [v.name.split("/")[1] for v in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2
    bn.trainable = False
    assert bn.trainable_weights == [] and len(bn.non_trainable_weights) == 4


# ------------------------------------------------------------------ numerics vs tests/reference.py
def test_conv_dense_pool_match_numpy_reference():
    from tests import reference as R
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 8, 4))
    conv = L.Conv2D(6, 3, strides=2, padding="same", groups=2, dtype="float64")
    y = conv(x)
    np.testing.assert_allclose(y, R.conv2d(x, conv.kernel.value, conv.bias.value, strides=2, padding="same",
                                           groups=2), atol=1e-10)
    pool = L.AveragePooling2D(3, strides=2, padding="same", dtype="float64")
    np.testing.assert_allclose(pool(x), R.avg_pool2d(x, 3, 2, "same"), atol=1e-12)
    dense = L.Dense(3, activation="sigmoid", dtype="float64")
    flat = x.reshape(2, -1)
    np.testing.assert_allclose(dense(flat), 1 / (1 + np.exp(-(flat @ dense.kernel.value + dense.bias.value))),
                               atol=1e-12)
    # channels_first keeps an HWIO kernel and equals the channels_last result transposed.
    conv_cf = L.Conv2D(6, 3, strides=2, padding="same", groups=2, data_format="channels_first", dtype="float64")
    conv_cf.build((None, 4, 9, 8))
    conv_cf.set_weights(conv.get_weights())
    np.testing.assert_allclose(conv_cf(x.transpose(0, 3, 1, 2)), y.transpose(0, 3, 1, 2), atol=1e-12)


def test_resize_and_upsampling_match_pixel_loop_reference():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 7, 3))
    for h, w in [(3, 4), (10, 14), (5, 7), (8, 3), (1, 1)]:
        np.testing.assert_allclose(L.Resizing(h, w, dtype="float64")(x), LR.resize_bilinear(x, h, w), atol=1e-12)
        np.testing.assert_allclose(L.Resizing(h, w, interpolation="nearest", dtype="float64")(x),
                                   LR.resize_nearest(x, h, w), atol=0)
    np.testing.assert_allclose(L.UpSampling2D((2, 3), interpolation="bilinear", dtype="float64")(x),
                               LR.resize_bilinear(x, 10, 21), atol=1e-12)
    np.testing.assert_array_equal(L.UpSampling2D((2, 3), dtype="float64")(x), LR.resize_nearest(x, 10, 21))


# ------------------------------------------------------------------ BatchNormalization
def test_batchnorm_training_and_inference_match_reference():
    rng = np.random.default_rng(0)
    bn = L.BatchNormalization(dtype="float64")
    x = rng.standard_normal((8, 4, 4, 3)) * 3 + 1
    bn.build((None, 4, 4, 3))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    bn.set_weights([gamma, beta, np.zeros(3), np.ones(3)])
    mm, mv = np.zeros(3), np.ones(3)
    for step in range(3):
        xb = x + step
        y = bn(xb, training=True)
        ref, mm, mv = LR.batch_norm_train(xb, gamma, beta, mm, mv)
        np.testing.assert_allclose(y, ref, atol=1e-12)
        np.testing.assert_allclose(bn.moving_mean.value, mm, atol=1e-12)
        np.testing.assert_allclose(bn.moving_variance.value, mv, atol=1e-12)
    np.testing.assert_allclose(bn(x, training=False), LR.batch_norm_inference(x, gamma, beta, mm, mv), atol=1e-12)
    np.testing.assert_allclose(bn.moving_mean.value, mm)  # inference does not move the statistics


def test_batchnorm_channels_first_axis_and_momentum():
    rng = np.random.default_rng(1)
    bn = L.BatchNormalization(axis=1, momentum=0.9, epsilon=1e-5, dtype="float64")
    x = rng.standard_normal((6, 3, 2, 2))
    y = bn(x, training=True)
    ref, mm, mv = LR.batch_norm_train(x, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), 0.9, 1e-5, axis=1)
    np.testing.assert_allclose(y, ref, atol=1e-12)
    np.testing.assert_allclose(bn.moving_variance.value, mv, atol=1e-12)


def test_frozen_batchnorm_runs_in_inference_mode():
    rng = np.random.default_rng(2)
    bn = L.BatchNormalization()
    x = (rng.standard_normal((16, 5)) * 2 + 3).astype(np.float32)
    bn(x, training=True)
    bn.trainable = False
    mm, mv = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    y = bn(x, training=True)
    np.testing.assert_allclose(y, LR.batch_norm_inference(x, np.ones(5), np.zeros(5), mm, mv), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(bn.moving_mean.value, mm)


# ------------------------------------------------------------------ Dropout
def test_dropout_scaling_rate_and_inference_identity():
    backend.set_seed(0)
    x = np.ones((200, 100), np.float32)
    layer = L.Dropout(0.3)
    np.testing.assert_array_equal(layer(x), x)
    y = layer(x, training=True)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs(1 - kept.mean() - 0.3) < 0.01


def test_dropout_masks_follow_set_seed_and_layer_seed():
    x = np.ones((10, 10), np.float32)
    backend.set_seed(42)
    a = L.Dropout(0.5)(x, training=True)
    backend.set_seed(42)
    b = L.Dropout(0.5)(x, training=True)
    np.testing.assert_array_equal(a, b)
    c = L.Dropout(0.5, seed=7)(x, training=True)
    d = L.Dropout(0.5, seed=7)(x, training=True)
    np.testing.assert_array_equal(c, d)
    layer = L.Dropout(0.5, noise_shape=(None, 1))
    y = layer(x, training=True)
    assert all(len(set(row)) == 1 for row in y.tolist())


def test_spatial_dropout_drops_whole_channels():
    backend.set_seed(0)
    x = np.ones((4, 3, 3, 8), np.float32)
    y = L.SpatialDropout2D(0.5)(x, training=True)
    per_channel = y.reshape(4, 9, 8)
    assert np.all(per_channel.min(axis=1) == per_channel.max(axis=1))
    y_cf = L.SpatialDropout2D(0.5, data_format="channels_first")(x.transpose(0, 3, 1, 2), training=True)
    flat = y_cf.reshape(4, 8, 9)
    assert np.all(flat.min(axis=2) == flat.max(axis=2))


# ------------------------------------------------------------------ initializers
@pytest.mark.parametrize("name,variance", [
    ("he_normal", lambda fi, fo: 2 / fi), ("he_uniform", lambda fi, fo: 2 / fi),
    ("glorot_uniform", lambda fi, fo: 2 / (fi + fo)), ("glorot_normal", lambda fi, fo: 2 / (fi + fo)),
    ("lecun_normal", lambda fi, fo: 1 / fi), ("lecun_uniform", lambda fi, fo: 1 / fi),
    ("random_normal", lambda fi, fo: 0.05 ** 2), ("random_uniform", lambda fi, fo: 0.1 ** 2 / 12),
])
def test_initializer_variance(name, variance):
    backend.set_seed(0)
    shape = (3, 3, 64, 32)  # conv kernel: fan_in = 9*64 = 576, fan_out = 9*32 = 288
    w = initializers.get(name)(shape)
    assert w.shape == shape and w.dtype == np.float32
    expected = variance(576, 288)
    assert abs(w.var() / expected - 1) < 0.05
    assert abs(w.mean()) < 0.05 * np.sqrt(expected)
    if "uniform" in name and name != "random_uniform":
        assert np.abs(w).max() <= np.sqrt(3 * expected) + 1e-7
    if name in ("he_normal", "glorot_normal", "lecun_normal"):  # truncated at 2 stddev of the base normal
        assert np.abs(w).max() <= 2 * np.sqrt(expected) / 0.87962566103423978 + 1e-6


def test_initializer_fans_and_constants():
    assert initializers.compute_fans((5, 5, 1, 6)) == (25, 150)
    assert initializers.compute_fans((400, 120)) == (400, 120)
    assert initializers.compute_fans((7,)) == (7, 7)
    np.testing.assert_array_equal(initializers.get("zeros")((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(initializers.get("ones")((2,)), np.ones(2))
    np.testing.assert_array_equal(initializers.Constant(0.5)((2,)), [0.5, 0.5])
    t = initializers.TruncatedNormal(mean=1.0, stddev=0.1, seed=3)((10000,))
    assert np.all(np.abs(t - 1.0) <= 0.2 + 1e-6)
    np.testing.assert_array_equal(t, initializers.TruncatedNormal(mean=1.0, stddev=0.1, seed=3)((10000,)))
    assert initializers.get({"class_name": "HeNormal", "config": {"seed": 1}}).seed == 1
    assert initializers.serialize(initializers.get("he_uniform")) == {"class_name": "HeUniform",
                                                                     "config": {"seed": None}}


def test_set_seed_reproduces_layer_initialisation():
    backend.set_seed(123)
    a = L.Dense(5)
    a.build((None, 4))
    backend.set_seed(123)
    b = L.Dense(5)
    b.build((None, 4))
    np.testing.assert_array_equal(a.kernel.value, b.kernel.value)


# ------------------------------------------------------------------ regularizers
def test_regularizers_penalty_and_gradient():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 4))
    assert regularizers.get("l2")(w) == pytest.approx(0.01 * np.sum(w ** 2))
    assert regularizers.get("l1")(w) == pytest.approx(0.01 * np.sum(np.abs(w)))
    assert regularizers.get("l1_l2")(w) == pytest.approx(0.01 * np.sum(np.abs(w)) + 0.01 * np.sum(w ** 2))
    assert regularizers.L1L2(l2=0.1)(w) == pytest.approx(0.1 * np.sum(w ** 2))
    np.testing.assert_allclose(regularizers.L2(0.5).gradient(w), w)
    dense = L.Dense(4, kernel_regularizer=regularizers.L2(0.1), bias_regularizer="l1")
    dense.build((None, 3))
    assert dense.regularization_loss() == pytest.approx(0.1 * np.sum(dense.kernel.value.astype(np.float64) ** 2))
    assert regularizers.get({"class_name": "L1L2", "config": {"l1": 0.2, "l2": 0.0}}).l1 == 0.2


# ------------------------------------------------------------------ Layer machinery
def test_automatic_names_and_clear_session():
    backend.clear_session()
    assert [L.Conv2D(1, 1).name, L.Conv2D(1, 1).name, L.MaxPooling2D().name, L.BatchNormalization().name,
            L.GlobalAveragePooling2D().name] == ["conv2d", "conv2d_1", "max_pooling2d", "batch_normalization",
                                                 "global_average_pooling2d"]
    backend.clear_session()
    assert L.Conv2D(1, 1).name == "conv2d"
    assert L.Dense(2, name="head").name == "head"


def test_inputs_are_cast_without_rescaling():
    layer = L.Flatten()
    y = layer(np.full((2, 2, 2), 255, dtype=np.uint8))
    assert y.dtype == np.float32 and np.all(y == 255.0)
    y = L.Rescaling(1 / 255)(np.full((1, 2), 255, dtype=np.uint8))
    np.testing.assert_allclose(y, 1.0)
    with pytest.raises(TypeError, match="real numeric"):
        layer(np.zeros((2, 2), dtype=complex))


def test_set_weights_checks_shapes_and_count():
    dense = L.Dense(3)
    dense.build((None, 4))
    with pytest.raises(ValueError, match=r"'dense.*/kernel' must have shape \(4, 3\); got \(3, 4\)"):
        dense.set_weights([np.zeros((3, 4)), np.zeros(3)])
    with pytest.raises(ValueError, match="must receive 2 arrays"):
        dense.set_weights([np.zeros((4, 3))])
    with pytest.raises(ValueError, match="count_params needs a built layer"):
        L.Dense(3).count_params()


def test_symbolic_graph_records_nodes():
    inp = L.Input((4, 4, 3), name="image")
    a = L.Conv2D(2, 1, name="a")(inp)
    b = L.Conv2D(2, 1, name="b")(inp)
    out = L.Concatenate(name="cat")([a, b])
    layer, node_index, tensor_index = out._keras_history
    assert layer.name == "cat" and tensor_index == 0
    node = layer._inbound_nodes[node_index]
    assert [t._keras_history[0].name for t in node.input_tensors] == ["a", "b"]
    assert node.parent_nodes[0].layer.name == "a"
    assert inp._keras_history[0].name == "image" and isinstance(inp._keras_history[0], L.InputLayer)
    assert layer.input == [a, b] and layer.output is out
    assert L.Input(batch_shape=(8, 3)).shape == (8, 3)


def test_lambda_forward_backward_and_config():
    layer = L.Lambda(lambda x: x * 3)
    np.testing.assert_array_equal(layer(np.ones((2, 2))), 3 * np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"Lambda 'lambda.*': backward must be given"):
        layer.backward(np.ones((2, 2)))
    config = layer.get_config()
    json.dumps(config)
    with pytest.raises(ValueError, match="function must be a callable"):
        L.Lambda.from_config(config)
    clone = L.Lambda.from_config(dict(config, function=lambda x: x * 3))
    np.testing.assert_array_equal(clone(np.ones((1, 2))), [[3, 3]])
    assert L.Lambda(lambda x: x, output_shape=(5,)).compute_output_shape((None, 5)) == (None, 5)


def test_trainable_flag_and_unknown_kwargs():
    dense = L.Dense(2, trainable=False)
    dense.build((None, 3))
    assert dense.trainable_weights == [] and len(dense.non_trainable_weights) == 2
    assert dense.get_config()["trainable"] is False
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['kernal_size'\]"):
        L.Conv2D(2, 3, kernal_size=3)


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("factory,match", [
    (lambda: L.Conv2D(0, 3), r"filters must be a strictly positive integer; Received: filters=0"),
    (lambda: L.Conv2D(4, (0, 1)), r"kernel_size must be > 0; Received: kernel_size=\(0, 1\)"),
    (lambda: L.Conv2D(4, 3, strides=(0, 1)), r"Received: strides=\(0, 1\)"),
    (lambda: L.Conv2D(4, 3, strides=2, dilation_rate=2), r"strides > 1 not supported in conjunction with "
                                                         r"dilation_rate > 1"),
    (lambda: L.Conv2D(4, 3, padding="full"), r"padding must be one of \['valid', 'same'\]; Received: padding"),
    (lambda: L.Conv2D(4, 3, padding="causal"), r"padding must be one of"),
    (lambda: L.Conv2D(6, 3, groups=4), r"filters must be evenly divisible by groups"),
    (lambda: L.Conv2D(4, 3, data_format="NHWC"), r"data_format must be 'channels_last' or 'channels_first'"),
    (lambda: L.Conv2D(4, 3, activation="relu7"), r"activation must be one of"),
    (lambda: L.Conv2D(4, 3, kernel_initializer="he"), r"initializer must be one of"),
    (lambda: L.Conv2D(4, 3, kernel_regularizer="l3"), r"regularizer must be one of"),
    (lambda: L.Conv2D(4, 3, kernel_constraint="non_neg"), r"kernel_constraint must be None"),
    (lambda: L.Conv2DTranspose(4, 3, strides=2, output_padding=2), r"output_padding must be strictly less than "
                                                                   r"strides"),
    (lambda: L.DepthwiseConv2D(3, depth_multiplier=0), r"depth_multiplier must be a strictly positive"),
    (lambda: L.MaxPooling2D(pool_size=0), r"pool_size must be > 0"),
    (lambda: L.AveragePooling2D(2, padding="causal"), r"padding must be one of"),
    (lambda: L.Dense(0), r"units must be a strictly positive integer; Received: units=0"),
    (lambda: L.Dense(2.5), r"units must be a strictly positive integer"),
    (lambda: L.Dropout(1.0), r"rate must be a float in \[0, 1\); Received: rate=1.0"),
    (lambda: L.Dropout(-0.1), r"rate must be a float in \[0, 1\)"),
    (lambda: L.BatchNormalization(momentum=1.5), r"momentum must be a number in \[0, 1\]"),
    (lambda: L.BatchNormalization(epsilon=0), r"epsilon must be a number > 0"),
    (lambda: L.LeakyReLU(negative_slope=-1), r"negative_slope must be a finite number >= 0"),
    (lambda: L.ReLU(max_value=-1), r"max_value must be a finite number >= 0"),
    (lambda: L.Reshape((2, -1, -1)), r"target_shape must be a tuple of positive ints with at most one -1"),
    (lambda: L.UpSampling2D(interpolation="bicubic"), r"interpolation must be 'nearest' or 'bilinear'"),
    (lambda: L.Resizing(0, 3), r"height must be a strictly positive integer"),
    (lambda: L.Resizing(3, 3, antialias=True), r"antialias must be False"),
    (lambda: L.ZeroPadding2D(-1), r"padding must be >= 0"),
    (lambda: L.Cropping2D((1, 2, 3)), r"cropping must be an int, a tuple of 2 ints"),
    (lambda: L.Rescaling("x"), r"scale must be a finite number"),
    (lambda: L.InputLayer(), r"shape must be given"),
    (lambda: L.Dense(2, dtype="int32"), r"dtype must be 'float32' or 'float64'"),
    (lambda: L.Lambda(3), r"function must be callable"),
])
def test_constructor_rejects_bad_arguments(factory, match):
    with pytest.raises((ValueError, TypeError), match=match):
        factory()


def test_dense_wrong_feature_count_names_both_counts():
    dense = L.Dense(10, name="dense_1")
    dense(np.zeros((2, 1568), np.float32))
    with pytest.raises(ValueError, match=r"Dense 'dense_1': expected 1568 input features \(built for input "
                                         r"\(None, 1568\)\); got 2048"):
        dense(np.zeros((2, 2048), np.float32))
    with pytest.raises(ValueError, match="expected 1568 input features"):
        dense(L.Input((2048,)))


def test_missing_channel_axis_suggests_expand_dims():
    conv = L.Conv2D(4, 3)
    with pytest.raises(ValueError, match=r"input must be 4-D \(batch, height, width, channels\); got shape "
                                         r"\(None, 28, 28\).*x\[\.\.\., None\]"):
        conv(np.zeros((8, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"channel axis 1 is missing"):
        L.MaxPooling2D(data_format="channels_first")(np.zeros((8, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"x\[\.\.\., None\]"):
        L.Conv1D(2, 3)(L.Input((100,)))


def test_collapsing_spatial_size_reports_shapes():
    with pytest.raises(ValueError, match=r"Conv2D 'c': output size must be > 0; got input \(None, 3, 3, 8\) -> "
                                         r"output \(None, -1, -1, 4\)"):
        L.Conv2D(4, 5, name="c")(L.Input((3, 3, 8)))
    with pytest.raises(ValueError, match=r"MaxPooling2D 'p': output size must be > 0; got input \(None, 1, 1, 8\)"):
        L.MaxPooling2D(name="p")(np.zeros((1, 1, 1, 8), np.float32))
    with pytest.raises(ValueError, match="cropping must leave at least one row"):
        L.Cropping2D(2)(np.zeros((1, 4, 4, 1)))


def test_shape_mismatches_after_build():
    conv = L.Conv2D(4, 3, name="c")
    conv(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"input must have 3 channels \(built for input \(None, 8, 8, 3\)\); got 1"):
        conv(np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="input channels must be evenly divisible by groups"):
        L.Conv2D(4, 3, groups=2)(np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="must match in every dimension except the concat axis"):
        L.Concatenate()([np.zeros((1, 4, 4, 2)), np.zeros((1, 5, 4, 2))])
    with pytest.raises(ValueError, match="equal or broadcastable"):
        L.Add()([np.zeros((1, 4, 2)), np.zeros((1, 3, 2))])
    with pytest.raises(ValueError, match="inputs must be a list of tensors; got a single input"):
        L.Add()(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="inputs must be a list of at least 2 tensors; got 1"):
        L.Add()([np.zeros((1, 4))])
    with pytest.raises(ValueError, match="total size must be unchanged"):
        L.Reshape((5,))(np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"backward must follow a call"):
        L.Dense(2).backward(np.zeros((1, 2)))


def test_frozen_layer_adds_no_regularization_penalty():
    dense = L.Dense(3, kernel_regularizer="l2")
    dense.build((None, 4))
    assert dense.regularization_loss() > 0
    dense.trainable = False
    assert dense.regularization_loss() == 0.0


@pytest.mark.parametrize("name,factory,shape", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_empty_batch(name, factory, shape):
    layer = factory()
    y = layer(_data(shape, batch=0), training=True)
    assert y.shape == (0,) + layer.compute_output_shape(_batch_shape(shape))[1:]
    if name != "lambda":
        dx = layer.backward(np.zeros_like(y))
        for g, s in zip(dx if isinstance(dx, list) else [dx], shape if isinstance(shape, list) else [shape]):
            assert g.shape == (0,) + s


def test_input_layer_checks_shape_and_suggests_channel_axis():
    layer = L.InputLayer(shape=(28, 28, 1))
    with pytest.raises(ValueError, match=r"input shape must be \(None, 28, 28, 1\); got \(None, 28, 28\) \(the "
                                         r"channel axis is missing; add it with x\[\.\.\., None\]"):
        layer(np.zeros((4, 28, 28), np.float32))
    np.testing.assert_array_equal(layer(np.ones((2, 28, 28, 1))), np.ones((2, 28, 28, 1)))
    assert L.InputLayer.from_config(layer.get_config()).batch_shape == (None, 28, 28, 1)


def test_activation_registry_and_custom_functions():
    from pycnn import activations
    assert activations.get(None) is activations.linear
    assert activations.get("swish") is activations.get("silu")
    assert activations.serialize(activations.get("gelu")) == "gelu"
    x = np.linspace(-3, 3, 13).astype(np.float32)
    np.testing.assert_allclose(activations.get("softplus")(x), np.log1p(np.exp(x.astype(np.float64))), rtol=1e-6)
    np.testing.assert_allclose(activations.get("gelu")(x), [0.5 * v * (1 + __import__("math").erf(v / 2 ** 0.5))
                                                            for v in x.astype(np.float64)], rtol=1e-6, atol=1e-7)

    def cube(v):
        return v ** 3
    dense = L.Dense(2, activation=cube)
    y = dense(np.ones((1, 3), np.float32))
    np.testing.assert_allclose(y, (np.ones((1, 3)) @ dense.kernel.value) ** 3, rtol=1e-5)
    with pytest.raises(TypeError, match=r"got custom function 'cube'"):
        dense.backward(np.ones_like(y))
    with pytest.raises(TypeError, match=r"activation must be a built-in pycnn activation to be saved"):
        dense.get_config()


def test_resizing_accepts_a_single_unbatched_image():
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    layer = L.Resizing(8, 12, dtype="float64")
    out = layer(image)
    assert out.shape == (8, 12, 3) and layer.backward(np.ones_like(out)).shape == (4, 6, 3)
    np.testing.assert_allclose(out, LR.resize_bilinear(image[None].astype(np.float64), 8, 12)[0], atol=1e-12)
