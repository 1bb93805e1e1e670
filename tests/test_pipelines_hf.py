"""Task pipelines against transformers' own pipelines on tiny random checkpoints (vocab_size 30522, so that the
bundled bert-base-uncased vocabulary tokenises for both sides).

Parity rule: the same output structure, keys, labels/tokens and order; scores within TOL. Random weights can
produce near-ties; two entries may swap only when their scores are within 2 * TOL of each other.

Padding: our batch_size=1 runs each input unpadded, like transformers' default; our batch_size=4 is compared
with transformers' batch_size=4 on at most 4 sequences, so that both sides pad the same group to the same length.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from conftest import _record_error

TOL = 1e-4

TINY = dict(vocab_size=30522, hidden_size=32, embedding_size=16, intra_bottleneck_size=16, num_attention_heads=2,
            num_hidden_layers=2, intermediate_size=24, num_feedforward_networks=2, max_position_embeddings=128)
NLI_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
# name -> (class, config overrides, seed); the classifier seeds are picked so that TEXTS get different labels
CHECKPOINTS = {
    "mlm": ("MobileBertForMaskedLM", {}, 1234),
    "sentiment": ("MobileBertForSequenceClassification",
                  {"id2label": {0: "NEGATIVE", 1: "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}}, 1243),
    "nli": ("MobileBertForSequenceClassification",
            {"id2label": NLI_LABELS, "label2id": {v: k for k, v in NLI_LABELS.items()}}, 1238),
    "one_label": ("MobileBertForSequenceClassification", {"num_labels": 1}, 1234),
    "base": ("MobileBertModel", {}, 1234),
    "mc": ("MobileBertForMultipleChoice", {}, 1234),
    "nsp": ("MobileBertForNextSentencePrediction", {}, 1234),
}

TEXTS = ["I love this phone, it works great!", "terrible.", "The weather in paris is nice today and tomorrow",
         "ok"]
MASKED = ["paris is the [MASK] of france.", "the [MASK] sat on the mat.", "[MASK] is a [MASK] day",
          "hello [MASK]"]


# ------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ckpt(hf_checkpoint):
    """ckpt(name) -> HFCheckpoint whose directory also holds the bundled vocabulary and a tokenizer config."""
    import mobilebert_lite

    vocab = os.path.join(os.path.dirname(mobilebert_lite.__file__), "data", "vocab_uncased.txt")

    def get(name):
        class_name, extra, seed = CHECKPOINTS[name]
        ck = hf_checkpoint(class_name, {**TINY, **extra}, seed=seed)
        if not os.path.isfile(os.path.join(ck.path, "vocab.txt")):
            shutil.copy(vocab, os.path.join(ck.path, "vocab.txt"))
            with open(os.path.join(ck.path, "tokenizer_config.json"), "w") as f:
                json.dump({"do_lower_case": True, "model_max_length": 512}, f)
        return ck

    return get


@pytest.fixture(scope="module")
def pipes(ckpt):
    """pipes.hf(task, name, batch_size=None) and pipes.ours(task, name, batch_size=1, **defaults), cached."""
    import transformers

    import mobilebert_lite as mbl

    class Pipes:
        cache: dict = {}
        tokenizer = None

        def hf(self, task, name, batch_size=None, **defaults):
            key = ("hf", task, name, batch_size, json.dumps(defaults, sort_keys=True))
            if key not in self.cache:
                ck = ckpt(name)
                if Pipes.tokenizer is None:
                    Pipes.tokenizer = transformers.AutoTokenizer.from_pretrained(ck.path)
                extra = {} if batch_size is None else {"batch_size": batch_size}
                self.cache[key] = transformers.pipeline(task, model=ck.model, tokenizer=Pipes.tokenizer, **extra,
                                                        **defaults)
            return self.cache[key]

        def ours(self, task, name, batch_size=1, **defaults):
            key = ("ours", task, name, batch_size, json.dumps(defaults, sort_keys=True))
            if key not in self.cache:
                self.cache[key] = mbl.pipeline(task, model=ckpt(name).path, batch_size=batch_size, **defaults)
            return self.cache[key]

    return Pipes()


# -------------------------------------------------------------------------------------------- comparisons
def assert_same(ours, hf, where="result"):
    """Recursive comparison of pipeline outputs (dicts, lists, ranked lists of scored dicts, floats)."""
    if isinstance(hf, dict) and "labels" in hf and "scores" in hf:  # zero-shot
        assert set(ours) == set(hf) and ours["sequence"] == hf["sequence"], where
        assert_ranked([{"label": lab, "score": s} for lab, s in zip(ours["labels"], ours["scores"])],
                      [{"label": lab, "score": s} for lab, s in zip(hf["labels"], hf["scores"])], where)
    elif isinstance(hf, list) and hf and isinstance(hf[0], dict) and "score" in hf[0]:
        assert_ranked(ours, hf, where)
    elif isinstance(hf, list):
        assert isinstance(ours, list) and len(ours) == len(hf), f"{where}: {ours!r} vs {hf!r}"
        for i, (o, h) in enumerate(zip(ours, hf)):
            assert_same(o, h, f"{where}[{i}]")
    elif isinstance(hf, dict):
        assert isinstance(ours, dict) and list(ours) == list(hf), f"{where}: {ours!r} vs {hf!r}"
        for key in hf:
            assert_same(ours[key], hf[key], f"{where}[{key!r}]")
    elif isinstance(hf, float):
        assert type(ours) is float, f"{where}: {type(ours).__name__} instead of float"
        _record_error(abs(ours - hf))
        assert abs(ours - hf) <= TOL, f"{where}: {ours} vs {hf}"
    else:
        assert type(ours) is type(hf) and ours == hf, f"{where}: {ours!r} vs {hf!r}"


def assert_ranked(ours, hf, where):
    """Scored dicts in the same order; entries whose HF score is within 2 * TOL of a neighbour may swap (with
    the last entry, the unseen next one may take its place)."""
    assert isinstance(ours, list) and len(ours) == len(hf), f"{where}: {ours!r} vs {hf!r}"
    hf_scores = [h["score"] for h in hf]
    for i, (o, h) in enumerate(zip(ours, hf)):
        assert isinstance(o, dict) and list(o) == list(h), f"{where}[{i}]: {o!r} vs {h!r}"
        assert_same(o["score"], h["score"], f"{where}[{i}]['score']")
        key = "token" if "token" in h else "label"
        if o[key] == h[key]:
            assert_same(o, h, f"{where}[{i}]")
        else:
            near = [j for j in (i - 1, i + 1) if 0 <= j < len(hf) and abs(hf_scores[j] - h["score"]) <= 2 * TOL]
            assert near or i == len(hf) - 1, f"{where}[{i}]: {o[key]!r} ranked where HF has {h[key]!r}: {o} vs {h}"


def assert_features(ours, hf, where="features"):
    ours, hf = np.asarray(ours), np.asarray(hf)
    assert ours.shape == hf.shape, f"{where}: shape {ours.shape} vs {hf.shape}"
    err = float(np.max(np.abs(ours - hf))) / max(1.0, float(np.max(np.abs(hf))))
    _record_error(err)
    assert err <= TOL, f"{where}: relative error {err:.2e}"


def run_both(pipes, task, name, inputs, batch_size=1, **kwargs):
    """(ours, hf) for the same call; our batch_size=1 against transformers' default (unpadded) run."""
    hf = pipes.hf(task, name, batch_size=None if batch_size == 1 else batch_size)(inputs, **kwargs)
    ours = pipes.ours(task, name, batch_size=batch_size)(inputs, **kwargs)
    return ours, hf


