"""GEMM kernel throughput at MobileBERT's shapes, per ISA, against the core's measured FMA peak.

For every ISA this machine supports, times ``_C.PackedLinear`` (weights packed once, output preallocated,
no epilogue) on C[M, N] = A[M, K] W^T for the real MobileBERT GEMM shapes, and prints GFLOP/s (2MNK / t,
median of many runs after warm-up) and the percentage of that ISA's FMA peak. The peak is measured here, by
``_C._fma_peak``: a C++ loop of independent FMAs at the ISA's vector width (best of several runs), so it
reflects this core's FMA ports and clock rather than an assumed figure. NumPy's float32 matmul (its BLAS)
on the same shapes is printed for comparison. The main table is single-threaded; set OPENBLAS_NUM_THREADS=1
(done below unless already set) so NumPy's figure is per core too. A second table times the active ISA with
``num_threads`` = 1 and each count given by --threads (the process-wide pools), with the speedup over one
thread: it includes the pool's hand-off, which is what a forward pass pays per GEMM.

    python benchmarks/bench_kernels.py [--quick] [--threads 2,4]
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from mobilebert_lite import _C  # noqa: E402

MS = (16, 128, 384, 1024)
# (N, K) of MobileBERT's Linear layers: bottleneck in (512 -> 128), Q/K/V and attention output (128 -> 128),
# FFN up (128 -> 512), FFN down (512 -> 128), and the bottleneck-out (128 -> 512) / MLM transform widths.
NKS = ((128, 512), (128, 128), (512, 128), (512, 384))


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median_time(fn, min_runs: int, min_seconds: float) -> float:
    for _ in range(3):  # warm-up
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs per shape")
    ap.add_argument("--threads", default="2", help="comma-separated thread counts for the threads table ('' = none)")
    args = ap.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    min_runs, min_seconds = (10, 0.05) if args.quick else (50, 0.3)

    info = _C.runtime_info()
    isas = [i for i in info["supported_isas"] if not i.startswith("neon_")]
    print(f"CPU: {cpu_model()}  ({platform.machine()}); active ISA: {info['isa']}; supported: {isas}")
    print(f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}; single thread")

    peaks = {}
    for isa in isas:
        peaks[isa] = _C._fma_peak(isa, iters=5_000_000 if args.quick else 20_000_000, repeats=7)
    print("measured FMA peak per core: " + ", ".join(f"{i} {p:.1f} GFLOP/s" for i, p in peaks.items()))
    print()

    rng = np.random.default_rng(0)
    kernels = {isa: _C.PackedLinear(np.ones((1, 1), np.float32), isa=isa).kernel_name for isa in isas}
    header = f"{'M':>5} {'N':>4} {'K':>4} |" + "".join(f" {kernels[i]:>20} |" for i in isas) + f" {'numpy f32':>10}"
    print(header)
    print(f"{'':>15} |" + "".join(f" {'GFLOP/s':>10} {'% peak':>9} |" for _ in isas) + f" {'GFLOP/s':>10}")
    print("-" * len(header))
    for M in MS:
        for N, K in NKS:
            x = rng.standard_normal((M, K)).astype(np.float32)
            w = rng.standard_normal((N, K)).astype(np.float32)
            b = rng.standard_normal(N).astype(np.float32)
            out = np.empty((M, N), np.float32)
            flops = 2.0 * M * N * K
            row = f"{M:>5} {N:>4} {K:>4} |"
            for isa in isas:
                layer = _C.PackedLinear(w, b, isa=isa)
                runs = max(3, min_runs // 10) if isa == "scalar" else min_runs
                t = median_time(functools.partial(layer, x, out=out), runs, min_seconds)
                gf = flops / t * 1e-9
                row += f" {gf:>10.1f} {100 * gf / peaks[isa]:>8.0f}% |"
            wt = np.ascontiguousarray(w.T)
            t = median_time(functools.partial(np.matmul, x, wt, out=out), min_runs, min_seconds)
            row += f" {flops / t * 1e-9:>10.1f}"
            print(row, flush=True)

    if thread_counts:
        isa = info["isa"]
        print(f"\n{kernels[isa]} (active ISA), GFLOP/s and speedup over 1 thread; "
              f"this machine has {os.cpu_count()} CPUs")
        header = f"{'M':>5} {'N':>4} {'K':>4} | {'1 thread':>9} |" + "".join(
            f" {f'{t} threads':>10} {'speedup':>8} |" for t in thread_counts)
        print(header)
        print("-" * len(header))
        for M in (1, *MS):
            for N, K in NKS:
                x = rng.standard_normal((M, K)).astype(np.float32)
                layer = _C.PackedLinear(rng.standard_normal((N, K)).astype(np.float32),
                                        rng.standard_normal(N).astype(np.float32), isa=isa)
                out = np.empty((M, N), np.float32)
                flops = 2.0 * M * N * K
                t1 = median_time(functools.partial(layer, x, out=out, num_threads=1), min_runs, min_seconds)
                row = f"{M:>5} {N:>4} {K:>4} | {flops / t1 * 1e-9:>9.1f} |"
                for t in thread_counts:
                    tt = median_time(functools.partial(layer, x, out=out, num_threads=t), min_runs, min_seconds)
                    row += f" {flops / tt * 1e-9:>10.1f} {t1 / tt:>7.2f}x |"
                print(row, flush=True)


if __name__ == "__main__":
    main()
