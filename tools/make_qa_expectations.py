"""Record transformers 4.x QuestionAnsweringPipeline outputs for tests/test_pipelines_token_qa.py.

The question-answering pipeline left transformers in v5, so the expectations come from the last v4 release, run
once in a throwaway environment and committed as tests/data/qa_expectations.json:

    python -m venv /tmp/tfenv && source /tmp/tfenv/bin/activate
    pip install transformers==4.57.6 torch==2.13.0 numpy      # torch pinned; CPU build
    python tools/make_qa_expectations.py                       # from the repository root

The committed file was produced with transformers 4.57.6, tokenizers 0.22.2, torch 2.13.0+cpu and NumPy 2.4.6
(the versions are also stored in the file). The model is the tiny MobileBertForQuestionAnswering of
tests/qa_checkpoint.py, rebuilt from a seed with NumPy (nothing large is committed); its weights' SHA-256 is stored
too, and the test checks that it rebuilds the same weights. The tokenizer is MobileBertTokenizerFast on the bundled
bert-base-uncased vocabulary (mobilebert_lite/data/vocab_uncased.txt), do_lower_case=True, model_max_length=512.

Each case is a pipeline call, stored as positional arguments and keyword arguments (a {"squad_example": ...}
item stands for a SquadExample object) with the output. Every recorded answer other than the
handle_impossible_answer one has a positive score: zero-score spans only fill top-k lists when a window has
too few candidates, and their order then depends on NumPy's partition internals (CPU-specific), which the cases
avoid.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import qa_checkpoint  # noqa: E402  (tests/ on the path first)

OUT = os.path.join(ROOT, "tests", "data", "qa_expectations.json")

SHORT = "My name is Wolfgang and I live in Berlin. It is a big city with many people, parks and old museums."
ACCENTS = ("Zürich's Café Müller — opened in 1894 by Jürgen Ångström — sells ☃-shaped cakes 🤗 for CHF 5.50 "
           "(approx. $6), and its naïve façade faces the Limmat river near the Grossmünster church.")
PUNCT = ("Dr. O'Neil-Smith (born 12/03/1970) wrote: \"e-mail me at j.smith@example.com!\" — then left; "
         "the U.S.A.-based firm, Acme & Co., hired him in 2001... He now lives in São Paulo, Brazil.")

_TOPICS = [
    "The river Elbe flows through Dresden and Hamburg before it reaches the North Sea near Cuxhaven.",
    "Marie Curie was born in Warsaw in 1867 and later moved to Paris, where she studied physics.",
    "The old library holds more than two million books, maps and handwritten letters from the monastery.",
    "In 1969 the Apollo 11 mission landed on the Moon, and Neil Armstrong walked on its surface.",
    "Coffee beans are roasted at about two hundred degrees, which releases oils and changes their colour.",
    "The orchestra rehearsed Beethoven's ninth symphony every Tuesday evening in the town hall.",
    "Glaciers in the Alps have lost nearly half of their volume since the middle of the last century.",
    "A tiny village called Hallstatt lies on the western shore of a lake in the Austrian mountains.",
]


def long_context(repeats: int) -> str:
    """A deterministic multi-sentence context; `repeats` copies of the topic sentences, numbered."""
    sentences = []
    for r in range(repeats):
        for i, sentence in enumerate(_TOPICS):
            sentences.append(f"Part {r * len(_TOPICS) + i + 1}: {sentence}")
    return " ".join(sentences)


LONG = long_context(2)  # ~380 tokens: several windows at max_seq_len 64
VERY_LONG = long_context(3)  # ~560 tokens: two windows at the default max_seq_len 384 / doc_stride 128


def cases() -> list[dict]:
    """(name, args, kwargs) of every recorded call."""
    q_live = "Where do I live?"
    return [
        dict(name="short", args=[], kwargs=dict(question=q_live, context=SHORT)),
        dict(name="short_top3", args=[], kwargs=dict(question=q_live, context=SHORT, top_k=3)),
        dict(name="short_impossible", args=[],
             kwargs=dict(question="What is my name?", context=SHORT, handle_impossible_answer=True, top_k=2)),
        dict(name="short_impossible_top1", args=[],
             kwargs=dict(question="What is my name?", context=SHORT, handle_impossible_answer=True)),
        dict(name="short_unaligned", args=[],
             kwargs=dict(question=q_live, context=SHORT, align_to_words=False, top_k=4)),
        dict(name="short_max_answer_len_1", args=[],
             kwargs=dict(question=q_live, context=SHORT, max_answer_len=1, top_k=3)),
        dict(name="short_max_answer_len_3", args=[],
             kwargs=dict(question=q_live, context=SHORT, max_answer_len=3, top_k=2)),
        dict(name="short_max_answer_len_30", args=[],
             kwargs=dict(question=q_live, context=SHORT, max_answer_len=30, top_k=2)),
        dict(name="accents", args=[],
             kwargs=dict(question="Who opened the café?", context=ACCENTS, top_k=3)),
        dict(name="accents_unaligned", args=[],
             kwargs=dict(question="What does it sell?", context=ACCENTS, top_k=3, align_to_words=False)),
        dict(name="punctuation", args=[],
             kwargs=dict(question="What is his e-mail address?", context=PUNCT, top_k=5)),
        dict(name="punctuation_unaligned", args=[],
             kwargs=dict(question="Where does he live now?", context=PUNCT, top_k=5, align_to_words=False,
                         max_answer_len=4)),
        dict(name="long_windows", args=[],
             kwargs=dict(question="Where was Marie Curie born?", context=LONG, max_seq_len=64, doc_stride=16)),
        dict(name="long_windows_top5", args=[],
             kwargs=dict(question="When did Apollo 11 land on the Moon?", context=LONG, max_seq_len=64,
                         doc_stride=24, top_k=5)),
        dict(name="long_windows_impossible", args=[],
             kwargs=dict(question="Which river flows through Dresden?", context=LONG, max_seq_len=48,
                         doc_stride=12, top_k=3, handle_impossible_answer=True)),
        dict(name="long_windows_unaligned", args=[],
             kwargs=dict(question="What is roasted?", context=LONG, max_seq_len=80, doc_stride=30, top_k=4,
                         align_to_words=False, max_answer_len=5)),
        dict(name="long_windows_padded", args=[],
             kwargs=dict(question="What did the orchestra rehearse?", context=LONG, max_seq_len=96, doc_stride=32,
                         padding="max_length", top_k=2)),
        dict(name="very_long_default_windows", args=[],
             kwargs=dict(question="Where is Hallstatt?", context=VERY_LONG, top_k=3)),
        dict(name="batched_lists", args=[],
             kwargs=dict(question=[q_live, "Who opened the café?", "Where does he live now?"],
                         context=[SHORT, ACCENTS, PUNCT], top_k=2)),
        dict(name="batched_one_context", args=[],
             kwargs=dict(question=["What holds two million books?", "Who walked on the Moon?"], context=LONG,
                         max_seq_len=64, doc_stride=20)),
        dict(name="batched_single_item_list", args=[], kwargs=dict(question=[q_live], context=[SHORT])),
        dict(name="positional_pair", args=[q_live, SHORT], kwargs=dict(top_k=2)),
        dict(name="positional_dict", args=[{"question": "What is the firm called?", "context": PUNCT}], kwargs={}),
        dict(name="positional_dicts", args=[[{"question": q_live, "context": SHORT},
                                             {"question": "Who walked on the Moon?", "context": LONG}]],
             kwargs=dict(max_seq_len=72, doc_stride=24, top_k=2)),
        dict(name="squad_examples", args=[[{"squad_example": {"question": "Which lake?", "context": LONG}},
                                            {"squad_example": {"question": "Who was born in Warsaw?",
                                                               "context": LONG}}]],
             kwargs=dict(max_seq_len=64, doc_stride=16, top_k=2)),
    ]


def build_hf_pipeline():
    import torch
    import transformers

    config = transformers.MobileBertConfig(**qa_checkpoint.QA_CONFIG, attn_implementation="eager")
    model = transformers.MobileBertForQuestionAnswering(config).eval()
    state = model.state_dict()
    weights = qa_checkpoint.make_weights({qa_checkpoint.canonical_name(k): tuple(v.shape) for k, v in state.items()})
    model.load_state_dict({k: torch.from_numpy(weights[qa_checkpoint.canonical_name(k)]) for k in state},
                          strict=True)
    tokenizer = transformers.MobileBertTokenizerFast(vocab_file=qa_checkpoint.VOCAB_FILE,
                                                     **qa_checkpoint.TOKENIZER_KWARGS)
    pipe = transformers.pipeline("question-answering", model=model, tokenizer=tokenizer)
    return pipe, qa_checkpoint.weights_digest(weights)


def _materialise(arg):
    from transformers import SquadExample

    if isinstance(arg, list):
        return [_materialise(a) for a in arg]
    if isinstance(arg, dict) and "squad_example" in arg:
        item = arg["squad_example"]
        return SquadExample(None, item["question"], item["context"], None, None, None)
    return arg


def _answers(result) -> list:
    items = result if isinstance(result, list) else [result]
    return [a for x in items for a in (x if isinstance(x, list) else [x])]


def main() -> None:
    import tokenizers
    import torch
    import transformers

    torch.set_num_threads(1)
    pipe, digest = build_hf_pipeline()
    recorded = []
    for case in cases():
        result = pipe(*[_materialise(a) for a in case["args"]], **case["kwargs"])
        for answer in _answers(result):
            assert answer["answer"] == "" or answer["score"] > 0, (case["name"], answer)
        recorded.append({**case, "expected": result})
        print(case["name"], json.dumps(result, ensure_ascii=False)[:160])
    data = {
        "produced_by": "tools/make_qa_expectations.py",
        "versions": {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "torch": torch.__version__, "numpy": np.__version__},
        "checkpoint": {"config": qa_checkpoint.QA_CONFIG, "seed": qa_checkpoint.SEED,
                       "span_head_gain": qa_checkpoint.SPAN_HEAD_GAIN, "weights_sha256": digest,
                       "tokenizer": qa_checkpoint.TOKENIZER_KWARGS},
        "cases": recorded,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(recorded)} cases to {OUT}")


if __name__ == "__main__":
    main()
