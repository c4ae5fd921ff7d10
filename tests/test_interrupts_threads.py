"""Ctrl-C, the GIL and concurrent calls (reliability.md B8).

* Ctrl-C: a timer thread sends SIGINT to the main thread while a long op runs
  there; the engine polls between chunks, so KeyboardInterrupt must arrive
  within 100 ms of the signal, and the next call must work normally.
* GIL: while a long kernel runs in the main thread, a second Python thread
  keeps ticking (it could not if the kernel held the GIL).
* Threads: the same op called from 8 threads at once gives the serial
  result bit for bit (per-thread scratch buffers; chunking that depends only
  on the shape), also while another thread changes the engine thread count.

The time bounds are the issue's requirements (100 ms latency, a ticker that
runs).  The ops are sized to run several times longer than the bound.  On a
loaded machine (CI shares 2 cores) a measurement can only come out worse than
the code allows, never better, so each check takes the best of up to
ATTEMPTS tries: a kernel that holds the GIL or never polls fails every try.
"""
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pycnn import ops

LATENCY_LIMIT = 0.100
ATTEMPTS = 3
# The sanitizer pass of .ci/run runs every kernel 2-3x slower, so a chunk (the
# interval between polls) takes longer; there only the interrupt itself is checked.
SANITIZED = "asan" in os.environ.get("LD_PRELOAD", "")
rng = np.random.default_rng(0)


def normal(*shape):
    return rng.standard_normal(shape, dtype=np.float32)


def grown_until_long(make_op, measure, long_enough, limit=6):
    """Measures make_op(scale)() with scale 1, 2, 4, ... until the op runs long enough.

    A faster machine (or a faster kernel) must not turn these checks into
    "the op finished too soon": the workload doubles until it outlasts the
    bound being tested.  Returns the last measurement."""
    scale = 1
    for _ in range(limit):
        result = measure(make_op(scale))
        if long_enough(result):
            return result
        scale *= 2
    return result


def best_latency(make_op, delay):
    """The smallest (latency, duration) of up to ATTEMPTS interrupted runs.

    make_op(scale) returns the op on inputs `scale` times larger; it grows
    until the op is still running when the interrupt arrives."""
    best = None
    for _ in range(ATTEMPTS):
        latency, duration = grown_until_long(make_op, lambda fn: interrupt_latency(fn, delay),
                                             lambda result: result[0] is not None)
        if latency is None:
            return latency, duration
        if best is None or latency < best[0]:
            best = (latency, duration)
        if latency < LATENCY_LIMIT:
            break
    return best


def interrupt_latency(fn, delay):
    """Runs fn in the main thread, SIGINT to it after `delay` s.

    Returns (latency, duration): seconds from the signal to KeyboardInterrupt
    (None when fn finished first) and how long fn ran."""
    assert threading.current_thread() is threading.main_thread()
    main = threading.main_thread().ident
    sent = []

    def fire():
        sent.append(time.perf_counter())
        signal.pthread_kill(main, signal.SIGINT)

    timer = threading.Timer(delay, fire)
    start = time.perf_counter()
    timer.start()
    try:
        fn()
    except KeyboardInterrupt:
        caught = time.perf_counter()
        timer.join()
        return caught - sent[0], caught - start
    finished = time.perf_counter()
    try:   # the signal is still on its way: absorb it here, not in pytest
        timer.join()
        time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    return None, finished - start


def batch_of(scale, *shape):
    """A random float32 array whose first axis is `scale` times shape[0]."""
    return normal(shape[0] * scale, *shape[1:])


