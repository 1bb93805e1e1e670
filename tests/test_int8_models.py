"""int8 models (quantize="int8", `mobilebert-lite quantize` checkpoints) on every class, against transformers fp32
(live), against the NumPy int8 reference engine, and their checkpoints' round trips and bad files.

Tolerances (int8 is an approximation, so these are not DESIGN.md's fp32 ones):
- INT8_VS_HF: max|ours - hf| <= 0.15 * max(1, max|hf|) for every output field: a sanity bound (measured up to
  0.12, on pooler outputs of these 2-layer random models whose rows are only K = 32..96 wide; 1e-2 to 5e-2
  elsewhere). The real accuracy criterion is the next one.
- closer than per-tensor int8: on every field of >= 16 elements, our mean error vs HF is below that of the same
  Linears quantised the way ONNX Runtime's dynamic quantisation does (activations uint8 asymmetric per tensor,
  weights int8 symmetric per tensor), simulated in NumPy on the same model.
- native vs the NumPy int8 reference: each int8 Linear is bitwise the same in both engines
  (tests/test_int8_kernels.py); what differs is float32 rounding elsewhere (attention, norms), which now and
  then moves an activation across a rounding boundary of the quantiser (one step of amax/127 in one element),
  and that difference then spreads through the later layers of that token. So: the median element agrees to
  float32 rounding (MEDIAN_NATIVE_VS_REFERENCE = 1e-6 relative; 2e-8 measured), the mean error vs HF is the
  reference's within 10 % (a wrong scale, row or epilogue is far off), and the worst element is within INT8_VS_HF.
- and int8 must actually run: the error vs HF fp32 is nonzero, and the engine reports its int8 Linears.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_hf
from hf_checkpoints import CLASS_NAMES
from test_parity_hf import config_kwargs, make_inputs

import mobilebert_lite as mbl
from mobilebert_lite import quantization, reference
from mobilebert_lite.errors import CheckpointError
from mobilebert_lite.safetensors_io import SafetensorsFile, load_safetensors, save_safetensors

pytestmark = pytest.mark.skipif("native" not in mbl.BACKENDS, reason="native module not built")

INT8_VS_HF = 0.15
MEDIAN_NATIVE_VS_REFERENCE = 1e-6
MEAN_ERROR_RATIO = 1.1
CONFIGS = ("default", "layer_norm_gelu", "tiny_layout")


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


def _fields(out):
    """(name, array) of every output field, hidden states one by one."""
    for k in out.keys():
        v = out[k]
        if isinstance(v, tuple):
            for i, x in enumerate(v):
                yield f"{k}[{i}]", np.asarray(x)
        else:
            yield k, np.asarray(v.detach().numpy() if hasattr(v, "detach") else v)


def expected_int8_linears(cfg) -> int:
    per_layer = 4 + 2 * cfg.num_feedforward_networks  # Q, K, V, attention output, and each FFN's two
    per_layer += 2 if cfg.use_bottleneck else 0  # bottleneck input, output bottleneck
    per_layer += 1 if cfg.use_bottleneck and not cfg.use_bottleneck_attention else 0  # shared Q/K bottleneck
    embed = 1 if cfg.trigram_input or cfg.embedding_size != cfg.hidden_size else 0
    return cfg.num_hidden_layers * per_layer + embed


@pytest.mark.parametrize("config_name", CONFIGS)
@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_int8_matches_hf_and_the_reference(hf_checkpoint, class_name, config_name):
    cfg = config_kwargs(config_name, class_name)
    ck = hf_checkpoint(class_name, cfg)
    inputs = make_inputs(class_name, cfg, batch=3, seq_len=11)
    hf_out = run_hf(ck.model, inputs, return_dict=True, output_hidden_states=True)
    cls = getattr(mbl, class_name)
    native = cls.from_pretrained(ck.path, quantize="int8")
    reference = cls.from_pretrained(ck.path, quantize="int8", backend="reference")
    assert native.quantize == "int8" and "quantize='int8'" in repr(native)
    assert native.engine.int8_linears == expected_int8_linears(native.config)
    ours_n = native(**inputs, return_dict=True, output_hidden_states=True)
    ours_r = reference(**inputs, return_dict=True, output_hidden_states=True)
    assert list(ours_n.keys()) == list(hf_out.keys())
    worst = 0.0
    ref_fields = dict(_fields(ours_r))
    for name, want in _fields(hf_out):
        got = dict(_fields(ours_n))[name]
        assert got.shape == want.shape, name
        err = _rel(got, want)
        worst = max(worst, err)
        assert err <= INT8_VS_HF, f"{name}: int8 vs HF fp32 {err:.2e} > {INT8_VS_HF}"
        assert_native_agrees_with_reference(got, ref_fields[name], want, name)
    assert worst > 1e-5, "int8 outputs equal fp32 ones: nothing was quantised"
    per_tensor = dict(_fields(per_tensor_int8_model(cls, ck.path)(**inputs, return_dict=True,
                                                                  output_hidden_states=True)))
    for name, want in _fields(hf_out):
        if want.size >= 16:
            ours, theirs = (np.abs(np.asarray(x, np.float64) - want).mean()
                            for x in (ref_fields[name], per_tensor[name]))
            assert ours < theirs, f"{name}: mean error {ours:.2e} is not below per-tensor int8's {theirs:.2e}"


class PerTensorInt8Ops(reference.NumpyOps):
    """ONNX Runtime's dynamic quantisation of a MatMul, simulated: x uint8 asymmetric over the whole tensor (range
    widened to include 0), W int8 symmetric over the whole tensor, exact integer products."""

    def __init__(self, weights):
        self.quantised = {id(w) for w in weights}

    def linear(self, x, weight, bias=None):
        if id(weight) not in self.quantised:
            return super().linear(x, weight, bias)
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        xs = (hi - lo) / 255 or 1.0
        zero = np.round(-lo / xs)
        qx = np.clip(np.round(x / xs) + zero, 0, 255)
        ws = float(np.abs(weight).max()) / 127 or 1.0
        qw = np.clip(np.round(weight / ws), -127, 127)
        y = ((qx - zero) @ qw.T * (xs * ws)).astype(np.float32)
        return y if bias is None else y + bias


def per_tensor_int8_model(cls, path):
    model = cls.from_pretrained(path, backend="reference")
    model.engine.ops = PerTensorInt8Ops([model.params[n] for n in quantization.int8_linears(model.params)])
    return model


def assert_native_agrees_with_reference(native, reference, hf, name=""):
    native, reference, hf = (np.asarray(x, np.float64) for x in (native, reference, hf))
    scale = max(1.0, np.abs(reference).max())
    diff = np.abs(native - reference) / scale
    if diff.size >= 16:  # a few values (a loss, NSP logits) have no typical element: the max bound only
        median = np.median(diff)
        assert median <= MEDIAN_NATIVE_VS_REFERENCE, f"{name}: median native vs reference {median:.2e}"
    assert diff.max() <= INT8_VS_HF, f"{name}: native vs reference int8 {diff.max():.2e}"
    if hf is not None and diff.size >= 16 and np.abs(reference - hf).mean() > 0:
        ratio = np.abs(native - hf).mean() / np.abs(reference - hf).mean()
        assert ratio <= MEAN_ERROR_RATIO, f"{name}: native's mean error vs HF is {ratio:.2f}x the reference's"


def test_tf_twin_runs_int8_and_refuses_h5_save(hf_checkpoint, tmp_path):
    cfg = config_kwargs("default", "MobileBertForSequenceClassification")
    ck = hf_checkpoint("MobileBertForSequenceClassification", cfg)
    tf = mbl.TFMobileBertForSequenceClassification.from_pretrained(ck.path, from_pt=True, quantize="int8")
    pt = mbl.MobileBertForSequenceClassification.from_pretrained(ck.path, quantize="int8")
    inputs = make_inputs("MobileBertForSequenceClassification", cfg, labels=False)
    # no padding-mask differences between the twins' semantics on an unpadded batch of full rows
    inputs["attention_mask"][:] = 1
    assert tf.engine.int8_linears == pt.engine.int8_linears > 0
    assert_native_agrees_with_reference(tf(**inputs).logits, pt(**inputs).logits, None)
    with pytest.raises(NotImplementedError, match="float weights only"):
        tf.save_pretrained(str(tmp_path / "h5"))


# ------------------------------------------------------------------------------------------------ checkpoints
def _uncased_model_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("uncased_fp32"))
    mbl.MobileBertModel(mbl.MobileBertConfig(classifier_activation=False), seed=0).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def uncased(tmp_path_factory):
    return _uncased_model_dir(tmp_path_factory)


def test_quantize_cli_writes_a_quarter_sized_checkpoint_that_runs_int8(uncased, tmp_path):
    dst = str(tmp_path / "int8")
    proc = subprocess.run([sys.executable, "-m", "mobilebert_lite", "quantize", uncased, dst], capture_output=True,
                          text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    src_size = os.path.getsize(os.path.join(uncased, "model.safetensors"))
    size = os.path.getsize(os.path.join(dst, "model.safetensors"))
    assert size <= 0.27 * src_size, (size, src_size)
    assert "MB" in proc.stdout and f"{size / src_size:.2f}x" in proc.stdout
    sf = SafetensorsFile(os.path.join(dst, "model.safetensors"))
    assert sf.metadata.get(quantization.FORMAT_KEY) == quantization.FORMAT
    int8 = [k for k, (d, _) in sf.tensors.items() if d == "I8"]
    assert "embeddings.word_embeddings.weight" in int8
    assert all(k + "_scale" in sf.tensors for k in int8)
    assert os.path.isfile(os.path.join(dst, "config.json"))

    ids = np.random.default_rng(0).integers(1, 30522, (2, 40))
    loaded = mbl.MobileBertModel.from_pretrained(dst)
    assert loaded.quantize == "int8" and loaded.engine.int8_linears == 24 * 15 + 1
    fp32 = mbl.MobileBertModel.from_pretrained(uncased)
    at_load = mbl.MobileBertModel.from_pretrained(uncased, quantize="int8")
    want = fp32(input_ids=ids).last_hidden_state
    got = loaded(input_ids=ids).last_hidden_state
    assert 1e-5 < _rel(got, want) < 1e-2
    # quantize="int8" at load differs only by keeping the word embeddings in float32
    assert _rel(at_load(input_ids=ids).last_hidden_state, want) < 1e-2

    # save_pretrained of the int8 model writes the same tensors back (int8 values and scales unchanged)
    again = str(tmp_path / "again")
    loaded.save_pretrained(again)
    a, b = load_safetensors(os.path.join(dst, "model.safetensors")), load_safetensors(os.path.join(again,
                                                                                                   "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    np.testing.assert_array_equal(mbl.MobileBertModel.from_pretrained(again)(input_ids=ids).last_hidden_state, got)

    # the command refuses to quantise twice
    proc = subprocess.run([sys.executable, "-m", "mobilebert_lite", "quantize", dst, str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 2 and "already an int8 checkpoint" in proc.stderr


def _tiny_int8_dir(tmp_path, hf_checkpoint):
    cfg = config_kwargs("default", "MobileBertForMaskedLM")
    ck = hf_checkpoint("MobileBertForMaskedLM", cfg)
    dst = str(tmp_path / "tiny8")
    from mobilebert_lite.converters.convert import quantize

    quantize(ck.path, dst)
    return ck, dst


def test_quantized_mlm_checkpoint_against_hf(hf_checkpoint, tmp_path):
    ck, dst = _tiny_int8_dir(tmp_path, hf_checkpoint)
    inputs = make_inputs("MobileBertForMaskedLM", ck.config_kwargs, labels=False)
    hf = run_hf(ck.model, inputs, return_dict=True).logits.numpy()
    for backend in ("native", "reference"):
        model = mbl.MobileBertForMaskedLM.from_pretrained(dst, backend=backend)
        assert model.quantize == "int8"
        assert _rel(model(**inputs).logits, hf) <= INT8_VS_HF


@pytest.mark.parametrize("damage", ["no_scale", "minus_128", "scale_shape", "negative_scale"])
def test_damaged_int8_checkpoints_are_refused(hf_checkpoint, tmp_path, damage):
    _, dst = _tiny_int8_dir(tmp_path, hf_checkpoint)
    path = os.path.join(dst, "model.safetensors")
    tensors = {k: np.array(v) for k, v in load_safetensors(path).items()}
    name = "mobilebert.encoder.layer.0.attention.self.query.weight"
    assert tensors[name].dtype == np.int8
    if damage == "no_scale":
        del tensors[name + "_scale"]
        match = "has no"
    elif damage == "minus_128":
        tensors[name][0, 0] = -128
        match = "-128"
    elif damage == "scale_shape":
        tensors[name + "_scale"] = tensors[name + "_scale"][:-1]
        match = "has shape"
    else:
        tensors[name + "_scale"][0] = -1.0
        match = "negative or non-finite"
    save_safetensors(tensors, path)
    with pytest.raises(CheckpointError, match=match):
        mbl.MobileBertForMaskedLM.from_pretrained(dst)


def test_quantize_argument_is_checked(uncased):
    with pytest.raises(ValueError, match="quantize must be None or 'int8'"):
        mbl.MobileBertModel.from_pretrained(uncased, quantize="int4")


# ------------------------------------------------------------------------------------------------ forced ISAs
_SCRIPT = r"""
import json, sys
import numpy as np
import mobilebert_lite as mbl
path = sys.argv[1]
ids = np.random.default_rng(0).integers(1, 99, (3, 11))
mask = np.ones_like(ids); mask[1, 7:] = 0
out = {"isa": mbl.runtime_info()["isa"], "kernel": mbl.runtime_info()["kernels"]["qgemm"]}
for backend in ("native", "reference"):
    m = mbl.MobileBertForSequenceClassification.from_pretrained(path, backend=backend, quantize="int8")
    out[backend] = m(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1].tolist()
