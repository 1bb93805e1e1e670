"""Native GEMM (csrc/ops/linear.cc on the csrc/kernels/*/gemm*.cc microkernels) against a float64 NumPy
oracle, for every ISA this machine can run, through ``_C.PackedLinear(..., isa=name)``.

Sweeps are generated from each kernel's tile (mr x nr, read from its name, e.g. "avx512_8x32"): every M and
N up to two tiles plus one (all full/partial tile combinations), then MobileBERT's widths. Exact mode uses
small integers, where any summation order gives the exact result, so a wrong index, tail or padding shows
up as a hard mismatch; random mode checks the rounding error against the dot-product bound.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import math
import mmap
import sys

import numpy as np
import pytest
from native_helpers import U, assert_within, require, supported_isas

_C = pytest.importorskip(
    "mobilebert_lite._C",
    reason="mobilebert_lite._C is not importable: build it with `pip install .` and run pytest from "
    "outside the repository (a source checkout shadows the installed package)",
)

ISAS = ("scalar", "avx2", "avx512", "neon")
KS = (1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 127, 128, 129, 384, 512)
ACTIVATIONS = ("none", "relu", "relu6", "gelu", "gelu_tanh")


@functools.cache
def tile(isa: str) -> tuple[int, int]:
    """(mr, nr) of the isa's GEMM kernel, from its name '<isa>_<mr>x<nr>'."""
    name = _C.PackedLinear(np.ones((1, 1), np.float32), isa=isa).kernel_name
    mr, nr = name.rsplit("_", 1)[1].split("x")
    return int(mr), int(nr)


def m_values(isa):
    mr, _ = tile(isa)
    return [*range(1, 2 * mr + 2), 64, 129]


def n_values(isa):
    _, nr = tile(isa)
    return [*range(1, 2 * nr + 2), 3 * nr + 1, 128, 384, 512]


# --- Oracle ---------------------------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def ref_act(y, activation):
    if activation == "none":
        return y
    if activation == "relu":
        return np.maximum(y, 0.0)
    if activation == "relu6":
        return np.clip(y, 0.0, 6.0)
    if activation == "gelu":
        return 0.5 * y * (1.0 + _erf(y / math.sqrt(2.0)))
    if activation == "gelu_tanh":
        return 0.5 * y * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (y + 0.044715 * y**3)))
    raise AssertionError(activation)


def ref_linear(x, w, b=None, activation="none", residual=None, norm=None, nw=None, nb=None, eps=1e-12):
    """float64 Linear + epilogue, in the documented order: act(x @ w.T + b) + residual, then norm."""
    y = x.astype(np.float64) @ w.astype(np.float64).T
    if b is not None:
        y = y + b
    y = ref_act(y, activation)
    if residual is not None:
        y = y + residual
    if norm == "no_norm":
        y = y * nw + nb
    elif norm == "layer_norm":
        mean = y.mean(axis=1, keepdims=True)
        var = ((y - mean) ** 2).mean(axis=1, keepdims=True)
        y = (y - mean) / np.sqrt(var + eps) * nw + nb
    return y


# Tolerance of the plain GEMM (+ bias): each output is a float32 dot product of length K plus the bias,
# accumulated with one rounding per FMA. The classical bound for a recursive sum of K + 1 terms is
# |c - ref| <= (K + 1) u sum|terms| / (1 - (K + 1) u) <= 2 K u (|A| |W^T| + |b|) for K >= 1 and K u << 1;
# 4 u |ref| more covers the final rounding to float32 and of the inputs being exactly representable (they
# are: the oracle takes the float32 inputs). A correct kernel cannot fail this in any summation order; a
# wrong index or a dropped/duplicated term is off by O(|term|) >> K u |term|.
def gemm_bound(x, w, b, ref):
    mag = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)).T
    if b is not None:
        mag = mag + np.abs(b)
    K = x.shape[1]
    return 2 * max(K, 1) * U * mag + 4 * U * np.abs(ref)


