"""ImageDataGenerator: agreement with Keras's legacy generator, random draws, flow, bad input."""
import os
import warnings

import numpy as np
import pytest

from pycnn import _engine
from pycnn.preprocessing.image import ImageDataGenerator, array_to_img, img_to_array, to_grayscale

MODES = ["constant", "nearest", "reflect", "wrap"]
# Keras's legacy generator calls a deprecated SciPy namespace on every image.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def keras_gen():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("scipy.ndimage", reason="Keras's legacy generator needs SciPy")
    keras_image = pytest.importorskip("keras.src.legacy.preprocessing.image",
                                      reason="Keras 3 (torch backend) is the oracle for ImageDataGenerator")
    return keras_image.ImageDataGenerator


def _params(rng, flips=True, shift=True):
    return dict(theta=rng.uniform(-45, 45), tx=rng.uniform(-5, 5), ty=rng.uniform(-5, 5),
                shear=rng.uniform(-25, 25), zx=rng.uniform(0.6, 1.4), zy=rng.uniform(0.6, 1.4),
                flip_horizontal=bool(flips and rng.random() < 0.5),
                flip_vertical=bool(flips and rng.random() < 0.5),
                channel_shift_intensity=rng.uniform(-30, 30) if shift and rng.random() < 0.5 else None)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", [0, 1])
def test_apply_transform_matches_keras(keras_gen, mode, order):
    rng = np.random.default_rng(100 + 2 * MODES.index(mode) + order)
    ours = ImageDataGenerator(fill_mode=mode, cval=17.0, interpolation_order=order)
    theirs = keras_gen(fill_mode=mode, cval=17.0, interpolation_order=order)
    for shape in [(15, 15, 3), (12, 19, 1), (21, 10, 3)]:
        x = rng.uniform(0, 255, shape).astype(np.float32)
        for _ in range(8):
            p = _params(rng)
            got, want = ours.apply_transform(x, p), theirs.apply_transform(x, p)
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, atol=1e-4 * 255)
    # Single transforms one at a time (each a separate matrix path in Keras).
    x = rng.uniform(0, 255, (16, 13, 3)).astype(np.float32)
    for p in [dict(theta=30.0), dict(tx=2.5), dict(ty=-3.0), dict(shear=20.0), dict(zx=0.8),
              dict(zy=1.3), dict(flip_horizontal=True), dict(flip_vertical=True), {}]:
        np.testing.assert_allclose(ours.apply_transform(x, p), theirs.apply_transform(x, p), atol=1e-4 * 255)


def test_channels_first_equals_channels_last(keras_gen):
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (9, 11, 3)).astype(np.float32)
    last = ImageDataGenerator(fill_mode="reflect")
    first = ImageDataGenerator(fill_mode="reflect", data_format="channels_first")
    theirs = keras_gen(fill_mode="reflect", data_format="channels_first")
    p = _params(rng)
    got = first.apply_transform(x.transpose(2, 0, 1), p)
    np.testing.assert_allclose(got, last.apply_transform(x, p).transpose(2, 0, 1), atol=1e-6)
    np.testing.assert_allclose(got, theirs.apply_transform(x.transpose(2, 0, 1), p), atol=1e-4)


