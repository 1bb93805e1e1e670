"""question-answering: transformers 4.x's QuestionAnsweringPipeline (the task left transformers in v5).

A port of `transformers/pipelines/question_answering.py` as of 4.57 (fast-tokenizer path), quirks included:

* the pair (question, context) is tokenized with `truncation="only_second"`, `max_length=max_seq_len` and
  `stride=doc_stride` (the overlap in tokens between windows), every window is run and decoded on its own;
* per window, the question and special tokens get logits -10000 and are excluded from spans, but [CLS] stays in the
  softmax (its probability product is the "impossible answer" score); span scores are p_start * p_end in float32;
* `top_k * 2 + 10` spans are kept per window when answers are widened to whole words (`align_to_words`), since
  several spans can widen to the same word; answers with the same text (case-insensitive) are merged by summing
  their scores, the first one keeping its start/end;
* one example gives its answer dict (or a list when several answers remain), several examples a list of those.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np

from .base import Pipeline

_PREPROCESS = ("padding", "doc_stride", "max_question_len", "max_seq_len")


class SquadExample:
    """The question and context of one input (transformers' SquadExample keeps more, which the fast path never
    uses)."""

    def __init__(self, qas_id, question_text: str, context_text: str, answer_text=None, start_position_character=None,
                 title=None, answers=None, is_impossible: bool = False):
        self.qas_id, self.question_text, self.context_text = qas_id, question_text, context_text
        self.answer_text, self.title, self.is_impossible = answer_text, title, is_impossible
        self.answers = answers or []

    def __repr__(self) -> str:
        return f"SquadExample(question_text={self.question_text!r}, context_text={self.context_text!r})"


class QuestionAnsweringPipeline(Pipeline):
    """`qa(question=..., context=..., top_k=1, doc_stride=None, max_answer_len=15, max_seq_len=None,
    max_question_len=64, handle_impossible_answer=False, align_to_words=True)`; question/context: strings or
    lists of strings; or positional `{"question", "context"}` dicts / SquadExample-like objects (with
    `question_text` and `context_text`). Returns `{score, start, end, answer}` (start/end: character offsets in
    the context), a list of those when top_k > 1, and one result per example for several examples."""

    model_class = "MobileBertForQuestionAnswering"

    def __init__(self, model, tokenizer, batch_size: int = 1, task: str = "", **defaults):
        super().__init__(model, tokenizer, batch_size=batch_size, task=task, **defaults)
        self._default_params = self._sanitize(**defaults)

    @staticmethod
    def create_sample(question, context):
        """One SquadExample (or a list of them for lists of questions and contexts)."""
        if isinstance(question, list):
            return [SquadExample(None, q, c) for q, c in zip(question, context)]
        return SquadExample(None, question, context)

    def __call__(self, *args, **kwargs):
        if args:
            warnings.warn("Passing a list of SQuAD examples to the pipeline is deprecated and will be removed in "
                          "v5. Inputs should be passed using the `question` and `context` keyword arguments "
                          "instead.", FutureWarning, stacklevel=2)
        examples = _parse_inputs(*args, **kwargs)
        pre, post = self._default_params
        call_pre, call_post = self._sanitize(**kwargs)
        pre, post = {**pre, **call_pre}, {**post, **call_post}

        features = [self._preprocess(example, **pre) for example in examples]
        flat = [f for feats in features for f in feats]
        outputs = iter(self.run_model([f["model_inputs"] for f in flat]))
        for f in flat:
            out = next(outputs)
            f["start"], f["end"] = out["start_logits"], out["end_logits"]
        results = [self._postprocess(example, feats, **post) for example, feats in zip(examples, features)]
        return results[0] if len(results) == 1 else results

    # --------------------------------------------------------------------------------------------- arguments
    @staticmethod
    def _sanitize(padding=None, topk=None, top_k=None, doc_stride=None, max_answer_len=None, max_seq_len=None,
                  max_question_len=None, handle_impossible_answer=None, align_to_words=None, **kwargs):
        """transformers' `_sanitize_parameters` (other keywords, e.g. question/context, are ignored as there)."""
        pre = {name: value for name, value in (("padding", padding), ("doc_stride", doc_stride),
                                               ("max_question_len", max_question_len), ("max_seq_len", max_seq_len))
               if value is not None}
        post: dict = {}
        if topk is not None and top_k is None:
            warnings.warn("topk parameter is deprecated, use top_k instead", UserWarning, stacklevel=3)
            top_k = topk
        if top_k is not None:
            if top_k < 1:
                raise ValueError(f"top_k parameter should be >= 1 (got {top_k})")
            post["top_k"] = top_k
        if max_answer_len is not None:
            if max_answer_len < 1:
                raise ValueError(f"max_answer_len parameter should be >= 1 (got {max_answer_len}")
            post["max_answer_len"] = max_answer_len
        if handle_impossible_answer is not None:
            post["handle_impossible_answer"] = handle_impossible_answer
        if align_to_words is not None:
            post["align_to_words"] = align_to_words
        return pre, post

    # ------------------------------------------------------------------------------------------ preprocess
    def _preprocess(self, example, padding="do_not_pad", doc_stride=None, max_question_len=64,
                    max_seq_len=None) -> list[dict]:
        """The windows of one example: model inputs, p_mask (1 = cannot be in the answer) and the encoding."""
        if isinstance(example, dict):
            example = SquadExample(None, example["question"], example["context"])
        if max_seq_len is None:
            max_seq_len = min(self.tokenizer.model_max_length, 384)
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise ValueError(f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})")
        # max_question_len only matters to transformers' slow-tokenizer path
        question_first = self.tokenizer.padding_side == "right"
        encoded = self.tokenizer(
            text=example.question_text if question_first else example.context_text,
            text_pair=example.context_text if question_first else example.question_text,
            padding=padding, truncation="only_second" if question_first else "only_first", max_length=max_seq_len,
            stride=doc_stride, return_token_type_ids=True, return_overflowing_tokens=True,
            return_offsets_mapping=True, return_special_tokens_mask=True)
        features = []
        for span in range(len(encoded["input_ids"])):
            input_ids = encoded["input_ids"][span]
            # question and special tokens cannot be in the answer (transformers masks nothing for context-first)
            p_mask = [int(tok != 1) if question_first else 0 for tok in encoded.sequence_ids(span)]
            # [CLS] stays unmasked: its probability is the "no answer" score
            if self.tokenizer.cls_token_id is not None:
                for cls_index in np.nonzero(np.array(input_ids) == self.tokenizer.cls_token_id)[0]:
                    p_mask[cls_index] = 0
            model_inputs = {k: encoded[k][span] for k in ("input_ids", "token_type_ids", "attention_mask")
                            if k in encoded}
            features.append({"model_inputs": model_inputs, "p_mask": p_mask,
                             "encoding": encoded.encodings[span]})
        return features

    # ----------------------------------------------------------------------------------------- postprocess
    def _postprocess(self, example, features: list[dict], top_k=1, handle_impossible_answer=False,
                     max_answer_len=15, align_to_words=True):
        min_null_score = 1000000  # large and positive
        answers: list[dict] = []
        question_first = self.tokenizer.padding_side == "right"
        sequence_index = 1 if question_first else 0
        context = example.context_text
        for feature in features:
            # a batch axis of one, as transformers' arrays have (decode_spans relies on it)
            start = np.asarray(feature["start"], dtype=np.float32)[None]
            end = np.asarray(feature["end"], dtype=np.float32)[None]
            p_mask = np.array(feature["p_mask"], dtype=np.int64)[None]
            attention_mask = np.asarray(feature["model_inputs"]["attention_mask"], dtype=np.int64)[None]
            # some candidates disappear when widened to words, so ask for more
            pre_topk = top_k * 2 + 10 if align_to_words else top_k
            starts, ends, scores, min_null_score = select_starts_ends(
                start, end, p_mask, attention_mask, min_null_score, pre_topk, handle_impossible_answer,
                max_answer_len)
            # left padding shifts the token indices, as transformers corrects for
            offset = 0
            if self.tokenizer.padding_side == "left":
                offset = int((np.asarray(feature["model_inputs"]["input_ids"]) == self.tokenizer.pad_token_id).sum())
            for s, e, score in zip(starts, ends, scores):
                start_index, end_index = get_indices(feature["encoding"], s - offset, e - offset, sequence_index,
                                                     align_to_words)
                target_answer = context[start_index:end_index]
                answer = _find_answer(answers, target_answer)
                if answer:
                    answer["score"] += score.item()
                else:
                    answers.append({"score": score.item(), "start": start_index, "end": end_index,
                                    "answer": context[start_index:end_index]})
        if handle_impossible_answer:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
        if len(answers) == 1:
            return answers[0]
        return answers


