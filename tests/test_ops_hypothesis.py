"""Fuzzing the binding through pycnn.ops with hypothesis (reliability.md B4/B5/B7).

Random arrays (float and non-float dtypes, 0-7 sized and zero-sized axes,
non-contiguous / Fortran / byte-swapped / read-only / unaligned layouts),
random and hostile arguments (huge, negative, wrong types).  Every outcome
must be a result or a documented exception (ValueError, TypeError,
MemoryError) -- never a crash, another exception type, or an allocation
bomb: the peak traced memory of one call stays under ALLOC_LIMIT while the
inputs are at most a few KiB.  Successful conv2d/conv1d/pool results equal
tests/reference.py, every result equals the call on a plain contiguous copy,
and inputs are never written.

Deterministic in CI (derandomize=True).
"""
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pycnn import ops
from tests import reference

DOCUMENTED = (ValueError, TypeError, MemoryError)
ALLOC_LIMIT = 64 << 20
HOSTILE_INTS = [0, -1, -(2**31), 2**31, 2**32 + 1, 2**62, 2**63 - 1, -(2**63)]
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DTYPES = [np.float32, np.float64, np.float32, np.float64, np.float16, np.int32, np.bool_, np.complex64]
LAYOUTS = ["contiguous", "fortran", "reversed", "strided", "byteswapped", "readonly", "unaligned"]


def with_layout(x, layout):
    """The same values in another memory layout (reliability.md B7)."""
    if x.ndim == 0 or x.size == 0 or layout == "contiguous":
        return x
    if layout == "fortran":
        return np.asfortranarray(x)
    if layout == "reversed":
        return np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    if layout == "strided":
        wide = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
        wide[..., ::2] = x
        return wide[..., ::2]
    if layout == "byteswapped":
        return x.astype(x.dtype.newbyteorder())
    if layout == "readonly":
        y = x.copy()
        y.setflags(write=False)
        return y
    raw = np.frombuffer(bytearray(x.nbytes + 1), np.uint8)[1:]
    y = raw.view(x.dtype).reshape(x.shape)
    y[...] = x
    return y


@st.composite
def arrays(draw, ndim=None, max_side=6, allow_zero=True):
    """A small array: mostly float, sometimes a dtype the ops must refuse."""
    ndim = draw(st.integers(2, 5)) if ndim is None else ndim
    low = 0 if allow_zero else 1
    shape = tuple(draw(st.integers(low, max_side)) for _ in range(ndim))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    seed = draw(st.integers(0, 2**16))
    values = np.random.default_rng(seed).integers(-4, 5, size=shape)
    x = values.astype(dtype)
    if dtype.kind == "f" and draw(st.integers(0, 9)) == 0 and x.size:
        x.flat[seed % x.size] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return x


ints = st.one_of(st.integers(-1, 4), st.sampled_from(HOSTILE_INTS))
int_args = st.one_of(ints, st.tuples(ints, ints), st.tuples(ints), st.tuples(ints, ints, ints),
                     st.sampled_from([None, 1.5, "2", True, [2, 2], np.int64(2), (np.int32(1), 2)]))
pad_args = st.one_of(st.sampled_from(["valid", "same", "causal", "SAME", "full", "", None]), ints,
                     st.tuples(ints, ints), st.tuples(st.tuples(ints, ints), st.tuples(ints, ints)),
                     st.sampled_from([((0, 1),), ((1, 1), (1, 1), (1, 1)), 1.0, (1, "a")]))
formats = st.sampled_from(["channels_last", "channels_last", "channels_first", None, "NHWC", 3])


def call(fn, *args, **kwargs):
    """Runs one call; returns the result or None for a documented exception.

    Anything else fails the test, as does a single call that allocates more
    than ALLOC_LIMIT bytes for kilobyte-sized inputs."""
    tracemalloc.start()
    try:
        result = fn(*args, **kwargs)
    except DOCUMENTED:
        result = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < ALLOC_LIMIT, f"{fn.__name__} allocated {peak / 2**20:.0f} MiB for tiny inputs"
    return result


