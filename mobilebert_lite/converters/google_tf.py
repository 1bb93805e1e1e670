"""Rename the variables of an original Google MobileBERT TF1 checkpoint to Hugging Face PyTorch state-dict names.

The rule set is the one of transformers' ``load_tf_weights_in_mobilebert`` (4.x):

1. textual replacements on the whole name: ``ffn_layer`` -> ``ffn``, ``FakeLayerNorm`` -> ``LayerNorm``,
   ``extra_output_weights`` -> ``dense/kernel``, ``bert`` -> ``mobilebert``;
2. names containing an optimizer slot (``adam_m``, ``adam_v``, ``AdamWeightDecayOptimizer[_1]``, ``global_step``)
   are skipped;
3. each ``/``-separated part ``word_N`` becomes ``word.N`` (``layer_3`` -> ``layer.3``, ``ffn_0`` -> ``ffn.0``);
   ``kernel``, ``gamma`` and ``output_weights`` become ``weight``; ``beta`` and ``output_bias`` become ``bias``;
4. a name whose last part ends in ``_embeddings`` gets ``.weight`` appended;
5. arrays whose last part is ``kernel`` are transposed (TF dense kernels are [in, out], torch Linear is
   [out, in]); ``output_weights`` ([2, H] for seq_relationship) and embedding tables are not.

HF resolves the result with ``getattr`` on a model and silently skips what does not resolve; without torch we check
the result against the grammar of MobileBERT state-dict keys instead, and refuse (rather than skip) unknown names.
``cls.predictions.decoder.*`` (tied to the word embeddings / ``cls.predictions.bias``) is never produced.
"""

from __future__ import annotations

import re

import numpy as np

from mobilebert_lite.errors import CheckpointError

_REPLACEMENTS = (
    ("ffn_layer", "ffn"),
    ("FakeLayerNorm", "LayerNorm"),
    ("extra_output_weights", "dense/kernel"),
    ("bert", "mobilebert"),
)
_OPTIMIZER_PARTS = frozenset({"adam_v", "adam_m", "AdamWeightDecayOptimizer", "AdamWeightDecayOptimizer_1",
                              "global_step"})
_PART_RENAMES = {"kernel": "weight", "gamma": "weight", "output_weights": "weight", "beta": "bias",
                 "output_bias": "bias"}
_INDEXED_PART = re.compile(r"([A-Za-z]+)_(\d+)")

_WB = r"\.(?:weight|bias)"
_NORM_OR_DENSE = r"\.(?:dense|LayerNorm)" + _WB
_LAYER = r"mobilebert\.encoder\.layer\.\d+\."
# Every key a MobileBERT (+ pre-training heads) state dict can hold, except the tied decoder and position_ids.
_KNOWN_KEY = re.compile(
    "|".join(
        [
            r"mobilebert\.embeddings\.(?:word|position|token_type)_embeddings\.weight",
            r"mobilebert\.embeddings\.(?:embedding_transformation|LayerNorm)" + _WB,
            _LAYER + r"attention\.self\.(?:query|key|value)" + _WB,
            _LAYER + r"attention\.output" + _NORM_OR_DENSE,
            _LAYER + r"intermediate\.dense" + _WB,
            _LAYER + r"output" + _NORM_OR_DENSE,
            _LAYER + r"output\.bottleneck" + _NORM_OR_DENSE,
            _LAYER + r"bottleneck\.(?:input|attention)" + _NORM_OR_DENSE,
            _LAYER + r"ffn\.\d+\.intermediate\.dense" + _WB,
            _LAYER + r"ffn\.\d+\.output" + _NORM_OR_DENSE,
            r"mobilebert\.pooler\.dense" + _WB,
            r"cls\.predictions\.bias",
            r"cls\.predictions\.transform" + _NORM_OR_DENSE,
            r"cls\.predictions\.dense\.weight",
            r"cls\.seq_relationship" + _WB,
        ]
    )
)


def google_tf_name_to_hf(tf_name: str) -> tuple[str, bool] | None:
    """(HF state-dict name, transpose?) for one TF variable name, or None for optimizer state.

    The HF name is not validated here; convert_google_tf_names does that.
    """
    name = tf_name
    for old, new in _REPLACEMENTS:
        name = name.replace(old, new)
    parts = name.split("/")
    if any(part in _OPTIMIZER_PARTS for part in parts):
        return None
    out = []
    for part in parts:
        indexed = _INDEXED_PART.fullmatch(part)
        if indexed:
            # int() as HF does: "layer_07" is layer 7
            out += [indexed.group(1), str(int(indexed.group(2)))]
        else:
            out.append(_PART_RENAMES.get(part, part))
    if parts[-1].endswith("_embeddings"):
        out.append("weight")
    return ".".join(out), parts[-1] == "kernel"


def convert_google_tf_names(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Google TF checkpoint variables (name -> array) -> HF PyTorch state dict (name -> array).

    Kernels are transposed (as a C-contiguous copy); every other array is passed through as is, dtype unchanged.
    Optimizer slots are dropped. Raises CheckpointError listing every name that does not map to a MobileBERT key,
    every kernel that is not 2-D, and any two TF names that map to the same key.
    """
    out: dict[str, np.ndarray] = {}
    source: dict[str, str] = {}
    unknown, problems = [], []
    for tf_name in sorted(arrays):
        mapped = google_tf_name_to_hf(tf_name)
        if mapped is None:
            continue
        hf_name, transpose = mapped
        if not _KNOWN_KEY.fullmatch(hf_name):
            unknown.append(tf_name)
            continue
        if hf_name in source:
            problems.append(f"{source[hf_name]} and {tf_name} both map to {hf_name}")
            continue
        array = np.asarray(arrays[tf_name])
        if transpose:
            if array.ndim != 2:
                problems.append(f"{tf_name} is a kernel of shape {array.shape}, expected 2-D")
                continue
            array = np.ascontiguousarray(array.T)
        out[hf_name] = array
        source[hf_name] = tf_name
    if unknown:
        raise CheckpointError(
            f"{len(unknown)} TF checkpoint variable(s) are not MobileBERT weights: " + ", ".join(unknown)
        )
    if problems:
        raise CheckpointError("cannot convert the TF checkpoint: " + "; ".join(problems))
    return out
