"""Live parity of every mobilebert_lite MobileBert* class against Hugging Face transformers.

Each case builds a random-weight HF checkpoint (tests/hf_checkpoints.py: every parameter perturbed, [PAD] row
non-zero), loads it with ``mobilebert_lite`` on each available backend, runs both on the same NumPy inputs and
compares every output field HF returns (logits, hidden_states element-wise, attentions, pooler_output, loss)
with the DESIGN.md tolerance: max|ours - hf| <= rtol * max(1, max|hf|), rtol 1e-5 (reference) / 1e-4 (native),
plus argmax agreement wherever HF's top-2 gap exceeds the tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_outputs_match, assert_tuple_outputs_match, fp64_diagnosis, run_hf
from hf_checkpoints import CLASS_NAMES

# --------------------------------------------------------------------------------------------------------------
# configurations

TINY = dict(
    vocab_size=99,
    hidden_size=64,
    embedding_size=32,
    intra_bottleneck_size=32,
    num_attention_heads=4,
    intermediate_size=48,
    num_hidden_layers=2,
    max_position_embeddings=512,
)

# Overrides on top of TINY (everything else = HF MobileBertConfig defaults: no_norm, relu, trigram input,
# bottleneck, key_query_shared_bottleneck, 4 FFNs, classifier_activation=True, layer_norm_eps=1e-12).
CONFIGS = {
    "default": {},
    "no_classifier_activation": {"classifier_activation": False},
    # MobileBERT-TINY layout (key_query_shared_bottleneck stays True as HF reads the TINY json: the
    # bottleneck.attention weights exist but are unused).
    "tiny_layout": {"use_bottleneck_attention": True, "num_feedforward_networks": 2},
    # same without the unused shared Q/K bottleneck weights in the checkpoint
    "tiny_layout_no_shared_kq": {
        "use_bottleneck_attention": True,
        "key_query_shared_bottleneck": False,
        "num_feedforward_networks": 2,
    },
    # layer_norm: embeddings.LayerNorm and output.LayerNorm use eps 1e-5, every other site layer_norm_eps;
    # 1e-3 makes a wrong eps at either kind of site visible.
    "layer_norm_gelu": {"normalization_type": "layer_norm", "hidden_act": "gelu", "layer_norm_eps": 1e-3},
    # the MLM transform LayerNorm is a real LayerNorm with layer_norm_eps even in no_norm models
    "no_norm_large_eps": {"layer_norm_eps": 1e-2},
    "no_trigram_projected": {"trigram_input": False},  # embedding_size 32 != hidden 64: projection applied
    "no_trigram_same_width": {"trigram_input": False, "embedding_size": 64},  # projection present, not applied
    "no_bottleneck": {"use_bottleneck": False},  # true_hidden_size = hidden_size, head size 16
    "one_ffn": {"num_feedforward_networks": 1},
    # head size 8 = 24 / 3 (not 32, not hidden/heads = 20), odd vocab/intermediate/embedding widths
    "odd_sizes": {
        "vocab_size": 101,
        "hidden_size": 60,
        "embedding_size": 20,
        "intra_bottleneck_size": 24,
        "num_attention_heads": 3,
        "intermediate_size": 37,
    },
    # the all-MiniLM-L6-v2 layout of DESIGN.md section 7 (BERT expressed as MobileBERT)
    "bert_like": {
        "use_bottleneck": False,
        "trigram_input": False,
        "embedding_size": 64,
        "normalization_type": "layer_norm",
        "hidden_act": "gelu",
        "num_feedforward_networks": 1,
        "layer_norm_eps": 1e-3,
    },
}

# Head-specific settings (num_labels only matters for these heads).
HEAD_OVERRIDES = {
    "MobileBertForSequenceClassification": {"num_labels": 3},
    "MobileBertForTokenClassification": {"num_labels": 5},
}

# google/mobilebert-uncased: HF defaults (24 layers, vocab 30522, hidden 512, ...) with classifier_activation=False.
FULL_UNCASED = {"classifier_activation": False}

ALL_FLAGS = dict(output_hidden_states=True, output_attentions=True)


def config_kwargs(config_name: str, class_name: str, **extra) -> dict:
    kw = dict(TINY)
    kw.update(CONFIGS[config_name])
    kw.update(HEAD_OVERRIDES.get(class_name, {}))
    kw.update(extra)
    return kw


def activation_names():
    """Every parameter-free activation name in HF's ACT2FN (prelu/xielu carry their own weights)."""
    from transformers.activations import ACT2CLS, ACT2FN

    names = []
    for name in ACT2CLS:
        module = ACT2FN[name]
        if not list(module.parameters()) and not list(module.buffers()):
            names.append(name)
    return sorted(names)


