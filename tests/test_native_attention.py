"""Native fused attention (csrc/ops/attention.cc on csrc/kernels/*/attention*.cc) against a float64 NumPy
oracle, for every ISA this machine can run, through ``_C.attention(..., isa=name)``.

The oracle is transformers' MobileBERT eager math in float64 on the same float32 inputs: scores = (q k^T) *
scale, masked keys at float32 min (a fully masked row is uniform), softmax with max subtraction, then P V.

Tolerance (per element, "relative to the values' scale"):
  probs: |got - ref| <= 1e-6 + 1e-5 * p + 2 * ds * p
  ctx:   |got - ref| <= 1e-6 * max|v| + 1e-5 * |ctx| + 2 * ds * (p @ |v|)
where ds bounds the float32 score error of the row, (d + 1) u scale sum_t |q_t k_t| + u |s| (the dot product
and the multiply by scale, both rounded to float32 as in HF); exp amplifies an absolute score error ds into a
relative probability error of about ds, twice counting the max's. The rest is the softmax itself:
  * exp: at most 1.011 ulp on the SIMD tiers (measured over every float in [-104, 89], see test_exp_accuracy),
    0.5 ulp on the scalar tier (double exp rounded once): 6e-8 relative;
  * the row sum: W lanes of L/W terms each, then a W-lane reduction, <= (L/W + log2 W + 1) u <= 4.2e-6 at L = 512
    (AVX2), common to the whole row; the reciprocal and the multiply by it add 1 ulp (0.5 ulp: the scalar tier's
    double division);
  * P V in float32, j in order: the error grows like sqrt(L) u times the partial sums (<= max|v|), about
    1e-6 max|v| at worst for L = 512; measured below 2e-7 max|v|.
So rtol 1e-5 has a 2x margin over the worst softmax bound, atol 1e-6 covers the absolute errors of tiny
probabilities and of P V. The large-logit cases (+-80 after scaling) use exact integer scores so that ds = 0
and the max subtraction is what is tested.
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from native_helpers import U, assert_within, require, supported_isas

_C = pytest.importorskip(
    "mobilebert_lite._C",
    reason="mobilebert_lite._C is not importable: build it with `pip install .` and run pytest from "
    "outside the repository (a source checkout shadows the installed package)",
)

ISAS = ("scalar", "avx2", "avx512", "neon")
LS = (1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 127, 128, 129, 384, 512)
DS = (1, 7, 8, 16, 32, 33)
HEADS = (1, 3, 4)
BS = (1, 2)
MASKS = ("none", "trailing", "single", "full_row", "random")
F32_MIN = float(np.finfo(np.float32).min)


# --- Oracle ---------------------------------------------------------------------------------------------


def _heads(t, H):
    B, L, W = t.shape
    return t.astype(np.float64).reshape(B, L, H, W // H).transpose(0, 2, 1, 3)


def ref_attention(q, k, v, keep, H, scale):
    """float64 (ctx [B, L, W], probs [B, H, L, L], ds [B, H, L, 1], p @ |v| [B, H, L, d]) on the float32 inputs."""
    B, L, W = q.shape
    d = W // H
    qh, kh, vh = _heads(q, H), _heads(k, H), _heads(v, H)
    s = (qh @ kh.transpose(0, 1, 3, 2)) * np.float64(scale)
    mag = (np.abs(qh) @ np.abs(kh).transpose(0, 1, 3, 2)) * abs(float(scale))
    if keep is not None:
        kp = (keep != 0)[:, None, None, :]
        s = np.where(kp, s, F32_MIN)
        mag = np.where(kp, mag, 0.0)
    ds = ((d + 1) * U * mag + U * np.abs(np.where(s == F32_MIN, 0.0, s))).max(axis=-1, keepdims=True)
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    ctx = (p @ vh).transpose(0, 2, 1, 3).reshape(B, L, W)
    return ctx, p, ds, p @ np.abs(vh)


def _merge_heads(t):
    B, H, L, d = t.shape
    return t.transpose(0, 2, 1, 3).reshape(B, L, H * d)


def check(isa, q, k, v, keep, H, scale=None, what="", probs=True):
    """Runs _C.attention and compares ctx (and probs) with the oracle under the tolerance above."""
    d = q.shape[2] // H
    sc = np.float32(d**-0.5) if scale is None else np.float32(scale)
    ctx, pr = _C.attention(q, k, v, keep, num_heads=H, scale=scale, want_probs=probs, isa=isa)
    rc, rp, ds, pv = ref_attention(q, k, v, keep, H, sc)
    vmax = float(np.abs(v).max()) if v.size else 0.0
    assert_within(ctx, rc, 1e-6 * vmax + 1e-5 * np.abs(rc) + _merge_heads(2 * ds * pv), f"ctx {what}")
    if probs:
        assert_within(pr, rp, 1e-6 + 1e-5 * rp + 2 * ds * rp, f"probs {what}")
    else:
        assert pr is None
    return ctx, pr


def make_keep(kind, B, L, rng):
    if kind == "none":
        return None
    keep = np.ones((B, L), np.bool_)
    if kind == "trailing":  # padding: batch b has L - b*(L//3) - 1 valid tokens (at least 1)
        for b in range(B):
            keep[b, max(1, L - b * (L // 3) - 1) :] = False
    elif kind == "single":  # one valid key, not always the first
        keep[:] = False
        for b in range(B):
            keep[b, (b * 5) % L] = True
    elif kind == "full_row":  # batch 0 fully masked (uniform), the others random
        keep = rng.random((B, L)) < 0.7
        keep[0] = False
    elif kind == "random":
        keep = rng.random((B, L)) < 0.6
    else:
        raise AssertionError(kind)
    return keep


def randn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# --- Sweeps ---------------------------------------------------------------------------------------------


def _cases(L, seed):
    """Every (B, heads, d) for L <= 33; for larger L a sample of 6 plus MobileBERT's (1, 4, 32)."""
    combos = list(itertools.product(BS, HEADS, DS))
    if L > 33:
        rng = np.random.default_rng(seed)
        picked = [combos[i] for i in rng.choice(len(combos), size=6, replace=False)]
        combos = sorted(set(picked) | {(1, 4, 32)})
    return combos