def ints(rng, *shape):
    """Integers in [-8, 8] as float32: with K <= 512 every partial sum is below 2**24, so exact."""
    return rng.integers(-8, 9, size=shape).astype(np.float32)


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# --- Sweeps ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("K", KS, ids=[f"K{k}" for k in KS])
@pytest.mark.parametrize("isa", ISAS)
def test_gemm_exact_tiles(isa, K):
    """Every (M, N) up to two tiles plus one, with and without bias: bitwise equal to the exact result."""
    require(isa)
    mr, nr = tile(isa)
    rng = np.random.default_rng(K)
    Ms, Ns = range(1, 2 * mr + 2), range(1, 2 * nr + 2)
    x_all, w_all, b_all = ints(rng, max(Ms), K), ints(rng, max(Ns), K), ints(rng, max(Ns))
    for N in Ns:
        w, b = w_all[:N], b_all[:N]
        ref_full = ref_linear(x_all, w, b)
        for use_bias in (False, True):
            layer = _C.PackedLinear(w, b if use_bias else None, isa=isa)
            ref = ref_full if use_bias else ref_full - b
            for M in Ms:
                got = layer(x_all[:M])
                np.testing.assert_array_equal(
                    got, ref[:M].astype(np.float32), err_msg=f"isa={isa} M={M} N={N} K={K} bias={use_bias}"
                )


def _big_cases(isa, count, seed):
    """A sampled subset of the product of all M, N, K that involves a large extent (M or N beyond two tiles)."""
    mr, nr = tile(isa)
    cases = [
        (M, N, K) for M, N, K in itertools.product(m_values(isa), n_values(isa), KS) if M > 2 * mr + 1 or N > 2 * nr + 1
    ]
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(cases), size=min(count, len(cases)), replace=False)
    # Always include the largest corner.
    return sorted({cases[i] for i in picked} | {(129, 512, 512), (129, 3 * nr + 1, 129)})


@pytest.mark.parametrize("isa", ISAS)
def test_gemm_exact_large(isa):
    require(isa)
    rng = np.random.default_rng(1)
    for M, N, K in _big_cases(isa, 150, seed=2):
        x, w, b = ints(rng, M, K), ints(rng, N, K), ints(rng, N)
        got = _C.PackedLinear(w, b, isa=isa)(x)
        np.testing.assert_array_equal(
            got, ref_linear(x, w, b).astype(np.float32), err_msg=f"isa={isa} M={M} N={N} K={K}"
        )


@pytest.mark.parametrize("isa", ISAS)
def test_gemm_random(isa):
    require(isa)
    mr, nr = tile(isa)
    rng = np.random.default_rng(3)
    small = [(M, N, K) for M in (1, mr, mr + 1) for N in (1, nr - 1, nr, nr + 1) for K in KS]
    for M, N, K in small + _big_cases(isa, 100, seed=4):
        x, w, b = randn(rng, M, K), randn(rng, N, K), randn(rng, N)
        got = _C.PackedLinear(w, b, isa=isa)(x)
        ref = ref_linear(x, w, b)
        assert_within(got, ref, gemm_bound(x, w, b, ref), f"isa={isa} M={M} N={N} K={K}")


@pytest.mark.parametrize("isa", ISAS)
def test_gemm_real_shapes(isa):
    """MobileBERT's GEMMs, random inputs at the scale of real activations (1e2) and weights."""
    require(isa)
    rng = np.random.default_rng(5)
    for M, (N, K) in itertools.product((16, 128), ((128, 512), (128, 128), (512, 128), (512, 384))):
        x, w, b = randn(rng, M, K) * 100, randn(rng, N, K) * 0.05, randn(rng, N)
        got = _C.PackedLinear(w, b, isa=isa)(x)
        ref = ref_linear(x, w, b)
        assert_within(got, ref, gemm_bound(x, w, b, ref), f"isa={isa} M={M} N={N} K={K}")


# --- Epilogues ------------------------------------------------------------------------------------------


def epilogue_shapes(isa):
    mr, nr = tile(isa)
    return [(M, N, K) for M in (1, mr + 1, 129) for N in (1, nr + 3, 128, 512) for K in (7, 128)]


