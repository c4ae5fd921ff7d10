"""``model.summary()`` in Keras 3's layout (what Keras renders with ``rich``, as plain text)::

    Model: "sequential"
    ┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
    ┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
    ┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
    │ conv2d (Conv2D)                 │ (None, 28, 28, 6)      │           156 │
    ...
     Total params: 61,706 (241.04 KB)

Column widths follow Keras: line length 88 (108 with the 'Connected to' column of non-chain
functional models), capped at the terminal width minus 4, split at ``positions`` and then shrunk
evenly to fit the borders and padding the way rich does. Cells wrap at spaces; a word longer than
its cell is cut with '…'. Totals count weights (and, once the optimizer has updated at least once,
its variables, which Keras adds to Total) with their byte size in B/KB/MB/GB (1024 steps).
"""
import re
import shutil

__all__ = ["format_summary", "readable_memory_size"]


def readable_memory_size(nbytes):
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    size = float(nbytes)
    for unit in units:
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} {units[-1]}"


def _ratio_reduce(total, ratios, maximums, values):
    """rich's ratio_reduce: take ``total`` away from ``values`` in proportion to ``ratios``."""
    ratios = [r if m else 0 for r, m in zip(ratios, maximums)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return list(values)
    remaining = total
    out = []
    for ratio, maximum, value in zip(ratios, maximums, values):
        if ratio and total_ratio > 0:
            distributed = min(maximum, round(ratio * remaining / total_ratio))
            out.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            out.append(value)
    return out


def _wrap(text, width):
    """Greedy word wrap at spaces; words longer than ``width`` are cut with an ellipsis."""
    indent = len(text) - len(text.lstrip(" "))   # nested-layer prefixes keep their indentation
    lines, current = [], ""
    for word in text[indent:].split(" "):
        if len(word) > width:
            word = word[:max(width - 1, 0)] + "…"
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    lines.append(current)
    if indent and len(lines[0]) + indent <= width:
        lines[0] = " " * indent + lines[0]
    return lines


def _format_shape(shape):
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return "[" + ", ".join(_format_shape(s) for s in shape) + "]"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _count(variables):
    return sum(v.size for v in variables), sum(v.value.nbytes for v in variables)


def _layer_rows(model):
    """[(layer, output shape)] for the model's top-level layers."""
    from pycnn.models.functional import Functional
    rows = []
    if isinstance(model, Functional):
        for layer in model.layers:
            rows.append((layer, model._layer_output_shape(layer)))
        return rows
    shape = model._build_input_shape if model.built else None
    for layer in model.layers:
        if shape is not None:
            try:
                shape = layer.compute_output_shape(shape)
            except (ValueError, TypeError):
                shape = None
        rows.append((layer, shape if layer.built else None))
    return rows


def _nested_rows(model):
    from pycnn.models.functional import Functional
    if isinstance(model, Functional):
        return [(l, model._layer_output_shape(l)) for l in model.layers]
    return _layer_rows(model)


def format_summary(model, line_length=None, positions=None, expand_nested=False,
                   show_trainable=False, layer_range=None):
    from pycnn.models.functional import Functional
    from pycnn.models.training import Model

    sequential_like = not isinstance(model, Functional) or model._is_sequential_like()
    if sequential_like:
        default_length, default_positions = 88, [0.45, 0.80, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #"]
        align = ["left", "left", "right"]
    else:
        default_length, default_positions = 108, [0.3, 0.56, 0.74, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        align = ["left", "left", "right", "left"]
    positions = list(positions or default_positions)
    if show_trainable:
        default_length += 12
        positions = [p * 0.90 for p in positions] + [1.0]
        header.append("Trainable")
        align.append("center")
    if len(positions) != len(header):
        raise ValueError(f"summary: positions must have {len(header)} entries; got {len(positions)}")
    default_length = min(default_length, shutil.get_terminal_size().columns - 4)
    length = line_length or default_length
    if positions[-1] <= 1:
        positions = [int(p * length) for p in positions]
    widths, current = [], 0
    for pos in positions:
        width = int(pos) - current
        if width < 4:
            raise ValueError(f"summary: each column must be at least 4 characters wide; got line_length="
                             f"{length} and positions={positions}")
        widths.append(width)
        current += width
    padded = [w + 2 for w in widths]
    excess = sum(padded) - (length - (len(widths) + 1))
    if excess > 0:
        padded = _ratio_reduce(excess, [1] * len(padded), padded, padded)
    inner = [w - 2 for w in padded]

    def fields(layer, shape, prefix=""):
        name = f"{prefix}{layer.name} ({type(layer).__name__ if not isinstance(layer, Model) else layer._config_class_name()})"
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        row = [name, _format_shape(shape if layer.built else None), params]
        if not sequential_like:
            row.append(model._connections(layer) if prefix == "" else "")
        if show_trainable:
            row.append(("Y" if layer.trainable else "N") if layer.weights else "-")
        return row

    def collect(layer, shape, level):
        prefix = "   " * level + "└ " if level else ""
        rows = [fields(layer, shape, prefix)]
        if expand_nested and isinstance(layer, Model):
            for sub, sub_shape in _nested_rows(layer):
                rows.extend(collect(sub, sub_shape, level + 1))
        return rows

    layer_rows = _layer_rows(model)
    if layer_range is not None:
        layer_rows = _select_range(layer_rows, layer_range)
    table_rows = []
    for layer, shape in layer_rows:
        table_rows.extend(collect(layer, shape, 0))

    def render(cells, vertical):
        wrapped = [_wrap(c, w) for c, w in zip(cells, inner)]
        height = max(len(w) for w in wrapped)
        out = []
        for i in range(height):
            parts = []
            for lines, w, a in zip(wrapped, inner, align):
                text = lines[i] if i < len(lines) else ""
                text = text.rjust(w) if a == "right" else text.center(w) if a == "center" else text.ljust(w)
                parts.append(" " + text + " ")
            out.append(vertical + vertical.join(parts) + vertical)
        return out

    lines = [f'Model: "{model.name}"']
    lines.append("┏" + "┳".join("━" * w for w in padded) + "┓")
    lines.extend(render(header, "┃"))
    lines.append("┡" + "╇".join("━" * w for w in padded) + "┩")
    for i, row in enumerate(table_rows):
        if i:
            lines.append("├" + "┼".join("─" * w for w in padded) + "┤")
        lines.extend(render(row, "│"))
    lines.append("└" + "┴".join("─" * w for w in padded) + "┘")

    trainable, trainable_bytes = _count(model.trainable_weights)
    frozen, frozen_bytes = _count(model.non_trainable_weights)
    optimizer = getattr(model, "optimizer", None)
    opt_count = opt_bytes = 0
    if getattr(model, "compiled", False) and optimizer is not None and optimizer.built:
        opt_count, opt_bytes = optimizer.count_params(), optimizer.state_nbytes()
    total, total_bytes = trainable + frozen + opt_count, trainable_bytes + frozen_bytes + opt_bytes
    lines.append(f" Total params: {total:,} ({readable_memory_size(total_bytes)})")
    lines.append(f" Trainable params: {trainable:,} ({readable_memory_size(trainable_bytes)})")
    lines.append(f" Non-trainable params: {frozen:,} ({readable_memory_size(frozen_bytes)})")
    if opt_count:
        lines.append(f" Optimizer params: {opt_count:,} ({readable_memory_size(opt_bytes)})")
    return "\n".join(lines)


def _select_range(rows, layer_range):
    if not (isinstance(layer_range, (list, tuple)) and len(layer_range) == 2):
        raise ValueError(f"summary: layer_range must be a pair of layer names (or regexes); got "
                         f"{layer_range!r}")
    names = [layer.name for layer, _ in rows]
    starts = [i for i, n in enumerate(names) if re.match(layer_range[0], n)]
    ends = [i for i, n in enumerate(names) if re.match(layer_range[1], n)]
    if not starts or not ends or ends[-1] < starts[0]:
        raise ValueError(f"summary: layer_range {tuple(layer_range)} must name layers of the model; "
                         f"layers are {names}")
    return rows[starts[0]:ends[-1] + 1]
