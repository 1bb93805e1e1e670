"""Checkpoint loading: key variants, sharding, reduced precision, memory mapping, and every loading error.

Each test builds a tiny random transformers checkpoint (2 layers, norm weights and biases perturbed away from
1 and 0 so that a skipped or misplaced tensor shows up in the outputs), rewrites its safetensors file into the
variant under test, loads it with mobilebert_lite and compares against the transformers model.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import struct

import numpy as np
import pytest
from tiny_hf import TINY, make_tiny_hf_model

import mobilebert_lite as mbl

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
safetensors_numpy = pytest.importorskip("safetensors.numpy")
safetensors_torch = pytest.importorskip("safetensors.torch")

REF_TOL = 1e-5  # DESIGN.md section 3: reference engine vs HF, relative to max(1, max|hf|)
NATIVE_TOL = 1e-4  # native (float32 kernels) vs HF


OUTPUT_FIELDS = {
    "MobileBertModel": ("last_hidden_state", "pooler_output"),
    "MobileBertForPreTraining": ("prediction_logits", "seq_relationship_logits"),
    "MobileBertForMaskedLM": ("logits",),
    "MobileBertForNextSentencePrediction": ("logits",),
    "MobileBertForSequenceClassification": ("logits",),
    "MobileBertForMultipleChoice": ("logits",),
    "MobileBertForTokenClassification": ("logits",),
    "MobileBertForQuestionAnswering": ("start_logits", "end_logits"),
}


# ------------------------------------------------------------------------------------------------ helpers


def make_hf_model(class_name, seed=0, **overrides):
    """A random transformers model with every norm weight and bias perturbed (so none is a no-op)."""
    return make_tiny_hf_model(class_name, seed, perturb_word_embeddings=True, **overrides)


def make_inputs(class_name, seed=0, B=2, L=9, C=3):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, TINY["vocab_size"], size=(B, L)).astype(np.int64)
    mask = np.ones((B, L), np.int64)
    mask[1, L - 3 :] = 0
    ids[1, L - 3 :] = 0
    types = np.zeros((B, L), np.int64)
    types[:, L // 2 :] = 1
    inputs = dict(input_ids=ids, attention_mask=mask, token_type_ids=types)
    if class_name == "MobileBertForMultipleChoice":
        inputs = {k: np.repeat(v[:, None, :], C, axis=1).copy() for k, v in inputs.items()}
        inputs["input_ids"][:, 1, 1] = 5
        inputs["input_ids"][:, 2, 2] = 7
    return inputs


def hf_outputs(model, inputs):
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    return {f: getattr(out, f).numpy() for f in OUTPUT_FIELDS[type(model).__name__]}


def assert_matches_hf(ours_model, hf_model, inputs, tol=REF_TOL):
    ref = hf_outputs(hf_model, inputs)
    out = ours_model(**inputs)
    for field, expected in ref.items():
        got = np.asarray(getattr(out, field))
        assert got.dtype == np.float32, f"{field}: dtype {got.dtype}"
        assert got.shape == expected.shape, f"{field}: shape {got.shape} vs {expected.shape}"
        scale = max(1.0, float(np.abs(expected).max()))
        err = float(np.abs(got.astype(np.float64) - expected).max())
        assert err <= tol * scale, f"{field}: max|ours-hf| = {err:.3g} > {tol} * {scale:.3g}"


def save_hf(model, directory, **kwargs):
    model.save_pretrained(directory, **kwargs)
    return directory


def read_tensors(directory):
    return safetensors_numpy.load_file(os.path.join(directory, "model.safetensors"))


def write_variant(src_dir, dst_dir, tensors, config_update=None):
    """A copy of src_dir's config.json (optionally edited) with `tensors` as model.safetensors."""
    os.makedirs(dst_dir, exist_ok=True)
    with open(os.path.join(src_dir, "config.json")) as f:
        config = json.load(f)
    config.update(config_update or {})
    with open(os.path.join(dst_dir, "config.json"), "w") as f:
        json.dump(config, f)
    safetensors_numpy.save_file(tensors, os.path.join(dst_dir, "model.safetensors"), metadata={"format": "pt"})
    return dst_dir


