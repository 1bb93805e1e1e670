"""Checkpoint loading: which tensors each class needs, key normalisation, and reading/writing model directories.

Internally every tensor is keyed by its *canonical* name: encoder tensors without the `mobilebert.` prefix
(`embeddings.*`, `encoder.*`, `pooler.*`), head tensors as HF names them (`cls.*`, `classifier.*`,
`qa_outputs.*`). Error messages show the name as it appears in the HF state dict of the class being loaded.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from .config import MobileBertConfig
from .errors import CheckpointError
from .safetensors_io import SafetensorsFile, save_safetensors, upcast_to_float32

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
BASE_PREFIX = "mobilebert."

# Heads and whether the class builds a pooler, per class (transformers' layout).
HEADS = {
    "MobileBertModel": ((), True),
    "MobileBertForPreTraining": (("mlm", "nsp"), True),
    "MobileBertForMaskedLM": (("mlm",), False),
    "MobileBertForNextSentencePrediction": (("nsp",), True),
    "MobileBertForSequenceClassification": (("classifier",), True),
    "MobileBertForMultipleChoice": (("choice",), True),
    "MobileBertForTokenClassification": (("token_classifier",), False),
    "MobileBertForQuestionAnswering": (("qa",), False),
}
_HEAD_PREFIXES = ("cls.", "classifier.", "qa_outputs.")
# The Linear each head adds after the encoder: whether it reads the pooled [CLS] vector or every position, and
# its weight prefix. (The MLM head is separate: transform, LayerNorm and the vocabulary projection.)
_HEAD_LINEARS = {
    "nsp": ("pooled_linear", "cls.seq_relationship."),
    "classifier": ("pooled_linear", "classifier."),
    "choice": ("pooled_linear", "classifier."),
    "token_classifier": ("token_linear", "classifier."),
    "qa": ("token_linear", "qa_outputs."),
}


def head_layout(class_name: str) -> dict:
    """What `class_name` computes after the encoder: pooler, MLM head, a Linear on the pooled output, a Linear
    on every position (prefixes, "" for none). Both engines build their heads from this."""
    heads, with_pooler = HEADS[class_name]
    layout = dict(pooler=with_pooler, mlm="mlm" in heads, pooled_linear="", token_linear="")
    for head in heads:
        if head in _HEAD_LINEARS:
            where, prefix = _HEAD_LINEARS[head]
            layout[where] = prefix
    return layout


def _norm_spec(prefix, width):
    return {prefix + "LayerNorm.weight": (width,), prefix + "LayerNorm.bias": (width,)}


def _linear_spec(prefix, n_out, n_in, bias=True):
    spec = {prefix + "weight": (n_out, n_in)}
    if bias:
        spec[prefix + "bias"] = (n_out,)
    return spec


def encoder_spec(cfg: MobileBertConfig, with_pooler: bool):
    """(required, optional) dicts of canonical name -> shape for the encoder (and pooler).

    Optional tensors are accepted and kept but never used: HF creates them even where the forward pass skips them.
    """
    H, E, T, I = cfg.hidden_size, cfg.embedding_size, cfg.true_hidden_size, cfg.intermediate_size
    required, optional = {}, {}
    required["embeddings.word_embeddings.weight"] = (cfg.vocab_size, E)
    required["embeddings.position_embeddings.weight"] = (cfg.max_position_embeddings, H)
    required["embeddings.token_type_embeddings.weight"] = (cfg.type_vocab_size, H)
    transformation = _linear_spec("embeddings.embedding_transformation.", H, E * (3 if cfg.trigram_input else 1))
    (required if cfg.trigram_input or E != H else optional).update(transformation)
    required.update(_norm_spec("embeddings.", H))
    heads_width = cfg.num_attention_heads * cfg.attention_head_size
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        if cfg.use_bottleneck:
            B = cfg.intra_bottleneck_size
            required.update(_linear_spec(p + "bottleneck.input.dense.", B, H))
            required.update(_norm_spec(p + "bottleneck.input.", B))
            if cfg.key_query_shared_bottleneck:
                shared = {**_linear_spec(p + "bottleneck.attention.dense.", B, H),
                          **_norm_spec(p + "bottleneck.attention.", B)}
                # With use_bottleneck_attention the shared projection exists in HF but is never used (TINY).
                (optional if cfg.use_bottleneck_attention else required).update(shared)
        value_in = T if cfg.use_bottleneck_attention else H
        required.update(_linear_spec(p + "attention.self.query.", heads_width, T))
        required.update(_linear_spec(p + "attention.self.key.", heads_width, T))
        required.update(_linear_spec(p + "attention.self.value.", heads_width, value_in))
        required.update(_linear_spec(p + "attention.output.dense.", T, T))
        required.update(_norm_spec(p + "attention.output.", T))
        for j in range(cfg.num_feedforward_networks - 1):
            f = f"{p}ffn.{j}."
            required.update(_linear_spec(f + "intermediate.dense.", I, T))
            required.update(_linear_spec(f + "output.dense.", T, I))
            required.update(_norm_spec(f + "output.", T))
        required.update(_linear_spec(p + "intermediate.dense.", I, T))
        required.update(_linear_spec(p + "output.dense.", T, I))
        required.update(_norm_spec(p + "output.", T))
        if cfg.use_bottleneck:
            required.update(_linear_spec(p + "output.bottleneck.dense.", H, T))
            required.update(_norm_spec(p + "output.bottleneck.", H))
    if with_pooler and cfg.classifier_activation:
        required.update(_linear_spec("pooler.dense.", H, H))
    return required, optional


def head_spec(cfg: MobileBertConfig, head: str):
    """(required, optional) canonical name -> shape for one head."""
    H, E, V = cfg.hidden_size, cfg.embedding_size, cfg.vocab_size
    if head == "mlm":
        required = {
            **_linear_spec("cls.predictions.transform.dense.", H, H),
            **_norm_spec("cls.predictions.transform.", H),
            # nn.Linear(V, H - E, bias=False): stored [H - E, V] and used untransposed.
            "cls.predictions.dense.weight": (H - E, V),
            "cls.predictions.bias": (V,),
        }
        optional = {"cls.predictions.decoder.weight": (V, E), "cls.predictions.decoder.bias": (V,)}
        return required, optional
    if head == "nsp":
        return _linear_spec("cls.seq_relationship.", 2, H), {}
    if head in ("classifier", "token_classifier"):
        return _linear_spec("classifier.", cfg.num_labels, H), {}
    if head == "choice":
        return _linear_spec("classifier.", 1, H), {}
    if head == "qa":
        return _linear_spec("qa_outputs.", cfg.num_labels, H), {}
    raise ValueError(f"unknown head {head!r}")


def class_spec(cfg: MobileBertConfig, class_name: str):
    heads, with_pooler = HEADS[class_name]
    required, optional = encoder_spec(cfg, with_pooler)
    for head in heads:
        r, o = head_spec(cfg, head)
        required.update(r)
        optional.update(o)
    return required, optional


def _belongs_to_other_class(name: str) -> bool:
    """Head or pooler tensors of another MobileBERT class: HF ignores them on load, and so do we."""
    return name.startswith(_HEAD_PREFIXES) or name.startswith("pooler.")


def display_name(class_name: str, canonical: str) -> str:
    """The key as it appears in HF's state dict of `class_name`."""
    if class_name == "MobileBertModel" or canonical.startswith(_HEAD_PREFIXES):
        return canonical
    return BASE_PREFIX + canonical


