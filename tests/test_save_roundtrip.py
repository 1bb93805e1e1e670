"""Checkpoint round trips between Hugging Face transformers and mobilebert_lite.

(a) HF save_pretrained -> ours from_pretrained: outputs match HF (every class),
(b) ours save_pretrained -> HF from_pretrained: no missing/unexpected/mismatched keys, the weights HF loads are
    the original ones bit for bit, and HF's outputs equal ours within the parity tolerance,
(c) ours save -> ours load: bitwise-identical outputs (same backend),
(d) the config.json we write loads with transformers.MobileBertConfig and every field matches the original.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import assert_outputs_identical, assert_outputs_match, run_hf
from hf_checkpoints import CLASS_NAMES
from test_parity_hf import ALL_FLAGS, CONFIGS, config_kwargs, load_ours, make_inputs

# Configurations that change which tensors a checkpoint holds: pooler present/absent, no bottleneck.attention
# weights (TINY layout without shared Q/K), a zero-row cls.predictions.dense.weight (embedding == hidden), a
# no-bottleneck layer_norm model.
SAVE_CONFIGS = {
    name: CONFIGS[name]
    for name in ("default", "no_classifier_activation", "tiny_layout_no_shared_kq", "no_trigram_same_width",
                 "bert_like")
}

# Label metadata that must survive config.json (sequence / token classification).
LABEL_FIELDS = {
    "MobileBertForSequenceClassification": {
        "id2label": {0: "negative", 1: "neutral", 2: "positive"},
        "label2id": {"negative": 0, "neutral": 1, "positive": 2},
        "problem_type": "single_label_classification",
    },
    "MobileBertForTokenClassification": {
        "id2label": {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"},
        "label2id": {"O": 0, "B-PER": 1, "I-PER": 2, "B-LOC": 3, "I-LOC": 4},
    },
}


def save_config_kwargs(config_name, class_name):
    kw = config_kwargs("default", class_name, **SAVE_CONFIGS[config_name])
    kw.update(LABEL_FIELDS.get(class_name, {}))
    return kw


def _hf_class(class_name):
    import transformers

    return getattr(transformers, class_name)


def _ours_saved(hf_checkpoint, class_name, config_name, backend, make_tmp_dir):
    cfg = save_config_kwargs(config_name, class_name)
    ck = hf_checkpoint(class_name, cfg)
    ours = load_ours(class_name, ck.path, backend)
    out_dir = make_tmp_dir("ours_saved")
    ours.save_pretrained(out_dir)
    return cfg, ck, ours, out_dir


# ----------------------------------------------------------------------------------------------------------- (a)


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_hf_save_ours_load(hf_checkpoint, class_name, backend, rtol):
    cfg = save_config_kwargs("default", class_name)
    ck = hf_checkpoint(class_name, cfg)
    assert os.path.isfile(os.path.join(ck.path, "model.safetensors"))
    ours = load_ours(class_name, ck.path, backend)
    inputs = make_inputs(class_name, cfg, seed=31)
    assert_outputs_match(ours(**inputs, **ALL_FLAGS), run_hf(ck.model, inputs, **ALL_FLAGS), rtol)


# ----------------------------------------------------------------------------------------------------------- (b)


@pytest.mark.parametrize("class_name", CLASS_NAMES)
@pytest.mark.parametrize("config_name", list(SAVE_CONFIGS))
def test_ours_save_hf_load(hf_checkpoint, make_tmp_dir, config_name, class_name, backend, rtol):
    cfg, ck, ours, out_dir = _ours_saved(hf_checkpoint, class_name, config_name, backend, make_tmp_dir)
    assert os.path.isfile(os.path.join(out_dir, "config.json")), os.listdir(out_dir)
    assert os.path.isfile(os.path.join(out_dir, "model.safetensors")), os.listdir(out_dir)

    hf_loaded, info = _hf_class(class_name).from_pretrained(out_dir, attn_implementation="eager",
                                                            output_loading_info=True)
    hf_loaded.eval()
    for key in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info[key], f"HF loading our checkpoint reports {key}: {sorted(map(str, info[key]))}"

    inputs = make_inputs(class_name, cfg, seed=32)
    hf_out = run_hf(hf_loaded, inputs, **ALL_FLAGS)
    assert_outputs_match(ours(**inputs, **ALL_FLAGS), hf_out, rtol)
    # and HF on our checkpoint == HF on the original checkpoint, bit for bit
    _assert_hf_outputs_equal(hf_out, run_hf(ck.model, inputs, **ALL_FLAGS))


def _assert_hf_outputs_equal(a, b):
    assert list(a.keys()) == list(b.keys())
    for k in a.keys():
        x = a[k] if isinstance(a[k], tuple) else (a[k],)
        y = b[k] if isinstance(b[k], tuple) else (b[k],)
        assert len(x) == len(y)
        for i, (u, v) in enumerate(zip(x, y)):
            assert np.array_equal(u.numpy(), v.numpy()), f"HF output {k}[{i}] differs between the checkpoints"


@pytest.mark.parametrize("class_name", CLASS_NAMES)
@pytest.mark.parametrize("config_name", list(SAVE_CONFIGS))
def test_ours_save_keeps_weights_bitwise(hf_checkpoint, make_tmp_dir, config_name, class_name, backend):
    """Saving a loaded model writes the checkpoint's weights unchanged: HF's state dict after loading our
    file is bit-identical to the original HF model's."""
    _, ck, _, out_dir = _ours_saved(hf_checkpoint, class_name, config_name, backend, make_tmp_dir)
    hf_loaded = _hf_class(class_name).from_pretrained(out_dir, attn_implementation="eager")
    ref = ck.model.state_dict()
    got = hf_loaded.state_dict()
    assert sorted(got.keys()) == sorted(ref.keys())
    for k in ref:
        assert got[k].dtype == ref[k].dtype, f"{k}: dtype {got[k].dtype} != {ref[k].dtype}"
        assert got[k].shape == ref[k].shape, f"{k}: shape {tuple(got[k].shape)} != {tuple(ref[k].shape)}"
        if not np.array_equal(got[k].numpy(), ref[k].numpy()):
            d = float(np.max(np.abs(got[k].numpy().astype(np.float64) - ref[k].numpy())))
            raise AssertionError(f"{k}: saved weights differ from the original (max abs difference {d:.3e})")


