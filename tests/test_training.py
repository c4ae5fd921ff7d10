"""fit / evaluate / predict / *_on_batch semantics, data sources, non-finite losses, progress bar."""
import io
import re
import warnings

import numpy as np
import pytest

import pycnn
import pycnn.utils
from pycnn import backend
from pycnn.layers import BatchNormalization, Dense, Dropout, Input
from pycnn.models import Model, Sequential
from pycnn.progbar import Progbar
from pycnn.utils import to_categorical


@pytest.fixture(autouse=True)
def fresh():
    backend.clear_session()
    pycnn.utils.set_random_seed(0)


def mlp(loss="sparse_categorical_crossentropy", metrics=("accuracy",), optimizer="adam"):
    model = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])
    model.compile(optimizer, loss, metrics=list(metrics))
    return model


def blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4)).astype(np.float32) + 2.0 * np.eye(3, 4)[y].astype(np.float32)
    return x, y


def test_history_keys_order_and_values():
    x, y = blobs()
    model = mlp(loss="categorical_crossentropy", metrics=("accuracy", "mae"))
    history = model.fit(x, to_categorical(y), epochs=3, batch_size=16, verbose=0,
                        validation_data=(x[:20], to_categorical(y[:20])))
    assert list(history.history) == ["accuracy", "loss", "mae", "val_accuracy", "val_loss", "val_mae"]
    assert history.epoch == [0, 1, 2] and model.history is history
    assert all(len(v) == 3 for v in history.history.values())
    # the last val_ entries are exactly evaluate() on the validation data
    assert model.evaluate(x[:20], to_categorical(y[:20]), verbose=0, return_dict=True) == pytest.approx(
        {k[4:]: v[-1] for k, v in history.history.items() if k.startswith("val_")})
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    acc_key = model.fit(x, y, epochs=1, verbose=0).history
    assert "accuracy" in acc_key                              # sparse labels: still called "accuracy"


def test_epoch_loss_is_batch_size_weighted_mean_of_batch_losses():
    x, y = blobs(50)
    model = mlp(optimizer=pycnn.optimizers.SGD(learning_rate=1e-12))   # weights ~unchanged
    batch_losses = [model.test_on_batch(x[i:i + 16], y[i:i + 16])[0] for i in range(0, 50, 16)]
    history = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    expected = np.average(batch_losses, weights=[16, 16, 16, 2])
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert model.evaluate(x, y, batch_size=50, verbose=0)[0] == pytest.approx(expected, rel=1e-5)