@pytest.mark.parametrize("L", LS, ids=[f"L{L}" for L in LS])
@pytest.mark.parametrize("isa", ISAS)
def test_attention_sweep(isa, L):
    """Every L of the list, d in {1, 7, 8, 16, 32, 33}, heads in {1, 3, 4}, B in {1, 2} (sampled for L > 33),
    each with one of the mask kinds in turn (all five for the small L)."""
    require(isa)
    rng = np.random.default_rng(L)
    for n, (B, H, d) in enumerate(_cases(L, seed=L)):
        W = H * d
        q, k, v = randn(rng, B, L, W, scale=2.0), randn(rng, B, L, W, scale=2.0), randn(rng, B, L, W)
        kinds = MASKS if L <= 33 else (MASKS[n % len(MASKS)],)
        for kind in kinds:
            keep = make_keep(kind, B, L, rng)
            check(isa, q, k, v, keep, H, what=f"isa={isa} B={B} L={L} heads={H} d={d} mask={kind}")


@pytest.mark.parametrize("isa", ISAS)
def test_masks(isa):
    """Every mask kind at MobileBERT's head shape, short and long; fully masked rows come out uniform."""
    require(isa)
    rng = np.random.default_rng(11)
    for L, kind in itertools.product((1, 9, 128, 384), MASKS):
        B, H, d = 2, 4, 32
        q, k, v = randn(rng, B, L, H * d), randn(rng, B, L, H * d), randn(rng, B, L, H * d)
        keep = make_keep(kind, B, L, rng)
        _, pr = check(isa, q, k, v, keep, H, what=f"isa={isa} L={L} mask={kind}")
        if kind == "full_row":
            np.testing.assert_allclose(pr[0], 1.0 / L, rtol=1e-6, err_msg=f"isa={isa} L={L}: not uniform")
        if kind == "single":
            for b in range(B):
                j = (b * 5) % L
                np.testing.assert_array_equal(pr[b, :, :, j], 1.0)  # exp(0) / 1 exactly
                assert (np.delete(pr[b], j, axis=-1) == 0).all()


