#!/usr/bin/env python
"""Cold start: import + model load + first (1,128) forward, and peak RSS, each engine in a fresh process.

    python benchmarks/cold_start.py                      # mbl native, ORT fp32, ORT int8, PyTorch; 3 processes each
    python benchmarks/cold_start.py --engines native,ort_fp32 --repeat 5 --json cold.json

In the child the clock starts before the engine's imports (the interpreter's own start-up is reported separately
as the parent-measured process wall time); peak RSS is resource.getrusage(RUSAGE_SELF).ru_maxrss of the child.
The model files are the ones bench_model.py builds (same cache dir); the OS file cache is warm after the first
process, so the median is a warm-cache cold start (a fresh interpreter, not a fresh machine).
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # before anything else is imported (child mode)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_ENGINES = ("native", "ort_fp32", "ort_int8", "torch")


def child(engine: str, workdir: str, threads: int) -> None:
    """Measure in-process: import, load, first forward. Only the engine's own imports are on the clock."""
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hf = os.path.join(workdir, "hf_model")
    t0 = time.perf_counter()
    import numpy as np

    ids = np.random.default_rng(0).integers(1000, 30522, size=(1, 128), dtype=np.int64)
    ids[0, 0], ids[0, -1] = 101, 102
    mask = np.ones_like(ids)
    tt = np.zeros_like(ids)
    if engine in ("native", "reference"):
        import mobilebert_lite as mbl

        t1 = time.perf_counter()
        m = mbl.MobileBertModel.from_pretrained(hf, backend=engine, num_threads=threads)
        t2 = time.perf_counter()
        out = m(input_ids=ids, attention_mask=mask, token_type_ids=tt).last_hidden_state
    elif engine in ("ort_fp32", "ort_int8"):
        import onnxruntime as ort

        t1 = time.perf_counter()
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        name = "model_fp32.onnx" if engine == "ort_fp32" else "model_int8.onnx"
        s = ort.InferenceSession(os.path.join(workdir, "onnx", name), so, providers=["CPUExecutionProvider"])
        t2 = time.perf_counter()
        out = s.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt})[0]
    elif engine == "torch":
        import torch
        from transformers import MobileBertModel

        torch.set_num_threads(threads)
        t1 = time.perf_counter()
        m = MobileBertModel.from_pretrained(hf).eval()
        t2 = time.perf_counter()
        with torch.no_grad():
            out = m(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                    token_type_ids=torch.from_numpy(tt)).last_hidden_state.numpy()
    else:
        raise SystemExit(f"unknown engine {engine}")
    t3 = time.perf_counter()
    assert out.shape == (1, 128, 512)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "engine": engine,
        "total_s": t3 - t0, "import_s": t1 - t0, "load_s": t2 - t1, "first_forward_s": t3 - t2,
        "peak_rss_mib": ru.ru_maxrss / 1024.0,  # Linux: KiB
        "interpreter_rss_mib": rss_base / 1024.0,
        "since_process_start_s": t3 - _T0,
        "cpu_user_s": ru.ru_utime, "cpu_sys_s": ru.ru_stime,
    }))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sys.path.insert(0, str(HERE))
    import _common as C

    ap.add_argument("--workdir", default=str(C.DEFAULT_WORKDIR))
    ap.add_argument("--engines", default=",".join(DEFAULT_ENGINES), help=f"comma list of {','.join(C.ENGINES)}")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per engine (median reported)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a.child, a.workdir, a.threads)
        return 0

    C.build_all(Path(a.workdir), log=lambda s: print(s, flush=True))
    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    results = {}
    for eng in engines:
        runs = []
        tries = 0
        while len(runs) < a.repeat:
            busy = C.background_busy()
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", eng, "--workdir",
                                a.workdir, "--threads", str(a.threads)], env=C.child_env(a.threads),
                               capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if p.returncode != 0:
                tries += 1
                print(f"!! {eng} failed: {p.stderr.strip().splitlines()[-1:]}", flush=True)
                if tries < 3 and ("import" in p.stderr or "_C" in p.stderr):
                    print("   (the package may be being reinstalled; retrying in 60 s)", flush=True)
                    time.sleep(60)
                    continue
                break
            r = json.loads(p.stdout.strip().splitlines()[-1])
            r["process_wall_s"] = wall
            r["background_busy_before"] = busy
            if busy is not None and busy > 0.10:
                print(f"   [{eng}: machine busy, {busy:.0%} of the CPUs used by other jobs]", flush=True)
            runs.append(r)
        results[eng] = runs

    print(f"\nCPU: {C.cpu_model()}; mobilebert_lite package {C.package_fingerprint()}")
    print(f"threads={a.threads}; median of {a.repeat} fresh processes (warm OS file cache)\n")
    hdr = ("engine", "import+load+1st fwd s", "import s", "load s", "1st fwd s", "process wall s", "peak RSS MiB")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join("-" * (len(h) + 2) for h in hdr) + "|")
    summary = {}
    for eng, runs in results.items():
        if not runs:
            print(f"| {C.ENGINE_LABEL.get(eng, eng)} | failed |")
            continue
        med = {k: statistics.median(r[k] for r in runs) for k in
               ("total_s", "import_s", "load_s", "first_forward_s", "process_wall_s", "peak_rss_mib")}
        summary[eng] = med
        print(f"| {C.ENGINE_LABEL.get(eng, eng)} | {med['total_s']:.3f} | {med['import_s']:.3f} | "
              f"{med['load_s']:.3f} | {med['first_forward_s']:.3f} | {med['process_wall_s']:.3f} | "
              f"{med['peak_rss_mib']:.0f} |")
    print("\nimport+load+1st fwd: clock starts before the engine's imports (numpy included) inside the child;"
          "\nprocess wall: the parent's view, adds interpreter start-up and exit. DESIGN.md §5 targets: "
          "<= 0.3 s and <= 150 MiB (fp32).")
    if "native" in summary:
        n = summary["native"]
        print(f"  cold start target (<= 0.3 s): {n['total_s']:.3f} s -> {'MET' if n['total_s'] <= 0.3 else 'not met'}")
        print(f"  peak RSS target (<= 150 MiB): {n['peak_rss_mib']:.0f} MiB -> "
              f"{'MET' if n['peak_rss_mib'] <= 150 else 'not met'}")
    if a.json:
        Path(a.json).write_text(json.dumps({"cpu": C.cpu_model(), "threads": a.threads, "repeat": a.repeat,
                                            "package_fingerprint": C.package_fingerprint(),
                                            "versions": C.versions(), "median": summary, "runs": results},
                                           indent=1))
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
