"""Optimizer updates are in place: after the first step they allocate nothing the size of a variable,
and updating a large variable chunk by chunk gives the textbook formulas' result."""
import tracemalloc

import numpy as np
import pytest

from pycnn import optimizers
from pycnn.layers.base import Variable

CONFIGS = [
    ("SGD", dict(learning_rate=0.1)),
    ("SGD", dict(learning_rate=0.1, momentum=0.9)),
    ("SGD", dict(learning_rate=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict(learning_rate=0.01)),
    ("Adam", dict(learning_rate=0.01, amsgrad=True)),
    ("Adam", dict(learning_rate=0.01, weight_decay=0.1)),
    ("RMSprop", dict(learning_rate=0.01)),
    ("RMSprop", dict(learning_rate=0.01, momentum=0.5, centered=True)),
    ("Adagrad", dict(learning_rate=0.1)),
]


def reference(name, kw, p, grads):
    """The documented (Keras) update rules, written out in float64 with fresh arrays each step."""
    lr = kw["learning_rate"]
    p = p.astype(np.float64)
    state = {k: np.zeros_like(p) for k in ("m", "v", "vhat", "a")}
    state["acc"] = np.full_like(p, 0.1)
    for t, g in enumerate(grads, 1):
        g = g.astype(np.float64)
        if kw.get("weight_decay"):
            p = p - p * lr * kw["weight_decay"]
        if name == "SGD":
            mom = kw.get("momentum", 0.0)
            if not mom:
                p = p - lr * g
                continue
            state["m"] = mom * state["m"] - lr * g
            p = p + (mom * state["m"] - lr * g if kw.get("nesterov") else state["m"])
        elif name == "Adam":
            b1, b2, eps = 0.9, 0.999, 1e-7
            state["m"] = b1 * state["m"] + (1 - b1) * g
            state["v"] = b2 * state["v"] + (1 - b2) * g * g
            v = state["v"]
            if kw.get("amsgrad"):
                state["vhat"] = v = np.maximum(state["vhat"], v)
            p = p - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * state["m"] / (np.sqrt(v) + 1e-7)
        elif name == "RMSprop":
            rho, eps, mom = 0.9, 1e-7, kw.get("momentum", 0.0)
            state["v"] = rho * state["v"] + (1 - rho) * g * g
            denominator = state["v"] + eps
            if kw.get("centered"):
                state["a"] = rho * state["a"] + (1 - rho) * g
                denominator = denominator - state["a"] ** 2
            increment = lr * g / np.sqrt(denominator)
            if mom:
                state["m"] = mom * state["m"] + increment
                increment = state["m"]
            p = p - increment
        else:
            state["acc"] = state["acc"] + g * g
            p = p - lr * g / np.sqrt(state["acc"] + 1e-7)
    return p


@pytest.mark.parametrize("name,kw", CONFIGS)
@pytest.mark.parametrize("shape", [(7, 5), (3, 3, 64, 129)])   # one chunk; several and a partial one
def test_update_matches_the_formula(name, kw, shape):
    rng = np.random.default_rng(11)
    p0 = rng.normal(size=shape)
    grads = [rng.normal(size=shape) * 10.0 ** rng.uniform(-6, 0, size=shape) for _ in range(4)]
    var = Variable(p0.copy(), "w", dtype="float64")
    opt = getattr(optimizers, name)(**kw)
    for g in grads:
        opt.apply_gradients([(g, var)])
    np.testing.assert_allclose(var.value, reference(name, kw, p0, grads), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name,kw", CONFIGS)
def test_strided_weight_is_updated_like_a_contiguous_one(name, kw):
    rng = np.random.default_rng(12)
    p0 = rng.normal(size=(300, 200)).astype(np.float32)
    grads = [rng.normal(size=p0.shape).astype(np.float32) for _ in range(3)]
    contiguous, strided = Variable(p0.copy(), "c"), Variable(np.asfortranarray(p0), "f")
    assert not strided.value.flags.c_contiguous
    opt_c, opt_f = getattr(optimizers, name)(**kw), getattr(optimizers, name)(**kw)
    for g in grads:
        opt_c.apply_gradients([(g, contiguous)])
        opt_f.apply_gradients([(g, strided)])
    np.testing.assert_array_equal(strided.value, contiguous.value)


@pytest.mark.parametrize("name,kw", CONFIGS)
@pytest.mark.parametrize("shape", [(120, 84), (700, 600)])
def test_update_allocates_no_variable_sized_temporaries(name, kw, shape):
    var = Variable(np.ones(shape, np.float32), "w")
    grad = np.full(shape, 0.25, np.float32)
    opt = getattr(optimizers, name)(**kw)
    opt.apply_gradients([(grad, var)])   # builds the slots and the work buffers
    tracemalloc.start()
    try:
        opt.apply_gradients([(grad, var)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < var.value.nbytes // 4, (peak, var.value.nbytes)
