"""pycnn.compat: tf.* functions against naive Python references, tfds.load against pycnn.datasets,
and a notebook written for tf.keras/tensorflow_datasets run with only its import lines changed."""
import os
from pathlib import Path

import numpy as np
import pytest

import pycnn.compat.tensorflow as tf
import pycnn.compat.tensorflow_datasets as tfds

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = (REPO.parent / "shared" / "data").resolve()
needs_data = pytest.mark.skipif(not (DATA_DIR / "mnist").is_dir(), reason=f"no offline data in {DATA_DIR}")


def test_one_hot_matches_loops_and_zeroes_out_of_range():
    indices = [2, 0, 3, -1, 1]
    expected = np.zeros((5, 3), np.float32)
    for row, i in enumerate(indices):
        if 0 <= i < 3:
            expected[row, i] = 1.0
    got = tf.one_hot(indices, depth=3)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.numpy(), expected)
    assert type(got.numpy()) is np.ndarray
    np.testing.assert_array_equal(tf.one_hot([1], 2, axis=0).numpy(), [[0.0], [1.0]])


def test_unique_with_counts_keeps_first_occurrence_order():
    x = [7, 3, 7, 9, 3, 7, 1]
    order, counts = [], {}
    for v in x:
        if v not in counts:
            order.append(v)
            counts[v] = 0
        counts[v] += 1
    y, idx, count = tf.unique_with_counts(x)
    assert y.numpy().tolist() == order == [7, 3, 9, 1]
    assert count.numpy().tolist() == [counts[v] for v in order]
    assert idx.numpy().tolist() == [order.index(v) for v in x]
    with pytest.raises(ValueError, match="must be 1-D"):
        tf.unique_with_counts(np.zeros((2, 2)))


def test_concat_squeeze_argmax_round():
    a, b = np.arange(6).reshape(2, 3), np.arange(6, 12).reshape(2, 3)
    assert tf.concat([a, b], axis=0).numpy().tolist() == a.tolist() + b.tolist()
    assert tf.concat([a, b], axis=1).numpy().tolist() == [ra + rb for ra, rb in zip(a.tolist(), b.tolist())]
    assert tf.squeeze(np.zeros((1, 3, 1))).shape == (3,)
    assert tf.squeeze(np.zeros((1, 3, 1)), axis=0).shape == (3, 1)
    with pytest.raises(ValueError, match="size 1"):
        tf.squeeze(np.zeros((2, 3)), axis=0)
    m = [[1, 5, 2], [7, 0, 3]]
    assert tf.math.argmax(m).numpy().tolist() == [1, 0, 1]          # TF's default axis is 0
    assert tf.math.argmax(m, axis=1).numpy().tolist() == [1, 0]
    assert tf.math.round([0.5, 1.5, 2.5, -0.5, 0.4]).numpy().tolist() == [0.0, 2.0, 2.0, -0.0, 0.0]


def test_keras_namespace_is_pycnn():
    import pycnn
    assert tf.keras.models.Sequential is pycnn.models.Sequential
    assert tf.keras.layers.Conv2D is pycnn.layers.Conv2D
    assert tf.keras.Input is pycnn.layers.Input
    assert tf.keras.applications.VGG16 is pycnn.applications.VGG16
    assert tf.keras.applications.vgg16.preprocess_input is pycnn.applications.preprocess_input
    assert tf.keras.preprocessing.image.ImageDataGenerator is pycnn.preprocessing.image.ImageDataGenerator
    assert tf.keras.utils.to_categorical is pycnn.utils.to_categorical


def test_unsupported_features_say_what_to_use():
    with pytest.raises(AttributeError, match="tf.data: not provided.*model.fit"):
        tf.data
    with pytest.raises(AttributeError, match="tf.GradientTape"):
        tf.GradientTape
    with pytest.raises(AttributeError, match="tf.keras.applications.vgg16.nope"):
        tf.keras.applications.vgg16.nope
    with pytest.raises(ValueError, match="batch_size must be -1"):
        tfds.load("mnist", split="train", batch_size=32)
    with pytest.raises(ValueError, match="name must be one of"):
        tfds.load("imagenet2012", split="train", batch_size=-1)
    with pytest.raises(ValueError, match="split must be"):
        tfds.load("mnist", split="validation", batch_size=-1)