def test_hf_loading_report_is_strict(hf_checkpoint, make_tmp_dir, tmp_path):
    """Guard for (b): HF's loading info does report a missing tensor (so an empty report means something)."""
    from safetensors.numpy import load_file, save_file

    class_name = "MobileBertForSequenceClassification"
    ck = hf_checkpoint(class_name, save_config_kwargs("default", class_name))
    d = make_tmp_dir("broken")
    tensors = load_file(os.path.join(ck.path, "model.safetensors"))
    del tensors["classifier.weight"]
    tensors["bogus.weight"] = np.zeros(3, np.float32)
    save_file(tensors, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(ck.path, "config.json")) as f:
        cfg = f.read()
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(cfg)
    _, info = _hf_class(class_name).from_pretrained(d, output_loading_info=True)
    assert "classifier.weight" in info["missing_keys"]
    assert "bogus.weight" in info["unexpected_keys"]


# ----------------------------------------------------------------------------------------------------------- (c)


@pytest.mark.parametrize("class_name", CLASS_NAMES)
@pytest.mark.parametrize("config_name", list(SAVE_CONFIGS))
def test_ours_save_ours_load_bitwise(hf_checkpoint, make_tmp_dir, config_name, class_name, backend):
    cfg, _, ours, out_dir = _ours_saved(hf_checkpoint, class_name, config_name, backend, make_tmp_dir)
    reloaded = load_ours(class_name, out_dir, backend)
    inputs = make_inputs(class_name, cfg, seed=33)
    a = ours(**inputs, **ALL_FLAGS)
    b = reloaded(**inputs, **ALL_FLAGS)
    assert "hidden_states" in a.keys()
    assert_outputs_identical(a, b)
    # a second save of the reloaded model writes the same tensors
    out2 = make_tmp_dir("ours_saved_again")
    reloaded.save_pretrained(out2)
    from safetensors.numpy import load_file

    t1 = load_file(os.path.join(out_dir, "model.safetensors"))
    t2 = load_file(os.path.join(out2, "model.safetensors"))
    assert sorted(t1) == sorted(t2)
    for k in t1:
        assert t1[k].dtype == t2[k].dtype and np.array_equal(t1[k], t2[k]), k


