"""Losses, optimizers, metrics and utils against independent NumPy references, float64 finite
differences, and Keras 3 (torch backend) where it is installed."""
import os

import numpy as np
import pytest

from pycnn import losses, metrics, optimizers, utils
from pycnn import backend
from pycnn.layers.base import Variable


# Keras (the oracle) triggers NumPy 2 __array__ deprecation warnings inside its own code
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
EPS = 1e-7


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras", reason="Keras 3 (torch backend) is the oracle for this test")


# ------------------------------------------------------------------ NumPy references
def ref_cce(y, p):
    q = p / p.sum(-1, keepdims=True)
    q = np.clip(q, EPS, 1 - EPS)
    return -(y * np.log(q)).sum(-1)


def ref_bce(y, p):
    q = np.clip(p, EPS, 1 - EPS)
    return -(y * np.log(q) + (1 - y) * np.log(1 - q)).mean(-1)


def ref_huber(y, p, d=1.0):
    e = np.abs(p - y)
    return np.where(e <= d, 0.5 * e ** 2, d * e - 0.5 * d * d).mean(-1)


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def numeric_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    flat, gf = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f(x)
        flat[i] = old - h
        fm = f(x)
        flat[i] = old
        gf[i] = (fp - fm) / (2 * h)
    return g


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    p = softmax(rng.normal(size=(6, 4)))
    labels = rng.integers(0, 4, 6)
    y = np.eye(4)[labels]
    return rng, p, labels, y


def test_loss_values_match_numpy_reference(data):
    rng, p, labels, y = data
    sw = rng.random(6)
    assert losses.CategoricalCrossentropy()(y, p) == pytest.approx(ref_cce(y, p).mean(), rel=1e-12)
    assert losses.SparseCategoricalCrossentropy()(labels, p) == pytest.approx(ref_cce(y, p).mean(), rel=1e-12)
    assert losses.SparseCategoricalCrossentropy()(labels[:, None], p) == pytest.approx(ref_cce(y, p).mean())
    assert losses.CategoricalCrossentropy()(y, p, sample_weight=sw) == pytest.approx((ref_cce(y, p) * sw).mean())
    z = rng.normal(size=(6, 4))
    assert losses.CategoricalCrossentropy(from_logits=True)(y, z) == pytest.approx(ref_cce(y, softmax(z)).mean())
    b = rng.random((6, 3))
    t = (rng.random((6, 3)) > 0.5).astype(float)
    assert losses.BinaryCrossentropy()(t, b) == pytest.approx(ref_bce(t, b).mean())
    assert losses.BinaryCrossentropy(from_logits=True)(t, np.log(b / (1 - b))) == pytest.approx(ref_bce(t, b).mean())
    assert losses.MeanSquaredError()(t, b) == pytest.approx(((t - b) ** 2).mean())
    assert losses.MeanAbsoluteError()(t, b) == pytest.approx(np.abs(t - b).mean())
    assert losses.Huber(delta=0.3)(t, 2 * b) == pytest.approx(ref_huber(t, 2 * b, 0.3).mean())
    # clipping of probabilities: a zero probability for the true class gives -log(1e-7)
    assert losses.categorical_crossentropy(np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))[0] == pytest.approx(-np.log(EPS))


def test_loss_values_match_keras(data):
    keras = _keras()
    rng, p, labels, y = data
    p32, y32 = p.astype(np.float32), y.astype(np.float32)
    cases = [
        (losses.CategoricalCrossentropy(), keras.losses.CategoricalCrossentropy(), y32, p32),
        (losses.SparseCategoricalCrossentropy(), keras.losses.SparseCategoricalCrossentropy(), labels, p32),
        (losses.CategoricalCrossentropy(from_logits=True), keras.losses.CategoricalCrossentropy(from_logits=True),
         y32, rng.normal(size=(6, 4)).astype(np.float32)),
        (losses.BinaryCrossentropy(), keras.losses.BinaryCrossentropy(), (p32 > 0.3).astype(np.float32), p32),
        (losses.MeanSquaredError(), keras.losses.MeanSquaredError(), y32, p32),
        (losses.MeanAbsoluteError(), keras.losses.MeanAbsoluteError(), y32, p32),
        (losses.Huber(delta=0.2), keras.losses.Huber(delta=0.2), y32, p32 * 3),
    ]
    for ours, theirs, t, q in cases:
        expected = float(np.asarray(theirs(t, q)))
        assert ours(t, q) == pytest.approx(expected, rel=1e-5), type(ours).__name__


