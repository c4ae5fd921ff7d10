"""Sequential / functional models: Tutorial 1's LeNet, summaries, DAG architectures, nested frozen
models, bad inputs, and one Adam step of LeNet-5 against Keras 3 on identical weights."""
import os
import re

import numpy as np
import pytest

import pycnn
import pycnn.utils
from pycnn import backend
from pycnn.layers import (Add, AveragePooling2D, BatchNormalization, Concatenate, Conv2D,
                          Conv2DTranspose, Dense, Flatten, GlobalAveragePooling2D, Input, MaxPooling2D,
                          ReLU)
from pycnn.models import Model, Sequential
from pycnn.utils import to_categorical


# Keras (the oracle) triggers NumPy 2 __array__ deprecation warnings inside its own code
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

@pytest.fixture(autouse=True)
def fresh_names():
    backend.clear_session()
    pycnn.utils.set_random_seed(0)


def tutorial_lenet():
    """Tutorial 1's model cell with tf.keras replaced by pycnn."""
    model = Sequential()
    model.add(Conv2D(filters=6, kernel_size=(5, 5), activation='sigmoid', input_shape=(28, 28, 1), padding="same"))
    model.add(AveragePooling2D(pool_size=(2, 2), strides=2))
    model.add(Conv2D(16, (5, 5), activation='sigmoid', padding="valid"))
    model.add(AveragePooling2D(pool_size=(2, 2), strides=2))
    model.add(Flatten())
    model.add(Dense(120, 'sigmoid'))
    model.add(Dense(84, 'sigmoid'))
    model.add(Dense(10, 'softmax'))
    return model


def digits_like(n, rng):
    """Random images whose class is encoded in which horizontal band is bright (learnable fast)."""
    labels = rng.integers(0, 10, n)
    x = rng.random((n, 28, 28, 1)).astype(np.float32) * 0.3
    for i, c in enumerate(labels):
        x[i, 2 + 2 * c:4 + 2 * c, :, 0] += 1.0
    return x, labels


def test_tutorial_lenet_summary_numbers():
    model = tutorial_lenet()
    text = model.summary_string(line_length=76)
    rows = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    params = [cells[3].strip() for cells in rows if cells[3].strip()]   # wrapped lines have none
    assert params == ["156", "0", "2,416", "0", "0", "48,120", "10,164", "850"]
    for name in ["conv2d (Conv2D)", "conv2d_1 (Conv2D)", "flatten (Flatten)", "dense_2 (Dense)",
                 "(None, 28, 28, 6)", "(None, 5, 5, 16)", "(None, 400)"]:
        assert name in text
    assert text.splitlines()[0] == 'Model: "sequential"'
    assert " Total params: 61,706 (241.04 KB)" in text.splitlines()
    assert " Trainable params: 61,706 (241.04 KB)" in text.splitlines()
    assert " Non-trainable params: 0 (0.00 B)" in text.splitlines()
    # the Keras 3 box layout, with every line the same width
    lines = text.splitlines()
    table = [l for l in lines if l[:1] in "┏┃┡│├└"]
    assert table[0].startswith("┏━") and table[-1].startswith("└─")
    assert "┃ Layer (type)" in table[1] and "Param # ┃" in table[1]
    assert len({len(l) for l in table}) == 1 and len(table[0]) == 76