# ----------------------------------------------------------------------------------------------------------- (d)

# Written by whichever library saved the file; not a property of the model.
CONFIG_FIELDS_NOT_COMPARED = {"transformers_version"}


@pytest.mark.parametrize("class_name", CLASS_NAMES)
@pytest.mark.parametrize("config_name", list(SAVE_CONFIGS))
def test_saved_config_json_loads_in_hf(hf_checkpoint, make_tmp_dir, config_name, class_name, backend):
    import transformers

    _, ck, _, out_dir = _ours_saved(hf_checkpoint, class_name, config_name, backend, make_tmp_dir)
    with open(os.path.join(out_dir, "config.json")) as f:
        raw = json.load(f)
    assert raw.get("model_type") == "mobilebert"
    assert raw.get("architectures") == [class_name]

    ours_cfg = transformers.MobileBertConfig.from_pretrained(out_dir)
    hf_cfg = transformers.MobileBertConfig.from_pretrained(ck.path)
    a = ours_cfg.to_dict()
    b = hf_cfg.to_dict()
    for d in (a, b):
        d.pop("_name_or_path", None)
    keys = (set(a) | set(b)) - CONFIG_FIELDS_NOT_COMPARED
    diffs = {k: (a.get(k, "<missing>"), b.get(k, "<missing>")) for k in sorted(keys) if a.get(k) != b.get(k)}
    assert not diffs, f"config fields differ (ours, HF): {diffs}"
    # the fields that define the model, explicitly
    for k, v in save_config_kwargs(config_name, class_name).items():
        if k in ("id2label",):
            assert {int(i): n for i, n in ours_cfg.id2label.items()} == v
        else:
            assert getattr(ours_cfg, k) == v, f"{k}: {getattr(ours_cfg, k)!r} != {v!r}"
    assert ours_cfg.true_hidden_size == hf_cfg.true_hidden_size


@pytest.mark.parametrize("class_name", ["MobileBertModel", "MobileBertForSequenceClassification"])
def test_our_config_round_trips_through_hf(hf_checkpoint, make_tmp_dir, class_name, backend):
    """HF's MobileBertConfig.save_pretrained of our config.json reads back into ours unchanged."""
    import transformers

    import mobilebert_lite as mbl

    _, _, ours, out_dir = _ours_saved(hf_checkpoint, class_name, "default", backend, make_tmp_dir)
    hf_dir = make_tmp_dir("hf_resaved_config")
    transformers.MobileBertConfig.from_pretrained(out_dir).save_pretrained(hf_dir)
    back = mbl.MobileBertConfig.from_pretrained(hf_dir)
    mine = mbl.MobileBertConfig.from_pretrained(out_dir)
    for field in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                  "hidden_act", "embedding_size", "trigram_input", "use_bottleneck", "intra_bottleneck_size",
                  "use_bottleneck_attention", "key_query_shared_bottleneck", "num_feedforward_networks",
                  "normalization_type", "classifier_activation", "layer_norm_eps", "num_labels", "id2label",
                  "label2id", "problem_type", "max_position_embeddings", "type_vocab_size", "pad_token_id"):
        assert getattr(back, field) == getattr(mine, field), field
