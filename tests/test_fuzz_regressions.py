"""Replays the libFuzzer corpus and past crashers through the Python binding.

fuzz/corpus/<target>/* and fuzz/regressions/<target>/* are the inputs of the
C harnesses (fuzz/fuzz_<target>.c).  Here each file is decoded the same way
(byte for byte, see fuzz/fuzz_common.h) into a descriptor and fed to
``pycnn._engine`` -- the workspace-size entry points take the raw int64
values, hostile ones included, and small descriptors also run with real
arrays.  Every call must return or raise a documented exception
(ValueError/TypeError/MemoryError); valid small convolutions, poolings and
im2col calls must equal the NumPy reference in tests/reference.py.

Each target replays in a subprocess (Pillow's test_fuzzers.py pattern): a
segfault or sanitizer abort fails that test and names the input, instead of
killing the whole pytest session.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("conv2d", "conv2d_transpose", "pool2d", "im2col")
DOCUMENTED = (ValueError, TypeError, MemoryError)

# fuzz_common.h: hostile_values / take_dim
HOSTILE = [0, -1, -2, -2**63, 2**63 - 1, (2**63 - 1) // 2, 2**31, 2**31 - 1, 2**32, 2**62, -2**62,
           3037000500, 2**20, 2**40, -2**31, 65536]
INT64_MAX = 2**63 - 1
SMALL = 1 << 16   # FUZZ_MAX_ELEMENTS


class Bytes:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def u8(self):
        value = self.data[self.pos] if self.pos < len(self.data) else 0
        self.pos += 1
        return value

    def dim(self, small_max):
        b = self.u8()
        return HOSTILE[b - 240] if b >= 240 else b % (small_max + 2) - 1


def small_shape(*dims):
    """True when an array of this shape can be built and stays small, zero-sized axes
    counted as 1 (the reference loops run over the other axes even when one is empty)."""
    count = 1
    for d in dims:
        if d < 0:
            return False
        count *= max(d, 1)
    return count <= SMALL


def fill(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(-4, 5, size=shape).astype(dtype)


def expect_documented(fn, *args):
    """fn(*args) must return or raise a documented exception; returns (ok, result)."""
    try:
        return True, fn(*args)
    except DOCUMENTED:
        return False, None


def conv_oracle(n, h, w, c_in, kh, kw, c_out, groups, strides, dilations, pads):
    """(oh, ow) for a valid descriptor whose arrays fit int64, else None (Python ints: exact)."""
    if (n < 0 or min(h, w, c_in, kh, kw, c_out, groups, *strides, *dilations) < 1 or min(pads) < 0
            or c_in % groups or c_out % groups):
        return None
    eff = [d * (k - 1) + 1 for k, d in zip((kh, kw), dilations)]
    padded = [h + pads[0] + pads[1], w + pads[2] + pads[3]]
    if eff[0] > padded[0] or eff[1] > padded[1]:
        return None
    oh, ow = [(p - e) // s + 1 for p, e, s in zip(padded, eff, strides)]
    sizes = [n * h * w * c_in, n * oh * ow * c_out, kh * kw * c_in * c_out, oh * ow * kh * kw * c_in]
    if max(max(padded), max(eff)) > INT64_MAX or max(sizes) * 8 > INT64_MAX:
        return None
    return oh, ow


def replay_conv2d(data):
    from pycnn import _engine
    from tests import reference
    b = Bytes(data)
    flags = b.u8()
    dtype = np.float64 if flags & 1 else np.float32
    n, h, w, c_in = b.dim(3), b.dim(9), b.dim(9), b.dim(6)
    kh, kw, c_out, groups = b.dim(4), b.dim(4), b.dim(6), b.dim(3)
    strides, dilations = (b.dim(3), b.dim(3)), (b.dim(3), b.dim(3))
    pads = (b.dim(3), b.dim(3), b.dim(3), b.dim(3))
    seed = b.u8()
    geometry = strides + dilations + pads + (groups,)
    cig = c_in // groups if groups > 0 else c_in
    ok, ws_bytes = expect_documented(_engine.conv2d_workspace_size, (n, h, w, c_in), (kh, kw, cig, c_out),
                                     dtype == np.float64, geometry)
    out = conv_oracle(n, h, w, c_in, kh, kw, c_out, groups, strides, dilations, pads)
    if out is not None and not ok:
        # A valid descriptor may only be refused for an im2col buffer beyond int64.
        assert out[0] * out[1] * kh * kw * c_in * 8 > 2**62, f"valid conv2d refused: {geometry}"
    if not small_shape(n, h, w, c_in) or not small_shape(kh, kw, cig, c_out) or c_out > 64:
        return "metadata"
    oh, ow = out if out is not None else (1, 1)
    if not small_shape(n, oh, ow, c_out) or n * oh * ow * c_out * kh * kw * cig > 2_000_000:
        return "metadata"
    if ok and ws_bytes > 64 << 20:
        return "metadata"   # batch 0 with a huge image asks for a per-image workspace (H4)
    x, k = fill((n, h, w, c_in), dtype, seed), fill((kh, kw, cig, c_out), dtype, seed + 1)
    y = np.empty((n, oh, ow, c_out), dtype)
    ws = np.empty(ws_bytes, np.uint8) if ok else None
    ran, _ = expect_documented(_engine.conv2d_forward, x, k, None, y, ws, geometry)
    if out is None:
        assert not ran, f"conv2d_forward accepted an invalid descriptor {geometry}"
        return "refused"
    assert ran, f"conv2d_forward refused a valid descriptor {geometry}"
    if (h + pads[0] + pads[1]) * (w + pads[2] + pads[3]) > 100_000:
        return "computed"   # the reference pads explicitly: too large to build here
    ref = reference.conv2d(x.astype(np.float64), k.astype(np.float64), strides=strides,
                           padding=((pads[0], pads[1]), (pads[2], pads[3])), dilation_rate=dilations,
                           groups=groups)
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-4)
    return "computed"


def replay_conv2d_transpose(data):
    from pycnn import _engine
    b = Bytes(data)
    flags = b.u8()
    dtype = np.float64 if flags & 1 else np.float32
    n, h, w, c_in = b.dim(3), b.dim(6), b.dim(6), b.dim(5)
    kh, kw, c_out = b.dim(4), b.dim(4), b.dim(5)
    geometry = (b.dim(3), b.dim(3), b.dim(3), b.dim(3), b.dim(3), b.dim(3))
    oh, ow = b.dim(20), b.dim(20)
    seed = b.u8()
    ok, ws_bytes = expect_documented(_engine.conv2d_transpose_workspace_size, (n, h, w, c_in),
                                     (kh, kw, c_out), (oh, ow), dtype == np.float64, geometry)
    if not ok or not all(small_shape(*s) for s in ((n, h, w, c_in), (kh, kw, c_out, c_in), (n, oh, ow, c_out))):
        return "metadata"
    if n * h * w * c_in * kh * kw * c_out > 2_000_000:
        return "metadata"
    if ws_bytes > 64 << 20:
        return "metadata"   # batch 0 with a huge image asks for a per-image workspace (H4)
    x, k = fill((n, h, w, c_in), dtype, seed), fill((kh, kw, c_out, c_in), dtype, seed + 1)
    y = np.empty((n, oh, ow, c_out), dtype)
    ws = np.empty(ws_bytes, np.uint8)
    assert expect_documented(_engine.conv2d_transpose_forward, x, k, None, y, ws, geometry)[0], \
        f"conv2d_transpose_forward refused what workspace_size accepted: {geometry}"
    # The definition: each input pixel scatters kernel-weighted values to oy * s - crop + i * d.
    sh, sw, dh, dw, crop_t, crop_l = geometry
    ref = np.zeros(y.shape)
    for i in range(kh):
        for j in range(kw):
            for oy in range(h):
                yy = oy * sh - crop_t + i * dh
                if not 0 <= yy < oh:
                    continue
                for ox in range(w):
                    yx = ox * sw - crop_l + j * dw
                    if 0 <= yx < ow:
                        ref[:, yy, yx, :] += x[:, oy, ox, :].astype(np.float64) @ k[i, j].T.astype(np.float64)
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-4)
    return "computed"


def replay_pool2d(data):
    from pycnn import _engine
    b = Bytes(data)
    flags = b.u8()
    dtype = np.float64 if flags & 1 else np.float32
    mode = 1 if flags & 2 else 0
    n, h, w, c = b.dim(3), b.dim(9), b.dim(9), b.dim(4)
    kh, kw, sh, sw = b.dim(4), b.dim(4), b.dim(3), b.dim(3)
    pt, pb, pl, pr = b.dim(3), b.dim(3), b.dim(3), b.dim(3)
    seed = b.u8()
    geometry = (mode, kh, kw, sh, sw, pt, pb, pl, pr)
    valid = (n >= 0 and min(h, w, c, kh, kw, sh, sw) >= 1 and min(pt, pb, pl, pr) >= 0
             and max(pt, pb) < kh and max(pl, pr) < kw and kh <= h + pt + pb and kw <= w + pl + pr)
    if not small_shape(n, h, w, c):
        return "metadata"
    oh, ow = ((h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1) if valid else (1, 1)
    if not small_shape(n, oh, ow, c):
        return "metadata"
    x, y = fill((n, h, w, c), dtype, seed), np.empty((n, oh, ow, c), dtype)
    ran, _ = expect_documented(_engine.pool2d_forward, x, y, geometry)
    assert ran == valid, f"pool2d_forward {'accepted' if ran else 'refused'} {geometry} for x {x.shape}"
    if not valid:
        return "refused"
    ref = np.empty(y.shape)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * sh - pt, ox * sw - pl
            window = x[:, max(y0, 0):y0 + kh, max(x0, 0):x0 + kw, :].astype(np.float64)
            ref[:, oy, ox, :] = window.max(axis=(1, 2)) if mode == 0 else window.mean(axis=(1, 2))
    np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-5)
    return "computed"


def replay_im2col(data):
    from pycnn import _engine
    from tests import reference
    b = Bytes(data)
    flags = b.u8()
    dtype = np.float64 if flags & 1 else np.float32
    n, h, w, c = b.dim(3), b.dim(9), b.dim(9), b.dim(4)
    kh, kw = b.dim(4), b.dim(4)
    strides, dilations = (b.dim(3), b.dim(3)), (b.dim(3), b.dim(3))
    pads = (b.dim(3), b.dim(3), b.dim(3), b.dim(3))
    b.dim(1)   # oh_delta (C harness only)
    seed = b.u8()
    geometry = strides + dilations + pads + (1,)
    out = conv_oracle(n, h, w, c, kh, kw, 1, 1, strides, dilations, pads)
    if not small_shape(n, h, w, c) or not small_shape(kh, kw):
        return "metadata"
    oh, ow = out if out is not None else (1, 1)
    if not small_shape(n, oh, ow, kh * kw * c):
        return "metadata"
    x, cols = fill((n, h, w, c), dtype, seed), np.empty((n, oh, ow, kh * kw * c), dtype)
    ran, _ = expect_documented(_engine.im2col, x, cols, (kh, kw), geometry)
    assert ran == (out is not None), f"im2col {'accepted' if ran else 'refused'} {geometry}"
    if not ran:
        return "refused"
    if (h + pads[0] + pads[1]) * (w + pads[2] + pads[3]) > 100_000:
        return "computed"   # the reference pads explicitly: too large to build here
    ref = reference.im2col(x, (kh, kw), strides=strides, padding=((pads[0], pads[1]), (pads[2], pads[3])),
                           dilation_rate=dilations)
    np.testing.assert_array_equal(cols, ref)
    back = np.empty_like(x)
    assert expect_documented(_engine.col2im, cols, back, (kh, kw), geometry)[0]
    ref_back = reference.col2im(cols.astype(np.float64), x.shape, (kh, kw), strides=strides,
                                padding=((pads[0], pads[1]), (pads[2], pads[3])), dilation_rate=dilations)
    np.testing.assert_allclose(back, ref_back, rtol=1e-6, atol=1e-5)
    return "computed"


def inputs(target):
    files = []
    for kind in ("corpus", "regressions"):
        folder = ROOT / "fuzz" / kind / target
        if folder.is_dir():
            files += sorted(p for p in folder.iterdir() if p.is_file())
    return files


def run_replay(target, files):
    """Replays files in a child process; returns (returncode, output)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, __file__, target, *map(str, files)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT, env=env)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_corpus_replay(target):
    files = [f for f in inputs(target) if "regressions" not in f.parts]
    if not files:
        pytest.skip(f"no corpus for {target} yet (fuzz/build.sh merge creates it)")
    code, output = run_replay(target, files)
    # A negative code is a signal (segfault, sanitizer abort): the last "replay" line names the input.
    assert code == 0, f"replay of fuzz/corpus/{target} failed (exit {code}):\n{output[-3000:]}"
    counts = {kind: output.count(f"-> {kind}") for kind in ("computed", "refused", "metadata")}
    assert sum(counts.values()) == len(files), output[-3000:]


