"""Callbacks: the Callback hooks, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
LearningRateScheduler, CSVLogger, TerminateOnNaN."""
import csv

import numpy as np
import pytest

import pycnn
import pycnn.utils
from pycnn import backend, callbacks
from pycnn.layers import Dense
from pycnn.models import Sequential, load_model


@pytest.fixture(autouse=True)
def fresh():
    backend.clear_session()
    pycnn.utils.set_random_seed(0)


def model_and_data(lr=0.01):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 48)
    x = rng.normal(size=(48, 4)).astype(np.float32) + 2.0 * np.eye(3, 4)[y].astype(np.float32)
    model = Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])
    model.compile(pycnn.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model, x, y


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin", self.params["epochs"], self.params["steps"]))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch, sorted(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.events.append(("train_end",))


def test_hooks_are_called_in_order_with_logs():
    model, x, y = model_and_data()
    rec = Recorder()
    model.fit(x, y, epochs=2, batch_size=24, verbose=0, callbacks=[rec], validation_data=(x, y))
    assert rec.model is model
    assert rec.events == [
        ("train_begin", 2, 2),
        ("epoch_begin", 0), ("batch_end", 0, ["accuracy", "loss"]), ("batch_end", 1, ["accuracy", "loss"]),
        ("epoch_end", 0, ["accuracy", "loss", "val_accuracy", "val_loss"]),
        ("epoch_begin", 1), ("batch_end", 0, ["accuracy", "loss"]), ("batch_end", 1, ["accuracy", "loss"]),
        ("epoch_end", 1, ["accuracy", "loss", "val_accuracy", "val_loss"]),
        ("train_end",)]


def test_lambda_callback_and_stop_training():
    model, x, y = model_and_data()
    seen = []
    stopper = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: (seen.append(epoch),
                                                                         setattr(model, "stop_training", epoch == 1)))
    history = model.fit(x, y, epochs=10, verbose=0, callbacks=[stopper])
    assert seen == [0, 1] and len(history.history["loss"]) == 2


def test_early_stopping_restores_best_weights():
    model, x, y = model_and_data()
    losses = iter([1.0, 0.5, 0.7, 0.6, 0.55, 0.9, 0.9])
    weights_at = {}

    class FakeVal(callbacks.Callback):
        """Overwrites val_loss with a scripted sequence and remembers each epoch's weights."""
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(losses)
            weights_at[epoch] = [w.copy() for w in self.model.get_weights()]

    stop = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=7, verbose=0, callbacks=[FakeVal(), stop])
    assert len(history.history["loss"]) == 4          # best at epoch 1, two bad epochs, stop at 3
    assert stop.stopped_epoch == 3 and stop.best == 0.5 and stop.best_epoch == 1
    for a, b in zip(model.get_weights(), weights_at[1]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_mode_auto_and_min_delta():
    assert callbacks.EarlyStopping(monitor="val_accuracy").mode == "max"
    assert callbacks.EarlyStopping(monitor="loss").mode == "min"
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max'"):
        callbacks.EarlyStopping(mode="up")
    model, x, y = model_and_data()
    stop = callbacks.EarlyStopping(monitor="loss", min_delta=10.0, patience=1)
    history = model.fit(x, y, epochs=5, verbose=0, callbacks=[stop])
    assert len(history.history["loss"]) == 2           # no epoch improves by 10


def test_early_stopping_missing_key_warns_with_available_keys():
    model, x, y = model_and_data()
    with pytest.warns(RuntimeWarning, match=r"'val_acc' is not in the logs; available keys: \['accuracy', 'loss'\]"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_acc")])


def test_model_checkpoint_best_only_and_weights_only(tmp_path):
    model, x, y = model_and_data()
    scripted = iter([0.9, 0.5, 0.7, 0.4])

    class FakeVal(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(scripted)

    path = str(tmp_path / "best-{epoch:02d}-{val_loss:.2f}.keras")
    ckpt = callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    snapshots = {}

    class Snap(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots[epoch] = self.model.predict(x, verbose=0)

    model.fit(x, y, epochs=4, verbose=0, callbacks=[FakeVal(), ckpt, Snap()])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-01-0.90.keras", "best-02-0.50.keras",
                                                          "best-04-0.40.keras"]
    np.testing.assert_array_equal(load_model(tmp_path / "best-02-0.50.keras").predict(x, verbose=0), snapshots[1])
    wpath = tmp_path / "last.weights.h5"
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.ModelCheckpoint(wpath, save_weights_only=True)])
    other, _, _ = model_and_data()
    other.load_weights(wpath)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_reduce_lr_on_plateau_and_history_learning_rate():
    model, x, y = model_and_data(lr=0.01)
    scripted = iter([1.0, 1.0, 1.0, 1.0, 0.1, 0.1])

    class FakeVal(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(scripted)

    reduce = callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=0.003)
    history = model.fit(x, y, epochs=6, verbose=0, callbacks=[FakeVal(), reduce])
    # val_loss 1.0 at epochs 0-3: no improvement at epochs 1 and 2 -> halved after epoch 2 (History
    # records the rate each epoch ran with); epoch 4 improves, so no second reduction
    assert history.history["learning_rate"] == pytest.approx([0.01, 0.01, 0.01, 0.005, 0.005, 0.005])
    assert model.optimizer.learning_rate == pytest.approx(0.005)
    with pytest.raises(ValueError, match=r"factor must be in \(0, 1\)"):
        callbacks.ReduceLROnPlateau(factor=1.5)


def test_learning_rate_scheduler():
    model, x, y = model_and_data(lr=0.01)
    seen = []

    class Watch(callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(self.model.optimizer.learning_rate)

    sched = callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.1 if epoch >= 1 else lr)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[sched, Watch()])
    assert seen == pytest.approx([0.01, 0.001, 0.0001])
    assert history.history["learning_rate"] == pytest.approx([0.01, 0.001, 0.0001])
    one_arg = callbacks.LearningRateScheduler(lambda epoch: 0.02 / (epoch + 1))
    model.fit(x, y, epochs=2, verbose=0, callbacks=[one_arg])
    assert model.optimizer.learning_rate == pytest.approx(0.01)


def test_csv_logger(tmp_path):
    model, x, y = model_and_data()
    path = tmp_path / "log.csv"
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(path)], validation_data=(x, y))
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path, append=True)], validation_data=(x, y))
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "0"]
    assert float(rows[1][2]) > 0


def test_terminate_on_nan(capsys):
    model, x, y = model_and_data()
    x = x.copy()
    x[30] = np.nan
    with pytest.warns(RuntimeWarning, match="loss became nan"):
        history = model.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0,
                            callbacks=[callbacks.TerminateOnNaN()])
    assert "Batch 3: Invalid loss, terminating training" in capsys.readouterr().out
    assert len(history.history["loss"]) == 1


def test_callbacks_must_be_callback_objects():
    model, x, y = model_and_data()
    with pytest.raises(TypeError, match="callbacks must be pycnn.callbacks.Callback objects; got function"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[lambda: None])
