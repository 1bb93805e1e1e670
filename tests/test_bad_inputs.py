"""Malformed inputs at call time: every public model class rejects them with a clear, specific error."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hf_checkpoints import CLASS_NAMES
from tiny_hf import TINY, make_tiny_hf_model

import mobilebert_lite as mbl

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

V, E, P, TV = TINY["vocab_size"], TINY["embedding_size"], TINY["max_position_embeddings"], TINY["type_vocab_size"]
B, L, C = 2, 7, 3

CLASSES = list(CLASS_NAMES)
MC = "MobileBertForMultipleChoice"


def make_hf_model(class_name, seed=0):
    return make_tiny_hf_model(class_name, seed)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = {}
    for class_name in CLASSES:
        d = tmp_path_factory.mktemp(class_name)
        make_hf_model(class_name).save_pretrained(d)
        out[class_name] = getattr(mbl, class_name).from_pretrained(str(d), backend="reference")
    return out


def lead_shape(class_name):
    """The leading (batch) dims of a token tensor for this class."""
    return (B, C) if class_name == MC else (B,)


def good_inputs(class_name, seed=0):
    rng = np.random.default_rng(seed)
    shape = lead_shape(class_name) + (L,)
    ids = rng.integers(0, V, size=shape).astype(np.int64)
    mask = np.ones(shape, np.int64)
    mask[1, ..., L - 2 :] = 0
    types = np.zeros(shape, np.int64)
    types[..., L // 2 :] = 1
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


def expect(exc_type, fragments, fn, **kwargs):
    """fn(**kwargs) raises exc_type whose message contains every fragment (case-insensitive)."""
    with pytest.raises(exc_type, match=re.compile(re.escape(fragments[0]), re.I)) as ei:
        fn(**kwargs)
    msg = str(ei.value).lower()
    for fragment in fragments[1:]:
        assert fragment.lower() in msg, f"{fragment!r} not in error message: {ei.value}"
    return ei


def output_arrays(out):
    return [np.asarray(v) for v in out.to_tuple() if not isinstance(v, tuple)]


# ----------------------------------------------------------------------------------------------- sanity


@pytest.mark.parametrize("class_name", CLASSES)
def test_good_inputs_run(models, class_name):
    out = models[class_name](**good_inputs(class_name))
    arrays = output_arrays(out)
    assert arrays and all(a.dtype == np.float32 and np.isfinite(a).all() for a in arrays)


# ------------------------------------------------------------------------------------------ input_ids


@pytest.mark.parametrize("class_name", CLASSES)
def test_input_ids_wrong_rank(models, class_name):
    model = models[class_name]
    want = "3-D" if class_name == MC else "2-D"
    ids = good_inputs(class_name)["input_ids"]
    for bad in (ids.reshape(-1), ids[..., None], np.int64(3)):
        expect(ValueError, ["input_ids", want], model, input_ids=bad)
    if class_name != MC:
        expect(ValueError, ["input_ids", want], model, input_ids=ids[:, None, :].repeat(2, axis=1))
    else:
        expect(ValueError, ["input_ids", want], model, input_ids=ids[:, 0, :])


@pytest.mark.parametrize("class_name", CLASSES)
def test_float_input_ids(models, class_name):
    model = models[class_name]
    ids = good_inputs(class_name)["input_ids"]
    for bad in (ids.astype(np.float32), ids.astype(np.float64), ids.astype(np.float64).tolist()):
        expect(TypeError, ["input_ids", "integer"], model, input_ids=bad)


@pytest.mark.parametrize("class_name", CLASSES)
@pytest.mark.parametrize("bad_id", [V, V + 1000, -1])
def test_input_ids_out_of_range(models, class_name, bad_id):
    inputs = good_inputs(class_name)
    inputs["input_ids"][0, ..., 3] = bad_id
    expect(ValueError, ["input_ids", "out of range", "vocab_size"], models[class_name], **inputs)


@pytest.mark.parametrize("class_name", CLASSES)
@pytest.mark.parametrize("bad_type", [TV, -1])
def test_token_type_ids_out_of_range(models, class_name, bad_type):
    inputs = good_inputs(class_name)
    inputs["token_type_ids"][-1, ..., 0] = bad_type
    expect(ValueError, ["token_type_ids", "out of range", "type_vocab_size"], models[class_name], **inputs)


@pytest.mark.parametrize("class_name", CLASSES)
def test_sequence_longer_than_max_position_embeddings(models, class_name):
    shape = lead_shape(class_name) + (P + 1,)
    ids = np.ones(shape, np.int64)
    expect(ValueError, ["max_position_embeddings"], models[class_name], input_ids=ids)
    # exactly max_position_embeddings is fine
    out = models[class_name](input_ids=np.ones(lead_shape(class_name) + (P,), np.int64))
    assert all(np.isfinite(a).all() for a in output_arrays(out))


@pytest.mark.parametrize("class_name", CLASSES)
@pytest.mark.parametrize("arg", ["attention_mask", "token_type_ids", "position_ids"])
def test_companion_shape_mismatch(models, class_name, arg):
    inputs = good_inputs(class_name)
    ids_shape = inputs["input_ids"].shape
    for bad_shape in (ids_shape[:-1] + (L + 1,), ids_shape[:-1] + (L - 1,), (B + 1,) + ids_shape[1:]):
        bad = dict(inputs)
        bad[arg] = np.zeros(bad_shape, np.int64)
        expect(ValueError, [arg, "shape"], models[class_name], **bad)


@pytest.mark.parametrize("class_name", CLASSES)
def test_both_or_neither_of_input_ids_and_inputs_embeds(models, class_name):
    model = models[class_name]
    inputs = good_inputs(class_name)
    embeds = np.zeros(inputs["input_ids"].shape + (E,), np.float32)
    frag = ["exactly one of input_ids and inputs_embeds"]
    expect(ValueError, frag, model, input_ids=inputs["input_ids"], inputs_embeds=embeds)
    expect(ValueError, frag, model)
    expect(ValueError, frag, model, attention_mask=inputs["attention_mask"])


@pytest.mark.parametrize("class_name", CLASSES)
@pytest.mark.parametrize("width", [E + 1, E - 1, TINY["hidden_size"]])
def test_inputs_embeds_wrong_width(models, class_name, width):
    shape = lead_shape(class_name) + (L, width)
    embeds = np.zeros(shape, np.float32)
    expect(ValueError, ["inputs_embeds", "embedding_size"], models[class_name], inputs_embeds=embeds)


@pytest.mark.parametrize("class_name", CLASSES)
def test_inputs_embeds_accepted(models, class_name):
    rng = np.random.default_rng(1)
    embeds = (0.05 * rng.standard_normal(lead_shape(class_name) + (L, E))).astype(np.float32)
    out = models[class_name](inputs_embeds=embeds)
    assert all(np.isfinite(a).all() for a in output_arrays(out))


@pytest.mark.parametrize("class_name", CLASSES)
@pytest.mark.parametrize("bad_pos", [P, P + 7, -1])
def test_position_ids_out_of_range(models, class_name, bad_pos):
    inputs = good_inputs(class_name)
    pos = np.broadcast_to(np.arange(L, dtype=np.int64), inputs["input_ids"].shape).copy()
    pos[0, ..., 2] = bad_pos
    expect(ValueError, ["position_ids", "out of range"], models[class_name], position_ids=pos, **inputs)


LABEL_CASES = {
    # class -> (keyword arguments with a wrongly shaped `labels`)
    "MobileBertForSequenceClassification": dict(labels=np.zeros((B + 1,), np.int64)),
    "MobileBertForMultipleChoice": dict(labels=np.zeros((B + 1,), np.int64)),
    "MobileBertForNextSentencePrediction": dict(labels=np.zeros((B + 1,), np.int64)),
    "MobileBertForTokenClassification": dict(labels=np.zeros((B, L + 1), np.int64)),
    "MobileBertForMaskedLM": dict(labels=np.zeros((B, L + 1), np.int64)),
    "MobileBertForPreTraining": dict(
        labels=np.zeros((B, L + 1), np.int64), next_sentence_label=np.zeros((B,), np.int64)
    ),
}


@pytest.mark.parametrize("class_name", list(LABEL_CASES))
def test_labels_wrong_shape(models, class_name):
    expect(ValueError, ["labels", "shape"], models[class_name], **good_inputs(class_name), **LABEL_CASES[class_name])


@pytest.mark.parametrize("class_name", CLASSES)
def test_unknown_keyword(models, class_name):
    expect(TypeError, ["not_a_real_argument"], models[class_name], **good_inputs(class_name), not_a_real_argument=1)
    expect(TypeError, ["input_idz"], models[class_name], input_idz=good_inputs(class_name)["input_ids"])


@pytest.mark.parametrize("class_name", CLASSES)
def test_nested_lists_equal_arrays(models, class_name):
    model = models[class_name]
    inputs = good_inputs(class_name)
    ref = model(**inputs)
    for variant in (
        {k: v.tolist() for k, v in inputs.items()},
        {k: v.astype(np.int32) for k, v in inputs.items()},
        {
            "input_ids": inputs["input_ids"].tolist(),
            "attention_mask": inputs["attention_mask"],
            "token_type_ids": inputs["token_type_ids"].tolist(),
        },
    ):
        out = model(**variant)
        assert list(out.keys()) == list(ref.keys())
        for a, b in zip(output_arrays(out), output_arrays(ref)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("class_name", CLASSES)
def test_empty_batch_or_sequence(models, class_name):
    model = models[class_name]
    lead = lead_shape(class_name)
    empties = [(0,) + lead[1:] + (L,), lead + (0,)]
    if class_name == MC:
        empties.append((B, 0, L))
    for shape in empties:
        with pytest.raises(ValueError):
            model(input_ids=np.zeros(shape, np.int64))


@pytest.mark.parametrize("class_name", [c for c in CLASSES if c != MC])
def test_position_ids_with_batch_dim_one_broadcast_like_hf(models, class_name):
    # HF accepts position_ids [1, L] for any batch size (spec section 2.1)
    model = models[class_name]
    inputs = good_inputs(class_name)
    pos = np.array([[3, 1, 4, 1, 5, 9, 2]], np.int64)
    assert pos.shape == (1, L)
    a = model(**inputs, position_ids=pos)
    b = model(**inputs, position_ids=np.repeat(pos, B, axis=0))
    for x, y in zip(output_arrays(a), output_arrays(b)):
        np.testing.assert_array_equal(x, y)