def test_standardize_and_fit_match_keras(keras_gen):
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 255, (40, 6, 5, 3)).astype(np.float32)
    for kwargs in [dict(featurewise_center=True, featurewise_std_normalization=True, rescale=1 / 255.0),
                   dict(samplewise_center=True, samplewise_std_normalization=True),
                   dict(zca_whitening=True, zca_epsilon=1e-2)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours, theirs = ImageDataGenerator(**kwargs), keras_gen(**kwargs)
        ours.fit(x)
        theirs.fit(x)
        for attr in ("mean", "std"):
            if getattr(theirs, attr) is not None:
                np.testing.assert_allclose(getattr(ours, attr), getattr(theirs, attr), rtol=1e-5, atol=1e-6)
        for img in x[:4]:
            np.testing.assert_allclose(ours.standardize(img), theirs.standardize(img.copy()), rtol=1e-4, atol=1e-4)


def test_standardize_order_against_a_hand_computation():
    gen = ImageDataGenerator(rescale=0.5, samplewise_center=True, preprocessing_function=lambda im: im + 2.0)
    img = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    want = (img + 2.0) * 0.5
    want = want - want.mean()
    np.testing.assert_allclose(gen.standardize(img), want, rtol=1e-6)
    batch = np.stack([img, img * 3])
    got = gen.standardize(batch)                         # per image, not the batch mean
    np.testing.assert_allclose(got[1], ((img * 3 + 2) * 0.5) - ((img * 3 + 2) * 0.5).mean(), rtol=1e-5)
    np.testing.assert_array_equal(img, np.arange(12, dtype=np.float32).reshape(2, 2, 3))  # input untouched


def test_brightness_without_pillow_follows_the_documented_formula():
    gen = ImageDataGenerator()
    img = np.array([[[0.0], [100.0]], [[200.0], [250.0]]], dtype=np.float32)
    np.testing.assert_allclose(gen.apply_transform(img, {"brightness": 1.2}), np.clip(img * 1.2, 0, 255))
    wide = img * 4 - 100                                  # outside 0..255: relative to min..max
    got = gen.apply_transform(wide, {"brightness": 0.5})
    np.testing.assert_allclose(got, wide.min() + (wide - wide.min()) * 0.5)


def test_channel_shift_is_clipped_to_the_image_range():
    gen = ImageDataGenerator()
    img = np.array([[[10.0, 50.0]], [[30.0, 90.0]]], dtype=np.float32)
    np.testing.assert_allclose(gen.apply_transform(img, {"channel_shift_intensity": 25.0}),
                               np.clip(img + 25, 10, 90))


# --------------------------------------------------------------- random draws
def test_random_draws_stay_in_range_and_cover_it():
    gen = ImageDataGenerator(rotation_range=20, width_shift_range=0.1, height_shift_range=3, shear_range=8,
                             zoom_range=[0.8, 1.25], horizontal_flip=True, channel_shift_range=5,
                             brightness_range=(0.5, 1.5))
    rng = np.random.default_rng(0)
    p = gen._draw(4000, 30, 40, rng)
    def spans(v, lo, hi):
        assert v.min() >= lo and v.max() <= hi
        assert v.min() < lo + 0.05 * (hi - lo) and v.max() > hi - 0.05 * (hi - lo)
        assert abs(v.mean() - (lo + hi) / 2) < 0.05 * (hi - lo)   # ~7 standard errors
    spans(p["theta"], -20, 20)
    spans(p["ty"], -0.1 * 40, 0.1 * 40)                      # width fraction, times the width
    assert set(np.unique(p["tx"])) == {-2.0, -1.0, 0.0, 1.0, 2.0}   # int 3: 0..2 with a random sign
    spans(p["shear"], -8, 8)
    spans(p["zx"], 0.8, 1.25)
    spans(p["zy"], 0.8, 1.25)
    assert abs(np.corrcoef(p["zx"], p["zy"])[0, 1]) < 0.1     # drawn independently
    assert 0.45 < p["flip_horizontal"].mean() < 0.55 and not p["flip_vertical"].any()
    spans(p["channel_shift_intensity"], -5, 5)
    spans(p["brightness"], 0.5, 1.5)
    single = gen.get_random_transform((30, 40, 3), seed=3)
    assert set(single) >= {"theta", "tx", "ty", "shear", "zx", "zy", "flip_horizontal", "flip_vertical",
                           "channel_shift_intensity", "brightness"}
    assert single == gen.get_random_transform((30, 40, 3), seed=3)


def test_list_shift_draws_from_the_list():
    gen = ImageDataGenerator(width_shift_range=[2, 5])
    p = gen._draw(500, 10, 10, np.random.default_rng(1))
    assert set(np.unique(p["ty"])) == {-5.0, -2.0, 2.0, 5.0}


# ------------------------------------------------------------------------ flow
def _data(n=50):
    x = np.arange(n * 4 * 4 * 1, dtype=np.float32).reshape(n, 4, 4, 1)
    return x, np.arange(n) % 5


def test_flow_len_last_batch_reshuffle_and_endless():
    x, y = _data(50)
    it = ImageDataGenerator().flow(x, y, batch_size=16, seed=0)
    assert len(it) == 4
    epochs = []
    for _ in range(3):
        seen = []
        for step in range(len(it)):
            xb, yb = next(it) if step % 2 else it.next()
            assert xb.dtype == np.float32 and len(xb) == (16 if step < 3 else 2)
            ids = (xb[:, 0, 0, 0] / 16).astype(int)               # no augmentation: exact rows
            np.testing.assert_array_equal(yb, y[ids])
            seen.extend(ids.tolist())
        assert sorted(seen) == list(range(50))
        epochs.append(seen)
    assert epochs[0] != epochs[1] != epochs[2]                    # reshuffled every epoch
    plain = ImageDataGenerator().flow(x, batch_size=20, shuffle=False)
    first = next(plain)
    assert isinstance(first, np.ndarray) and first[:, 0, 0, 0].tolist() == [16.0 * i for i in range(20)]


def test_same_seed_same_batches_on_one_and_two_threads():
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 255, (300, 32, 32, 3)).astype(np.float32)   # batches big enough for 2 threads
    y = np.arange(300)
    gen = ImageDataGenerator(rotation_range=30, width_shift_range=0.2, height_shift_range=0.2, shear_range=10,
                             zoom_range=0.2, horizontal_flip=True, channel_shift_range=20,
                             fill_mode="reflect", elastic_alpha=2.0, elastic_sigma=3.0)
    before = _engine.get_num_threads()
    try:
        runs = []
        for threads in (1, 2):
            _engine.set_num_threads(threads)
            it = gen.flow(x, y, batch_size=256, seed=123)
            runs.append([next(it) for _ in range(3)])
    finally:
        _engine.set_num_threads(before)
    for (xa, ya), (xb, yb) in zip(*runs):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    other = next(gen.flow(x, y, batch_size=256, seed=124))
    assert not np.array_equal(other[0], runs[0][0][0])
    assert not np.array_equal(runs[0][0][0], x[runs[0][0][1]])    # augmentation did something