@pytest.mark.parametrize("isa", ISAS)
def test_tensorflow_additive_mask(isa):
    """mask_value=-10000 (the TF twins): masked keys still get probability 0 where a row has a kept key, and a
    fully masked row reproduces the unmasked attention up to the rounding of s - 10000 (ulp(10000) ~ 1e-3)."""
    require(isa)
    rng = np.random.default_rng(12)
    for L, kind in itertools.product((1, 9, 33, 128), ("trailing", "single", "full_row", "random")):
        B, H, d = 2, 4, 32
        q, k, v = randn(rng, B, L, H * d), randn(rng, B, L, H * d), randn(rng, B, L, H * d)
        keep = make_keep(kind, B, L, rng)
        ctx, pr = _C.attention(q, k, v, keep, num_heads=H, want_probs=True, isa=isa, mask_value=-10000.0)
        pt_ctx, pt_pr = _C.attention(q, k, v, keep, num_heads=H, want_probs=True, isa=isa)
        for b in range(B):
            if keep[b].any():  # identical to PyTorch semantics: exp(s - 10000 - max) is 0 in float32
                np.testing.assert_array_equal(pr[b], pt_pr[b], err_msg=f"isa={isa} L={L} mask={kind} b={b}")
                np.testing.assert_array_equal(ctx[b], pt_ctx[b])
            else:
                _, rp, _, _ = ref_attention(q[b:b + 1], k[b:b + 1], v[b:b + 1], None, H, np.float32(d ** -0.5))
                np.testing.assert_allclose(pr[b], rp[0], rtol=0, atol=2e-3 * rp.max(),
                                           err_msg=f"isa={isa} L={L}: a fully masked row must attend as unmasked")
                if L > 1:
                    assert np.abs(pr[b] - 1.0 / L).max() > 1e-3  # and not uniformly, as PyTorch semantics would


@pytest.mark.parametrize("isa", ISAS)
def test_integer_keep_and_bool_keep_agree(isa):
    require(isa)
    rng = np.random.default_rng(12)
    q, k, v = randn(rng, 2, 17, 8), randn(rng, 2, 17, 8), randn(rng, 2, 17, 8)
    keep = rng.random((2, 17)) < 0.5
    ref, _ = _C.attention(q, k, v, keep, num_heads=2, isa=isa)
    for dtype in (np.uint8, np.int32, np.int64):
        got, _ = _C.attention(q, k, v, keep.astype(dtype) * 3, num_heads=2, isa=isa)  # nonzero = attend
        np.testing.assert_array_equal(got, ref, err_msg=str(dtype))
    wide = np.repeat(keep, 2, axis=1)[:, ::2]  # a non-contiguous bool view
    np.testing.assert_array_equal(_C.attention(q, k, v, wide, num_heads=2, isa=isa)[0], ref)


@pytest.mark.parametrize("isa", ISAS)
def test_large_logits(isa):
    """Scores up to +-80 after scaling, exact in float32 (integer q, k, power-of-two scale): without the max
    subtraction exp(80) would overflow, and a row of scores near -80 or below would underflow to 0 / 0."""
    require(isa)
    rng = np.random.default_rng(13)
    for L, H, d in ((7, 1, 16), (33, 3, 8), (128, 4, 32), (384, 4, 32)):
        B = 2
        q = rng.integers(-3, 4, (B, L, H * d)).astype(np.float32)
        k = rng.integers(-3, 4, (B, L, H * d)).astype(np.float32)
        v = randn(rng, B, L, H * d)
        # |q.k| <= 9d; scale 2^-e brings the largest score of the tensor to about 80.
        dots = np.einsum("blhd,bmhd->bhlm", q.reshape(B, L, H, d), k.reshape(B, L, H, d))
        scale = 2.0 ** np.floor(np.log2(80.0 / max(1.0, np.abs(dots).max())))
        for kind in ("none", "random"):
            keep = make_keep(kind, B, L, rng)
            _, pr = check(isa, q, k, v, keep, H, scale=scale, what=f"isa={isa} L={L} d={d} scale={scale}")
            assert np.isfinite(pr).all()
        # Every score very negative: the same probabilities as after shifting them all by a constant.
        check(isa, np.abs(q) + 1, -np.abs(k) - 1, v, None, H, scale=scale, what=f"isa={isa} L={L} all-negative")


