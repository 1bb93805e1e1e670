"""`tf_model.h5` (transformers 4.x TFMobileBert*, Keras 2 `save_weights` layout) <-> PyTorch state-dict names.

Layout (shared/reference/tf_twins.md section 5): the root attribute `layer_names` lists the top-level Keras layers
(`mobilebert`, `predictions___cls`, `seq_relationship___cls`, `classifier`, `qa_outputs`, `dropout_N`); each
layer's group lists its datasets in the attribute `weight_names`; a dataset path is
`<layer>/<model scope>/<variable path>:0`, where the model scope (`tf_mobile_bert_for_masked_lm_3`, ...) varies
per process and is ignored. Names map to PyTorch by HF's rule: `X___Y` -> `Y`, `_._` -> `.`, `/` -> `.`, and the
last segment `kernel`/`embeddings`/`gamma` -> `weight`, `beta` -> `bias`; only `kernel`s are transposed.
Older files name the MLM head `mlm___cls`: accepted too.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import CheckpointError

TF_WEIGHTS_NAME = "tf_model.h5"
_RENAMES = {"kernel": "weight", "embeddings": "weight", "gamma": "weight", "beta": "bias"}
# PyTorch-named class -> (Keras model scope, top-level layers in order)
_TF_LAYOUT = {
    "MobileBertModel": ("tf_mobile_bert_model", ("mobilebert",)),
    "MobileBertForPreTraining": ("tf_mobile_bert_for_pre_training",
                                 ("mobilebert", "predictions___cls", "seq_relationship___cls")),
    "MobileBertForMaskedLM": ("tf_mobile_bert_for_masked_lm", ("mobilebert", "predictions___cls")),
    "MobileBertForNextSentencePrediction": ("tf_mobile_bert_for_next_sentence_prediction",
                                            ("mobilebert", "seq_relationship___cls")),
    "MobileBertForSequenceClassification": ("tf_mobile_bert_for_sequence_classification",
                                            ("mobilebert", "dropout", "classifier")),
    "MobileBertForMultipleChoice": ("tf_mobile_bert_for_multiple_choice", ("mobilebert", "dropout", "classifier")),
    "MobileBertForTokenClassification": ("tf_mobile_bert_for_token_classification",
                                         ("mobilebert", "dropout", "classifier")),
    "MobileBertForQuestionAnswering": ("tf_mobile_bert_for_question_answering", ("mobilebert", "qa_outputs")),
}


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("reading or writing tf_model.h5 needs h5py: pip install 'mobilebert-lite[tf]'") from None
    return h5py


def _attr_strings(obj, name) -> list[str]:
    values = obj.attrs.get(name)
    if values is None:
        return []
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values)]


def tf_to_pt_name(variable: str) -> tuple[str, bool]:
    """A Keras variable name without its model scope (`mobilebert/encoder/layer_._0/.../kernel:0`) -> (PyTorch
    name, whether the array must be transposed)."""
    name = variable[:-2] if variable.endswith(":0") else variable
    name = re.sub(r"(^|/)[^/]*___([^/]*)(?=/|$)", r"\1\2", name)
    name = name.replace("_._", "/")
    parts = [p for p in name.split("/") if p]
    transpose = parts[-1] == "kernel"
    parts[-1] = _RENAMES.get(parts[-1], parts[-1])
    return ".".join(parts), transpose


def read_tf_h5(path) -> dict[str, np.ndarray]:
    """Every weight of a tf_model.h5 under its PyTorch name (float32, kernels transposed)."""
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CheckpointError(f"{path} is not a readable HDF5 file: {e}") from None
    out = {}
    with f:
        layers = _attr_strings(f, "layer_names")
        if not layers:
            raise CheckpointError(f"{path} has no 'layer_names' attribute: not a Keras save_weights file")
        for layer in layers:
            if layer not in f:
                raise CheckpointError(f"{path}: layer {layer!r} is listed in layer_names but has no group")
            if isinstance(f[layer], h5py.Dataset):
                # a shard of a sharded save: layer_names lists the variables themselves, without the model scope
                _add(out, path, layer, f[layer])
                continue
            group = f[layer]
            for weight in _attr_strings(group, "weight_names"):
                if weight not in group:
                    raise CheckpointError(f"{path}: weight {layer}/{weight} is listed but missing")
                # drop the model scope (its first segment varies per process), keep the layer's own path
                _add(out, path, weight.split("/", 1)[1] if "/" in weight else weight, group[weight])
    return out


def _add(out: dict, path, variable: str, dataset) -> None:
    name, transpose = tf_to_pt_name(variable)
    if name in out:
        raise CheckpointError(f"{path}: two datasets map to {name!r}")
    array = np.asarray(dataset[()])
    if array.dtype.kind != "f":
        raise CheckpointError(f"{path}: {variable} has dtype {array.dtype}, expected floats")
    array = array.astype(np.float32, copy=False)
    out[name] = np.ascontiguousarray(array.T) if transpose and array.ndim == 2 else array


def pt_to_tf_variable(name: str, layer_norm: bool) -> tuple[str, str, bool]:
    """A PyTorch name (with the `mobilebert.` prefix where HF has it) -> (top-level Keras layer, variable path
    below the model scope, whether to transpose)."""
    parts = name.split(".")
    last = parts[-1]
    if parts[0] == "mobilebert":
        layer = "mobilebert"
    elif parts[:2] == ["cls", "predictions"]:
        layer = "predictions___cls"
    elif parts[:2] == ["cls", "seq_relationship"]:
        layer = "seq_relationship___cls"
    else:
        layer = parts[0]
    # the variable path repeats the layer name: `predictions___cls/predictions/...`, `mobilebert/encoder/...`
    body = parts[1:]
    path, i = [layer], 0
    while i < len(body) - 1:  # numbered lists: encoder layers are `layer_._i`, ffn stays `ffn.j` (a dot)
        if body[i] == "layer" and body[i + 1].isdigit():
            path.append(f"layer_._{body[i + 1]}")
            i += 2
        elif body[i] == "ffn" and body[i + 1].isdigit():
            path.append(f"ffn.{body[i + 1]}")
            i += 2
        else:
            path.append(body[i])
            i += 1
    owner = path[-1] if path else ""
    transpose = False
    if owner == "LayerNorm":
        real = layer_norm or "transform" in path  # the MLM transform norm is a real LayerNorm even under no_norm
        var = ({"weight": "gamma", "bias": "beta"} if real else {"weight": "weight", "bias": "bias"})[last]
    elif owner in ("position_embeddings", "token_type_embeddings"):
        var = "embeddings"
    elif owner in ("word_embeddings", "decoder") or (owner == "dense" and path[-2] == "predictions"):
        var = last  # raw variables, stored as PyTorch has them
    elif last == "weight":
        var, transpose = "kernel", True
    else:
        var = last
    return layer, "/".join(path + [var]) + ":0", transpose


def write_tf_h5(path, pt_name: str, params: dict, config) -> None:
    """Write `params` (canonical names) as transformers 4.x's TF twin of the PyTorch-named class `pt_name` saves
    them (atomically: a failure leaves no partial file)."""
    from ..io_utils import atomic_write
    from ..weights import HEADS, display_name

    h5py = _h5py()
    scope, layers = _TF_LAYOUT[pt_name]
    layer_norm = config.normalization_type == "layer_norm"
    by_layer: dict[str, list[tuple[str, np.ndarray]]] = {name: [] for name in layers}
    full = dict(params)
    if "mlm" in HEADS[pt_name][0] and "cls.predictions.decoder.weight" not in full:
        full["cls.predictions.decoder.weight"] = params["embeddings.word_embeddings.weight"]  # TF never ties
    for canonical, value in full.items():
        if canonical == "cls.predictions.decoder.bias":
            continue  # PyTorch's copy of cls.predictions.bias; TF has one bias
        name = display_name(pt_name, canonical)
        if not name.startswith(("mobilebert.", "cls.", "classifier.", "qa_outputs.")):
            name = "mobilebert." + name  # the bare model's keys carry no prefix in PyTorch, but do in TF
        layer, variable, transpose = pt_to_tf_variable(name, layer_norm)
        array = np.asarray(value, dtype=np.float32)
        by_layer[layer].append((f"{scope}/{variable}", np.ascontiguousarray(array.T) if transpose else array))

    def write(f):
        with h5py.File(f, "w") as h5:
            h5.attrs["backend"] = b"tensorflow"
            h5.attrs["keras_version"] = b"2.21.0"
            h5.attrs["layer_names"] = np.array([n.encode() for n in layers])
            for layer in layers:
                group = h5.create_group(layer)
                group.attrs["weight_names"] = np.array([w.encode() for w, _ in by_layer[layer]])
                for weight, array in by_layer[layer]:
                    group.create_dataset(weight, data=array)
            h5.create_group("top_level_model_weights").attrs["weight_names"] = np.array([], dtype="S1")

    atomic_write(path, write)