OUTCOMES = {}


def record(name, result):
    """Counts computed vs refused calls of the plausible draws (for RELIABILITY.md)."""
    key = (name, "computed" if result is not None else "refused")
    OUTCOMES[key] = OUTCOMES.get(key, 0) + 1


def results_of(result):
    if result is None:
        return []
    return [r for r in (result if isinstance(result, tuple) else (result,)) if r is not None]


def check_result(result, inputs, dtype):
    """Results are arrays of the input dtype (losses: scalars of it)."""
    for r in results_of(result):
        assert isinstance(r, (np.ndarray, np.floating)), type(r)
        assert np.dtype(r.dtype) == np.dtype(dtype).newbyteorder("="), (r.dtype, dtype)


def same_as_contiguous(fn, args, kwargs, layout_args, result):
    """The call on plain contiguous copies gives the same numbers; inputs unchanged."""
    plain = [np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")) if isinstance(a, np.ndarray) else a
             for a in args]
    expected = fn(*plain, **kwargs)
    for got, want in zip(results_of(result), results_of(expected)):
        np.testing.assert_array_equal(got, want)
    for original, used in zip(plain, layout_args):
        if isinstance(original, np.ndarray):
            np.testing.assert_array_equal(used, original)


CONV_OPS = {
    "conv2d": (ops.conv2d, 4), "conv1d": (ops.conv1d, 3), "depthwise_conv2d": (ops.depthwise_conv2d, 4),
    "conv2d_transpose": (ops.conv2d_transpose, 4),
}


