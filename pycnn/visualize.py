"""Plots for teaching: training curves, filters, feature maps, sample images, class counts and
the layer graph of a model (drawn with matplotlib, no Graphviz needed).

    from pycnn import visualize
    visualize.plot_history(history, to_file="curves.png")
    visualize.plot_model(model, to_file="lenet.svg")

matplotlib is optional for pycnn; these functions need it (``pip install matplotlib``).
Every function returns the matplotlib ``Figure``; ``to_file`` (PNG, SVG, PDF by extension)
saves it too.
"""
import math

import numpy as np

__all__ = ["plot_history", "plot_filters", "plot_feature_maps", "show_images", "plot_class_distribution",
           "plot_model"]


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("pycnn.visualize: matplotlib must be installed to plot; got no matplotlib "
                          "(pip install matplotlib)") from None
    return plt


def _finish(fig, to_file, dpi=100):
    fig.tight_layout()
    if to_file is not None:
        fig.savefig(str(to_file), dpi=dpi)
    return fig


def _grid(n, cols=None):
    cols = cols or min(n, 8)
    return cols, math.ceil(n / cols)


def plot_history(history, metrics=None, to_file=None, figsize=None):
    """One panel per metric (loss, accuracy, ...) with its ``val_`` curve when recorded.

    ``history`` is the ``History`` returned by ``fit`` or its ``.history`` dict.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError(f"plot_history: history must be a History or a non-empty dict of lists; got {history!r}")
    names = metrics or [k for k in logs if not k.startswith("val_")]
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=figsize or (4 * len(names), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        if name not in logs:
            raise ValueError(f"plot_history: metric must be one of {sorted(logs)}; got {name!r}")
        epochs = np.arange(1, len(logs[name]) + 1)
        ax.plot(epochs, logs[name], "o-", label="train")
        if "val_" + name in logs:
            ax.plot(epochs, logs["val_" + name], "o-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    return _finish(fig, to_file)


def plot_filters(layer, channel=None, to_file=None, cols=None):
    """The kernels of a Conv2D layer as small grey images (one per filter).

    For a kernel ``(kh, kw, in, out)`` each filter shows input ``channel`` (default: the mean
    over the input channels, or the RGB filter itself when there are 3 inputs).
    """
    kernel = np.asarray(layer.get_weights()[0]) if hasattr(layer, "get_weights") else np.asarray(layer)
    if kernel.ndim != 4:
        raise ValueError(f"plot_filters: kernel must be 4-D (kh, kw, in, out); got shape {kernel.shape}")
    n = kernel.shape[3]
    cols, rows = _grid(n, cols)
    plt = _plt()
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.3 * rows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        f = kernel[:, :, :, i]
        if channel is None and f.shape[2] == 3:
            image = (f - f.min()) / (np.ptp(f) or 1.0)          # RGB filters shown in colour
            ax.imshow(image)
        else:
            ax.imshow(f.mean(axis=2) if channel is None else f[:, :, channel], cmap="gray")
        ax.set_title(str(i), fontsize=8)
    return _finish(fig, to_file)


def _layer_output(model, x, layer):
    """Output of ``layer`` (object, name or index) for input ``x``."""
    layers = list(model.layers)
    if isinstance(layer, int):
        target = layers[layer]
    elif isinstance(layer, str):
        matches = [l for l in layers if l.name == layer]
        if not matches:
            raise ValueError(f"plot_feature_maps: layer must name a layer of the model; got {layer!r} "
                             f"(names: {[l.name for l in layers]})")
        target = matches[0]
    else:
        target = layer
    if type(model).__name__ == "Sequential":
        out = np.asarray(x)
        for current in layers:
            if type(current).__name__ == "InputLayer":
                continue
            out = current(out, training=False)
            if current is target:
                return np.asarray(out), target
        raise ValueError(f"plot_feature_maps: layer must belong to the model; got {target!r}")
    from pycnn.models import Model
    return np.asarray(Model(model.inputs, target.output).predict(x, verbose=0)), target


def plot_feature_maps(model, x, layer, max_maps=16, to_file=None, cols=None):
    """The feature maps (channels) of ``layer`` for the first image of ``x``."""
    x = np.asarray(x)
    maps, target = _layer_output(model, x[:1], layer)
    if maps.ndim != 4:
        raise ValueError(f"plot_feature_maps: layer output must be 4-D (batch, h, w, channels); got "
                         f"{maps.shape} from {target.name} (pick a convolution or pooling layer)")
    n = min(maps.shape[3], max_maps)
    cols, rows = _grid(n, cols)
    plt = _plt()
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.5 * rows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(maps[0, :, :, i], cmap="viridis")
            ax.set_title(str(i), fontsize=8)
    fig.suptitle(f"{target.name}: {maps.shape[1]}x{maps.shape[2]}x{maps.shape[3]}")
    return _finish(fig, to_file)


def show_images(x, labels=None, class_names=None, max_images=16, to_file=None, cols=None):
    """A grid of images (``(n, h, w)``, ``(n, h, w, 1)`` or ``(n, h, w, 3)``) titled by label."""
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (3, 4):
        raise ValueError(f"show_images: x must have shape (n, h, w), (n, h, w, 1) or (n, h, w, 3); got {x.shape}")
    n = min(len(x), max_images)
    labels = None if labels is None else np.asarray(labels)
    if labels is not None and labels.ndim == 2:          # one-hot or (n, 1)
        labels = labels[:, 0] if labels.shape[1] == 1 else labels.argmax(axis=1)
    cols, rows = _grid(n, cols)
    plt = _plt()
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.6 * rows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        image = x[i]
        if image.ndim == 3 and image.dtype.kind == "f" and image.max() > 1.0:
            image = np.clip(image / 255.0, 0, 1)          # float images in 0..255
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
        if labels is not None:
            label = labels[i]
            ax.set_title(class_names[int(label)] if class_names is not None else str(label), fontsize=8)
    return _finish(fig, to_file)


def plot_class_distribution(y, class_names=None, title="Class distribution", to_file=None):
    """A bar chart of how many samples each class has (labels as ``(n,)``, ``(n, 1)`` or one-hot)."""
    from pycnn.datasets import class_counts
    counts = class_counts(y, class_names=class_names)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(counts.classes)), 3))
    names = [str(n) for n in (counts.names if counts.names is not None else counts.classes)]
    ax.bar(names, counts.counts)
    ax.set_ylabel("samples")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=45 if len(names) > 5 else 0)
    return _finish(fig, to_file)


def _graph(model):
    """(layers in order, edges as (parent index, child index)) from the symbolic graph, else a chain."""
    layers = list(model.layers)
    index = {id(l): i for i, l in enumerate(layers)}
    edges = []
    for i, layer in enumerate(layers):
        for node in getattr(layer, "_inbound_nodes", [])[:1]:
            for tensor in node.input_tensors:
                history = getattr(tensor, "_keras_history", None)
                if history is not None and id(history[0]) in index:
                    edges.append((index[id(history[0])], i))
    if not edges:
        edges = [(i - 1, i) for i in range(1, len(layers))]
    return layers, edges


def _shape_text(layer):
    try:
        shape = layer.output_shape
    except Exception:  # a layer never built has no shape to show
        return "?"
    return str(tuple(shape)).replace("None", "?") if not isinstance(shape, list) else str(shape)


def plot_model(model, to_file=None, show_shapes=True, dpi=100):
    """Draw the layer graph: one box per layer ("name: Type" and its output shape), arrows for
    the data flow (branches and merges of functional models side by side).  No Graphviz."""
    layers, edges = _graph(model)
    parents = {i: [p for p, c in edges if c == i] for i in range(len(layers))}
    depth = {}
    for i in range(len(layers)):                     # model.layers is in execution order
        depth[i] = 1 + max((depth[p] for p in parents[i]), default=-1)
    rows = {}
    for i, d in depth.items():
        rows.setdefault(d, []).append(i)
    width = max(len(v) for v in rows.values())
    n_rows = len(rows)
    plt = _plt()
    from matplotlib.patches import FancyBboxPatch
    fig, ax = plt.subplots(figsize=(3.2 * width, 0.9 * n_rows + 0.4))
    ax.set_xlim(0, width)
    ax.set_ylim(0, n_rows)
    ax.axis("off")
    pos = {}
    for d, members in rows.items():
        for k, i in enumerate(members):
            pos[i] = ((k + 0.5) * width / len(members), n_rows - d - 0.5)
    for p, c in edges:
        (x0, y0), (x1, y1) = pos[p], pos[c]
        ax.annotate("", xy=(x1, y1 + 0.3), xytext=(x0, y0 - 0.3), arrowprops={"arrowstyle": "->", "lw": 1})
    for i, layer in enumerate(layers):
        x, y = pos[i]
        half = 0.42 * width / len(rows[depth[i]])      # boxes fill their column with a margin
        ax.add_patch(FancyBboxPatch((x - half, y - 0.3), 2 * half, 0.6, boxstyle="round,pad=0.02", fc="#e8f0fe",
                                    ec="#3366cc"))
        text = f"{layer.name}: {type(layer).__name__}"
        if show_shapes:
            text += f"\n{_shape_text(layer)}"
        ax.text(x, y, text, ha="center", va="center", fontsize=8)
    return _finish(fig, to_file, dpi=dpi)
