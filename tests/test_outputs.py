"""Output objects behave like transformers' ModelOutput; return_dict=False gives the matching tuple."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from hf_checkpoints import CLASS_NAMES
from tiny_hf import TINY, make_tiny_hf_model

import mobilebert_lite as mbl

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOL = 1e-5  # reference engine vs HF, relative to max(1, max|hf|)

B, L, C = 2, 7, 3
NUM_LABELS = 3

CLASSES = list(CLASS_NAMES)
MC = "MobileBertForMultipleChoice"


def make_hf_model(class_name, seed=0, **overrides):
    if class_name in ("MobileBertForSequenceClassification", "MobileBertForTokenClassification"):
        overrides.setdefault("num_labels", NUM_LABELS)
    return make_tiny_hf_model(class_name, seed, eager=True, **overrides)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """class name -> (hf model, our model) built from the same checkpoint."""
    out = {}
    for class_name in CLASSES:
        hf = make_hf_model(class_name)
        d = tmp_path_factory.mktemp(class_name)
        hf.save_pretrained(d)
        out[class_name] = (hf, getattr(mbl, class_name).from_pretrained(str(d), backend="reference"))
    return out


def make_inputs(class_name, seed=0):
    rng = np.random.default_rng(seed)
    shape = ((B, C) if class_name == MC else (B,)) + (L,)
    ids = rng.integers(1, TINY["vocab_size"], size=shape).astype(np.int64)
    mask = np.ones(shape, np.int64)
    mask[1, ..., L - 2 :] = 0
    types = np.zeros(shape, np.int64)
    types[..., L // 2 :] = 1
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


def make_labels(class_name, seed=0):
    rng = np.random.default_rng(seed + 7)
    if class_name == "MobileBertModel":
        return {}
    if class_name == "MobileBertForPreTraining":
        labels = rng.integers(0, TINY["vocab_size"], (B, L))
        labels[:, ::2] = -100
        return dict(labels=labels, next_sentence_label=rng.integers(0, 2, (B,)))
    if class_name == "MobileBertForMaskedLM":
        labels = rng.integers(0, TINY["vocab_size"], (B, L))
        labels[:, 1::2] = -100
        return dict(labels=labels)
    if class_name == "MobileBertForNextSentencePrediction":
        return dict(labels=rng.integers(0, 2, (B,)))
    if class_name == "MobileBertForSequenceClassification":
        return dict(labels=rng.integers(0, NUM_LABELS, (B,)))
    if class_name == MC:
        return dict(labels=rng.integers(0, C, (B,)))
    if class_name == "MobileBertForTokenClassification":
        labels = rng.integers(0, NUM_LABELS, (B, L))
        labels[1, L - 2 :] = -100
        return dict(labels=labels)
    if class_name == "MobileBertForQuestionAnswering":
        return dict(start_positions=rng.integers(0, L, (B,)), end_positions=rng.integers(0, L, (B,)))
    raise AssertionError(class_name)


def run_hf(hf, **kwargs):
    with torch.no_grad():
        return hf(**{k: torch.from_numpy(np.asarray(v)) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()})


def assert_close(got, ref):
    ref = ref.detach().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    got = np.asarray(got)
    assert got.dtype == np.float32
    assert got.shape == ref.shape, (got.shape, ref.shape)
    scale = max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(got.astype(np.float64) - ref).max())
    assert err <= TOL * scale, f"max|ours-hf| = {err:.3g} > {TOL} * {scale:.3g}"


def assert_same_structure_and_values(ours, hf):
    """A ModelOutput (or tuple) of ours equals HF's element by element (nested tuples included)."""
    if isinstance(hf, tuple):
        assert isinstance(ours, tuple) and len(ours) == len(hf)
        for o, h in zip(ours, hf):
            assert_same_structure_and_values(o, h)
    else:
        assert_close(ours, hf)


# --------------------------------------------------------------------------------------- keys vs HF


# MobileBertModel takes no labels, so it appears only without them.
_KEY_CASES = [(c, lab) for c in CLASSES for lab in (False, True) if not (lab and c == "MobileBertModel")]


@pytest.mark.parametrize(
    "class_name, with_labels", _KEY_CASES, ids=[f"{c}-{'labels' if lab else 'nolabels'}" for c, lab in _KEY_CASES]
)
@pytest.mark.parametrize(
    "flags",
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["plain", "hidden", "attn", "hidden+attn"],
)
def test_keys_and_values_match_hf(pairs, class_name, with_labels, flags):
    hf, ours = pairs[class_name]
    hidden, attn = flags
    kwargs = {
        **make_inputs(class_name),
        **(make_labels(class_name) if with_labels else {}),
        "output_hidden_states": hidden,
        "output_attentions": attn,
    }
    ref = run_hf(hf, **kwargs)
    out = ours(**kwargs)
    assert type(out).__name__ == type(ref).__name__
    assert list(out.keys()) == list(ref.keys())
    for key in ref.keys():
        assert_same_structure_and_values(out[key], ref[key])
    if hidden:
        assert len(out.hidden_states) == TINY["num_hidden_layers"] + 1
    else:
        assert out.hidden_states is None and "hidden_states" not in out
    if attn:
        assert len(out.attentions) == TINY["num_hidden_layers"]
        n = B * C if class_name == MC else B
        assert all(a.shape == (n, TINY["num_attention_heads"], L, L) for a in out.attentions)
    else:
        assert out.attentions is None and "attentions" not in out