_LEGACY_SUFFIX = re.compile(r"\.(gamma|beta)$")


def canonical_key(key: str) -> str:
    """Strip the `mobilebert.` prefix and rename legacy LayerNorm gamma/beta, as HF does on load."""
    if key.startswith(BASE_PREFIX):
        key = key[len(BASE_PREFIX):]
    return _LEGACY_SUFFIX.sub(lambda m: ".weight" if m.group(1) == "gamma" else ".bias", key)


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


def _resolve_tied_decoder(tensors: dict) -> None:
    """Apply HF's tying rule to the MLM decoder copies, in place.

    Tied copies equal to their source are dropped; a lone copy stands in for its missing source; a copy that
    differs from its source is kept, and the head then uses it (transformers 5 does not tie differing values).
    """
    pairs = (("cls.predictions.decoder.weight", "embeddings.word_embeddings.weight"),
             ("cls.predictions.decoder.bias", "cls.predictions.bias"))
    for copy_name, source_name in pairs:
        if copy_name not in tensors:
            continue
        if source_name not in tensors:
            if source_name == "cls.predictions.bias":
                tensors[source_name] = tensors.pop(copy_name)
            continue
        a, b = tensors[copy_name], tensors[source_name]
        if a.shape == b.shape and np.array_equal(a, b):
            del tensors[copy_name]


