"""multiple-choice and next-sentence-prediction: sentence-pair heads that transformers has no pipeline for.

multiple-choice: `{"question": q, "choices": [c0, c1, ...]}` (or "prompt" for "question") -> the choices are
encoded as pairs (q, c_i), padded to each other (the model reads them as one [choices, length] block) and
scored by MobileBertForMultipleChoice; the scores are the softmax over the choices.

next-sentence-prediction: `{"text": a, "text_pair": b}` or `(a, b)` -> whether b continues a, with
P(is next) = softmax(logits)[0] (label 0 = "b continues a", as in BERT pre-training).
"""

from __future__ import annotations

import numpy as np

from .base import Pipeline, softmax


class MultipleChoicePipeline(Pipeline):
    """`choose(example_or_examples)` -> `{"scores": [...], "best": index, "choice": text}` per example.

    With batch_size > 1, examples with the same number of choices run together, padded to the longest."""

    model_class = "MobileBertForMultipleChoice"

    def __call__(self, inputs, **kwargs):
        opts = self.options(kwargs)
        if opts:
            raise TypeError(f"multiple-choice got unexpected argument(s): {', '.join(sorted(opts))}")
        batched = isinstance(inputs, (list, tuple))
        examples = [_parse_example(x, i if batched else None) for i, x in enumerate(inputs if batched else [inputs])]
        if not examples:
            raise ValueError("multiple-choice got an empty list of inputs")
        encodings = [self._encode(question, choices) for question, choices in examples]
        logits = self._run(encodings)
        results = []
        for (_, choices), row in zip(examples, logits):
            scores = softmax(row)
            best = int(np.argmax(scores))
            results.append({"scores": [float(s) for s in scores], "best": best, "choice": choices[best]})
        return results if batched else results[0]

    def _encode(self, question: str, choices: list[str]) -> dict:
        """[choices, length] id arrays: (question, choice_i) pairs padded to the longest pair."""
        enc = self.tokenizer([question] * len(choices), list(choices), padding=True, truncation=True)
        return {k: np.asarray(enc[k], dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}

    def _run(self, encodings: list[dict]) -> list[np.ndarray]:
        """Choice logits per example; groups of up to `batch_size` examples with equal choice counts, sorted by
        length, share one padded [group, choices, length] batch."""
        order = sorted(range(len(encodings)), key=lambda i: encodings[i]["input_ids"].shape)
        results: list = [None] * len(encodings)
        start = 0
        while start < len(order):
            n_choices = encodings[order[start]]["input_ids"].shape[0]
            group = [order[start]]
            while (len(group) < self.batch_size and start + len(group) < len(order)
                   and encodings[order[start + len(group)]]["input_ids"].shape[0] == n_choices):
                group.append(order[start + len(group)])
            start += len(group)
            length = max(encodings[i]["input_ids"].shape[1] for i in group)
            batch = {key: np.full((len(group), n_choices, length), self.tokenizer.pad_token_id if key == "input_ids"
                                  else 0, dtype=np.int64) for key in ("input_ids", "attention_mask", "token_type_ids")}
            for row, i in enumerate(group):
                for key in batch:
                    values = encodings[i][key]
                    batch[key][row, :, :values.shape[1]] = values
            logits = self.model(**batch)["logits"]
            for row, i in enumerate(group):
                results[i] = logits[row]
        return results


class NextSentencePredictionPipeline(Pipeline):
    """`predict(pair_or_pairs)` -> `{"is_next": bool, "score": P(text_pair follows text)}` per pair; a pair is
    `{"text": a, "text_pair": b}` or a tuple `(a, b)`, several pairs come as a list."""

    model_class = "MobileBertForNextSentencePrediction"

    def __call__(self, inputs, **kwargs):
        opts = self.options(kwargs)
        if opts:
            raise TypeError(f"next-sentence-prediction got unexpected argument(s): {', '.join(sorted(opts))}")
        batched = isinstance(inputs, list)
        pairs = [_parse_pair(x, i if batched else None) for i, x in enumerate(inputs if batched else [inputs])]
        if not pairs:
            raise ValueError("next-sentence-prediction got an empty list of inputs")
        encodings = []
        for a, b in pairs:
            enc = self.tokenizer(a, b, truncation=True)
            encodings.append({k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")})
        results = []
        for out in self.run_model(encodings):
            probs = softmax(out["logits"])
            results.append({"is_next": bool(probs[0] >= probs[1]), "score": float(probs[0])})
        return results if batched else results[0]


def _where(index) -> str:
    return "input" if index is None else f"input {index}"


def _parse_example(example, index) -> tuple[str, list[str]]:
    if not isinstance(example, dict):
        raise TypeError(f'multiple-choice: {_where(index)} must be a dict {{"question": str, "choices": [str, ...]}}, '
                        f"got {type(example).__name__}")
    keys = [k for k in ("question", "prompt") if k in example]
    if len(keys) != 1 or "choices" not in example or set(example) - {"question", "prompt", "choices"}:
        raise ValueError(f'multiple-choice: {_where(index)} needs exactly the keys "question" (or "prompt") and '
                         f'"choices", got {sorted(example)}')
    question, choices = example[keys[0]], example["choices"]
    if not isinstance(question, str):
        raise TypeError(f"multiple-choice: {_where(index)}: {keys[0]} must be a string, got {type(question).__name__}")
    if not isinstance(choices, (list, tuple)) or not choices or not all(isinstance(c, str) for c in choices):
        raise ValueError(f"multiple-choice: {_where(index)}: choices must be a non-empty list of strings, got "
                         f"{choices!r}")
    return question, list(choices)


def _parse_pair(pair, index) -> tuple[str, str]:
    if isinstance(pair, dict):
        if set(pair) != {"text", "text_pair"}:
            raise ValueError(f'next-sentence-prediction: {_where(index)} needs the keys "text" and "text_pair", got '
                             f"{sorted(pair)}")
        pair = (pair["text"], pair["text_pair"])
    elif not isinstance(pair, tuple) or len(pair) != 2:
        raise TypeError(f'next-sentence-prediction: {_where(index)} must be {{"text": a, "text_pair": b}} or a tuple '
                        f"(a, b), got {type(pair).__name__}")
    if not all(isinstance(s, str) for s in pair):
        raise TypeError(f"next-sentence-prediction: {_where(index)}: both texts must be strings, got {pair!r}")
    return pair