# Each entry builds its inputs for a given scale and returns the op to run on them.
LONG_OPS = {
    "conv2d": lambda k: (lambda x=batch_of(k, 64, 64, 64, 32), w=normal(3, 3, 32, 64):
                         ops.conv2d(x, w, padding="same")),
    "conv2d_backward": lambda k: (lambda dy=np.ones((64 * k, 64, 64, 64), np.float32),
                                  x=batch_of(k, 64, 64, 64, 32), w=normal(3, 3, 32, 64):
                                  ops.conv2d_backward(dy, x, w, padding="same")),
    "max_pool2d": lambda k: (lambda x=batch_of(k, 64, 64, 64, 32): ops.max_pool2d(x, 15, strides=1)),
    "conv2d_winograd_4x4": lambda k: (lambda x=batch_of(k, 64, 64, 64, 32), w=normal(3, 3, 32, 64):
                                      ops.conv2d(x, w, padding="same", algorithm="winograd_4x4")),
}


@pytest.mark.parametrize("name", list(LONG_OPS))
def test_ctrl_c_during_long_op(name):
    latency, duration = best_latency(LONG_OPS[name], delay=0.05)
    assert latency is not None, f"{name} finished in {duration:.3f} s before the interrupt even at 32x size"
    assert SANITIZED or latency < LATENCY_LIMIT, f"{name}: KeyboardInterrupt {1000 * latency:.0f} ms after SIGINT"
    # The engine is usable right after an interrupt and gives the right numbers.
    small_x, small_w = normal(2, 8, 8, 32), normal(3, 3, 32, 64)
    np.testing.assert_array_equal(ops.conv2d(small_x, small_w, padding="same"),
                                  ops.conv2d(small_x.copy(), small_w.copy(), padding="same"))


def indices_backward(x, pool, strides):
    """max_pool2d_backward from stored indices, its inputs made before it runs."""
    y, indices = ops.max_pool2d(x, pool, strides, return_indices=True)
    dy = np.ones_like(y)
    return lambda: ops.max_pool2d_backward(dy, x, pool, strides, indices=indices)


# One image whose height grows with the scale: the batch stays 1.
SINGLE_IMAGE_OPS = {
    "conv2d": lambda k: (lambda x=normal(1, 512 * k, 512, 32), w=normal(5, 5, 32, 32):
                         ops.conv2d(x, w, padding="same")),
    "max_pool2d": lambda k: (lambda x=normal(1, 1024 * k, 1024, 16): ops.max_pool2d(x, 5, strides=1)),
    "max_pool2d_backward_indices": lambda k: indices_backward(normal(1, 1024 * k, 1024, 16), 5, 1),
}


@pytest.mark.parametrize("name", list(SINGLE_IMAGE_OPS))
def test_ctrl_c_single_large_image(name):
    """One large image (a photo, or predict(x[None])) must be interruptible too
    (H2 of .notes/hardening.md: the engine used to poll only between whole images)."""
    latency, duration = best_latency(SINGLE_IMAGE_OPS[name], delay=0.05)
    assert latency is not None, f"{name} finished in {duration:.3f} s before the interrupt even at 32x size"
    assert SANITIZED or latency < LATENCY_LIMIT, (f"{name}: KeyboardInterrupt {1000 * latency:.0f} ms after SIGINT "
                                     f"(the op ran {duration:.2f} s in all)")


def ticks_during(fn):
    """Ticks of a second Python thread (1 ms sleeps) while fn runs here; and fn's duration."""
    done = threading.Event()
    ticks = [0]

    def ticker():
        while not done.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.01)
    start_ticks, start = ticks[0], time.perf_counter()
    fn()
    duration, count = time.perf_counter() - start, ticks[0] - start_ticks
    done.set()
    thread.join()
    return count, duration


