"""TFMobileBert* twins: call conventions, TF loss shapes and reductions, TF numerics, tf_model.h5 round trips.

Parity with transformers 4.x's TensorFlow classes on committed goldens is in test_tf_goldens.py; this file checks
what can be derived without TensorFlow: the twins against their PyTorch-named classes (same weights), the TF
losses against float64 formulas written here from transformers' modeling_tf_utils, and the h5 layout.
"""

from __future__ import annotations

import numpy as np
import pytest

import mobilebert_lite as mbl
from mobilebert_lite import tf_modeling
from mobilebert_lite.converters import tf_h5

h5py = pytest.importorskip("h5py")

SMALL = dict(vocab_size=99, hidden_size=32, embedding_size=16, intra_bottleneck_size=16, num_attention_heads=2,
             num_hidden_layers=2, num_feedforward_networks=2, intermediate_size=24, max_position_embeddings=32,
             num_labels=3)
CONFIGS = {
    "no_norm": {},
    "layer_norm": dict(normalization_type="layer_norm", hidden_act="gelu", layer_norm_eps=1e-3),
}
TF_CLASSES = sorted(tf_modeling.TF_MODEL_CLASSES)
PT_OF = {name: name[2:] for name in TF_CLASSES}


def make_config(class_name, config_name):
    kwargs = {**SMALL, **CONFIGS[config_name]}
    if "QuestionAnswering" in class_name:
        kwargs["num_labels"] = 2
    return mbl.MobileBertConfig(**kwargs)


def random_params(cls, config, seed=0):
    """Every weight random (no zero bias or unit norm can hide a wrong parameter); the decoder untied."""
    params = cls(config, backend="reference").params
    rng = np.random.default_rng(seed)
    out = {k: (rng.standard_normal(v.shape) * 0.2).astype(np.float32) for k, v in params.items()}
    for k in out:
        if k.endswith("LayerNorm.weight"):
            out[k] = (1 + out[k]).astype(np.float32)
    if "cls.predictions.bias" in out:
        out["cls.predictions.decoder.weight"] = (rng.standard_normal(
            (config.vocab_size, config.embedding_size)) * 0.2).astype(np.float32)
    return out


def inputs(class_name, rng, fully_masked=False):
    ids = rng.integers(1, 99, size=(3, 7))
    mask = np.ones_like(ids)
    mask[1, 5:] = 0
    if fully_masked:
        mask[2, :] = 0
    types = (np.arange(7) >= 4).astype(np.int64)[None].repeat(3, 0)
    if "MultipleChoice" in class_name:
        return {k: np.stack([v, v[::-1]], 1) for k, v in
                dict(input_ids=ids, attention_mask=mask, token_type_ids=types).items()}
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


@pytest.fixture(scope="module", params=[(c, k) for c in TF_CLASSES for k in CONFIGS], ids=lambda p: f"{p[0]}-{p[1]}")
def twin(request):
    class_name, config_name = request.param
    config = make_config(class_name, config_name)
    params = random_params(getattr(mbl, class_name), config)
    return class_name, config_name, config, params


def test_h5_round_trip_and_from_pt(twin, tmp_path, backend):
    class_name, _, config, params = twin
    cls = getattr(mbl, class_name)
    model = cls(config, params, backend=backend)
    model.save_pretrained(tmp_path / "tf")
    assert (tmp_path / "tf" / "tf_model.h5").is_file()
    again = cls.from_pretrained(tmp_path / "tf", backend=backend)
    assert set(again.params) == set(model.params)
    for k, v in model.params.items():
        assert np.array_equal(again.params[k], v), k
    # the PyTorch-named class reads the same h5 with from_tf=True, and the TF class reads safetensors with from_pt
    pt = getattr(mbl, PT_OF[class_name]).from_pretrained(tmp_path / "tf", from_tf=True, backend=backend)
    for k, v in model.params.items():
        assert np.array_equal(pt.params[k], v), k
    pt.save_pretrained(tmp_path / "pt")
    from_pt = cls.from_pretrained(tmp_path / "pt", from_pt=True, backend=backend)
    for k, v in model.params.items():
        assert np.array_equal(from_pt.params[k], v), k
    with pytest.raises(FileNotFoundError, match="from_pt=True"):
        cls.from_pretrained(tmp_path / "pt", backend=backend)


