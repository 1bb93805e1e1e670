"""Shared helpers of the benchmark scripts: the model build (HF safetensors + ONNX fp32 + ONNX dynamic int8),
the environment of the benchmark subprocesses, machine/version facts, and one "load engine" entry per engine.

Nothing here is imported by the package; torch, transformers and onnxruntime are imported lazily so that a child
process only pays for the engine it measures.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_WORKDIR = Path(os.environ.get("MBL_BENCH_DIR", "/tmp/mbl_bench"))

# Old-OpenBLAS workaround variables set on some machines; they slow down current numpy (wrong kernel / cache size).
# They are removed together for every benchmark subprocess.
OPENBLAS_WORKAROUND_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

# native_int8: ours with quantize="int8" (encoder Linears int8: weights per output channel, activations per token;
# mobilebert_lite/quantization.py), from the same safetensors.
ENGINES = ("native", "native_int8", "reference", "ort_fp32", "ort_int8", "torch")
ENGINE_LABEL = {
    "native": "mbl native",
    "native_int8": "mbl int8",
    "reference": "mbl reference",
    "ort_fp32": "ORT fp32",
    "ort_int8": "ORT int8",
    "torch": "PyTorch",
}

SEQ_MAX = 512
VOCAB = 30522


def child_env(threads: int) -> dict:
    """Environment of a benchmark subprocess: thread counts pinned, the OpenBLAS workaround removed."""
    env = dict(os.environ)
    for k in OPENBLAS_WORKAROUND_VARS:
        env.pop(k, None)
    for k in THREAD_VARS:
        env[k] = str(threads)
    env["MBL_NUM_THREADS"] = str(threads)  # harmless if the package ignores it; we also pass num_threads=
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["TOKENIZERS_PARALLELISM"] = "false"
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def paths(workdir: Path) -> dict:
    workdir = Path(workdir)
    return {
        "hf": workdir / "hf_model",
        "onnx_fp32": workdir / "onnx" / "model_fp32.onnx",
        "onnx_int8": workdir / "onnx" / "model_int8.onnx",
        "inputs": workdir / "inputs.npz",
        "meta": workdir / "build.json",
    }


# --------------------------------------------------------------------------------------------------------------
# Model build (run once, cached)
# --------------------------------------------------------------------------------------------------------------

def build_all(workdir: Path, *, seed: int = 0, force: bool = False, log=print) -> dict:
    """Random-weight google/mobilebert-uncased-shape MobileBertModel -> safetensors, ONNX fp32, ONNX int8."""
    p = paths(workdir)
    if p["meta"].exists() and not force and all(p[k].exists() for k in ("hf", "onnx_fp32", "onnx_int8")):
        return json.loads(p["meta"].read_text())
    Path(workdir).mkdir(parents=True, exist_ok=True)
    p["onnx_fp32"].parent.mkdir(parents=True, exist_ok=True)

    import torch
    import transformers
    from transformers import MobileBertConfig, MobileBertModel

    torch.manual_seed(seed)
    # transformers' MobileBertConfig defaults are google/mobilebert-uncased; the real checkpoint's config.json has
    # classifier_activation=False.
    cfg = MobileBertConfig(classifier_activation=False)
    model = MobileBertModel(cfg).eval()
    # HF init draws N(0, 0.02) weights and zero biases / unit NoNorm weights. Perturb the NoNorm/bias parameters so
    # every parameter is exercised (zero biases would hide a missing bias add in the agreement check).
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed + 1)
        for prm in model.parameters():
            if prm.ndim == 1:
                prm.add_(torch.randn(prm.shape, generator=g) * 0.02)
    t0 = time.perf_counter()
    model.save_pretrained(p["hf"], safe_serialization=True)
    log(f"[build] saved safetensors to {p['hf']} ({time.perf_counter() - t0:.1f} s)")

    exporter = export_onnx(model, p["onnx_fp32"], log=log)

    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    t0 = time.perf_counter()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic warns for every integer tensor of the trigram slicing
    try:
        quantize_dynamic(str(p["onnx_fp32"]), str(p["onnx_int8"]), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    log(f"[build] quantize_dynamic(QInt8) -> {p['onnx_int8']} ({time.perf_counter() - t0:.1f} s)")

    import onnxruntime

    meta = {
        "seed": seed,
        "config": "MobileBertConfig(classifier_activation=False) (google/mobilebert-uncased shape)",
        "num_hidden_layers": cfg.num_hidden_layers,
        "params": int(sum(x.numel() for x in model.parameters())),
        "exporter": exporter,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnx_fp32_mb": round(os.path.getsize(p["onnx_fp32"]) / 2**20, 1),
        "onnx_int8_mb": round(os.path.getsize(p["onnx_int8"]) / 2**20, 1),
    }
    p["meta"].write_text(json.dumps(meta, indent=1))
    return meta


def export_onnx(model, out_path: Path, *, opset: int = 17, log=print) -> str:
    """Export with dynamic batch/sequence axes. Tries the TorchScript exporter first (one self-contained file,
    plain ops that quantize_dynamic understands), then the dynamo exporter. Returns a description of what worked."""
    import torch

    ids = torch.randint(0, VOCAB, (2, 16))
    mask = torch.ones_like(ids)
    tt = torch.zeros_like(ids)
    args = (ids, mask, tt)
    names_in = ["input_ids", "attention_mask", "token_type_ids"]
    errors = []

    def _check(path):
        import onnx
        onnx.checker.check_model(str(path))
        import numpy as np
        import onnxruntime as ort
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for b, L in ((1, 5), (3, 40)):
            feed = {"input_ids": np.random.randint(0, VOCAB, (b, L)).astype(np.int64),
                    "attention_mask": np.ones((b, L), np.int64), "token_type_ids": np.zeros((b, L), np.int64)}
            out = s.run(["last_hidden_state"], feed)[0]
            assert out.shape == (b, L, 512), out.shape

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                          return_dict=True).last_hidden_state

    w = Wrapper(model).eval()
    attempts = [("torchscript", dict(dynamo=False)), ("dynamo", dict(dynamo=True))]
    for name, kw in attempts:
        t0 = time.perf_counter()
        try:
            with torch.no_grad():
                if name == "torchscript":
                    dyn = {n: {0: "batch", 1: "sequence"} for n in names_in}
                    dyn["last_hidden_state"] = {0: "batch", 1: "sequence"}
                    torch.onnx.export(w, args, str(out_path), input_names=names_in,
                                      output_names=["last_hidden_state"], dynamic_axes=dyn,
                                      opset_version=opset, do_constant_folding=True, **kw)
                else:
                    B = torch.export.Dim("batch", min=1, max=1024)
                    S = torch.export.Dim("sequence", min=2, max=SEQ_MAX)
                    ds = {n: {0: B, 1: S} for n in names_in}
                    prog = torch.onnx.export(w, args, dynamic_shapes=ds, input_names=names_in,
                                             output_names=["last_hidden_state"], opset_version=opset,
                                             external_data=False, **kw)
                    prog.save(str(out_path), external_data=False)
            _check(out_path)
            desc = f"torch.onnx.export({name}, opset {opset}, dynamic batch+sequence)"
            log(f"[build] {desc} -> {out_path} ({time.perf_counter() - t0:.1f} s)")
            if errors:
                desc += "; failed before: " + " | ".join(errors)
            return desc
        except Exception as e:  # noqa: BLE001 - report and try the next exporter
            msg = f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            log(f"[build] exporter failed, {msg}")
            errors.append(msg)
    raise RuntimeError("every ONNX exporter failed: " + " | ".join(errors))


def make_inputs(shapes, seed: int = 1234) -> dict:
    """Random token ids (CLS ... SEP framing), full attention mask, zero token types; int64."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for b, L in shapes:
        ids = rng.integers(1000, VOCAB, size=(b, L), dtype=np.int64)
        ids[:, 0] = 101
        ids[:, -1] = 102
        out[f"{b}x{L}"] = {
            "input_ids": ids,
            "attention_mask": np.ones((b, L), np.int64),
            "token_type_ids": np.zeros((b, L), np.int64),
        }
    return out