# ------------------------------------------------------------------------------------------------ fill-mask
@pytest.mark.parametrize("text", MASKED)
@pytest.mark.parametrize("kwargs", [{}, {"top_k": 3}, {"top_k": 1}], ids=["default", "top3", "top1"])
def test_fill_mask_single(pipes, text, kwargs):
    ours, hf = run_both(pipes, "fill-mask", "mlm", text, **kwargs)
    assert_same(ours, hf)
    assert len(ours) == (2 if text.count("[MASK]") == 2 else kwargs.get("top_k", 5))


@pytest.mark.parametrize("targets", [["capital", "city", "the", "zzzqqq"], "dog", ["city", "city", "town"]],
                         ids=["list_with_oov", "single", "duplicates"])
@pytest.mark.parametrize("top_k", [2, 10])
def test_fill_mask_targets(pipes, targets, top_k):
    for text in (MASKED[0], MASKED[2]):
        ours, hf = run_both(pipes, "fill-mask", "mlm", text, targets=targets, top_k=top_k)
        assert_same(ours, hf, text)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_fill_mask_batch(pipes, batch_size):
    ours, hf = run_both(pipes, "fill-mask", "mlm", MASKED, batch_size=batch_size, top_k=4)
    assert_same(ours, hf)
    ours, hf = run_both(pipes, "fill-mask", "mlm", MASKED[:1], batch_size=batch_size)  # a list of one: unnested
    assert_same(ours, hf)


