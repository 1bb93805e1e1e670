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


class NativeOps(NumpyOps):
    """NumpyOps with the native kernels swapped in where they exist (the fused bias+residual+norm row op)."""

    name = "native"

    def __init__(self, num_threads=None):
        self.num_threads = num_threads

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