GIL_MIN_DURATION = 0.05
GIL_OPS = {
    "conv2d": lambda k: (lambda x=batch_of(k, 16, 64, 64, 32), w=normal(3, 3, 32, 64):
                         ops.conv2d(x, w, padding="same")),
    "conv2d_backward": lambda k: (lambda dy=batch_of(k, 16, 64, 64, 64), x=batch_of(k, 16, 64, 64, 32),
                                  w=normal(3, 3, 32, 64): ops.conv2d_backward(dy, x, w, padding="same")),
    "depthwise_conv2d": lambda k: (lambda x=batch_of(k, 64, 64, 64, 32), w=normal(3, 3, 32, 4):
                                   ops.depthwise_conv2d(x, w, padding="same")),
    "conv2d_transpose": lambda k: (lambda x=batch_of(k, 16, 64, 64, 32), w=normal(3, 3, 64, 32):
                                   ops.conv2d_transpose(x, w, strides=2)),
    "dense": lambda k: (lambda x=batch_of(k, 2048, 2048), w=normal(2048, 512): ops.dense(x, w)),
    "max_pool2d_backward": lambda k: (lambda dy=np.ones((64 * k, 60, 60, 32), np.float32),
                                      x=batch_of(k, 64, 64, 64, 32):
                                      ops.max_pool2d_backward(dy, x, 5, strides=1)),
    "avg_pool2d": lambda k: (lambda x=batch_of(k, 64, 64, 64, 32): ops.avg_pool2d(x, 11, strides=1)),
    "im2col": lambda k: (lambda x=batch_of(k, 16, 64, 64, 32): ops.im2col(x, 5, padding="same")),
    "conv2d_winograd_2x2": lambda k: (lambda x=batch_of(k, 16, 64, 64, 32), w=normal(3, 3, 32, 64):
                                      ops.conv2d(x, w, padding="same", algorithm="winograd_2x2")),
}


@pytest.mark.parametrize("name", list(GIL_OPS))
def test_gil_released(name):
    # Holding the GIL for the kernel would leave the ticker only the op's short
    # Python parts (0-2 ticks); released, it ticks about once per ms.
    for _ in range(ATTEMPTS):
        count, duration = grown_until_long(GIL_OPS[name], ticks_during,
                                           lambda result: result[1] > GIL_MIN_DURATION)
        assert duration > GIL_MIN_DURATION, f"{name} ran only {duration * 1000:.1f} ms even at 32x size"
        if count >= max(5, 0.1 * duration / 0.001):
            return
    pytest.fail(f"{name}: a second thread ticked only {count} times in {duration * 1000:.0f} ms")


SMALL_X = normal(4, 12, 12, 6)
SMALL_W = normal(3, 3, 6, 8)
SMALL_B = normal(8)
SMALL_DY = normal(4, 12, 12, 8)
THREAD_OPS = {
    "conv2d": lambda: ops.conv2d(SMALL_X, SMALL_W, SMALL_B, padding="same"),
    "conv2d_backward": lambda: ops.conv2d_backward(SMALL_DY, SMALL_X, SMALL_W, SMALL_B, padding="same"),
    "conv2d_groups": lambda: ops.conv2d(SMALL_X, SMALL_W[:, :, :3], strides=2, groups=2),
    "depthwise_conv2d_backward": lambda: ops.depthwise_conv2d_backward(
        normal(4, 10, 10, 12) * 0 + 1, SMALL_X, SMALL_W[:, :, :, :2]),
    "conv2d_transpose_backward": lambda: ops.conv2d_transpose_backward(
        np.ones((4, 24, 24, 8), np.float32), SMALL_X, SMALL_W.transpose(0, 1, 3, 2), strides=2, padding="same"),
    "max_pool2d_backward": lambda: ops.max_pool2d_backward(np.ones((4, 6, 6, 6), np.float32), SMALL_X, 2),
    "max_pool2d_indices": lambda: ops.max_pool2d(SMALL_X, 3, 2, "same", return_indices=True),
    "max_pool2d_backward_indices": lambda: ops.max_pool2d_backward(
        np.ones((4, 6, 6, 6), np.float32), SMALL_X, 3, 2, "same",
        indices=ops.max_pool2d(SMALL_X, 3, 2, "same", return_indices=True)[1]),
    "avg_pool2d": lambda: ops.avg_pool2d(SMALL_X, 3, strides=2, padding="same"),
    "col2im": lambda: ops.col2im(ops.im2col(SMALL_X, 3), SMALL_X.shape, 3),
    "dense_backward": lambda: ops.dense_backward(normal(30, 5) * 0 + 1, SMALL_X.reshape(-1, 72)[:30],
                                                 normal(72, 5) * 0 + 0.5),
    "batch_norm": lambda: ops.batch_norm(np.repeat(SMALL_X, 80, axis=0), gamma=SMALL_B[:6], beta=SMALL_B[2:]),
    "batch_norm_backward": lambda: ops.batch_norm_backward(
        np.repeat(SMALL_X, 80, axis=0), np.repeat(SMALL_X, 80, axis=0) * 2, SMALL_B[:6], np.abs(SMALL_B[2:]),
        SMALL_B[:6], SMALL_B[2:]),
    "leaky_relu_backward": lambda: ops.leaky_relu_backward(np.repeat(SMALL_DY, 200, axis=0),
                                                           np.repeat(SMALL_DY, 200, axis=0) - 0.3, 0.1),
}


