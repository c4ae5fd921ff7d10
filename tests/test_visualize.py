"""pycnn.visualize: every plot saves a non-empty PNG of the size its figure asks for."""
import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="matplotlib is optional; the plots need it")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
Image = pytest.importorskip("PIL.Image", reason="Pillow reads the saved PNGs back")

from pycnn import visualize  # noqa: E402
from pycnn.layers import Add, AveragePooling2D, Conv2D, Dense, Flatten, Input  # noqa: E402
from pycnn.models import Model, Sequential  # noqa: E402


def check_png(fig, path):
    """The saved file is a PNG of figsize * dpi pixels that is not one flat colour."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = fig.get_size_inches() * fig.dpi
        assert image.size == (round(width), round(height))
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.std() > 1.0, "the image is blank"
    import matplotlib.pyplot as plt
    plt.close(fig)


def lenet_like():
    return Sequential([Input((12, 12, 1)), Conv2D(4, 3, activation="relu"), AveragePooling2D(2), Flatten(),
                       Dense(3, activation="softmax")])


def test_plot_history(tmp_path):
    history = {"loss": [1.0, 0.6, 0.4], "accuracy": [0.5, 0.7, 0.8], "val_loss": [1.1, 0.8, 0.7],
               "val_accuracy": [0.4, 0.6, 0.7]}
    path = tmp_path / "history.png"
    fig = visualize.plot_history(history, to_file=path)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    check_png(fig, path)
    with pytest.raises(ValueError, match="metric must be one of"):
        visualize.plot_history(history, metrics=["mae"])


def test_plot_filters_and_feature_maps(tmp_path):
    model = lenet_like()
    fig = visualize.plot_filters(model.layers[0], to_file=tmp_path / "filters.png")
    assert sum(1 for ax in fig.axes if ax.images) == 4
    check_png(fig, tmp_path / "filters.png")
    x = np.random.default_rng(0).random((2, 12, 12, 1)).astype("float32")
    fig = visualize.plot_feature_maps(model, x, model.layers[0].name, to_file=tmp_path / "maps.png")
    shown = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(shown) == 4 and shown[0].shape == (10, 10)
    # the first map is channel 0 of the first layer's output for the first image
    np.testing.assert_allclose(np.asarray(shown[0]), model.layers[0](x[:1])[0, :, :, 0], rtol=1e-6)
    check_png(fig, tmp_path / "maps.png")
    with pytest.raises(ValueError, match="must be 4-D"):
        visualize.plot_feature_maps(model, x, -1)


def test_show_images_and_class_distribution(tmp_path):
    x = (np.random.default_rng(1).random((6, 8, 8, 3)) * 255).astype("uint8")
    fig = visualize.show_images(x, labels=[0, 1, 2, 0, 1, 2], class_names=["a", "b", "c"],
                                to_file=tmp_path / "images.png")
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["a", "b", "c", "a", "b", "c"]
    check_png(fig, tmp_path / "images.png")
    fig = visualize.plot_class_distribution(np.array([0, 0, 1, 2, 2, 2]), to_file=tmp_path / "classes.png")
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [2, 1, 3]
    check_png(fig, tmp_path / "classes.png")


def test_plot_model_sequential_and_branches(tmp_path):
    model = lenet_like()
    fig = visualize.plot_model(model, to_file=tmp_path / "model.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any("Conv2D" in t and "(?, 10, 10, 4)" in t for t in texts)
    check_png(fig, tmp_path / "model.png")
    visualize.plot_model(model, to_file=tmp_path / "model.svg")
    assert (tmp_path / "model.svg").read_text().lstrip().startswith("<?xml")
    inputs = Input((8, 8, 2))
    a = Conv2D(2, 3, padding="same")(inputs)
    b = Conv2D(2, 1)(inputs)
    outputs = Add()([a, b])
    fig = visualize.plot_model(Model(inputs, outputs), to_file=tmp_path / "branches.png")
    arrows = [c for c in fig.axes[0].texts if c.get_text() == ""]
    assert len(arrows) == 4     # input->a, input->b, a->add, b->add
    check_png(fig, tmp_path / "branches.png")