def test_flow_sample_weight_and_validation_subset():
    x, y = _data(20)
    w = np.linspace(0, 1, 20)
    gen = ImageDataGenerator(validation_split=0.25)
    val = gen.flow(x, y, batch_size=100, shuffle=False, sample_weight=w, subset="validation")
    xb, yb, wb = next(val)
    assert len(xb) == 5 and yb.tolist() == [0, 1, 2, 3, 4] and np.allclose(wb, w[:5])  # the first 25%
    train = gen.flow(x, y, batch_size=100, shuffle=False, subset="training")
    assert len(next(train)[0]) == 15
    sorted_y = np.repeat([0, 1], 10)
    with pytest.raises(ValueError, match="same classes after the split"):
        gen.flow(x, sorted_y, subset="validation")
    assert len(gen.flow(x, sorted_y, subset="validation", ignore_class_split=True)) == 1


def test_fit_augment_rounds_uses_augmented_copies():
    x = np.random.default_rng(0).uniform(0, 1, (10, 5, 5, 1)).astype(np.float32)
    gen = ImageDataGenerator(featurewise_center=True, rotation_range=90, fill_mode="constant", cval=0.0)
    gen.fit(x, augment=True, rounds=3, seed=1)
    plain = ImageDataGenerator(featurewise_center=True)
    plain.fit(x)
    assert gen.mean.shape == (1, 1, 1) and gen.mean[0, 0, 0] < plain.mean[0, 0, 0]   # zero fill lowers it
    np.testing.assert_allclose(plain.mean.ravel(), [x.mean()], rtol=1e-5)