def test_same_as_pytorch_class_where_numerics_agree(twin, backend, rtol):
    """no_norm and no fully masked row: TF and PyTorch semantics give the same outputs."""
    class_name, config_name, config, params = twin
    tf_model = getattr(mbl, class_name)(config, params, backend=backend)
    pt_model = getattr(mbl, PT_OF[class_name])(config, params, backend=backend)
    feed = inputs(class_name, np.random.default_rng(1))
    tf_out = tf_model(feed, output_hidden_states=True, output_attentions=True)
    pt_out = pt_model(**feed, output_hidden_states=True, output_attentions=True)
    assert type(tf_out).__name__ == "TF" + type(pt_out).__name__.removeprefix("MobileBert") or \
        type(tf_out).__name__ == "TF" + type(pt_out).__name__
    assert list(tf_out.keys()) == list(pt_out.keys())
    for key in pt_out:
        a, b = tf_out[key], pt_out[key]
        pairs = zip(a, b) if isinstance(a, tuple) else [(a, b)]
        for x, y in pairs:
            if config_name == "no_norm":
                np.testing.assert_allclose(x, y, rtol=0, atol=rtol * max(1.0, float(np.abs(y).max())))
            else:  # the eps of embeddings.LayerNorm / output.LayerNorm differs (config eps vs torch's 1e-5)
                assert x.shape == y.shape


def test_tf_numerics_native_matches_reference(twin, rtol):
    """A fully masked row (TF adds -10000, so it attends like an unmasked row) and the config eps at every norm:
    the native engine must follow the reference engine's TF semantics."""
    if "native" not in mbl.BACKENDS:
        pytest.skip("native module not built")
    class_name, _, config, params = twin
    ref = getattr(mbl, class_name)(config, params, backend="reference")
    nat = getattr(mbl, class_name)(config, params, backend="native")
    feed = inputs(class_name, np.random.default_rng(2), fully_masked=True)
    a = ref(feed, output_hidden_states=True, output_attentions=True)
    b = nat(feed, output_hidden_states=True, output_attentions=True)
    for key in a:
        xs = a[key] if isinstance(a[key], tuple) else (a[key],)
        ys = b[key] if isinstance(b[key], tuple) else (b[key],)
        for x, y in zip(xs, ys):
            np.testing.assert_allclose(y, x, rtol=0, atol=1e-4 * max(1.0, float(np.abs(x).max())))


def test_fully_masked_row_is_not_uniform_in_tf():
    config = make_config("TFMobileBertModel", "no_norm")
    params = random_params(mbl.TFMobileBertModel, config)
    feed = inputs("TFMobileBertModel", np.random.default_rng(3), fully_masked=True)
    tf_attn = mbl.TFMobileBertModel(config, params, backend="reference")(feed, output_attentions=True).attentions
    pt_attn = mbl.MobileBertModel(config, params, backend="reference")(**feed, output_attentions=True).attentions
    np.testing.assert_allclose(pt_attn[0][2], 1 / 7, rtol=1e-6)  # PyTorch: uniform
    assert np.abs(tf_attn[0][2] - 1 / 7).max() > 1e-2  # TF: the softmax of the unmasked scores
    unmasked = dict(feed, attention_mask=np.ones_like(feed["attention_mask"]))
    ref = mbl.TFMobileBertModel(config, params, backend="reference")(unmasked, output_attentions=True).attentions
    np.testing.assert_allclose(tf_attn[0][2], ref[0][2], atol=5e-4)  # rounding at ulp(10000) only


# ----------------------------------------------------------------------------------------------- TF losses
def _ce_rows(logits, labels):
    logits = logits.astype(np.float64).reshape(-1, logits.shape[-1])
    z = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    return z - logits[np.arange(len(labels.reshape(-1))), labels.reshape(-1)]