def decode_spans(start: np.ndarray, end: np.ndarray, topk: int, max_answer_len: int, undesired_tokens: np.ndarray):
    """The `topk` best (start, end) token spans of at most `max_answer_len` tokens, by p_start * p_end, then
    those whose start and end are allowed (transformers' decode_spans, its index quirk included: the allowed set
    is `undesired_tokens.nonzero()` of a [1, L] array, whose row indices make token 0 always allowed)."""
    if start.ndim == 1:
        start = start[None]
    if end.ndim == 1:
        end = end[None]
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))
    # zero the spans with end < start or longer than max_answer_len
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    scores_flat = candidates.flatten()
    if topk == 1:
        idx_sort = [np.argmax(scores_flat)]
    elif len(scores_flat) < topk:
        idx_sort = np.argsort(-scores_flat)
    else:
        idx = np.argpartition(-scores_flat, topk)[0:topk]
        idx_sort = idx[np.argsort(-scores_flat[idx])]
    starts, ends = np.unravel_index(idx_sort, candidates.shape)[1:]
    desired_spans = np.isin(starts, undesired_tokens.nonzero()) & np.isin(ends, undesired_tokens.nonzero())
    starts = starts[desired_spans]
    ends = ends[desired_spans]
    scores = candidates[0, starts, ends]
    return starts, ends, scores