@pytest.mark.parametrize("isa", ISAS)
def test_large_logits_random(isa):
    """randn inputs scaled to logits of +-80: the score rounding (ds in the tolerance) is what limits here."""
    require(isa)
    rng = np.random.default_rng(14)
    for L in (16, 129, 512):
        q, k, v = randn(rng, 1, L, 128, scale=6.0), randn(rng, 1, L, 128, scale=6.0), randn(rng, 1, L, 128)
        check(isa, q, k, v, None, 4, what=f"isa={isa} L={L}")


@pytest.mark.parametrize("isa", ISAS)
def test_probs_only_when_requested(isa):
    require(isa)
    rng = np.random.default_rng(15)
    q, k, v = randn(rng, 2, 9, 12), randn(rng, 2, 9, 12), randn(rng, 2, 9, 12)
    keep = make_keep("random", 2, 9, rng)
    ctx0, p0 = _C.attention(q, k, v, keep, num_heads=3, isa=isa)
    ctx1, p1 = _C.attention(q, k, v, keep, num_heads=3, want_probs=True, isa=isa)
    assert p0 is None and p1.shape == (2, 3, 9, 9) and p1.dtype == np.float32
    np.testing.assert_array_equal(ctx0, ctx1)  # asking for probs changes nothing else
    check(isa, q, k, v, keep, 3, probs=True, what=f"isa={isa}")


@pytest.mark.parametrize("isa", ISAS)
def test_canaries_and_strides(isa):
    """q, k, v are column slices of one fused [B, L, 3W + 5] buffer (ldq = ldk = ldv = 3W + 5) and out is a
    strided view (ldc = W + 3) in a NaN buffer with padding on both sides: ctx lands exactly where the
    contiguous call puts it and every other float of the buffer stays NaN."""
    require(isa)
    rng = np.random.default_rng(16)
    for B, L, H, d in ((1, 1, 1, 1), (2, 9, 3, 7), (2, 17, 4, 32), (1, 129, 4, 33)):
        W = H * d
        fused = randn(rng, B, L, 3 * W + 5)
        q, k, v = fused[:, :, :W], fused[:, :, W : 2 * W], fused[:, :, 2 * W + 5 :]
        ref, _ = _C.attention(*(np.ascontiguousarray(t) for t in (q, k, v)), num_heads=H, isa=isa)
        pad, ldc = 29, W + 3
        buf = np.full(pad + B * L * ldc + pad, np.nan, np.float32)
        out = buf[pad : pad + B * L * ldc].reshape(B, L, ldc)[:, :, :W]
        got, _ = _C.attention(q, k, v, num_heads=H, out=out, isa=isa)
        assert np.shares_memory(got, buf)
        what = f"isa={isa} B={B} L={L} heads={H} d={d}"
        np.testing.assert_array_equal(out, ref, err_msg=what)
        inside = np.zeros(buf.shape, bool)
        inside[pad : pad + B * L * ldc].reshape(B, L, ldc)[:, :, :W] = True
        assert np.isnan(buf[~inside]).all(), f"{what}: canary overwritten"


@pytest.mark.parametrize("isa", ISAS)
def test_deterministic_and_batch_independent(isa):
    require(isa)
    rng = np.random.default_rng(17)
    B, L, H, d = 3, 77, 4, 32
    q, k, v = randn(rng, B, L, H * d), randn(rng, B, L, H * d), randn(rng, B, L, H * d)
    keep = make_keep("trailing", B, L, rng)
    first = _C.attention(q, k, v, keep, num_heads=H, want_probs=True, isa=isa)
    for _ in range(3):
        again = _C.attention(q, k, v, keep, num_heads=H, want_probs=True, isa=isa)
        np.testing.assert_array_equal(again[0], first[0])
        np.testing.assert_array_equal(again[1], first[1])
    one = _C.attention(q[1:2], k[1:2], v[1:2], keep[1:2], num_heads=H, want_probs=True, isa=isa)
    np.testing.assert_array_equal(one[0], first[0][1:2])
    np.testing.assert_array_equal(one[1], first[1][1:2])