def select_weights(cfg: MobileBertConfig, class_name: str, raw: dict) -> dict:
    """Normalise raw checkpoint keys and check them against what `class_name` needs.

    Returns canonical name -> float32 array. Raises CheckpointError listing every missing, mis-shaped or
    unexpected tensor (names as in the class's HF state dict, with both shapes).
    """
    tensors = {}
    for key, value in raw.items():
        name = canonical_key(key)
        if name == "embeddings.position_ids":
            continue  # a buffer that old transformers versions saved
        if name in tensors:
            raise CheckpointError(f"checkpoint holds tensor {name!r} twice (with and without the mobilebert. prefix)")
        tensors[name] = value
    _resolve_tied_decoder(tensors)
    if not cfg.tie_word_embeddings and "cls.predictions.decoder.weight" not in tensors \
            and "mlm" in HEADS[class_name][0]:
        raise CheckpointError(
            "missing tensor 'cls.predictions.decoder.weight' (tie_word_embeddings is false, so the MLM decoder "
            f"needs its own weights; expected shape {_shape_str((cfg.vocab_size, cfg.embedding_size))})"
        )

    required, optional = class_spec(cfg, class_name)
    problems, selected = [], {}
    for name, shape in required.items():
        if name not in tensors:
            problems.append(f"missing tensor {display_name(class_name, name)!r} (expected shape {_shape_str(shape)})")
        elif tuple(tensors[name].shape) != shape:
            problems.append(f"tensor {display_name(class_name, name)!r} has shape {_shape_str(tensors[name].shape)}, "
                            f"expected {_shape_str(shape)}")
        else:
            selected[name] = tensors[name]
    for name, value in tensors.items():
        if name in required:
            continue
        if name in optional:
            if tuple(value.shape) != optional[name]:
                problems.append(f"tensor {display_name(class_name, name)!r} has shape {_shape_str(value.shape)}, "
                                f"expected {_shape_str(optional[name])}")
            else:
                selected[name] = value
        elif not _belongs_to_other_class(name):
            problems.append(f"unexpected tensor {name!r} with shape {_shape_str(value.shape)} "
                            f"(not part of a MobileBERT model with this config)")
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise CheckpointError(f"checkpoint does not fit {class_name}: " + "; ".join(shown))
    for name, value in selected.items():
        if value.dtype != np.float32:
            raise CheckpointError(
                f"tensor {display_name(class_name, name)!r} has dtype {value.dtype}, expected a float")
    return selected


