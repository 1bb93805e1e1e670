"""Validation and normalisation of model inputs: every bad input becomes a ValueError/TypeError naming it."""

from __future__ import annotations

import numpy as np

from .config import MobileBertConfig


def _as_array(name: str, value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "numpy") and callable(value.numpy):  # torch / tf tensors
        return np.asarray(value.numpy())
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array or nested list of numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except ValueError:
        raise ValueError(f"{name} is ragged: every sequence in a batch must have the same length (pad them)") from None
    if arr.dtype == object:
        raise ValueError(f"{name} is ragged or holds non-numeric items: every sequence must have the same length")
    return arr


def _index_array(name: str, value, shape=None) -> np.ndarray:
    arr = _as_array(name, value)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape} but input_ids has shape {shape}")
    return arr.astype(np.int64, copy=False)


def _check_range(name: str, arr: np.ndarray, limit: int, limit_name: str) -> None:
    if arr.size and (arr.min() < 0 or arr.max() >= limit):
        bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
        raise ValueError(f"{name} holds {bad}, out of range [0, {limit}) ({limit_name}={limit})")


def prepare_inputs(cfg: MobileBertConfig, input_ids=None, attention_mask=None, token_type_ids=None,
                   position_ids=None, inputs_embeds=None, rank: int = 2) -> dict:
    """Check and convert inputs; `rank` is 2 for [B, L] inputs and 3 for multiple choice [B, C, L].

    Returns a dict of arrays flattened to [N, L] (int64 ids, float32 embeddings, bool mask) plus `shape`,
    the leading shape of the original inputs.
    """
    if (input_ids is None) == (inputs_embeds is None):
        raise ValueError("You must specify exactly one of input_ids and inputs_embeds")
    layout = "[batch, seq_len]" if rank == 2 else "[batch, num_choices, seq_len]"
    if input_ids is not None:
        ids = _index_array("input_ids", input_ids)
        if ids.ndim != rank:
            raise ValueError(f"input_ids must be {rank}-D {layout}, got shape {ids.shape}")
        shape = ids.shape
        _check_range("input_ids", ids, cfg.vocab_size, "vocab_size")
        embeds = None
    else:
        embeds = _as_array("inputs_embeds", inputs_embeds)
        if not np.issubdtype(embeds.dtype, np.floating):
            raise TypeError(f"inputs_embeds must be a float array, got dtype {embeds.dtype}")
        if embeds.ndim != rank + 1:
            raise ValueError(f"inputs_embeds must be {rank + 1}-D {layout[:-1]}, embedding_size], got shape "
                             f"{embeds.shape}")
        if embeds.shape[-1] != cfg.embedding_size:
            raise ValueError(f"inputs_embeds has last dimension {embeds.shape[-1]}, expected "
                             f"embedding_size={cfg.embedding_size} (word-embedding width, before the trigram)")
        shape = embeds.shape[:-1]
        embeds = np.ascontiguousarray(embeds, dtype=np.float32).reshape(-1, shape[-1], cfg.embedding_size)
        ids = None
    if any(d == 0 for d in shape):
        raise ValueError(f"inputs have an empty dimension (shape {shape}); need at least one sequence of one token")
    L = shape[-1]

    if attention_mask is None:
        keep = np.ones(shape, bool)
    else:
        mask = _as_array("attention_mask", attention_mask)
        if mask.shape != shape:
            raise ValueError(f"attention_mask has shape {mask.shape} but the inputs have shape {shape}")
        if not (mask.dtype == bool or np.issubdtype(mask.dtype, np.number)):
            raise TypeError(f"attention_mask must be numeric or boolean, got dtype {mask.dtype}")
        keep = mask != 0

    if token_type_ids is None:
        types = np.zeros(shape, np.int64)
    else:
        types = _index_array("token_type_ids", token_type_ids)
        if types.shape != shape:
            raise ValueError(f"token_type_ids has shape {types.shape} but the inputs have shape {shape}")
        _check_range("token_type_ids", types, cfg.type_vocab_size, "type_vocab_size")

    if position_ids is None:
        if L > cfg.max_position_embeddings:
            raise ValueError(f"sequence length {L} exceeds max_position_embeddings={cfg.max_position_embeddings}; "
                             "truncate the inputs")
        positions = np.broadcast_to(np.arange(L, dtype=np.int64), shape)
    else:
        positions = _index_array("position_ids", position_ids)
        try:
            positions = np.broadcast_to(positions, shape)
        except ValueError:
            raise ValueError(f"position_ids has shape {positions.shape}, which does not broadcast to the input "
                             f"shape {shape}") from None
        _check_range("position_ids", positions, cfg.max_position_embeddings, "max_position_embeddings")

    def flat(a):
        return None if a is None else np.ascontiguousarray(a).reshape(-1, L)

    return {
        "input_ids": flat(ids), "inputs_embeds": embeds, "attention_mask": flat(keep),
        "token_type_ids": flat(types), "position_ids": flat(positions), "shape": shape,
    }


def label_array(name: str, value, shape, integer: bool) -> np.ndarray:
    """Labels as an array of exactly `shape` (int64 for class indices, float32 otherwise)."""
    arr = _as_array(name, value)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} has shape {arr.shape}, expected shape {tuple(shape)}")
    if integer:
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
        return arr.astype(np.int64, copy=False)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)