def test_summary_print_fn_and_optimizer_params(capsys):
    model = tutorial_lenet()
    lines = []
    model.summary(print_fn=lines.append)
    assert "\n".join(lines) == model.summary_string()
    model.summary()
    assert capsys.readouterr().out.strip() == model.summary_string().strip()
    rng = np.random.default_rng(0)
    x, y = digits_like(16, rng)
    model.compile(optimizer="Adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, to_categorical(y, 10), epochs=1, verbose=0)
    text = model.summary_string()
    # Keras: Adam adds iterations + learning_rate + m and v per trainable parameter, all in Total
    assert " Optimizer params: 123,414 (482.09 KB)" in text
    assert " Total params: 185,120 (723.12 KB)" in text


def test_tutorial_cell_compiles_fits_and_predicts(capsys):
    rng = np.random.default_rng(1)
    x, labels = digits_like(384, rng)
    y = to_categorical(labels, 10)
    model = tutorial_lenet()
    model.compile(optimizer="Adam", loss="categorical_crossentropy", metrics=["accuracy", "categorical_crossentropy"])
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, batch_size=128, epochs=2, verbose=True, shuffle=True)
    # Without colour codes: the bar is coloured when the process looks like a notebook
    # (an earlier test may have imported ipykernel).
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "Epoch 1/2" in out and "Epoch 2/2" in out and "3/3 " in out
    assert list(history.history) == ["accuracy", "categorical_crossentropy", "loss"]
    assert len(history.history["loss"]) == 2 and history.epoch == [0, 1]
    # with metrics, evaluate returns [loss, accuracy, categorical_crossentropy]
    after = model.evaluate(x, y, verbose=0)
    assert after[0] < before[0] and after[2] == pytest.approx(after[0])
    probs = model.predict(x, verbose=0)
    assert probs.shape == (384, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probs, model(x), rtol=1e-6)      # batched predict == one forward


def test_relu_maxpool_lenet_learns_the_classes():
    rng = np.random.default_rng(1)
    x, labels = digits_like(384, rng)
    model = Sequential([Conv2D(6, 5, activation="relu", input_shape=(28, 28, 1), padding="same"), MaxPooling2D(),
                        Conv2D(16, 5, activation="relu"), MaxPooling2D(), Flatten(), Dense(120, "relu"),
                        Dense(84, "relu"), Dense(10, "softmax")])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, to_categorical(labels, 10), batch_size=32, epochs=3, verbose=0)
    assert (model.predict(x, verbose=0).argmax(axis=1) == labels).mean() > 0.9


def test_sequential_api():
    model = Sequential([Dense(4, input_shape=(3,)), Dense(2)], name="seq")
    assert model.built and model.name == "seq"
    assert model.get_layer("dense_1") is model.layers[1]
    assert model.get_layer(index=0) is model.layers[0]
    model.add(Dense(5))
    assert model.output_shape == (None, 5)
    popped = model.pop()
    assert popped.name == "dense_2" and len(model.layers) == 2
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")
    lazy = Sequential([Dense(3)])
    assert not lazy.built
    out = lazy(np.ones((2, 7), dtype=np.float32))
    assert out.shape == (2, 3) and lazy.built and lazy.count_params() == 24
    built = Sequential([Input((6,)), Dense(2)])
    assert built.built and built.layers[0].input_shape == (None, 6)
    explicit = Sequential([Dense(2)])
    explicit.build((None, 4))
    assert explicit.count_params() == 10


def test_trainable_propagates_to_nested_layers():
    base = Sequential([Conv2D(2, 3, input_shape=(6, 6, 1)), BatchNormalization(), Flatten()])
    model = Sequential([base, Dense(2)])
    base.trainable = False
    assert all(not l.trainable for l in base.layers)
    assert len(model.trainable_weights) == 2
    text = model.summary_string()
    assert " Non-trainable params: 28 (112.00 B)" in text        # conv 3*3*1*2+2 and BN 4*2
    assert " Trainable params: 66 (264.00 B)" in text            # dense 32*2+2
    base.trainable = True
    assert all(l.trainable for l in base.layers)


def test_frozen_base_inside_sequential_trains_only_the_head():
    rng = np.random.default_rng(2)
    base_in = Input((12, 12, 3))
    h = Conv2D(4, 3, activation="relu")(base_in)
    h = BatchNormalization()(h)
    h = MaxPooling2D()(h)
    base = Model(base_in, h, name="base")
    base.trainable = False
    model = Sequential([base, Flatten(), Dense(3, activation="softmax")])
    frozen_before = [w.copy() for w in base.get_weights()]
    head_before = [w.copy() for w in model.layers[-1].get_weights()]
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x = rng.random((40, 12, 12, 3)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for a, b in zip(frozen_before, base.get_weights()):
        assert a.tobytes() == b.tobytes()          # bit-identical, moving statistics included
    assert any(not np.array_equal(a, b) for a, b in zip(head_before, model.layers[-1].get_weights()))
    text = model.summary_string()
    assert "base (Functional)" in text
    n_base = base.count_params()
    assert f" Non-trainable params: {n_base:,}" in text


def _falls(model, x, y, loss, epochs=6, batch_size=8):
    """First and last epoch's training loss (BatchNormalization's moving statistics lag behind
    after a few steps, so the inference-mode loss is not the measure here)."""
    model.compile(pycnn.optimizers.Adam(0.01), loss)
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0).history["loss"]
    return history[0], history[-1]


