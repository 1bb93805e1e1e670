"""token-classification / ner and question-answering pipelines against transformers.

Token classification: transformers 5's own TokenClassificationPipeline (installed) and ours on the same tiny random
MobileBertForTokenClassification (bundled uncased vocabulary, IOB labels, classifier scaled so that predictions are
confident and vary): identical entities, words, offsets, indices and order, scores within 1e-4, same value types.

Question answering left transformers in v5: the expectations were recorded with transformers 4.57.6 by
tools/make_qa_expectations.py (tests/data/qa_expectations.json) on a checkpoint both sides rebuild from a seed
(tests/qa_checkpoint.py): identical answers, starts, ends and result nesting, scores within 1e-4.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings

import numpy as np
import pytest
import qa_checkpoint

SCORE_TOL = 1e-4
HERE = os.path.dirname(os.path.abspath(__file__))
QA_EXPECTATIONS = os.path.join(HERE, "data", "qa_expectations.json")

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
TC_CONFIG = dict(vocab_size=30522, hidden_size=32, embedding_size=16, intra_bottleneck_size=16, true_hidden_size=16,
                 num_attention_heads=2, num_hidden_layers=2, intermediate_size=32, num_feedforward_networks=2,
                 max_position_embeddings=512, id2label=dict(enumerate(LABELS)),
                 label2id={label: i for i, label in enumerate(LABELS)})
# the calibrated checkpoint's logits have std ~1 (probabilities ~0.3); x4 makes most tokens confident
CLASSIFIER_SCALE = 4.0
SHORT_MAX_LENGTH = 32  # model_max_length for the truncation and stride cases

TEXTS = [
    "My name is Wolfgang and I live in Berlin, near the Brandenburger Tor.",
    "Hugging Face Inc. is a company based in New York City. Its headquarters are in DUMBO, Brooklyn.",
    # [UNK] words (emoji, symbols, an over-long word) are shown as the original text slice
    "I love 🤗 and ☃ in Zürich; " + "x" * 120 + " ends here ⚙.",
    # accents (stripped by the uncased normaliser, offsets still on the original text)
    "Café Müller in São Paulo: naïve façade, Ångström and Œuvre near Kraków.",
    "Dr. O'Neil-Smith's e-mail: j.smith@example.com (tel. +1-555-0100)!! U.S.A.-based, 12/03/1970...",
    "  Angela   Merkel\tvisited\nParis and 東京 with Emmanuel Macron  ",
    "unbelievably antidisestablishmentarianism supercalifragilistic hyperparameterization",
]
LONG_TEXT = (" ".join(TEXTS[:2] + TEXTS[3:5]) + " ") * 2 + "The end."  # 217 tokens: short last windows
STRATEGIES = ("none", "simple", "first", "average", "max")


# ------------------------------------------------------------------------------------------ shared helpers
def assert_same_results(ours, theirs, where: str, diffs: list | None = None):
    """Same nesting, keys (in order) and values; scores within SCORE_TOL and of the same type."""
    if isinstance(theirs, list):
        assert isinstance(ours, list), f"{where}: expected a list, got {type(ours).__name__}"
        assert len(ours) == len(theirs), f"{where}: {len(ours)} results, expected {len(theirs)}:\n{ours}\n{theirs}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_same_results(a, b, f"{where}[{i}]", diffs)
        return
    assert isinstance(ours, dict), f"{where}: expected a dict, got {type(ours).__name__}"
    assert list(ours) == list(theirs), f"{where}: keys {list(ours)} != {list(theirs)}"
    for key, expected in theirs.items():
        got = ours[key]
        if key == "score":
            diff = abs(float(got) - float(expected))
            if diffs is not None:
                diffs.append(diff)
            assert diff <= SCORE_TOL, f"{where}: score {float(got)} vs {float(expected)}"
        else:
            assert got == expected, f"{where}: {key} {got!r} != {expected!r}\nours   {ours}\ntheirs {theirs}"
        assert type(got) is type(expected), f"{where}: {key} is {type(got).__name__}, " \
                                            f"transformers gives {type(expected).__name__}"


# ------------------------------------------------------------------------------------- token classification
@pytest.fixture(scope="module")
def tc(tmp_path_factory):
    """The HF checkpoint directory (model, vocab.txt, tokenizer_config.json) and HF's pipelines."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from hf_checkpoints import build_hf_checkpoint

    path = str(tmp_path_factory.mktemp("token_classification"))
    ckpt = build_hf_checkpoint("MobileBertForTokenClassification", TC_CONFIG, path)
    model = ckpt.model
    with torch.no_grad():
        model.classifier.weight.mul_(CLASSIFIER_SCALE)
        model.classifier.bias.mul_(CLASSIFIER_SCALE)
    model.save_pretrained(path)
    shutil.copy(os.path.join(HERE, "..", "mobilebert_lite", "data", "vocab_uncased.txt"),
                os.path.join(path, "vocab.txt"))
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "model_max_length": 512}, f)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    hf_short_tokenizer = transformers.AutoTokenizer.from_pretrained(path, model_max_length=SHORT_MAX_LENGTH)
    return {
        "path": path,
        "model": model,
        "hf": transformers.pipeline("token-classification", model=model, tokenizer=hf_tokenizer),
        "hf_short": transformers.pipeline("token-classification", model=model, tokenizer=hf_short_tokenizer),
        "ours": {},
    }