def test_fill_mask_defaults_and_masked_rows_only(pipes):
    ours = pipes.ours("fill-mask", "mlm", top_k=2)
    assert_same(ours(MASKED[0]), pipes.hf("fill-mask", "mlm")(MASKED[0], top_k=2))

    def no_full_forward(*args, **kwargs):
        raise AssertionError("fill-mask must score only the masked rows (logits_at), not run forward()")

    ours.model.forward = no_full_forward
    try:
        assert len(ours(MASKED)) == len(MASKED)
    finally:
        del ours.model.forward


def test_fill_mask_bad_inputs(pipes):
    fill = pipes.ours("fill-mask", "mlm")
    with pytest.raises(ValueError, match=r"mask_token \(\[MASK\]\)"):
        fill("no mask here")
    with pytest.raises(ValueError, match="mask_token"):
        fill([MASKED[0], "no mask here"])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="top_k"):
            fill(MASKED[0], top_k=bad)
    with pytest.raises(ValueError, match="target"):
        fill(MASKED[0], targets=[])
    with pytest.raises(TypeError, match="targets"):
        fill(MASKED[0], targets=5)
    for bad in (5, None, [], [MASKED[0], 3]):
        with pytest.raises(TypeError, match="string"):
            fill(bad)
    with pytest.raises(TypeError, match="unexpected"):
        fill(MASKED[0], topk=3)


# ---------------------------------------------------------------------------------------- text-classification
PAIR = {"text": "the cat sat", "text_pair": "on the mat"}


@pytest.mark.parametrize("function_to_apply", [None, "sigmoid", "softmax", "none", "SoftMax"])
@pytest.mark.parametrize("top_k", ["unset", None, 1, 2])
def test_text_classification(pipes, function_to_apply, top_k):
    kwargs = {} if top_k == "unset" else {"top_k": top_k}
    if function_to_apply is not None:
        kwargs["function_to_apply"] = function_to_apply
    for name in ("sentiment", "nli"):
        for inputs in (TEXTS[0], PAIR, [TEXTS[1], PAIR, TEXTS[2]]):
            ours, hf = run_both(pipes, "text-classification", name, inputs, **kwargs)
            assert_same(ours, hf, f"{name} {inputs!r}")


@pytest.mark.parametrize("problem_type", [None, "regression", "multi_label_classification",
                                          "single_label_classification"])
@pytest.mark.parametrize("name", ["sentiment", "one_label"])
def test_text_classification_default_function(pipes, ckpt, problem_type, name):
    """The default function follows config.problem_type and num_labels, on both sides."""
    ours_pipe = pipes.ours("text-classification", name)
    configs = (ours_pipe.model.config, ckpt(name).model.config)
    saved = [c.problem_type for c in configs]
    try:
        for c in configs:
            c.problem_type = problem_type
        for inputs in (TEXTS[0], TEXTS[:3]):
            assert_same(ours_pipe(inputs, top_k=None), pipes.hf("text-classification", name)(inputs, top_k=None))
    finally:
        for c, value in zip(configs, saved):
            c.problem_type = value


def test_text_classification_batch_and_defaults(pipes):
    inputs = [TEXTS[0], PAIR, TEXTS[3], TEXTS[2]]
    for kwargs in ({}, {"top_k": None}):
        ours, hf = run_both(pipes, "text-classification", "nli", inputs, batch_size=4, **kwargs)
        assert_same(ours, hf)
    for name in ("sentiment", "nli"):  # the checkpoints' seeds make the best label vary, so argmax is tested
        assert len({r["label"] for r in pipes.hf("text-classification", name)(TEXTS)}) > 1, name
    # top_k given at construction: transformers still wraps a single string's result in a list
    for inputs in (TEXTS[0], [TEXTS[0]], PAIR):
        assert_same(pipes.ours("text-classification", "nli", top_k=None)(inputs),
                    pipes.hf("text-classification", "nli", top_k=None)(inputs))
    assert_same(pipes.ours("sentiment-analysis", "sentiment")(TEXTS[0]),
                pipes.hf("sentiment-analysis", "sentiment")(TEXTS[0]))