@st.composite
def plausible_conv(draw, name):
    """Consistent conv arguments (most of them valid) so the compute paths run too."""
    rank = CONV_OPS[name][1] - 2
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    groups = draw(st.sampled_from([1, 1, 2, 3])) if name in ("conv2d", "conv1d") else 1
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    x_shape = (draw(st.integers(0, 3)),) + tuple(draw(st.integers(1, 8)) for _ in range(rank)) + (c_in,)
    if name == "depthwise_conv2d":
        k_shape = k + (c_in, draw(st.integers(1, 3)))
    elif name == "conv2d_transpose":
        k_shape = k + (c_out, c_in)
    else:
        k_shape = k + (c_in // groups, c_out)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.integers(-4, 5, size=x_shape).astype(dtype)
    kernel = rng.integers(-4, 5, size=k_shape).astype(dtype)
    bias_size = k_shape[-2] if name == "conv2d_transpose" else (
        c_in * k_shape[-1] if name == "depthwise_conv2d" else c_out)
    bias = rng.integers(-4, 5, size=bias_size).astype(dtype) if draw(st.booleans()) else None
    small = st.integers(1, 3)
    strides = draw(st.one_of(small, st.tuples(*[small] * rank)))
    dilation = draw(st.one_of(st.just(1), small)) if name != "conv2d_transpose" else 1
    pads = draw(st.one_of(st.sampled_from(["valid", "same"] + (["causal"] if rank == 1 else [])),
                          st.integers(0, 2)))
    if name == "conv2d_transpose":
        pads = draw(st.sampled_from(["valid", "same"]))
    return x, kernel, bias, dict(strides=strides, padding=pads, dilation_rate=dilation), groups


@settings(SETTINGS, max_examples=240)
@given(name=st.sampled_from(["conv2d", "conv2d", "conv1d", "depthwise_conv2d", "conv2d_transpose"]),
       data=st.data(), hostile=st.integers(0, 2),
       strides=int_args, padding=pad_args, dilation=int_args,
       groups=st.one_of(ints, st.sampled_from([2, 3, 1.0, None])), data_format=formats,
       layout=st.sampled_from(LAYOUTS), backward=st.booleans())
def test_conv_family(name, data, hostile, strides, padding, dilation, groups, data_format, layout, backward):
    fn, rank = CONV_OPS[name]
    if hostile == 0:   # one third: arrays and arguments drawn freely, mostly invalid
        x = data.draw(arrays(ndim=data.draw(st.sampled_from([rank, rank, rank - 1, 2]))), "x")
        kernel = data.draw(arrays(ndim=data.draw(st.sampled_from([rank, rank, 3])), max_side=4), "kernel")
        bias = data.draw(arrays(ndim=1), "bias") if backward else None
        kwargs = dict(strides=strides, padding=padding, dilation_rate=dilation, data_format=data_format)
    else:
        x, kernel, bias, kwargs, groups = data.draw(plausible_conv(name), "plausible")
    if name in ("conv2d", "conv1d"):
        kwargs["groups"] = groups
    x_used, k_used = with_layout(x, layout), with_layout(kernel, layout)
    forward = call(fn, x_used, k_used, bias, **kwargs)
    if hostile:
        record(name, forward)
    check_result(forward, [x, kernel], x.dtype)
    if forward is None:
        return
    same_as_contiguous(fn, [x, kernel, bias], kwargs, [x_used, k_used, bias], forward)
    if kwargs.get("data_format") in ("channels_last", None) and not np.isnan(forward).any():
        ref = None
        if name == "conv2d":
            ref = reference.conv2d(x, kernel, bias, strides=kwargs["strides"], padding=kwargs["padding"],
                                   dilation_rate=kwargs["dilation_rate"], groups=groups)
        elif name == "conv1d":
            ref = reference.conv1d(x, kernel, bias, strides=kwargs["strides"], padding=kwargs["padding"],
                                   dilation_rate=kwargs["dilation_rate"], groups=groups)
        elif name == "depthwise_conv2d":
            ref = reference.depthwise_conv2d(x, kernel, bias, strides=kwargs["strides"],
                                             padding=kwargs["padding"], dilation_rate=kwargs["dilation_rate"])
        elif name == "conv2d_transpose":
            ref = reference.conv2d_transpose(x, kernel, bias, strides=kwargs["strides"],
                                             padding=kwargs["padding"], dilation_rate=kwargs["dilation_rate"])
        if ref is not None:
            np.testing.assert_allclose(forward, ref, rtol=1e-5, atol=1e-4)
    if backward:
        dy = np.ones(forward.shape, forward.dtype)
        grads = call(getattr(ops, name + "_backward"), dy, x_used, k_used, bias, **kwargs)
        assert grads is not None, f"{name}_backward refused what {name} accepted"
        check_result(grads, [x, kernel], x.dtype)
        assert grads[0].shape == x.shape and grads[1].shape == kernel.shape


POOL_OPS = ["max_pool2d", "avg_pool2d", "max_pool1d", "avg_pool1d"]


@SETTINGS
@given(name=st.sampled_from(POOL_OPS), data=st.data(), hostile=st.integers(0, 2), pool_size=int_args,
       strides=int_args, padding=pad_args, data_format=formats, layout=st.sampled_from(LAYOUTS),
       backward=st.booleans())
def test_pool_family(name, data, hostile, pool_size, strides, padding, data_format, layout, backward):
    rank = 2 if name.endswith("2d") else 1
    if hostile == 0:
        x = data.draw(arrays(ndim=data.draw(st.sampled_from([rank + 2, rank + 2, rank + 1]))), "x")
    else:   # consistent arguments, mostly valid
        x = data.draw(arrays(ndim=rank + 2, allow_zero=False), "x")
        if x.dtype.kind != "f" or x.dtype.itemsize < 4:
            x = np.real(x).astype(np.float64)
        pool_size = data.draw(st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * rank)))
        strides = data.draw(st.one_of(st.none(), st.integers(1, 3)))
        padding = data.draw(st.sampled_from(["valid", "same"]))
        data_format = "channels_last"
    fn = getattr(ops, name)
    kwargs = dict(strides=strides, padding=padding, data_format=data_format)
    x_used = with_layout(x, layout)
    y = call(fn, x_used, pool_size, **kwargs)
    if hostile:
        record(name, y)
    check_result(y, [x], x.dtype)
    if y is None:
        return
    same_as_contiguous(fn, [x, pool_size], kwargs, [x_used, pool_size], y)
    if rank == 2 and data_format in ("channels_last", None):
        ref_fn = reference.max_pool2d if name == "max_pool2d" else reference.avg_pool2d
        np.testing.assert_allclose(y, ref_fn(x, pool_size, strides, padding), rtol=1e-6, atol=1e-6)
    if backward:
        dx = call(getattr(ops, name + "_backward"), np.ones(y.shape, y.dtype), x_used, pool_size, **kwargs)
        assert dx is not None and dx.shape == x.shape


