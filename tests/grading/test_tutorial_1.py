"""Example grading suite for Tutorial 1 (LeNet-5 on MNIST).

    pytest tests/grading/test_tutorial_1.py --notebook notebooks/Tutorial_1_solution.ipynb
"""
import numpy as np

from pycnn.layers import AveragePooling2D, Conv2D, Dense, Flatten
from pycnn.testing import assert_layer_types, assert_output_shape, assert_param_count


def test_images_are_scaled_with_a_channel_axis(notebook):
    x = np.asarray(notebook.x_train)
    assert x.shape == (notebook.N_TRAIN, 28, 28, 1), (
        f"x_train must have shape (N_TRAIN, 28, 28, 1) = ({notebook.N_TRAIN}, 28, 28, 1); got {x.shape} "
        f"(add a channel axis with [..., np.newaxis])")
    assert x.dtype.kind == "f" and 0.0 <= x.min() and x.max() <= 1.0, (
        f"x_train must be floats in [0, 1]; got dtype {x.dtype} with values {x.min()}..{x.max()} "
        f"(divide the uint8 pixels by 255.0)")


def test_labels_are_one_hot(notebook):
    y_cat = np.asarray(notebook.y_train_cat)
    assert y_cat.shape == (notebook.N_TRAIN, 10), (
        f"y_train_cat must have shape (N_TRAIN, 10); got {y_cat.shape} (to_categorical(y_train, 10))")
    assert np.array_equal(np.argmax(y_cat, axis=1), notebook.y_train), (
        "y_train_cat must be the one-hot encoding of y_train: the 1 of row i must sit at column y_train[i]")


def test_lenet5_layers(notebook):
    assert_layer_types(notebook.model, [Conv2D, AveragePooling2D, Conv2D, AveragePooling2D, Flatten,
                                        Dense, Dense, Dense])


def test_lenet5_parameter_count(notebook):
    assert_param_count(notebook.model, 61_706)


def test_lenet5_shapes(notebook):
    layers = [layer for layer in notebook.model.layers if type(layer).__name__ != "InputLayer"]
    assert_output_shape(layers[0], (28, 28, 6))     # 'same' padding keeps 28x28
    assert_output_shape(layers[1], (14, 14, 6))
    assert_output_shape(layers[4], (400,))
    assert_output_shape(notebook.model, (None, 10))


def test_architecture_answers(notebook):
    assert tuple(notebook.same_padding_shape) == (28, 28, 6), (
        f"same_padding_shape: 'same' padding with stride 1 keeps height and width, and there are 6 filters; "
        f"got {notebook.same_padding_shape}")
    assert tuple(notebook.pooled_shape) == (14, 14, 6), (
        f"pooled_shape: 2x2 pooling halves height and width and keeps the channels; got {notebook.pooled_shape}")
    assert notebook.flatten_size == 5 * 5 * 16, (
        f"flatten_size: the second pooling outputs 5x5x16 maps; got {notebook.flatten_size}")
    assert abs(float(notebook.softmax_sum) - 1.0) < 1e-9, (
        f"softmax_sum: softmax outputs are probabilities; got {notebook.softmax_sum}")


def test_compiled_and_trained(notebook):
    history = notebook.history.history
    assert "accuracy" in history and "val_accuracy" in history, (
        f"history must record accuracy and val_accuracy (compile with metrics=['accuracy'], fit with "
        f"validation_split); got keys {sorted(history)}")
    assert len(history["loss"]) == notebook.EPOCHS, f"fit must run EPOCHS={notebook.EPOCHS} epochs"
    assert history["loss"][-1] < history["loss"][0], (
        f"the training loss must go down; got {history['loss']} (check the loss and the labels)")


def test_predictions(notebook):
    probs = np.asarray(notebook.probs)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4,
                               err_msg="each row of model.predict must sum to 1 (softmax output layer)")
    assert np.array_equal(np.asarray(notebook.y_pred), np.argmax(probs, axis=1)), (
        "y_pred must be the index of the largest probability in each row (np.argmax(probs, axis=1))")
    assert notebook.test_accuracy > 0.5, (
        f"test accuracy must be above 0.5 after training; got {notebook.test_accuracy:.3f}")
