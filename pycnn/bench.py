"""pycnn against the machine's limits and against PyTorch, in one run.

    python -m pycnn.bench                      # the whole suite (~5 min on 2 cores)
    python -m pycnn.bench --quick              # a smaller sample (~1 min)
    python -m pycnn.bench --markdown docs/benchmarks.md --json bench.json

First the machine's FMA peak (independent FMA chains, AVX-512 and AVX2, 1
and 2 threads) and memory bandwidth (read and copy over buffers larger than
the caches), then the suite of performance.md section 4: GEMM (against
NumPy's matmul and torch.mm), every convolution layer forward, backward-data
and backward-filter (plus, for VGG16's 3x3 layers, the forward by the explicit
Winograd option: passes fwd.winograd_2x2 / fwd.winograd_4x4, left out of the
summary's means), pooling, dense (fc6 at batch 32 also with its kernel packed
beforehand, pass fwd.packed), batch norm, activations and losses, and
whole networks (LeNet-5 training epoch, the small CIFAR CNN training step,
VGG16 inference, again with every kernel packed beforehand, with Winograd's
F(4x4) forward, and with both), each at 1 and 2 threads.  Every row shows the median time,
GFLOP/s or GB/s, % of the measured peak (compute) or of the measured copy
bandwidth (memory), and the speed ratio pycnn/PyTorch (> 1: pycnn faster).

PyTorch is optional: without it (or with --no-torch) the ratio columns say
"no torch".  Speed varies 10-30% between runs on a shared machine: compare
the ratio columns, which come from the same run, rather than absolute times;
on a busy machine the 1-thread CPU-time ratio (--json has every figure:
median, best and CPU time of each side) is the one to trust.
"""
import argparse
import ctypes
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

from . import _bench_suite as suite
from . import _engine
from . import __version__, set_num_threads

SECTIONS = ("machine", "gemm", "conv", "layers", "nets")
LENET_EPOCH_STEPS = 469   # 60 000 MNIST images at batch 128


# ----------------------------------------------------------------- timing

class Budget:
    """How long each measurement runs: at least `reps` timed calls after one
    warm-up, and more until `min_time` seconds are spent (at most `max_reps`)."""

    def __init__(self, quick):
        self.min_time = 0.05 if quick else 0.25
        self.reps = 3 if quick else 5
        self.max_reps = 20 if quick else 50


def measure(fn, budget):
    """(median wall, best wall, median CPU) seconds of fn().  The median wall
    time is the reported figure; the best shows what an uncontended run
    reaches; the process CPU time does not count time slices lost to other
    processes, so at 1 thread it is the robust figure on a busy machine."""
    fn()
    times, cpu = [], []
    start = time.perf_counter()
    while True:
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if len(times) >= budget.max_reps or (len(times) >= budget.reps and
                                             time.perf_counter() - start >= budget.min_time):
            break
    return statistics.median(times), min(times), statistics.median(cpu)


def pause_between_libraries():
    """Lets the other library's OpenMP workers stop spinning before we time."""
    time.sleep(0.005)


# ------------------------------------------------------------- the machine

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_family_model():
    """'family F model M' from /proc/cpuinfo: tells CPU generations apart when the
    model name is generic (a VM's "AMD EPYC": family 25 is Zen 3/4, 26 is Zen 5)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("cpu family", "model") and key not in fields:
                    fields[key] = value.strip()
                if not line.strip():
                    break
    except OSError:
        pass
    return f"family {fields['cpu family']} model {fields['model']}" if len(fields) == 2 else "unknown"


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def openblas_control():
    """(set_num_threads, corename) of the OpenBLAS NumPy is linked with, via
    its C API (NumPy has no thread setting of its own); (None, None) if not found."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None, None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = corename = None
        for name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                     "openblas_set_num_threads"):
            if hasattr(lib, name):
                setter = getattr(lib, name)
                setter.argtypes = [ctypes.c_int]
                break
        for name in ("scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename"):
            if hasattr(lib, name):
                getter = getattr(lib, name)
                getter.restype = ctypes.c_char_p
                corename = getter().decode()
                break
        if setter is not None:
            return setter, corename
    return None, None


