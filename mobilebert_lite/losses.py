"""The losses transformers' heads compute (mean reductions, as PyTorch's defaults), in float64, returned float32."""

from __future__ import annotations

import numpy as np


def cross_entropy(logits: np.ndarray, labels: np.ndarray, ignore_index: int = -100) -> np.ndarray:
    """torch.nn.CrossEntropyLoss(): mean over targets != ignore_index (NaN when there are none, as torch)."""
    logits = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    labels = labels.reshape(-1)
    keep = labels != ignore_index
    if keep.any():
        bad = labels[keep]
        if bad.min() < 0 or bad.max() >= logits.shape[-1]:
            raise ValueError(
                f"labels contain class index {int(bad.min() if bad.min() < 0 else bad.max())} outside "
                f"[0, {logits.shape[-1] - 1}] (use {ignore_index} to ignore a position)"
            )
    rows, targets = logits[keep], labels[keep].astype(np.int64)
    top = rows.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(rows - top).sum(axis=-1)) + top[:, 0]
    nll = log_z - rows[np.arange(rows.shape[0]), targets]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(nll.sum() / keep.sum(), dtype=np.float32)


def mse(predictions: np.ndarray, targets: np.ndarray) -> np.ndarray:
    d = predictions.astype(np.float64) - targets.astype(np.float64)
    return np.asarray(np.mean(d * d), dtype=np.float32)


def bce_with_logits(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """torch.nn.BCEWithLogitsLoss(): mean of max(x,0) - x*y + log(1 + exp(-|x|))."""
    x, y = logits.astype(np.float64), targets.astype(np.float64)
    return np.asarray(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))), dtype=np.float32)


# --- transformers 4.x TensorFlow losses (modeling_tf_utils.TF*Loss): other shapes and reductions than PyTorch's ---
def sparse_ce_rows(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Keras SparseCategoricalCrossentropy(from_logits=True, reduction=NONE): one loss per row, float64.
    Every label must be a class index (callers map ignored rows to 0 first, as TF does with relu)."""
    logits = logits.reshape(-1, logits.shape[-1]).astype(np.float64)
    labels = labels.reshape(-1).astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[-1]):
        bad = labels.min() if labels.min() < 0 else labels.max()
        raise ValueError(f"labels contain class index {int(bad)} outside [0, {logits.shape[-1] - 1}]")
    top = logits.max(axis=-1, keepdims=True)
    log_z = np.log(np.exp(logits - top).sum(axis=-1)) + top[:, 0]
    return log_z - logits[np.arange(logits.shape[0]), labels]


def tf_masked_mean(logits: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """sum(CE * keep) / sum(keep) over the kept rows, shape (1,) (MaskedLM, TokenClassification, PreTraining)."""
    keep = keep.reshape(-1)
    ce = sparse_ce_rows(logits, np.where(keep, labels.reshape(-1), 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray([(ce * keep).sum() / keep.sum()], dtype=np.float32)


def tf_active_rows(logits: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """config.tf_legacy_loss: the unreduced CE of the kept rows only, shape (n_kept,)."""
    keep = keep.reshape(-1)
    flat = logits.reshape(-1, logits.shape[-1])
    return sparse_ce_rows(flat[keep], labels.reshape(-1)[keep]).astype(np.float32)
