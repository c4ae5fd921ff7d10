"""Assertions with messages written for students: what was expected, what was found, where."""
import numpy as np

__all__ = ["assert_output_shape", "assert_param_count", "assert_layer_types", "assert_allclose",
           "check_gradients"]


def _model_layers(model):
    """The model's layers without InputLayer (Keras lists it for functional models only)."""
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError(f"expected a model with .layers (Sequential or Model); got {type(model).__name__}")
    return [layer for layer in layers if type(layer).__name__ != "InputLayer"]


def _normalize_shape(shape):
    return tuple(None if d is None else int(d) for d in shape)


def assert_output_shape(obj, expected, input_shape=None):
    """Assert the output shape of a model, a layer, a symbolic tensor or an array.

    ``expected`` may include the batch dimension (``(None, 28, 28, 6)``) or leave it out
    (``(28, 28, 6)``).  A layer that is not built needs ``input_shape`` (with batch).
    """
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array__") and not hasattr(obj, "compute_output_shape"):
        actual = tuple(np.shape(obj))
        what = "array"
    elif input_shape is not None:
        actual = obj.compute_output_shape(tuple(input_shape))
        what = f"{type(obj).__name__} '{getattr(obj, 'name', '?')}' on input {tuple(input_shape)}"
    elif hasattr(obj, "output_shape"):
        actual = obj.output_shape
        what = f"{type(obj).__name__} '{getattr(obj, 'name', '?')}'"
    elif hasattr(obj, "shape"):
        actual = obj.shape
        what = type(obj).__name__
    else:
        raise TypeError(f"assert_output_shape: obj must be a model, layer, tensor or array; got {type(obj).__name__}")
    actual = _normalize_shape(actual)
    expected = _normalize_shape(expected)
    # Compare without the batch dimension when the expectation leaves it out.
    compared = actual[1:] if len(expected) == len(actual) - 1 else actual
    if compared != expected:
        hint = ""
        if len(compared) == len(expected):
            diffs = [i for i, (a, e) in enumerate(zip(compared, expected)) if a != e]
            hint = f"; axes {diffs} differ"
        raise AssertionError(f"output shape of {what} is {actual}; expected {expected}{hint}")


def _per_layer_counts(model):
    lines = []
    for layer in _model_layers(model):
        lines.append(f"  {layer.name:<24} {type(layer).__name__:<20} {layer.count_params():>12,}")
    return "\n".join(lines)


def assert_param_count(model, expected, trainable=None):
    """Assert ``model.count_params() == expected`` (and the trainable count when given).

    The message lists each layer's parameter count so the student sees which layer is off.
    """
    total = int(model.count_params())
    problems = []
    if total != int(expected):
        problems.append(f"model has {total:,} parameters; expected {int(expected):,} "
                        f"(difference {total - int(expected):+,})")
    if trainable is not None:
        n_trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
        if n_trainable != int(trainable):
            problems.append(f"model has {n_trainable:,} trainable parameters; expected {int(trainable):,} "
                            f"(check which layers have trainable=False)")
    if problems:
        raise AssertionError("; ".join(problems) + "\nParameters per layer:\n" + _per_layer_counts(model))


def _type_name(t):
    return t if isinstance(t, str) else t.__name__


def assert_layer_types(model, expected_types, exact=True):
    """Assert the model's layers are of ``expected_types`` in order (classes or class names).

    With ``exact=False`` the expected types need only appear in this order (other layers,
    e.g. Dropout, may sit between them).
    """
    actual = [type(layer).__name__ for layer in _model_layers(model)]
    expected = [_type_name(t) for t in expected_types]
    if exact:
        if actual == expected:
            return
        first = next((i for i, (a, e) in enumerate(zip(actual, expected)) if a != e), min(len(actual), len(expected)))
        if first < min(len(actual), len(expected)):
            where = f"layer {first} is {actual[first]} but should be {expected[first]}"
        elif len(actual) < len(expected):
            where = f"the model stops after {len(actual)} layers; missing {expected[len(actual):]}"
        else:
            where = f"the model has {len(actual) - len(expected)} extra layer(s) at the end: {actual[len(expected):]}"
        raise AssertionError(f"layer types differ: {where}\n  got:      {actual}\n  expected: {expected}")
    position = 0
    for name in expected:
        while position < len(actual) and actual[position] != name:
            position += 1
        if position == len(actual):
            raise AssertionError(f"layer types: expected {expected} in this order; {name} is missing after "
                                 f"the earlier ones\n  got: {actual}")
        position += 1