@pytest.mark.parametrize("class_name", CLASSES)
def test_return_dict_false_is_to_tuple(pairs, class_name):
    hf, ours = pairs[class_name]
    kwargs = {
        **make_inputs(class_name),
        **make_labels(class_name),
        "output_hidden_states": True,
        "output_attentions": True,
    }
    out = ours(**kwargs)
    tup = ours(**kwargs, return_dict=False)
    assert type(tup) is tuple
    expected = out.to_tuple()
    assert len(tup) == len(expected) == len(out.keys())
    for a, b in zip(tup, expected):
        if isinstance(b, tuple):
            assert isinstance(a, tuple) and len(a) == len(b)
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_array_equal(a, b)
    # and equals HF's tuple
    ref = run_hf(hf, **kwargs, return_dict=False)
    assert type(ref) is tuple
    assert_same_structure_and_values(tup, ref)


# -------------------------------------------------------------------------------- ModelOutput behaviour


def test_model_output_access_without_loss(pairs):
    _, ours = pairs["MobileBertForSequenceClassification"]
    out = ours(**make_inputs("MobileBertForSequenceClassification"))
    assert isinstance(out, OrderedDict)  # like HF's ModelOutput
    assert list(out.keys()) == ["logits"]
    assert out.loss is None
    assert "loss" not in out and "logits" in out
    with pytest.raises(KeyError):
        out["loss"]
    logits = out.logits
    assert isinstance(logits, np.ndarray) and logits.dtype == np.float32 and logits.shape == (B, NUM_LABELS)
    assert out["logits"] is logits
    assert out[0] is logits
    assert out[-1] is logits
    assert out.to_tuple() == (logits,)
    assert out[:] == (logits,)
    assert len(out) == 1
    assert list(out) == ["logits"]
    with pytest.raises(IndexError):
        out[1]


def test_model_output_access_with_everything(pairs):
    _, ours = pairs["MobileBertForSequenceClassification"]
    kwargs = make_inputs("MobileBertForSequenceClassification")
    out = ours(
        **kwargs,
        labels=make_labels("MobileBertForSequenceClassification")["labels"],
        output_hidden_states=True,
        output_attentions=True,
    )
    assert list(out.keys()) == ["loss", "logits", "hidden_states", "attentions"]
    assert list(out) == list(out.keys())
    assert len(out) == 4
    loss = out.loss
    assert np.asarray(loss).shape == () and np.asarray(loss).dtype == np.float32
    assert np.isfinite(loss)
    t = out.to_tuple()
    assert len(t) == 4
    assert t[0] is out["loss"] and t[1] is out.logits and t[2] is out.hidden_states and t[3] is out.attentions
    assert out[0] is loss and out[1] is out.logits and out[-1] is out.attentions
    assert out[1:3] == (out.logits, out.hidden_states)
    assert out[::2] == (loss, out.hidden_states)
    assert isinstance(out.hidden_states, tuple) and isinstance(out.attentions, tuple)
    for key in ("loss", "logits", "hidden_states", "attentions"):
        assert key in out
    assert "pooler_output" not in out


def test_base_model_output_fields(pairs):
    _, ours = pairs["MobileBertModel"]
    out = ours(**make_inputs("MobileBertModel"), output_hidden_states=True)
    assert list(out.keys()) == ["last_hidden_state", "pooler_output", "hidden_states"]
    assert out.last_hidden_state.shape == (B, L, TINY["hidden_size"])
    assert out.pooler_output.shape == (B, TINY["hidden_size"])
    assert out[0] is out.last_hidden_state and out[1] is out.pooler_output
    np.testing.assert_array_equal(out.hidden_states[-1], out.last_hidden_state)
    assert out.attentions is None


def test_question_answering_output_order(pairs):
    _, ours = pairs["MobileBertForQuestionAnswering"]
    out = ours(**make_inputs("MobileBertForQuestionAnswering"))
    assert list(out.keys()) == ["start_logits", "end_logits"]
    start, end = out
    assert (start, end) == ("start_logits", "end_logits")  # iteration yields keys, like a dict
    assert out[0] is out.start_logits and out[1] is out.end_logits
    assert out.start_logits.shape == out.end_logits.shape == (B, L)


def test_token_classification_loss_matches_hf(pairs):
    hf, ours = pairs["MobileBertForTokenClassification"]
    kwargs = {**make_inputs("MobileBertForTokenClassification"), **make_labels("MobileBertForTokenClassification")}
    assert_close(ours(**kwargs).loss, run_hf(hf, **kwargs).loss)


# ----------------------------------------------------------------------------- config-driven defaults


@pytest.fixture(scope="module")
def config_flag_models(tmp_path_factory):
    hf = make_hf_model("MobileBertForSequenceClassification", output_hidden_states=True, return_dict=False)
    d = tmp_path_factory.mktemp("flags")
    hf.save_pretrained(d)
    return hf, mbl.MobileBertForSequenceClassification.from_pretrained(str(d), backend="reference")


def test_config_return_dict_false_gives_tuple(config_flag_models):
    hf, ours = config_flag_models
    kwargs = make_inputs("MobileBertForSequenceClassification")
    assert ours.config.return_dict is False and ours.config.output_hidden_states is True
    tup = ours(**kwargs)
    ref = run_hf(hf, **kwargs)
    assert type(tup) is tuple and type(ref) is tuple
    assert len(tup) == len(ref) == 2  # logits, hidden_states
    assert_same_structure_and_values(tup, ref)
    out = ours(**kwargs, return_dict=True, output_hidden_states=False)
    assert list(out.keys()) == ["logits"]