@SETTINGS
@given(data=st.data(), name=st.sampled_from(["global_avg_pool2d", "global_max_pool1d", "dense", "relu",
                                             "leaky_relu", "sigmoid", "tanh", "softmax", "mse",
                                             "softmax_cross_entropy", "im2col"]),
       layout=st.sampled_from(LAYOUTS), option=st.one_of(int_args, pad_args, formats))
def test_other_ops(data, name, layout, option):
    x = with_layout(data.draw(arrays(), "x"), layout)
    second = with_layout(data.draw(arrays(ndim=data.draw(st.integers(1, 3))), "second"), layout)
    calls = {
        "global_avg_pool2d": lambda: ops.global_avg_pool2d(x, data_format=option),
        "global_max_pool1d": lambda: ops.global_max_pool1d(x, keepdims=bool(option)),
        "dense": lambda: ops.dense(x, second),
        "relu": lambda: ops.relu(x),
        "leaky_relu": lambda: ops.leaky_relu(x),
        "sigmoid": lambda: ops.sigmoid_backward(x, x),
        "tanh": lambda: ops.tanh(x),
        "softmax": lambda: ops.softmax(x, axis=option if isinstance(option, int) else -1),
        "mse": lambda: ops.mse(x, second),
        "softmax_cross_entropy": lambda: ops.softmax_cross_entropy(x, second),
        "im2col": lambda: ops.col2im(ops.im2col(x, option), x.shape, option),
    }
    before = x.copy()
    result = call(calls[name])
    np.testing.assert_array_equal(x, before)
    if result is not None and name not in ("mse", "softmax_cross_entropy"):
        check_result(result, [x], x.dtype)


@pytest.mark.parametrize("op,kwargs", [
    (ops.conv2d, dict(strides=2**63)),
    (ops.conv2d, dict(strides=2**64)),
    (ops.conv2d, dict(dilation_rate=2**63)),
    (ops.conv2d, dict(padding=2**64)),
    (ops.conv2d, dict(groups=2**64)),
    (ops.max_pool2d, dict(pool_size=2, strides=2**63)),
    (ops.max_pool2d, dict(pool_size=2**63)),
    (ops.conv2d_transpose, dict(strides=2**63)),
])
def test_hostile_ints_give_documented_errors(op, kwargs):
    """H3 of .notes/hardening.md: ints >= 2**63 must give ValueError, not OverflowError."""
    x = np.ones((1, 5, 5, 3), np.float32)
    args = (x,) if op is ops.max_pool2d else (x, np.ones((3, 3, 3, 3), np.float32))
    with pytest.raises(DOCUMENTED):
        op(*args, **kwargs)


@pytest.mark.parametrize("op,kernel", [
    (ops.conv2d, np.ones((3, 3, 3, 4), np.float32)),
    (ops.depthwise_conv2d, np.ones((3, 3, 3, 2), np.float32)),
    (ops.conv2d_transpose, np.ones((3, 3, 4, 3), np.float32)),
])
def test_empty_batch_allocates_nothing(op, kernel):
    """H4 of .notes/hardening.md: batch 0 gives an empty result without a per-image workspace."""
    x = np.empty((0, 1000, 1000, 3), np.float32)   # 0 bytes
    tracemalloc.start()
    try:
        y = op(x, kernel)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert y.shape[0] == 0 and y.size == 0
    assert peak < (1 << 20), f"{op.__name__}: {peak / 2**20:.0f} MiB allocated for an empty batch"