print(json.dumps(out))
"""


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx2_vnni", "avx512", "avx512_vnni", "neon", "neon_dotprod"])
def test_int8_model_under_each_forced_isa(isa, hf_checkpoint, tmp_path):
    supported = mbl.runtime_info()["supported_isas"]
    if isa not in supported:
        pytest.skip(f"{isa} is not supported by this CPU/build ({supported})")
    ck = hf_checkpoint("MobileBertForSequenceClassification",
                       config_kwargs("default", "MobileBertForSequenceClassification"))
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, ck.path], env={**os.environ, "MBL_FORCE_ISA": isa},
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["isa"] == isa
    assert_native_agrees_with_reference(out["native"], out["reference"], None, out["kernel"])


# ------------------------------------------------------------------------------------------- pipelines and CLI
def test_pipeline_and_cli_take_quantize(uncased, hf_checkpoint, tmp_path):
    text = "int8 keeps the sentence close"
    fp32 = mbl.pipeline("feature-extraction", model=uncased)
    int8 = mbl.pipeline("feature-extraction", model=uncased, quantize="int8")
    assert int8.model.quantize == "int8" and fp32.model.quantize is None
    a, b = np.asarray(fp32(text)), np.asarray(int8(text))
    assert a.shape == b.shape and 0 < _rel(b, a) <= INT8_VS_HF
    with pytest.raises(ValueError, match="applies when loading a model directory"):
        mbl.pipeline("feature-extraction", model=fp32.model, quantize="int8")
    ck = hf_checkpoint("MobileBertModel", config_kwargs("default", "MobileBertModel"))
    proc = subprocess.run([sys.executable, "-m", "mobilebert_lite", "run", "--model", ck.path, "--ids", "2 5 7",
                           "--quantize", "int8", "--json"], capture_output=True, text=True, timeout=300,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "last_hidden_state" in json.loads(proc.stdout)["outputs"]


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_batches_over_512_rows_run_the_ffn_in_chunks(quantize):
    """R = N * L > 512 rows: the engine runs each FFN in chunks of 256 rows (cache locality). Rows are independent,
    so the result is that of the reference, and the same bits on 1 and 2 threads."""
    cfg = mbl.MobileBertConfig(**{**config_kwargs("default", "MobileBertModel"), "max_position_embeddings": 256})
    params = mbl.MobileBertModel(cfg, backend="reference", seed=3).params
    ids = np.random.default_rng(3).integers(1, cfg.vocab_size, (3, 211))
    mask = np.ones_like(ids)
    mask[1, 150:] = 0
    one = mbl.MobileBertModel(cfg, params, quantize=quantize, num_threads=1)(input_ids=ids, attention_mask=mask)
    two = mbl.MobileBertModel(cfg, params, quantize=quantize, num_threads=2)(input_ids=ids, attention_mask=mask)
    ref = mbl.MobileBertModel(cfg, params, quantize=quantize, backend="reference")(input_ids=ids, attention_mask=mask)
    np.testing.assert_array_equal(one.last_hidden_state, two.last_hidden_state)
    if quantize is None:
        assert _rel(one.last_hidden_state, ref.last_hidden_state) <= 1e-4
    else:
        assert_native_agrees_with_reference(one.last_hidden_state, ref.last_hidden_state, None)
