"""The tiny question-answering checkpoint behind tests/data/qa_expectations.json, rebuilt from a seed with NumPy.

Both tools/make_qa_expectations.py (transformers 4.57.6 + torch, which recorded the expectations) and
tests/test_pipelines_token_qa.py (mobilebert_lite) build it from here, so nothing large is committed. Pure NumPy,
no torch initialisation (torch's init may change between versions); every tensor is drawn from its own generator
seeded by (SEED, crc32 of its name without the "mobilebert." prefix), so the order in which a framework lists its
parameters does not matter, and only `Generator.random` (uniform doubles, NumPy's most stable stream) is used.

Scales: norm weights in [0.5, 1.5], biases and embeddings O(0.1-0.5), linear weights ~ 1/sqrt(fan_in) (so the
NoNorm residual stream stays O(1) over two layers), and a larger span head so that start/end probabilities are
peaked and the best spans are not near-ties.
"""

from __future__ import annotations

import hashlib
import math
import os
import zlib

import numpy as np

SEED = 4242

QA_CONFIG = dict(
    vocab_size=30522,
    hidden_size=32,
    embedding_size=16,
    intra_bottleneck_size=16,
    true_hidden_size=16,
    num_attention_heads=2,
    num_hidden_layers=2,
    intermediate_size=32,
    num_feedforward_networks=2,
    max_position_embeddings=512,
)

# the bundled bert-base-uncased vocabulary (vocab_size 30522 above)
VOCAB_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mobilebert_lite", "data",
                          "vocab_uncased.txt")
TOKENIZER_KWARGS = dict(do_lower_case=True, model_max_length=512)

SPAN_HEAD_GAIN = 1.0


def canonical_name(name: str) -> str:
    return name[len("mobilebert."):] if name.startswith("mobilebert.") else name


def _uniform(name: str, shape, low: float, high: float) -> np.ndarray:
    rng = np.random.default_rng([SEED, zlib.crc32(name.encode())])
    return (low + (high - low) * rng.random(size=shape)).astype(np.float32)


def _symmetric(name: str, shape, std: float) -> np.ndarray:
    half_width = std * math.sqrt(3.0)  # U(-a, a) has std a / sqrt(3)
    return _uniform(name, shape, -half_width, half_width)


def make_weight(name: str, shape) -> np.ndarray:
    """The value of one tensor (`name` with or without the "mobilebert." prefix)."""
    name = canonical_name(name)
    shape = tuple(int(n) for n in shape)
    if name.endswith("LayerNorm.weight"):
        return _uniform(name, shape, 0.5, 1.5)
    if name.endswith("bias"):
        return _symmetric(name, shape, 0.1)
    if name.startswith("embeddings.") and "embedding_transformation" not in name:
        return _symmetric(name, shape, 0.5)
    if len(shape) == 2:
        gain = SPAN_HEAD_GAIN if name.startswith("qa_outputs") else 1.0
        return _symmetric(name, shape, gain / math.sqrt(shape[1]))
    raise ValueError(f"no rule for tensor {name} {shape}")


def make_weights(shapes: dict) -> dict:
    """{name: float32 array} for {name: shape}."""
    return {name: make_weight(name, shape) for name, shape in shapes.items()}


def weights_digest(weights: dict) -> str:
    """SHA-256 over (canonical name, float32 bytes) in name order: the test checks it rebuilt the recorded model."""
    h = hashlib.sha256()
    for name in sorted(weights):
        h.update(canonical_name(name).encode())
        h.update(np.ascontiguousarray(weights[name], dtype=np.float32).tobytes())
    return h.hexdigest()
