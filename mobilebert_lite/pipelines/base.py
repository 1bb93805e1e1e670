"""What every pipeline shares: loading the model and tokenizer, batching by length, calling the model.

Padding and MobileBERT: the trigram embedding makes [PAD] tokens real neighbours, so a sequence padded inside a
batch gives slightly different outputs than alone (transformers behaves the same). `batch_size=1` (the default, as
in transformers' pipelines) runs every sequence unpadded: exact per-sequence results. `batch_size > 1` sorts the
sequences by length and pads each group of `batch_size` to its longest member, which limits padding; results
then depend slightly on the batch, as in transformers with the same batch size.
"""

from __future__ import annotations

import os

import numpy as np


def load_model_and_tokenizer(model, tokenizer, model_class: str, *, backend=None, num_threads=None, quantize=None):
    """(model instance, tokenizer instance) from directories, hub ids or instances."""
    import mobilebert_lite as mbl

    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        model = getattr(mbl, model_class).from_pretrained(path, backend=backend, num_threads=num_threads,
                                                          quantize=quantize)
    elif quantize is not None and getattr(model, "quantize", None) != quantize:
        raise ValueError(f"quantize={quantize!r} applies when loading a model directory; this model instance was "
                         f"loaded with quantize={getattr(model, 'quantize', None)!r}")
        if tokenizer is None:
            tokenizer = path
    if isinstance(tokenizer, (str, os.PathLike)):
        tokenizer = mbl.MobileBertTokenizerFast.from_pretrained(tokenizer)
    elif tokenizer is None:
        tokenizer = mbl.MobileBertTokenizerFast()
    return model, tokenizer


class Pipeline:
    """Base class: subclasses set `model_class` and implement `__call__` with transformers' arguments."""

    model_class = "MobileBertModel"

    def __init__(self, model, tokenizer, batch_size: int = 1, task: str = "", **defaults):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.model, self.tokenizer, self.batch_size, self.task = model, tokenizer, batch_size, task
        self.defaults = defaults

    def options(self, kwargs: dict) -> dict:
        """Call arguments over the defaults given at construction."""
        return {**self.defaults, **kwargs}

    def padded_groups(self, encodings: list[dict]):
        """Yields (indices, batch) for groups of `batch_size` encodings of similar length: the indices into
        `encodings` and a dict of padded int64 arrays (input_ids, attention_mask, token_type_ids)."""
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i]["input_ids"]))
        pad_id = self.tokenizer.pad_token_id
        for start in range(0, len(order), self.batch_size):
            group = order[start:start + self.batch_size]
            L = max(len(encodings[i]["input_ids"]) for i in group)
            batch = {key: np.full((len(group), L), pad_id if key == "input_ids" else 0, dtype=np.int64)
                     for key in ("input_ids", "attention_mask", "token_type_ids")}
            for row, i in enumerate(group):
                n = len(encodings[i]["input_ids"])
                for key in batch:
                    values = encodings[i].get(key)
                    batch[key][row, :n] = values if values is not None else (1 if key == "attention_mask" else 0)
            yield group, batch

    def run_model(self, encodings: list[dict], **model_kwargs) -> list:
        """Run the model on a list of single-sequence encodings (dicts of 1-D int lists/arrays: input_ids,
        attention_mask, token_type_ids); returns one output (a dict of arrays without the batch axis, trimmed to
        the sequence's own length) per encoding, in input order. Groups of `batch_size` sequences of similar
        length are padded together; batch_size=1 runs each sequence alone, unpadded."""
        results: list = [None] * len(encodings)
        per_token = _PER_TOKEN | ({"logits"} if _has_token_logits(self.model) else set())
        for group, batch in self.padded_groups(encodings):
            out = self.model(**batch, **model_kwargs)
            for row, i in enumerate(group):
                n = len(encodings[i]["input_ids"])
                results[i] = {k: (v[row][:n] if k in per_token else v[row])
                              for k, v in out.items() if isinstance(v, np.ndarray)}
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, model={self.model!r}, batch_size={self.batch_size})"


# outputs with one entry per token, trimmed to the sequence's own length
_PER_TOKEN = {"last_hidden_state", "start_logits", "end_logits", "prediction_logits"}


def _has_token_logits(model) -> bool:
    """`logits` is per token for masked-LM and token-classification models, per sequence otherwise."""
    return any(c.__name__ in ("MobileBertForMaskedLM", "MobileBertForTokenClassification")
               for c in type(model).__mro__)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