# --------------------------------------------------------------------------------------------------------------
# Engines: load() returns (run(feed) -> np.ndarray last_hidden_state, info dict)
# --------------------------------------------------------------------------------------------------------------

def load_engine(engine: str, workdir: Path, threads: int):
    p = paths(workdir)
    info = {}
    if engine in ("native", "native_int8", "reference"):
        import mobilebert_lite as mbl

        int8 = engine == "native_int8"
        m = mbl.MobileBertModel.from_pretrained(str(p["hf"]), backend="native" if int8 else engine,
                                                num_threads=threads, quantize="int8" if int8 else None)
        if int8:
            info.update(quantize=m.quantize, int8_linears=m.engine.int8_linears)
        ri = mbl.runtime_info()
        info["runtime_info"] = {k: ri.get(k) for k in ("isa", "kernels", "threads", "build", "default_backend")}

        def run(feed):
            return m(input_ids=feed["input_ids"], attention_mask=feed["attention_mask"],
                     token_type_ids=feed["token_type_ids"]).last_hidden_state

        return run, info
    if engine in ("ort_fp32", "ort_int8"):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        path = p["onnx_fp32"] if engine == "ort_fp32" else p["onnx_int8"]
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        info["providers"] = s.get_providers()

        def run(feed):
            return s.run(["last_hidden_state"], feed)[0]

        return run, info
    if engine == "torch":
        import torch
        from transformers import MobileBertModel

        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        m = MobileBertModel.from_pretrained(str(p["hf"])).eval()
        info["attn_implementation"] = getattr(m.config, "_attn_implementation", None)
        info["torch_threads"] = torch.get_num_threads()

        def run(feed):
            with torch.no_grad():
                t = {k: torch.from_numpy(v) for k, v in feed.items()}
                return m(**t).last_hidden_state.numpy()

        return run, info
    raise ValueError(f"unknown engine {engine!r}; choose from {ENGINES}")


