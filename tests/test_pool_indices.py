"""Stored max-pool indices: max_pool*d(..., return_indices=True) and
max_pool*d_backward(..., indices=...).

The forward writes, per output element, the position iy * W + ix of the cell
the backward routes its gradient to; the backward from those indices must give
exactly the bytes of the backward that finds the cells again in x (same cell
rule for ties, NaN, infinities and padding; the same additions in the same
order).  References: tests/reference.py (naive NumPy) and PyTorch's
return_indices.  The kernels are vectorized over channels with copies for
narrow channel counts and 2x2/3x3 windows, store dx without overlap and add
into it with overlap, and split one image into row bands across threads, so the
sweeps vary exactly those.
"""
import numpy as np
import pytest

import pycnn
from pycnn import ops
from tests import reference as ref
from tests.test_pool_kernels import BAND_SPLIT_CASES, _run_threads

# Copies for 1, 3, 6, 16 channels; 4- and 8-lane vectors with overlapping or
# half vectors; groups of 16 or 32 channels and a tail.
CHANNELS = [1, 2, 3, 5, 6, 8, 13, 16, 37, 70]

# (pool_size, strides, padding): no overlap, gaps, overlap on one axis or both,
# windows clipped by "same" padding.
WINDOWS = [
    (2, 2, "valid"), (2, 2, "same"), (3, 3, "same"), (2, 3, "valid"), ((2, 3), (3, 1), "valid"),
    (3, 2, "valid"), (3, 2, "same"), (3, 1, "same"), ((3, 2), (2, 2), "same"), ((1, 4), (1, 2), "valid"),
]


@pytest.fixture(autouse=True)
def restore_threads():
    before = pycnn.get_num_threads()
    yield
    pycnn.set_num_threads(before)


def _special_values(rng, shape, dtype):
    """Many ties (integers, +0 and -0), NaN, +-inf, and a whole image of -inf."""
    x = rng.integers(-1, 2, size=shape).astype(dtype)
    zeros = x == 0
    x[zeros] = rng.choice(np.array([0.0, -0.0], dtype), size=int(zeros.sum()))
    specials = rng.random(shape)
    x[specials < 0.05] = np.nan
    x[(specials >= 0.05) & (specials < 0.1)] = np.inf
    x[(specials >= 0.1) & (specials < 0.15)] = -np.inf
    x[0] = -np.inf
    return x


def _check_2d(x, pool, strides, padding, dy=None):
    y, indices = ops.max_pool2d(x, pool, strides, padding, return_indices=True)
    assert indices.dtype == np.int32 and indices.shape == y.shape
    assert y.tobytes() == ops.max_pool2d(x, pool, strides, padding).tobytes()
    np.testing.assert_array_equal(indices, ref.max_pool2d_indices(x, pool, strides, padding))
    if dy is None:
        dy = np.random.default_rng(1).integers(1, 9, size=y.shape).astype(x.dtype)   # exact sums
    dx = ops.max_pool2d_backward(dy, x, pool, strides, padding, indices=indices)
    assert dx.tobytes() == ops.max_pool2d_backward(dy, x, pool, strides, padding).tobytes()
    np.testing.assert_array_equal(dx, ref.max_pool2d_backward(dy, x, pool, strides, padding))
    return y, indices, dx


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", CHANNELS)
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_indices_on_random_data_match_the_reference_and_the_recompute_path(rng, dtype, c, window):
    pool, strides, padding = window
    x = rng.standard_normal((2, 7, 9, c)).astype(dtype)
    _check_2d(x, pool, strides, padding)
    # Non-integer gradients: the same additions in the same order give the same bytes.
    y, indices = ops.max_pool2d(x, pool, strides, padding, return_indices=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.max_pool2d_backward(dy, x, pool, strides, padding, indices=indices)
    assert dx.tobytes() == ops.max_pool2d_backward(dy, x, pool, strides, padding).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [1, 3, 6, 8, 16, 37])
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_ties_nan_and_infinities_pick_the_same_cell_as_the_recompute_path(rng, dtype, c, window):
    pool, strides, padding = window
    x = _special_values(rng, (3, 8, 7, c), dtype)
    _check_2d(x, pool, strides, padding)