def ours_tc(tc, backend: str, short: bool = False):
    """Our pipeline on the same directory (cached per backend and tokenizer length)."""
    import mobilebert_lite as mbl

    key = (backend, short)
    if key not in tc["ours"]:
        tokenizer = mbl.MobileBertTokenizerFast.from_pretrained(
            tc["path"], **({"model_max_length": SHORT_MAX_LENGTH} if short else {}))
        tc["ours"][key] = mbl.pipeline("ner", model=tc["path"], tokenizer=tokenizer, backend=backend)
    return tc["ours"][key]


TC_DIFFS: list = []


def compare_tc(tc, backend, inputs, short=False, **kwargs):
    theirs = tc["hf_short" if short else "hf"](inputs, **kwargs)
    ours = ours_tc(tc, backend, short)(inputs, **kwargs)
    assert_same_results(ours, theirs, f"{kwargs}", TC_DIFFS)
    return ours


def test_tc_checkpoint_has_no_near_ties(tc):
    """The argmax of every token is clear of the runner-up (so parity tests measure the pipeline, not noise),
    and the predictions vary across labels."""
    import torch

    tokenizer = tc["hf"].tokenizer
    predicted = set()
    for text in TEXTS + [LONG_TEXT]:
        enc = tokenizer(text, return_tensors="pt", truncation=True)
        with torch.no_grad():
            logits = tc["model"](**enc).logits[0].numpy()
        top2 = np.sort(logits, axis=-1)[:, -2:]
        assert float(np.min(top2[:, 1] - top2[:, 0])) > 1e-3, text
        predicted |= set(logits.argmax(-1).tolist())
    assert len(predicted) >= 5, predicted


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_tc_strategies(tc, backend, strategy):
    for text in TEXTS:
        compare_tc(tc, backend, text, aggregation_strategy=strategy)
        compare_tc(tc, backend, text, aggregation_strategy=strategy, ignore_labels=[])


@pytest.mark.parametrize("ignore_labels", [[], ["O", "B-PER"], ["PER", "LOC"], ["I-LOC", "O", "ORG"]])
def test_tc_ignore_labels(tc, backend, ignore_labels):
    # tags filter aggregated groups (entity_group), full labels filter tokens (entity)
    for strategy in ("none", "simple", "average"):
        compare_tc(tc, backend, TEXTS[1], aggregation_strategy=strategy, ignore_labels=ignore_labels)


def test_tc_default_arguments_and_unk_words(tc, backend):
    ours = compare_tc(tc, backend, TEXTS[2])
    words = {e["word"] for e in ours_tc(tc, backend)(TEXTS[2], ignore_labels=[])}
    assert {"🤗", "☃", "⚙", "x" * 120} <= words  # [UNK] tokens show the text they stand for
    assert all(set(e) == {"entity", "score", "index", "word", "start", "end"} for e in ours)


def test_tc_python_tokenizer_counts_as_fast(tc, backend):
    """transformers 5 has only fast BERT tokenizers; our pure-Python one gives the same offsets and word ids."""
    import mobilebert_lite as mbl

    ours = mbl.pipeline("ner", model=tc["path"], tokenizer=mbl.MobileBertTokenizer.from_pretrained(tc["path"]),
                        backend=backend)
    for strategy in ("none", "first"):
        assert_same_results(ours(TEXTS[2], aggregation_strategy=strategy),
                            tc["hf"](TEXTS[2], aggregation_strategy=strategy), "MobileBertTokenizer", TC_DIFFS)


def test_tc_batch_of_texts(tc, backend):
    results = compare_tc(tc, backend, TEXTS, aggregation_strategy="first")
    assert len(results) == len(TEXTS)
    compare_tc(tc, backend, TEXTS[:3], ignore_labels=[])


def test_tc_construction_defaults(tc, backend):
    import mobilebert_lite as mbl

    theirs = __import__("transformers").pipeline("ner", model=tc["model"], tokenizer=tc["hf"].tokenizer,
                                                 aggregation_strategy="max", ignore_labels=["O", "I-PER"])
    ours = mbl.pipeline("token-classification", model=tc["path"], backend=backend, aggregation_strategy="max",
                        ignore_labels=["O", "I-PER"])
    assert_same_results(ours(TEXTS[0]), theirs(TEXTS[0]), "construction defaults", TC_DIFFS)
    # call arguments override construction defaults
    assert_same_results(ours(TEXTS[0], aggregation_strategy="none"), theirs(TEXTS[0], aggregation_strategy="none"),
                        "override", TC_DIFFS)


