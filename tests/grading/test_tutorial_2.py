"""Example grading suite for Tutorial 2 (CIFAR-10 inspection and splitting, transfer learning,
augmentation).

    pytest tests/grading/test_tutorial_2.py --notebook notebooks/Tutorial_2_solution.ipynb
"""
import math

import numpy as np

from pycnn.testing import assert_layer_types


def test_class_counts(notebook):
    counts = notebook.counts
    y = np.asarray(notebook.y_train).reshape(-1)
    expected = np.bincount(y, minlength=10)
    assert list(counts.counts) == list(expected), (
        f"counts must count the training labels per class (class_counts(y_train, class_names)); got "
        f"{list(counts.counts)}, expected {list(expected)}")
    assert list(counts.names) == list(notebook.class_names), "pass class_names so the table shows the names"


def test_stratified_80_20_split(notebook):
    n = len(notebook.x_all)
    n_test = math.ceil(0.2 * n)
    assert (len(notebook.x_tr), len(notebook.x_te)) == (n - n_test, n_test), (
        f"the split must keep 20% for testing: {n - n_test} train and {n_test} test images; got "
        f"{len(notebook.x_tr)} and {len(notebook.x_te)} (test_size=0.2)")
    whole = np.bincount(notebook.y_all, minlength=10) / n
    test_share = np.bincount(notebook.y_te, minlength=10) / len(notebook.y_te)
    assert np.abs(test_share - whole).max() < 1.5 / len(notebook.y_te) * 10, (
        "the test part's class shares must match the whole dataset's (stratify=y_all)")


def test_ratio_sweep(notebook):
    n = len(notebook.x_all)
    for ratio, (n_train, n_test) in notebook.split_sizes.items():
        assert n_test == math.ceil(ratio * n) and n_train == n - n_test, (
            f"split_sizes[{ratio}] must be ({n - math.ceil(ratio * n)}, {math.ceil(ratio * n)}); got "
            f"({n_train}, {n_test})")
    assert max(notebook.drift_stratified) <= max(notebook.drift_plain), (
        "stratified splits must drift less from the class shares than random ones")


def test_base_is_frozen(notebook):
    base = notebook.base
    assert base.trainable is False, "set base.trainable = False before compiling, so the pretrained weights stay"
    assert len(base.trainable_weights) == 0, (
        f"the frozen base must have no trainable weights; got {len(base.trainable_weights)}")


def test_transfer_model_layout(notebook):
    model = notebook.transfer_model
    assert_layer_types(model, ["Resizing", "Lambda", type(notebook.base).__name__, "Flatten", "Dense", "Dense"])
    head = [w for w in model.trainable_weights]
    assert len(head) == 4, (
        f"only the new head (two Dense layers: 2 kernels + 2 biases) may be trainable; got {len(head)} "
        f"trainable weights (is the base frozen?)")
    assert model.output_shape == (None, 10), (
        f"the new head must end in 10 class probabilities; got output shape {model.output_shape}")


def test_transfer_training(notebook):
    assert len(notebook.transfer_history.history["loss"]) >= 1
    assert notebook.transfer_accuracy > 0.3, (
        f"the transfer model must beat chance (0.1) clearly after training; got accuracy "
        f"{notebook.transfer_accuracy:.3f}")


def test_augmentation(notebook):
    batch = np.asarray(notebook.augmented_batch)
    assert batch.shape[0] == 8, f"augmented_batch must hold 8 images; got shape {batch.shape}"
    assert not np.allclose(batch[0], batch[1]), (
        "augmented versions of the same image must differ (set rotation_range and horizontal_flip)")
    assert len(notebook.augmented_history.history["loss"]) == 1, "train one epoch on datagen.flow(...)"
