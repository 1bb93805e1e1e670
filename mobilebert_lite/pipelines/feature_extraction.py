"""feature-extraction (transformers' FeatureExtractionPipeline) and sentence-embeddings (pooled, optionally
normalised vectors, with cosine similarity)."""

from __future__ import annotations

import numpy as np

from .base import Pipeline

POOLINGS = ("mean", "cls")


class FeatureExtractionPipeline(Pipeline):
    """`extract(texts, truncation=None, tokenize_kwargs=None, return_tensors=False)`.

    One text -> the last hidden state as nested lists [1, L, H] (an array with `return_tensors=True`); a list ->
    a list of those. Each result covers the text's own L tokens. (transformers with batch_size > 1 returns the
    batch's padded length instead; batch_size=1, the default, is identical.)"""

    model_class = "MobileBertModel"

    def __call__(self, inputs, **kwargs):
        opts = self.options(kwargs)
        unknown = set(opts) - {"truncation", "tokenize_kwargs", "return_tensors"}
        if unknown:
            raise TypeError(f"feature-extraction got unexpected argument(s): {', '.join(sorted(unknown))}")
        tokenize_kwargs = _tokenize_kwargs(opts.get("tokenize_kwargs"), opts.get("truncation"))
        texts = _as_text_list(inputs, self.task or "feature-extraction")
        encodings = [_encode(self.tokenizer, text, tokenize_kwargs) for text in texts]
        states = [out["last_hidden_state"][None] for out in self.run_model(encodings)]
        results = states if opts.get("return_tensors") else [s.tolist() for s in states]
        return results[0] if isinstance(inputs, str) else results


class SentenceEmbeddingPipeline(Pipeline):
    """`embed(texts, pooling="mean", normalize=True)`: one vector per text from MobileBertModel.

    `pooling="mean"` averages the last hidden state over the real tokens (attention mask 1, [CLS] and [SEP]
    included, as sentence-transformers does); `"cls"` takes the [CLS] token's state. `normalize=True` scales each
    vector to unit length, so that dot products are cosine similarities. A string gives a 1-D array [H]; a list
    gives [n, H] (float32). Texts longer than the tokenizer's model_max_length are truncated."""

    model_class = "MobileBertModel"

    def __call__(self, inputs, **kwargs):
        opts = self.options(kwargs)
        unknown = set(opts) - {"pooling", "normalize", "truncation", "tokenize_kwargs"}
        if unknown:
            raise TypeError(f"sentence-embeddings got unexpected argument(s): {', '.join(sorted(unknown))}")
        pooling = opts.get("pooling", "mean")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        normalize = opts.get("normalize", True)
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"normalize must be a bool, got {normalize!r}")
        tokenize_kwargs = _tokenize_kwargs(opts.get("tokenize_kwargs"), opts.get("truncation"))
        tokenize_kwargs.setdefault("truncation", True)  # over-long texts would not fit the position table

        texts = _as_text_list(inputs, self.task or "sentence-embeddings")
        encodings = [_encode(self.tokenizer, text, tokenize_kwargs) for text in texts]
        vectors = np.stack([_pool(out["last_hidden_state"], enc["attention_mask"], pooling)
                            for out, enc in zip(self.run_model(encodings), encodings)])
        if normalize:
            vectors = _unit_rows(vectors)
        vectors = vectors.astype(np.float32)  # pooled in float64, returned in the model's precision
        return vectors[0] if isinstance(inputs, str) else vectors

    def similarity(self, texts_a, texts_b=None, **kwargs) -> np.ndarray:
        """Cosine similarity matrix [len(a), len(b)] between the embeddings of two texts or lists of texts
        (`texts_b=None`: a against itself); a string on either side drops that axis."""
        a = self(texts_a, **kwargs)
        b = a if texts_b is None else self(texts_b, **kwargs)
        return similarity(a, b)


def similarity(a, b) -> np.ndarray | float:
    """Cosine similarities between the rows of `a` [n, H] and of `b` [m, H] -> [n, m]. A 1-D vector on either
    side drops that axis (two vectors give a float). Zero vectors have similarity 0."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    for name, x in (("a", a), ("b", b)):
        if x.ndim not in (1, 2):
            raise ValueError(f"similarity: {name} must be a vector [H] or a matrix [n, H], got shape {x.shape}")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"similarity: embedding sizes differ ({a.shape[-1]} vs {b.shape[-1]})")
    matrix = _unit_rows(np.atleast_2d(a)) @ _unit_rows(np.atleast_2d(b)).T
    if a.ndim == 1:
        matrix = matrix[0]
    if b.ndim == 1:
        matrix = matrix[..., 0]
    return float(matrix) if matrix.ndim == 0 else matrix


def _pool(hidden: np.ndarray, attention_mask, pooling: str) -> np.ndarray:
    if pooling == "cls":
        return hidden[0]
    # masked mean: padding positions (mask 0) must not dilute the average
    mask = np.asarray(attention_mask, dtype=np.float64)[:, None]
    return (hidden * mask).sum(axis=0) / max(mask.sum(), 1.0)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def _tokenize_kwargs(tokenize_kwargs, truncation) -> dict:
    if tokenize_kwargs is None:
        tokenize_kwargs = {}
    if not isinstance(tokenize_kwargs, dict):
        raise TypeError(f"tokenize_kwargs must be a dict, got {type(tokenize_kwargs).__name__}")
    tokenize_kwargs = dict(tokenize_kwargs)
    if truncation is not None:
        if "truncation" in tokenize_kwargs:
            raise ValueError("truncation parameter defined twice (given as keyword argument as well as in "
                             "tokenize_kwargs)")
        tokenize_kwargs["truncation"] = truncation
    return tokenize_kwargs


def _encode(tokenizer, text: str, tokenize_kwargs: dict) -> dict:
    enc = tokenizer(text, **tokenize_kwargs)
    return {k: list(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}


def _as_text_list(inputs, task: str) -> list[str]:
    if isinstance(inputs, str):
        return [inputs]
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, str) for t in inputs):
        return list(inputs)
    raise TypeError(f"{task} expects a string or a non-empty list of strings, got {type(inputs).__name__}")