def test_tc_truncates_without_stride(tc, backend):
    ours = compare_tc(tc, backend, LONG_TEXT, short=True, aggregation_strategy="simple", ignore_labels=[])
    assert max(e["end"] for e in ours) < len(LONG_TEXT) // 4


@pytest.mark.parametrize("stride", [4, 16])
@pytest.mark.parametrize("strategy", ["simple", "first", "average", "max"])
def test_tc_stride_windows(tc, backend, stride, strategy):
    # windows of 32 tokens overlapping by `stride`, padded to one length as transformers pads them
    ours = compare_tc(tc, backend, LONG_TEXT, short=True, aggregation_strategy=strategy, stride=stride)
    compare_tc(tc, backend, LONG_TEXT, short=True, aggregation_strategy=strategy, stride=stride, ignore_labels=[])
    assert max(e["end"] for e in ours) > len(LONG_TEXT) * 3 // 4  # the whole text was read


def test_tc_batched_model_calls(tc, backend):
    """batch_size > 1 runs several windows per model call; stride windows are padded to one length anyway, so
    the results are transformers' unbatched ones."""
    import mobilebert_lite as mbl

    tokenizer = mbl.MobileBertTokenizerFast.from_pretrained(tc["path"], model_max_length=SHORT_MAX_LENGTH)
    ours = mbl.pipeline("ner", model=tc["path"], tokenizer=tokenizer, backend=backend, batch_size=3)
    kwargs = dict(aggregation_strategy="average", stride=8, ignore_labels=[])
    assert_same_results(ours(LONG_TEXT, **kwargs), tc["hf_short"](LONG_TEXT, **kwargs), "batch_size=3", TC_DIFFS)


def test_tc_pre_tokenized_words(tc, backend):
    words = ["Angela", "Merkel", "visited", "Zürich", "with", "🤗", "unbelievably", "antidisestablishmentarianism"]
    compare_tc(tc, backend, words, is_split_into_words=True, ignore_labels=[])
    compare_tc(tc, backend, words, is_split_into_words=True, aggregation_strategy="first")
    compare_tc(tc, backend, [words, words[::-1]], is_split_into_words=True, aggregation_strategy="average",
               delimiter="_")


def test_tc_user_offset_mapping(tc, backend):
    """offset_mapping= replaces the tokenizer's offsets (transformers uses the batch's first mapping for all)."""
    text = "Angela Merkel visited Paris"  # [CLS] angela mer ##kel visited paris [SEP]
    offsets = [(0, 0), (0, 3), (3, 6), (7, 13), (14, 21), (22, 27), (0, 0)]
    compare_tc(tc, backend, text, offset_mapping=offsets, ignore_labels=[])
    compare_tc(tc, backend, text, offset_mapping=offsets, aggregation_strategy="first", ignore_labels=[])
    compare_tc(tc, backend, [text, "Paris"], offset_mapping=[offsets, offsets], ignore_labels=[])


def test_tc_argument_errors(tc, backend):
    ours = ours_tc(tc, backend, short=True)
    with pytest.raises(ValueError, match="stride"):
        ours(TEXTS[0], stride=4, aggregation_strategy="none")
    with pytest.raises(ValueError, match="model_max_length"):
        ours(TEXTS[0], stride=SHORT_MAX_LENGTH, aggregation_strategy="simple")
    with pytest.raises(KeyError):
        ours(TEXTS[0], aggregation_strategy="longest")
    with pytest.raises(ValueError, match="At least one input"):
        ours([])
    with pytest.raises(TypeError):
        ours(TEXTS[0], grouped_entities=True)  # removed in transformers 5, as there


def test_tc_largest_score_difference():
    """Runs last in this section: the largest score difference seen (reported, bounded by SCORE_TOL)."""
    if TC_DIFFS:
        print(f"token classification: {len(TC_DIFFS)} scores, max |ours - transformers| = {max(TC_DIFFS):.2e}")
        assert max(TC_DIFFS) <= SCORE_TOL


# ------------------------------------------------------------------------------------------ question answering
@pytest.fixture(scope="module")
def qa_data():
    with open(QA_EXPECTATIONS, encoding="utf-8") as f:
        return json.load(f)


_QA_PIPELINES: dict = {}