@pytest.mark.parametrize("activation", ["none", "relu", "relu6"])
@pytest.mark.parametrize("isa", ISAS)
def test_epilogue_exact(isa, activation):
    """bias, clamp activations, residual and NoNorm on integers: every step exact, so bitwise equal.
    Inputs are scaled so relu6's clamp at 6 is exercised on both sides."""
    require(isa)
    rng = np.random.default_rng(6)
    for M, N, K in epilogue_shapes(isa):
        x, w, b = ints(rng, M, K), ints(rng, N, K), ints(rng, N)
        if activation == "relu6":
            x = np.sign(x)  # outputs in [-K*8-8, K*8+8], plenty of both sides of 0 and 6
        res, nw, nb = ints(rng, M, N), ints(rng, N), ints(rng, N)
        layer = _C.PackedLinear(w, b, isa=isa)
        for residual, norm in ((None, None), (res, None), (None, "no_norm"), (res, "no_norm")):
            kw = {"residual": residual}
            if norm:
                kw.update(norm=norm, norm_weight=nw, norm_bias=nb)
            got = layer(x, activation=activation, **kw)
            ref = ref_linear(x, w, b, activation, residual, norm, nw, nb)
            what = f"isa={isa} M={M} N={N} K={K} act={activation} residual={residual is not None} norm={norm}"
            np.testing.assert_array_equal(got, ref.astype(np.float32), err_msg=what)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("isa", ISAS)
def test_epilogue_random(isa, activation):
    """Every activation, residual and both norms on random inputs.
    * activations: the GEMM bound carried through act (|act'| <= 1.13 for both GELUs, 1 for the clamps),
      plus 2u|ref| for act's own rounding (computed in double, rounded once);
    * + residual: one more float32 rounding, u(|y| + |res|);
    * no_norm: y*w + b, one or two more roundings: the bound above times |w| plus 4u(|y w| + |b|);
    * layer_norm: 1e-5 * max(1, max|ref|) per tensor, as for add_norm (tests/test_native_kernels.py)."""
    require(isa)
    rng = np.random.default_rng(7)
    for M, N, K in epilogue_shapes(isa):
        x, w, b = randn(rng, M, K), randn(rng, N, K), randn(rng, N)
        res, nw, nb = randn(rng, M, N), randn(rng, N), randn(rng, N)
        layer = _C.PackedLinear(w, b, isa=isa)
        y_lin = ref_linear(x, w, b)
        base = 1.13 * gemm_bound(x, w, b, y_lin) + 2 * U * np.abs(ref_act(y_lin, activation))
        for residual, norm in ((None, None), (res, None), (None, "no_norm"), (res, "no_norm"), (res, "layer_norm")):
            kw = {"residual": residual}
            if norm:
                kw.update(norm=norm, norm_weight=nw, norm_bias=nb, eps=1e-5 if norm == "layer_norm" else 1e-12)
            got = layer(x, activation=activation, **kw)
            ref = ref_linear(x, w, b, activation, residual, norm, nw, nb, eps=kw.get("eps", 1e-12))
            y = ref_linear(x, w, b, activation, residual)
            if norm == "layer_norm":
                bound = 1e-5 * max(1.0, float(np.abs(ref).max()))
            else:
                bound = base + (U * (np.abs(y) + np.abs(res)) if residual is not None else 0.0)
                if norm == "no_norm":
                    bound = bound * np.abs(nw) + 4 * U * (np.abs(y * nw) + np.abs(nb))
            what = f"isa={isa} M={M} N={N} K={K} act={activation} residual={residual is not None} norm={norm}"
            assert_within(got, ref, bound, what)


# --- Memory safety, determinism, API --------------------------------------------------------------------


@pytest.mark.parametrize("isa", ISAS)
def test_canaries(isa):
    """out is a contiguous middle slice of a NaN-filled buffer: every element before and after stays NaN."""
    require(isa)
    mr, nr = tile(isa)
    rng = np.random.default_rng(8)
    pad = 37
    for M, N, K in [(1, 1, 1), (mr + 1, nr - 1, 9), (2 * mr + 1, 2 * nr + 1, 33), (129, 3 * nr + 1, 17)]:
        x, w, b = ints(rng, M, K), ints(rng, N, K), ints(rng, N)
        res, nw, nb = ints(rng, M, N), ints(rng, N), ints(rng, N)
        for kw in (
            {},
            {"activation": "relu", "residual": res},
            {"norm": "no_norm", "norm_weight": nw, "norm_bias": nb},
        ):
            buf = np.full(pad + M * N + pad, np.nan, np.float32)
            out = buf[pad : pad + M * N].reshape(M, N)
            got = _C.PackedLinear(w, b, isa=isa)(x, out=out, **kw)
            assert np.shares_memory(got, out)
            ref = ref_linear(x, w, b, kw.get("activation", "none"), kw.get("residual"), kw.get("norm"), nw, nb)
            np.testing.assert_array_equal(out, ref.astype(np.float32), err_msg=f"isa={isa} M={M} N={N} K={K}")
            assert np.isnan(buf[:pad]).all() and np.isnan(buf[pad + M * N :]).all(), (
                f"isa={isa} M={M} N={N} K={K}: canary overwritten"
            )


