"""int8 inference: which Linears run in int8, how weights are quantised, and the NumPy statement of the math.

Scheme (measured choices are documented in benchmarks/RESULTS.md, "int8"):

- weights: symmetric int8 per output channel, ``scale[n] = max|W[n]| / 127``, values in [-127, 127];
- activations: asymmetric int8 per row (token), x ~ scale * q + zero with q in [-128, 127], quantised dynamically
  at every call with the contract of csrc/kernels/kernels.h (``quantize_rows`` below reproduces its bytes,
  scales and zeros bit for bit). Asymmetric because a row's range, not its largest magnitude, sets the step: it
  is never coarser than symmetric and twice as fine on ReLU/GELU outputs (measured on the MiniLM weights: mean
  error 7.4e-2 symmetric, 5.1e-2 asymmetric);
- products accumulated exactly in int32 and dequantised in the GEMM's epilogue,
  ``y = fma(float(acc), a_scale * w_scale, fma(a_zero, w_sum, bias))`` with ``w_sum = w_scale * sum_k q_w``;
  NoNorm/LayerNorm, residuals, attention and softmax stay float32;
- which Linears: every encoder projection (:func:`int8_linears`); the heads (pooler, classifiers, MLM transform
  and decoder) stay float32 -- they are a small share of the work at the sizes that matter and sit right
  before the outputs users compare.

A quantised checkpoint (``mobilebert-lite quantize``) is a safetensors file whose int8 tensors each have a
float32 companion ``<name>_scale`` (one scale per row, dimension 0, or per column for the MLM head's dense
``[H - E, V]`` weight, whose output channel is dimension 1); the file's metadata names the format. Linears in the
int8 plan keep their int8 values; every other quantised tensor (word embeddings, MLM head) is stored in int8
only to make the file small and is dequantised to float32 when loaded.
"""

from __future__ import annotations

import re

import numpy as np

from .errors import CheckpointError

FORMAT_KEY = "mobilebert_lite.quantization"
FORMAT = "int8-v1"
SCALE_SUFFIX = "_scale"
QUANTIZE_CHOICES = (None, "int8")

_F127 = np.float32(127.0)
_F128 = np.float32(128.0)
_F255 = np.float32(255.0)

# Encoder Linears (canonical names, without the "weight" suffix) that run in int8.
_INT8_LINEAR = re.compile(
    r"^(embeddings\.embedding_transformation\.|encoder\.layer\.\d+\.("
    r"bottleneck\.(input|attention)\.dense|attention\.self\.(query|key|value)|attention\.output\.dense|"
    r"(ffn\.\d+\.)?(intermediate|output)\.dense|output\.bottleneck\.dense)\.)weight$")
# Large float tensors stored as int8 in a quantised checkpoint (dequantised at load), and the axis their
# scales run along.
_STORED_INT8 = {"embeddings.word_embeddings.weight": 0, "cls.predictions.decoder.weight": 0,
                "cls.predictions.dense.weight": 1}


def check_quantize(quantize):
    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    return quantize


def int8_linears(names) -> list[str]:
    """The weight names among `names` whose Linear runs in int8."""
    return sorted(n for n in names if _INT8_LINEAR.match(n))