@needs_data
def test_tfds_load_matches_pycnn_datasets():
    import pycnn.datasets as ds
    (x_ref, y_ref), (xt_ref, yt_ref) = ds.mnist.load_data(path=str(DATA_DIR))
    (x, y), (xt, yt) = tfds.load("mnist", split=["train[:1000]", "test[10%:20%]"], as_supervised=True,
                                 batch_size=-1, data_dir=str(DATA_DIR))
    assert x.shape == (1000, 28, 28, 1) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x.numpy()[..., 0], x_ref[:1000])
    np.testing.assert_array_equal(y.numpy(), y_ref[:1000])
    np.testing.assert_array_equal(xt.numpy()[..., 0], xt_ref[1000:2000])
    np.testing.assert_array_equal(yt.numpy(), yt_ref[1000:2000])
    d = tfds.load("cifar10", split="test", batch_size=-1, data_dir=str(DATA_DIR))
    (_, _), (cx, cy) = ds.cifar10.load_data(path=str(DATA_DIR))
    np.testing.assert_array_equal(d["image"].numpy(), cx)
    np.testing.assert_array_equal(d["label"].numpy(), cy.reshape(-1))


# A notebook in the style of the course's TensorFlow originals. The test changes only its
# two import lines, as a teacher porting it would.
TF_STYLE_CELLS = [
    "import numpy as np\nimport tensorflow as tf\nimport tensorflow_datasets as tfds",
    """(x_train, y_train), (x_test, y_test) = tfds.load("mnist", split=["train[:600]", "test[:200]"],
    as_supervised=True, batch_size=-1, shuffle_files=False, data_dir=DATA_DIR)
x_train, x_test = x_train.numpy() / 255.0, x_test.numpy() / 255.0
y_train_cat = tf.one_hot(y_train, depth=10).numpy()
values, idx, counts = tf.unique_with_counts(y_train.numpy())
print(dict(zip(values.numpy(), counts.numpy())))""",
    """model = tf.keras.models.Sequential([
    tf.keras.Input(shape=(28, 28, 1)),
    tf.keras.layers.Conv2D(6, kernel_size=5, padding="same", activation="relu"),
    tf.keras.layers.MaxPooling2D(2),
    tf.keras.layers.Flatten(),
    tf.keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train_cat, epochs=2, batch_size=32, verbose=0)""",
    """probs = model.predict(x_test, verbose=0)
y_pred = tf.math.argmax(probs, axis=1).numpy()
rounded = tf.math.round(tf.concat([probs[:2], probs[2:4]], axis=0)).numpy()
squeezed = tf.squeeze(tf.one_hot([[3]], 10)).numpy()
accuracy = float(np.mean(y_pred == y_test.numpy()))""",
]
AUGMENT_CELL = """datagen = tf.keras.preprocessing.image.ImageDataGenerator(rotation_range=10)
batch_x, batch_y = next(datagen.flow(x_train, y_train_cat, batch_size=8, seed=0))"""


@needs_data
def test_tf_style_notebook_runs_with_only_imports_changed(tmp_path):
    import nbformat
    from pycnn.testing import run_notebook
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in TF_STYLE_CELLS + [AUGMENT_CELL]]
    nb.cells.insert(1, nbformat.v4.new_code_cell(f"DATA_DIR = {str(DATA_DIR)!r}"))
    # The port: exactly the import lines change.
    first = nb.cells[0].source
    nb.cells[0].source = (first.replace("import tensorflow as tf", "import pycnn.compat.tensorflow as tf")
                          .replace("import tensorflow_datasets as tfds",
                                   "import pycnn.compat.tensorflow_datasets as tfds"))
    path = tmp_path / "tf_style.ipynb"
    nbformat.write(nb, str(path))
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    ns = run_notebook(path, timeout=300, env=env)
    assert ns.errors == []
    assert ns.probs.shape == (200, 10)
    np.testing.assert_allclose(ns.probs.sum(axis=1), 1.0, atol=1e-5)
    assert ns.y_pred.tolist() == np.argmax(ns.probs, axis=1).tolist()
    assert ns.squeezed.shape == (10,) and ns.squeezed[3] == 1.0
    assert len(ns.history.history["loss"]) == 2
    assert ns.batch_x.shape == (8, 28, 28, 1) and ns.batch_y.shape == (8, 10)