@pytest.mark.parametrize("loss", [
    losses.CategoricalCrossentropy(), losses.CategoricalCrossentropy(from_logits=True),
    losses.BinaryCrossentropy(), losses.BinaryCrossentropy(from_logits=True),
    losses.MeanSquaredError(), losses.MeanAbsoluteError(), losses.Huber(delta=0.25),
])
def test_loss_gradients_match_finite_differences(loss):
    rng = np.random.default_rng(2)
    p = rng.uniform(0.1, 0.9, size=(5, 3))
    y = np.eye(3)[rng.integers(0, 3, 5)] if "Categorical" in type(loss).__name__ else rng.random((5, 3))
    sw = rng.random(5) + 0.5
    _, grad = loss.value_and_grad(y, p, sample_weight=sw)
    num = numeric_grad(lambda q: loss(y, q, sample_weight=sw), p.copy())
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-8)


def test_sparse_gradient_and_fused_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(4, 5))
    labels = rng.integers(0, 5, 4)
    sce = losses.SparseCategoricalCrossentropy()
    _, grad = sce.value_and_grad(labels, softmax(z))
    num = numeric_grad(lambda q: sce(labels, q), softmax(z))
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-8)
    # fused softmax + CE: gradient with respect to the logits is (p - y) / n
    fused = sce.logits_grad(labels, softmax(z))
    num_z = numeric_grad(lambda zz: sce(labels, softmax(zz)), z.copy())
    np.testing.assert_allclose(fused, num_z, rtol=1e-5, atol=1e-8)
    cce = losses.CategoricalCrossentropy()
    y = np.eye(5)[labels]
    np.testing.assert_allclose(cce.logits_grad(y, softmax(z)), num_z, rtol=1e-5, atol=1e-8)
    bce = losses.BinaryCrossentropy()
    t = rng.random((4, 5))
    sig = lambda a: 1 / (1 + np.exp(-a))
    np.testing.assert_allclose(bce.logits_grad(t, sig(z)), numeric_grad(lambda zz: bce(t, sig(zz)), z.copy()),
                               rtol=1e-5, atol=1e-8)


def test_label_format_errors_name_shapes_and_suggest_other_loss():
    p = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"categorical_crossentropy: y_true shape \(4,\) does not match "
                                         r"predictions \(4, 3\).*sparse_categorical_crossentropy"):
        losses.CategoricalCrossentropy().prepare_targets(np.array([0, 1, 2, 0]), p.shape)
    with pytest.raises(ValueError, match=r"sparse_categorical_crossentropy: y_true shape \(4, 3\).*"
                                         r"loss='categorical_crossentropy'"):
        losses.SparseCategoricalCrossentropy().prepare_targets(np.eye(3)[[0, 1, 2, 0]], p.shape)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\); got 3 at index 2 \(labels 1..3\? subtract 1\)"):
        losses.SparseCategoricalCrossentropy().prepare_targets(np.array([1, 2, 3, 1]), p.shape)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\); got -1 at index 1"):
        losses.SparseCategoricalCrossentropy().prepare_targets(np.array([0, -1, 2, 1]), p.shape)
    with pytest.raises(ValueError, match="y_true has 3 samples but predictions have 4"):
        losses.CategoricalCrossentropy().prepare_targets(np.eye(3), p.shape)


