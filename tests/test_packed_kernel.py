"""Kernels packed once for many forward calls: ops.PackedKernel (the GEMM's packed filters,
Winograd's transformed ones) and Model.predict / evaluate.

The packed copy replaces the packing the forward's GEMM does on every call, so every
result here must be bitwise the plain kernel's (and, for the shapes, right against the
NumPy reference); the tests also check that the packed copy was actually made where the
engine's path reads it, and not where it does not.
"""
import copy
import pickle

import numpy as np
import pytest

import pycnn
from pycnn import _engine, layers, models, ops
from pycnn.layers import base

from . import reference as ref

THREADS = (1, 2)


@pytest.fixture(params=THREADS, ids=lambda t: f"{t}thr")
def threads(request):
    before = pycnn.get_num_threads()
    pycnn.set_num_threads(request.param)
    yield request.param
    pycnn.set_num_threads(before)


def _random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _tolerance(dtype):
    return dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


# (id, x shape, kernel shape, conv2d kwargs, whether the forward reads a packed copy).  Filter
# counts avoid whole AVX-512 / AVX2 vectors where up to 128 input channels would otherwise
# take the direct low-channel kernels, which read the kernel itself.
CONV_CASES = [
    ("deep 3x3 batch 1", (1, 7, 7, 144), (3, 3, 144, 80), dict(padding="same"), True),
    ("one image cut into chunks", (1, 40, 40, 24), (3, 3, 24, 36), dict(padding="same"), True),
    ("several images per chunk", (12, 9, 9, 20), (3, 3, 20, 36), dict(padding="valid"), True),
    ("strided, dilated", (2, 17, 15, 20), (3, 3, 20, 44), dict(strides=2, dilation_rate=2, padding="same"), True),
    ("1x1", (3, 6, 6, 40), (1, 1, 40, 72), dict(), True),
    ("groups 2", (2, 9, 9, 32), (3, 3, 16, 40), dict(groups=2, padding="same"), True),
    ("at most 4 output rows", (1, 2, 2, 64), (1, 1, 64, 50), dict(), False),
    ("low-channel first layer", (2, 12, 12, 1), (5, 5, 1, 6), dict(), False),
    ("depthwise-like thin groups", (2, 8, 8, 16), (3, 3, 1, 16), dict(groups=16, padding="same"), False),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv2d_packed_kernel_is_bitwise_the_plain_kernel(case, dtype, threads):
    _, x_shape, k_shape, kwargs, reads_packed = case
    rng = np.random.default_rng(len(case[0]))
    x, w, b = _random(rng, x_shape, dtype), _random(rng, k_shape, dtype), _random(rng, (k_shape[-1],), dtype)
    packed = ops.PackedKernel(w)
    plain = ops.conv2d(x, w, b, **kwargs)
    np.testing.assert_allclose(plain, ref.conv2d(x, w, b, **kwargs), **_tolerance(dtype))
    for _ in range(2):   # the call that packs, then one that reads the stored copy
        got = ops.conv2d(x, packed, b, **kwargs)
        assert got.dtype == plain.dtype and np.array_equal(got, plain)
    assert (packed._packed is not None) == reads_packed


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_one_packed_kernel_serves_every_batch_size(dtype, threads):
    """Packed at one batch size, the copy serves others: more chunks (the pass would pack
    once for all of them), a batch whose path packs per call, and 1-4 rows (not read)."""
    rng = np.random.default_rng(3)
    w, b = _random(rng, (3, 3, 24, 36), dtype), _random(rng, (36,), dtype)
    packed = ops.PackedKernel(w)
    for n, size in [(2, 6), (16, 12), (1, 3), (1, 1), (5, 6), (40, 9)]:
        x = _random(rng, (n, size, size, 24), dtype)
        got = ops.conv2d(x, packed, b, padding="same")
        assert np.array_equal(got, ops.conv2d(x, w, b, padding="same")), (n, size)
    assert packed._packed is not None


@pytest.mark.parametrize("rows", [1, 4, 5, 8, 33, 300])
def test_dense_packed_kernel(rows, threads):
    rng = np.random.default_rng(rows)
    x, w, b = _random(rng, (rows, 96), np.float32), _random(rng, (96, 130), np.float32), None
    packed = ops.PackedKernel(w)
    plain = ops.dense(x, w, b, activation="relu")
    np.testing.assert_allclose(plain, np.maximum(x.astype(np.float64) @ w, 0), rtol=2e-4, atol=2e-4)
    assert np.array_equal(ops.dense(x, packed, b, activation="relu"), plain)
    assert np.array_equal(ops.dense(x, packed, b, activation="relu"), plain)
    assert (packed._packed is not None) == (rows > 4)


def test_conv1d_channels_first_and_backward_accept_packed_kernel():
    rng = np.random.default_rng(5)
    x, w = _random(rng, (4, 50, 12), np.float32), _random(rng, (5, 12, 40), np.float32)
    packed = ops.PackedKernel(w)
    assert np.array_equal(ops.conv1d(x, packed, padding="causal"), ops.conv1d(x, w, padding="causal"))
    # channels_first: PyTorch's layouts in, the packed copy is of the converted kernel
    x_nchw, w_oihw = _random(rng, (3, 20, 9, 9), np.float32), _random(rng, (44, 20, 3, 3), np.float32)
    packed_oihw = ops.PackedKernel(w_oihw)
    expected = ops.conv2d(x_nchw, w_oihw, padding=1, data_format="channels_first")
    for _ in range(2):
        assert np.array_equal(ops.conv2d(x_nchw, packed_oihw, padding=1, data_format="channels_first"), expected)
    assert packed_oihw._packed is not None
    # backward functions read the copy itself
    x2, w2 = _random(rng, (2, 8, 8, 16), np.float32), _random(rng, (3, 3, 16, 24), np.float32)
    dy = _random(rng, (2, 8, 8, 24), np.float32)
    for got, want in zip(ops.conv2d_backward(dy, x2, ops.PackedKernel(w2), padding="same"),
                         ops.conv2d_backward(dy, x2, w2, padding="same")):
        assert (got is None and want is None) or np.array_equal(got, want)
    dx, dw, _ = ops.dense_backward(dy[:, 0, 0], x2[:, 0, 0], ops.PackedKernel(w2[0, 0]))
    dx_ref, dw_ref, _ = ops.dense_backward(dy[:, 0, 0], x2[:, 0, 0], w2[0, 0])
    assert np.array_equal(dx, dx_ref) and np.array_equal(dw, dw_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("tile", [2, 4])
def test_winograd_filters_transformed_once(tile, dtype, threads):
    """conv2d's Winograd option with a PackedKernel: the transformed filters are made once
    per tile size and give bitwise the plain call's result, also for a layer whose filters
    are transformed in groups of output channels (512 -> 300: in float32 with F(4x4), in
    float64 with both) and for batch sizes other than the one they were made at."""
    rng = np.random.default_rng(tile)
    w, b = _random(rng, (3, 3, 512, 300), dtype), _random(rng, (300,), dtype)
    packed = ops.PackedKernel(w)
    algorithm = f"winograd_{tile}x{tile}"
    for n, size in [(1, 5), (3, 9), (1, 5)]:
        x = _random(rng, (n, size, size, 512), dtype)
        plain = ops.conv2d(x, w, b, padding="same", algorithm=algorithm, activation="relu")
        got = ops.conv2d(x, packed, b, padding="same", algorithm=algorithm, activation="relu")
        assert np.array_equal(got, plain), (n, size)
    np.testing.assert_allclose(plain, np.maximum(ref.conv2d(x, w, b, padding="same"), 0),
                               **(dict(rtol=2e-3, atol=2e-2) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)))
    assert list(packed._winograd) == [tile] and packed._packed is None


def test_engine_refuses_winograd_filters_made_for_another_layer():
    rng = np.random.default_rng(10)
    x = _random(rng, (1, 6, 6, 16), np.float32)
    w, w_wide = _random(rng, (3, 3, 16, 24), np.float32), _random(rng, (3, 3, 16, 32), np.float32)
    geometry = (1, 1, 1, 1, 1, 1, 1, 1, 1)
    transformed = {}
    for tile in (2, 4):
        transformed[tile] = np.zeros(_engine.conv2d_winograd_filters_size(x.shape, w.shape, False, geometry, tile),
                                     np.uint8)
        _engine.conv2d_winograd_transform_filters(x, w, transformed[tile], geometry, tile)
    ws = np.empty(max(_engine.conv2d_winograd_workspace_size(x.shape, k.shape, False, geometry, t)
                      for t in (2, 4) for k in (w, w_wide)), np.uint8)
    y, epilogue = np.empty((1, 6, 6, 24), np.float32), (0, 0.0, 0.0, 0.0)
    _engine.conv2d_winograd_forward(x, w, None, y, ws, geometry, 4, epilogue, transformed[4])
    np.testing.assert_allclose(y, ref.conv2d(x, w, padding="same"), rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="packed filters were made for another kernel"):
        _engine.conv2d_winograd_forward(x, w, None, y, ws, geometry, 2, epilogue, transformed[4])
    with pytest.raises(ValueError, match="packed filters were made for another kernel"):
        _engine.conv2d_winograd_forward(x, w, None, y, ws, geometry, 4, epilogue, transformed[4][:-64].copy())
    with pytest.raises(ValueError, match="packed filters were made for another kernel"):
        _engine.conv2d_winograd_forward(x, w_wide, None, np.empty((1, 6, 6, 32), np.float32), ws, geometry, 4,
                                        epilogue, transformed[4])
    with pytest.raises(ValueError, match="workspace is smaller"):
        _engine.conv2d_winograd_transform_filters(x, w, transformed[2][:100].copy(), geometry, 2)


def test_packed_kernel_is_a_snapshot_unless_copy_false():
    rng = np.random.default_rng(6)
    x, w = _random(rng, (2, 8, 8, 32), np.float32), _random(rng, (3, 3, 32, 48), np.float32)
    before = ops.conv2d(x, w)
    snapshot, shared = ops.PackedKernel(w), ops.PackedKernel(w, copy=False)
    assert not np.shares_memory(snapshot.kernel, w) and np.shares_memory(shared.kernel, w)
    w *= 2   # the snapshot (packed or not yet) keeps the values it was made with
    assert np.array_equal(ops.conv2d(x, snapshot), before)
    assert np.array_equal(ops.conv2d(x, snapshot), before)
    assert np.array_equal(ops.conv2d(x, shared), ops.conv2d(x, w))
    with pytest.raises(ValueError, match="read-only"):
        snapshot.kernel[0, 0, 0, 0] = 1.0
    assert "shape=(3, 3, 32, 48)" in repr(snapshot) and "packed" in repr(snapshot)


def test_packed_kernel_pickles_and_copies_as_its_kernel():
    rng = np.random.default_rng(12)
    x, w = _random(rng, (2, 7, 7, 40), np.float32), _random(rng, (3, 3, 40, 36), np.float32)
    packed = ops.PackedKernel(w)
    expected = ops.conv2d(x, packed)
    assert packed._packed is not None
    for clone in (pickle.loads(pickle.dumps(packed)), copy.deepcopy(packed), copy.copy(packed)):
        assert clone._packed is None and not clone._winograd and not clone.kernel.flags.writeable
        assert np.array_equal(clone.kernel, w) and not np.shares_memory(clone.kernel, packed.kernel)
        assert np.array_equal(ops.conv2d(x, clone), expected) and clone._packed is not None


def test_packed_kernel_follows_groups():
    """The packed layout depends on the groups: the same kernel used with another groups
    count is packed again, not read in the wrong layout."""
    rng = np.random.default_rng(7)
    w = _random(rng, (3, 3, 16, 60), np.float32)
    packed = ops.PackedKernel(w)
    for groups in (1, 2, 4, 1):
        x = _random(rng, (2, 9, 9, 16 * groups), np.float32)
        assert np.array_equal(ops.conv2d(x, packed, groups=groups, padding="same"),
                              ops.conv2d(x, w, groups=groups, padding="same")), groups


def test_packed_kernel_bad_input():
    with pytest.raises(TypeError, match="PackedKernel"):
        ops.PackedKernel("not a kernel")
    rng = np.random.default_rng(8)
    packed = ops.PackedKernel(_random(rng, (3, 3, 8, 16), np.float32))
    with pytest.raises(ValueError, match=r"input has 4 channels .* kernel expects 8"):
        ops.conv2d(_random(rng, (1, 6, 6, 4), np.float32), packed)
    with pytest.raises(TypeError, match="float64"):
        ops.conv2d(_random(rng, (1, 6, 6, 8), np.float64), packed)


def test_engine_refuses_packed_filters_made_for_another_kernel():
    """The binding's safety net: a packed buffer whose header does not match the call."""
    rng = np.random.default_rng(9)
    x = _random(rng, (1, 8, 8, 144), np.float32)
    w, w_other = _random(rng, (3, 3, 144, 40), np.float32), _random(rng, (3, 3, 144, 48), np.float32)
    geometry = (1, 1, 1, 1, 1, 1, 1, 1, 1)
    nbytes = _engine.conv2d_packed_filters_size(x.shape, w_other.shape, False, geometry)
    assert nbytes > 0
    packed_other = np.zeros(nbytes, np.uint8)
    _engine.conv2d_pack_filters(x, w_other, packed_other, geometry)
    ws = np.empty(max(_engine.conv2d_workspace_size(x.shape, k.shape, dtype_is_f64, geometry)
                      for k in (w, w_other) for dtype_is_f64 in (False, True)), np.uint8)
    y = np.empty((1, 8, 8, 40), np.float32)
    epilogue = (0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="packed filters were made for another kernel"):
        _engine.conv2d_forward(x, w, None, y, ws, geometry, epilogue, packed_other)
    with pytest.raises(ValueError, match="packed filters were made for another kernel"):
        _engine.conv2d_forward(x, w, None, y, ws, geometry, epilogue, np.zeros(nbytes, np.uint8))
    with pytest.raises(ValueError, match="packed filters were made for another kernel"):
        _engine.conv2d_forward(x, w_other, None, np.empty((1, 8, 8, 48), np.float32), ws, geometry,
                               epilogue, packed_other[:32].copy())
    with pytest.raises(ValueError, match="workspace is smaller"):
        _engine.conv2d_pack_filters(x, w_other, packed_other[:-1].copy(), geometry)
    # float64 input with a float32 packing: refused too
    packed_f64 = np.zeros(_engine.conv2d_packed_filters_size(x.shape, w.shape, True, geometry), np.uint8)
    _engine.conv2d_pack_filters(x.astype(np.float64), w.astype(np.float64), packed_f64, geometry)
    with pytest.raises(ValueError, match="packed filters were made for another kernel"):
        _engine.conv2d_forward(x, w, None, y, ws, geometry, epilogue, packed_f64)


# ------------------------------------------------------------------ models

def _model(seed=0):
    rng = np.random.default_rng(seed)
    model = models.Sequential([
        layers.Input((10, 10, 3)),
        layers.Conv2D(8, 3, activation="relu"),
        layers.Conv2D(44, 3, padding="same", activation="relu"),
        layers.SeparableConv2D(40, 3, padding="same"),
        layers.Conv2D(60, 1),
        layers.Flatten(),
        layers.Dense(32, activation="relu"),
        layers.Dense(5),
    ])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = rng.random((23, 10, 10, 3), dtype=np.float32)
    y = rng.integers(0, 5, 23)
    return model, x, y


class _RecordingPackedKernel(ops.PackedKernel):
    made = []

    def __init__(self, kernel, **kwargs):
        super().__init__(kernel, **kwargs)
        _RecordingPackedKernel.made.append(self)


@pytest.fixture
def recorded(monkeypatch):
    _RecordingPackedKernel.made = []
    monkeypatch.setattr(base.ops, "PackedKernel", _RecordingPackedKernel)
    return _RecordingPackedKernel.made


def test_predict_packs_each_kernel_once_and_matches_batch_calls(recorded, threads):
    model, x, _ = _model()
    expected = np.concatenate([model(x[i:i + 5], training=False) for i in range(0, len(x), 5)])
    assert not recorded   # plain calls never pack
    got = model.predict(x, batch_size=5, verbose=0)
    assert np.array_equal(got, expected)
    # one per conv/dense kernel, made at its second batch; the GEMM layers' copies were read, not
    # those of the 3-channel stem (direct low-channel kernel) or the 5-unit output (narrow GEMM)
    assert [p.kernel.shape for p in recorded] == [(3, 3, 3, 8), (3, 3, 8, 44), (1, 1, 44, 40), (1, 1, 40, 60),
                                                  (3840, 32), (32, 5)]
    assert [p._packed is not None for p in recorded] == [False, True, True, True, True, False]
    assert getattr(base._inference, "kernels", None) is None   # dropped with the call
    recorded.clear()
    assert np.array_equal(model.predict(x, batch_size=32, verbose=0), model(x, training=False))
    assert not recorded   # a single batch packs nothing


def test_evaluate_and_validation_use_packed_kernels(recorded):
    model, x, y = _model(1)
    loss = model.evaluate(x, y, batch_size=5, verbose=0)
    assert recorded
    plain = np.mean([model.test_on_batch(x[i:i + 5], y[i:i + 5]) * len(x[i:i + 5]) for i in range(0, 23, 5)]) \
        * 5 / 23
    np.testing.assert_allclose(loss, plain, rtol=1e-6)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y))
    assert len(history.history["val_loss"]) == 2