@pytest.mark.parametrize("legacy", [False, True])
def test_tf_loss_shapes_and_values(legacy):
    rng = np.random.default_rng(4)
    for class_name in TF_CLASSES:
        config = make_config(class_name, "no_norm")
        config.tf_legacy_loss = legacy
        model = getattr(mbl, class_name)(config, random_params(getattr(mbl, class_name), config),
                                         backend="reference")
        feed = inputs(class_name, rng)
        B, L = 3, 7
        if class_name == "TFMobileBertModel":
            continue
        if class_name == "TFMobileBertForPreTraining":
            labels = rng.integers(0, 99, (B, L))
            labels[0, :3] = -100
            nsp = np.array([0, 1, -100])
            out = model(feed, labels=labels, next_sentence_label=nsp)
            keep = labels != -100
            mlm = _ce_rows(out.prediction_logits, np.where(keep, labels, 0))[keep.reshape(-1)].mean()
            ns = _ce_rows(out.seq_relationship_logits, np.array([0, 1, 0]))[:2].mean()
            expected = np.array([mlm + ns])
        elif class_name == "TFMobileBertForMaskedLM":
            labels = rng.integers(0, 99, (B, L))
            labels[1, 2:] = -100
            out = model(feed, labels=labels)
            keep = (labels != -100).reshape(-1)
            rows = _ce_rows(out.logits, np.where(labels != -100, labels, 0))[keep]
            expected = rows if legacy else np.array([rows.mean()])
        elif class_name == "TFMobileBertForNextSentencePrediction":
            labels = np.array([1, -100, 0])
            out = model(feed, next_sentence_label=labels)
            rows = _ce_rows(out.logits, np.array([1, 0, 0]))
            expected = rows[[0, 2]] if legacy else rows * np.array([1, 0, 1])
        elif class_name == "TFMobileBertForTokenClassification":
            labels = rng.integers(0, 3, (B, L))
            labels[0, 0] = -100
            if not legacy:  # TF's own loss ignores every negative label; the legacy one either -1 or -100
                labels[2, 3] = -1
            out = model(feed, labels=labels)
            keep = (labels >= 0).reshape(-1)
            rows = _ce_rows(out.logits, np.where(labels >= 0, labels, 0))[keep]
            expected = rows if legacy else np.array([rows.mean()])
        elif class_name == "TFMobileBertForQuestionAnswering":
            s, e = np.array([0, 3, 6]), np.array([2, 5, 6])
            out = model(feed, start_positions=s, end_positions=e)
            expected = (_ce_rows(out.start_logits, s) + _ce_rows(out.end_logits, e)) / 2
            with pytest.raises(ValueError, match="start_positions"):
                model(feed, start_positions=np.array([0, 3, 7]), end_positions=e)
        else:  # sequence classification, multiple choice: one loss per example
            labels = np.array([2, 0, 1]) if "Sequence" in class_name else np.array([1, 0, 1])
            out = model(feed, labels=labels)
            expected = _ce_rows(out.logits, labels)
        assert out.loss.dtype == np.float32
        assert out.loss.shape == expected.shape, (class_name, out.loss.shape, expected.shape)
        np.testing.assert_allclose(out.loss, expected, rtol=1e-5, err_msg=class_name)


def test_sequence_regression_loss_is_per_example_squared_error():
    config = make_config("TFMobileBertForSequenceClassification", "no_norm")
    config.num_labels = 1
    config.problem_type = "multi_label_classification"  # ignored by TF
    cls = mbl.TFMobileBertForSequenceClassification
    model = cls(config, random_params(cls, config), backend="reference")
    feed = inputs("x", np.random.default_rng(5))
    y = np.array([0.5, -1.0, 2.0], np.float32)
    out = model(feed, labels=y)
    np.testing.assert_allclose(out.loss, (out.logits[:, 0].astype(np.float64) - y) ** 2, rtol=1e-5)


