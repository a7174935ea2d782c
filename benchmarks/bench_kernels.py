"""Benchmark of cnncalc.kernels on typical CNN layers (float32, 2 threads).

    python benchmarks/bench_kernels.py [--quick] [--no-compile] [--threads N]

For every layer and batch size (1 and 8) prints the median time, GFLOP/s
(GB/s of input+output for pools), the speed-up vs PyTorch (timed in a
separate subprocess when torch is importable: torch ops slow numba down in
the same process) and vs a numpy im2col + BLAS baseline, then the cold
compile time of each layer's kernels (subprocess, fresh CNNCALC_CACHE_DIR).
Speed-ups > 1 mean cnncalc is faster.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# name: (kind, params)
LAYERS = {
    "conv3x3 64->64 56x56": ("conv", dict(C=64, O=64, H=56, k=3, s=1, p=1, g=1)),
    "conv1x1 256->64 56x56": ("conv", dict(C=256, O=64, H=56, k=1, s=1, p=0, g=1)),
    "stem 7x7/2 3->64 224x224": ("conv", dict(C=3, O=64, H=224, k=7, s=2, p=3, g=1)),
    "vgg3x3 128->128 112x112": ("conv", dict(C=128, O=128, H=112, k=3, s=1, p=1, g=1)),
    "depthwise3x3 144 56x56": ("conv", dict(C=144, O=144, H=56, k=3, s=1, p=1, g=144)),
    "maxpool3x3/2 p1 64x112x112": ("maxpool", dict(C=64, H=112, k=3, s=2, p=1)),
    "avgpool2x2 64x112x112": ("avgpool", dict(C=64, H=112, k=2, s=2, p=0)),
    "linear 9216->4096": ("linear", dict(I=9216, O=4096)),
}
BATCHES = (1, 8)


def make_inputs(kind, prm, n):
    rng = np.random.default_rng(0)
    f32 = np.float32
    if kind == "conv":
        x = rng.standard_normal((n, prm["C"], prm["H"], prm["H"]), dtype=f32)
        w = rng.standard_normal((prm["O"], prm["C"] // prm["g"], prm["k"], prm["k"]), dtype=f32)
        b = rng.standard_normal(prm["O"], dtype=f32)
        return x, w, b
    if kind in ("maxpool", "avgpool"):
        return (rng.standard_normal((n, prm["C"], prm["H"], prm["H"]), dtype=f32),)
    x = rng.standard_normal((n, prm["I"]), dtype=f32)
    w = rng.standard_normal((prm["O"], prm["I"]), dtype=f32) * 0.01
    b = rng.standard_normal(prm["O"], dtype=f32)
    return x, w, b


def work(kind, prm, n):
    """(amount, unit): flops for conv/linear, bytes moved for pools."""
    if kind == "conv":
        oh = (prm["H"] + 2 * prm["p"] - prm["k"]) // prm["s"] + 1
        return 2.0 * n * prm["O"] * (prm["C"] // prm["g"]) * prm["k"] ** 2 * oh * oh, "GFLOP/s"
    if kind == "linear":
        return 2.0 * n * prm["I"] * prm["O"], "GFLOP/s"
    oh = (prm["H"] + 2 * prm["p"] - prm["k"]) // prm["s"] + 1
    return 4.0 * n * prm["C"] * (prm["H"] ** 2 + oh * oh), "GB/s"


def cnncalc_fn(kind, prm):
    import cnncalc.kernels as K

    if kind == "conv":
        return lambda x, w, b: K.conv2d(x, w, b, prm["s"], prm["p"], 1, prm["g"])
    if kind == "maxpool":
        return lambda x: K.max_pool2d(x, prm["k"], prm["s"], prm["p"])
    if kind == "avgpool":
        return lambda x: K.avg_pool2d(x, prm["k"], prm["s"], prm["p"])
    return lambda x, w, b: K.linear(x, w, b)


def numpy_fn(kind, prm):
    """im2col + BLAS (convs), sliding-window reductions (pools), matmul (linear)."""
    swv = np.lib.stride_tricks.sliding_window_view
    k, s, p = prm.get("k"), prm.get("s"), prm.get("p")
    if kind == "conv":
        g = prm["g"]

        def conv(x, w, b):
            n, c = x.shape[:2]
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
            win = swv(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]  # n c oh ow k k
            oh, ow = win.shape[2:4]
            if g == c and w.shape[1] == 1:  # depthwise
                out = np.einsum("nchwij,cij->nchw", win, w[:, 0], optimize=True)
                return out + b[None, :, None, None]
            cols = np.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(n, c * k * k, -1)
            out = np.matmul(w.reshape(w.shape[0], -1), cols) + b[None, :, None]
            return out.reshape(n, -1, oh, ow)

        return conv
    if kind == "maxpool":

        def mp(x):
            xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
            return swv(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s].max(axis=(4, 5))

        return mp
    if kind == "avgpool":
        return lambda x: swv(x, (k, k), axis=(2, 3))[:, :, ::s, ::s].mean(axis=(4, 5))
    return lambda x, w, b: x @ w.T + b


def torch_fn(kind, prm):
    import torch
    import torch.nn.functional as F

    if kind == "conv":
        return lambda x, w, b: F.conv2d(x, w, b, prm["s"], prm["p"], 1, prm["g"])
    if kind == "maxpool":
        return lambda x: F.max_pool2d(x, prm["k"], prm["s"], prm["p"])
    if kind == "avgpool":
        return lambda x: F.avg_pool2d(x, prm["k"], prm["s"], prm["p"])
    _ = torch
    return lambda x, w, b: F.linear(x, w, b)


def timeit(fn, args, repeats, min_time=0.2):
    fn(*args)  # warm-up (compiles)
    # let idle BLAS / OpenMP threads of the previous measurement stop spinning
    # (OpenBLAS spins ~0.1 s after a call and slows numba threads down)
    time.sleep(0.25)
    ts = []
    t_end = time.perf_counter() + min_time
    for i in range(max(repeats, 1) * 10):
        t0 = time.perf_counter()
        fn(*args)
        ts.append(time.perf_counter() - t0)
        if i + 1 >= repeats and time.perf_counter() > t_end:
            break
    return float(np.median(ts))


def torch_worker(threads, repeats, names):
    import torch

    torch.set_num_threads(threads)
    res = {}
    for name in names:
        kind, prm = LAYERS[name]
        for n in BATCHES:
            args = [torch.from_numpy(a) for a in make_inputs(kind, prm, n)]
            with torch.no_grad():
                res[f"{name}|{n}"] = timeit(torch_fn(kind, prm), args, repeats)
    print(json.dumps(res))


def compile_worker(name):
    import cnncalc.kernels as K

    K.set_num_threads(2)
    kind, prm = LAYERS[name]
    args = make_inputs(kind, prm, 1)
    fn = cnncalc_fn(kind, prm)
    t0 = time.perf_counter()
    fn(*args)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn(*args)
    second = time.perf_counter() - t0
    print(json.dumps({"compile": first - second}))


def run_torch(threads, repeats, names):
    try:
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return None
    except Exception:
        return None
    cmd = [sys.executable, __file__, "--torch-worker", "--threads", str(threads),
           "--repeats", str(repeats), "--layers", json.dumps(names)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        print("torch worker failed:", r.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_compile(name):
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, CNNCALC_CACHE_DIR=d)  # cnncalc points numba's cache there
        r = subprocess.run([sys.executable, __file__, "--compile-worker", name],
                           capture_output=True, text=True, env=env)  # fmt: skip
    if r.returncode:
        return float("nan")
    return json.loads(r.stdout.strip().splitlines()[-1])["compile"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--no-compile", action="store_true", help="skip cold compile timing")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--layers", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--compile-worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    repeats = a.repeats or (3 if a.quick else 10)
    names = json.loads(a.layers) if a.layers else list(LAYERS)
    if a.torch_worker:
        return torch_worker(a.threads, repeats, names)
    if a.compile_worker:
        return compile_worker(a.compile_worker)

    torch_times = None if a.no_torch else run_torch(a.threads, repeats, names)

    import cnncalc.kernels as K

    K.set_num_threads(a.threads)
    print(f"cnncalc.kernels benchmark: float32, {a.threads} threads, median of >= {repeats} runs")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5:
        print(f"WARNING: load average {load:.2f} before the run: other processes compete")
    print("speed-up columns: time(other) / time(cnncalc); > 1 means cnncalc is faster\n")
    hdr = f"{'layer':28s} {'N':>2s} {'time ms':>9s} {'rate':>14s} {'vs torch':>9s} {'vs numpy':>9s}"
    print(hdr)
    print("-" * len(hdr))
    for name in names:
        kind, prm = LAYERS[name]
        for n in BATCHES:
            args = make_inputs(kind, prm, n)
            t = timeit(cnncalc_fn(kind, prm), args, repeats)
            tn = timeit(numpy_fn(kind, prm), args, max(1, repeats // 3), min_time=0.0)
            amount, unit = work(kind, prm, n)
            tt = torch_times.get(f"{name}|{n}") if torch_times else None
            vs_t = f"{tt / t:8.2f}x" if tt else "      n/a"
            rate = f"{amount / t / 1e9:7.1f} {unit}"
            print(f"{name:28s} {n:2d} {t * 1e3:9.3f} {rate:>14s} {vs_t:>9s} {tn / t:8.2f}x")
            sys.stdout.flush()
    if torch_times:
        print("\nPyTorch reference (same layers, separate process):")
        for name in names:
            kind, prm = LAYERS[name]
            for n in BATCHES:
                amount, unit = work(kind, prm, n)
                tt = torch_times[f"{name}|{n}"]
                print(f"  {name:28s} {n:2d} {tt * 1e3:9.3f} ms {amount / tt / 1e9:7.1f} {unit}")
    if not a.no_compile:
        print("\nCold compile time (fresh CNNCALC_CACHE_DIR, first call minus second call):")
        for name in names:
            t = run_compile(name)
            note = "  (BLAS path: no numba kernel)" if abs(t) < 0.05 else ""
            print(f"  {name:28s} {t:6.2f} s{note}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
