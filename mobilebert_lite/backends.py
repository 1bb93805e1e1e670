"""Backend choice: "native" (C++ kernels through mobilebert_lite._C) or "reference" (pure NumPy).

The default is native when the extension is built, else reference; MBL_BACKEND overrides the default.
"""

from __future__ import annotations

import os

import numpy as np

from . import reference
from .reference import NumpyOps
from .weights import head_layout

try:  # the package must work without its compiled part
    from . import _C
except ImportError as exc:  # pragma: no cover - exercised only on installs without the extension
    _C = None
    NATIVE_IMPORT_ERROR = exc
else:
    NATIVE_IMPORT_ERROR = None

BACKENDS = ("reference", "native") if _C is not None else ("reference",)


class ReferenceEngine:
    """The NumPy engine behind one model class. run() returns the encoder and head outputs as a dict:
    last_hidden_state [N, L, H], hidden_states, attentions, pooler_output [N, H], pooled_logits [N, k],
    token_logits [N, L, k], mlm_logits [rows, V] (rows = mlm_rows, or every position)."""

    name = "reference"

    def __init__(self, config, params, class_name, num_threads=None, semantics="pt"):
        self.config, self.params, self.heads = config, params, head_layout(class_name)
        self.ops = NumpyOps()
        reference.quirks(config, semantics)  # validates
        self.semantics = semantics

    def run(self, inp, want_hidden=False, want_attentions=False, mlm_rows=None):
        cfg, params, ops, heads = self.config, self.params, self.ops, self.heads
        last, hidden, attn = reference.encode(
            cfg, params, ops, inp["input_ids"], inp["inputs_embeds"], inp["attention_mask"], inp["token_type_ids"],
            inp["position_ids"], want_hidden, want_attentions, self.semantics)
        out = {"last_hidden_state": last, "hidden_states": hidden, "attentions": attn}
        if heads["pooler"]:
            out["pooler_output"] = reference.pool(cfg, params, ops, last)
            if heads["pooled_linear"]:
                p = heads["pooled_linear"]
                out["pooled_logits"] = ops.linear(out["pooler_output"], params[p + "weight"], params[p + "bias"])
        if heads["token_linear"]:
            p = heads["token_linear"]
            out["token_logits"] = ops.linear(last, params[p + "weight"], params[p + "bias"])
        if heads["mlm"]:
            rows = last.reshape(-1, cfg.hidden_size)
            out["mlm_logits"] = reference.mlm_logits(cfg, params, ops, rows if mlm_rows is None else rows[mlm_rows])
        return out


class NativeEngine:
    """The same contract as ReferenceEngine, computed by one _C.Engine call with the GIL released."""

    name = "native"

    def __init__(self, config, params, class_name, num_threads=None, semantics="pt"):
        self.config = config
        # Default: MBL_NUM_THREADS, else every CPU (validated by the native side, which owns the pools).
        threads = num_threads or _C.runtime_info()["threads"]
        weights = {k: v if v.dtype == np.int8 else _f32(v) for k, v in params.items()}  # int8: quantised Linears
        file_backed = [k for k, v in weights.items() if _is_file_backed(v)]
        quirk_eps, mask_value = reference.quirks(config, semantics)
        native_config = {**config.to_dict(), "_quirk_eps": quirk_eps, "_mask_value": mask_value}
        self._engine = _C.Engine(native_config, weights, head_layout(class_name), threads, file_backed)
        self.int8_linears = self._engine.int8_linears

    @property
    def num_threads(self):
        return self._engine.num_threads

    def run(self, inp, want_hidden=False, want_attentions=False, mlm_rows=None):
        keep = inp["attention_mask"]
        keep = None if keep is None or keep.all() else np.ascontiguousarray(keep, dtype=np.uint8)
        rows = None if mlm_rows is None else np.ascontiguousarray(mlm_rows, dtype=np.int64)
        out = self._engine.forward(inp["input_ids"], inp["inputs_embeds"], inp["token_type_ids"],
                                   inp["position_ids"], keep, want_hidden, want_attentions, rows)
        out.setdefault("hidden_states", None)
        out.setdefault("attentions", None)
        return out


def _is_file_backed(array) -> bool:
    """True for a view into a read-only memory-mapped checkpoint (its pages can be re-read from the file)."""
    base = array
    while base is not None:
        if isinstance(base, np.memmap):
            return base.mode == "r"
        base = getattr(base, "base", None)
    return False


def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def default_backend() -> str:
    name = os.environ.get("MBL_BACKEND")
    if name:
        return name
    return "native" if _C is not None else "reference"


def make_engine(config, params, class_name, backend: str | None = None, num_threads: int | None = None,
                semantics: str = "pt"):
    """The engine that runs `class_name` on `backend` (default: native when built, else reference), with
    transformers' PyTorch (`"pt"`) or TensorFlow (`"tf"`) numerics."""
    name = backend or default_backend()
    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                    or num_threads < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    if name == "reference":
        return ReferenceEngine(config, params, class_name, num_threads, semantics)
    if name == "native":
        if _C is None:
            raise RuntimeError(f"backend='native' needs the compiled extension mobilebert_lite._C, which failed to "
                               f"import ({NATIVE_IMPORT_ERROR}); reinstall with a C++ compiler or use "
                               "backend='reference'")
        return NativeEngine(config, params, class_name, num_threads, semantics)
    raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")


def runtime_info() -> dict:
    """What runs here: the active ISA, kernel names and compiled ISAs (native), or the reference engine only."""
    info = {"backends": BACKENDS, "default_backend": default_backend(), "numpy": np.__version__}
    if _C is not None:
        info.update(_C.runtime_info())
    else:
        info.update({"isa": None, "kernels": {}, "compiled_isas": [], "native_error": str(NATIVE_IMPORT_ERROR)})
    # MobileBertTokenizerFast's core: C++ when the extension has it, else the (identical, slower) Python one
    info["tokenizer_core"] = "native" if hasattr(_C, "WordPieceTokenizer") else "python"
    return info