def test_resnet_block_builds_summarises_and_trains():
    inp = Input((8, 8, 4))
    h = Conv2D(4, 3, padding="same")(inp)
    h = BatchNormalization()(h)
    h = ReLU()(h)
    h = Conv2D(4, 3, padding="same")(h)
    h = BatchNormalization()(h)
    h = Add()([h, inp])
    h = ReLU()(h)
    out = Dense(3, activation="softmax")(GlobalAveragePooling2D()(h))
    model = Model(inp, out)
    text = model.summary_string(line_length=150)
    assert "Connected to" in text and "add (Add)" in text
    assert "batch_normalization_1[0][0]" in text and "input_layer[0][0]" in text
    assert model.count_params() == 2 * (4 * 9 * 4 + 4) + 2 * 16 + 15
    rng = np.random.default_rng(3)
    x = rng.random((32, 8, 8, 4)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    first, last = _falls(model, x, y, "sparse_categorical_crossentropy")
    assert last < first


def test_inception_module_builds_and_trains():
    inp = Input((8, 8, 3))
    b1 = Conv2D(2, 1, activation="relu")(inp)
    b2 = Conv2D(3, 3, padding="same", activation="relu")(Conv2D(2, 1, activation="relu")(inp))
    b3 = Conv2D(2, 5, padding="same", activation="relu")(Conv2D(1, 1, activation="relu")(inp))
    b4 = Conv2D(2, 1, activation="relu")(MaxPooling2D(3, strides=1, padding="same")(inp))
    cat = Concatenate()([b1, b2, b3, b4])
    model = Model(inp, Dense(2, activation="softmax")(GlobalAveragePooling2D()(cat)))
    assert model.output_shape == (None, 2)
    assert model.get_layer("concatenate").output_shape == (None, 8, 8, 9)
    text = model.summary_string(line_length=140)
    row_start = [i for i, line in enumerate(text.splitlines()) if "concatenate (Concatenate)" in line][0]
    cells = " ".join(line.split("│")[4].strip() for line in text.splitlines()[row_start:row_start + 3]
                     if line.startswith("│"))
    # the outer Conv2D of "Conv2D(...)(Conv2D(...)(inp))" is created first, so it gets the lower index
    assert cells.startswith("conv2d[0][0], conv2d_1[0][0], conv2d_3[0][0], conv2d_5[0][0]")
    rng = np.random.default_rng(4)
    x = rng.random((24, 8, 8, 3)).astype(np.float32)
    y = to_categorical(rng.integers(0, 2, 24), 2)
    first, last = _falls(model, x, y, "categorical_crossentropy")
    assert last < first


def test_two_level_unet_builds_and_trains():
    inp = Input((16, 16, 1))
    c1 = Conv2D(4, 3, padding="same", activation="relu")(inp)
    c2 = Conv2D(8, 3, padding="same", activation="relu")(MaxPooling2D()(c1))
    mid = Conv2D(8, 3, padding="same", activation="relu")(MaxPooling2D()(c2))
    u2 = Concatenate()([Conv2DTranspose(8, 2, strides=2)(mid), c2])
    u2 = Conv2D(8, 3, padding="same", activation="relu")(u2)
    u1 = Concatenate()([Conv2DTranspose(4, 2, strides=2)(u2), c1])
    out = Conv2D(1, 1, activation="sigmoid")(Conv2D(4, 3, padding="same", activation="relu")(u1))
    model = Model(inp, out, name="unet")
    assert model.output_shape == (None, 16, 16, 1)
    text = model.summary_string()
    assert 'Model: "unet"' in text and "Connected to" in text
    rng = np.random.default_rng(5)
    x = rng.random((12, 16, 16, 1)).astype(np.float32)
    y = (x > 0.5).astype(np.float32)
    first, last = _falls(model, x, y, "binary_crossentropy", epochs=8, batch_size=4)
    assert last < first


def test_functional_backward_accumulates_fan_out_gradients_exactly():
    """A residual Dense graph in float64: weight and input gradients vs central differences."""
    inp = Input((3,), dtype="float64")
    d1 = Dense(3, activation="tanh", dtype="float64")
    d2 = Dense(3, activation="sigmoid", dtype="float64")
    h = d1(inp)
    s = Add(dtype="float64")([h, inp, d2(h)])          # inp and h each fan out twice
    out = Dense(2, dtype="float64")(s)
    model = Model(inp, out)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 3))
    target = rng.normal(size=(4, 2))
    loss = pycnn.losses.MeanSquaredError()

    def value():
        return loss(target, model(x))

    _, grad = loss.value_and_grad(target, model(x, training=True))
    dx = np.array(model.backward(grad))
    for var in model.trainable_weights:
        num = np.zeros_like(var.value)
        for idx in np.ndindex(var.value.shape):
            old = var.value[idx]
            var.value[idx] = old + 1e-6
            fp = value()
            var.value[idx] = old - 1e-6
            fm = value()
            var.value[idx] = old
            num[idx] = (fp - fm) / 2e-6
        np.testing.assert_allclose(var.grad, num, rtol=1e-6, atol=1e-9, err_msg=var.name)
    num_x = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + 1e-6
        fp = value()
        x[idx] = old - 1e-6
        fm = value()
        x[idx] = old
        num_x[idx] = (fp - fm) / 2e-6
    np.testing.assert_allclose(dx, num_x, rtol=1e-6, atol=1e-9)