def assert_allclose(actual, desired, rtol=1e-7, atol=0.0, err_msg="", max_shown=5):
    """``numpy.testing.assert_allclose`` with a short, readable diff: shape mismatch, number of
    mismatching entries, the largest absolute and relative errors and the first few indices."""
    actual_arr = np.asarray(actual.numpy() if hasattr(actual, "numpy") and not isinstance(actual, np.ndarray)
                            else actual)
    desired_arr = np.asarray(desired)
    prefix = f"{err_msg}: " if err_msg else ""
    try:
        a, d = np.broadcast_arrays(actual_arr, desired_arr)
    except ValueError:
        raise AssertionError(f"{prefix}shapes differ: got {actual_arr.shape}, expected {desired_arr.shape}") from None
    if actual_arr.shape != desired_arr.shape and desired_arr.ndim > 0:
        raise AssertionError(f"{prefix}shapes differ: got {actual_arr.shape}, expected {desired_arr.shape}")
    a64 = a.astype(np.float64) if a.dtype.kind in "biuf" else a
    d64 = d.astype(np.float64) if d.dtype.kind in "biuf" else d
    with np.errstate(invalid="ignore"):
        close = np.isclose(a64, d64, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return
    bad = np.argwhere(~close)
    with np.errstate(invalid="ignore", divide="ignore"):
        abs_err = np.abs(a64 - d64)
        rel_err = abs_err / np.abs(d64)
    finite_abs = abs_err[~close]
    finite_rel = rel_err[~close]
    lines = [f"{prefix}{len(bad):,} of {close.size:,} entries differ (rtol={rtol:g}, atol={atol:g})",
             f"  largest absolute error: {np.nanmax(finite_abs):.6g}" if np.isfinite(finite_abs).any() else
             "  errors are not finite (NaN or inf in one array only)",
             f"  largest relative error: {np.nanmax(finite_rel[np.isfinite(finite_rel)]):.6g}"
             if np.isfinite(finite_rel).any() else "  largest relative error: inf (expected value is 0)"]
    for idx in bad[:max_shown]:
        index = tuple(int(i) for i in idx)
        lines.append(f"  at {index}: got {a[index]!r}, expected {d[index]!r}")
    if len(bad) > max_shown:
        lines.append(f"  ... and {len(bad) - max_shown:,} more")
    raise AssertionError("\n".join(lines))


def _as_float64_layer(layer, x):
    """A float64 copy of ``layer`` with the same weights (finite differences need float64)."""
    config = dict(layer.get_config())
    config["dtype"] = "float64"
    config.pop("batch_input_shape", None)
    clone = type(layer).from_config(config)
    clone(x[:1] if not isinstance(x, list) else [t[:1] for t in x])
    weights = layer.get_weights()
    if weights:
        clone.set_weights([np.asarray(w, dtype=np.float64) for w in weights])
    return clone


def _numeric_grad(f, array, eps):
    """Central differences of the scalar f() w.r.t. every entry of ``array`` (changed in place)."""
    grad = np.zeros_like(array, dtype=np.float64)
    flat = array.reshape(-1)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def check_gradients(fn_or_layer, x, grad=None, eps=1e-6, atol=1e-5, rtol=1e-4, seed=0, check_weights=True):
    """Compare analytic gradients with central finite differences in float64.

    ``fn_or_layer`` is a pycnn layer (its ``backward`` is checked, for the input and every
    weight) or a function ``fn(x) -> y`` together with ``grad(x, dy) -> dx``.  The scalar
    being differentiated is ``sum(y * r)`` for a fixed random ``r``, so every output entry
    counts.  Returns ``True``; raises ``AssertionError`` naming the first wrong gradient.
    """
    rng = np.random.default_rng(seed)
    x = np.array(x, dtype=np.float64)
    is_layer = hasattr(fn_or_layer, "backward") and hasattr(fn_or_layer, "get_config")
    if is_layer:
        layer = _as_float64_layer(fn_or_layer, x)
        y = np.asarray(layer(x, training=False), dtype=np.float64)
        r = rng.standard_normal(y.shape)
        analytic = {"input": np.asarray(layer.backward(r), dtype=np.float64)}
        variables = layer.trainable_weights if check_weights else []
        for v in variables:
            analytic[v.name] = np.array(v.grad, dtype=np.float64)

        def loss():
            return float(np.sum(np.asarray(layer(x, training=False), dtype=np.float64) * r))

        numeric = {"input": _numeric_grad(loss, x, eps)}
        for v in variables:
            numeric[v.name] = _numeric_grad(loss, v.value, eps)
    else:
        if not callable(fn_or_layer):
            raise TypeError(f"check_gradients: fn_or_layer must be a layer or a function; got "
                            f"{type(fn_or_layer).__name__}")
        if grad is None:
            raise TypeError("check_gradients: grad must be given for a function (grad(x, dy) -> dx); got None "
                            "(pass a layer to use its backward)")
        y = np.asarray(fn_or_layer(x), dtype=np.float64)
        r = rng.standard_normal(y.shape)
        analytic = {"input": np.asarray(grad(x.copy(), r), dtype=np.float64)}
        numeric = {"input": _numeric_grad(lambda: float(np.sum(np.asarray(fn_or_layer(x), np.float64) * r)),
                                          x, eps)}
    for name, expected in numeric.items():
        assert_allclose(analytic[name], expected, rtol=rtol, atol=atol,
                        err_msg=f"check_gradients: gradient w.r.t. {name} (analytic vs finite differences)")
    return True