def load(class_name, directory, backend="reference"):
    return getattr(mbl, class_name).from_pretrained(directory, backend=backend)


def check_message(excinfo, *fragments):
    msg = str(excinfo.value)
    for fragment in fragments:
        assert fragment.lower() in msg.lower(), f"{fragment!r} not in error message: {msg}"


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """(class_name, config overrides as a sorted tuple) -> (hf model, saved directory); built once per module."""
    cache = {}

    def get(class_name, **overrides):
        key = (class_name, tuple(sorted(overrides.items())))
        if key not in cache:
            model = make_hf_model(class_name, **overrides)
            d = tmp_path_factory.mktemp(class_name)
            save_hf(model, d)
            cache[key] = (model, str(d))
        return cache[key]

    return get


# ------------------------------------------------------------------------------------ plain HF checkpoints

CLASSES = list(OUTPUT_FIELDS)


@pytest.mark.parametrize("class_name", CLASSES)
def test_hf_checkpoint_loads_and_matches(ckpt, class_name):
    hf, d = ckpt(class_name)
    ours = load(class_name, d)
    assert_matches_hf(ours, hf, make_inputs(class_name))


@pytest.mark.parametrize("backend", list(mbl.BACKENDS))
def test_every_backend_loads(ckpt, backend):
    hf, d = ckpt("MobileBertForSequenceClassification")
    tol = REF_TOL if backend == "reference" else NATIVE_TOL
    assert_matches_hf(
        load("MobileBertForSequenceClassification", d, backend),
        hf,
        make_inputs("MobileBertForSequenceClassification"),
        tol,
    )


@pytest.mark.parametrize(
    "overrides",
    [
        dict(classifier_activation=False),
        dict(normalization_type="layer_norm", hidden_act="gelu"),
        dict(use_bottleneck=False, embedding_size=32, intra_bottleneck_size=64),
    ],
    ids=["no_pooler", "layer_norm", "no_bottleneck"],
)
def test_config_layouts_load(ckpt, overrides):
    hf, d = ckpt("MobileBertForSequenceClassification", **overrides)
    assert_matches_hf(
        load("MobileBertForSequenceClassification", d), hf, make_inputs("MobileBertForSequenceClassification")
    )


def test_loaded_config_matches_checkpoint(ckpt):
    _, d = ckpt("MobileBertForSequenceClassification")
    ours = load("MobileBertForSequenceClassification", d)
    for key, value in TINY.items():
        assert getattr(ours.config, key) == value
    assert ours.config.true_hidden_size == 32


# ------------------------------------------------------------------------------------------- key variants


def test_task_checkpoint_without_prefix(ckpt, tmp_path):
    hf, d = ckpt("MobileBertForSequenceClassification")
    tensors = {k.removeprefix("mobilebert."): v for k, v in read_tensors(d).items()}
    assert any(k.startswith("encoder.") for k in tensors) and "classifier.weight" in tensors
    write_variant(d, tmp_path, tensors)
    assert_matches_hf(
        load("MobileBertForSequenceClassification", tmp_path), hf, make_inputs("MobileBertForSequenceClassification")
    )


def test_base_checkpoint_bare_and_prefixed(ckpt, tmp_path):
    hf, d = ckpt("MobileBertModel")
    tensors = read_tensors(d)
    assert "encoder.layer.0.attention.self.query.weight" in tensors  # HF saves the base model bare
    inputs = make_inputs("MobileBertModel")
    assert_matches_hf(load("MobileBertModel", d), hf, inputs)
    write_variant(d, tmp_path, {"mobilebert." + k: v for k, v in tensors.items()})
    assert_matches_hf(load("MobileBertModel", tmp_path), hf, inputs)


@pytest.mark.parametrize(
    "task, overrides",
    [
        ("MobileBertForSequenceClassification", {}),
        ("MobileBertForPreTraining", {}),
        ("MobileBertForMaskedLM", dict(classifier_activation=False)),
        ("MobileBertForQuestionAnswering", dict(classifier_activation=False)),
    ],
)
def test_base_model_ignores_head_keys(ckpt, task, overrides):
    _, d = ckpt(task, **overrides)
    hf_base = transformers.MobileBertModel.from_pretrained(d).eval()
    assert_matches_hf(load("MobileBertModel", d), hf_base, make_inputs("MobileBertModel"))


