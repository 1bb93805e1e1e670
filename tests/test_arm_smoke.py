"""Native vs reference engine on tiny configs, and the ISA report: fast and NumPy-only.

Written for the ARM job (ci/arm_python.sh runs it as aarch64 under qemu-user, cortex-a72 and cortex-a76, where
SIMD code is ~50x slower and nothing can start a child Python): no subprocess, no torch/transformers, shapes
small enough that the file takes seconds emulated. It runs in the normal x86 suite too (< 5 s), with the x86
expectations for the ISA report.

- every MobileBert* class, and the TF twins on a couple of classes, on both norms: native within
  1e-4 * max(1, max|ref|) of the NumPy reference, for every output field, hidden states and attentions included,
  with a fully masked row and a partly masked one in the batch;
- runtime_info(): on ARM, neon compiled, supported and active (its kernels named), the dotprod feature as the
  emulated core has it; on x86 the x86 ISAs and no neon;
- named kernels (`isa=`): scalar and the native ISA run and agree; a foreign ISA (avx2 on ARM, neon on x86) is
  refused with the reason;
- MBL_FORCE_ISA (read once per process, so the ARM script sets it for a separate pytest run): an available ISA
  is honoured, an unavailable one (avx2 on ARM) makes the native engine refuse with a clear error.
"""

from __future__ import annotations

import os
import platform

import numpy as np
import pytest

import mobilebert_lite as mbl

if "native" not in mbl.BACKENDS:
    if os.environ.get("MBL_REQUIRE_NATIVE"):
        raise AssertionError(f"MBL_REQUIRE_NATIVE=1 but the native module is missing: "
                             f"{mbl.runtime_info().get('native_error')}")
    pytest.skip("native module not built", allow_module_level=True)

from mobilebert_lite import _C  # noqa: E402

MACHINE = platform.machine().lower()
IS_ARM = MACHINE.startswith(("aarch64", "arm"))
IS_X86 = MACHINE in ("x86_64", "amd64")
FORCED = os.environ.get("MBL_FORCE_ISA") or None
TOL = 1e-4  # DESIGN.md section 3, the native tolerance

TINY = dict(vocab_size=53, hidden_size=32, embedding_size=16, intra_bottleneck_size=16, num_attention_heads=2,
            intermediate_size=24, num_hidden_layers=2, max_position_embeddings=24, num_labels=3,
            classifier_activation=True)
CONFIGS = {
    "no_norm": dict(use_bottleneck_attention=True, num_feedforward_networks=2),
    "layer_norm": dict(normalization_type="layer_norm", hidden_act="gelu", layer_norm_eps=1e-3),
}
PT_CLASSES = ["MobileBertModel", "MobileBertForPreTraining", "MobileBertForMaskedLM",
              "MobileBertForNextSentencePrediction", "MobileBertForSequenceClassification",
              "MobileBertForMultipleChoice", "MobileBertForTokenClassification", "MobileBertForQuestionAnswering"]
TF_CLASSES = ["TFMobileBertForMaskedLM", "TFMobileBertForMultipleChoice", "TFMobileBertForQuestionAnswering"]
FULLY_MASKED = 1  # batch row whose attention mask is all zeros
TF_FULLY_MASKED_TOL = 2e-3  # TF adds -10000 to masked scores: a fully masked row is rounded at ulp(10000)


def make_config(class_name, config_name):
    kwargs = {**TINY, **CONFIGS[config_name]}
    if "QuestionAnswering" in class_name:
        kwargs["num_labels"] = 2
    return mbl.MobileBertConfig(**kwargs)


def perturbed_params(cls, config, seed):
    """Every weight random (no zero bias or unit norm can hide a wrong parameter)."""
    params = cls(config, backend="reference", seed=seed).params
    rng = np.random.default_rng(seed)
    out = {k: (v + rng.standard_normal(v.shape) * 0.1).astype(np.float32) for k, v in params.items()}
    if "cls.predictions.bias" in out:  # untied decoder (the TF twins always carry their own)
        out["cls.predictions.decoder.weight"] = (rng.standard_normal(
            (config.vocab_size, config.embedding_size)) * 0.2).astype(np.float32)
    return out