def test_text_classification_bad_inputs(pipes):
    classify = pipes.ours("text-classification", "sentiment")
    with pytest.raises(ValueError, match="function_to_apply"):
        classify(TEXTS[0], function_to_apply="relu")
    with pytest.raises(ValueError, match="text_pair"):
        classify([["a", "b"]])
    with pytest.raises(ValueError, match='"text"'):
        classify({"pair": "a"})
    with pytest.raises(TypeError, match="string"):
        classify(5)
    with pytest.raises(ValueError, match="top_k"):
        classify(TEXTS[0], top_k=0)
    with pytest.raises(ValueError, match="empty"):
        classify([])
    with pytest.raises(TypeError, match="unexpected"):  # unknown arguments go to the tokenizer, which refuses
        classify(TEXTS[0], not_an_option=1)


# -------------------------------------------------------------------------------------------------- zero-shot
LABELS = ["technology", "sports", "cooking", "politics"]
TEMPLATES = ["This example is {}.", "The topic is {}", "{} is what this text is about."]


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("multi_label", [False, True])
def test_zero_shot(pipes, template, multi_label):
    for inputs, labels in ((TEXTS[0], LABELS[:3]), (TEXTS[:2], "technology, sports,,cooking "),
                           (TEXTS[2], ["sports"])):
        ours, hf = run_both(pipes, "zero-shot-classification", "nli", inputs, candidate_labels=labels,
                            hypothesis_template=template, multi_label=multi_label)
        assert_same(ours, hf, f"{inputs!r} {labels!r}")


@pytest.mark.parametrize("multi_label", [False, True])
def test_zero_shot_batch_and_positional_labels(pipes, multi_label):
    # 4 pairs: one padded group on both sides
    ours, hf = run_both(pipes, "zero-shot-classification", "nli", TEXTS[1], batch_size=4, candidate_labels=LABELS,
                        multi_label=multi_label)
    assert_same(ours, hf)
    ours, hf = run_both(pipes, "zero-shot-classification", "nli", TEXTS[2:], batch_size=4,
                        candidate_labels=LABELS[:2], multi_label=multi_label)
    assert_same(ours, hf)
    assert_same(pipes.ours("zero-shot-classification", "nli")(TEXTS[0], LABELS),
                pipes.hf("zero-shot-classification", "nli")(TEXTS[0], LABELS))


def test_zero_shot_entailment_first(pipes, ckpt):
    """Entailment at index 0 moves contradiction to the last index (transformers' rule)."""
    ours_pipe = pipes.ours("zero-shot-classification", "nli")
    configs = (ours_pipe.model.config, ckpt("nli").model.config)
    saved = [(c.id2label, c.label2id) for c in configs]
    try:
        for c in configs:
            c.id2label = {0: "ENTAILMENT", 1: "neutral", 2: "contradiction"}
            c.label2id = {"ENTAILMENT": 0, "neutral": 1, "contradiction": 2}
        assert ours_pipe.entailment_id == 0
        for multi_label in (False, True):
            assert_same(ours_pipe(TEXTS[0], candidate_labels=LABELS, multi_label=multi_label),
                        pipes.hf("zero-shot-classification", "nli")(TEXTS[0], candidate_labels=LABELS,
                                                                      multi_label=multi_label))
    finally:
        for c, (id2label, label2id) in zip(configs, saved):
            c.id2label, c.label2id = id2label, label2id


def test_zero_shot_bad_inputs(pipes):
    zs = pipes.ours("zero-shot-classification", "nli")
    for bad in ([], "", " , ", None):
        with pytest.raises(ValueError, match="at least one label"):
            zs(TEXTS[0], candidate_labels=bad)
    with pytest.raises(ValueError, match="at least one label"):
        zs(TEXTS[0])
    with pytest.raises(ValueError, match="hypothesis_template"):
        zs(TEXTS[0], candidate_labels=LABELS, hypothesis_template="no placeholder")
    with pytest.raises(ValueError, match="at least one sequence"):
        zs([], candidate_labels=LABELS)
    with pytest.raises(TypeError, match="multi_label"):
        zs(TEXTS[0], candidate_labels=LABELS, multi_label="yes")
    with pytest.raises(TypeError, match="candidate_labels"):
        zs(TEXTS[0], candidate_labels=["a", 3])
    with pytest.raises(ValueError, match="extra arguments"):
        zs(TEXTS[0], LABELS, "This is {}.")


