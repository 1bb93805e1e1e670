"""text-classification / sentiment-analysis: transformers' TextClassificationPipeline (v5).

Output shapes follow transformers, quirks included: without `top_k` in the call, a single string gives
`[{label, score}]` (a list of one dict), a `{"text", "text_pair"}` dict gives the bare dict, and a list gives one
dict per item; with `top_k` (an int, or None for every label) each input gives a list of dicts sorted by score.
"""

from __future__ import annotations

import numpy as np

from .base import Pipeline, sigmoid, softmax

FUNCTIONS = ("sigmoid", "softmax", "none")
_UNSET = object()  # `top_k=None` means "every label", so absence needs its own marker


class TextClassificationPipeline(Pipeline):
    """`classify(inputs, top_k=..., function_to_apply=None, **tokenizer_kwargs)`; inputs: a string, a
    `{"text": ..., "text_pair": ...}` dict, or a list of those."""

    model_class = "MobileBertForSequenceClassification"

    def __call__(self, inputs, **kwargs):
        opts = self.options(kwargs)
        top_k = opts.pop("top_k", _UNSET)
        function = self._function(opts.pop("function_to_apply", None))
        # transformers: any other argument is a tokenizer argument (e.g. truncation=True)
        tokenizer_kwargs = opts
        if top_k is not _UNSET and top_k is not None and (
                isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive int or None, got {top_k!r}")

        batched = isinstance(inputs, list)
        items = inputs if batched else [inputs]
        if batched and not items:
            raise ValueError("text-classification got an empty list of inputs")
        encodings = [self._encode(item, tokenizer_kwargs) for item in items]
        outputs = self.run_model(encodings)
        results = [self._postprocess(out["logits"], function, top_k) for out in outputs]
        if batched:
            return results
        # transformers wraps a single string's result in a list unless the call itself passed top_k
        if isinstance(inputs, str) and "top_k" not in kwargs:
            return [results[0]]
        return results[0]

    def _encode(self, item, tokenizer_kwargs: dict) -> dict:
        if isinstance(item, dict):
            if "text" not in item or set(item) - {"text", "text_pair"}:
                raise ValueError(f'a text pair must be a dict with keys "text" and optionally "text_pair", got '
                                 f"keys {sorted(item)}")
            enc = self.tokenizer(text=item["text"], text_pair=item.get("text_pair"), **tokenizer_kwargs)
        elif isinstance(item, str):
            enc = self.tokenizer(item, **tokenizer_kwargs)
        elif isinstance(item, (list, tuple)):
            raise ValueError('The pipeline received invalid inputs, if you are trying to send text pairs, you can '
                             'try to send a dictionary `{"text": "My text", "text_pair": "My pair"}` in order to '
                             "send a text pair.")
        else:
            raise TypeError(f"text-classification expects a string, a text-pair dict or a list of those, got "
                            f"{type(item).__name__}")
        return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}

    def _function(self, name) -> str:
        """The name given, else transformers' default from the config's problem_type and num_labels."""
        if name is None:
            config = self.model.config
            if config.problem_type == "regression":
                return "none"
            if config.problem_type == "multi_label_classification" or config.num_labels == 1:
                return "sigmoid"
            return "softmax"
        if not isinstance(name, str) or name.lower() not in FUNCTIONS:
            raise ValueError(f"Unrecognized `function_to_apply` argument: {name!r}; expected one of {FUNCTIONS}")
        return name.lower()

    def _postprocess(self, logits: np.ndarray, function: str, top_k) -> dict | list:
        logits = np.asarray(logits, dtype=np.float32)
        scores = sigmoid(logits) if function == "sigmoid" else softmax(logits) if function == "softmax" else logits
        id2label = self.model.config.id2label
        if top_k is _UNSET:  # transformers' legacy default: the best label as a bare dict
            best = int(np.argmax(scores))
            return {"label": id2label[best], "score": float(scores[best])}
        ranked = sorted(({"label": id2label[i], "score": float(s)} for i, s in enumerate(scores)),
                        key=lambda d: d["score"], reverse=True)
        return ranked if top_k is None else ranked[:top_k]