def make_inputs(class_name, rng):
    B, L = 3, 9
    ids = rng.integers(1, TINY["vocab_size"], size=(B, L))
    mask = np.ones_like(ids)
    mask[FULLY_MASKED, :] = 0
    mask[2, 6:] = 0
    types = (np.arange(L) >= 5).astype(np.int64)[None].repeat(B, 0)
    feed = dict(input_ids=ids, attention_mask=mask, token_type_ids=types)
    if "MultipleChoice" in class_name:  # [B, C=2, L]
        feed = {k: np.stack([v, v[::-1]], 1) for k, v in feed.items()}
    return feed


def assert_close(got, ref, name):
    """max|got - ref| <= TOL * max(1, max|ref|), finite, float32 (conftest's assert_close would file the error
    under "vs transformers" in the summary table)."""
    assert isinstance(got, np.ndarray) and got.dtype == np.float32, f"{name}: {type(got).__name__} {got.dtype}"
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != reference {ref.shape}"
    assert np.all(np.isfinite(got)), f"{name}: {int(np.sum(~np.isfinite(got)))} non-finite values"
    if ref.size == 0:
        return
    err = float(np.abs(got.astype(np.float64) - ref).max())
    scale = max(1.0, float(np.abs(ref).max()))
    assert err <= TOL * scale, f"{name}: max |native - reference| = {err:.3e} > {TOL:g} * {scale:.4g}"


def compare_outputs(ref, nat, name, loose_rows=(), row_axis=None):
    """Every field of the reference output is in the native one and within tolerance. `loose_rows` of the
    encoder outputs (batch axis `row_axis` of each tensor) are compared at TF_FULLY_MASKED_TOL instead."""
    assert list(nat.keys()) == list(ref.keys()), f"{name}: fields {list(nat.keys())} != {list(ref.keys())}"
    for key in ref.keys():
        refs = ref[key] if isinstance(ref[key], tuple) else (ref[key],)
        nats = nat[key] if isinstance(nat[key], tuple) else (nat[key],)
        assert len(nats) == len(refs), f"{name}.{key}: {len(nats)} entries, reference {len(refs)}"
        for i, (r, n) in enumerate(zip(refs, nats)):
            label = f"{name}.{key}[{i}]"
            r = np.asarray(r)
            if loose_rows and key in ("hidden_states", "attentions", "last_hidden_state"):
                keep = np.ones(r.shape[0], bool)
                keep[list(loose_rows)] = False
                scale = max(1.0, float(np.abs(r).max()))
                err = float(np.abs(np.asarray(n)[~keep].astype(np.float64) - r[~keep]).max(initial=0))
                assert err <= TF_FULLY_MASKED_TOL * scale, f"{label} (fully masked rows): {err:.3g}"
                r, n = r[keep], n[keep]
            assert_close(n, r, label)


def _native_usable():
    try:
        _C.runtime_info()
    except RuntimeError as exc:
        pytest.skip(f"native engine unusable under MBL_FORCE_ISA={FORCED} (checked by test_forced_isa_env): {exc}")


# ---------------------------------------------------------------------------------------------- model parity
def _model_pair(class_name, config_name):
    """(config, reference model, native model) with the same perturbed weights."""
    _native_usable()
    cls = getattr(mbl, class_name)
    config = make_config(class_name, config_name)
    params = perturbed_params(cls, config, seed=len(class_name))
    nat_model = cls(config, params, backend="native")
    assert nat_model.backend == "native"
    return config, cls(config, params, backend="reference"), nat_model


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("class_name", PT_CLASSES)
def test_native_matches_reference(class_name, config_name):
    config, ref_model, nat_model = _model_pair(class_name, config_name)
    feed = make_inputs(class_name, np.random.default_rng(0))
    flags = dict(output_hidden_states=True, output_attentions=True)
    ref, nat = ref_model(**feed, **flags), nat_model(**feed, **flags)
    assert len(ref["hidden_states"]) == config.num_hidden_layers + 1
    assert len(ref["attentions"]) == config.num_hidden_layers
    compare_outputs(ref, nat, f"{class_name}/{config_name}")
    # the fully masked row is finite and attends uniformly (PyTorch semantics: every score at finfo.min)
    att = np.asarray(nat["attentions"][0])
    row = att.reshape(-1, 2, *att.shape[1:])[FULLY_MASKED] if "MultipleChoice" in class_name else att[FULLY_MASKED]
    assert np.all(np.isfinite(row))
    np.testing.assert_allclose(row, 1.0 / row.shape[-1], rtol=1e-5)


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("class_name", TF_CLASSES)
def test_tf_twin_native_matches_reference(class_name, config_name):
    config, ref_model, nat_model = _model_pair(class_name, config_name)
    feed = make_inputs(class_name, np.random.default_rng(1))
    ref = ref_model(feed, output_hidden_states=True, output_attentions=True)
    nat = nat_model(feed, output_hidden_states=True, output_attentions=True)
    C = 2 if "MultipleChoice" in class_name else 1  # encoder rows: B*C for multiple choice
    compare_outputs(ref, nat, f"{class_name}/{config_name}", loose_rows=range(FULLY_MASKED * C, FULLY_MASKED * C + C))


