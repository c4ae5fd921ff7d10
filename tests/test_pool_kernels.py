"""The pooling kernel's paths (csrc/pool_impl.h) against the NumPy references.

The kernel works on vectors of channels in groups of constant width (the
last vector of a group overlapping its neighbour when the lanes do not divide
the channels), has copies for narrow channel counts, stores dx directly when
windows do not overlap (zeroing cells no window covers) and adds into it when
they do, splits one image by row bands across threads (with overlapping
windows, each band adds only into the dx rows it owns), and
is built twice for float32 (portable and AVX2, chosen with PYCNN_ISA).  So the
sweeps here vary the channel count across those widths, the window overlap
(none, gaps, one axis, both), padding, ties, NaN and infinities, threads and
ISA; the references are tests/reference.py (float64) and PyTorch.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pycnn
from pycnn import ops
from tests import reference as ref

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Copies for 1, 2, 3, 4, 6, 8, 16 channels; 4- and 8-lane vectors; groups of 16 or 32 channels.
CHANNELS = [1, 2, 3, 5, 6, 7, 8, 9, 13, 16, 20, 33, 37, 70]

# (pool_size, strides, padding): no overlap, gaps between windows, overlap on one
# axis or both, clipped windows under "same" padding.
WINDOWS = [
    (2, 2, "valid"), (2, 2, "same"), (3, 3, "same"), (2, 3, "valid"), ((2, 3), (3, 1), "valid"),
    (3, 2, "valid"), (3, 2, "same"), (3, 1, "same"), ((3, 2), (2, 2), "same"), ((1, 4), (1, 2), "valid"),
]


@pytest.fixture(scope="module", autouse=True)
def restore_threads():
    before = pycnn.get_num_threads()
    yield
    pycnn.set_num_threads(before)


def _check_max(x, dy, pool, strides, padding):
    y = ops.max_pool2d(x, pool, strides, padding)
    np.testing.assert_array_equal(y, ref.max_pool2d(x, pool, strides, padding).astype(x.dtype))
    dx = ops.max_pool2d_backward(dy, x, pool, strides, padding)
    expected = ref.max_pool2d_backward(dy, x, pool, strides, padding)
    if x.dtype == np.float64:
        # Same cells, same (oy, ox) order of additions from 0: exactly the reference.
        np.testing.assert_array_equal(dx, expected)
    else:
        np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", CHANNELS)
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_pools_match_reference_across_channel_widths(rng, dtype, c, window):
    pool, strides, padding = window
    x = rng.standard_normal((2, 7, 9, c)).astype(dtype)
    y_shape = ops.max_pool2d(x, pool, strides, padding).shape
    dy = rng.standard_normal(y_shape).astype(dtype)
    _check_max(x, dy, pool, strides, padding)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(ops.avg_pool2d(x, pool, strides, padding),
                               ref.avg_pool2d(x, pool, strides, padding), **tol)
    np.testing.assert_allclose(ops.avg_pool2d_backward(dy, x, pool, strides, padding),
                               ref.avg_pool2d_backward(dy, x, pool, strides, padding), **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [1, 6, 8, 37])
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_max_pool_ties_nan_and_infinities_follow_the_reference(rng, dtype, c, window):
    """Which cell gets the gradient: the first maximal one in row-major order, the
    first NaN when there is one; +0 and -0 tie; an all -inf window gives it to its first cell."""
    pool, strides, padding = window
    x = rng.integers(-1, 2, size=(3, 8, 7, c)).astype(dtype)        # many ties
    x[x == 0] = rng.choice(np.array([0.0, -0.0], dtype), size=int((x == 0).sum()))
    x[0] = -np.inf                                                   # whole image -inf
    specials = rng.random(x[1:].shape)
    x[1:][specials < 0.05] = np.nan
    x[1:][(specials >= 0.05) & (specials < 0.1)] = np.inf
    x[1:][(specials >= 0.1) & (specials < 0.15)] = -np.inf
    y_shape = ops.max_pool2d(x, pool, strides, padding).shape
    dy = rng.integers(1, 9, size=y_shape).astype(dtype)             # exact sums in any order
    _check_max(x, dy, pool, strides, padding)
    np.testing.assert_array_equal(ops.max_pool2d_backward(dy, x, pool, strides, padding),
                                  ref.max_pool2d_backward(dy, x, pool, strides, padding))


@pytest.mark.parametrize("window", [(2, 2, "valid"), (3, 2, "same")], ids=str)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_negative_zero_gradient_lands_as_positive_zero(window, mode):
    # Stored (no overlap) or added to a zeroed dx (overlap): the same +0 bytes.
    pool, strides, padding = window
    x = np.arange(2 * 6 * 6 * 9, dtype=np.float32).reshape(2, 6, 6, 9)
    backward = ops.max_pool2d_backward if mode == "max" else ops.avg_pool2d_backward
    dy = np.full(ops.max_pool2d(x, pool, strides, padding).shape, -0.0, np.float32)
    dx = backward(dy, x, pool, strides, padding)
    assert dx.tobytes() == np.zeros_like(x).tobytes()


@pytest.mark.parametrize("n", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_zero_and_one(rng, n, dtype):
    x = rng.standard_normal((n, 5, 6, 7)).astype(dtype)
    dy = rng.standard_normal((n, 2, 3, 7)).astype(dtype)
    _check_max(x, dy, 2, 2, "valid")
    assert ops.max_pool2d_backward(dy, x, 2).shape == x.shape


def _run_threads(fn, threads):
    pycnn.set_num_threads(threads)
    if pycnn.get_num_threads() != threads:
        pytest.skip("the engine was built without OpenMP: it always runs on one thread")
    return fn()


# One image large enough to be split (2**18 elements and more) into row bands, with
# windows that overlap the band boundaries (3x3 stride 1 reaches two rows into the
# next band, 5x5 stride 2 with padding two and a half); and two images at three
# threads (two bands per image).
BAND_SPLIT_CASES = [
    ((1, 64, 66, 64), (2, 2, "valid")),
    ((1, 65, 67, 61), (3, 3, "same")),
    ((1, 66, 64, 70), (3, 2, "same")),
    ((1, 130, 129, 17), ((3, 2), (1, 2), "valid")),
    ((1, 61, 59, 24), (3, 1, "same")),
    ((1, 67, 65, 16), (5, 2, "same")),
    ((2, 64, 64, 40), (3, 2, "same")),
    ((2, 64, 64, 40), (2, 3, "valid")),
]


@pytest.mark.parametrize("shape, window", BAND_SPLIT_CASES, ids=str)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_one_large_image_is_bit_identical_for_any_thread_count(rng, shape, window, mode):
    pool, strides, padding = window
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < 0.001] = np.nan
    forward = ops.max_pool2d if mode == "max" else ops.avg_pool2d
    backward = ops.max_pool2d_backward if mode == "max" else ops.avg_pool2d_backward
    dy = rng.standard_normal(forward(x, pool, strides, padding).shape).astype(np.float32)
    runs = [_run_threads(lambda: (forward(x, pool, strides, padding), backward(dy, x, pool, strides, padding)), t)
            for t in (1, 2, 3)]
    for y, dx in runs[1:]:
        assert y.tobytes() == runs[0][0].tobytes()
        assert dx.tobytes() == runs[0][1].tobytes()
    y, dx = runs[0]
    reference_forward = ref.max_pool2d if mode == "max" else ref.avg_pool2d
    reference_backward = ref.max_pool2d_backward if mode == "max" else ref.avg_pool2d_backward
    np.testing.assert_allclose(y, reference_forward(x, pool, strides, padding), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dx, reference_backward(dy, x, pool, strides, padding), rtol=1e-5, atol=1e-5)


def test_max_pool_matches_torch_on_wide_channels(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((3, 15, 14, 70)).astype(np.float32)   # two groups and a tail
    for pool, stride, pad in [(2, 2, 0), (3, 2, 1), (3, 1, 1)]:
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_()
        yt = F.max_pool2d(xt, pool, stride, pad)
        dy = rng.standard_normal(yt.shape).astype(np.float32)
        yt.backward(torch.from_numpy(dy))
        padding = ((pad, pad), (pad, pad))
        dy_nhwc = np.ascontiguousarray(dy.transpose(0, 2, 3, 1))
        y = ops.max_pool2d(x, pool, stride, padding)
        np.testing.assert_array_equal(y, yt.detach().numpy().transpose(0, 2, 3, 1))
        dx = ops.max_pool2d_backward(dy_nhwc, x, pool, stride, padding)
        np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-6, atol=1e-6)


# Runs in a subprocess per ISA (chosen when the engine loads): writes every output's bytes.
_ISA_OUTPUTS = textwrap.dedent(r'''
    import sys
    import numpy as np
    from pycnn import ops
    rng = np.random.default_rng(5)
    out = []
    for c in (3, 6, 8, 13, 37, 70):
        x = rng.integers(-2, 3, size=(2, 11, 10, c)).astype(np.float32)
        x[rng.random(x.shape) < 0.05] = np.nan
        x[rng.random(x.shape) < 0.05] = -np.inf
        for pool, strides, padding in [(2, 2, "valid"), (3, 2, "same"), (3, 1, "same"), (2, 3, "same")]:
            for forward, backward in [(ops.max_pool2d, ops.max_pool2d_backward),
                                      (ops.avg_pool2d, ops.avg_pool2d_backward)]:
                y = forward(x, pool, strides, padding)
                dy = rng.standard_normal(y.shape).astype(np.float32)
                out += [y, backward(dy, x, pool, strides, padding)]
    np.savez(sys.argv[1], *out)
''')


def test_float32_paths_of_every_isa_are_bit_identical(tmp_path):
    from pycnn.bench import cpu_flags
    flags = cpu_flags()
    isas = ["ref"] + [isa for isa, needs in (("avx2", {"avx2", "fma"}), ("avx512", {"avx512f", "avx512vl"}))
                      if needs <= flags]
    results = {}
    for isa in isas:
        path = tmp_path / f"{isa}.npz"
        env = dict(os.environ, PYCNN_ISA=isa, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
        run = subprocess.run([sys.executable, "-c", _ISA_OUTPUTS, str(path)], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        with np.load(path) as data:
            results[isa] = [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]
    for isa in isas[1:]:
        for i, (a, b) in enumerate(zip(results["ref"], results[isa])):
            assert a.tobytes() == b.tobytes(), f"output {i} differs between ref and {isa}"
