"""Random augmentation layers: inference identity, exact simple cases, draws, and backward = transpose."""
import numpy as np
import pytest

from pycnn.preprocessing import (RandomBrightness, RandomContrast, RandomElasticTransform, RandomFlip,
                                 RandomRotation, RandomShear, RandomTranslation, RandomZoom)

RNG = np.random.default_rng(0)
X = RNG.uniform(0, 255, (6, 9, 9, 3)).astype(np.float32)

ALL = [lambda: RandomFlip(seed=1), lambda: RandomRotation(0.2, seed=1), lambda: RandomTranslation(0.2, 0.3, seed=1),
       lambda: RandomZoom(0.3, seed=1), lambda: RandomShear(0.3, 0.2, seed=1), lambda: RandomContrast(0.5, seed=1),
       lambda: RandomBrightness(0.2, seed=1), lambda: RandomElasticTransform(1.0, 1.0, seed=1)]


@pytest.mark.parametrize("make", ALL)
def test_inference_is_identity_and_training_changes_images(make):
    layer = make()
    np.testing.assert_array_equal(layer(X), X)
    np.testing.assert_array_equal(layer.backward(np.ones_like(X)), np.ones_like(X))
    out = layer(X, training=True)
    assert out.shape == X.shape and out.dtype == np.float32 and not np.array_equal(out, X)


def test_flip_outputs_are_exact_flips():
    out = RandomFlip(seed=3)(X, training=True)
    for o, x in zip(out, X):
        assert any(np.array_equal(o, v) for v in (x, x[:, ::-1], x[::-1], x[::-1, ::-1]))
    h_only = RandomFlip("horizontal", seed=3)(X, training=True)
    for o, x in zip(h_only, X):
        assert np.array_equal(o, x) or np.array_equal(o, x[:, ::-1])


def test_rotation_quarter_turn_is_rot90_counter_clockwise():
    out = RandomRotation((0.25, 0.25), interpolation="nearest")(X, training=True)
    np.testing.assert_allclose(out, np.rot90(X, 1, axes=(1, 2)), atol=1e-4)


def test_translation_moves_content_down_and_right():
    x = X[:2, :8, :8]
    out = RandomTranslation((0.25, 0.25), (0.125, 0.125), fill_mode="constant", fill_value=-1)(x, training=True)
    np.testing.assert_allclose(out[:, 2:, 1:], x[:, :-2, :-1], atol=1e-4)
    assert np.all(out[:, :2] == -1) and np.all(out[:, :, :1] == -1)


def test_zoom_out_by_two_samples_every_other_pixel_about_the_centre():
    out = RandomZoom((1.0, 1.0), fill_mode="constant")(X, training=True)
    idx = 4 + 2 * (np.arange(2, 7) - 4)
    np.testing.assert_allclose(out[:, 2:7, 2:7], X[:, idx][:, :, idx], atol=1e-4)
    assert np.all(out[:, 0] == 0)


def test_shear_x_shifts_columns_with_the_row():
    out = RandomShear(x_factor=(0.25, 0.25), fill_mode="constant", interpolation="nearest")(X, training=True)
    for i in range(9):
        shift = 0.25 * (i - 4)
        for j in range(9):
            src = j + shift
            if 0 <= round(src + 1e-9) <= 8 and abs(src - round(src)) < 1e-9:
                np.testing.assert_allclose(out[:, i, j], X[:, i, int(round(src))], atol=1e-4)


def test_contrast_and_brightness_follow_their_formulas_and_ranges():
    layer = RandomContrast((0.5, 0.5), value_range=(-1e9, 1e9), seed=2)
    out = layer(X, training=True)
    mean = X.mean(axis=(1, 2), keepdims=True)
    c = (out - mean) / (X - mean)
    assert np.all((c > 0.5 - 1e-3) & (c < 1.5 + 1e-3))
    np.testing.assert_allclose(c, np.broadcast_to(c[:, :1, :1, :1], c.shape), rtol=1e-3)  # one factor per image
    bright = RandomBrightness(0.1, seed=2)(X, training=True)
    delta = bright - X
    inside = (bright > 0) & (bright < 255)
    for k in range(len(X)):
        d = delta[k][inside[k]]
        assert np.ptp(d) < 1e-3 and abs(d[0]) <= 25.5 + 1e-3
    assert bright.min() >= 0 and bright.max() <= 255


@pytest.mark.parametrize("make", [lambda: RandomRotation(0.3, fill_mode=m, seed=4) for m in
                                  ("constant", "nearest", "reflect", "wrap")] +
                         [lambda: RandomShear(0.4, 0.3, interpolation="nearest", seed=4),
                          lambda: RandomZoom((-0.4, 0.5), (0.2, 0.6), seed=4),
                          lambda: RandomTranslation(0.3, 0.3, fill_mode="wrap", seed=4),
                          lambda: RandomElasticTransform(1.0, 2.0, value_range=(-1e9, 1e9), seed=4),
                          lambda: RandomContrast(0.7, value_range=(-1e9, 1e9), seed=4),
                          lambda: RandomFlip(seed=4)])
def test_backward_is_the_transpose_of_the_applied_map(make):
    x = RNG.standard_normal((4, 7, 8, 2))
    layer = make()
    layer.dtype = "float64"
    y = layer(x, training=True)
    g = RNG.standard_normal(y.shape)
    dx = layer.backward(g)
    assert dx.shape == x.shape
    assert np.sum(y * g) == pytest.approx(np.sum(x * dx), rel=1e-9, abs=1e-9)


def test_brightness_backward_masks_clipped_pixels():
    layer = RandomBrightness((0.5, 0.5), value_range=(0, 255))
    y = layer(X, training=True)
    g = np.ones_like(X)
    np.testing.assert_array_equal(layer.backward(g), (X + 127.5 <= 255).astype(np.float32))
    assert y.max() == 255


def test_seed_reproducible():
    a = RandomRotation(0.1, seed=9)(X, training=True)
    b = RandomRotation(0.1, seed=9)(X, training=True)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make, pattern", [
    (lambda: RandomFlip("diagonal"), "mode must be"),
    (lambda: RandomRotation("a"), "factor must be a float or a pair"),
    (lambda: RandomRotation((0.3, 0.1)), "lower <= upper"),
    (lambda: RandomRotation(0.1, fill_mode="mirror"), "fill_mode must be one of"),
    (lambda: RandomTranslation(0.1, 0.1, interpolation="cubic"), "interpolation must be"),
    (lambda: RandomZoom(-1.0), "zoom factors must be > -1"),
    (lambda: RandomContrast(1.5), "contrast factor >= 0"),
    (lambda: RandomBrightness(2.0), r"factor must lie in \[-1, 1\]"),
    (lambda: RandomBrightness(0.1, value_range=(1, 0)), "value_range must be a pair"),
    (lambda: RandomElasticTransform(factor=1.5), "probability"),
    (lambda: RandomFlip(seed=-1), "seed must be a non-negative int"),
])
def test_bad_layer_arguments(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_non_4d_input_is_rejected():
    with pytest.raises(ValueError, match="input must be 4-D"):
        RandomFlip()(np.zeros((3, 4, 4)), training=True)


@pytest.mark.parametrize("make", ALL)
def test_config_round_trip(make):
    layer = make()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_array_equal(clone(X, training=True), make()(X, training=True))