def test_fused_softmax_step_equals_unfused_gradient():
    """The fused p - y path gives the same weight gradients as backpropagating through softmax."""
    rng = np.random.default_rng(7)
    model = Sequential([Dense(5, activation="relu", input_shape=(4,), dtype="float64"),
                        Dense(3, activation="softmax", dtype="float64")])
    model.compile("sgd", "categorical_crossentropy")
    x = rng.normal(size=(6, 4))
    y = to_categorical(rng.integers(0, 3, 6), 3)
    assert model._fusion() is not None
    probs = model(x, training=True)
    _, dlogits = model._loss_and_grad(y, probs, None, model._fusion())
    model._backward(dlogits, need_input_grad=False, fused=True)
    fused = [v.grad.copy() for v in model.trainable_weights]
    _, dprobs = model._loss_obj.value_and_grad(y, model(x, training=True))
    model._backward(dprobs, need_input_grad=False, fused=False)
    for a, v in zip(fused, model.trainable_weights):
        np.testing.assert_allclose(a, v.grad, rtol=1e-9, atol=1e-12)
    assert model.layers[-1].activation is pycnn.activations.softmax   # restored after the fused pass


def test_model_used_as_layer_in_functional_graph():
    inner_in = Input((4,))
    inner = Model(inner_in, Dense(3, activation="relu")(inner_in), name="inner")
    outer_in = Input((4,))
    out = Dense(2)(inner(outer_in))
    model = Model(outer_in, out)
    x = np.random.default_rng(8).random((5, 4)).astype(np.float32)
    expected = model.layers[-1](inner(x))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6)
    assert "inner (Functional)" in model.summary_string()