def test_base_model_from_qa_checkpoint_without_pooler_raises(ckpt):
    # the QA class has no pooler; MobileBertModel with classifier_activation=True needs pooler.dense
    _, d = ckpt("MobileBertForQuestionAnswering")
    with pytest.raises(mbl.CheckpointError, match=re.escape("pooler.dense.weight")):
        load("MobileBertModel", d)


def test_masked_lm_from_pretraining_checkpoint(ckpt):
    _, d = ckpt("MobileBertForPreTraining")
    hf_mlm = transformers.MobileBertForMaskedLM.from_pretrained(d).eval()
    assert_matches_hf(load("MobileBertForMaskedLM", d), hf_mlm, make_inputs("MobileBertForMaskedLM"))


@pytest.mark.parametrize(
    "class_name, head_key",
    [
        ("MobileBertForSequenceClassification", "classifier.weight"),
        ("MobileBertForTokenClassification", "classifier.weight"),
        ("MobileBertForMultipleChoice", "classifier.weight"),
        ("MobileBertForQuestionAnswering", "qa_outputs.weight"),
        ("MobileBertForNextSentencePrediction", "cls.seq_relationship.weight"),
        ("MobileBertForPreTraining", "cls.seq_relationship.weight"),
        ("MobileBertForMaskedLM", "cls.predictions."),
    ],
)
def test_task_class_from_base_checkpoint_names_head(ckpt, class_name, head_key):
    _, d = ckpt("MobileBertModel")
    with pytest.raises(mbl.CheckpointError, match=re.escape(head_key)) as ei:
        load(class_name, d)
    check_message(ei, "missing")


@pytest.mark.parametrize("class_name", ["MobileBertForSequenceClassification", "MobileBertForMaskedLM"])
def test_legacy_gamma_beta_names(ckpt, tmp_path, class_name):
    hf, d = ckpt(class_name)
    tensors = {}
    for k, v in read_tensors(d).items():
        k = re.sub(r"LayerNorm\.weight$", "LayerNorm.gamma", k)
        k = re.sub(r"LayerNorm\.bias$", "LayerNorm.beta", k)
        tensors[k] = v
    assert sum(k.endswith(".gamma") for k in tensors) >= 10
    write_variant(d, tmp_path, tensors)
    assert_matches_hf(load(class_name, tmp_path), hf, make_inputs(class_name))


@pytest.mark.parametrize(
    "class_name, key",
    [
        ("MobileBertForSequenceClassification", "mobilebert.embeddings.position_ids"),
        ("MobileBertModel", "embeddings.position_ids"),
    ],
)
def test_stray_position_ids_ignored(ckpt, tmp_path, class_name, key):
    hf, d = ckpt(class_name)
    tensors = read_tensors(d)
    tensors[key] = np.arange(TINY["max_position_embeddings"], dtype=np.int64)[None, :]
    write_variant(d, tmp_path, tensors)
    assert_matches_hf(load(class_name, tmp_path), hf, make_inputs(class_name))


@pytest.mark.parametrize("class_name", ["MobileBertForMaskedLM", "MobileBertForPreTraining"])
def test_tied_decoder_copies_present_or_absent(ckpt, tmp_path, class_name):
    hf, d = ckpt(class_name)
    tensors = read_tensors(d)
    assert "cls.predictions.decoder.weight" not in tensors  # HF's safetensors drop tied copies
    inputs = make_inputs(class_name)
    assert_matches_hf(load(class_name, d), hf, inputs)
    tensors["cls.predictions.decoder.weight"] = tensors["mobilebert.embeddings.word_embeddings.weight"].copy()
    tensors["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"].copy()
    write_variant(d, tmp_path / "both", tensors)
    assert_matches_hf(load(class_name, tmp_path / "both"), hf, inputs)
    # only the decoder copy of the bias (old .bin layout converted): it stands in for cls.predictions.bias
    only_decoder_bias = dict(tensors)
    del only_decoder_bias["cls.predictions.bias"]
    write_variant(d, tmp_path / "decoder_bias_only", only_decoder_bias)
    assert_matches_hf(load(class_name, tmp_path / "decoder_bias_only"), hf, inputs)


