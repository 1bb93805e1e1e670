"""convert_google_tf_names: Google MobileBERT TF checkpoint names -> HF PyTorch state-dict names.

The TF-side names are produced here from a real HF state dict by an independently written inverse of the rule,
so a round trip must give back the HF state dict exactly."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mobilebert_lite.converters.google_tf import convert_google_tf_names, google_tf_name_to_hf
from mobilebert_lite.errors import CheckpointError

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_hf import make_tiny_hf_model  # noqa: E402

# cls.predictions.decoder.{weight,bias} are tied to word_embeddings / cls.predictions.bias: not in TF checkpoints
TIED = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")

CONFIGS = {
    "tiny": {},
    "four_ffn_trigram_off": dict(num_feedforward_networks=4, trigram_input=False, embedding_size=64),
    "no_bottleneck_layer_norm": dict(
        use_bottleneck=False, use_bottleneck_attention=False, num_feedforward_networks=1,
        normalization_type="layer_norm", intra_bottleneck_size=64, true_hidden_size=64,
    ),
    "twelve_layers": dict(num_hidden_layers=12),
}


def hf_state_dict(**overrides):
    sd = make_tiny_hf_model("MobileBertForPreTraining", **overrides).state_dict()
    return {k: v.numpy() for k, v in sd.items()}


def to_google_tf(hf_name: str, array: np.ndarray) -> tuple[str, np.ndarray]:
    """The TF1 variable name (and layout) Google's MobileBERT code gives the HF parameter `hf_name`."""
    parts = hf_name.split(".")
    *path, leaf = parts
    if path[0] == "mobilebert":
        path[0] = "bert"
    out = []
    i = 0
    while i < len(path):
        part = path[i]
        if part in ("layer", "ffn") and i + 1 < len(path) and path[i + 1].isdigit():
            out.append(f"{'ffn_layer' if part == 'ffn' else 'layer'}_{path[i + 1]}")
            i += 2
            continue
        # Google names the NoNorm layers FakeLayerNorm; the head's transform uses a real LayerNorm
        out.append("FakeLayerNorm" if part == "LayerNorm" and out[0] == "bert" else part)
        i += 1
    owner = out[-1]
    if hf_name == "cls.predictions.dense.weight":
        return "cls/predictions/extra_output_weights", array.T.copy()  # [V, H - E]
    if hf_name == "cls.predictions.bias":
        return "cls/predictions/output_bias", array
    if out[:2] == ["cls", "seq_relationship"]:
        return "cls/seq_relationship/" + {"weight": "output_weights", "bias": "output_bias"}[leaf], array
    if owner.endswith("_embeddings"):
        assert leaf == "weight"
        return "/".join(out), array
    if owner in ("LayerNorm", "FakeLayerNorm"):
        return "/".join(out + [{"weight": "gamma", "bias": "beta"}[leaf]]), array
    if leaf == "weight":
        return "/".join(out + ["kernel"]), array.T.copy()  # TF dense kernels are [in, out]
    return "/".join(out + ["bias"]), array


def google_checkpoint(sd):
    tf = {}
    for name, array in sd.items():
        if name in TIED:
            continue
        tf_name, tf_array = to_google_tf(name, array)
        assert tf_name not in tf
        tf[tf_name] = tf_array
    return tf


def assert_same_state_dict(got, want):
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].dtype == want[name].dtype and got[name].shape == want[name].shape, name
        assert np.ascontiguousarray(got[name]).tobytes() == want[name].tobytes(), name


# embedding_size == hidden_size leaves cls.predictions.dense a [0, V] matrix: torch warns about initialising it
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_round_trip_covers_every_hf_key(config):
    sd = hf_state_dict(**CONFIGS[config])
    expected = {k: v for k, v in sd.items() if k not in TIED}
    converted = convert_google_tf_names(google_checkpoint(sd))
    assert_same_state_dict(converted, expected)
    assert all(a.flags.c_contiguous for a in converted.values())


def test_google_names_look_like_the_original():
    tf = google_checkpoint(hf_state_dict())
    for name in [
        "bert/embeddings/word_embeddings",
        "bert/embeddings/embedding_transformation/kernel",
        "bert/embeddings/FakeLayerNorm/gamma",
        "bert/encoder/layer_1/bottleneck/input/dense/kernel",
        "bert/encoder/layer_1/bottleneck/attention/FakeLayerNorm/beta",
        "bert/encoder/layer_0/attention/self/value/kernel",
        "bert/encoder/layer_0/ffn_layer_0/intermediate/dense/bias",
        "bert/encoder/layer_0/ffn_layer_0/output/FakeLayerNorm/gamma",
        "bert/encoder/layer_0/output/bottleneck/dense/kernel",
        "cls/predictions/transform/LayerNorm/beta",
        "cls/predictions/output_bias",
        "cls/seq_relationship/output_weights",
    ]:
        assert name in tf, name
    assert tf["cls/predictions/extra_output_weights"].shape == (99, 64 - 16)  # [V, H - E]
    assert tf["cls/seq_relationship/output_weights"].shape == (2, 64)  # [2, H], used untransposed