# --------------------------------------------------------------------------------------------------------------
# Machine and versions
# --------------------------------------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        txt = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields = {}
    for line in txt.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            fields.setdefault(k.strip(), v.strip())
    name = fields.get("model name", platform.machine())
    extra = []
    if "cpu family" in fields:
        extra.append(f"family {fields['cpu family']} model {fields.get('model', '?')}")
    flags = set(fields.get("flags", "").split())
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16") if f in flags]
    if isa:
        extra.append("flags " + " ".join(isa))
    extra.append(f"{os.cpu_count()} logical CPUs")
    return f"{name} ({'; '.join(extra)})"


def blas_info() -> list:
    """OpenBLAS/MKL/OpenMP pools loaded in this process (threadpoolctl, optional)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{k: d.get(k) for k in keep if d.get(k) is not None} for d in threadpool_info()]


def versions() -> dict:
    import importlib.metadata as md

    out = {"python": sys.version.split()[0]}
    for pkg in ("numpy", "mobilebert-lite", "torch", "transformers", "onnxruntime", "onnx", "onnxscript"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def package_fingerprint() -> str | None:
    """Short hash of the installed mobilebert_lite files (Python + native module), without importing it: lets a
    run detect that the package was reinstalled between two of its processes."""
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("mobilebert_lite")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    h = hashlib.sha1()
    for f in sorted(root.rglob("*")):
        if f.is_file() and f.suffix in (".py", ".so", ".pyd"):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def background_busy(seconds: float = 0.3) -> float | None:
    """Fraction of all CPUs busy during `seconds` while this (idle) process sleeps: other jobs on the machine."""
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)
        return sum(v[:8]), idle

    try:
        t0, i0 = snap()
        time.sleep(seconds)
        t1, i1 = snap()
    except OSError:
        return None
    return None if t1 == t0 else 1.0 - (i1 - i0) / (t1 - t0)


def max_rel_err(x, ref) -> float:
    import numpy as np

    x = np.asarray(x, np.float64)
    ref = np.asarray(ref, np.float64)
    if x.shape != ref.shape:
        return float("nan")
    return float(np.max(np.abs(x - ref)) / max(1.0, float(np.max(np.abs(ref)))))


def print_table(hdr: list, rows: list) -> None:
    """A markdown table with padded columns."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(hdr)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(hdr, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