# --------------------------------------------------------------------------------------------------------------
# inputs


def _default_lengths(rows: int, L: int):
    pattern = [L, max(1, L - 3), max(1, L // 3), max(1, L - 1)]
    return [pattern[i % len(pattern)] for i in range(rows)]


def token_batch(rng, vocab_size, rows, L, lengths=None, pair=True):
    """ids / attention_mask / token_type_ids [rows, L]: right padding with [PAD]=0, pairs typed 0 then 1."""
    lengths = _default_lengths(rows, L) if lengths is None else list(lengths)
    assert len(lengths) == rows and all(1 <= n <= L for n in lengths)
    ids = rng.integers(1, vocab_size, size=(rows, L)).astype(np.int64)
    mask = (np.arange(L)[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)
    types = np.zeros((rows, L), dtype=np.int64)
    for r, n in enumerate(lengths):
        ids[r, n:] = 0
        if pair and n >= 2:
            types[r, max(1, n // 2):n] = 1
    if L > 3:
        ids[0, 2] = 0  # a real (unmasked) token with id 0: the mask must come from attention_mask, not the ids
    return ids, mask, types


def make_labels(class_name, cfg, rng, mask, num_choices=None):
    """Labels for the class's head(s) on a [B, L] (or [B, C, L]) batch."""
    B = mask.shape[0]
    L = mask.shape[-1]
    out = {}
    if class_name in ("MobileBertForPreTraining", "MobileBertForMaskedLM"):
        labels = rng.integers(0, cfg["vocab_size"], size=mask.shape).astype(np.int64)
        chosen = (rng.random(mask.shape) < 0.4) & (mask == 1)
        chosen[0, 0] = True
        out["labels"] = np.where(chosen, labels, -100).astype(np.int64)
        if class_name == "MobileBertForPreTraining":
            out["next_sentence_label"] = rng.integers(0, 2, size=B).astype(np.int64)
    elif class_name == "MobileBertForNextSentencePrediction":
        out["labels"] = rng.integers(0, 2, size=B).astype(np.int64)
    elif class_name == "MobileBertForSequenceClassification":
        out["labels"] = rng.integers(0, cfg.get("num_labels", 2), size=B).astype(np.int64)
    elif class_name == "MobileBertForMultipleChoice":
        out["labels"] = rng.integers(0, num_choices, size=B).astype(np.int64)
    elif class_name == "MobileBertForTokenClassification":
        labels = rng.integers(0, cfg.get("num_labels", 2), size=mask.shape).astype(np.int64)
        out["labels"] = np.where(mask == 1, labels, -100).astype(np.int64)
    elif class_name == "MobileBertForQuestionAnswering":
        start = rng.integers(0, L, size=B).astype(np.int64)
        end = rng.integers(0, L, size=B).astype(np.int64)
        if B > 1:
            start[-1] = L + 5  # beyond L: clamped to L and ignored by HF
            end[-1] = L + 2
        out["start_positions"] = start
        out["end_positions"] = end
    return out


def make_inputs(class_name, cfg, *, batch=3, seq_len=9, lengths=None, num_choices=3, seed=0, labels=True,
                pair=True):
    rng = np.random.default_rng(seed)
    if class_name == "MobileBertForMultipleChoice":
        rows = batch * num_choices
        ids, mask, types = token_batch(rng, cfg["vocab_size"], rows, seq_len, lengths, pair)
        shape = (batch, num_choices, seq_len)
        ids, mask, types = ids.reshape(shape), mask.reshape(shape), types.reshape(shape)
    else:
        ids, mask, types = token_batch(rng, cfg["vocab_size"], batch, seq_len, lengths, pair)
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    if labels:
        inputs.update(make_labels(class_name, cfg, rng, mask, num_choices))
    return inputs


def load_ours(class_name, path, backend):
    import mobilebert_lite as mbl

    cls = getattr(mbl, class_name)
    return cls.from_pretrained(path, backend=backend)


def check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol, flags=ALL_FLAGS, expect_loss=None):
    ck = hf_checkpoint(class_name, cfg)
    model = load_ours(class_name, ck.path, backend)
    hf_out = run_hf(ck.model, inputs, return_dict=True, **flags)
    ours = model(**inputs, return_dict=True, **flags)
    if expect_loss is not None:
        assert ("loss" in hf_out) == expect_loss, "test setup: HF loss presence not as intended"
    for flag, field in (("output_hidden_states", "hidden_states"), ("output_attentions", "attentions")):
        if flags.get(flag):
            assert field in hf_out, f"test setup: HF did not return {field}"
    try:
        assert_outputs_match(ours, hf_out, rtol)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{fp64_diagnosis(ck.model, inputs, ours, flags)}") from None
    return ours, hf_out


def _has_labels(class_name):
    return class_name != "MobileBertModel"


# --------------------------------------------------------------------------------------------------------------
# the configuration matrix: every config x every class x every backend


@pytest.mark.parametrize("class_name", CLASS_NAMES)
@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_config_matrix(hf_checkpoint, config_name, class_name, backend, rtol):
    cfg = config_kwargs(config_name, class_name)
    inputs = make_inputs(class_name, cfg, seed=100 + list(CONFIGS).index(config_name))
    check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol, expect_loss=_has_labels(class_name))


ACTIVATION_BASE = {"num_hidden_layers": 1, "num_feedforward_networks": 2}


@pytest.mark.parametrize("class_name", ["MobileBertModel", "MobileBertForMaskedLM"])
@pytest.mark.parametrize("hidden_act", activation_names())
def test_activation(hf_checkpoint, hidden_act, class_name, backend, rtol):
    cfg = config_kwargs("default", class_name, hidden_act=hidden_act, **ACTIVATION_BASE)
    inputs = make_inputs(class_name, cfg, seed=7)
    check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol)


def test_activation_list_is_broad():
    names = activation_names()
    for required in ("relu", "relu6", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu",
                     "silu", "swish", "tanh"):
        assert required in names


# --------------------------------------------------------------------------------------------------------------
# input variants


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_return_dict_false(hf_checkpoint, class_name, backend, rtol):
    cfg = config_kwargs("default", class_name)
    inputs = make_inputs(class_name, cfg, seed=11)
    ck = hf_checkpoint(class_name, cfg)
    model = load_ours(class_name, ck.path, backend)
    hf_dict = run_hf(ck.model, inputs, return_dict=True, **ALL_FLAGS)
    hf_tuple = run_hf(ck.model, inputs, return_dict=False, **ALL_FLAGS)
    assert isinstance(hf_tuple, tuple) and len(hf_tuple) == len(hf_dict.to_tuple())
    ours = model(**inputs, return_dict=False, **ALL_FLAGS)
    assert_tuple_outputs_match(ours, hf_tuple, rtol, names=list(hf_dict.keys()))


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_default_return_dict_and_no_optional_inputs(hf_checkpoint, class_name, backend, rtol):
    """Only input_ids: default mask/token types/positions, no hidden states/attentions/loss returned."""
    cfg = config_kwargs("default", class_name)
    inputs = make_inputs(class_name, cfg, seed=12, labels=False)
    inputs = {"input_ids": inputs["input_ids"]}
    ck = hf_checkpoint(class_name, cfg)
    model = load_ours(class_name, ck.path, backend)
    hf_out = run_hf(ck.model, inputs)
    ours = model(**inputs)
    assert "hidden_states" not in hf_out and "attentions" not in hf_out and "loss" not in hf_out
    assert_outputs_match(ours, hf_out, rtol)


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_explicit_position_ids(hf_checkpoint, class_name, backend, rtol):
    cfg = config_kwargs("default", class_name)
    inputs = make_inputs(class_name, cfg, seed=13)
    rng = np.random.default_rng(13)
    shape = inputs["input_ids"].shape
    L = shape[-1]
    pos = rng.integers(0, cfg["max_position_embeddings"], size=shape).astype(np.int64)
    flat = pos.reshape(-1, L)
    flat[0] = np.arange(L) + 100  # shifted
    flat[1] = np.arange(L)[::-1]  # reversed
    inputs["position_ids"] = flat.reshape(shape)
    check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol)


@pytest.mark.parametrize("class_name", ["MobileBertModel", "MobileBertForMaskedLM"])
def test_broadcast_position_ids(hf_checkpoint, class_name, backend, rtol):
    """position_ids of shape [1, L] apply to every row."""
    cfg = config_kwargs("default", class_name)
    inputs = make_inputs(class_name, cfg, seed=14)
    L = inputs["input_ids"].shape[-1]
    inputs["position_ids"] = (np.arange(L, dtype=np.int64) * 7 + 3)[None, :]
    check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol)


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_inputs_embeds(hf_checkpoint, class_name, backend, rtol):
    """inputs_embeds are word embeddings of width embedding_size (pre-trigram), not hidden_size."""
    cfg = config_kwargs("default", class_name)
    inputs = make_inputs(class_name, cfg, seed=15)
    rng = np.random.default_rng(15)
    ids = inputs.pop("input_ids")
    embeds = rng.normal(0.0, 0.5, size=ids.shape + (cfg["embedding_size"],)).astype(np.float32)
    inputs["inputs_embeds"] = embeds
    check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol, expect_loss=_has_labels(class_name))