def test_unused_embedding_transformation_is_accepted(ckpt):
    overrides = dict(trigram_input=False, embedding_size=64)
    hf, d = ckpt("MobileBertForSequenceClassification", **overrides)
    tensors = read_tensors(d)
    assert "mobilebert.embeddings.embedding_transformation.weight" in tensors  # HF creates and saves it
    # with perturbed weights, applying it would change the outputs
    assert_matches_hf(
        load("MobileBertForSequenceClassification", d), hf, make_inputs("MobileBertForSequenceClassification")
    )


@pytest.mark.parametrize("class_name", ["MobileBertForSequenceClassification", "MobileBertModel"])
def test_tiny_layout_with_and_without_bottleneck_attention(ckpt, tmp_path, class_name):
    hf, d = ckpt(class_name, use_bottleneck_attention=True)
    tensors = read_tensors(d)
    inputs = make_inputs(class_name)
    assert any(".bottleneck.attention." in k for k in tensors)  # HF creates them (kq-shared default True)
    assert_matches_hf(load(class_name, d), hf, inputs)
    stripped = {k: v for k, v in tensors.items() if ".bottleneck.attention." not in k}
    assert len(stripped) == len(tensors) - 4 * TINY["num_hidden_layers"]
    write_variant(d, tmp_path, stripped)
    assert_matches_hf(load(class_name, tmp_path), hf, inputs)


# ------------------------------------------------------------------------------------------------ sharding


def test_hf_sharded_checkpoint(ckpt, tmp_path):
    hf, _ = ckpt("MobileBertForSequenceClassification")
    hf.save_pretrained(tmp_path, max_shard_size="100KB")
    files = sorted(os.listdir(tmp_path))
    assert "model.safetensors.index.json" in files and "model.safetensors" not in files
    assert len([f for f in files if f.endswith(".safetensors")]) >= 2
    assert_matches_hf(
        load("MobileBertForSequenceClassification", tmp_path), hf, make_inputs("MobileBertForSequenceClassification")
    )