@pytest.mark.parametrize("window", WINDOWS[:4], ids=str)
def test_nan_and_infinite_gradients_land_in_the_same_cells(rng, window):
    pool, strides, padding = window
    x = _special_values(rng, (2, 8, 9, 6), np.float32)
    y, indices = ops.max_pool2d(x, pool, strides, padding, return_indices=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dy[rng.random(y.shape) < 0.1] = np.nan
    dy[rng.random(y.shape) < 0.1] = -np.inf
    np.testing.assert_array_equal(ops.max_pool2d_backward(dy, x, pool, strides, padding, indices=indices),
                                  ops.max_pool2d_backward(dy, x, pool, strides, padding))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [1, 6, 9])
@pytest.mark.parametrize("window", [(2, None, "valid"), (3, 2, "same"), (3, 1, "valid"), (4, 3, "same")], ids=str)
def test_1d_indices_are_positions_along_the_length(rng, dtype, c, window):
    pool, strides, padding = window
    x = _special_values(rng, (3, 17, c), dtype)
    y, indices = ops.max_pool1d(x, pool, strides, padding, return_indices=True)
    assert indices.dtype == np.int32 and indices.shape == y.shape
    assert y.tobytes() == ops.max_pool1d(x, pool, strides, padding).tobytes()
    np.testing.assert_array_equal(indices, ref.max_pool1d_indices(x, pool, strides, padding))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = ops.max_pool1d_backward(dy, x, pool, strides, padding, indices=indices)
    assert dx.tobytes() == ops.max_pool1d_backward(dy, x, pool, strides, padding).tobytes()
    np.testing.assert_allclose(dx, ref.max_pool1d_backward(dy, x, pool, strides, padding), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rank", [1, 2])
def test_channels_first_indices_come_back_and_go_in_channels_first(rng, rank):
    shape = (2, 5, 9, 11)[: rank + 2]
    x = _special_values(rng, shape, np.float64)
    forward = ops.max_pool2d if rank == 2 else ops.max_pool1d
    backward = ops.max_pool2d_backward if rank == 2 else ops.max_pool1d_backward
    y, indices = forward(x, 3, 2, "same", data_format="channels_first", return_indices=True)
    last = np.moveaxis(x, 1, -1)
    y_last, indices_last = forward(last, 3, 2, "same", return_indices=True)
    np.testing.assert_array_equal(y, np.moveaxis(y_last, -1, 1))
    np.testing.assert_array_equal(indices, np.moveaxis(indices_last, -1, 1))
    dy = rng.standard_normal(y.shape)
    dx = backward(dy, x, 3, 2, "same", data_format="channels_first", indices=indices)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx, backward(dy, x, 3, 2, "same", data_format="channels_first"))