# ---------------------------------------------------------------------------------------- feature-extraction
def test_feature_extraction(pipes):
    for inputs in (TEXTS[0], TEXTS):
        ours, hf = run_both(pipes, "feature-extraction", "base", inputs)
        assert isinstance(ours, list) and isinstance(ours[0], list)
        assert_features(ours, hf) if isinstance(inputs, str) else [assert_features(o, h) for o, h in zip(ours, hf)]
    ours, hf = run_both(pipes, "feature-extraction", "base", TEXTS[0], return_tensors=True)
    assert isinstance(ours, np.ndarray) and ours.shape == tuple(hf.shape) and ours.shape[0] == 1
    assert_features(ours, hf.numpy())
    long_text = " ".join(["word"] * 40)
    kw = {"tokenize_kwargs": {"truncation": True, "max_length": 8}}
    ours, hf = run_both(pipes, "feature-extraction", "base", long_text, **kw)
    assert np.asarray(ours).shape[1] == 8
    assert_features(ours, hf)


def test_feature_extraction_batch(pipes):
    """batch_size=4: the same values over each text's own tokens; transformers also returns the padded rows."""
    ours, hf = run_both(pipes, "feature-extraction", "base", TEXTS, batch_size=4)
    for text, o, h in zip(TEXTS, ours, hf):
        n = len(pipes.ours("feature-extraction", "base").tokenizer(text)["input_ids"])
        assert np.asarray(o).shape[1] == n
        assert_features(o, np.asarray(h)[:, :n], text)


def test_feature_extraction_bad_inputs(pipes):
    fe = pipes.ours("feature-extraction", "base")
    with pytest.raises(TypeError, match="string"):
        fe(3)
    with pytest.raises(TypeError, match="unexpected"):
        fe(TEXTS[0], pooling="mean")
    with pytest.raises(ValueError, match="twice"):
        fe(TEXTS[0], truncation=True, tokenize_kwargs={"truncation": True})


# --------------------------------------------------------------------------------------- sentence-embeddings
def _model_states(model, tokenizer, texts):
    """last_hidden_state [n, L, H] and attention_mask [n, L] of the texts padded together."""
    enc = tokenizer(texts, padding=True, truncation=True, return_tensors="np")
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                token_type_ids=enc["token_type_ids"])
    return out["last_hidden_state"].astype(np.float64), enc["attention_mask"]