def test_elastic_option_changes_images_locally():
    x = np.zeros((2, 20, 20, 1), np.float32)
    x[:, 8:12] = 1.0
    gen = ImageDataGenerator(elastic_alpha=4.0, elastic_sigma=3.0, fill_mode="nearest")
    out = gen.augment_batch(x, seed=0)
    assert out.shape == x.shape and not np.array_equal(out, x)
    assert abs(out.sum() - x.sum()) < 0.2 * x.sum()


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(rotation_range=-5), ValueError, r"rotation_range must be a finite number >= 0; got -5"),
    (dict(width_shift_range=-0.1), ValueError, r"width_shift_range must be a finite number >= 0"),
    (dict(height_shift_range=-2), ValueError, r"height_shift_range must be"),
    (dict(shear_range=-1.0), ValueError, r"shear_range must be"),
    (dict(zoom_range=1.0), ValueError, r"zoom_range must give zoom factors 0 < lower"),
    (dict(zoom_range=[0, 1.2]), ValueError, r"zoom_range must give zoom factors"),
    (dict(zoom_range=[1.2, 0.8]), ValueError, r"zoom_range must give zoom factors"),
    (dict(zoom_range="big"), ValueError, r"zoom_range must be a float or a pair"),
    (dict(brightness_range=0.5), ValueError, r"brightness_range must be a pair"),
    (dict(brightness_range=(0.2, 0.5, 0.9)), ValueError, r"brightness_range must be a pair"),
    (dict(brightness_range=(1.5, 0.5)), ValueError, r"0 <= lower <= upper"),
    (dict(fill_mode="mirror"), ValueError, r"fill_mode must be one of 'constant', 'nearest', 'reflect', 'wrap'; got 'mirror'"),
    (dict(interpolation_order=3), ValueError, r"interpolation_order must be 0 \(nearest\) or 1"),
    (dict(channel_shift_range=-3), ValueError, r"channel_shift_range must be"),
    (dict(validation_split=1.5), ValueError, r"validation_split must be in \[0, 1\)"),
    (dict(data_format="NHWC"), ValueError, r"data_format must be"),
    (dict(cval="x"), TypeError, r"cval must be a real number"),
    (dict(preprocessing_function=3), TypeError, r"preprocessing_function must be callable"),
])
def test_bad_constructor_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        ImageDataGenerator(**kwargs)


def test_bad_flow_and_fit_inputs():
    gen = ImageDataGenerator()
    with pytest.raises(ValueError, match=r"same length; got x.shape=\(10, 4, 4, 1\), y.shape=\(9,\)"):
        gen.flow(np.zeros((10, 4, 4, 1)), np.zeros(9))
    with pytest.raises(ValueError, match=r"rank-4"):
        gen.flow(np.zeros((10, 4, 4)))
    with pytest.raises(ValueError, match=r"batch_size must be an int >= 1"):
        gen.flow(np.zeros((10, 4, 4, 1)), batch_size=0)
    with pytest.raises(ValueError, match=r"needs validation_split > 0"):
        gen.flow(np.zeros((10, 4, 4, 1)), subset="validation")
    with pytest.raises(ValueError, match=r"fit: x must have rank 4"):
        gen.fit(np.zeros((10, 4, 4)))
    with pytest.warns(UserWarning, match=r"expected either 1, 3 or 4 channels"):
        gen.fit(np.zeros((3, 4, 4, 2)))
    with pytest.raises(ValueError, match=r"one 3-D image"):
        gen.apply_transform(np.zeros((2, 4, 4, 1)), {})
    with pytest.warns(UserWarning, match="hasn't been fit"):
        ImageDataGenerator(featurewise_center=True).standardize(np.zeros((4, 4, 1)))


def test_implied_flags_warn_like_keras():
    with pytest.warns(UserWarning, match="overrides setting of `featurewise_center`"):
        gen = ImageDataGenerator(featurewise_std_normalization=True)
    assert gen.featurewise_center
    with pytest.warns(UserWarning):
        gen = ImageDataGenerator(zca_whitening=True, featurewise_std_normalization=True)
    assert gen.featurewise_center and not gen.featurewise_std_normalization
    with pytest.warns(UserWarning):
        assert ImageDataGenerator(samplewise_std_normalization=True).samplewise_center


# --------------------------------------------------------------- image helpers
def test_img_to_array_and_grayscale_without_pillow():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    arr = img_to_array(rgb)
    assert arr.dtype == np.float32 and arr.shape == (2, 3, 3)
    assert img_to_array(rgb, data_format="channels_first").shape == (3, 2, 3)
    assert img_to_array(rgb[..., 0]).shape == (2, 3, 1)
    gray = to_grayscale(arr)
    np.testing.assert_allclose(gray, arr @ np.array([0.299, 0.587, 0.114], np.float32), rtol=1e-6)