def select_starts_ends(start, end, p_mask, attention_mask, min_null_score=1000000, top_k=1,
                       handle_impossible_answer=False, max_answer_len=15):
    """Softmax the start/end logits of one window over its allowed tokens and [CLS], update the no-answer score
    (p_start[CLS] * p_end[CLS]), and decode the best spans (transformers' select_starts_ends)."""
    # despite the name (transformers'), 1 marks the tokens that may be part of an answer
    undesired_tokens = np.abs(np.array(p_mask) - 1)
    if attention_mask is not None:
        undesired_tokens = undesired_tokens & attention_mask
    undesired_tokens_mask = undesired_tokens == 0.0
    start = np.where(undesired_tokens_mask, -10000.0, start)
    end = np.where(undesired_tokens_mask, -10000.0, end)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, (start[0, 0] * end[0, 0]).item())
    # [CLS] is never part of a span (its mass still normalised the softmax)
    start[0, 0] = end[0, 0] = 0.0
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, undesired_tokens)
    return starts, ends, scores, min_null_score


def get_indices(enc, s: int, e: int, sequence_index: int, align_to_words: bool) -> tuple[int, int]:
    """Character span of tokens s..e: widened to whole words of the context (token_to_word, word_to_chars) when
    align_to_words, else the token offsets; a token without a word ([CLS]) falls back to offsets, as in
    transformers (where word_to_chars(None) raises)."""
    if align_to_words:
        start_word, end_word = enc.words[s], enc.words[e]
        start_chars = _word_to_chars(enc, start_word, sequence_index)
        end_chars = _word_to_chars(enc, end_word, sequence_index)
        if start_chars is not None and end_chars is not None:
            return start_chars[0], end_chars[1]
    return enc.offsets[s][0], enc.offsets[e][1]


def _word_to_chars(enc, word, sequence_index: int) -> tuple[int, int] | None:
    """The Rust Encoding's word_to_chars: the character span of word `word` of sequence `sequence_index` within
    this window (None when the word has no token there)."""
    if word is None:
        return None
    span = enc.word_to_tokens(word, sequence_index)
    if span is None or span[1] == 0:
        return None
    return enc.offsets[span[0]][0], enc.offsets[span[1] - 1][1]


def _find_answer(answers: list[dict], target: str) -> dict | None:
    for answer in answers:
        if answer["answer"].lower() == target.lower():
            return answer
    return None


# ----------------------------------------------------------------------------------------------- inputs
def _normalize(item):
    """A SquadExample(-like object) or a {"question", "context"} dict -> an example."""
    if hasattr(item, "question_text") and hasattr(item, "context_text"):
        return item
    if isinstance(item, dict):
        for k in ("question", "context"):
            if k not in item:
                raise KeyError("You need to provide a dictionary with keys {question:..., context:...}")
            if item[k] is None:
                raise ValueError(f"`{k}` cannot be None")
            if isinstance(item[k], str) and len(item[k]) == 0:
                raise ValueError(f"`{k}` cannot be empty")
        return QuestionAnsweringPipeline.create_sample(**item)
    raise ValueError(f"{item} argument needs to be of type (SquadExample, dict)")


def _parse_inputs(*args, **kwargs) -> list:
    """transformers' QuestionAnsweringArgumentHandler: the list of examples the arguments describe."""
    if args:
        if len(args) == 1:
            inputs = args[0]
        elif len(args) == 2 and {type(el) for el in args} == {str}:
            inputs = [{"question": args[0], "context": args[1]}]
        else:
            inputs = list(args)
    elif "X" in kwargs:
        warnings.warn("Passing the `X` argument to the pipeline is deprecated and will be removed in v5. Inputs "
                      "should be passed using the `question` and `context` keyword arguments instead.",
                      FutureWarning, stacklevel=3)
        inputs = kwargs["X"]
    elif "data" in kwargs:
        warnings.warn("Passing the `data` argument to the pipeline is deprecated and will be removed in v5. Inputs "
                      "should be passed using the `question` and `context` keyword arguments instead.",
                      FutureWarning, stacklevel=3)
        inputs = kwargs["data"]
    elif "question" in kwargs and "context" in kwargs:
        question, context = kwargs["question"], kwargs["context"]
        if isinstance(question, list) and isinstance(context, str):
            inputs = [{"question": q, "context": context} for q in question]
        elif isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise ValueError("Questions and contexts don't have the same lengths")
            inputs = [{"question": q, "context": c} for q, c in zip(question, context)]
        elif isinstance(question, str) and isinstance(context, str):
            inputs = [{"question": question, "context": context}]
        else:
            raise ValueError("Arguments can't be understood")
    else:
        raise ValueError(f"Unknown arguments {kwargs}")
    if isinstance(inputs, dict):
        inputs = [inputs]
    elif isinstance(inputs, Iterable):  # a generator is read whole (transformers would stream it)
        inputs = list(inputs)
    else:
        raise ValueError(f"Invalid arguments {kwargs}")
    return [_normalize(item) for item in inputs]