# ------------------------------------------------------------------------------------------ call conventions
def test_input_forms_agree():
    config = make_config("TFMobileBertForSequenceClassification", "no_norm")
    cls = mbl.TFMobileBertForSequenceClassification
    model = cls(config, random_params(cls, config), backend="reference")
    feed = inputs("x", np.random.default_rng(6))
    by_kw = model(**feed).logits
    np.testing.assert_array_equal(model(feed).logits, by_kw)  # dict as the first argument
    np.testing.assert_array_equal(model([feed["input_ids"], feed["attention_mask"], feed["token_type_ids"]]).logits,
                                  by_kw)  # list in signature order
    np.testing.assert_array_equal(model(feed["input_ids"], feed["attention_mask"], feed["token_type_ids"]).logits,
                                  by_kw)
    np.testing.assert_array_equal(model(dict(feed, labels=np.array([0, 1, 2]))).loss,
                                  model(**feed, labels=np.array([0, 1, 2])).loss)
    tup = model(feed, labels=np.array([0, 1, 2]), return_dict=False)
    assert isinstance(tup, tuple) and tup[0].shape == (3,)
    assert model(feed, training=False).logits.shape == (3, 3)
    with pytest.raises(ValueError, match="not supported by this model: \\['foo'\\]"):
        model(feed, foo=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        model(dict(feed, foo=1))
    with pytest.raises(NotImplementedError, match="training=True"):
        model(feed, training=True)
    with pytest.raises(NotImplementedError, match="head_mask"):
        model(feed, head_mask=np.ones((2, 2)))


def test_nsp_label_is_called_next_sentence_label():
    config = make_config("TFMobileBertForNextSentencePrediction", "no_norm")
    cls = mbl.TFMobileBertForNextSentencePrediction
    model = cls(config, random_params(cls, config), backend="reference")
    feed = inputs("x", np.random.default_rng(7))
    assert model(feed, next_sentence_label=np.array([0, 1, 0])).loss.shape == (3,)
    with pytest.raises(ValueError, match="labels"):
        model(feed, labels=np.array([0, 1, 0]))


# ---------------------------------------------------------------------------------------------- h5 layout
def test_h5_names_follow_keras_layout(tmp_path):
    config = make_config("TFMobileBertForPreTraining", "no_norm")
    cls = mbl.TFMobileBertForPreTraining
    cls(config, random_params(cls, config), backend="reference").save_pretrained(tmp_path)
    with h5py.File(tmp_path / "tf_model.h5", "r") as f:
        layers = [x.decode() for x in f.attrs["layer_names"]]
        assert layers == ["mobilebert", "predictions___cls", "seq_relationship___cls"]
        names = {layer: [x.decode() for x in f[layer].attrs["weight_names"]] for layer in layers}
    scope = "tf_mobile_bert_for_pre_training/"
    assert scope + "mobilebert/encoder/layer_._1/ffn.0/output/LayerNorm/weight:0" in names["mobilebert"]
    assert scope + "mobilebert/embeddings/position_embeddings/embeddings:0" in names["mobilebert"]
    assert scope + "mobilebert/encoder/layer_._0/attention/self/query/kernel:0" in names["mobilebert"]
    preds = names["predictions___cls"]
    for var in ("transform/LayerNorm/gamma:0", "transform/dense/kernel:0", "dense/weight:0", "decoder/weight:0",
                "bias:0"):
        assert scope + "predictions___cls/predictions/" + var in preds, var
    assert names["seq_relationship___cls"] == [scope + "seq_relationship___cls/seq_relationship/kernel:0",
                                               scope + "seq_relationship___cls/seq_relationship/bias:0"] or \
        sorted(names["seq_relationship___cls"]) == sorted([
            scope + "seq_relationship___cls/seq_relationship/kernel:0",
            scope + "seq_relationship___cls/seq_relationship/bias:0"])


def test_name_mapping_examples():
    assert tf_h5.tf_to_pt_name("mobilebert/encoder/layer_._2/ffn.0/output/LayerNorm/weight:0") == (
        "mobilebert.encoder.layer.2.ffn.0.output.LayerNorm.weight", False)
    assert tf_h5.tf_to_pt_name("predictions___cls/predictions/transform/LayerNorm/gamma:0") == (
        "cls.predictions.transform.LayerNorm.weight", False)
    assert tf_h5.tf_to_pt_name("mlm___cls/predictions/transform/LayerNorm/beta:0") == (
        "cls.predictions.transform.LayerNorm.bias", False)
    assert tf_h5.tf_to_pt_name("seq_relationship___cls/seq_relationship/kernel:0") == (
        "cls.seq_relationship.weight", True)


def test_corrupt_h5_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text(make_config("TFMobileBertModel", "no_norm").to_json_string())
    (tmp_path / "tf_model.h5").write_bytes(b"not an hdf5 file")
    with pytest.raises(mbl.CheckpointError, match="not a readable HDF5 file"):
        mbl.TFMobileBertModel.from_pretrained(tmp_path)
