"""int8 kernels of every ISA this machine runs, against NumPy: exact integer products, the per-row activation
quantiser bit for bit, the dequantising epilogue, every linear epilogue, thread counts, and bad input.

NumPy-only and small, so ci/arm_python.sh also runs it under qemu (neon, neon_dotprod).
- exact: integer inputs with unit scales, so each output is the int64 sum itself (|sum| < 2^24): any tier that
  drops, wraps or saturates a product fails;
- quantiser: bytes and scales equal to mobilebert_lite.quantization.quantize_rows (the contract's NumPy
  statement) bit for bit, including ties, all-zero rows, NaN/inf rows, smoothing and K % 4 != 0;
- scaled: against quantization.Int8Weight (the reference engine's int8 linear), within 1 ulp (the reference
  emulates the fused multiply-add in float64, which can round twice).
"""

from __future__ import annotations

import os
import platform

import numpy as np
import pytest

import mobilebert_lite as mbl
from mobilebert_lite.quantization import Int8Weight, quantize_rows, quantize_weight

if "native" not in mbl.BACKENDS:
    if os.environ.get("MBL_REQUIRE_NATIVE"):
        raise AssertionError("MBL_REQUIRE_NATIVE=1 but the native module is missing")
    pytest.skip("native module not built", allow_module_level=True)

from mobilebert_lite import _C  # noqa: E402

ARMV7 = platform.machine().lower().startswith("arm") and not platform.machine().lower().startswith("arm64")
ALL_ISAS = ("scalar", "avx2", "avx2_vnni", "avx512", "avx512_vnni", "neon", "neon_dotprod")
SUPPORTED = _C.runtime_info()["supported_isas"] if not os.environ.get("MBL_FORCE_ISA") else ["scalar"]


def _isa(isa):
    if isa not in SUPPORTED:
        pytest.skip(f"{isa} is not supported here ({SUPPORTED})")
    return isa


def _ints(rng, shape):
    """int8 values over the full range [-127, 127], extremes over-represented."""
    v = rng.integers(-127, 128, size=shape)
    ends = rng.random(shape) < 0.1
    return np.where(ends, np.where(rng.random(shape) < 0.5, 127, -127), v).astype(np.int8)


def _ulps(a, b):
    a, b = a.astype(np.float32).view(np.int32).astype(np.int64), b.astype(np.float32).view(np.int32).astype(np.int64)
    return np.abs(a - b)


@pytest.mark.parametrize("isa", ALL_ISAS)
def test_exact_integer_products(isa):
    _isa(isa)
    rng = np.random.default_rng(0)
    kernel = None
    for M, N, K in [(1, 1, 0), (3, 5, 5), (9, 33, 62), (17, 40, 128), (25, 65, 510), (6, 12, 2)]:
        K += 2
        W = _ints(rng, (N, K))
        q = _ints(rng, (M, K)).astype(np.int16)
        # x = q quantises exactly to q (scale 1, zero 0) when the row spans [-128, 127]: force both ends
        q[:, 0], q[:, 1] = 127, -128
        x = q.astype(np.float32)
        bias = rng.integers(-8, 9, N).astype(np.float32)
        lin = _C.PackedLinear(W, bias, isa, weight_scale=np.ones(N, np.float32))
        kernel = lin.kernel_name
        assert lin.is_int8
        want = q.astype(np.int64) @ W.T.astype(np.int64) + bias.astype(np.int64)
        got = lin(x)
        np.testing.assert_array_equal(got, want.astype(np.float32), err_msg=f"{isa} {kernel} M={M} N={N} K={K}")
    assert kernel.startswith(isa.split("_")[0] if isa != "avx512" else "avx2"), kernel