@pytest.mark.parametrize("class_name", CLASS_NAMES)
@pytest.mark.parametrize("seq_len", [1, 2])
def test_short_sequences(hf_checkpoint, seq_len, class_name, backend, rtol):
    """L = 1 (both trigram neighbours are zero) and L = 2 (second row padded)."""
    cfg = config_kwargs("default", class_name)
    inputs = make_inputs(class_name, cfg, batch=2, seq_len=seq_len, seed=16 + seq_len)
    check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol, expect_loss=_has_labels(class_name))


def test_max_length_512(hf_checkpoint, backend, rtol):
    class_name = "MobileBertForMaskedLM"
    cfg = config_kwargs("default", class_name)
    inputs = make_inputs(class_name, cfg, batch=2, seq_len=512, lengths=[512, 300], seed=18)
    _, hf_out = check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol, expect_loss=True)
    assert hf_out["attentions"][0].shape == (2, 4, 512, 512)


def test_unpadded_vs_padded_differ_like_hf(hf_checkpoint, backend, rtol):
    """The trigram input treats [PAD] as a real neighbour: padding changes the last real token's output in HF,
    and must change it identically in ours (no "fix")."""
    class_name = "MobileBertModel"
    cfg = config_kwargs("default", class_name)
    rng = np.random.default_rng(19)
    ids = rng.integers(1, cfg["vocab_size"], size=(1, 6)).astype(np.int64)
    padded = np.concatenate([ids, np.zeros((1, 3), np.int64)], axis=1)
    mask = np.concatenate([np.ones((1, 6), np.int64), np.zeros((1, 3), np.int64)], axis=1)
    _, hf_a = check_case(hf_checkpoint, class_name, cfg, {"input_ids": ids}, backend, rtol)
    _, hf_b = check_case(hf_checkpoint, class_name, cfg, {"input_ids": padded, "attention_mask": mask},
                         backend, rtol)
    a = hf_a["last_hidden_state"].numpy()[0, 5]
    b = hf_b["last_hidden_state"].numpy()[0, 5]
    assert np.max(np.abs(a - b)) > 1e-3 * max(1.0, np.max(np.abs(a))), "test setup: [PAD] row has no effect"