@pytest.mark.parametrize("batch_size", [1, 4])
def test_sentence_embeddings_pooling(pipes, batch_size):
    emb = pipes.ours("sentence-embeddings", "base", batch_size=batch_size)
    expected_mean, expected_cls = [], []
    if batch_size == 1:  # each text alone
        for text in TEXTS:
            hidden, _ = _model_states(emb.model, emb.tokenizer, [text])
            expected_mean.append(hidden[0].mean(axis=0))
            expected_cls.append(hidden[0, 0])
    else:  # the 4 texts padded together: the mean must skip the padding
        hidden, mask = _model_states(emb.model, emb.tokenizer, TEXTS)
        expected_mean = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        expected_cls = hidden[:, 0]
    got = emb(TEXTS, normalize=False)
    assert isinstance(got, np.ndarray) and got.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(got, np.array(expected_mean), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(emb(TEXTS, pooling="cls", normalize=False), np.array(expected_cls), rtol=1e-5,
                               atol=1e-6)
    unit = emb(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(unit, got / np.linalg.norm(got, axis=1, keepdims=True), atol=1e-6)


def test_sentence_embeddings_similarity(pipes):
    from mobilebert_lite.pipelines.feature_extraction import similarity

    emb = pipes.ours("sentence-embeddings", "base")
    single = emb(TEXTS[0])
    assert single.shape == (32,)
    np.testing.assert_allclose(single, emb(TEXTS)[0], atol=1e-6)
    sims = emb.similarity(TEXTS, TEXTS)
    assert sims.shape == (4, 4)
    np.testing.assert_allclose(sims, sims.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(sims), 1.0, atol=1e-6)
    assert np.all(np.abs(sims) <= 1 + 1e-6)
    raw = emb(TEXTS, normalize=False)
    np.testing.assert_allclose(similarity(raw, raw), sims, atol=1e-6)  # cosine does not depend on the norm
    assert emb.similarity(TEXTS[:2], TEXTS[3]).shape == (2,)
    assert isinstance(similarity(raw[0], raw[1]), float)
    assert similarity(raw[:2], raw[1:]).shape == (2, 3)
    np.testing.assert_allclose(emb.similarity(TEXTS[:3]), sims[:3, :3], atol=1e-6)


def test_sentence_embeddings_bad_inputs(pipes):
    from mobilebert_lite.pipelines.feature_extraction import similarity

    emb = pipes.ours("sentence-embeddings", "base")
    with pytest.raises(ValueError, match="pooling"):
        emb(TEXTS[0], pooling="max")
    with pytest.raises(TypeError, match="normalize"):
        emb(TEXTS[0], normalize="yes")
    with pytest.raises(TypeError, match="string"):
        emb([TEXTS[0], None])
    with pytest.raises(ValueError, match="sizes differ"):
        similarity(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="shape"):
        similarity(np.ones((2, 3, 4)), np.ones(4))


# -------------------------------------------------------------------------- multiple-choice / next sentence
def _softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


def test_multiple_choice(pipes):
    mc = pipes.ours("multiple-choice", "mc")
    examples = [{"question": "where is paris?", "choices": ["in france", "on the moon", "under the sea today"]},
                {"prompt": "the cat", "choices": ["sat on the mat", "flew"]}]
    results = mc(examples)
    for example, result in zip(examples, results):
        question = example.get("question", example.get("prompt"))
        enc = mc.tokenizer([question] * len(example["choices"]), example["choices"], padding=True,
                           return_tensors="np")
        logits = mc.model(**{k: v[None] for k, v in enc.items()})["logits"][0]
        np.testing.assert_allclose(result["scores"], _softmax(logits.astype(np.float64)), atol=1e-6)
        assert result["best"] == int(np.argmax(logits)) and result["choice"] == example["choices"][result["best"]]
        assert all(type(s) is float for s in result["scores"]) and type(result["best"]) is int
    assert mc(examples[1]) == results[1]
    # batch_size=4: the two-choice examples run as one padded block
    two = [examples[1], {"question": "where is paris?", "choices": ["in france", "on the moon, far away"]}]
    batched = pipes.ours("multiple-choice", "mc", batch_size=4)(two)
    encs = [mc.tokenizer([e.get("question", e.get("prompt"))] * 2, e["choices"], padding="max_length",
                         max_length=13, return_tensors="np") for e in two]
    assert max(len(x) for x in mc.tokenizer(["where is paris?"] * 2, two[1]["choices"])["input_ids"]) == 13
    logits = mc.model(**{k: np.stack([e[k] for e in encs]) for k in encs[0]})["logits"]
    for result, row in zip(batched, logits):
        np.testing.assert_allclose(result["scores"], _softmax(row.astype(np.float64)), atol=1e-6)


def test_next_sentence_prediction(pipes):
    nsp = pipes.ours("next-sentence-prediction", "nsp")
    pairs = [("the weather is nice.", "let us go outside."), {"text": "hello", "text_pair": TEXTS[2]}]
    results = nsp(pairs)
    for pair, result in zip(pairs, results):
        a, b = (pair["text"], pair["text_pair"]) if isinstance(pair, dict) else pair
        logits = nsp.model(**nsp.tokenizer(a, b, return_tensors="np"))["logits"][0].astype(np.float64)
        assert abs(result["score"] - _softmax(logits)[0]) <= 1e-6
        assert result["is_next"] is bool(np.argmax(logits) == 0)
    assert nsp(pairs[0]) == results[0]
    assert pipes.ours("next-sentence-prediction", "nsp", batch_size=4)(pairs[:1]) == results[:1]


def test_multiple_choice_and_nsp_bad_inputs(pipes):
    mc = pipes.ours("multiple-choice", "mc")
    with pytest.raises(TypeError, match="dict"):
        mc("where?")
    with pytest.raises(ValueError, match="choices"):
        mc({"question": "where?"})
    with pytest.raises(ValueError, match="choices"):
        mc({"question": "where?", "choices": []})
    with pytest.raises(ValueError, match="question"):
        mc({"question": "a", "prompt": "b", "choices": ["c"]})
    with pytest.raises(TypeError, match="question must be a string"):
        mc({"question": 3, "choices": ["c"]})
    nsp = pipes.ours("next-sentence-prediction", "nsp")
    with pytest.raises(TypeError, match="tuple"):
        nsp(["first", "second"])
    with pytest.raises(ValueError, match="text_pair"):
        nsp({"text": "first"})
    with pytest.raises(TypeError, match="strings"):
        nsp(("first", None))
    with pytest.raises(ValueError, match="empty"):
        nsp([])