def test_weights_changed_between_calls_or_by_callbacks_are_used(recorded):
    model, x, _ = _model(2)
    hidden = model.layers[-2].kernel   # Dense(32): its packed copy is read at batches of 5

    def batch_by_batch():
        return np.concatenate([model(x[i:i + 5], training=False) for i in range(0, len(x), 5)])

    first = model.predict(x, batch_size=5, verbose=0)
    assert np.array_equal(first, batch_by_batch())
    hidden.assign(hidden.numpy() * -0.5)   # the next predict packs the new values
    second = model.predict(x, batch_size=5, verbose=0)
    assert np.array_equal(second, batch_by_batch()) and not np.array_equal(second, first)
    assert any(p.kernel.shape == hidden.shape and p._packed is not None for p in recorded)

    original = hidden.numpy()

    class ChangeHiddenKernel(pycnn.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            if batch == 1:
                hidden.assign(original * 2.0)

    recorded.clear()
    out = model.predict(x, batch_size=5, verbose=0, callbacks=[ChangeHiddenKernel()])
    assert not recorded   # callbacks may change weights between batches: nothing is packed
    after = batch_by_batch()
    hidden.assign(original)
    before = batch_by_batch()
    assert np.array_equal(out[:10], before[:10]) and np.array_equal(out[10:], after[10:])
    assert not np.array_equal(out[10:], before[10:])


def test_predict_transforms_winograd_filters_once(recorded):
    model = models.Sequential([layers.Input((12, 12, 16)),
                               layers.Conv2D(32, 3, padding="same", algorithm="winograd_4x4", activation="relu"),
                               layers.GlobalAveragePooling2D(), layers.Dense(3)])
    x = np.random.default_rng(11).random((9, 12, 12, 16), dtype=np.float32)
    expected = np.concatenate([model(x[i:i + 2], training=False) for i in range(0, 9, 2)])
    assert np.array_equal(model.predict(x, batch_size=2, verbose=0), expected)
    assert [list(p._winograd) for p in recorded] == [[4], []]