def guarded_copy(a):
    """A copy of a whose last byte is followed by a PROT_NONE page (as in test_native_kernels.py): reading
    or writing one float past its end segfaults instead of passing silently."""
    page = mmap.PAGESIZE
    rw = max(page, -(-a.nbytes // page) * page)
    mm = mmap.mmap(-1, rw + page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.mprotect(base + rw, page, 0) != 0:
        pytest.skip(f"mprotect failed: errno {ctypes.get_errno()}")
    out = np.frombuffer(mm, np.float32, count=a.size, offset=rw - a.nbytes).reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="guard pages use mmap + mprotect via libc")
@pytest.mark.parametrize("isa", ISAS)
def test_guard_pages(isa):
    """x, residual, the norm parameters and out each end flush against an inaccessible page: A is read in
    place, so an M tail that reads a row too many, or an N tail that writes a column too many, crashes."""
    require(isa)
    mr, nr = tile(isa)
    rng = np.random.default_rng(10)
    for M, N, K in [(1, 1, 1), (mr - 1 or 1, nr + 1, 3), (mr + 1, 2 * nr - 1, 17), (2 * mr + 1, 3 * nr + 1, 33)]:
        x, w, b = ints(rng, M, K), ints(rng, N, K), ints(rng, N)
        res, nw, nb = ints(rng, M, N), ints(rng, N), ints(rng, N)
        out = guarded_copy(np.zeros((M, N), np.float32))
        _C.PackedLinear(w, b, isa=isa)(
            guarded_copy(x), residual=guarded_copy(res), norm="no_norm", norm_weight=guarded_copy(nw),
            norm_bias=guarded_copy(nb), out=out,
        )  # fmt: skip
        ref = ref_linear(x, w, b, "none", res, "no_norm", nw, nb)
        np.testing.assert_array_equal(out, ref.astype(np.float32), err_msg=f"isa={isa} M={M} N={N} K={K}")


@pytest.mark.parametrize("isa", ISAS)
def test_nan_propagates_and_zero_m(isa):
    require(isa)
    x, w = np.ones((3, 4), np.float32), np.ones((5, 4), np.float32)
    x[1, 2] = np.nan
    for act in ("none", "relu", "relu6"):
        got = _C.PackedLinear(w, isa=isa)(x, activation=act)
        assert np.isnan(got[1]).all() and not np.isnan(got[[0, 2]]).any(), act
    assert _C.PackedLinear(w, isa=isa)(np.ones((0, 4), np.float32)).shape == (0, 5)


@pytest.mark.parametrize("isa", ISAS)
def test_deterministic_and_isa_reported(isa):
    require(isa)
    rng = np.random.default_rng(9)
    x, w, b = randn(rng, 77, 129), randn(rng, 130, 129), randn(rng, 130)
    layer = _C.PackedLinear(w, b, isa=isa)
    assert (layer.n, layer.k, layer.isa) == (130, 129, isa)
    assert layer.kernel_name.startswith(isa + "_")
    first = layer(x)
    np.testing.assert_array_equal(layer(x), first)
    # Row blocks are independent: a row's result does not depend on which rows come with it.
    np.testing.assert_array_equal(layer(x[5:6]), first[5:6])
    np.testing.assert_array_equal(layer(x[50:]), first[50:])


def test_default_isa_and_runtime_info():
    info = _C.runtime_info()
    layer = _C.PackedLinear(np.ones((2, 3), np.float32))
    assert layer.isa == info["isa"]
    assert info["kernels"]["gemm"] == layer.kernel_name


def _good():
    return {"x": np.ones((2, 3), np.float32)}


_W = np.ones((4, 3), np.float32)
_BAD_CALLS = [
    ({"x": np.ones((2, 3), np.float64)}, "x must be float32"),
    ({"x": np.ones((2, 4), np.float32)}, r"x has shape \(2, 4\), expected \(2, 3\)"),
    ({"x": np.ones(3, np.float32)}, "x must be 2-D"),
    ({"x": np.ones((3, 2), np.float32).T}, "x must be C-contiguous"),
    ({"x": [[1.0, 2.0, 3.0]]}, "x must be a numpy.ndarray"),
    ({"activation": "prelu"}, "unknown activation 'prelu'"),  # trainable: no MobileBERT has it
    ({"residual": np.ones((2, 3), np.float32)}, r"residual has shape \(2, 3\), expected \(2, 4\)"),
    (
        {"norm": "batch_norm", "norm_weight": np.ones(4, np.float32), "norm_bias": np.ones(4, np.float32)},
        "unknown norm",
    ),
    ({"norm": "layer_norm"}, "needs norm_weight"),
    ({"norm": "no_norm", "norm_weight": np.ones(4, np.float32)}, "needs norm_bias"),
    (
        {"norm": "no_norm", "norm_weight": np.ones(3, np.float32), "norm_bias": np.ones(4, np.float32)},
        "norm_weight has shape",
    ),
    ({"norm_weight": np.ones(4, np.float32)}, "norm is None"),
    (
        {"norm": "layer_norm", "norm_weight": np.ones(4, np.float32), "norm_bias": np.ones(4, np.float32), "eps": -1.0},
        "eps must be >= 0",
    ),
    ({"out": np.ones((2, 5), np.float32)}, r"out has shape \(2, 5\), expected \(2, 4\)"),
    ({"out": np.ones((2, 4), np.float64)}, "out must be float32"),
]


@pytest.mark.parametrize(
    "changes, match", _BAD_CALLS, ids=[m.split()[0] + str(i) for i, (_, m) in enumerate(_BAD_CALLS)]
)
def test_bad_call_arguments(changes, match):
    layer = _C.PackedLinear(_W)
    kw = {**_good(), **changes}
    x = kw.pop("x")
    with pytest.raises(ValueError, match=match):
        layer(x, **kw)


def test_bad_call_out_overlap_and_readonly():
    layer = _C.PackedLinear(np.ones((3, 3), np.float32))
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="out overlaps x"):
        layer(x, out=x)
    ro = np.zeros((2, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writeable"):
        layer(x, out=ro)


@pytest.mark.parametrize(
    "weight, bias, match",
    [
        (np.ones((4, 3), np.float64), None, "weight must be float32"),
        (np.ones(4, np.float32), None, "weight must be 2-D"),
        (np.ones((0, 3), np.float32), None, "N >= 1 and K >= 1"),
        (np.ones((3, 4), np.float32).T, None, "weight must be C-contiguous"),
        (np.ones((4, 3), np.float32), np.ones(3, np.float32), r"bias has shape \(3,\), expected \(4,\)"),
    ],
)
def test_bad_constructor_arguments(weight, bias, match):
    with pytest.raises(ValueError, match=match):
        _C.PackedLinear(weight, bias)


def test_bad_isa():
    with pytest.raises(ValueError, match="unknown isa 'sse9'"):
        _C.PackedLinear(_W, isa="sse9")
    missing = [i for i in ISAS if i not in supported_isas()]
    if not missing:
        pytest.skip("every known ISA is supported here")
    with pytest.raises(RuntimeError, match=missing[0]):
        _C.PackedLinear(_W, isa=missing[0])


# --- Every HF activation ----------------------------------------------------------------------------------

# transformers' ACT2CLS names (as in mobilebert_lite/activations.py: all but the trainable prelu and xielu),
# plus our "none" (= linear) and the older "gelu_tanh" (= gelu_new).
HF_ACTIVATIONS = (
    "gelu", "gelu_python", "gelu_10", "gelu_new", "gelu_pytorch_tanh", "gelu_python_tanh", "gelu_accurate",
    "gelu_fast", "quick_gelu", "hardswish", "laplace", "leaky_relu", "linear", "mish", "relu", "relu2", "relu6",
    "sigmoid", "silu", "swish", "sqrtsoftplus", "tanh",
)  # fmt: skip
ALL_ACTIVATIONS = HF_ACTIVATIONS + ("none", "gelu_tanh")

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _sigmoid64(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for any x


def _softplus64(x):
    return np.logaddexp(0.0, x)


def _gelu64(x):
    return 0.5 * x * _erfc(-x / math.sqrt(2.0))


def _gelu_tanh64(x):
    return x * _sigmoid64(2.0 * math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3))  # == x/2 (1 + tanh(.))


# float64 NumPy, written independently of csrc/ops/linear.cc (the formulas of transformers.activations, in
# forms that do not cancel for negative x).
REF64 = {
    "none": lambda x: x,
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "gelu": _gelu64,
    "gelu_python": _gelu64,
    "gelu_10": lambda x: np.clip(_gelu64(x), -10.0, 10.0),
    "gelu_tanh": _gelu_tanh64,
    "gelu_new": _gelu_tanh64,
    "gelu_pytorch_tanh": _gelu_tanh64,
    "gelu_python_tanh": _gelu_tanh64,
    "gelu_accurate": _gelu_tanh64,
    "gelu_fast": lambda x: x * _sigmoid64(2.0 * x * 0.7978845608 * (1.0 + 0.044715 * x * x)),
    "quick_gelu": lambda x: x * _sigmoid64(1.702 * x),
    "hardswish": lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0,
    "laplace": lambda x: 0.5 * _erfc(-(x - 0.707107) / (0.282095 * math.sqrt(2.0))),
    # PyTorch computes x * 0.01 in float32 (negative_slope cast to the tensor's dtype): exactly that.
    "leaky_relu": lambda x: np.where(x >= 0, x, (x.astype(np.float32) * np.float32(0.01)).astype(np.float64)),
    "mish": lambda x: x * np.tanh(_softplus64(x)),
    "relu2": lambda x: np.maximum(x, 0.0) ** 2,
    "sigmoid": _sigmoid64,
    "silu": lambda x: x * _sigmoid64(x),
    "swish": lambda x: x * _sigmoid64(x),
    "sqrtsoftplus": lambda x: np.sqrt(_softplus64(x)),
    "tanh": np.tanh,
}

# Activation inputs that matter: zeros, the kinks of relu6/hardswish (+-3, 6), laplace's centre, gelu_10's
# clip (~10), the far tails where 1 + erf / 1 + tanh cancel, saturation, and a dense sweep of [-20, 20].
_SPECIAL = [0.0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 0.5, -0.5, 3.0, -3.0, 6.0, -6.0, 0.707107, 10.0, 10.5,
            -9.0, -12.0, -15.0, 20.0, 21.0, -30.0, 88.0, 100.0, -100.0, 1e4, -1e4, 1e18, -1e18]  # fmt: skip
ACT_INPUTS = np.concatenate([np.array(_SPECIAL), np.linspace(-20.0, 20.0, 401)]).astype(np.float32)


def _act_gemm_outputs(isa, rng):
    """Two GEMM outputs to activate: (a) y = x exactly (K = 1, weight 1, no bias), so the activation sees
    ACT_INPUTS themselves; (b) a random GEMM whose outputs spread over about [-15, 15]."""
    exact = (ACT_INPUTS.reshape(-1, 1), np.ones((7, 1), np.float32), None)
    x, w, b = randn(rng, 37, 64), randn(rng, 70, 64) * 0.6, randn(rng, 70)
    return [exact, (x, w, b)]


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
@pytest.mark.parametrize("isa", ISAS)
def test_every_activation_vs_float64(isa, activation):
    """act(GEMM output) against the float64 formula applied to the same float32 GEMM output (the native
    result with activation='none'; non-clamp activations run after the same microkernel call, so their input
    is bitwise that). Tolerance 1e-6 * max(1, |ref|): the native value is evaluated in double and rounded
    once, i.e. within half an ulp (6e-8 relative) plus double-precision libm error of the exact function, so
    1e-6 is 16x margin over float32 rounding while any formula slip (a wrong constant in the 4th digit, a
    lost term, 1 + tanh cancelling to 0 in float32) is far beyond it. Threaded calls must match bitwise."""
    require(isa)
    rng = np.random.default_rng(11)
    for x, w, b in _act_gemm_outputs(isa, rng):
        layer = _C.PackedLinear(w, b, isa=isa)
        y = layer(x).astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            ref = REF64[activation](y)
        got = layer(x, activation=activation)
        bound = 1e-6 * np.maximum(1.0, np.abs(ref))
        assert_within(got, ref, bound, f"isa={isa} act={activation} shape={got.shape}")
        np.testing.assert_array_equal(layer(x, activation=activation, num_threads=2), got)


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_every_activation_correctly_rounded(activation):
    """The exact function (mpmath, 40 digits) of each ACT_INPUTS value: the native float32 result is within
    one float32 ulp of it (double evaluation + one rounding gives half an ulp plus ~1e-16 relative), or
    within 2**-149 of a result in float32's subnormal range."""
    mpmath = pytest.importorskip("mpmath")
    mp = mpmath.mp
    mp.dps = 40
    sig = lambda v: 1 / (1 + mp.exp(-v))  # noqa: E731
    sp = lambda v: mp.log1p(mp.exp(v))  # noqa: E731
    gelu = lambda v: v / 2 * mp.erfc(-v / mp.sqrt(2))  # noqa: E731
    tanh_gelu = lambda v: v * sig(2 * mp.sqrt(2 / mp.pi) * (v + mp.mpf("0.044715") * v**3))  # noqa: E731
    exact = {
        "none": lambda v: v, "linear": lambda v: v, "relu": lambda v: max(v, 0), "relu6": lambda v: min(max(v, 0), 6),
        "gelu": gelu, "gelu_python": gelu, "gelu_10": lambda v: min(max(gelu(v), -10), 10),
        "gelu_tanh": tanh_gelu, "gelu_new": tanh_gelu, "gelu_pytorch_tanh": tanh_gelu, "gelu_python_tanh": tanh_gelu,
        "gelu_accurate": tanh_gelu,
        "gelu_fast": lambda v: v * sig(2 * v * mp.mpf("0.7978845608") * (1 + mp.mpf("0.044715") * v * v)),
        "quick_gelu": lambda v: v * sig(mp.mpf("1.702") * v),
        "hardswish": lambda v: v * min(max(v + 3, 0), 6) / 6,
        "laplace": lambda v: mp.erfc(-(v - mp.mpf("0.707107")) / (mp.mpf("0.282095") * mp.sqrt(2))) / 2,
        "leaky_relu": lambda v: v if v >= 0 else mp.mpf(float(np.float32(v) * np.float32(0.01))),
        "mish": lambda v: v * mp.tanh(sp(v)), "relu2": lambda v: max(v, 0) ** 2, "sigmoid": sig,
        "silu": lambda v: v * sig(v), "swish": lambda v: v * sig(v), "sqrtsoftplus": lambda v: mp.sqrt(sp(v)),
        "tanh": mp.tanh,
    }[activation]  # fmt: skip
    got = _C.PackedLinear(np.ones((1, 1), np.float32))(ACT_INPUTS.reshape(-1, 1), activation=activation)[:, 0]
    for v, g in zip(ACT_INPUTS, got):
        e = exact(mp.mpf(float(v)))
        ulp = np.spacing(np.float32(min(abs(float(e)), 3.4e38)))  # the float32 ulp at the exact value
        err = abs(mp.mpf(float(g)) - e)
        assert err <= max(ulp, 2.0**-149), f"{activation}({float(v)!r}) = {float(g)!r}, exact {mp.nstr(e, 12)}"


@pytest.mark.parametrize("activation", ALL_ACTIVATIONS)
def test_every_activation_vs_pytorch(activation):
    """transformers' own ACT2FN module in float32 on the same GEMM output: equal within 1e-6 * max(1, |ref|)
    (PyTorch's float32 kernels are a few ulp from exact; ours half an ulp)."""
    torch = pytest.importorskip("torch")
    act_mod = pytest.importorskip("transformers.activations")
    name = {"none": "linear", "gelu_tanh": "gelu_new"}.get(activation, activation)
    y = _C.PackedLinear(np.ones((1, 1), np.float32))(ACT_INPUTS[np.abs(ACT_INPUTS) < 1e30].reshape(-1, 1))
    got = _C.PackedLinear(np.ones((1, 1), np.float32))(y, activation=activation)
    with torch.no_grad():
        ref = act_mod.ACT2FN[name](torch.from_numpy(y.copy())).numpy().astype(np.float64)
    assert_within(got, ref, 1e-6 * np.maximum(1.0, np.abs(ref)), f"act={activation} vs torch")


def test_activation_names_and_nan():
    layer = _C.PackedLinear(np.ones((1, 1), np.float32))
    x = np.array([[np.nan], [1.0]], np.float32)
    for activation in ALL_ACTIVATIONS:
        got = layer(x, activation=activation)
        assert np.isnan(got[0, 0]) and not np.isnan(got[1, 0]), activation
    with pytest.raises(ValueError, match="unknown activation 'xielu'") as e:
        layer(x, activation="xielu")
    listed = str(e.value).split("expected one of ")[1].split(", ")
    assert sorted(listed) == sorted(ALL_ACTIVATIONS)
    mbl_acts = pytest.importorskip("mobilebert_lite.activations")
    assert set(mbl_acts.ACTIVATIONS) == set(HF_ACTIVATIONS)  # the Python engine and ours agree on the names