def flatten(result):
    if isinstance(result, tuple):
        return [r for r in result if r is not None]
    return [result]


@pytest.mark.parametrize("name", list(THREAD_OPS))
def test_eight_threads_match_serial(name):
    fn = THREAD_OPS[name]
    serial = flatten(fn())
    stop = threading.Event()

    def toggle_threads():   # the thread count must not change any result (design rule 6)
        n = 0
        while not stop.is_set():
            ops.set_num_threads(1 + n % 2)
            n += 1
            time.sleep(0.0005)

    before = ops.get_num_threads()
    toggler = threading.Thread(target=toggle_threads)
    toggler.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: flatten(fn()), range(8 * 6)))
    finally:
        stop.set()
        toggler.join()
        ops.set_num_threads(before)
    for got in results:
        assert len(got) == len(serial)
        for a, b in zip(got, serial):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert np.array_equal(a, b, equal_nan=True), f"{name}: a concurrent result differs from serial"


# ---------------------------------------------------------------- crash-safe saving

KILL_TRIALS = 16


def saver_model():
    from pycnn import layers
    from pycnn.models import Sequential
    model = Sequential([layers.Conv2D(64, 3, input_shape=(16, 16, 32)), layers.Flatten(), layers.Dense(64)])
    model.predict(np.zeros((1, 16, 16, 32), np.float32), verbose=0)   # built
    return model


def test_kill_during_save_keeps_a_loadable_file(tmp_path):
    """SIGKILL at a random moment of a save loop (a forked child saving generation
    g = 0, 1, 2, ... with every weight equal to g): the file on disk is always one
    complete earlier save, never a torn or mixed one (reliability.md B10)."""
    from pycnn.models import load_model

    model = saver_model()   # built here, so the child only runs NumPy and file code
    shapes = [w.shape for w in model.get_weights()]
    path = str(tmp_path / "model.pycnn")
    model.save(path)
    delays = np.random.default_rng(0).uniform(0.0, 0.08, KILL_TRIALS)
    generations = []
    for trial, delay in enumerate(delays):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:   # child: save forever, report after the first complete save
            try:
                os.close(read_end)
                generation = 1000 * (trial + 1)
                while True:
                    model.set_weights([np.full(shape, generation, np.float32) for shape in shapes])
                    model.save(path)
                    if generation == 1000 * (trial + 1):
                        os.write(write_end, b"1")
                    generation += 1
            finally:
                os._exit(1)
        os.close(write_end)
        try:
            assert os.read(read_end, 1) == b"1", "the saver did not start"
            time.sleep(delay)
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
        loaded = load_model(path)   # a torn file would raise ModelFileError here
        values = {float(v) for w in loaded.get_weights() for v in np.unique(w)}
        assert len(values) == 1, f"weights of several saves in one file: {sorted(values)[:5]}"
        generation = values.pop()
        assert generation >= 1000 * (trial + 1), "the file predates this trial's first complete save"
        generations.append(generation - 1000 * (trial + 1))
    # The kills landed at different points of the loop, not all right after the first save.
    assert len(set(generations)) > 1, generations