@pytest.mark.parametrize("isa", ISAS)
def test_exp_accuracy(isa):
    """The softmax's exp against float64: <= 1.02 ulp where the result is a normal float (0.5 ulp for the scalar
    tier, a rounded double exp), <= 1 unit of 2^-149 in the subnormal range, exactly 0 at and below -104
    (and for -inf), +inf above 88.73, NaN for NaN. The exhaustive sweep of every float in [-104, 89] took a
    minute and gave 1.0103 ulp at most (x = -5.8778844); this is a dense sample of it."""
    require(isa)
    rng = np.random.default_rng(18)
    lo, hi = np.float32(-104.0).view(np.uint32), np.float32(89.0).view(np.uint32)
    neg = rng.integers(0x80000000, int(lo) + 1, 2_000_000, dtype=np.uint64).astype(np.uint32)
    pos = rng.integers(0, int(hi) + 1, 2_000_000, dtype=np.uint64).astype(np.uint32)
    grid = np.linspace(-104, 89, 1_000_001, dtype=np.float32)
    x = np.concatenate([neg.view(np.float32), pos.view(np.float32), grid])
    y = _C._attention_exp(x, isa=isa).astype(np.float64)
    r = np.exp(x.astype(np.float64))
    normal = (r >= np.finfo(np.float32).tiny) & (r <= float(np.finfo(np.float32).max))
    ulp = np.abs(y[normal] - r[normal]) / np.spacing(r[normal].astype(np.float32)).astype(np.float64)
    limit = 0.5 if isa == "scalar" else 1.02
    assert ulp.max() <= limit, f"isa={isa}: {ulp.max():.3f} ulp at x={x[normal][ulp.argmax()]!r}"
    small = ~normal & (r < 1)
    assert (np.abs(y[small] - r[small]) <= 2.0**-149).all(), f"isa={isa}: subnormal range"
    special = np.array([-np.inf, -1e30, -104.0, -103.98, 0.0, -0.0, 88.72, 88.73, 89.0, 1e30, np.inf, np.nan],
                       np.float32)  # fmt: skip
    ys = _C._attention_exp(special, isa=isa)
    assert (ys[:4] == 0).all() and (ys[4:6] == 1).all() and np.isfinite(ys[6]), ys
    assert np.isinf(ys[7:11]).all() and np.isnan(ys[11]), ys


@pytest.mark.parametrize("isa", ISAS)
def test_matches_torch_eager(isa):
    """One MobileBERT-shaped case against transformers' eager formula run by torch (float32, additive mask)."""
    require(isa)
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(19)
    B, L, H, d = 2, 128, 4, 32
    q, k, v = randn(rng, B, L, H * d), randn(rng, B, L, H * d), randn(rng, B, L, H * d)
    keep = make_keep("trailing", B, L, rng)
    t = [torch.from_numpy(x).view(B, L, H, d).transpose(1, 2) for x in (q, k, v)]
    mask = (1.0 - torch.from_numpy(keep.astype(np.float32)))[:, None, None, :] * torch.finfo(torch.float32).min
    w = torch.softmax(torch.matmul(t[0], t[1].transpose(2, 3)) * d**-0.5 + mask, dim=-1)
    ref = torch.matmul(w, t[2]).transpose(1, 2).reshape(B, L, H * d).numpy()
    got, pr = _C.attention(q, k, v, keep, num_heads=H, want_probs=True, isa=isa)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * float(np.abs(v).max()))
    np.testing.assert_allclose(pr, w.numpy(), rtol=1e-5, atol=1e-6)


# --- API --------------------------------------------------------------------------------------------------