def test_validation_split_takes_last_rows_before_shuffling():
    x, y = blobs(40)
    model = mlp()
    history = model.fit(x, y, validation_split=0.25, epochs=1, batch_size=8, verbose=0)
    # 30 training samples -> 4 steps; validation is exactly the last 10 rows
    assert history.params["steps"] == 4
    val = model.evaluate(x[30:], y[30:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(val[0], rel=1e-6)
    assert history.history["val_accuracy"][0] == pytest.approx(val[1])


def test_validation_split_of_class_sorted_data_warns():
    x, y = blobs(60)
    order = np.argsort(y, kind="stable")
    model = mlp()
    with pytest.warns(UserWarning, match=r"contains 1 of the 3 classes.*shuffle it before fit"):
        model.fit(x[order], y[order], validation_split=0.3, epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(x, y, validation_split=0.3, epochs=1, verbose=0)


def test_sample_weight_and_class_weight():
    x, y = blobs(12)
    model = mlp(metrics=())
    sw = np.linspace(0.5, 2.0, 12)
    probs = model.predict(x, verbose=0)
    per_sample = -np.log(np.clip(probs[np.arange(12), y], 1e-7, 1))
    assert model.evaluate(x, y, sample_weight=sw, batch_size=12, verbose=0) == pytest.approx(
        (per_sample * sw).mean(), rel=1e-5)
    # class_weight is the same as the matching per-sample weights
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    a, b = mlp(metrics=()), mlp(metrics=())
    b.set_weights(a.get_weights())
    pycnn.utils.set_random_seed(5)
    ha = a.fit(x, y, class_weight=cw, epochs=2, batch_size=4, verbose=0)
    pycnn.utils.set_random_seed(5)
    hb = b.fit(x, y, sample_weight=np.array([cw[int(c)] for c in y]), epochs=2, batch_size=4, verbose=0)
    assert ha.history["loss"] == pytest.approx(hb.history["loss"])


def test_shuffle_is_reproducible_with_set_random_seed():
    x, y = blobs()
    results = []
    for _ in range(2):
        backend.clear_session()
        pycnn.utils.set_random_seed(7)
        model = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dropout(0.3),
                            Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        results.append(model.fit(x, y, epochs=2, batch_size=8, verbose=0).history["loss"])
    assert results[0] == results[1]


def test_generators_lists_and_flow_objects():
    x, y = blobs(32)
    model = mlp()

    def gen():
        while True:
            for i in range(0, 32, 8):
                yield x[i:i + 8], y[i:i + 8]

    h = model.fit(gen(), steps_per_epoch=4, epochs=2, verbose=0)
    assert h.params["steps"] == 4 and len(h.history["loss"]) == 2

    batches = [(x[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8)]
    h = model.fit(batches, epochs=2, verbose=0, validation_data=batches[:2])
    assert h.params["steps"] == 4 and "val_loss" in h.history

    class Flow:
        """Like an augmentation flow: infinite iterator with __len__ = batches per epoch."""
        def __init__(self):
            self.calls = 0
        def __len__(self):
            return 4
        def __iter__(self):
            return self
        def __next__(self):
            i = self.calls % 4
            self.calls += 1
            return x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]

    flow = Flow()
    model.fit(flow, epochs=3, verbose=0)
    assert flow.calls == 12

    class KerasSequence:
        """__getitem__/__len__ only, with on_epoch_end (keras.utils.Sequence protocol)."""
        def __init__(self):
            self.epochs_ended = 0
        def __len__(self):
            return 4
        def __getitem__(self, i):
            return x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]
        def on_epoch_end(self):
            self.epochs_ended += 1

    seq = KerasSequence()
    h = model.fit(seq, epochs=2, verbose=0)
    assert h.params["steps"] == 4 and seq.epochs_ended == 2
    assert model.evaluate(batches, verbose=0)[0] > 0
    assert model.predict((b[0] for b in batches), verbose=0).shape == (32, 3)

    def finite():
        for b in batches:
            yield b

    with pytest.warns(RuntimeWarning, match="ran out of data"):
        h = model.fit(finite(), epochs=3, verbose=0)
    assert len(h.history["loss"]) == 1


def test_on_batch_methods():
    x, y = blobs(16)
    model = mlp()
    before = model.test_on_batch(x, y)
    out = model.train_on_batch(x, y)
    assert isinstance(out, list) and len(out) == 2
    assert model.test_on_batch(x, y, return_dict=True).keys() == {"accuracy", "loss"}
    assert model.test_on_batch(x, y)[0] < before[0]
    np.testing.assert_allclose(model.predict_on_batch(x), model.predict(x, verbose=0), rtol=1e-6)
    plain = mlp(metrics=())
    assert isinstance(plain.train_on_batch(x, y), float)
    assert isinstance(plain.evaluate(x, y, verbose=0), float)


def test_predict_is_batched_into_one_array():
    x, _ = blobs(70)
    model = mlp()
    full = model(x)
    out = model.predict(x, batch_size=32, verbose=0)
    assert out.shape == (70, 3)
    np.testing.assert_allclose(out, full, rtol=1e-6)


def test_initial_epoch_and_steps_per_epoch_with_arrays():
    x, y = blobs(40)
    model = mlp()
    h = model.fit(x, y, epochs=5, initial_epoch=3, batch_size=8, verbose=0)
    assert h.epoch == [3, 4]
    h = model.fit(x, y, epochs=1, steps_per_epoch=2, batch_size=8, verbose=0)
    assert h.params["steps"] == 2


def test_nonfinite_loss_stops_with_weights_from_before_the_bad_step():
    x, y = blobs(32)
    inp = Input((4,))
    out = Dense(3, activation="softmax")(BatchNormalization()(Dense(8, activation="relu")(inp)))
    model = Model(inp, out)
    model.compile(pycnn.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    x_bad = x.copy()
    x_bad[20] = np.inf                                  # batch 3 of 4 (batch_size 8, no shuffle)
    model.fit(x[:16], y[:16], epochs=1, batch_size=8, shuffle=False, verbose=0)
    snapshot = {}

    class Snap(pycnn.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                snapshot["w"] = [w.copy() for w in self.model.get_weights()]

    with pytest.warns(RuntimeWarning, match=r"fit: loss became nan at epoch 2, batch 3 \(learning_rate=0.01\)"):
        history = model.fit(x_bad, y, epochs=3, initial_epoch=1, batch_size=8, shuffle=False, verbose=0,
                            callbacks=[Snap()])
    assert np.isnan(history.history["loss"][-1]) and history.epoch == [1]
    for before, after in zip(snapshot["w"], model.get_weights()):
        np.testing.assert_array_equal(before, after)    # incl. BatchNormalization moving statistics
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_huge_learning_rate_divergence_is_caught():
    x, y = blobs(64)
    model = Sequential([Dense(16, activation="relu", input_shape=(4,)), Dense(1)])
    model.compile(pycnn.optimizers.SGD(1e6), "mse")
    with pytest.warns(RuntimeWarning, match="loss became (nan|inf)"):
        model.fit(x * 1e3, y.astype(np.float32) * 1e3, epochs=5, batch_size=8, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())


# ------------------------------------------------------------------ progress output
PLAIN_LINE = re.compile(r"^(\d+)/(\d+) ━{0,20} *\d+s \d+(ms|us|s)/step( - [a-z_]+: [0-9.e+-]+)+$")


def test_verbose_1_prints_keras_style_lines(capsys):
    x, y = blobs(40)
    model = mlp()
    model.fit(x, y, epochs=2, batch_size=16, verbose=1, validation_data=(x, y))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2" and out[2] == "Epoch 2/2"
    assert PLAIN_LINE.match(out[1]), out[1]
    assert out[1].startswith("3/3 ━━━━━━━━━━━━━━━━━━━━ ")
    assert re.search(r" - accuracy: \d\.\d{4} - loss: \d\.\d{4} - val_accuracy: \d\.\d{4} - val_loss: \d\.\d{4}$", out[1])


def test_verbose_2_and_0(capsys):
    x, y = blobs(40)
    model = mlp()
    model.fit(x, y, epochs=2, batch_size=16, verbose=2)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2"
    assert re.match(r"^3/3 - \d+s - \d+(ms|us|s)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4}$", out[1]), out[1]
    model.fit(x, y, epochs=2, verbose=0)
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_progbar_redraws_in_place_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    bar = Progbar(469, stream=out, interval=0.0)
    for step in range(1, 470):
        bar.update(step, [("accuracy", 0.9713), ("loss", 0.0951)], finalize=False)
    bar.update(469, [("accuracy", 0.9713), ("loss", 0.0951)], finalize=True)
    text = out.getvalue()
    assert text.count("\n") == 1 and text.count("\r") == 470
    final = re.sub(r"\x1b\[[0-9;]*m", "", text.split("\r")[-1])
    assert re.match(r"^469/469 ━{20} \d+s \d+(us|ms|s)/step - accuracy: 0\.9713 - loss: 0\.0951\s*\n$", final)
    assert "\x1b[32m" in text                          # the done part is green, like Keras
    mid = re.sub(r"\x1b\[[0-9;]*m", "", text.split("\r")[10])
    assert mid.startswith("  9/469 ") or mid.startswith(" 10/469 ")


def test_progbar_throttles_redraws():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    bar = Progbar(10000, stream=out, interval=3600)
    for step in range(1, 10001):
        bar.update(step, [("loss", 1.0)])
    assert out.getvalue().count("\r") <= 2             # the first draw and the final one


def test_progbar_value_format():
    from pycnn.progbar import format_value, format_time_per_step, format_eta
    assert format_value(0.0951) == "0.0951" and format_value(1e-5) == "1.0000e-05"
    assert format_time_per_step(0.009) == "9ms/step" and format_time_per_step(2.4) == "2s/step"
    assert format_time_per_step(5e-5) == "50us/step"
    assert format_eta(5) == "5s" and format_eta(125) == "2:05" and format_eta(3725) == "1:02:05"


def test_fit_on_augmentation_flow_is_reproducible_with_set_random_seed():
    from pycnn.layers import Conv2D, Flatten
    from pycnn.preprocessing import image as image_module
    rng = np.random.default_rng(12)
    x = rng.random((20, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 2, 20)
    runs = []
    for _ in range(2):
        backend.clear_session()
        pycnn.utils.set_random_seed(21)
        model = Sequential([Conv2D(2, 3, activation="relu", input_shape=(8, 8, 1)), Flatten(),
                            Dense(2, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        flow = image_module.ImageDataGenerator(rotation_range=20, horizontal_flip=True).flow(x, y, batch_size=8)
        history = model.fit(flow, epochs=2, verbose=0)
        assert history.params["steps"] == len(flow) == 3
        runs.append((history.history["loss"], model.get_weights()))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_progbar_in_a_notebook_redraws_in_place_but_throttled(monkeypatch):
    import sys
    import types
    # A running kernel: IPython.get_ipython() returns a shell that has a kernel.
    fake_ipython = types.ModuleType("IPython")
    fake_ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())
    monkeypatch.setitem(sys.modules, "IPython", fake_ipython)
    out = io.StringIO()                                 # notebook streams are not TTYs
    bar = Progbar(100, stream=out)
    assert bar.interval == 0.5
    for step in range(1, 101):
        bar.update(step, [("loss", 0.5)])
    text = out.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\r") <= 3


def test_progbar_to_a_file_writes_only_finished_lines():
    out = io.StringIO()
    bar = Progbar(50, stream=out, interval=0.0)
    for step in range(1, 51):
        bar.update(step, [("loss", 0.5)])
    assert "\r" not in out.getvalue() and out.getvalue().count("\n") == 1
