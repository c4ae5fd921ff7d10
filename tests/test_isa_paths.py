"""Every GEMM micro-kernel path the CPU supports, forced with PYCNN_ISA, against NumPy float64.

The ISA is chosen once when the engine loads, so each path runs in its own
subprocess.  The sizes cover every M, N and K remainder modulo the register
tiles (MR up to 8, NR up to 32, for float32 and float64) including 1, and
sizes crossing the cache blocks (KC = 256, MC = 96, NC = 2048), through
pycnn.ops.dense (the GEMM with row-major A and B) and conv2d and its
backward passes (the GEMMs with transposed operands, over im2col columns).

The engine-path test files run again under each forced ISA, and the smoke test
of ``python -m pycnn.bench --quick`` checks structure only (speed is never asserted).
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cpu_flags():
    from pycnn.bench import cpu_flags
    return cpu_flags()


_FLAGS = _cpu_flags()
_ISA_NEEDS = {"ref": set(), "avx2": {"avx2", "fma"}, "avx512": {"avx512f", "avx512vl"}}


def _skip_unless_cpu_runs(isa):
    missing = _ISA_NEEDS[isa] - _FLAGS
    if missing:
        pytest.skip(f"this CPU lacks {', '.join(sorted(missing))} (from /proc/cpuinfo), so PYCNN_ISA={isa} "
                    f"cannot run here")


def _run(code, isa=None, timeout=300):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYCNN_ISA", None)
    # NumPy's references single-threaded: a spinning BLAS pool costs more than it saves here.
    env["OPENBLAS_NUM_THREADS"] = "1"
    if isa is not None:
        env["PYCNN_ISA"] = isa
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


# Runs inside the subprocess: returns the list of failures (empty when all pass).
_CHECK_PATH = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view
    import pycnn
    from pycnn import ops, _engine

    failures = []
    rng = np.random.default_rng(0)
    EPS = {np.float32: np.finfo(np.float32).eps, np.float64: np.finfo(np.float64).eps}

    def close(what, got, ref, absprod, k, dtype):
        # Forward error bound of a length-k dot product, with margin: k * eps * sum |a||b|.
        bound = 4 * (k + 2) * EPS[dtype] * absprod + np.finfo(dtype).tiny
        bad = np.abs(got.astype(np.float64) - ref) > bound
        if got.shape != ref.shape or not np.all(np.isfinite(got)) or bad.any():
            where = np.argwhere(bad)[:1].tolist() if got.shape == ref.shape else "shape"
            failures.append(f"{what}: mismatch at {where} (got shape {got.shape}, expected {ref.shape})")

    def check_dense(m, n, k, dtype):
        x = rng.standard_normal((m, k)).astype(dtype)
        w = rng.standard_normal((k, n)).astype(dtype)
        b = rng.standard_normal(n).astype(dtype)
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        y = ops.dense(x, w, b)
        close(f"dense m={m} n={n} k={k} {dtype.__name__}", y, x64 @ w64 + b, np.abs(x64) @ np.abs(w64) + abs(b), k, dtype)
        dy = rng.standard_normal((m, n)).astype(dtype)
        dx, dw, db = ops.dense_backward(dy, x, w, b)
        dy64 = dy.astype(np.float64)
        close(f"dense dx m={m} n={n} k={k}", dx, dy64 @ w64.T, np.abs(dy64) @ np.abs(w64.T), n, dtype)
        close(f"dense dw m={m} n={n} k={k}", dw, x64.T @ dy64, np.abs(x64.T) @ np.abs(dy64), m, dtype)
        close(f"dense db m={m} n={n} k={k}", db, dy64.sum(0), np.abs(dy64).sum(0), m, dtype)

    def im2col64(x, kh, kw, pad):
        xp = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        win = sliding_window_view(xp, (kh, kw), axis=(1, 2))          # n, oh, ow, c, kh, kw
        return np.ascontiguousarray(np.moveaxis(win, 3, -1)).reshape(win.shape[:3] + (-1,))  # (kh, kw, c) order

    def check_conv(n, hw, c_in, c_out, ksize, pad, dtype):
        x = rng.standard_normal((n, hw, hw, c_in)).astype(dtype)
        w = rng.standard_normal((ksize, ksize, c_in, c_out)).astype(dtype)
        b = rng.standard_normal(c_out).astype(dtype)
        cols = im2col64(x, ksize, ksize, pad)
        w2 = w.astype(np.float64).reshape(-1, c_out)
        k = w2.shape[0]
        what = f"conv2d n={n} hw={hw} c_in={c_in} c_out={c_out} k={ksize} pad={pad} {dtype.__name__}"
        y = ops.conv2d(x, w, b, padding=pad)
        close(what, y, cols @ w2 + b, np.abs(cols) @ np.abs(w2) + abs(b), k, dtype)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx, dw, db = ops.conv2d_backward(dy, x, w, b, padding=pad)
        dy2 = dy.astype(np.float64).reshape(-1, c_out)
        cols2 = cols.reshape(-1, k)
        rows = cols2.shape[0]
        close(what + " dw", dw.reshape(-1, c_out), cols2.T @ dy2, np.abs(cols2.T) @ np.abs(dy2), rows, dtype)
        # dx = col2im(dy w^T): scatter-add every tap's column back onto the padded input.
        dcols = (dy2 @ w2.T).reshape(cols.shape[:3] + (ksize, ksize, c_in))
        abs_dcols = (np.abs(dy2) @ np.abs(w2.T)).reshape(dcols.shape)
        ref = np.zeros((n, hw + 2 * pad, hw + 2 * pad, c_in))
        absref = np.zeros_like(ref)
        oh = cols.shape[1]
        for i in range(ksize):
            for j in range(ksize):
                ref[:, i:i + oh, j:j + oh] += dcols[:, :, :, i, j]
                absref[:, i:i + oh, j:j + oh] += abs_dcols[:, :, :, i, j]
        inner = (slice(None), slice(pad, pad + hw), slice(pad, pad + hw))
        close(what + " dx", dx, ref[inner], absref[inner], c_out * ksize * ksize, dtype)

    # One thread: this is about the micro-kernels (tests/test_threads_determinism.py covers threads).
    pycnn.set_num_threads(1)
    result = {"isa": _engine.isa()}
    for dtype in (np.float32, np.float64):
        # Every remainder of M modulo MR (6 or 8) and of N modulo NR (8 to 32), and one past, at tiny K.
        for m in range(1, 10):
            for n in range(1, 34):
                check_dense(m, n, 3, dtype)
        # K around the KC = 256 block, M around MC = 96, N around the tile widths.
        for k in (1, 2, 255, 256, 257, 520):
            for m in (1, 7, 8, 95, 96, 97, 200):
                for n in (1, 31, 32, 33, 65):
                    check_dense(m, n, k, dtype)
        # N across the NC = 2048 panel.
        check_dense(9, 2100, 5, dtype)
        # Convolutions: GEMM rows = n*oh*ow, columns = c_out, depth = 9 * c_in (9, 27, 261 > KC).
        for hw, pad in ((1, 1), (3, 0), (5, 1), (11, 1)):
            for c_in in (1, 3, 29):
                for c_out in (1, 5, 8, 16, 17, 31, 32, 33):
                    check_conv(2, hw, c_in, c_out, 3, pad, dtype)
    result["failures"] = failures
    print(json.dumps(result))
''')


@pytest.mark.parametrize("isa", ["ref", "avx2", "avx512"])
def test_forced_isa_matches_numpy_float64(isa):
    _skip_unless_cpu_runs(isa)
    proc = _run(_CHECK_PATH, isa=isa)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["isa"] == isa, f"PYCNN_ISA={isa} but the engine reports {result['isa']}"
    assert result["failures"] == [], "\n".join(result["failures"][:20])


# The engine-path suites (every alternative convolution path, the pooling and
# activation/batch-norm kernels, thread-count determinism, Winograd's error bound) under each forced ISA:
# the SIMD packing, pooling and activation variants follow the GEMM's ISA.
ENGINE_PATH_SUITES = ["tests/test_conv_engine_paths.py", "tests/test_pool_kernels.py",
                      "tests/test_activation_batchnorm_engine.py", "tests/test_threads_determinism.py",
                      "tests/test_fused_activation.py", "tests/test_winograd.py", "tests/test_pool_indices.py"]


@pytest.mark.parametrize("isa", ["ref", "avx2", "avx512"])
def test_engine_path_suites_pass_on_every_isa(isa):
    _skip_unless_cpu_runs(isa)
    code = ("import sys, pytest; sys.exit(pytest.main(['-q', '-x', '-p', 'no:cacheprovider', "
            f"*{ENGINE_PATH_SUITES!r}]))")
    proc = _run(code, isa=isa, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_small_m_dense_is_bytewise_the_same_on_every_isa():
    """Dense layers with 1-4 rows stream B without packing; that loop's AVX2 build does the
    portable build's operations in the same order, so the bytes agree across ISAs."""
    code = textwrap.dedent("""
        import hashlib, numpy as np
        from pycnn import ops
        rng = np.random.default_rng(3)
        h = hashlib.sha256()
        for dtype in (np.float32, np.float64):
            for m in (1, 2, 3, 4):
                for k, n in ((1, 1), (3, 7), (5, 33), (257, 1030)):
                    x, w = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
                    h.update(ops.dense(x, w, np.ones(n, dtype)).tobytes())
        print(hashlib.sha256(h.digest()).hexdigest())
    """)
    digests = set()
    for isa in ("ref", "avx2", "avx512"):
        if _ISA_NEEDS[isa] - _FLAGS:
            continue
        proc = _run(code, isa=isa)
        assert proc.returncode == 0, proc.stderr[-3000:]
        digests.add(proc.stdout.strip())
    assert len(digests) == 1


