"""Splitting a dataset into train and test parts, and looking at its classes."""
import math
from collections import namedtuple

import numpy as np

ClassCounts = namedtuple("ClassCounts", ["classes", "counts", "names"])


def _labels_1d(y, who):
    """Integer class ids from labels given as (n,), (n, 1) or one-hot (n, k)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    if y.ndim != 1:
        raise ValueError(f"{who}: labels must have shape (n,), (n, 1) or one-hot (n, classes); got {y.shape}")
    return y


def _resolve_sizes(n, test_size, train_size):
    def as_count(value, name):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"train_test_split: {name} must be a float in (0, 1) or an int; got {value!r}")
        if isinstance(value, (float, np.floating)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"train_test_split: {name} as a fraction must be in (0, 1); got {value}")
            return value
        if not 0 < value < n:
            raise ValueError(
                f"train_test_split: {name} as a count must be in 1..{n - 1} for {n} samples; got {value}")
        return int(value)

    test, train = as_count(test_size, "test_size"), as_count(train_size, "train_size")
    if test is None and train is None:
        test = 0.25
    # Fractions round like scikit-learn: test up, train down.
    n_test = None if test is None else (math.ceil(test * n) if isinstance(test, float) else test)
    n_train = None if train is None else (math.floor(train * n) if isinstance(train, float) else train)
    if n_test is None:
        n_test = n - n_train
    if n_train is None:
        n_train = n - n_test
    if n_train + n_test > n:
        raise ValueError(
            f"train_test_split: train_size + test_size must be at most the {n} samples; got "
            f"{n_train} + {n_test} (test_size={test_size!r}, train_size={train_size!r})")
    if n_train < 1 or n_test < 1:
        raise ValueError(
            f"train_test_split: both parts must be non-empty; got {n_train} train and {n_test} test "
            f"samples from {n} (test_size={test_size!r}, train_size={train_size!r})")
    return n_train, n_test


def train_test_split(x, y, test_size=None, train_size=None, shuffle=True, stratify=None, seed=None):
    """Split ``x`` and ``y`` into ``(x_train, x_test, y_train, y_test)`` (scikit-learn's order).

    Args:
        test_size, train_size: a fraction in (0, 1) or a sample count; if both are None
            the test part is 25%.  Fractions round up for test and down for train.
        shuffle: shuffle before splitting (with ``seed``); if False the test part is the
            last rows.
        stratify: labels (usually ``y``) whose class proportions both parts keep; needs
            ``shuffle=True``.  Each class's test share is rounded by largest remainders so
            the totals are exact.
        seed: int seed for the shuffle (``numpy.random.default_rng``).
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            f"train_test_split: x and y must have the same number of samples; got x.shape={x.shape}, "
            f"y.shape={y.shape}")
    n = len(x)
    n_train, n_test = _resolve_sizes(n, test_size, train_size)
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(n) if shuffle else np.arange(n)
        train_idx, test_idx = order[:n_train], order[n - n_test:]
    else:
        if not shuffle:
            raise ValueError("train_test_split: stratify requires shuffle=True; got shuffle=False")
        labels = _labels_1d(stratify, "train_test_split")
        if len(labels) != n:
            raise ValueError(f"train_test_split: stratify must have {n} labels; got {len(labels)}")
        classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        if counts.min() < 2:
            raise ValueError(
                f"train_test_split: every class in stratify must have at least 2 samples; got class "
                f"{classes[np.argmin(counts)]!r} with {counts.min()}")
        test_per = _apportion(counts, n_test, rng)
        train_per = _apportion(counts - test_per, n_train, rng)
        train_parts, test_parts = [], []
        for k in range(len(classes)):
            members = rng.permutation(np.flatnonzero(inverse == k))
            test_parts.append(members[:test_per[k]])
            train_parts.append(members[test_per[k]:test_per[k] + train_per[k]])
        train_idx = rng.permutation(np.concatenate(train_parts))
        test_idx = rng.permutation(np.concatenate(test_parts))
    return x[train_idx], x[test_idx], y[train_idx], y[test_idx]


def _apportion(capacity, total, rng):
    """Split ``total`` over classes in proportion to ``capacity`` (largest remainders, ties random)."""
    capacity = np.asarray(capacity, dtype=np.int64)
    exact = capacity * (total / capacity.sum())
    share = np.minimum(np.floor(exact).astype(np.int64), capacity)
    left = total - share.sum()
    if left > 0:
        remainder = exact - share
        tie_break = rng.random(len(capacity))
        order = np.lexsort((tie_break, -remainder))
        for k in order:
            if left == 0:
                break
            if share[k] < capacity[k]:
                share[k] += 1
                left -= 1
    return share


def class_counts(y, class_names=None):
    """Count the samples of each class, sorted by class (the ``unique_with_counts`` step).

    ``y`` may be (n,), (n, 1) or one-hot (n, k).  Returns a ``ClassCounts(classes, counts,
    names)`` tuple; ``names`` maps each class through ``class_names`` (a list indexed by
    class id, or a dict), or is None.
    """
    labels = _labels_1d(y, "class_counts")
    classes, counts = np.unique(labels, return_counts=True)
    names = None
    if class_names is not None:
        try:
            names = [class_names[c.item()] for c in classes]
        except (IndexError, KeyError, TypeError) as exc:
            raise ValueError(
                f"class_counts: class_names must name every class in y ({classes.tolist()}); "
                f"got {len(class_names)} names ({exc})") from None
    return ClassCounts(classes, counts, names)


def plot_class_distribution(y, class_names=None, ax=None, title="Class distribution"):
    """Bar chart of ``class_counts(y, class_names)`` (needs matplotlib); returns the Axes."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "plot_class_distribution: matplotlib must be installed; got ImportError "
            "(pip install matplotlib, or print pycnn.datasets.class_counts(y) instead)") from exc
    counts = class_counts(y, class_names)
    if ax is None:
        _, ax = plt.subplots()
    labels = counts.names if counts.names is not None else [str(c) for c in counts.classes]
    ax.bar(range(len(counts.counts)), counts.counts)
    ax.set_xticks(range(len(counts.counts)))
    ax.set_xticklabels(labels, rotation=45 if max(map(len, labels)) > 3 else 0, ha="right" if max(map(len, labels)) > 3 else "center")
    ax.set_xlabel("class")
    ax.set_ylabel("samples")
    ax.set_title(title)
    return ax