# ------------------------------------------------------------------------------------------------ directories
def read_raw_weights(directory, weights_format: str = "pt") -> dict:
    """All tensors of a model directory, floats upcast to float32, under PyTorch state-dict names.

    weights_format "pt": model.safetensors (single or sharded), else pytorch_model.bin (single or sharded, read
    without torch); "tf": tf_model.h5 (Keras names mapped to PyTorch ones; needs h5py).
    """
    from .converters import convert, tf_h5

    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"model directory {directory} does not exist")
    h5 = os.path.join(directory, tf_h5.TF_WEIGHTS_NAME)
    h5_index = os.path.join(directory, convert.H5_INDEX)
    if weights_format == "tf":
        if not os.path.isfile(h5) and not os.path.isfile(h5_index):
            raise FileNotFoundError(f"no {tf_h5.TF_WEIGHTS_NAME} in {directory}; to load PyTorch weights into a "
                                    "TF class pass from_pt=True")
        return convert.read_h5_checkpoint(h5 if os.path.isfile(h5) else h5_index)
    if weights_format != "pt":
        raise ValueError(f"weights_format must be 'pt' or 'tf', got {weights_format!r}")
    single = os.path.join(directory, SAFE_WEIGHTS_NAME)
    index = os.path.join(directory, SAFE_WEIGHTS_INDEX_NAME)
    if os.path.isfile(single):
        return _read_files([single])
    if os.path.isfile(index):
        return _read_sharded(index)
    found = convert.find_bin_checkpoint(directory)
    if found is not None:
        return {k: _as_float32(v) for k, v in convert.read_bin_checkpoint(found).items()}
    if os.path.isfile(h5):
        raise CheckpointError(f"{directory} holds only {tf_h5.TF_WEIGHTS_NAME}: pass from_tf=True (or use the "
                              "TFMobileBert class) to load it")
    raise FileNotFoundError(f"no {SAFE_WEIGHTS_NAME}, {SAFE_WEIGHTS_INDEX_NAME} or pytorch_model.bin found in model "
                            f"directory {directory}")


def _as_float32(array: np.ndarray) -> np.ndarray:
    """Floating tensors as float32 (fp16/bf16/fp64 checkpoints); integer buffers as they are."""
    return array.astype(np.float32) if array.dtype.kind == "f" and array.dtype != np.float32 else array


def _read_files(paths, only=None) -> dict:
    out = {}
    for path in paths:
        sf = SafetensorsFile(path)
        for key, (dtype_name, array) in sf.tensors.items():
            if only is not None and only.get(key) != os.path.basename(path):
                continue
            out[key] = upcast_to_float32(dtype_name, array)
    return out


def read_shard_index(index_path) -> tuple[dict, list[str]]:
    """A sharded checkpoint's index (safetensors, .bin or h5: the same JSON) -> (tensor -> shard file name, the
    shard paths), each shard checked to be a plain file name present beside the index."""
    try:
        with open(index_path, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError
        files = sorted(set(weight_map.values()))
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise CheckpointError(f"{os.path.basename(index_path)} is not a valid sharded-checkpoint index "
                              "(expected a JSON object with a 'weight_map')") from None
    directory = os.path.dirname(index_path)
    for name in files:
        if not isinstance(name, str) or os.path.basename(name) != name \
                or not os.path.isfile(os.path.join(directory, name)):
            raise CheckpointError(f"shard {name!r} listed in {os.path.basename(index_path)} is missing")
    return weight_map, [os.path.join(directory, n) for n in files]


def _read_sharded(index_path) -> dict:
    weight_map, paths = read_shard_index(index_path)
    tensors = _read_files(paths, only=weight_map)
    absent = sorted(set(weight_map) - set(tensors))
    if absent:
        raise CheckpointError(f"tensor {absent[0]!r} is listed in the index but not found in shard "
                              f"{weight_map[absent[0]]!r}")
    return tensors


def save_weights(directory, class_name: str, params: dict, stored_int8: dict | None = None) -> str:
    """Write params (canonical names) as HF's state dict of `class_name` into directory/model.safetensors; params
    of an int8 model (quantization.py) are written as a quantised checkpoint, reusing `stored_int8`."""
    from . import quantization

    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, SAFE_WEIGHTS_NAME)
    if not quantization.is_quantized_checkpoint(params):
        named = {display_name(class_name, k): np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}
        save_safetensors(named, path)
        return path
    # display_name only prefixes, so a "<key>_scale" companion keeps following its tensor
    named = {display_name(class_name, k): v for k, v in quantization.checkpoint_tensors(params, stored_int8).items()}
    save_safetensors(named, path, metadata={quantization.FORMAT_KEY: quantization.FORMAT})
    return path