def test_unknown_isa_request_falls_back_to_automatic_choice():
    code = "import pycnn._engine as e; print(e.isa())"
    auto = _run(code)
    bogus = _run(code, isa="sse9000")
    assert auto.returncode == 0 and bogus.returncode == 0, auto.stderr + bogus.stderr
    assert bogus.stdout.strip() == auto.stdout.strip()
    expected = ("avx512" if not _ISA_NEEDS["avx512"] - _FLAGS else
                "avx2" if not _ISA_NEEDS["avx2"] - _FLAGS else "ref")
    if _FLAGS:   # /proc/cpuinfo readable: the automatic choice is the widest supported path
        assert auto.stdout.strip() == expected


# ------------------------------------------------------------ the benchmark

def _bench(tmp_path, *args):
    md, js = tmp_path / "bench.md", tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "pycnn.bench", "--quiet", "--markdown", str(md), "--json", str(js), *args]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, md.read_text(), json.loads(js.read_text())


def test_bench_quick_runs_without_torch(tmp_path):
    proc, md, data = _bench(tmp_path, "--quick", "--no-torch", "--threads", "1",
                            "--sections", "machine,gemm,conv,layers,nets",
                            "--only", "lenet.c,net.lenet5,relu,gemm")
    meta = data["meta"]
    assert meta["cpu"] and meta["cpu"] in md
    assert meta["torch"] is None and meta["isa"] in ("ref", "avx2", "avx512")
    # The peak comes from the FMA probe of every ISA the CPU has, at the requested thread count.
    for isa in ("avx512", "avx2"):
        if not _ISA_NEEDS[isa] - _FLAGS:
            assert data["peaks"][f"fma.{isa}.1t"]["median"] > 0
    assert data["peaks"]["mem.copy.1t"]["median"] > 0
    sections = {row["section"] for row in data["rows"]}
    assert sections == {"gemm", "conv", "layers", "nets"}
    for row in data["rows"]:
        assert row["threads"] == 1 and row["torch_ms"] is None and row["ratio"] is None
        assert row["pycnn_ms"] is None or row["pycnn_ms"] > 0
    conv_ids = {row["id"] for row in data["rows"] if row["section"] == "conv"}
    assert conv_ids == {"lenet.c1", "lenet.c3"}
    assert {row["pass"] for row in data["rows"] if row["section"] == "conv"} == {"fwd", "bwd-data", "bwd-filter"}
    lenet = [row for row in data["rows"] if row["id"] == "net.lenet5"]
    assert len(lenet) == 1 and lenet[0]["epoch_s_pycnn"] > 0
    assert "no torch" in md and "## Machine limits" in md


def test_bench_compares_with_torch(tmp_path):
    pytest.importorskip("torch", reason="PyTorch is not installed: the comparison columns cannot be filled")
    _, md, data = _bench(tmp_path, "--quick", "--threads", "1", "--sections", "conv,layers",
                         "--only", "lenet.c3,softmax")
    rows = data["rows"]
    assert {row["id"] for row in rows} == {"lenet.c3", "softmax+xent.128x10", "softmax+xent.32x1000"}
    for row in rows:
        assert row["torch_ms"] > 0 and row["ratio"] == pytest.approx(row["torch_ms"] / row["pycnn_ms"])
    assert "fwd.1t" in data["summary"]["conv_geomean_ratio"]
    assert f"PyTorch {data['meta']['torch']}" in md


def test_bench_rejects_unknown_section():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "pycnn.bench", "--sections", "gemm,warp"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--sections must name" in proc.stderr