def ours_qa(backend: str):
    """Our pipeline on the seed-built checkpoint (cached per backend)."""
    import mobilebert_lite as mbl
    from mobilebert_lite.weights import class_spec

    if backend not in _QA_PIPELINES:
        config = mbl.MobileBertConfig(**qa_checkpoint.QA_CONFIG)
        shapes, _ = class_spec(config, "MobileBertForQuestionAnswering")
        model = mbl.MobileBertForQuestionAnswering(config, qa_checkpoint.make_weights(shapes), backend=backend)
        tokenizer = mbl.MobileBertTokenizerFast(vocab_file=qa_checkpoint.VOCAB_FILE, **qa_checkpoint.TOKENIZER_KWARGS)
        _QA_PIPELINES[backend] = mbl.pipeline("question-answering", model=model, tokenizer=tokenizer)
    return _QA_PIPELINES[backend]


class _SquadExample:
    """What the pipeline reads of transformers' SquadExample."""

    def __init__(self, question, context):
        self.question_text, self.context_text = question, context


def _materialise(arg):
    if isinstance(arg, list):
        return [_materialise(a) for a in arg]
    if isinstance(arg, dict) and "squad_example" in arg:
        return _SquadExample(**arg["squad_example"])
    return arg


def _qa_case_names():
    with open(QA_EXPECTATIONS, encoding="utf-8") as f:
        return [case["name"] for case in json.load(f)["cases"]]


QA_DIFFS: list = []


def test_qa_checkpoint_rebuilds_recorded_weights(qa_data):
    import mobilebert_lite as mbl
    from mobilebert_lite.weights import class_spec

    recorded = qa_data["checkpoint"]
    assert recorded["config"] == qa_checkpoint.QA_CONFIG and recorded["seed"] == qa_checkpoint.SEED
    shapes, _ = class_spec(mbl.MobileBertConfig(**qa_checkpoint.QA_CONFIG), "MobileBertForQuestionAnswering")
    assert qa_checkpoint.weights_digest(qa_checkpoint.make_weights(shapes)) == recorded["weights_sha256"]


@pytest.mark.parametrize("name", _qa_case_names())
def test_qa_matches_transformers_4(qa_data, backend, name):
    case = next(c for c in qa_data["cases"] if c["name"] == name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # positional inputs are deprecated, as in transformers
        ours = ours_qa(backend)(*_materialise(case["args"]), **case["kwargs"])
    # JSON gives the ints and floats transformers returned; ours must be plain Python values too
    assert_same_results(ours, case["expected"], name, QA_DIFFS)


def test_qa_windows_are_really_used(qa_data):
    """The long cases do run several windows (else they would not test the window logic)."""
    pipe = ours_qa("reference")
    for name, minimum in (("long_windows", 5), ("long_windows_impossible", 8), ("very_long_default_windows", 2)):
        kwargs = next(c for c in qa_data["cases"] if c["name"] == name)["kwargs"]
        pre = {k: kwargs[k] for k in ("max_seq_len", "doc_stride") if k in kwargs}
        features = pipe._preprocess({"question": kwargs["question"], "context": kwargs["context"]}, **pre)
        assert len(features) >= minimum, (name, len(features))


def test_qa_batched_model_calls(qa_data, backend):
    """batch_size > 1: windows padded to max_seq_len by the tokenizer batch without further padding, so the
    recorded (unbatched) answers come out."""
    import mobilebert_lite as mbl

    single = ours_qa(backend)
    pipe = mbl.pipeline("question-answering", model=single.model, tokenizer=single.tokenizer, batch_size=3)
    case = next(c for c in qa_data["cases"] if c["name"] == "long_windows_padded")
    assert_same_results(pipe(**case["kwargs"]), case["expected"], "batch_size=3", QA_DIFFS)


def test_qa_argument_errors():
    pipe = ours_qa("reference")
    context = "My name is Wolfgang and I live in Berlin."
    with pytest.raises(ValueError, match="top_k"):
        pipe(question="Who?", context=context, top_k=0)
    with pytest.raises(ValueError, match="max_answer_len"):
        pipe(question="Who?", context=context, max_answer_len=0)
    with pytest.raises(ValueError, match="doc_stride"):
        pipe(question="Who?", context=context, max_seq_len=32, doc_stride=40)
    with pytest.raises(ValueError, match="same lengths"):
        pipe(question=["Who?", "Where?"], context=[context])
    with pytest.raises(ValueError, match="cannot be empty"), pytest.warns(FutureWarning):
        pipe({"question": "Who?", "context": ""})
    with pytest.raises(KeyError), pytest.warns(FutureWarning):
        pipe({"question": "Who?"})
    with pytest.raises(ValueError, match="Unknown arguments"):
        pipe(text="Who?")


def test_qa_largest_score_difference():
    if QA_DIFFS:
        print(f"question answering: {len(QA_DIFFS)} scores, max |ours - transformers 4| = {max(QA_DIFFS):.2e}")
        assert max(QA_DIFFS) <= SCORE_TOL