REGRESSIONS = [(t, f) for t in TARGETS for f in inputs(t) if "regressions" in f.parts]


@pytest.mark.parametrize("target,path", REGRESSIONS, ids=[f"{t}/{p.name}" for t, p in REGRESSIONS])
def test_regression_input(target, path):
    """Every past crasher of the C harnesses, through the binding (see .notes/hardening.md)."""
    code, output = run_replay(target, [path])
    assert code == 0, f"{path.name} crashed the binding (exit {code}):\n{output[-3000:]}"


def test_transpose_end_overflow_is_refused():
    """H1 (.notes/hardening.md): crop and output size near INT64_MAX must give ValueError.

    The normal build wraps silently and refuses later; under the ASan+UBSan pass
    of .ci/run the child aborts on the signed overflow in csrc/conv.c until it is fixed."""
    code = """if True:
        import numpy as np, pytest
        from pycnn import _engine
        big = 2**63 - 1
        with pytest.raises(ValueError):
            _engine.conv2d_transpose_workspace_size((3, 2, 2, 3), (4, 4, 1), (big, big), False,
                                                    (3, 1, 1, 1, big, big))
        with pytest.raises(ValueError):
            _engine.conv2d_transpose_forward(np.ones((1, 2, 2, 1), np.float32), np.ones((2, 2, 1, 1), np.float32),
                                             None, np.empty((1, 3, 3, 1), np.float32), None, (1, 1, 1, 1, big, big))
        """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    replay = globals()[f"replay_{sys.argv[1]}"]
    for name in sys.argv[2:]:
        print(f"replay {name}", flush=True)   # the last line before a crash names the input
        print(f"  -> {replay(Path(name).read_bytes())}", flush=True)
