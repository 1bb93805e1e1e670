"""Native row kernels (csrc/kernels/) against a float64 NumPy oracle, for every ISA this machine can run.

Every ISA is reached directly through ``add_norm(..., isa=name)``; the ones the build or CPU lacks are
skipped. Run from outside the repository (or after an editable install) so that ``mobilebert_lite``
resolves to the installed package that contains ``_C``.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from native_helpers import U, assert_within, require

_C = pytest.importorskip(
    "mobilebert_lite._C",
    reason="mobilebert_lite._C is not importable: build it with `pip install .` and run pytest from "
    "outside the repository (a source checkout shadows the installed package)",
)

ISAS = ("scalar", "avx2", "avx512", "neon")
ISA_NAMES = "scalar, avx2, avx2_vnni, avx512, avx512_vnni, neon, neon_dotprod"  # every ISA dispatch knows
# Every length up to 2*16 + 1 covers the tails of all vector widths (NEON 4, AVX2 8, AVX-512 16);
# the rest are MobileBERT's widths (128 bottleneck, 512 hidden) and long rows.
NS = [*range(1, 2 * 16 + 2), 128, 384, 512, 1000]
MS = (0, 1, 2, 3, 7)
CASES = [(M, use_bias, use_res) for M in MS for use_bias in (False, True) for use_res in (False, True)]


# --- Oracle and inputs ----------------------------------------------------------------------------------


def ref_add_norm(x, weight, beta, bias=None, residual=None, layer_norm=False, eps=1e-12):
    """float64 add_norm, from the math in csrc/kernels/kernels.h."""
    y = x.astype(np.float64)
    if bias is not None:
        y = y + bias
    if residual is not None:
        y = y + residual
    if not layer_norm:
        return y * weight + beta  # NoNorm
    mean = y.mean(axis=1, keepdims=True)
    var = ((y - mean) ** 2).mean(axis=1, keepdims=True)  # biased, as in torch.nn.LayerNorm
    return (y - mean) / np.sqrt(var + eps) * weight + beta


class Inputs:
    """One add_norm problem. exact=True draws small integers so every float32 result is exact."""

    def __init__(self, rng, M, N, exact=False, scale=1.0, offset=0.0):
        if exact:

            def draw(*shape):
                return rng.integers(-8, 9, size=shape).astype(np.float32)

            def draw_affine(*shape):
                return draw(*shape)
        else:

            def draw(*shape):
                return (rng.standard_normal(shape) * scale + offset).astype(np.float32)

            def draw_affine(*shape):
                return rng.standard_normal(shape).astype(np.float32)

        self.M, self.N = M, N
        self.x, self.residual, self.bias = draw(M, N), draw(M, N), draw(N)
        self.weight, self.beta = draw_affine(N), draw_affine(N)

    def optional(self, use_bias, use_res):
        return {"bias": self.bias if use_bias else None, "residual": self.residual if use_res else None}

    def terms(self, use_bias, use_res):
        """|x| + |bias| + |residual|, elementwise: the magnitude the sum y is rounded against."""
        s = np.abs(self.x.astype(np.float64))
        if use_bias:
            s = s + np.abs(self.bias)
        if use_res:
            s = s + np.abs(self.residual)
        return s


def describe(isa, a, use_bias, use_res, **extra):
    parts = [f"isa={isa}", f"M={a.M}", f"N={a.N}", f"bias={use_bias}", f"residual={use_res}"]
    return " ".join(parts + [f"{k}={v}" for k, v in extra.items()])


# Tolerances, one rule per op:
# * NoNorm: y = x + bias + residual takes two float32 roundings, the affine step one or two (one when the
#   kernel fuses y*weight + beta into an FMA, two on ARMv7 NEON), so a correct kernel is within
#   2u(|x|+|bias|+|res|)|w| + u(|y||w| + |beta|) <= 4u(|x|+|bias|+|res|)|w| + u|beta| (+ O(u^2), hence the
#   1 + 2^-20 factor). Any indexing or tail bug misses this by orders of magnitude.
# * LayerNorm: 1e-5 * max(1, max|ref|) per tensor, about 170u of the output scale. The SIMD kernels sum the
#   mean and variance in float32 lanes (up to N/W additions per lane: 250 for NEON at N=1000, whose error
#   grows like sqrt(N/W) u in practice) and round y to float32 before normalising; the measured error is
#   ~1e-6 relative. Wrong statistics or lanes are O(1) off.


def nonorm_bound(a, use_bias, use_res):
    return (4 * U * a.terms(use_bias, use_res) * np.abs(a.weight) + U * np.abs(a.beta)) * (1 + 2.0**-20)


def layer_norm_bound(ref):
    return 1e-5 * max(1.0, float(np.abs(ref).max(initial=0.0)))


# --- Sweeps ---------------------------------------------------------------------------------------------

n_ids = [f"N{n}" for n in NS]


@pytest.mark.parametrize("N", NS, ids=n_ids)
@pytest.mark.parametrize("isa", ISAS)
def test_nonorm_exact(isa, N):
    require(isa)
    rng = np.random.default_rng(N)
    for M, use_bias, use_res in CASES:
        a = Inputs(rng, M, N, exact=True)
        got = _C.add_norm(a.x, a.weight, a.beta, isa=isa, **a.optional(use_bias, use_res))
        want = ref_add_norm(a.x, a.weight, a.beta, **a.optional(use_bias, use_res))
        np.testing.assert_array_equal(got, want.astype(np.float32), err_msg=describe(isa, a, use_bias, use_res))


@pytest.mark.parametrize("N", NS, ids=n_ids)
@pytest.mark.parametrize("isa", ISAS)
def test_nonorm_random(isa, N):
    require(isa)
    rng = np.random.default_rng(1000 + N)
    for scale in (1.0, 1e3):  # 1e3: MobileBERT's pre-NoNorm activations reach the thousands
        for M, use_bias, use_res in CASES:
            a = Inputs(rng, M, N, scale=scale)
            got = _C.add_norm(a.x, a.weight, a.beta, isa=isa, **a.optional(use_bias, use_res))
            want = ref_add_norm(a.x, a.weight, a.beta, **a.optional(use_bias, use_res))
            what = describe(isa, a, use_bias, use_res, scale=scale)
            assert_within(got, want, nonorm_bound(a, use_bias, use_res), what)


@pytest.mark.parametrize("N", NS, ids=n_ids)
@pytest.mark.parametrize("isa", ISAS)
def test_layer_norm_random(isa, N):
    require(isa)
    rng = np.random.default_rng(2000 + N)
    for eps in (1e-12, 1e-5):
        for scale in (1.0, 1e3):
            for M, use_bias, use_res in CASES:
                a = Inputs(rng, M, N, scale=scale)
                opt = a.optional(use_bias, use_res)
                got = _C.add_norm(a.x, a.weight, a.beta, layer_norm=True, eps=eps, isa=isa, **opt)
                want = ref_add_norm(a.x, a.weight, a.beta, layer_norm=True, eps=eps, **opt)
                what = describe(isa, a, use_bias, use_res, eps=eps, scale=scale)
                assert_within(got, want, layer_norm_bound(want), what)


@pytest.mark.parametrize("isa", ISAS)
def test_layer_norm_offset_rows(isa):
    """|mean| >> std, as after a residual add: where a one-pass variance, a float32 mean left uncorrected,
    or a mean rounded to one float falls apart (their errors grow like u*|mean|/std). The kernels' y is,
    by contract, the float32 (x + bias) + residual; starting the oracle from that same y removes its
    rounding, which 1/std would otherwise amplify, so the usual LayerNorm tolerance applies."""
    require(isa)
    rng = np.random.default_rng(3)
    for N in (7, 16, 33, 512, 1000):
        for M, use_bias, use_res in CASES:
            a = Inputs(rng, M, N, scale=1.0, offset=1e3)
            opt = a.optional(use_bias, use_res)
            got = _C.add_norm(a.x, a.weight, a.beta, layer_norm=True, isa=isa, **opt)
            y32 = a.x.copy()
            for term in opt.values():
                if term is not None:
                    y32 += term  # float32, in the kernels' order: bias first, then residual
            want = ref_add_norm(y32, a.weight, a.beta, layer_norm=True)
            assert_within(got, want, layer_norm_bound(want), describe(isa, a, use_bias, use_res))


@pytest.mark.parametrize("isa", ISAS)
def test_layer_norm_constant_rows(isa):
    """A constant row has zero variance, so 1/sqrt(var + eps) is 1e6 at eps=1e-12 and any error in the
    mean is amplified a millionfold. The output must still be beta."""
    require(isa)
    rng = np.random.default_rng(4)
    for N in (1, 2, 3, 15, 16, 17, 100, 512, 1000):
        values = np.array([0.1, -7.3, 1e3 + 0.3, 3.14159e-3], dtype=np.float32)
        x = np.repeat(values[:, None], N, axis=1)
        weight = rng.standard_normal(N).astype(np.float32)
        beta = rng.standard_normal(N).astype(np.float32)
        got = _C.add_norm(x, weight, beta, layer_norm=True, isa=isa)
        want = ref_add_norm(x, weight, beta, layer_norm=True)
        assert_within(got, want, layer_norm_bound(want), f"isa={isa} N={N} constant rows")


# --- Memory: canaries, guard pages, aliasing ------------------------------------------------------------

CANARY_NS = [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 1000]
SENTINEL = np.float32(-12345.5)


def nan_padded(a, pad=19):
    """A copy of a inside a NaN-filled buffer (pad elements or rows either side). An over-read that reaches
    a result turns it into NaN, which the tolerance check rejects."""
    if a.ndim == 1:
        buf = np.full(a.shape[0] + 2 * pad, np.nan, np.float32)
        buf[pad:-pad] = a
        return buf[pad:-pad]
    buf = np.full((a.shape[0] + 2, a.shape[1]), np.nan, np.float32)
    buf[1:-1] = a
    return buf[1:-1]


@pytest.mark.parametrize("layer_norm", [False, True], ids=["nonorm", "layer_norm"])
@pytest.mark.parametrize("isa", ISAS)
def test_canaries(isa, layer_norm):
    require(isa)
    rng = np.random.default_rng(5)
    for N in CANARY_NS:
        for M, use_bias, use_res in CASES:
            a = Inputs(rng, M, N)
            opt = {k: (None if v is None else nan_padded(v)) for k, v in a.optional(use_bias, use_res).items()}
            out_buf = np.full((M + 2, N), SENTINEL, np.float32)  # one sentinel row before and after out
            out = out_buf[1 : M + 1]
            x, weight, beta = nan_padded(a.x), nan_padded(a.weight), nan_padded(a.beta)
            got = _C.add_norm(x, weight, beta, layer_norm=layer_norm, out=out, isa=isa, **opt)
            what = describe(isa, a, use_bias, use_res, layer_norm=layer_norm)
            assert got is out, what
            assert (out_buf[0] == SENTINEL).all() and (out_buf[-1] == SENTINEL).all(), f"{what}: wrote outside out"
            want = ref_add_norm(a.x, a.weight, a.beta, layer_norm=layer_norm, **a.optional(use_bias, use_res))
            bound = layer_norm_bound(want) if layer_norm else nonorm_bound(a, use_bias, use_res)
            assert_within(got, want, bound, what)


_PAGE = mmap.PAGESIZE


def guarded_copy(a):
    """A copy of a whose last byte is followed by a PROT_NONE page, so that reading or writing even one
    float past its end segfaults instead of passing silently (MLAS's guard buffers)."""
    nbytes = a.nbytes
    rw = max(_PAGE, -(-nbytes // _PAGE) * _PAGE)
    mm = mmap.mmap(-1, rw + _PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.mprotect(base + rw, _PAGE, 0) != 0:  # 0 = PROT_NONE
        pytest.skip(f"mprotect failed: errno {ctypes.get_errno()}")
    # The array keeps mm (and so the mapping) alive; unmapping later also drops the guard page.
    out = np.frombuffer(mm, np.float32, count=a.size, offset=rw - nbytes).reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="guard pages use mmap + mprotect via libc")
@pytest.mark.parametrize("layer_norm", [False, True], ids=["nonorm", "layer_norm"])
@pytest.mark.parametrize("isa", ISAS)
def test_guard_pages(isa, layer_norm):
    """Every operand ends flush against an inaccessible page: a tail that over-reads or over-writes crashes
    the test process (a masked load must not touch masked-off lanes)."""
    require(isa)
    rng = np.random.default_rng(6)
    for N in CANARY_NS:
        for use_bias in (False, True):
            for use_res in (False, True):
                a = Inputs(rng, 3, N)
                opt = {k: (None if v is None else guarded_copy(v)) for k, v in a.optional(use_bias, use_res).items()}
                x, weight, beta = guarded_copy(a.x), guarded_copy(a.weight), guarded_copy(a.beta)
                out = guarded_copy(np.zeros((3, N), np.float32))
                _C.add_norm(x, weight, beta, layer_norm=layer_norm, out=out, isa=isa, **opt)
                want = ref_add_norm(a.x, a.weight, a.beta, layer_norm=layer_norm, **a.optional(use_bias, use_res))
                bound = layer_norm_bound(want) if layer_norm else nonorm_bound(a, use_bias, use_res)
                assert_within(out, want, bound, describe(isa, a, use_bias, use_res, layer_norm=layer_norm))


@pytest.mark.parametrize("target", ["x", "residual"])
@pytest.mark.parametrize("layer_norm", [False, True], ids=["nonorm", "layer_norm"])
@pytest.mark.parametrize("isa", ISAS)
def test_in_place(isa, layer_norm, target):
    require(isa)
    rng = np.random.default_rng(7)
    for N in (1, 5, 8, 17, 33, 512):
        for use_bias in (False, True):
            a = Inputs(rng, 3, N)
            kw = {**a.optional(use_bias, True), "layer_norm": layer_norm}
            want = ref_add_norm(a.x, a.weight, a.beta, **kw)
            expected = _C.add_norm(a.x, a.weight, a.beta, isa=isa, **kw)
            out = a.x if target == "x" else a.residual  # overwritten below; want/expected are computed
            got = _C.add_norm(a.x, a.weight, a.beta, out=out, isa=isa, **kw)
            assert got is out
            # Same kernel, same inputs: in place must be bitwise identical to out of place.
            np.testing.assert_array_equal(got, expected, err_msg=f"isa={isa} N={N} out={target}")
            bound = layer_norm_bound(want) if layer_norm else nonorm_bound(a, use_bias, True)
            assert_within(got, want, bound, f"isa={isa} N={N} out={target}")


def test_default_isa_matches_named_isa():
    """isa=None runs the active table (MBL_FORCE_ISA or the best supported ISA), deterministically."""
    info = _C.runtime_info()
    a = Inputs(np.random.default_rng(8), 5, 77)
    for layer_norm in (False, True):
        got = _C.add_norm(a.x, a.weight, a.beta, bias=a.bias, residual=a.residual, layer_norm=layer_norm)
        again = _C.add_norm(a.x, a.weight, a.beta, bias=a.bias, residual=a.residual, layer_norm=layer_norm)
        named = _C.add_norm(
            a.x, a.weight, a.beta, bias=a.bias, residual=a.residual, layer_norm=layer_norm, isa=info["isa"]
        )
        np.testing.assert_array_equal(got, again)
        np.testing.assert_array_equal(got, named)


def test_empty_shapes_are_no_ops():
    w = np.ones(4, np.float32)
    assert _C.add_norm(np.zeros((0, 4), np.float32), w, w, layer_norm=True).shape == (0, 4)
    assert _C.add_norm(np.zeros((3, 0), np.float32), w[:0], w[:0], layer_norm=True).shape == (3, 0)


# --- Argument validation --------------------------------------------------------------------------------


def _base():
    x = np.zeros((3, 4), np.float32)
    v = np.ones(4, np.float32)
    return {"x": x, "weight": v, "beta": v.copy()}


def _call(**changes):
    args = _base()
    args.update(changes)
    return _C.add_norm(args.pop("x"), args.pop("weight"), args.pop("beta"), **args)


def _readonly(a):
    a.flags.writeable = False
    return a


_overlap_buf = np.zeros((4, 4), np.float32)
BAD_ARGS = {
    "x-dtype": ({"x": np.zeros((3, 4))}, "x must be float32, got float64"),
    "x-byteorder": ({"x": np.zeros((3, 4), ">f4")}, "x must be float32, got >f4"),
    "x-list": ({"x": [[0.0] * 4] * 3}, "x must be a numpy.ndarray, got list"),
    "x-rank": ({"x": np.zeros(4, np.float32)}, "x must be 2-D, got 1-D"),
    "x-strided": ({"x": np.zeros((3, 8), np.float32)[:, ::2]}, "x must be C-contiguous"),
    "x-fortran": ({"x": np.asfortranarray(np.zeros((3, 4), np.float32))}, "x must be C-contiguous"),
    "weight-shape": ({"weight": np.ones(5, np.float32)}, r"weight has shape \(5,\), expected \(4,\)"),
    "weight-rank": ({"weight": np.ones((1, 4), np.float32)}, "weight must be 1-D, got 2-D"),
    "weight-dtype": ({"weight": np.ones(4, np.float16)}, "weight must be float32, got float16"),
    "weight-none": ({"weight": None}, "weight must be a numpy.ndarray, got NoneType"),
    "beta-shape": ({"beta": np.ones(3, np.float32)}, r"beta has shape \(3,\), expected \(4,\)"),
    "beta-strided": ({"beta": np.ones(8, np.float32)[::2]}, "beta must be C-contiguous"),
    "bias-shape": ({"bias": np.ones(5, np.float32)}, r"bias has shape \(5,\), expected \(4,\)"),
    "bias-dtype": ({"bias": np.ones(4, np.int32)}, "bias must be float32, got int32"),
    "bias-strided": ({"bias": np.ones(8, np.float32)[::2]}, "bias must be C-contiguous"),
    "residual-shape": ({"residual": np.zeros((3, 5), np.float32)}, r"residual has shape \(3, 5\), expected \(3, 4\)"),
    "residual-rank": ({"residual": np.zeros(12, np.float32)}, "residual must be 2-D, got 1-D"),
    "residual-dtype": ({"residual": np.zeros((3, 4))}, "residual must be float32, got float64"),
    "residual-strided": ({"residual": np.zeros((3, 8), np.float32)[:, 1::2]}, "residual must be C-contiguous"),
    "out-shape": ({"out": np.zeros((2, 4), np.float32)}, r"out has shape \(2, 4\), expected \(3, 4\)"),
    "out-dtype": ({"out": np.zeros((3, 4), np.int32)}, "out must be float32, got int32"),
    "out-strided": ({"out": np.zeros((3, 8), np.float32)[:, ::2]}, "out must be C-contiguous"),
    "out-readonly": ({"out": _readonly(np.zeros((3, 4), np.float32))}, "out must be writeable"),
    "out-overlaps-x": ({"x": _overlap_buf[:3], "out": _overlap_buf[1:]}, "out overlaps x"),
    "out-overlaps-weight": ({"weight": _overlap_buf[0], "out": _overlap_buf[:3]}, "out overlaps weight"),
    "eps-negative": ({"eps": -1.0}, "eps must be >= 0"),
    "eps-nan": ({"eps": float("nan")}, "eps must be >= 0"),
    "isa-unknown": ({"isa": "foo"}, "unknown isa 'foo'; expected one of " + ISA_NAMES),
}


@pytest.mark.parametrize("changes, match", list(BAD_ARGS.values()), ids=list(BAD_ARGS))
def test_bad_arguments_raise_value_error(changes, match):
    with pytest.raises(ValueError, match=f"^add_norm: {match}"):
        _call(**changes)


@pytest.mark.parametrize("isa", ISAS + ("neon_dotprod",))
def test_unavailable_isa_raises_runtime_error(isa):
    info = _C.runtime_info()
    if isa in info["supported_isas"]:
        pytest.skip(f"{isa} is available here")
    reason = "not compiled into this build" if isa not in info["compiled_isas"] else "not supported by this CPU"
    with pytest.raises(RuntimeError, match=f"isa='{isa}': {isa} is {reason}"):
        _call(isa=isa)


# --- runtime_info and MBL_FORCE_ISA ---------------------------------------------------------------------


def test_runtime_info():
    info = _C.runtime_info()
    assert set(info) == {
        "isa", "compiled_isas", "supported_isas", "cpu_features", "kernels", "threads", "forced_isa", "build"
    }  # fmt: skip
    assert "scalar" in info["compiled_isas"] and "scalar" in info["supported_isas"]
    assert set(info["supported_isas"]) <= set(info["compiled_isas"]) <= {*ISAS, "avx2_vnni", "avx512_vnni",
                                                                        "neon_dotprod"}
    assert info["isa"] in info["supported_isas"]
    assert all(isinstance(k, str) and isinstance(v, bool) for k, v in info["cpu_features"].items())
    assert {"avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "neon"} <= set(info["cpu_features"])
    assert isinstance(info["kernels"]["add_norm"], str) and info["kernels"]["add_norm"]
    # default_num_threads(): MBL_NUM_THREADS if set, else the CPU count (tests/test_native_threads.py checks both)
    assert info["threads"] == int(os.environ.get("MBL_NUM_THREADS") or os.cpu_count())
    assert info["forced_isa"] is None or info["forced_isa"] == os.environ.get("MBL_FORCE_ISA")
    assert isinstance(info["build"], str) and info["build"]
    if info["forced_isa"] is None:  # the default is the best supported ISA of this architecture
        order = ("avx512_vnni", "avx512", "avx2_vnni", "avx2", "neon_dotprod", "neon", "scalar")
        best = [i for i in order if i in info["supported_isas"]][0]
        assert info["isa"] == best


_PROBE = """
import numpy as np
import mobilebert_lite._C as C

def attempt(f):
    try:
        return "ok " + str(f())
    except Exception as e:
        return f"{type(e).__name__}: {e}"

x = np.zeros((2, 3), np.float32); w = np.ones(3, np.float32)
print(attempt(lambda: C.runtime_info()["isa"]))
print(attempt(lambda: C.runtime_info()["kernels"]["add_norm"]))
print(attempt(lambda: C.add_norm(x, w, w).sum()))
print(attempt(lambda: C.add_norm(x, w, w, isa="scalar").sum()))
"""


def run_forced(value, tmp_path):
    """Run _PROBE in a fresh interpreter (MBL_FORCE_ISA is read once per process) with the same _C."""
    env = dict(os.environ, MBL_FORCE_ISA=value)
    pkg_parent = str(Path(_C.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH")) if p)
    r = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, f"MBL_FORCE_ISA={value}: import failed (must not fail at import):\n{r.stderr}"
    return r.stdout.splitlines()


def test_force_isa_scalar(tmp_path):
    assert run_forced("scalar", tmp_path) == ["ok scalar", "ok scalar", "ok 6.0", "ok 6.0"]


def test_force_isa_unknown(tmp_path):
    """Import succeeds; every use of the active table raises RuntimeError naming the value; explicitly
    named ISAs keep working."""
    lines = run_forced("bogus", tmp_path)
    error = "RuntimeError: unknown MBL_FORCE_ISA value 'bogus'; expected one of " + ISA_NAMES
    assert all(line.startswith(error) for line in lines[:3]), lines
    assert lines[3] == "ok 6.0"


@pytest.mark.parametrize("isa", ISAS + ("neon_dotprod",))
def test_force_isa_unavailable(isa, tmp_path):
    info = _C.runtime_info()
    if isa in info["supported_isas"]:
        pytest.skip(f"{isa} is available here")
    reason = "not compiled into this build" if isa not in info["compiled_isas"] else "not supported by this CPU"
    lines = run_forced(isa, tmp_path)
    assert all(line.startswith(f"RuntimeError: MBL_FORCE_ISA={isa}: {isa} is {reason}") for line in lines[:3]), lines
    assert lines[3] == "ok 6.0"