# ------------------------------------------------------------------------------------------------ ISA report
def test_runtime_info_reports_the_architecture():
    _native_usable()
    info = mbl.runtime_info()
    kernels = info["kernels"]
    assert set(kernels) >= {"add_norm", "gemm", "attention", "qgemm"} and all(kernels.values()), kernels
    assert info["isa"] in info["supported_isas"] and set(info["supported_isas"]) <= set(info["compiled_isas"])
    assert "scalar" in info["supported_isas"]
    if IS_ARM:
        assert info["cpu_features"]["neon"], info["cpu_features"]
        assert "neon" in info["compiled_isas"] and "neon" in info["supported_isas"], info
        assert not {"avx2", "avx2_vnni", "avx512", "avx512_vnni"} & set(info["compiled_isas"]), info
        assert MACHINE in info["build"] or "arm" in info["build"], info["build"]
        if not FORCED:
            assert info["isa"] in ("neon", "neon_dotprod"), info
            assert any(name.startswith("neon") for name in kernels.values()), kernels
        # qemu-user reports the emulated core's HWCAP: dotprod on cortex-a76, not on cortex-a72
        qemu_cpu = os.environ.get("QEMU_CPU")
        if qemu_cpu in ("cortex-a72", "cortex-a53", "cortex-a57"):
            assert not info["cpu_features"]["dotprod"], info["cpu_features"]
        elif qemu_cpu in ("cortex-a76", "neoverse-n1"):
            assert info["cpu_features"]["dotprod"], info["cpu_features"]
    elif IS_X86:
        assert "neon" not in info["compiled_isas"] and not info["cpu_features"]["neon"], info
        if not FORCED:
            assert info["isa"] in ("scalar", "avx2", "avx2_vnni", "avx512", "avx512_vnni"), info
            # the *_vnni tables are chosen exactly when the CPU has VNNI
            vnni = info["cpu_features"]["avx512_vnni"] or info["cpu_features"]["avx_vnni"]
            assert info["isa"].endswith("_vnni") == vnni, info


def _add_norm_case():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 37)).astype(np.float32)
    w = (1 + 0.1 * rng.standard_normal(37)).astype(np.float32)
    b = (0.1 * rng.standard_normal(37)).astype(np.float32)
    y = x.astype(np.float64)
    y = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-5) * w + b
    return x, w, b, y


def test_named_kernels_run_and_foreign_isas_are_refused():
    x, w, b, want = _add_norm_case()
    supported = _C.runtime_info()["supported_isas"] if not FORCED else None
    names = ["scalar"] + (["neon"] if IS_ARM else [])
    if supported is not None:
        names = list(supported)
    for isa in names:
        got = _C.add_norm(x, w, b, layer_norm=True, eps=1e-5, isa=isa)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=isa)
        lin = _C.PackedLinear(w[:, None] * np.ones((1, 37), np.float32), b, isa=isa)
        assert lin.isa == isa
    foreign = ["avx2", "avx512"] if IS_ARM else ["neon"] if IS_X86 else []
    for isa in foreign:
        with pytest.raises(RuntimeError, match=rf"{isa} is not compiled into this build \(compiled: .*scalar"):
            _C.add_norm(x, w, b, layer_norm=True, eps=1e-5, isa=isa)
    with pytest.raises(ValueError):
        _C.add_norm(x, w, b, isa="sse9")