def test_array_to_img_round_trip():
    pytest.importorskip("PIL", reason="Pillow is an optional dependency")
    x = np.random.default_rng(0).uniform(0, 255, (5, 6, 3)).astype(np.float32)
    img = array_to_img(x, scale=False)
    np.testing.assert_array_equal(img_to_array(img), x.astype(np.uint8).astype(np.float32))


def test_brightness_is_within_one_grey_level_of_keras_pillow_path(keras_gen):
    pytest.importorskip("PIL", reason="Keras's brightness shift needs Pillow")
    rng = np.random.default_rng(8)
    x = rng.integers(0, 256, (10, 12, 3)).astype(np.float32)   # 8-bit images, as Keras assumes
    ours, theirs = ImageDataGenerator(), keras_gen()
    for factor in (0.3, 0.9, 1.0, 1.4, 2.5):
        diff = np.abs(ours.apply_transform(x, {"brightness": factor}) - theirs.apply_transform(x, {"brightness": factor}))
        assert diff.max() <= 1.0


def test_load_img_color_modes_and_resize(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow is an optional dependency")
    from pycnn.preprocessing.image import load_img
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "img.png")
    img = load_img(tmp_path / "img.png")
    np.testing.assert_array_equal(img_to_array(img), rgb.astype(np.float32))
    gray = img_to_array(load_img(tmp_path / "img.png", color_mode="grayscale"))
    assert gray.shape == (20, 30, 1)
    small = img_to_array(load_img(tmp_path / "img.png", target_size=(10, 15), interpolation="nearest"))
    assert small.shape == (10, 15, 3)
    # Pillow's nearest takes the source pixel under each output pixel's centre: 2 * (i + 0.5) = 2i + 1.
    np.testing.assert_array_equal(small, rgb[1::2, 1::2].astype(np.float32))
    square = load_img(tmp_path / "img.png", target_size=(8, 8), keep_aspect_ratio=True)
    assert square.size == (8, 8)
    with pytest.raises(ValueError, match="color_mode must be"):
        load_img(tmp_path / "img.png", color_mode="cmyk")
    with pytest.raises(FileNotFoundError):
        load_img(tmp_path / "missing.png")


@pytest.mark.slow
def test_lenet5_trains_on_an_augmented_flow():
    from pycnn import models
    from pycnn import backend, layers
    from pycnn.datasets import mnist
    backend.set_seed(0)
    (x, y), (xt, yt) = mnist.load_data(subset="sample")
    x = x[:640, :, :, None].astype(np.float32) / 255.0
    xt = xt[:300, :, :, None].astype(np.float32) / 255.0
    model = models.Sequential([
        layers.Input((28, 28, 1)),
        layers.Conv2D(6, 5, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(16, 5, activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
        layers.Dense(120, activation="relu"), layers.Dense(84, activation="relu"),
        layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    datagen = ImageDataGenerator(rotation_range=10, width_shift_range=0.1, height_shift_range=0.1, zoom_range=0.1)
    flow = datagen.flow(x, y[:640], batch_size=32, seed=0)
    history = model.fit(flow, epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    loss, accuracy = model.evaluate(xt, yt[:300], verbose=0)
    assert accuracy > 0.6          # chance is 0.1


def test_flow_save_to_dir_writes_each_generated_image(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow is an optional dependency")
    x, y = _data(5)
    it = ImageDataGenerator().flow(x, y, batch_size=3, shuffle=False, save_to_dir=tmp_path, save_prefix="aug")
    next(it)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 3 and all(f.startswith("aug_") and f.endswith(".png") for f in files)
    assert sorted(int(f.split("_")[1]) for f in files) == [0, 1, 2]
    saved = np.asarray(Image.open(tmp_path / next(f for f in files if f.startswith("aug_1_"))))
    assert saved.shape == (4, 4) and saved.min() == 0 and saved.max() == 255
    with pytest.raises(ValueError, match="save_to_dir must be an existing folder"):
        ImageDataGenerator().flow(x, save_to_dir=tmp_path / "nope")