def measure_peaks(threads_list, quick, log):
    """FMA GFLOP/s per ISA and thread count, and read/copy GB/s over buffers
    far larger than the L3 cache: median and best of many short runs.  The
    best is the peak ("% of peak" divides by it): a short run fits in one
    time slice even when other processes share the cores."""
    peaks = {}
    iterations = 1_000_000 if quick else 2_000_000   # ~2-4 ms each at the AVX-512 peak
    runs = 11 if quick else 31
    for isa in ("avx512", "avx2"):
        for threads in threads_list:
            rates, used = [], threads
            try:
                _engine.bench_fma(isa, threads, iterations // 10)   # warm-up (clock ramp)
                for _ in range(runs):
                    flops, seconds, used = _engine.bench_fma(isa, threads, iterations)
                    rates.append(flops / seconds / 1e9)
            except ValueError:
                continue
            peaks[f"fma.{isa}.{threads}t"] = {"median": statistics.median(rates), "best": max(rates),
                                              "unit": "GFLOP/s", "threads_used": used}
            log(f"  FMA {isa:6s} {threads}T: median {statistics.median(rates):7.1f} GFLOP/s, "
                f"best {max(rates):7.1f}")
    count = (16 if quick else 32) << 20   # floats: 64 / 128 MiB per buffer, beyond the L3 cache
    src = np.ones(count, np.float32)
    dst = np.zeros(count, np.float32)
    for kind, passes in (("read", 1), ("copy", 2)):
        for threads in threads_list:
            rates = []
            _engine.bench_memory(kind, dst, src, threads)
            for _ in range(5 if quick else 11):
                seconds, used = _engine.bench_memory(kind, dst, src, threads)
                rates.append(passes * src.nbytes / seconds / 1e9)
            peaks[f"mem.{kind}.{threads}t"] = {"median": statistics.median(rates), "best": max(rates),
                                               "unit": "GB/s", "threads_used": used}
            log(f"  memory {kind:4s} {threads}T: median {statistics.median(rates):6.1f} GB/s, "
                f"best {max(rates):6.1f}")
    return peaks


# ------------------------------------------------------------------ rows

class Report:
    def __init__(self, torch, peaks, isa, log):
        self.rows = []
        self.torch = torch
        self.peaks = peaks
        self.isa = isa
        self.log = log

    def peak_for(self, unit, threads):
        """The denominator of "% of peak": the FMA peak of pycnn's ISA, or the copy bandwidth."""
        if unit == "GFLOP":
            isa = self.isa if self.isa in ("avx512", "avx2") else "avx2"
            entry = self.peaks.get(f"fma.{isa}.{threads}t")
        elif unit == "GB":
            entry = self.peaks.get(f"mem.copy.{threads}t")
        else:
            entry = None
        return None if entry is None else entry["best"]

    def add(self, section, id_, pass_, threads, unit, work, pycnn_t, torch_t, extra=None, note=None):
        """pycnn_t, torch_t: measure()'s (median, best, CPU) seconds, or None when not run."""
        pycnn_s, torch_s = (None if t is None else t[0] for t in (pycnn_t, torch_t))
        ms = lambda t, i: None if t is None else t[i] * 1e3
        row = {"section": section, "id": id_, "pass": pass_, "threads": threads, "unit": unit, "work": work,
               "pycnn_ms": ms(pycnn_t, 0), "torch_ms": ms(torch_t, 0),
               "pycnn_best_ms": ms(pycnn_t, 1), "torch_best_ms": ms(torch_t, 1),
               "pycnn_cpu_ms": ms(pycnn_t, 2), "torch_cpu_ms": ms(torch_t, 2)}
        rate = lambda s: None if s is None or unit not in ("GFLOP", "GB") else work / s / 1e9
        row["pycnn_rate"], row["torch_rate"] = rate(pycnn_s), rate(torch_s)
        peak = self.peak_for(unit, threads)
        row["pycnn_pct_peak"] = None if row["pycnn_rate"] is None or not peak else 100 * row["pycnn_rate"] / peak
        row["ratio"] = None if pycnn_s is None or torch_s is None else torch_s / pycnn_s
        row["ratio_best"] = None if row["ratio"] is None else torch_t[1] / pycnn_t[1]
        # CPU-time ratio: meaningful at 1 thread (at 2, spinning workers count too).
        row["ratio_cpu"] = None if row["ratio"] is None or pycnn_t[2] <= 0 else torch_t[2] / pycnn_t[2]
        if note is not None:
            row["note"] = note
        if extra:
            row.update(extra)
        self.rows.append(row)
        self.log("  " + format_row_text(row, self.torch is not None))
        return row


def _fmt(value, digits=1):
    return "" if value is None else f"{value:.{digits}f}"


def _rate_unit(unit):
    return {"GFLOP": "GFLOP/s", "GB": "GB/s"}.get(unit, "")


def ratio_text(row, have_torch):
    if row.get("note"):
        return row["note"]
    if not have_torch:
        return "no torch"
    return _fmt(row["ratio"], 2)


def format_row_text(row, have_torch):
    return (f"{row['id']:26s} {row['pass']:10s} {row['threads']}T  pycnn {_fmt(row['pycnn_ms'], 3):>9s} ms "
            f"{_fmt(row['pycnn_rate']):>7s} {_rate_unit(row['unit']):7s} "
            f"{(_fmt(row['pycnn_pct_peak']) + '%') if row['pycnn_pct_peak'] is not None else '':>6s}  "
            f"torch {_fmt(row['torch_ms'], 3):>9s} ms  ratio {ratio_text(row, have_torch)}")


# ---------------------------------------------------------------- sections

def with_threads(threads, torch):
    set_num_threads(threads)
    if torch is not None:
        torch.set_num_threads(threads)


def run_gemm(report, torch, threads_list, budget, quick, only):
    sizes = (256, 1024) if quick else (256, 1024, 2048)
    set_blas_threads, corename = openblas_control()
    for size in sizes:
        if only is not None and not any(o in f"gemm.{size}" for o in only):
            continue
        rng = np.random.default_rng(size)
        a = rng.standard_normal((size, size), dtype=np.float32)
        b = rng.standard_normal((size, size), dtype=np.float32)
        c = np.empty((size, size), np.float32)
        # pycnn's GEMM is the dense layer's path: a 1x1 convolution over `size` one-pixel images.
        a4, b4, c4 = a.reshape(size, 1, 1, size), b.reshape(1, 1, size, size), c.reshape(size, 1, 1, size)
        geometry = (1, 1, 1, 1, 0, 0, 0, 0, 1)
        ws = suite._workspace(_engine.conv2d_workspace_size(a4.shape, b4.shape, False, geometry))
        pycnn_fn = lambda: _engine.conv2d_forward(a4, b4, None, c4, ws, geometry)
        numpy_fn = lambda: np.matmul(a, b, out=c)
        if torch is not None:
            ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
            torch_fn = lambda: torch.mm(ta, tb, out=tc)
        flops = 2 * size ** 3
        for threads in threads_list:
            with_threads(threads, torch)
            p = measure(pycnn_fn, budget)
            n = None   # NumPy's thread count cannot be set without OpenBLAS's C API
            if set_blas_threads is not None:
                set_blas_threads(threads)
                pause_between_libraries()
                n = measure(numpy_fn, budget)[0]
            t = None
            if torch is not None:
                pause_between_libraries()
                t = measure(torch_fn, budget)
            numpy_rate = None if n is None else flops / n / 1e9
            report.add("gemm", f"gemm.{size}", "C=A*B", threads, "GFLOP", flops, p, t,
                       extra={"numpy_ms": None if n is None else n * 1e3, "numpy_rate": numpy_rate,
                              "numpy_blas": corename})
    if set_blas_threads is not None:
        set_blas_threads(os.cpu_count() or 1)


def run_conv(report, torch, threads_list, budget, quick, only):
    shapes = [s for s in suite.CONV_SUITE if (not quick or s.id in suite.QUICK_CONV_IDS)]
    shapes = [s for s in shapes if only is None or any(o in s.id for o in only)]
    for shape in shapes:
        case = suite.ConvCase(shape, torch)
        for pass_ in suite.CONV_PASSES:
            for threads in threads_list:
                with_threads(threads, torch)
                p = measure(case.pycnn(pass_), budget)
                t = None
                if torch is not None:
                    pause_between_libraries()
                    t = measure(case.torch_pass(pass_), budget)
                    pause_between_libraries()
                report.add("conv", shape.id, pass_, threads, "GFLOP", case.flops, p, t)
        if shape.id in suite.WINOGRAD_CONV_IDS:
            for pass_, tile in suite.WINOGRAD_PASSES.items():
                winograd = suite.winograd_forward(case, tile)
                for threads in threads_list:
                    with_threads(threads, torch)
                    p = measure(winograd, budget)
                    t = None
                    if torch is not None:
                        pause_between_libraries()
                        t = measure(case.torch_pass("fwd"), budget)
                        pause_between_libraries()
                    report.add("conv", shape.id, pass_, threads, "GFLOP", case.flops, p, t)
        del case


def run_layers(report, torch, threads_list, budget, quick, fc6_kernel, only):
    for case in suite.layer_cases(torch, quick, fc6_kernel):
        if only is not None and not any(o in case.id for o in only):
            continue
        for threads in threads_list:
            with_threads(threads, torch)
            p = None if case.pycnn is None else measure(case.pycnn, budget)
            t = None
            if torch is not None and case.torch_fn is not None:
                pause_between_libraries()
                t = measure(case.torch_fn, budget)
                pause_between_libraries()
            report.add("layers", case.id, case.pass_, threads, case.unit, case.work, p, t,
                       note=case.missing)


def run_nets(report, torch, threads_list, quick, vgg_weights, only):
    """Whole networks: median of `runs` timed runs after a warm-up, each run
    `steps` consecutive steps; the LeNet epoch is 469 steps at that median."""
    nets = [("net.lenet5", lambda: suite.TrainingNet(torch, suite.LENET5, (28, 28, 1), 10, 128), 10, 5),
            ("net.cifar.b32", lambda: suite.TrainingNet(torch, suite.CIFAR_CNN, (32, 32, 3), 10, 32), 5, 5)]
    if not quick:
        nets.append(("net.cifar.b128", lambda: suite.TrainingNet(torch, suite.CIFAR_CNN, (32, 32, 3), 10, 128),
                     2, 5))
    if vgg_weights is not None:
        nets.append(("net.vgg16.infer", lambda: suite.InferenceNet(torch, suite.VGG16, vgg_weights,
                                                                   (224, 224, 3)), 1, 5))
        nets.append(("net.vgg16.infer.packed", lambda: suite.InferenceNet(torch, suite.VGG16, vgg_weights,
                                                                          (224, 224, 3), packed=True), 1, 5))
        nets.append(("net.vgg16.infer.winograd",
                     lambda: suite.InferenceNet(torch, suite.VGG16, vgg_weights, (224, 224, 3),
                                                algorithm=suite.WINOGRAD_NET_ALGORITHM), 1, 5))
        nets.append(("net.vgg16.infer.winograd.packed",
                     lambda: suite.InferenceNet(torch, suite.VGG16, vgg_weights, (224, 224, 3),
                                                algorithm=suite.WINOGRAD_NET_ALGORITHM, packed=True), 1, 5))
    for id_, make, steps, runs in nets:
        if only is not None and not any(o in id_ for o in only):
            continue
        if quick:
            steps, runs = max(1, steps // 2), 3
        net = make()
        budget = Budget(quick)
        budget.reps, budget.max_reps, budget.min_time = runs, runs, 0.0

        def many(step):
            def run():
                for _ in range(steps):
                    step()
            return run

        for threads in threads_list:
            with_threads(threads, torch)
            p = tuple(v / steps for v in measure(many(net.pycnn_step), budget))
            t = None
            if torch is not None:
                pause_between_libraries()
                t = tuple(v / steps for v in measure(many(net.torch_step), budget))
                pause_between_libraries()
            training = isinstance(net, suite.TrainingNet)
            flops = net.fwd_flops * (3 if training else 1)   # forward + backward-data + backward-filter
            extra = {"batch": getattr(net, "batch", 1), "step_flops_estimate": flops}
            pass_ = "train step" if training else "inference"
            if id_ == "net.lenet5":
                extra["epoch_s_pycnn"] = p[0] * LENET_EPOCH_STEPS
                extra["epoch_s_torch"] = None if t is None else t[0] * LENET_EPOCH_STEPS
                extra["epoch_cpu_s_pycnn"] = p[2] * LENET_EPOCH_STEPS
                extra["epoch_cpu_s_torch"] = None if t is None else t[2] * LENET_EPOCH_STEPS
            report.add("nets", id_, pass_, threads, "GFLOP", flops, p, t, extra=extra)
        del net


# ---------------------------------------------------------------- summary

def geomean(values):
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summarize(rows, threads_list):
    summary = {"conv_geomean_ratio": {}, "conv_geomean_ratio_best": {}, "conv_geomean_ratio_cpu": {},
               "slowest_vs_torch": []}
    for pass_ in suite.CONV_PASSES:
        for threads in threads_list:
            conv = [r for r in rows if r["section"] == "conv" and r["pass"] == pass_ and r["threads"] == threads]
            if conv:
                summary["conv_geomean_ratio"][f"{pass_}.{threads}t"] = geomean([r["ratio"] for r in conv])
                summary["conv_geomean_ratio_best"][f"{pass_}.{threads}t"] = geomean([r["ratio_best"] for r in conv])
                summary["conv_geomean_ratio_cpu"][f"{pass_}.{threads}t"] = geomean([r["ratio_cpu"] for r in conv])
    ranked = sorted((r for r in rows if r["ratio"] is not None), key=lambda r: r["ratio"])
    summary["slowest_vs_torch"] = [{k: r[k] for k in ("section", "id", "pass", "threads", "ratio", "pycnn_ms",
                                                      "torch_ms")} for r in ranked[:10]]
    return summary


# ---------------------------------------------------------------- markdown

def markdown(meta, peaks, rows, summary, have_torch):
    out = ["# pycnn benchmarks", "",
           f"Machine: **{meta['cpu']}** ({meta['cpu_family_model']}), {meta['cores']} cores; pycnn {meta['pycnn']} (GEMM micro-kernel "
           f"`{meta['isa']}`), NumPy {meta['numpy']} (BLAS core `{meta['numpy_blas']}`), "
           f"PyTorch {meta['torch'] or 'not installed'}; Python {meta['python']}.",
           f"Run: {meta['date']}, `{meta['command']}`, {meta['duration_s']:.0f} s; load average "
           f"{meta['load_start']:.2f} at the start, {meta['load_end']:.2f} at the end "
           f"({'a busy machine: absolute numbers are low and noisy, the ratios are the reliable part' if meta['busy'] else 'an otherwise idle machine'}).",
           "", "Regenerate with `python -m pycnn.bench --markdown docs/benchmarks.md` (add `--json FILE` "
           "for every number, including best-of times).", "",
           "Ratio = PyTorch time / pycnn time (> 1: pycnn faster), from median wall times; the CPU-time ratio "
           "uses process CPU time instead (robust to preemption at 1 thread). % = pycnn's share of the measured "
           "FMA peak (best probe run) of its ISA (compute rows) or of the measured copy bandwidth (memory rows; above 100% "
           "when the data stays in cache). Medians of repeated calls after a warm-up.", "",
           ]
    if peaks:
        out += ["## Machine limits (measured in this run)", "",
                "| probe | threads | median | best |", "| --- | --- | --- | --- |"]
    for key, p in peaks.items():
        kind, what, threads = key.split(".")
        out.append(f"| {kind} {what} | {threads} | {p['median']:.1f} {p['unit']} | {p['best']:.1f} {p['unit']} |")
    if summary["conv_geomean_ratio"]:
        keys = sorted({k.split(".")[1] for k in summary["conv_geomean_ratio"]})
        out += ["", "## Summary", "",
                "Convolution suite, geometric mean of the speed ratio pycnn/PyTorch (> 1: pycnn faster) "
                "from median wall times, best wall times and median CPU times (the CPU-time ratio is the "
                "robust one at 1 thread on a busy machine; at 2 threads wall time on a busy machine mostly "
                "measures how each library's threads survive preemption):", "",
                "| pass | " + " | ".join(f"{t} median | {t} best | {t} CPU" for t in keys) + " |",
                "| --- |" + " --- | --- | --- |" * len(keys)]
        for pass_ in suite.CONV_PASSES:
            cells = []
            for t in keys:
                for kind in ("conv_geomean_ratio", "conv_geomean_ratio_best", "conv_geomean_ratio_cpu"):
                    value = summary[kind].get(f"{pass_}.{t}")
                    cells.append(_fmt(value, 2) if value else "no torch")
            out.append(f"| {pass_} | " + " | ".join(cells) + " |")
    if summary["slowest_vs_torch"]:
        out += ["", "Slowest relative to PyTorch:", ""]
        for r in summary["slowest_vs_torch"]:
            out.append(f"- {r['id']} {r['pass']} {r['threads']}T: ratio {r['ratio']:.2f} "
                       f"({r['pycnn_ms']:.3f} ms vs {r['torch_ms']:.3f} ms)")
    titles = {"gemm": "GEMM (float32, C = A B)", "conv": "Convolution layers (performance.md 4.1)",
              "layers": "Other layers (performance.md 4.2)", "nets": "Whole networks (performance.md 4.3)"}
    for section, title in titles.items():
        section_rows = [r for r in rows if r["section"] == section]
        if not section_rows:
            continue
        out += ["", f"## {title}", ""]
        head = ("| id | pass | thr | work | pycnn ms | pycnn rate | % | PyTorch ms | PyTorch rate | ratio "
                "| CPU-time ratio |")
        if section == "gemm":
            head += " NumPy ms | NumPy GFLOP/s |"
        out += [head, "|" + " --- |" * (head.count("|") - 1)]
        for r in section_rows:
            work = (f"{r['work'] / 1e6:.1f} MFLOP" if r["unit"] == "GFLOP" else
                    f"{r['work'] / 1e6:.1f} MB" if r["unit"] == "GB" else "")
            rate_unit = _rate_unit(r["unit"])
            line = (f"| {r['id']} | {r['pass']} | {r['threads']} | {work} | {_fmt(r['pycnn_ms'], 3)} | "
                    f"{_fmt(r['pycnn_rate'])} {rate_unit if r['pycnn_rate'] is not None else ''} | "
                    f"{_fmt(r['pycnn_pct_peak'])} | {_fmt(r['torch_ms'], 3) or '—'} | "
                    f"{_fmt(r['torch_rate'])} {rate_unit if r['torch_rate'] is not None else ''} | "
                    f"{ratio_text(r, have_torch)} | {_fmt(r.get('ratio_cpu'), 2)} |")
            if section == "gemm":
                line += f" {_fmt(r.get('numpy_ms'), 3)} | {_fmt(r.get('numpy_rate'))} |"
            out.append(line)
        if section == "nets":
            for r in section_rows:
                if "epoch_s_pycnn" in r:
                    torch_epoch = r.get("epoch_s_torch")
                    torch_cpu = r.get("epoch_cpu_s_torch")
                    out.append(f"\nLeNet-5 epoch ({LENET_EPOCH_STEPS} steps of batch 128), {r['threads']} "
                               f"thread(s): pycnn {r['epoch_s_pycnn']:.2f} s, PyTorch "
                               f"{'%.2f s' % torch_epoch if torch_epoch else 'not measured'} "
                               f"(median step wall time x {LENET_EPOCH_STEPS}); CPU time pycnn "
                               f"{r['epoch_cpu_s_pycnn']:.2f} s, PyTorch "
                               f"{'%.2f s' % torch_cpu if torch_cpu else 'not measured'}.")
    return "\n".join(out) + "\n"


# -------------------------------------------------------------------- main

def import_torch(disabled, log):
    if disabled:
        return None
    try:
        import torch
    except ImportError:
        log("PyTorch is not installed: the ratio columns say 'no torch'")
        return None
    return torch


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m pycnn.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller sample of the suite (~1 minute)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--only", default=None,
                        help="comma-separated substrings: run only rows whose id contains one")
    parser.add_argument("--threads", default="1,2", help="thread counts to run (default 1,2)")
    parser.add_argument("--no-torch", action="store_true", help="do not run PyTorch even if installed")
    parser.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    parser.add_argument("--json", metavar="PATH", help="write every row as JSON")
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in args.sections if s not in SECTIONS]
    if bad:
        parser.error(f"--sections must name {', '.join(SECTIONS)}; got {', '.join(bad)}")
    try:
        args.threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        parser.error(f"--threads must be comma-separated ints; got {args.threads!r}")
    if not args.threads or min(args.threads) < 1:
        parser.error(f"--threads must be ints >= 1; got {args.threads}")
    args.only = None if args.only is None else [o.strip() for o in args.only.split(",") if o.strip()]
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    log = (lambda message: None) if args.quiet else (lambda message: print(message, flush=True))
    started = time.time()
    load_start = load_average()
    torch = import_torch(args.no_torch, log)
    isa = _engine.isa()
    flags = cpu_flags()
    meta = {"cpu": cpu_model(), "cpu_family_model": cpu_family_model(), "cores": os.cpu_count(), "isa": isa, "pycnn": __version__,
            "numpy": np.__version__, "numpy_blas": openblas_control()[1],
            "torch": None if torch is None else torch.__version__, "python": platform.python_version(),
            "cpu_flags": sorted(f for f in flags if f in ("avx2", "fma", "avx512f", "avx512vl", "avx512bw")),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "command": "python -m pycnn.bench " + " ".join(sys.argv[1:] if argv is None else argv),
            "threads": args.threads, "quick": args.quick, "load_start": load_start}
    log(f"pycnn {__version__} on {meta['cpu']} ({meta['cpu_family_model']}, {meta['cores']} cores), GEMM kernel {isa}; "
        f"PyTorch {meta['torch'] or 'absent'}; load average {load_start:.2f}")
    budget = Budget(args.quick)

    peaks = {}
    if "machine" in args.sections:
        log("machine limits:")
        peaks = measure_peaks(args.threads, args.quick, log)
    report = Report(torch, peaks, isa, log)
    needs_vgg = not args.quick and (("nets" in args.sections) or ("layers" in args.sections))
    vgg_weights = suite.make_weights(suite.VGG16) if needs_vgg else None
    fc6_kernel = vgg_weights[13][0] if vgg_weights is not None else None
    if "gemm" in args.sections:
        log("GEMM:")
        run_gemm(report, torch, args.threads, budget, args.quick, args.only)
    if "conv" in args.sections:
        log("convolution layers:")
        run_conv(report, torch, args.threads, budget, args.quick, args.only)
    if "layers" in args.sections:
        log("other layers:")
        run_layers(report, torch, args.threads, budget, args.quick, fc6_kernel, args.only)
    if "nets" in args.sections:
        log("networks:")
        run_nets(report, torch, args.threads, args.quick, vgg_weights, args.only)

    meta["load_end"] = load_average()
    meta["duration_s"] = time.time() - started
    # Runnable threads before we started: others were using the CPU.
    meta["busy"] = meta["load_start"] > (os.cpu_count() or 1) / 2   # others use half the cores
    summary = summarize(report.rows, args.threads)
    print("summary:")
    for key, value in summary["conv_geomean_ratio"].items():
        best, cpu = summary["conv_geomean_ratio_best"][key], summary["conv_geomean_ratio_cpu"][key]
        print(f"  conv {key}: geometric mean ratio pycnn/PyTorch "
              f"{_fmt(value, 2) if value is not None else 'no torch'} (best times: {_fmt(best, 2) or '-'}, "
              f"CPU times: {_fmt(cpu, 2) or '-'})")
    for r in report.rows:
        if "epoch_s_pycnn" in r:
            print(f"  LeNet-5 epoch {r['threads']}T: pycnn {r['epoch_s_pycnn']:.2f} s, PyTorch "
                  f"{_fmt(r['epoch_s_torch'], 2) or 'no torch'} s")
    for r in summary["slowest_vs_torch"][:5]:
        print(f"  slow: {r['id']} {r['pass']} {r['threads']}T ratio {r['ratio']:.2f}")
    print(f"  {meta['duration_s']:.0f} s, load average {meta['load_start']:.2f} -> {meta['load_end']:.2f}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(meta, peaks, report.rows, summary, torch is not None))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "peaks": peaks, "rows": report.rows, "summary": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
