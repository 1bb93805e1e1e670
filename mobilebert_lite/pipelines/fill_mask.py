"""fill-mask: transformers' FillMaskPipeline (v5) on MobileBertForMaskedLM.

Only the [MASK] positions go through the vocabulary projection (`model.logits_at`): the encoder runs as usual,
but the [positions, vocab_size] product is computed for the masked tokens instead of every token.
"""

from __future__ import annotations

import numpy as np

from .base import Pipeline, softmax


class FillMaskPipeline(Pipeline):
    """`fill(text_or_texts, top_k=5, targets=None, tokenizer_kwargs=None)`.

    One text -> a list of `top_k` dicts `{score, token, token_str, sequence}`, or one such list per [MASK] when the
    text has several masks (each mask scored independently, as in transformers). A list of texts -> a list of
    those results; a list holding one text returns that text's result, as transformers does."""

    model_class = "MobileBertForMaskedLM"

    def __call__(self, inputs, **kwargs):
        opts = self.options(kwargs)
        unknown = set(opts) - {"top_k", "targets", "tokenizer_kwargs"}
        if unknown:
            raise TypeError(f"fill-mask got unexpected argument(s): {', '.join(sorted(unknown))}")
        top_k = _check_top_k(opts.get("top_k", 5))
        target_ids = self.target_ids(opts["targets"]) if opts.get("targets") is not None else None
        if target_ids is not None:
            top_k = min(top_k, len(target_ids))  # transformers caps top_k at the number of targets

        texts = _as_text_list(inputs)
        encodings = [self._encode(text, opts.get("tokenizer_kwargs")) for text in texts]
        probs = self._mask_probabilities(encodings)
        results = [self._postprocess(enc["input_ids"], p, top_k, target_ids) for enc, p in zip(encodings, probs)]
        if isinstance(inputs, str) or len(results) == 1:
            return results[0]
        return results

    # ---------------------------------------------------------------------------------------------- preprocess
    def _encode(self, text: str, tokenizer_kwargs) -> dict:
        if tokenizer_kwargs is not None and not isinstance(tokenizer_kwargs, dict):
            raise TypeError(f"tokenizer_kwargs must be a dict, got {type(tokenizer_kwargs).__name__}")
        enc = self.tokenizer(text, **(tokenizer_kwargs or {}))
        enc = {k: list(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        if self.tokenizer.mask_token_id not in enc["input_ids"]:
            raise ValueError(f"fill-mask: no mask_token ({self.tokenizer.mask_token}) found on the input "
                             f"{_preview(text)}")
        return enc

    def target_ids(self, targets) -> list[int]:
        """Vocabulary ids of `targets` (a token or a list of tokens). A target missing from the vocabulary is
        tokenised and its first piece used; one that tokenises to nothing is dropped (both as in transformers)."""
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise TypeError(f"targets must be a string or a list of strings, got {targets!r}")
        vocab = self.tokenizer.get_vocab()
        ids = []
        for target in targets:
            id_ = vocab.get(target)
            if id_ is None:
                pieces = self.tokenizer(target, add_special_tokens=False, return_attention_mask=False,
                                        return_token_type_ids=False, max_length=1, truncation=True)["input_ids"]
                if not pieces:
                    continue
                id_ = pieces[0]
            if id_ not in ids:
                ids.append(int(id_))
        if not ids:
            raise ValueError("At least one target must be provided when passed.")
        return ids

    # --------------------------------------------------------------------------------------------------- model
    def _mask_probabilities(self, encodings: list[dict]) -> list[np.ndarray]:
        """Per encoding, the vocabulary probabilities [n_masks, vocab_size] at its [MASK] tokens. Groups of
        `batch_size` encodings of similar length are padded together, as Pipeline.run_model does."""
        mask_id = self.tokenizer.mask_token_id
        results: list = [None] * len(encodings)
        for group, batch in self.padded_groups(encodings):
            positions = [(row, t) for row, i in enumerate(group)
                         for t, token in enumerate(encodings[i]["input_ids"]) if token == mask_id]
            logits = self.model.logits_at(np.array(positions, dtype=np.int64), **batch)
            rows = np.array([row for row, _ in positions])
            for row, i in enumerate(group):
                results[i] = softmax(logits[rows == row], axis=-1)
        return results

    # --------------------------------------------------------------------------------------------- postprocess
    def _postprocess(self, input_ids: list[int], probs: np.ndarray, top_k: int, target_ids) -> list:
        ids = np.asarray(input_ids)
        masked = np.flatnonzero(ids == self.tokenizer.mask_token_id)
        single_mask = len(masked) == 1
        candidates = np.asarray(target_ids) if target_ids is not None else None
        result = []
        for position, p in zip(masked, probs):
            if candidates is not None:
                p = p[candidates]
            # stable sort: among equal probabilities the lower index comes first
            best = np.argsort(-p, kind="stable")[:top_k]
            row = []
            for k in best:
                token = int(candidates[k]) if candidates is not None else int(k)
                row.append({"score": float(p[k]), "token": token, "token_str": self.tokenizer.decode([token]),
                            "sequence": self._sequence(ids, position, token, single_mask)})
            result.append(row)
        return result[0] if single_mask else result

    def _sequence(self, ids: np.ndarray, position: int, token: int, single_mask: bool) -> str:
        """The input with one mask filled, [PAD] tokens removed; special tokens are kept with several masks,
        otherwise the other [MASK]s would vanish from the text (transformers' rule)."""
        filled = ids.copy()
        filled[position] = token
        filled = filled[filled != self.tokenizer.pad_token_id]
        return self.tokenizer.decode(filled.tolist(), skip_special_tokens=single_mask)


def _check_top_k(top_k) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    return int(top_k)


def _as_text_list(inputs) -> list[str]:
    if isinstance(inputs, str):
        return [inputs]
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, str) for t in inputs):
        return list(inputs)
    raise TypeError(f"fill-mask expects a string or a non-empty list of strings, got {_preview(inputs)}")


def _preview(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