def test_fully_masked_row(hf_checkpoint, backend, rtol):
    """A row whose attention_mask is all zeros: HF eager attends uniformly (finfo.min absorbs the scores);
    no NaN."""
    class_name = "MobileBertModel"
    cfg = config_kwargs("default", class_name)
    inputs = make_inputs(class_name, cfg, batch=3, seq_len=6, seed=20, labels=False)
    inputs["attention_mask"][2] = 0
    check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol)


# --------------------------------------------------------------------------------------------------------------
# losses


SEQ_CLS_LOSS_CASES = {
    # name: (config extra, label maker(rng, B, num_labels))
    "regression_inferred": ({"num_labels": 1}, lambda r, B, n: r.normal(size=B).astype(np.float32)),
    "regression_explicit_2_outputs": (
        {"num_labels": 2, "problem_type": "regression"},
        lambda r, B, n: r.normal(size=(B, n)).astype(np.float32),
    ),
    "single_label_explicit": (
        {"num_labels": 3, "problem_type": "single_label_classification"},
        lambda r, B, n: r.integers(0, n, size=B).astype(np.int64),
    ),
    "single_label_inferred": ({"num_labels": 3}, lambda r, B, n: r.integers(0, n, size=B).astype(np.int64)),
    "multi_label_explicit": (
        {"num_labels": 3, "problem_type": "multi_label_classification"},
        lambda r, B, n: (r.random((B, n)) < 0.5).astype(np.float32),
    ),
    "multi_label_inferred": ({"num_labels": 3}, lambda r, B, n: (r.random((B, n)) < 0.5).astype(np.float32)),
}