def test_get_and_serialize():
    assert isinstance(losses.get("categorical_crossentropy"), losses.CategoricalCrossentropy)
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    assert isinstance(losses.get("Huber"), losses.Huber)
    assert losses.get(losses.mean_absolute_error).name == "mean_absolute_error"
    loss = losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    again = losses.deserialize(losses.serialize(loss))
    assert again.from_logits and again.label_smoothing == 0.1
    with pytest.raises(ValueError, match="losses.get: loss must be one of"):
        losses.get("crossentropyy")
    for name in ("adam", "Adam", "SGD", "rmsprop", "Adagrad"):
        assert isinstance(optimizers.get(name), optimizers.Optimizer)
    opt = optimizers.deserialize(optimizers.serialize(optimizers.SGD(0.1, momentum=0.9, nesterov=True)))
    assert (opt.learning_rate, opt.momentum, opt.nesterov) == (0.1, 0.9, True)


# ------------------------------------------------------------------ optimizers
def _run(opt, init, grads):
    var = Variable(init.copy(), "w", dtype="float64")
    for g in grads:
        opt.apply_gradients([(g, var)])
    return var.value


def ref_adam(p, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    """Keras's Adam update written from its documented formula."""
    p, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        p = p - alpha * m / (np.sqrt(v) + eps)
    return p


def test_adam_matches_numpy_reference_of_keras_formula():
    rng = np.random.default_rng(4)
    p0 = rng.normal(size=(3, 4))
    grads = [rng.normal(size=(3, 4)) * 10 ** rng.uniform(-9, 0, size=(3, 4)) for _ in range(5)]
    opt = optimizers.Adam()
    assert (opt.learning_rate, opt.beta_1, opt.beta_2, opt.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    np.testing.assert_allclose(_run(opt, p0, grads), ref_adam(p0, grads), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(_run(optimizers.Adam(0.01, 0.8, 0.99, 1e-3), p0, grads),
                               ref_adam(p0, grads, 0.01, 0.8, 0.99, 1e-3), rtol=1e-12)


def test_sgd_momentum_and_nesterov_match_reference():
    rng = np.random.default_rng(5)
    p0 = rng.normal(size=5)
    grads = [rng.normal(size=5) for _ in range(4)]
    p, vel = p0.copy(), np.zeros(5)
    pn, veln = p0.copy(), np.zeros(5)
    for g in grads:
        vel = 0.9 * vel - 0.1 * g
        p = p + vel
        veln = 0.9 * veln - 0.1 * g
        pn = pn + 0.9 * veln - 0.1 * g
    np.testing.assert_allclose(_run(optimizers.SGD(0.1, momentum=0.9), p0, grads), p, rtol=1e-12)
    np.testing.assert_allclose(_run(optimizers.SGD(0.1, momentum=0.9, nesterov=True), p0, grads), pn, rtol=1e-12)
    np.testing.assert_allclose(_run(optimizers.SGD(0.1), p0, grads), p0 - 0.1 * sum(grads), rtol=1e-12)


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(learning_rate=0.05, momentum=0.8, nesterov=True)),
    ("Adam", dict(learning_rate=0.01, amsgrad=True)),
    ("Adam", dict(learning_rate=0.01, clipnorm=0.5)),
    ("RMSprop", dict(learning_rate=0.01, momentum=0.5, centered=True)),
    ("RMSprop", dict(learning_rate=0.01, clipvalue=0.3)),
    ("Adagrad", dict(learning_rate=0.1)),
    ("SGD", dict(learning_rate=0.1, global_clipnorm=0.7)),
])
def test_optimizers_match_keras(name, kwargs):
    keras = _keras()
    rng = np.random.default_rng(6)
    p0 = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) for _ in range(4)]
    ours = getattr(optimizers, name)(**kwargs)
    var = Variable(p0.copy(), "w")
    theirs = getattr(keras.optimizers, name)(**kwargs)
    kvar = keras.Variable(p0.copy())
    for g in grads:
        ours.apply_gradients([(g, var)])
        theirs.apply_gradients([(keras.ops.convert_to_tensor(g), kvar)])
    np.testing.assert_allclose(var.value, keras.ops.convert_to_numpy(kvar), rtol=1e-5, atol=1e-6)