def test_forced_isa_env():
    """MBL_FORCE_ISA is read once per process: ci/arm_python.sh runs this file again with it set."""
    if not FORCED:
        assert _C.runtime_info()["forced_isa"] is None
        return
    x, w, b, want = _add_norm_case()
    compiled = (["scalar", "avx2", "avx2_vnni", "avx512", "avx512_vnni"] if IS_X86
                else ["scalar", "neon", "neon_dotprod"] if IS_ARM else ["scalar"])
    if FORCED in compiled:
        try:
            info = mbl.runtime_info()
        except RuntimeError as exc:  # compiled but not supported by this CPU (e.g. avx512 on an AVX2 machine)
            assert f"MBL_FORCE_ISA={FORCED}: {FORCED} is not supported by this CPU" in str(exc)
            return
        assert info["isa"] == FORCED and info["forced_isa"] == FORCED, info
        if FORCED == "scalar":
            assert set(info["kernels"].values()) <= {"scalar", "scalar_4x8"} or all(
                v.startswith("scalar") for v in info["kernels"].values()), info["kernels"]
        np.testing.assert_allclose(_C.add_norm(x, w, b, layer_norm=True, eps=1e-5), want, rtol=0, atol=1e-5)
        return
    # an ISA this build cannot run: refused, with the reason, by everything that needs the active kernels
    expected = rf"MBL_FORCE_ISA={FORCED}: {FORCED} is not compiled into this build"
    with pytest.raises(RuntimeError, match=expected):
        mbl.runtime_info()
    with pytest.raises(RuntimeError, match=expected):
        _C.add_norm(x, w, b, layer_norm=True, eps=1e-5)
    config = make_config("MobileBertModel", "no_norm")
    with pytest.raises(RuntimeError, match=expected):
        mbl.MobileBertModel(config, backend="native")(input_ids=np.array([[1, 2, 3]]))
    # the reference engine is unaffected, and named kernels still work
    assert mbl.MobileBertModel(config, backend="reference")(input_ids=np.array([[1, 2, 3]])).last_hidden_state.shape \
        == (1, 3, TINY["hidden_size"])
    np.testing.assert_allclose(_C.add_norm(x, w, b, layer_norm=True, eps=1e-5, isa="scalar"), want, atol=1e-5)


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("class_name", PT_CLASSES)
def test_int8_native_matches_the_int8_reference(class_name, config_name):
    """quantize="int8" on every class: the native int8 kernels of this machine (neon / neon_dotprod under qemu)
    against the NumPy int8 reference. Each int8 Linear is bitwise the same in both (tests/test_int8_kernels.py);
    float32 rounding elsewhere may move an activation across a quantiser boundary now and then, so: the median
    element within float32 rounding (1e-6), every element within 0.15 (tests/test_int8_models.py explains both)."""
    _native_usable()
    cls = getattr(mbl, class_name)
    config = make_config(class_name, config_name)
    params = perturbed_params(cls, config, seed=len(class_name))
    nat_model = cls(config, params, backend="native", quantize="int8")
    ref_model = cls(config, params, backend="reference", quantize="int8")
    assert nat_model.engine.int8_linears > 0
    feed = make_inputs(class_name, np.random.default_rng(2))
    ref, nat = ref_model(**feed, output_hidden_states=True), nat_model(**feed, output_hidden_states=True)
    assert list(nat.keys()) == list(ref.keys())
    for key in ref.keys():
        for r, n in zip(*(v if isinstance(v, tuple) else (v,) for v in (ref[key], nat[key]))):
            r, n = np.asarray(r, np.float64), np.asarray(n, np.float64)
            diff = np.abs(n - r) / max(1.0, float(np.abs(r).max()))
            assert diff.max() <= 0.15, f"{class_name}/{config_name}.{key}: {diff.max():.3e}"
            if diff.size >= 16:
                assert np.median(diff) <= 1e-6, f"{class_name}/{config_name}.{key}: median {np.median(diff):.3e}"