# ------------------------------------------------------------------ bad inputs
def compiled_small():
    model = Sequential([Conv2D(2, 3, input_shape=(8, 8, 1)), Flatten(), Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_fit_before_compile_is_an_error():
    model = Sequential([Dense(2, input_shape=(3,))])
    with pytest.raises(ValueError, match=r"Model.fit: the model must be compiled before fit\(\).*model.compile"):
        model.fit(np.zeros((4, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="compiled before evaluate"):
        model.evaluate(np.zeros((4, 3)), np.zeros(4))


def test_sample_count_mismatch_names_both_counts():
    model = compiled_small()
    with pytest.raises(ValueError, match=r"x and y must have the same number of samples; got x with 10 .* y with 8"):
        model.fit(np.zeros((10, 8, 8, 1)), np.zeros(8), verbose=0)


def test_one_hot_labels_with_sparse_loss_and_the_reverse():
    model = compiled_small()
    x = np.zeros((4, 8, 8, 1), np.float32)
    with pytest.raises(ValueError, match=r"y_true shape \(4, 3\) does not match predictions \(4, 3\).*categorical_crossentropy"):
        model.fit(x, np.eye(3)[[0, 1, 2, 0]], verbose=0)
    model.compile("adam", "categorical_crossentropy")
    with pytest.raises(ValueError, match=r"y_true shape \(4,\) does not match predictions \(4, 3\).*sparse_categorical_crossentropy"):
        model.fit(x, np.array([0, 1, 2, 0]), verbose=0)


def test_labels_out_of_range():
    model = compiled_small()
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\); got 7 at index 1"):
        model.fit(np.zeros((4, 8, 8, 1)), np.array([0, 7, 1, 2]), verbose=0)


@pytest.mark.parametrize("kwargs,message", [
    (dict(batch_size=0), "batch_size must be a positive integer; got 0"),
    (dict(batch_size=-3), "batch_size must be a positive integer; got -3"),
    (dict(epochs=-1), "epochs must be an integer >= 0; got -1"),
    (dict(validation_split=1.5), r"validation_split must be a float in \[0, 1\); got 1.5"),
    (dict(verbose=5), "verbose must be 0, 1, 2"),
    (dict(steps_per_epoch=0), "steps_per_epoch must be a positive integer"),
])
def test_fit_hyperparameters_out_of_range(kwargs, message):
    model = compiled_small()
    with pytest.raises(ValueError, match=message):
        model.fit(np.zeros((4, 8, 8, 1)), np.zeros(4), **kwargs)


def test_zero_samples():
    model = compiled_small()
    with pytest.raises(ValueError, match=r"x must contain at least one sample; got x.shape=\(0, 8, 8, 1\)"):
        model.fit(np.zeros((0, 8, 8, 1)), np.zeros(0))
    with pytest.raises(ValueError, match="at least one sample"):
        model.predict(np.zeros((0, 8, 8, 1)))


def test_missing_channel_axis_suggests_expand_dims():
    model = compiled_small()
    with pytest.raises(ValueError, match=r"channel axis is missing.*x\[\.\.\., None\]"):
        model.fit(np.zeros((4, 8, 8)), np.zeros(4), verbose=0)


def test_spatial_collapse_reports_shape_trace():
    with pytest.raises(ValueError) as info:
        Sequential([Conv2D(4, 5, input_shape=(12, 12, 1)), MaxPooling2D(), Conv2D(4, 5), Conv2D(4, 3)])
    message = str(info.value)
    assert "Shape trace" in message and "(None, 8, 8, 4)" in message and "(None, 4, 4, 4)" in message
    assert "conv2d_1 (Conv2D) <- fails on input (None, 4, 4, 4)" in message


def test_wrong_image_size_for_built_model():
    model = compiled_small()
    with pytest.raises(ValueError, match=r"input shape must be \(None, 8, 8, 1\); got \(None, 10, 10, 1\)"):
        model.predict(np.zeros((2, 10, 10, 1)))


def test_validation_split_leaving_no_training_data():
    model = compiled_small()
    with pytest.raises(ValueError, match="validation_split=0.5 leaves 0 training and 1 validation samples"):
        model.fit(np.zeros((1, 8, 8, 1)), np.zeros(1), validation_split=0.5, verbose=0)


# ------------------------------------------------------------------ Keras oracle
def test_one_adam_step_of_lenet5_matches_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="Keras 3 (torch backend) is the oracle for this test")
    if keras.backend.backend() != "torch":
        pytest.skip(f"needs KERAS_BACKEND=torch; got {keras.backend.backend()}")
    from keras import layers as kl
    ours = tutorial_lenet()
    theirs = keras.Sequential([
        kl.Input((28, 28, 1)),
        kl.Conv2D(6, (5, 5), activation="sigmoid", padding="same"), kl.AveragePooling2D(2, 2),
        kl.Conv2D(16, (5, 5), activation="sigmoid"), kl.AveragePooling2D(2, 2), kl.Flatten(),
        kl.Dense(120, activation="sigmoid"), kl.Dense(84, activation="sigmoid"), kl.Dense(10, activation="softmax")])
    theirs.set_weights(ours.get_weights())          # identical layouts: HWIO kernels, (in, out) dense
    rng = np.random.default_rng(9)
    x, labels = digits_like(32, rng)
    y = to_categorical(labels, 10)
    ours.compile(optimizer="Adam", loss="categorical_crossentropy")
    theirs.compile(optimizer="adam", loss="categorical_crossentropy")
    loss_ours = ours.train_on_batch(x, y)
    loss_theirs = float(theirs.train_on_batch(x, y))
    assert loss_ours == pytest.approx(loss_theirs, rel=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def _keras_summary(model, **kwargs):
    chunks = []
    model.summary(print_fn=lambda text, *args, **kw: chunks.append(text), **kwargs)
    return [line.rstrip() for line in "\n".join(chunks).splitlines() if line.strip()]


def test_summary_text_matches_keras(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")      # rich (Keras) and pycnn both cap at the terminal width
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="Keras 3 is the oracle for the summary layout")
    from keras import layers as kl
    ours = tutorial_lenet()
    names = [l.name for l in ours.layers]
    theirs = keras.Sequential(
        [kl.Input((28, 28, 1)),
         kl.Conv2D(6, (5, 5), activation="sigmoid", padding="same", name=names[0]),
         kl.AveragePooling2D(2, 2, name=names[1]),
         kl.Conv2D(16, (5, 5), activation="sigmoid", name=names[2]), kl.AveragePooling2D(2, 2, name=names[3]),
         kl.Flatten(name=names[4]), kl.Dense(120, activation="sigmoid", name=names[5]),
         kl.Dense(84, activation="sigmoid", name=names[6]), kl.Dense(10, activation="softmax", name=names[7])],
        name="sequential")
    for length in (None, 76, 100):
        mine = [l.rstrip() for l in ours.summary_string(line_length=length).splitlines()]
        assert mine == _keras_summary(theirs, line_length=length)
    # a functional DAG with the 'Connected to' column
    backend.clear_session()
    inp = Input((8, 8, 3), name="image")
    a = Conv2D(4, 3, padding="same", name="left")(inp)
    b = Conv2D(4, 1, name="right")(inp)
    out = Dense(2, name="head")(Flatten(name="flat")(BatchNormalization(name="bn")(Add(name="sum")([a, b]))))
    ours = Model(inp, out, name="dag")
    kin = keras.Input((8, 8, 3), name="image")
    ka = kl.Conv2D(4, 3, padding="same", name="left")(kin)
    kb = kl.Conv2D(4, 1, name="right")(kin)
    kout = kl.Dense(2, name="head")(kl.Flatten(name="flat")(kl.BatchNormalization(name="bn")(kl.Add(name="sum")([ka, kb]))))
    theirs = keras.Model(kin, kout, name="dag")
    for length in (None, 76):
        mine = [l.rstrip() for l in ours.summary_string(line_length=length).splitlines()]
        assert mine == _keras_summary(theirs, line_length=length)
    # nested frozen model, expanded, with the Trainable column
    backend.clear_session()
    base = Sequential([Dense(3, input_shape=(2,)), Dense(2)], name="base")
    base.trainable = False
    ours = Sequential([base, Dense(1)], name="outer")
    kbase = keras.Sequential([kl.Input((2,)), kl.Dense(3, name="dense"), kl.Dense(2, name="dense_1")], name="base")
    kbase.trainable = False
    theirs = keras.Sequential([kl.Input((2,)), kbase, kl.Dense(1, name="dense_2")], name="outer")
    mine = [l.rstrip() for l in ours.summary_string(expand_nested=True, show_trainable=True).splitlines()]
    assert mine == _keras_summary(theirs, expand_nested=True, show_trainable=True)


def test_tutorial2_assembly_with_lambda_and_frozen_base_trains_only_the_head():
    from pycnn.layers import Lambda, Resizing

    def preprocess(images):                       # like vgg16.preprocess_input: no backward given
        return images[..., ::-1] - np.array([103.9, 116.8, 123.7], dtype=images.dtype)

    base = Sequential([Conv2D(4, 3, activation="relu", input_shape=(16, 16, 3)), BatchNormalization(),
                       MaxPooling2D()], name="vgg_like")
    base.trainable = False
    model = Sequential([Resizing(16, 16, input_shape=(8, 8, 3)), Lambda(preprocess), base, Flatten(),
                        Dense(3, activation="softmax")])
    frozen = [w.copy() for w in base.get_weights()]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(10)
    x = rng.uniform(0, 255, (24, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert len(history.history["loss"]) == 2
    assert all(a.tobytes() == b.tobytes() for a, b in zip(frozen, base.get_weights()))
    text = model.summary_string()
    assert f" Non-trainable params: {base.count_params():,}" in text
    assert f" Trainable params: {model.layers[-1].count_params():,}" in text


def test_two_input_functional_model_fits_on_a_list_of_arrays():
    a_in, b_in = Input((4,), name="a"), Input((3,), name="b")
    merged = Concatenate()([Dense(5, activation="relu")(a_in), b_in])
    model = Model([a_in, b_in], Dense(2, activation="softmax")(merged))
    rng = np.random.default_rng(11)
    xa, xb = rng.normal(size=(32, 4)).astype(np.float32), rng.normal(size=(32, 3)).astype(np.float32)
    y = (xa[:, 0] + xb[:, 0] > 0).astype(np.int64)
    model.compile(pycnn.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit([xa, xb], y, epochs=8, batch_size=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict([xa, xb], verbose=0).shape == (32, 2)
    with pytest.raises(ValueError, match="all inputs must have the same number of samples"):
        model.predict([xa, xb[:5]])


def test_summary_options_and_json_round_trip():
    base = Sequential([Dense(3, input_shape=(2,)), Dense(2)], name="base")
    base.trainable = False
    model = Sequential([base, Dense(1)], name="outer")
    text = model.summary_string(expand_nested=True, show_trainable=True, line_length=100)
    assert "│    └ dense (Dense) " in text and "│    └ dense_1 (Dense) " in text
    assert "Traina…" in text.splitlines()[2]          # Keras cuts the header the same way
    rows = {line.split("│")[1].strip(): line.split("│")[-2].strip() for line in text.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}
    assert rows["base (Sequential)"] == "N" and rows["dense_2 (Dense)"] == "Y"
    assert "dense_2" in model.summary_string(layer_range=["dense_2", "dense_2"])
    assert "base (Sequential)" not in model.summary_string(layer_range=["dense_2", "dense_2"])
    again = pycnn.models.model_from_json(model.to_json())
    assert [l.name for l in again.layers] == ["base", "dense_2"] and again.count_params() == model.count_params()
    assert not again.get_layer("base").trainable


def test_fused_path_through_a_separate_softmax_layer_in_a_functional_model():
    from pycnn.layers import Softmax
    rng = np.random.default_rng(13)
    inp = Input((4,), dtype="float64")
    out = Softmax(dtype="float64")(Dense(3, dtype="float64")(Dense(5, activation="tanh", dtype="float64")(inp)))
    model = Model(inp, out)
    model.compile("sgd", "sparse_categorical_crossentropy")
    assert model._fusion()[0] == "layer"
    x, labels = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)
    probs = model(x, training=True)
    _, dlogits = model._loss_and_grad(labels, probs, None, model._fusion())
    model._backward(dlogits, need_input_grad=False, fused=True)
    fused = [v.grad.copy() for v in model.trainable_weights]
    _, dprobs = model._loss_obj.value_and_grad(labels, model(x, training=True))
    model._backward(dprobs, need_input_grad=False, fused=False)
    for a, v in zip(fused, model.trainable_weights):
        np.testing.assert_allclose(a, v.grad, rtol=1e-9, atol=1e-12)