@pytest.mark.parametrize("isa", ALL_ISAS)
def test_quantiser_is_bit_exact(isa):
    _isa(isa)
    rng = np.random.default_rng(1)
    for K in (1, 2, 3, 4, 5, 15, 16, 17, 31, 64, 65, 130, 512):
        x = (rng.standard_normal((10, K)) * 3).astype(np.float32)
        # range < 255 / FLT_MAX: inv overflows -> treated as constant. Not on 32-bit ARM, where NumPy's own SIMD
        # loops flush subnormals (the C++ kernel tests cover this row there).
        x[9] = 0.0 if ARMV7 else rng.integers(-3, 4, K) * np.float32(1e-39)
        x[1] = rng.integers(-255, 256, K) * np.float32(0.5)  # range 255: inv 1, every half a tie
        x[1, 0] = -127.5
        x[1, -1] = 127.5 if K > 1 else -127.5
        x[2] = 0.0
        x[3, K // 2] = np.nan
        x[4, -1] = -np.inf
        x[5, 0] = 3e4  # an outlier: the rest rounds to 0 or +-1
        x[6] *= np.float32(1e-30)  # tiny values: scale near the subnormal range
        x[7] = np.abs(x[7])  # one-signed, as after a ReLU
        x[8] = 2.5  # constant
        for smooth in (rng.uniform(0.25, 4.0, K).astype(np.float32), None):
            q, scale, zero, offset = _C._quantize_rows(x, smooth, isa)
            want_q, want_scale, want_zero = quantize_rows(x, smooth)
            np.testing.assert_array_equal(q, want_q, err_msg=f"{isa} K={K}")
            for got, want in ((scale, want_scale), (zero, want_zero)):
                np.testing.assert_array_equal(got.view(np.int32), want.view(np.int32), err_msg=f"{isa} K={K}")
            assert offset in (0, 128)
        assert scale[2] == 0 and zero[2] == 0 and scale[8] == 0 and zero[8] == 2.5 and (q[[2, 8]] == 0).all()
        assert scale[9] == 0 and zero[9] == x[9].min() and (q[9] == 0).all()
        assert np.isnan(scale[3:5]).all() and np.isnan(zero[3:5]).all() and (q[3:5] == 0).all()
        if K > 1:  # ties to even: x + 127.5 is a half or an integer
            np.testing.assert_array_equal(q[1], (np.rint(x[1] + np.float32(127.5)) - 128).astype(np.int8))
        # dequantised rows are within half a step of the input
        ok = np.isfinite(scale) & (scale > 0)
        back = scale[:, None] * q.astype(np.float32) + zero[:, None]
        assert (np.abs(back - x)[ok] <= 0.5001 * scale[ok, None] + 1e-6 * np.abs(x[ok])).all()


@pytest.mark.parametrize("isa", ALL_ISAS)
@pytest.mark.parametrize("epilogue", ["plain", "relu", "gelu", "residual", "no_norm", "layer_norm", "smooth"])
def test_scaled_linear_matches_the_reference(isa, epilogue):
    _isa(isa)
    rng = np.random.default_rng(2)
    M, N, K = 37, 70, 131
    W = rng.standard_normal((N, K)).astype(np.float32)
    x = (rng.standard_normal((M, K)) * 2).astype(np.float32)
    x[3] = 0.0  # all-zero row: scale 0, output = bias
    bias = rng.standard_normal(N).astype(np.float32)
    smooth = rng.uniform(0.5, 2.0, K).astype(np.float32) if epilogue == "smooth" else None
    q, s = quantize_weight(W)
    lin = _C.PackedLinear(q, bias, isa, weight_scale=s, smooth=smooth)
    y = Int8Weight(q, s, smooth)(x, bias)
    kw = {}
    if epilogue in ("relu", "gelu"):
        kw["activation"] = epilogue
        y = np.maximum(y, 0) if epilogue == "relu" else mbl.activations.apply_activation("gelu", y)
    if epilogue == "residual":
        res = rng.standard_normal((M, N)).astype(np.float32)
        kw["residual"] = res
        y = y + res
    if epilogue in ("no_norm", "layer_norm"):
        w, b = rng.standard_normal(N).astype(np.float32), rng.standard_normal(N).astype(np.float32)
        kw.update(norm=epilogue, norm_weight=w, norm_bias=b, eps=1e-5)
        y64 = y.astype(np.float64)
        if epilogue == "no_norm":
            y = (y64 * w + b).astype(np.float32)
        else:
            y = ((y64 - y64.mean(-1, keepdims=True)) / np.sqrt(y64.var(-1, keepdims=True) + 1e-5) * w + b)
    got = lin(x, **kw)
    if epilogue in ("plain", "relu", "residual", "smooth"):
        assert _ulps(got, y).max() <= 1, (isa, epilogue, _ulps(got, y).max())
    else:  # float32 epilogue math against its float64 (or float32-rounding) statement
        np.testing.assert_allclose(got, y, rtol=2e-5, atol=2e-5 * np.abs(y).max())
    np.testing.assert_array_equal(got[3], lin(x[3:4], **{k: (v[3:4] if k == "residual" else v)
                                                        for k, v in kw.items()})[0])
    # the thread split never changes a bit
    np.testing.assert_array_equal(lin(x, num_threads=2, **kw), got)


def test_big_shapes_split_over_threads_identically():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((512, 384)).astype(np.float32)
    q, s = quantize_weight(W)
    lin = _C.PackedLinear(q, None, weight_scale=s)
    x = rng.standard_normal((300, 384)).astype(np.float32)
    one = lin(x)
    np.testing.assert_array_equal(lin(x, num_threads=2), one)
    assert _ulps(one, Int8Weight(q, s)(x)).max() <= 1


def test_nan_row_gives_nan_outputs_and_inf_weights_are_refused():
    rng = np.random.default_rng(4)
    q, s = quantize_weight(rng.standard_normal((8, 16)).astype(np.float32))
    lin = _C.PackedLinear(q, None, weight_scale=s)
    x = rng.standard_normal((3, 16)).astype(np.float32)
    x[1, 5] = np.nan
    y = lin(x, activation="relu")
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()
    with pytest.raises(ValueError, match="NaN or inf"):
        quantize_weight(np.array([[1.0, np.inf]], np.float32))


def test_bad_int8_layers_are_refused():
    q = np.ones((4, 8), np.int8)
    with pytest.raises(ValueError, match="weight_scale"):
        _C.PackedLinear(q, None)
    with pytest.raises(ValueError, match="weight_scale has shape"):
        _C.PackedLinear(q, None, weight_scale=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="smooth has shape"):
        _C.PackedLinear(q, None, weight_scale=np.ones(4, np.float32), smooth=np.ones(7, np.float32))
    bad = q.copy()
    bad[2, 3] = -128
    with pytest.raises(ValueError, match="-128"):
        _C.PackedLinear(bad, None, weight_scale=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="K <= 65536"):
        _C.PackedLinear(np.ones((1, 65537), np.int8), None, weight_scale=np.ones(1, np.float32))
    with pytest.raises(ValueError, match="int8 weights only"):
        _C.PackedLinear(np.ones((4, 8), np.float32), None, weight_scale=np.ones(4, np.float32))
    lin = _C.PackedLinear(q, None, weight_scale=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="x has shape"):
        lin(np.ones((2, 9), np.float32))


@pytest.mark.parametrize("epilogue", ["plain", "relu6", "residual", "no_norm", "no_norm_residual", "smooth"])
def test_every_isa_gives_the_same_bits(epilogue):
    """Exact integer products, one quantiser contract and one epilogue formula (fused multiply-adds included):
    every ISA's int8 Linear -- fused NoNorm in the tile (avx512_vnni, scalar) or as a row pass (the others) --
    returns the same bits. (GELU and LayerNorm run in per-ISA float kernels afterwards and are left out.)"""
    rng = np.random.default_rng(5)
    M, N, K = 29, 45, 77
    q, s = quantize_weight(rng.standard_normal((N, K)).astype(np.float32))
    bias = rng.standard_normal(N).astype(np.float32)
    x = rng.standard_normal((M, K)).astype(np.float32)
    smooth = rng.uniform(0.5, 2.0, K).astype(np.float32) if epilogue == "smooth" else None
    kw = {"activation": "relu6"} if epilogue == "relu6" else {}
    if "residual" in epilogue:
        kw["residual"] = rng.standard_normal((M, N)).astype(np.float32)
    if epilogue.startswith("no_norm"):
        kw.update(norm="no_norm", norm_weight=rng.standard_normal(N).astype(np.float32),
                  norm_bias=rng.standard_normal(N).astype(np.float32))
    outs = {isa: _C.PackedLinear(q, bias, isa, weight_scale=s, smooth=smooth)(x, **kw) for isa in SUPPORTED}
    for isa, y in outs.items():
        np.testing.assert_array_equal(y, outs["scalar"], err_msg=f"{isa} vs scalar, {epilogue}")