def test_optimizer_hyperparameters_are_validated():
    with pytest.raises(ValueError, match=r"SGD: learning_rate must be a finite number > 0; got -0.01"):
        optimizers.SGD(learning_rate=-0.01)
    with pytest.raises(ValueError, match="Adam: learning_rate must be a finite number > 0; got nan"):
        optimizers.Adam(learning_rate=float("nan"))
    with pytest.raises(ValueError, match="Adam: beta_1 must be a finite number >= 0 and < 1; got 1.0"):
        optimizers.Adam(beta_1=1.0)
    with pytest.raises(ValueError, match="SGD: momentum must be"):
        optimizers.SGD(momentum=-0.5)
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue and global_clipnorm"):
        optimizers.Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="clipnorm must be a finite number > 0"):
        optimizers.Adam(clipnorm=0)
    opt = optimizers.Adam()
    opt.learning_rate = 0.0          # schedules may anneal to zero
    with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0"):
        opt.learning_rate = float("inf")


def test_optimizer_param_count_like_keras_summary():
    opt = optimizers.Adam()
    assert opt.count_params() == 0
    var = Variable(np.zeros((10, 3), np.float32), "w")
    opt.apply_gradients([(np.ones((10, 3), np.float32), var)])
    assert opt.count_params() == 2 + 2 * 30
    sgd = optimizers.SGD()
    sgd.apply_gradients([(np.ones((10, 3), np.float32), var)])
    assert sgd.count_params() == 2


# ------------------------------------------------------------------ metrics and utils
def test_accuracy_is_resolved_from_shapes_and_keeps_its_name():
    m = metrics.get("accuracy", (None,), (None, 10))
    assert isinstance(m, metrics.SparseCategoricalAccuracy) and m.name == "accuracy"
    assert isinstance(metrics.get("acc", (None, 1), (None, 10)), metrics.SparseCategoricalAccuracy)
    assert isinstance(metrics.get("accuracy", (None, 10), (None, 10)), metrics.CategoricalAccuracy)
    m = metrics.get("acc", (None, 1), (None, 1))
    assert isinstance(m, metrics.BinaryAccuracy) and m.name == "acc"
    assert metrics.get("mae").name == "mae"


def test_metrics_are_running_means_over_samples():
    m = metrics.CategoricalAccuracy()
    m.update_state(np.eye(3)[[0, 1]], np.eye(3)[[0, 2]])
    m.update_state(np.eye(3)[[2, 2, 2]], np.eye(3)[[2, 2, 1]])
    assert m.result() == pytest.approx(3 / 5)
    top = metrics.TopKCategoricalAccuracy(k=2)
    top.update_state(np.eye(3)[[0, 1]], np.array([[0.5, 0.3, 0.2], [0.5, 0.1, 0.4]]))
    assert top.result() == pytest.approx(0.5)
    mae = metrics.MeanAbsoluteError()
    mae.update_state(np.zeros((2, 2)), np.array([[1.0, 3.0], [0.0, 0.0]]))
    assert mae.result() == pytest.approx(1.0)
    cce = metrics.CategoricalCrossentropy()
    p = softmax(np.random.default_rng(0).normal(size=(4, 3)))
    y = np.eye(3)[[0, 1, 2, 0]]
    cce.update_state(y, p)
    assert cce.result() == pytest.approx(ref_cce(y, p).mean())


def test_to_categorical_squeezes_trailing_one():
    y = np.array([[3], [0], [9]], dtype=np.uint8)
    out = utils.to_categorical(y, 10)
    assert out.shape == (3, 10) and out.dtype == np.float32
    np.testing.assert_array_equal(out.argmax(1), [3, 0, 9])
    assert utils.to_categorical([0, 2]).shape == (2, 3)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\); got 3"):
        utils.to_categorical([0, 3], num_classes=3)


def test_set_random_seed_makes_init_and_shuffle_reproducible():
    from pycnn.layers import Dense
    utils.set_random_seed(123)
    a = Dense(4)
    a.build((None, 3))
    perm_a = backend.get_rng().permutation(10)
    utils.set_random_seed(123)
    b = Dense(4)
    b.build((None, 3))
    perm_b = backend.get_rng().permutation(10)
    np.testing.assert_array_equal(a.kernel.value, b.kernel.value)
    np.testing.assert_array_equal(perm_a, perm_b)
