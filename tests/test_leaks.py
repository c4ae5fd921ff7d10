"""Memory and reference leaks per op, error paths included (reliability.md B3).

For every case of tests/leak_driver.py (each op's forward and backward, the
error branches of pycnn.ops and of the C binding, and a small model's
train_on_batch / fit / predict / save / load / load_weights / corrupt-file
load) the calls must keep
  * traced memory (tracemalloc: Python objects and NumPy buffers; the engine
    itself allocates nothing, the caller passes its workspace) under 64 KiB,
  * process RSS growth (catches a C-level malloc leak tracemalloc cannot see)
    under 2 MiB,
  * the reference counts of every input array unchanged
per 10,000 calls.  The calls are measured in WINDOWS equal windows (see
leak_rate): traced growth is the smallest window times WINDOWS, because a leak
grows in every window while a filling cache does not; RSS growth is the mean window
but the largest times WINDOWS (one allocator heap step is not a leak).  To keep CI short the ops run LEAK_CALLS = 2,000 calls and
the model cases MODEL_CALLS = 200 calls on small shapes, with both bounds
scaled by calls / 10,000 (ops: 12.8 KiB traced, 410 KiB RSS), but not below
TRACED_FLOOR = 8 KiB and RSS_FLOOR = 256 KiB (model cases: 8 KiB traced, 256
KiB RSS for 200 calls).  The floors absorb NumPy's own caches, which keep
filling for the first few thousand calls (standalone, np.dtype(a.dtype.name)
retains ~2.8 KB over its first 2,000 calls and nothing after; a training step
reaches that code ~10 times), and one heap growth step of the allocator.  PYCNN_LEAK_CALLS=10000 and
PYCNN_MODEL_LEAK_CALLS=10000 give the full figures.  tracemalloc starts
before the warm-up, so state an op legitimately keeps (a model's cached
activations, NumPy's caches) is counted at both ends and only growth shows.
The engine runs single-threaded here so OpenMP thread start-up does not
disturb RSS; the threaded paths are covered by tests/test_interrupts_threads.py.
"""
import gc
import os
import sys
import tracemalloc

import numpy as np
import pytest

from tests import leak_driver

LEAK_CALLS = int(os.environ.get("PYCNN_LEAK_CALLS", "2000"))
MODEL_CALLS = int(os.environ.get("PYCNN_MODEL_LEAK_CALLS", "200"))
RSS_FLOOR = 256 * 1024
TRACED_FLOOR = 8 * 1024
# Under AddressSanitizer (the sanitizer pass of .ci/run) freed memory sits in ASan's
# quarantine, so RSS says nothing about leaks there; LeakSanitizer covers C leaks instead.
SANITIZED = "asan" in os.environ.get("LD_PRELOAD", "")


def limits(calls):
    """(traced, RSS) bounds for `calls` calls: 64 KiB and 2 MiB per 10,000 calls, not below the floors."""
    return (max(64 * 1024 * calls / 10_000, TRACED_FLOOR),
            max(2 * 1024 * 1024 * calls / 10_000, RSS_FLOOR))


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def input_arrays():
    """Every module-level array of the driver: the inputs the cases pass in."""
    return {name: value for name, value in vars(leak_driver).items() if isinstance(value, np.ndarray)}


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    from pycnn import ops
    before = ops.get_num_threads()
    ops.set_num_threads(1)
    yield
    ops.set_num_threads(before)


WINDOWS = 5


def measure(fn, calls, warmup):
    """Per-window growth [(traced bytes, RSS bytes)] over WINDOWS windows of calls / WINDOWS
    calls each, after `warmup` calls."""
    per_window = max(calls // WINDOWS, 1)
    growth = []
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(warmup):
            fn()
        for _ in range(WINDOWS):
            gc.collect()
            traced0, rss0 = tracemalloc.get_traced_memory()[0], rss_bytes()
            for _ in range(per_window):
                fn()
            gc.collect()
            growth.append((tracemalloc.get_traced_memory()[0] - traced0, rss_bytes() - rss0))
    finally:
        tracemalloc.stop()
    return growth


def leak_rate(growth):
    """(traced, RSS) growth per window.  Traced: the smallest window -- a leak grows in every
    window, while a cache that fills up (NumPy's keep filling for thousands of calls) or
    an array swapped for one of another size moves only some.  RSS: the mean of the windows
    but the largest, since pages arrive in steps and a slow C leak shows in only some
    windows, while one heap growth step of the allocator (glibc raising its mmap threshold
    after a large free: ~0.8 MB once) lands in a single window."""
    rss = sorted(g[1] for g in growth)[:-1]
    return min(g[0] for g in growth), sum(rss) / len(rss)


def check_no_leak(name, fn, calls, warmup):
    gc.collect()   # drop references held by earlier tests' tracebacks
    arrays = input_arrays()
    refs_before = {k: sys.getrefcount(v) for k, v in arrays.items()}
    growth = measure(fn, calls, warmup)
    refs_after = {k: sys.getrefcount(v) for k, v in arrays.items()}
    changed = {k: (refs_before[k], refs_after[k]) for k in arrays if refs_before[k] != refs_after[k]}
    assert not changed, f"{name}: input reference counts changed (before, after): {changed}"
    traced, rss = leak_rate(growth)
    traced_limit, rss_limit = limits(calls)
    # Per-window rates scaled to all `calls` calls, against the bounds for `calls` calls.
    assert traced * WINDOWS < traced_limit, f"{name}: traced memory grows {traced} B per {calls // WINDOWS} calls ({growth})"
    assert SANITIZED or rss * WINDOWS < rss_limit, f"{name}: RSS grows {rss} B per {calls // WINDOWS} calls ({growth})"


@pytest.mark.parametrize("name", list(leak_driver.CASES))
def test_no_leak(name):
    check_no_leak(name, leak_driver.CASES[name], LEAK_CALLS, warmup=500)


@pytest.fixture(scope="module")
def model_cases(tmp_path_factory):
    return leak_driver.model_cases(str(tmp_path_factory.mktemp("leak_models")))


# Warm-up calls per model case: NumPy's dtype-name cache and the layers' cached
# activations settle only after a few hundred calls of the cheap cases.
MODEL_WARMUP = {"model_train_on_batch": 600, "model_fit_epoch": 150, "model_predict": 800, "model_save": 100,
                "model_load": 1500, "model_load_weights": 600, "err_load_truncated": 600}


@pytest.mark.parametrize("name", list(MODEL_WARMUP))
def test_model_no_leak(name, model_cases):
    check_no_leak(name, model_cases[name], MODEL_CALLS, warmup=MODEL_WARMUP[name])


def test_leak_check_detects_a_leak():
    """The harness itself works: a deliberate leak of 1 KiB per call is caught."""
    kept = []
    traced, _ = leak_rate(measure(lambda: kept.append(np.empty(256, np.float32)), LEAK_CALLS, warmup=10))
    assert traced * WINDOWS >= 1024 * LEAK_CALLS
    assert traced * WINDOWS >= limits(LEAK_CALLS)[0]


def test_result_is_not_kept_alive():
    """The returned array is owned by the caller alone (no hidden reference in the engine)."""
    from pycnn import ops
    y = ops.conv2d(leak_driver.X, leak_driver.W)
    assert sys.getrefcount(y) == 2          # y and getrefcount's argument
    dx, dk, db = ops.conv2d_backward(leak_driver.DY, leak_driver.X, leak_driver.W, leak_driver.B)
    assert (sys.getrefcount(dx), sys.getrefcount(dk), sys.getrefcount(db)) == (2, 2, 2)