def test_runtime_info_and_default_isa():
    info = _C.runtime_info()
    name = info["kernels"]["attention"]
    # the *_vnni and neon_dotprod tables only add int8 kernels: their attention is the base ISA's
    base = info["isa"].replace("_vnni", "").replace("_dotprod", "")
    assert name.split("_")[0] == base or (name == "scalar" and base == "neon")
    rng = np.random.default_rng(20)
    q = randn(rng, 1, 5, 8)
    np.testing.assert_array_equal(
        _C.attention(q, q, q, num_heads=2)[0], _C.attention(q, q, q, num_heads=2, isa=info["isa"])[0]
    )


def test_scale_default_and_explicit():
    rng = np.random.default_rng(21)
    q, k, v = randn(rng, 1, 6, 12), randn(rng, 1, 6, 12), randn(rng, 1, 6, 12)
    a = _C.attention(q, k, v, num_heads=3)[0]
    b = _C.attention(q, k, v, num_heads=3, scale=4**-0.5)[0]
    np.testing.assert_array_equal(a, b)
    check(None, q, k, v, None, 3, scale=0.1, what="scale=0.1")


def test_empty():
    for B, L in ((0, 5), (2, 0)):
        z = np.zeros((B, L, 8), np.float32)
        ctx, pr = _C.attention(z, z, z, num_heads=2, want_probs=True)
        assert ctx.shape == (B, L, 8) and pr.shape == (B, 2, L, L)


_Q = np.ones((2, 3, 8), np.float32)
_BAD = [
    ({"q": np.ones((2, 3, 8), np.float64)}, "q must be float32"),
    ({"q": [[[1.0]]]}, "q must be a numpy.ndarray"),
    ({"k": np.ones((2, 3), np.float32)}, "k must be 3-D"),
    ({"v": np.ones((2, 4, 8), np.float32)}, r"v has shape \(2, 4, 8\), expected q's \(2, 3, 8\)"),
    ({"q": np.ones((2, 8, 3), np.float32).transpose(0, 2, 1)}, "q must be C-contiguous"),
    ({"num_heads": 3}, r"must be a positive multiple of num_heads \(3\)"),
    ({"num_heads": 0}, "num_heads must be >= 1"),
    ({"keep": np.ones((2, 3), np.float32)}, "keep must be bool or an integer dtype"),
    ({"keep": np.ones((2, 4), np.bool_)}, r"keep has shape \(2, 4\), expected \(2, 3\)"),
    ({"keep": [[1, 1, 1]] * 2}, "keep must be a numpy.ndarray"),
    ({"scale": float("nan")}, "scale must be finite"),
    ({"out": np.ones((2, 3, 9), np.float32)}, "out has shape"),
    ({"out": _Q}, "out overlaps q"),
    ({"isa": "sse9"}, "unknown isa 'sse9'"),
]


@pytest.mark.parametrize("kw, match", _BAD, ids=[m for _, m in _BAD])
def test_bad_arguments(kw, match):
    args = {"q": _Q, "k": _Q.copy(), "v": _Q.copy(), "keep": None, "num_heads": 2, **kw}
    q, k, v = args.pop("q"), args.pop("k"), args.pop("v")
    with pytest.raises(ValueError, match=match):
        _C.attention(q, k, v, **args)


def test_unavailable_isa_is_runtime_error():
    missing = [i for i in ISAS if i not in supported_isas()]
    if not missing:
        pytest.skip("every known ISA is supported here")
    with pytest.raises(RuntimeError, match=missing[0]):
        _C.attention(_Q, _Q, _Q, num_heads=2, isa=missing[0])


def test_releases_gil():
    """A long call on one thread does not block another Python thread."""
    import threading

    rng = np.random.default_rng(22)
    q = randn(rng, 8, 512, 128)
    started = threading.Event()
    ticks = []

    def work():
        started.set()
        _C.attention(q, q, q, num_heads=4)

    th = threading.Thread(target=work)
    th.start()
    started.wait()
    t0 = time.perf_counter()
    while th.is_alive():
        ticks.append(time.perf_counter() - t0)
        time.sleep(0.001)
    th.join()
    assert len(ticks) > 3