def _write_sharded(
    src_dir, dst_dir, tensors, names=("weights-a.safetensors", "weights-b.safetensors", "weights-c.safetensors")
):
    os.makedirs(dst_dir, exist_ok=True)
    shutil.copy(os.path.join(src_dir, "config.json"), dst_dir)
    keys = sorted(tensors)
    weight_map = {}
    for i, name in enumerate(names):
        part = {k: tensors[k] for k in keys[i :: len(names)]}
        safetensors_numpy.save_file(part, os.path.join(dst_dir, name), metadata={"format": "pt"})
        weight_map.update({k: name for k in part})
    total = int(sum(v.nbytes for v in tensors.values()))
    with open(os.path.join(dst_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return dst_dir


def test_hand_written_sharded_index(ckpt, tmp_path):
    hf, d = ckpt("MobileBertForMaskedLM")
    _write_sharded(d, tmp_path, read_tensors(d))
    assert_matches_hf(load("MobileBertForMaskedLM", tmp_path), hf, make_inputs("MobileBertForMaskedLM"))


def test_sharded_corrupt_shard_names_the_file(ckpt, tmp_path):
    _, d = ckpt("MobileBertForSequenceClassification")
    _write_sharded(d, tmp_path, read_tensors(d))
    path = tmp_path / "weights-b.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(mbl.CheckpointError, match=re.escape("weights-b.safetensors")) as ei:
        load("MobileBertForSequenceClassification", tmp_path)
    check_message(ei, "safetensors")


# ------------------------------------------------------------------------------------ reduced precision


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("class_name", ["MobileBertForSequenceClassification", "MobileBertForMaskedLM"])
def test_reduced_precision_checkpoint_is_upcast(ckpt, tmp_path, dtype_name, class_name):
    hf, d = ckpt(class_name)
    dtype = getattr(torch, dtype_name)
    state = safetensors_torch.load_file(os.path.join(d, "model.safetensors"))
    low = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
    os.makedirs(tmp_path / "low", exist_ok=True)
    shutil.copy(os.path.join(d, "config.json"), tmp_path / "low")
    safetensors_torch.save_file(low, str(tmp_path / "low" / "model.safetensors"), metadata={"format": "pt"})
    with open(tmp_path / "low" / "model.safetensors", "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {
        "F16" if dtype_name == "float16" else "BF16"
    }
    # the HF reference runs float32 on the same rounded weights
    ref = copy.deepcopy(hf)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(p.to(dtype).float())
    ours = load(class_name, tmp_path / "low")
    assert_matches_hf(ours, ref, make_inputs(class_name))


# ------------------------------------------------------------------------------------------- memory mapping


def _is_memory_mapped(arr):
    import mmap

    base = arr
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None)
    return False


def test_safetensors_reader_maps_instead_of_copying(ckpt):
    from mobilebert_lite import safetensors_io, weights

    _, d = ckpt("MobileBertForSequenceClassification")
    path = os.path.join(d, "model.safetensors")
    for tensors in (safetensors_io.load_safetensors(path), weights.read_raw_weights(d)):
        assert len(tensors) == len(read_tensors(d))
        for key, arr in tensors.items():
            assert arr.dtype == np.float32
            assert not arr.flags.owndata, key
            assert _is_memory_mapped(arr), key
    # values are the file's values
    expected = read_tensors(d)
    got = safetensors_io.load_safetensors(path)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


def test_sharded_reader_maps_instead_of_copying(ckpt, tmp_path):
    from mobilebert_lite import weights

    _, d = ckpt("MobileBertForSequenceClassification")
    _write_sharded(d, tmp_path, read_tensors(d))
    tensors = weights.read_raw_weights(tmp_path)
    assert set(tensors) == set(read_tensors(d))
    assert all(_is_memory_mapped(a) and not a.flags.owndata for a in tensors.values())


# ------------------------------------------------------------------------------------------------- errors

QUERY = "encoder.layer.0.attention.self.query.weight"
VALUE1 = "encoder.layer.1.attention.self.value.weight"


@pytest.mark.parametrize(
    "key, shape",
    [
        (QUERY, (32, 32)),
        ("encoder.layer.1.ffn.0.intermediate.dense.weight", (48, 32)),
        ("embeddings.token_type_embeddings.weight", (2, 64)),
        ("embeddings.embedding_transformation.weight", (64, 48)),
        ("classifier.weight", (2, 64)),
    ],
)
def test_missing_tensor(ckpt, tmp_path, key, shape):
    _, d = ckpt("MobileBertForSequenceClassification")
    tensors = read_tensors(d)
    full = key if key.startswith("classifier.") else "mobilebert." + key
    assert tensors.pop(full).shape == shape
    write_variant(d, tmp_path, tensors)
    with pytest.raises(mbl.CheckpointError, match=re.escape(key)) as ei:
        load("MobileBertForSequenceClassification", tmp_path)
    check_message(ei, "missing", f"({shape[0]}, {shape[1]})")


@pytest.mark.parametrize(
    "key, expected, given",
    [
        (QUERY, (32, 32), (32, 31)),
        (VALUE1, (32, 64), (64, 32)),  # transposed
        ("embeddings.word_embeddings.weight", (99, 16), (98, 16)),
        ("classifier.weight", (2, 64), (3, 64)),
    ],
)
def test_misshaped_tensor(ckpt, tmp_path, key, expected, given):
    _, d = ckpt("MobileBertForSequenceClassification")
    tensors = read_tensors(d)
    full = key if key.startswith("classifier.") else "mobilebert." + key
    assert tensors[full].shape == expected
    tensors[full] = np.full(given, 0.5, np.float32)
    write_variant(d, tmp_path, tensors)
    with pytest.raises(mbl.CheckpointError, match=re.escape(key)) as ei:
        load("MobileBertForSequenceClassification", tmp_path)
    check_message(ei, f"({expected[0]}, {expected[1]})", f"({given[0]}, {given[1]})")


@pytest.mark.parametrize(
    "key",
    ["foo.bar", "mobilebert.encoder.layer.7.attention.self.query.weight", "mobilebert.embeddings.unknown_table.weight"],
)
def test_unexpected_tensor(ckpt, tmp_path, key):
    _, d = ckpt("MobileBertForSequenceClassification")
    tensors = read_tensors(d)
    tensors[key] = np.zeros((3, 2), np.float32)
    write_variant(d, tmp_path, tensors)
    with pytest.raises(mbl.CheckpointError, match=re.escape(key.removeprefix("mobilebert."))) as ei:
        load("MobileBertForSequenceClassification", tmp_path)
    check_message(ei, "unexpected")


def test_unexpected_tensor_in_base_checkpoint(ckpt, tmp_path):
    _, d = ckpt("MobileBertModel")
    tensors = read_tensors(d)
    tensors["foo.bar"] = np.zeros((4,), np.float32)
    write_variant(d, tmp_path, tensors)
    with pytest.raises(mbl.CheckpointError, match=re.escape("foo.bar")) as ei:
        load("MobileBertModel", tmp_path)
    check_message(ei, "unexpected")


def _truncated(data):
    return data[: int(len(data) * 0.6)]


def _header_not_json(data):
    (n,) = struct.unpack("<Q", data[:8])
    return data[:8] + b"\xff" * n + data[8 + n :]


CORRUPTIONS = {
    "garbage": lambda data: b"this is not a safetensors file at all " * 20,
    "truncated": _truncated,
    "empty": lambda data: b"",
    "short": lambda data: data[:5],
    "huge_header_length": lambda data: struct.pack("<Q", 10**12) + data[8:],
    "header_not_json": _header_not_json,
    "last_tensor_cut": lambda data: data[:-4],
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupt_safetensors(ckpt, tmp_path, kind):
    _, d = ckpt("MobileBertForSequenceClassification")
    shutil.copy(os.path.join(d, "config.json"), tmp_path)
    with open(os.path.join(d, "model.safetensors"), "rb") as f:
        data = f.read()
    (tmp_path / "model.safetensors").write_bytes(CORRUPTIONS[kind](data))
    with pytest.raises(mbl.CheckpointError, match=re.escape("model.safetensors")) as ei:
        load("MobileBertForSequenceClassification", tmp_path)
    check_message(ei, "safetensors")


def test_directory_without_weights(ckpt, tmp_path):
    _, d = ckpt("MobileBertForSequenceClassification")
    shutil.copy(os.path.join(d, "config.json"), tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        load("MobileBertForSequenceClassification", str(tmp_path))


def test_directory_without_config(ckpt, tmp_path):
    _, d = ckpt("MobileBertForSequenceClassification")
    shutil.copy(os.path.join(d, "model.safetensors"), tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape("config.json")):
        load("MobileBertForSequenceClassification", str(tmp_path))


def test_nonexistent_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        load("MobileBertForSequenceClassification", str(tmp_path / "does-not-exist"))


@pytest.mark.parametrize(
    "class_name",
    [
        "MobileBertForSequenceClassification",
        "MobileBertModel",
        "MobileBertForMultipleChoice",
        "MobileBertForNextSentencePrediction",
    ],
)
def test_classifier_activation_without_pooler_weights(ckpt, tmp_path, class_name):
    _, d = ckpt(class_name)
    tensors = {k: v for k, v in read_tensors(d).items() if "pooler." not in k}
    write_variant(d, tmp_path, tensors)
    with pytest.raises(mbl.CheckpointError, match=re.escape("pooler.dense.weight")):
        load(class_name, tmp_path)


def test_pooler_weights_not_required_when_classifier_activation_false(ckpt, tmp_path):
    hf, d = ckpt("MobileBertForSequenceClassification", classifier_activation=False)
    assert not any("pooler." in k for k in read_tensors(d))
    assert_matches_hf(
        load("MobileBertForSequenceClassification", d), hf, make_inputs("MobileBertForSequenceClassification")
    )


def test_checkpoint_error_is_value_error():
    assert issubclass(mbl.CheckpointError, ValueError)