def test_indices_equal_pytorch_return_indices(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((2, 37, 15, 14)).astype(np.float32)   # NCHW, distinct values (no ties)
    for pool, stride, pad in [(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 3, 0)]:
        xt = torch.from_numpy(x).requires_grad_()
        yt, it = F.max_pool2d(xt, pool, stride, pad, return_indices=True)
        dy = rng.standard_normal(yt.shape).astype(np.float32)
        yt.backward(torch.from_numpy(dy))
        padding = ((pad, pad), (pad, pad))
        y, indices = ops.max_pool2d(x, pool, stride, padding, data_format="channels_first", return_indices=True)
        np.testing.assert_array_equal(y, yt.detach().numpy())
        np.testing.assert_array_equal(indices, it.numpy())
        dx = ops.max_pool2d_backward(dy, x, pool, stride, padding, data_format="channels_first", indices=indices)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("n", [0, 1])
def test_batch_zero_and_one(rng, n):
    x = rng.standard_normal((n, 6, 5, 7)).astype(np.float32)
    y, indices = ops.max_pool2d(x, 2, return_indices=True)
    assert y.shape == indices.shape == (n, 3, 2, 7)
    dx = ops.max_pool2d_backward(np.ones_like(y), x, 2, indices=indices)
    assert dx.tobytes() == ops.max_pool2d_backward(np.ones_like(y), x, 2).tobytes()


# One image split into row bands (windows reaching across band edges), and two
# images at three threads (two bands per image): the recompute path's cases.
@pytest.mark.parametrize("shape, window", BAND_SPLIT_CASES, ids=str)
def test_bit_identical_for_any_thread_count(rng, shape, window):
    pool, strides, padding = window
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < 0.001] = np.nan
    dy = rng.standard_normal(ops.max_pool2d(x, pool, strides, padding).shape).astype(np.float32)

    def passes():
        y, indices = ops.max_pool2d(x, pool, strides, padding, return_indices=True)
        return y, indices, ops.max_pool2d_backward(dy, x, pool, strides, padding, indices=indices)

    runs = [_run_threads(passes, t) for t in (1, 2, 3)]
    for run in runs[1:]:
        for a, b in zip(runs[0], run):
            assert a.tobytes() == b.tobytes()
    y, indices, dx = runs[0]
    assert dx.tobytes() == ops.max_pool2d_backward(dy, x, pool, strides, padding).tobytes()
    np.testing.assert_array_equal(indices, ref.max_pool2d_indices(x, pool, strides, padding))


# ------------------------------------------------------------------ errors

def _forward(rng, shape=(2, 6, 8, 5), pool=2, strides=None, padding="valid"):
    x = rng.standard_normal(shape).astype(np.float32)
    y, indices = ops.max_pool2d(x, pool, strides, padding, return_indices=True)
    return x, np.ones_like(y), indices


@pytest.mark.parametrize("bad, error, fragments", [
    (lambda i: i.astype(np.int64), TypeError, ["indices must have dtype int32", "int64"]),
    (lambda i: i.astype(np.float32), TypeError, ["indices must have dtype int32", "float32"]),
    (lambda i: i.tolist(), TypeError, ["indices must be the int32 NumPy array", "list"]),
    (lambda i: i[:, :2], ValueError, ["indices must have the forward output's shape (2, 3, 4, 5)",
                                      "got (2, 2, 4, 5)"]),
    (lambda i: i[..., None], ValueError, ["indices must have the forward output's shape", "(2, 3, 4, 5, 1)"]),
])
def test_wrong_indices_raise_errors_naming_them(rng, bad, error, fragments):
    x, dy, indices = _forward(rng)
    with pytest.raises(error) as info:
        ops.max_pool2d_backward(dy, x, 2, indices=bad(indices))
    for fragment in fragments:
        assert fragment in str(info.value)
    assert str(info.value).startswith("max_pool2d_backward: ")


def test_channels_first_shape_error_names_the_channels_first_shape(rng):
    x = rng.standard_normal((2, 5, 6, 8)).astype(np.float32)
    y, indices = ops.max_pool2d(x, 2, data_format="channels_first", return_indices=True)
    with pytest.raises(ValueError, match=r"shape \(2, 5, 3, 4\); got \(2, 3, 4, 5\)"):
        ops.max_pool2d_backward(np.ones_like(y), x, 2, data_format="channels_first",
                                indices=np.moveaxis(indices, 1, -1))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape, pool, strides, padding", [
    ((2, 6, 8, 5), 2, None, "valid"),
    ((2, 9, 9, 6), 3, 2, "same"),
    ((1, 70, 70, 64), 3, 2, "same"),     # banded at 2 threads: the window check covers every band
])
@pytest.mark.parametrize("forge", ["neighbour window", "other row", "negative", "past the plane", "int32 max"])
def test_forged_indices_raise_value_error_without_writing_outside_dx(rng, threads, shape, pool, strides, padding,
                                                                     forge):
    x, dy, indices = _forward(rng, shape, pool, strides, padding)
    w = shape[2]
    position = int(indices[-1, 0, 0, -1])
    indices[-1, 0, 0, -1] = {"neighbour window": position + 2 * w if pool == 2 else position + 3 * w,
                             "other row": position + 4 * w,
                             "negative": -1,
                             "past the plane": shape[1] * shape[2],
                             "int32 max": 2**31 - 1}[forge]
    pycnn.set_num_threads(threads)
    with pytest.raises(ValueError, match="max_pool2d_backward: indices must be positions iy . w . ix inside"):
        ops.max_pool2d_backward(dy, x, pool, strides, padding, indices=indices)
    with pytest.raises(ValueError, match="max_pool1d_backward: indices must be positions"):
        x1 = x[:, 0]
        _, i1 = ops.max_pool1d(x1, pool, strides, padding, return_indices=True)
        i1[0, -1, 0] = -5
        ops.max_pool1d_backward(np.ones(i1.shape, np.float32), x1, pool, strides, padding, indices=i1)