def test_single_name_rule():
    assert google_tf_name_to_hf("bert/encoder/layer_11/ffn_layer_2/output/FakeLayerNorm/gamma") == (
        "mobilebert.encoder.layer.11.ffn.2.output.LayerNorm.weight", False)
    assert google_tf_name_to_hf("cls/predictions/extra_output_weights") == ("cls.predictions.dense.weight", True)
    assert google_tf_name_to_hf("cls/seq_relationship/output_weights") == ("cls.seq_relationship.weight", False)
    assert google_tf_name_to_hf("bert/embeddings/token_type_embeddings") == (
        "mobilebert.embeddings.token_type_embeddings.weight", False)
    assert google_tf_name_to_hf("bert/pooler/dense/kernel") == ("mobilebert.pooler.dense.weight", True)
    assert google_tf_name_to_hf("bert/encoder/layer_0/attention/self/query/kernel/adam_m") is None


def test_optimizer_slots_skipped():
    sd = hf_state_dict()
    tf = google_checkpoint(sd)
    for name in list(tf):
        tf[name + "/adam_m"] = np.zeros_like(tf[name])
        tf[name + "/adam_v"] = np.ones_like(tf[name])
    tf["global_step"] = np.array(1000, np.int64)
    tf["bert/embeddings/word_embeddings/AdamWeightDecayOptimizer"] = np.zeros(3, np.float32)
    tf["bert/embeddings/word_embeddings/AdamWeightDecayOptimizer_1"] = np.zeros(3, np.float32)
    assert_same_state_dict(convert_google_tf_names(tf), {k: v for k, v in sd.items() if k not in TIED})


def test_unknown_names_listed():
    tf = google_checkpoint(hf_state_dict())
    tf["bert/encoder/layer_0/attention/self/query/kernelx"] = np.zeros((2, 2), np.float32)
    tf["squad/output_weights"] = np.zeros((2, 64), np.float32)
    tf["bert/embeddings/word_embeddings/beta"] = np.zeros(2, np.float32)
    tf["foo"] = np.zeros(1, np.float32)
    with pytest.raises(CheckpointError) as err:
        convert_google_tf_names(tf)
    message = str(err.value)
    assert message.startswith("4 TF checkpoint variable(s) are not MobileBERT weights: ")
    for name in ["attention/self/query/kernelx", "squad/output_weights", "word_embeddings/beta", "foo"]:
        assert re.search(re.escape(name) + r"\b", message), name


def test_collisions_and_bad_kernels():
    with pytest.raises(CheckpointError, match=r"bert/embeddings/FakeLayerNorm/gamma and "
                                              r"bert/embeddings/LayerNorm/gamma both map to "
                                              r"mobilebert\.embeddings\.LayerNorm\.weight"):
        convert_google_tf_names({"bert/embeddings/FakeLayerNorm/gamma": np.ones(4, np.float32),
                                 "bert/embeddings/LayerNorm/gamma": np.ones(4, np.float32)})
    with pytest.raises(CheckpointError, match=r"pooler/dense/kernel is a kernel of shape \(4,\), expected 2-D"):
        convert_google_tf_names({"bert/pooler/dense/kernel": np.ones(4, np.float32)})


def test_dtype_kept():
    out = convert_google_tf_names({"bert/pooler/dense/kernel": np.arange(6, dtype=np.float16).reshape(2, 3),
                                   "bert/pooler/dense/bias": np.arange(3, dtype=np.float64)})
    assert out["mobilebert.pooler.dense.weight"].dtype == np.float16
    assert out["mobilebert.pooler.dense.weight"].tolist() == [[0, 3], [1, 4], [2, 5]]
    assert out["mobilebert.pooler.dense.bias"].dtype == np.float64


def _hf_pointer_walk(model, tf_name):
    """transformers 4.x load_tf_weights_in_mobilebert's attribute walk (re-stated): the torch parameter the TF
    variable would be loaded into, and whether HF transposes it."""
    name = tf_name
    for old, new in [("ffn_layer", "ffn"), ("FakeLayerNorm", "LayerNorm"), ("extra_output_weights", "dense/kernel"),
                     ("bert", "mobilebert")]:
        name = name.replace(old, new)
    pointer = model
    parts = name.split("/")
    for part in parts:
        scope = re.split(r"_(\d+)", part) if re.fullmatch(r"[A-Za-z]+_\d+", part) else [part]
        attr = {"kernel": "weight", "gamma": "weight", "output_weights": "weight", "output_bias": "bias",
                "beta": "bias"}.get(scope[0], scope[0])
        pointer = getattr(pointer, attr)
        if len(scope) >= 2:
            pointer = pointer[int(scope[1])]
    if parts[-1].endswith("_embeddings"):
        pointer = pointer.weight
    return pointer, parts[-1] == "kernel"


@pytest.mark.parametrize("config", ["tiny", "no_bottleneck_layer_norm"])
def test_matches_hf_attribute_walk(config):
    model = make_tiny_hf_model("MobileBertForPreTraining", **CONFIGS[config])
    params = dict(model.named_parameters(remove_duplicate=False))
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    for tf_name in google_checkpoint(sd):
        hf_name, transpose = google_tf_name_to_hf(tf_name)
        pointer, hf_transpose = _hf_pointer_walk(model, tf_name)
        assert pointer is params[hf_name], tf_name
        assert transpose == hf_transpose, tf_name