@pytest.mark.parametrize("case", list(SEQ_CLS_LOSS_CASES))
def test_sequence_classification_losses(hf_checkpoint, case, backend, rtol):
    class_name = "MobileBertForSequenceClassification"
    extra, make = SEQ_CLS_LOSS_CASES[case]
    cfg = config_kwargs("default", class_name, **extra)
    inputs = make_inputs(class_name, cfg, batch=4, seed=21, labels=False)
    inputs["labels"] = make(np.random.default_rng(21), 4, cfg["num_labels"])
    check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol, expect_loss=True)


QA_POSITION_CASES = {
    "beyond_length": (np.array([1, 3, 9 + 5, 0]), np.array([2, 8, 9 + 2, 9])),  # L = 9: 14, 11 and 9 ignored
    "column_and_negative": (np.array([[4], [-3], [12], [0]]), np.array([[5], [7], [-1], [30]])),  # [B, 1]
}


@pytest.mark.parametrize("case", list(QA_POSITION_CASES))
def test_question_answering_positions(hf_checkpoint, case, backend, rtol):
    class_name = "MobileBertForQuestionAnswering"
    cfg = config_kwargs("default", class_name)
    inputs = make_inputs(class_name, cfg, batch=4, seq_len=9, seed=22, labels=False)
    start, end = QA_POSITION_CASES[case]
    inputs["start_positions"] = start.astype(np.int64)
    inputs["end_positions"] = end.astype(np.int64)
    check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol, expect_loss=True)


@pytest.mark.parametrize("given", ["labels", "next_sentence_label"])
def test_pretraining_needs_both_labels(hf_checkpoint, given, backend, rtol):
    """MobileBertForPreTraining computes a loss only when both labels are given."""
    class_name = "MobileBertForPreTraining"
    cfg = config_kwargs("default", class_name)
    inputs = make_inputs(class_name, cfg, seed=23)
    drop = "next_sentence_label" if given == "labels" else "labels"
    del inputs[drop]
    check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol, expect_loss=False)


def test_token_classification_all_pad_labels_ignored(hf_checkpoint, backend, rtol):
    """-100 at every pad and at some real positions; heavy padding."""
    class_name = "MobileBertForTokenClassification"
    cfg = config_kwargs("default", class_name)
    inputs = make_inputs(class_name, cfg, batch=3, seq_len=10, lengths=[10, 2, 5], seed=24)
    inputs["labels"][0, ::3] = -100
    check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol, expect_loss=True)


# --------------------------------------------------------------------------------------------------------------
# the full google/mobilebert-uncased shape


def test_full_size_uncased_pretraining(hf_checkpoint, backend, rtol):
    class_name = "MobileBertForPreTraining"
    import transformers

    cfg = dict(FULL_UNCASED)
    full = transformers.MobileBertConfig(**cfg)
    assert (full.num_hidden_layers, full.vocab_size, full.hidden_size, full.true_hidden_size) == (24, 30522, 512, 128)
    data_cfg = {"vocab_size": full.vocab_size}
    inputs = make_inputs(class_name, data_cfg, batch=2, seq_len=24, lengths=[24, 17], seed=25)
    ours, hf_out = check_case(hf_checkpoint, class_name, cfg, inputs, backend, rtol, expect_loss=True)
    assert len(hf_out["hidden_states"]) == 25 and len(hf_out["attentions"]) == 24


@pytest.mark.parametrize(
    "batch, seq_len, lengths",
    [(1, 1, [1]), (2, 2, [2, 1]), (1, 512, [512]), (2, 128, [128, 77])],
    ids=["L1", "L2-padded", "L512", "L128-padded"],
)
def test_full_size_uncased_model_lengths(hf_checkpoint, backend, rtol, batch, seq_len, lengths):
    # The real google/mobilebert-uncased shape (24 layers, NoNorm, trigram, 4 FFNs) at the edge lengths.
    class_name = "MobileBertModel"
    inputs = make_inputs(class_name, {"vocab_size": 30522}, batch=batch, seq_len=seq_len, lengths=lengths, seed=31)
    check_case(hf_checkpoint, class_name, dict(FULL_UNCASED), inputs, backend, rtol, expect_loss=False)
