"""Backend choice: "native" (C++ kernels through mobilebert_lite._C) or "reference" (pure NumPy).

The default is native when the extension is built, else reference; MBL_BACKEND overrides the default.
"""

from __future__ import annotations

import os

import numpy as np

from .reference import NumpyOps

try:  # the package must work without its compiled part
    from . import _C
except ImportError as exc:  # pragma: no cover - exercised only on installs without the extension
    _C = None
    NATIVE_IMPORT_ERROR = exc
else:
    NATIVE_IMPORT_ERROR = None

BACKENDS = ("reference", "native") if _C is not None else ("reference",)


# HF activation name -> the native epilogue computing the same function; others run in NumPy after the GEMM.
NATIVE_ACTIVATIONS = {
    "relu": "relu", "relu6": "relu6", "linear": "none",
    "gelu": "gelu", "gelu_python": "gelu",
    "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_python_tanh": "gelu_tanh",
    "gelu_accurate": "gelu_tanh",
}
# Weights used as nn.Linear [out, in] matrices by the engine (packed once at load for the GEMM kernels).
_LINEAR_SUFFIXES = ("dense.weight", "query.weight", "key.weight", "value.weight", "embedding_transformation.weight",
                    "seq_relationship.weight", "classifier.weight", "qa_outputs.weight")


class NativeOps(NumpyOps):
    """NumpyOps with the native kernels swapped in: packed GEMMs with fused bias, activation, residual and norm.

    Weights are packed once (`prepare`); a linear whose weight was not packed falls back to NumPy.
    Partial step towards the one-call C++ forward of the native-engine issue: the graph still walks in Python.
    """

    name = "native"

    def __init__(self, num_threads=None):
        self.num_threads = num_threads
        self._packed = {}

    def prepare(self, params: dict) -> None:
        for name, weight in params.items():
            if weight.ndim != 2 or not name.endswith(_LINEAR_SUFFIXES) or name == "cls.predictions.dense.weight":
                continue
            bias = params.get(name[: -len("weight")] + "bias")
            self._packed[(id(weight), id(bias))] = _C.PackedLinear(_f32(weight), None if bias is None else _f32(bias))

    def _gemm(self, x, weight, bias, **epilogue):
        packed = self._packed.get((id(weight), id(bias)))
        if packed is None:
            return None
        rows = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, x.shape[-1])
        if epilogue.get("residual") is not None:
            epilogue["residual"] = _f32(epilogue["residual"]).reshape(rows.shape[0], -1)
        return packed(rows, **epilogue).reshape(*x.shape[:-1], packed.n)

    def linear(self, x, weight, bias=None):
        out = self._gemm(x, weight, bias)
        return super().linear(x, weight, bias) if out is None else out

    def dense_act(self, x, weight, bias, activation):
        native = NATIVE_ACTIVATIONS.get(activation)
        out = None if native is None else self._gemm(x, weight, bias, activation=native)
        return super().dense_act(x, weight, bias, activation) if out is None else out

    def dense_add_norm(self, x, weight, bias, residual, norm_weight, norm_bias, *, layer_norm, eps):
        out = self._gemm(x, weight, bias, residual=residual, norm="layer_norm" if layer_norm else "no_norm",
                         norm_weight=_f32(norm_weight), norm_bias=_f32(norm_bias), eps=float(eps))
        if out is None:
            return super().dense_add_norm(x, weight, bias, residual, norm_weight, norm_bias,
                                          layer_norm=layer_norm, eps=eps)
        return out

    def add_norm(self, x, weight, beta, *, bias=None, residual=None, layer_norm=False, eps=1e-12):
        shape = x.shape
        rows = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, shape[-1])
        if residual is not None:
            residual = np.ascontiguousarray(np.broadcast_to(residual, shape), dtype=np.float32).reshape(rows.shape)
        out = _C.add_norm(rows, _f32(weight), _f32(beta), bias=None if bias is None else _f32(bias),
                          residual=residual, layer_norm=layer_norm, eps=float(eps))
        return out.reshape(shape)


def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def default_backend() -> str:
    name = os.environ.get("MBL_BACKEND")
    if name:
        return name
    return "native" if _C is not None else "reference"


def make_ops(backend: str | None = None, num_threads: int | None = None) -> NumpyOps:
    name = backend or default_backend()
    if name == "reference":
        return NumpyOps()
    if name == "native":
        if _C is None:
            raise RuntimeError(f"backend='native' needs the compiled extension mobilebert_lite._C, which failed to "
                               f"import ({NATIVE_IMPORT_ERROR}); reinstall with a C++ compiler or use "
                               "backend='reference'")
        _C.runtime_info()  # surfaces a bad MBL_FORCE_ISA at load time rather than at the first forward
        return NativeOps(num_threads)
    raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")


def runtime_info() -> dict:
    """What runs here: the active ISA, kernel names and compiled ISAs (native), or the reference engine only."""
    info = {"backends": BACKENDS, "default_backend": default_backend(), "numpy": np.__version__}
    if _C is not None:
        info.update(_C.runtime_info())
    else:
        info.update({"isa": None, "kernels": {}, "compiled_isas": [], "native_error": str(NATIVE_IMPORT_ERROR)})
    return info