# ------------------------------------------------------------------------------------------------- the math
def quantize_weight(weight: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per slice along `axis` (0: per row). Returns (q int8, scale float32 of weight.shape[axis]).

    scale = max|w| / 127 (0 for an all-zero slice, whose q is 0); q = clip(rint(w / scale), -127, 127).
    """
    w = np.asarray(weight, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"quantize_weight expects a 2-D weight, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("cannot quantise a weight holding NaN or inf")
    amax = np.abs(w).max(axis=1 - axis)
    scale = (amax / _F127).astype(np.float32)
    safe = np.where(scale > 0, scale, np.float32(1.0))
    q = np.rint(w / (safe[:, None] if axis == 0 else safe[None, :]))
    return np.clip(q, -127, 127).astype(np.int8), scale


def dequantize(q: np.ndarray, scale: np.ndarray, axis: int = 0) -> np.ndarray:
    s = scale[:, None] if axis == 0 else scale[None, :]
    return (q.astype(np.float32) * s).astype(np.float32)


def quantize_rows(x: np.ndarray, smooth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The native per-row activation quantiser, bit for bit: (q int8 [M, K], scale [M], zero [M] float32), with
    x ~ scale * q + zero per row (asymmetric, q in [-128, 127]).

    y = x * smooth (float32); lo, hi = min, max of the row; a row with NaN/inf (or an infinite range) gets
    scale = zero = NaN and q = 0, a constant row (or one whose 255 / range overflows) scale 0, zero lo and q = 0;
    otherwise scale = (hi - lo) / 255,
    zero = lo + 128 * scale and q = clip(rint((y - lo) * (255 / (hi - lo))), 0, 255) - 128, all in float32.
    """
    y = np.asarray(x, dtype=np.float32)
    if smooth is not None:
        y = y * np.asarray(smooth, dtype=np.float32)
    y = y.reshape(-1, y.shape[-1])
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        lo, hi = y.min(axis=1), y.max(axis=1)
        rng = (hi - lo).astype(np.float32)
        finite = np.isfinite(y).all(axis=1) & np.isfinite(rng)
        usable = finite & np.isfinite(_F255 / rng)  # not constant, nor within 255 / FLT_MAX of it
        safe = np.where(usable, rng, _F255)
        scale = np.where(usable, safe / _F255, np.where(finite, np.float32(0), np.float32(np.nan))).astype(np.float32)
        inv = (_F255 / safe).astype(np.float32)
        zero = np.where(usable, lo + _F128 * scale, np.where(finite, lo, np.float32(np.nan))).astype(np.float32)
        u = np.rint((y - lo[:, None]) * inv[:, None])
    q = np.where(usable[:, None], np.clip(u, 0, 255) - 128, 0).astype(np.int8)
    return q, scale, zero


class Int8Weight:
    """An int8 Linear weight as the reference engine runs it: q int8 [N, K], scale float32 [N], smooth [K] or None.

    __call__(x, bias) computes what the native kernels do: x quantised per row, exact integer products, then
    fma(float(acc), a_scale * w_scale, fma(a_zero, w_sum, bias)) with w_sum = w_scale * sum_k q (float64 stands
    in for the fused multiply-adds, which can differ by an ulp where it rounds twice).
    """

    def __init__(self, q, scale, smooth=None):
        self.q, self.scale, self.smooth = q, scale, smooth
        self.w_sum = (scale * q.astype(np.int64).sum(axis=1).astype(np.float32)).astype(np.float32)

    def __call__(self, x: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        lead = x.shape[:-1]
        qx, ascale, azero = quantize_rows(x, self.smooth)
        acc = qx.astype(np.int64) @ self.q.T.astype(np.int64)
        s = (ascale[:, None] * self.scale[None, :]).astype(np.float32)
        y = acc.astype(np.float32).astype(np.float64) * s.astype(np.float64)
        offset = azero[:, None].astype(np.float64) * self.w_sum[None, :].astype(np.float64)
        if bias is not None:
            offset += bias.astype(np.float64)
        y += offset.astype(np.float32).astype(np.float64)  # the inner fma rounds to float32 first
        return y.astype(np.float32).reshape(*lead, self.q.shape[0])


def linear_weight(params: dict, prefix: str):
    """params[prefix + "weight"] as the engines use it: a float32 array, or an Int8Weight if it is int8."""
    w = params[prefix + "weight"]
    if w.dtype == np.int8:
        return Int8Weight(w, params[prefix + "weight_scale"], params.get(prefix + "input_smooth"))
    return w


# ------------------------------------------------------------------------------------- params and checkpoints
def quantize_params(params: dict, stored: dict | None = None, only=None) -> dict:
    """params (canonical names, float32) with every Linear of the int8 plan replaced by its int8 weight and
    "<prefix>weight_scale". `stored` maps weight names to (q, scale) already quantised (read from a quantised
    checkpoint), used as they are instead of re-quantising. `only(name) -> bool` restricts the plan further
    (the per-layer sensitivity study, tools/int8_sensitivity.py)."""
    out = dict(params)
    for name in int8_linears(params):
        if only is not None and not only(name):
            continue
        q, scale = (stored or {}).get(name) or quantize_weight(params[name])
        out[name] = np.ascontiguousarray(q)
        out[name[:-len("weight")] + "weight_scale"] = np.ascontiguousarray(scale, dtype=np.float32)
    return out


def is_quantized_checkpoint(raw: dict) -> bool:
    return any(isinstance(v, np.ndarray) and v.dtype == np.int8 for v in raw.values())


def split_quantized(raw: dict) -> tuple[dict, dict]:
    """A quantised checkpoint's tensors -> (float tensors with every int8 one dequantised, {name: (q, scale)} of
    the int8 ones). Raises CheckpointError for an int8 tensor without its scale, or a scale of the wrong shape."""
    floats, stored = {}, {}
    for name, value in raw.items():
        if name.endswith(SCALE_SUFFIX) and name[:-len(SCALE_SUFFIX)] in raw:
            continue
        if value.dtype != np.int8:
            floats[name] = value
            continue
        scale_name = name + SCALE_SUFFIX
        if scale_name not in raw:
            raise CheckpointError(f"int8 tensor {name!r} has no {scale_name!r} "
                                  "(not a mobilebert-lite int8 checkpoint?)")
        if value.ndim != 2:
            raise CheckpointError(f"int8 tensor {name!r} must be 2-D, got shape {value.shape}")
        scale = np.asarray(raw[scale_name], dtype=np.float32)
        axis = _STORED_INT8.get(_canonical(name), 0)
        if scale.shape != (value.shape[axis],):
            raise CheckpointError(f"{scale_name!r} has shape {scale.shape}, expected ({value.shape[axis]},)")
        if not np.isfinite(scale).all() or (scale < 0).any():
            raise CheckpointError(f"{scale_name!r} holds negative or non-finite scales")
        if (value == -128).any():
            raise CheckpointError(f"int8 tensor {name!r} holds -128 (values must lie in [-127, 127])")
        floats[name] = dequantize(value, scale, axis)
        stored[_canonical(name)] = (value, scale)
    return floats, stored


def checkpoint_tensors(tensors: dict, stored: dict | None = None) -> dict:
    """What a quantised checkpoint holds for `tensors` (any key spelling: the plan is decided on canonical
    names, the keys are kept): int8 + "<key>_scale" for the int8 plan's Linears and the large stored-int8
    tensors, float32 for the rest. An int8 entry with its "<prefix>weight_scale" (a quantised model's params) is
    written as it is; `stored` gives (q, scale) by canonical name to reuse instead of re-quantising."""
    out = {}
    for key, value in tensors.items():
        if key.endswith("weight_scale") and tensors.get(key[:-len("_scale")], np.zeros(0)).dtype == np.int8:
            continue
        name = _canonical(key)
        if value.dtype == np.int8:
            q, scale = value, tensors[key[:-len("weight")] + "weight_scale"]
        else:
            axis = 0 if _INT8_LINEAR.match(name) else _STORED_INT8.get(name)
            if axis is None:
                out[key] = np.ascontiguousarray(value, dtype=np.float32)
                continue
            q, scale = (stored or {}).get(name) or quantize_weight(value, axis)
        out[key] = np.ascontiguousarray(q)
        out[key + SCALE_SUFFIX] = np.ascontiguousarray(scale, dtype=np.float32)
    return out


def _canonical(name: str) -> str:
    from .weights import canonical_key

    return canonical_key(name)