def test_non_contiguous_and_byte_swapped_indices_are_copied(rng):
    x, dy, indices = _forward(rng)
    expected = ops.max_pool2d_backward(dy, x, 2)
    strided = np.zeros(indices.shape + (2,), np.int32)[..., 0]
    strided[...] = indices
    assert not strided.flags.c_contiguous
    assert ops.max_pool2d_backward(dy, x, 2, indices=strided).tobytes() == expected.tobytes()
    swapped = indices.astype(">i4")
    assert ops.max_pool2d_backward(dy, x, 2, indices=swapped).tobytes() == expected.tobytes()


def test_a_plane_beyond_int32_positions_is_refused(rng):
    x = np.zeros((0, 50000, 50000, 1), np.float32)   # 2.5e9 positions, no data
    with pytest.raises(ValueError, match=r"max_pool2d: the image plane must have at most 2\*\*31 - 1 positions"):
        ops.max_pool2d(x, 2, return_indices=True)
    dy = np.zeros((0, 25000, 25000, 1), np.float32)
    with pytest.raises(ValueError, match="max_pool2d_backward: the image plane must have at most"):
        ops.max_pool2d_backward(dy, x, 2, indices=np.zeros(dy.shape, np.int32))
    assert ops.max_pool2d(x, 2).shape == dy.shape   # without indices it works as before


# ------------------------------------------------------------------ layers

@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("rank, pool, strides, padding", [
    (2, (2, 2), None, "valid"), (2, (3, 3), (2, 2), "same"), (1, 2, None, "valid"), (1, 3, 1, "same"),
])
def test_max_pooling_layers_use_indices_and_match_the_recompute_ops(rng, data_format, rank, pool, strides,
                                                                    padding):
    from pycnn.layers import MaxPooling1D, MaxPooling2D
    layer_class = MaxPooling2D if rank == 2 else MaxPooling1D
    layer = layer_class(pool, strides, padding, data_format=data_format)
    x = _special_values(rng, (3, 6, 11, 7)[: rank + 2], np.float32)
    forward = ops.max_pool2d if rank == 2 else ops.max_pool1d
    backward = ops.max_pool2d_backward if rank == 2 else ops.max_pool1d_backward
    dy = None
    # A training call keeps the argmax; an inference call does not (its backward searches x).
    for training, stores in ((True, True), (False, False)):
        y = layer(x, training=training)
        assert (layer._indices is not None) == stores
        if stores:
            assert layer._indices.dtype == np.int32
        assert y.tobytes() == forward(x, pool, strides, padding, data_format=data_format).tobytes()
        dy = rng.standard_normal(y.shape).astype(np.float32) if dy is None else dy
        dx = layer.backward(dy)
        assert dx.tobytes() == backward(dy, x, pool, strides, padding, data_format=data_format).tobytes()


def test_max_pooling_layer_falls_back_to_the_search_beyond_int32_planes():
    from pycnn.layers import MaxPooling2D
    layer = MaxPooling2D()
    x = np.zeros((0, 50000, 50000, 1), np.float32)
    y = layer(x, training=True)
    assert layer._indices is None and y.shape == (0, 25000, 25000, 1)
    assert layer.backward(np.zeros(y.shape, np.float32)).shape == x.shape
