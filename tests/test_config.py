"""MobileBertConfig: HF defaults, JSON round trips with transformers, old configs, validation."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

import mobilebert_lite as mbl

transformers = pytest.importorskip("transformers")
HFConfig = transformers.MobileBertConfig

# Fields HF writes that are bookkeeping, not configuration.
_NOT_COMPARED = {"transformers_version", "_name_or_path"}


def _hf_field_names():
    """Every HF MobileBertConfig field (dataclass fields incl. the generic PretrainedConfig ones) + derived."""
    names = [f.name for f in dataclasses.fields(HFConfig) if f.name not in _NOT_COMPARED]
    return names + ["num_labels", "true_hidden_size", "model_type", "output_attentions"]


def _plain(v):
    """HF turns a JSON dtype string into a torch.dtype; compare it as its name."""
    if type(v).__module__ == "torch" and type(v).__name__ == "dtype":
        return str(v).split(".")[-1]
    return v


def _same(a, b):
    a, b = _plain(a), _plain(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _assert_fields_equal(ours, hf, names):
    bad = []
    for name in names:
        o = getattr(ours, name, "<absent>")
        h = getattr(hf, name, "<absent>")
        if not _same(o, h):
            bad.append(f"{name}: ours={o!r} hf={h!r}")
    assert not bad, "fields differ:\n" + "\n".join(bad)


# A config that differs from the defaults in every MobileBERT field (and a few generic ones).
NON_DEFAULT = dict(
    vocab_size=1234,
    hidden_size=96,
    num_hidden_layers=3,
    num_attention_heads=2,
    intermediate_size=80,
    hidden_act="gelu_new",
    hidden_dropout_prob=0.05,
    attention_probs_dropout_prob=0.0,
    max_position_embeddings=128,
    type_vocab_size=3,
    initializer_range=0.01,
    layer_norm_eps=1e-6,
    pad_token_id=1,
    embedding_size=32,
    trigram_input=False,
    use_bottleneck=True,
    intra_bottleneck_size=48,
    use_bottleneck_attention=True,
    key_query_shared_bottleneck=False,
    num_feedforward_networks=2,
    normalization_type="layer_norm",
    classifier_activation=False,
    classifier_dropout=0.2,
    tie_word_embeddings=False,
    id2label={0: "negative", 1: "neutral", 2: "positive"},
    label2id={"negative": 0, "neutral": 1, "positive": 2},
    problem_type="single_label_classification",
    architectures=["MobileBertForSequenceClassification"],
    output_hidden_states=True,
)

# google-research/google-research mobilebert/config/uncased_L-24_H-128_B-512_A-4_F-4_OPT.json style:
# the original 2020 JSON, no model_type, no layer_norm_eps, no pad_token_id, no classifier_activation.
OLD_2020_UNCASED = {
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "relu",
    "hidden_dropout_prob": 0.0,
    "embedding_size": 128,
    "hidden_size": 512,
    "initializer_range": 0.02,
    "intermediate_size": 512,
    "max_position_embeddings": 512,
    "num_attention_heads": 4,
    "num_hidden_layers": 24,
    "type_vocab_size": 2,
    "vocab_size": 30522,
    "trigram_input": True,
    "use_bottleneck": True,
    "intra_bottleneck_size": 128,
    "use_bottleneck_attention": False,
    "key_query_shared_bottleneck": True,
    "num_feedforward_networks": 4,
    "normalization_type": "no_norm",
}

# The TINY variant omits key_query_shared_bottleneck (HF default True fills it in).
OLD_2020_TINY = {
    **{k: v for k, v in OLD_2020_UNCASED.items() if k != "key_query_shared_bottleneck"},
    "use_bottleneck_attention": True,
    "num_feedforward_networks": 2,
}

# A 2020/2021 transformers v4 config (csarron/... style): model_type and torch_dtype-era keys present.
V4_STYLE = {
    **OLD_2020_UNCASED,
    "architectures": ["MobileBertForQuestionAnswering"],
    "classifier_activation": False,
    "layer_norm_eps": 1e-12,
    "model_type": "mobilebert",
    "pad_token_id": 0,
    "true_hidden_size": 128,
    "transformers_version": "4.6.0.dev0",
    "torch_dtype": "float32",
}


# --------------------------------------------------------------------------------------------- defaults


def test_defaults_equal_hf_defaults():
    ours = mbl.MobileBertConfig()
    hf = HFConfig()
    _assert_fields_equal(ours, hf, _hf_field_names())


def test_default_labels_and_model_type():
    cfg = mbl.MobileBertConfig()
    assert cfg.num_labels == 2
    assert cfg.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    assert cfg.label2id == {"LABEL_0": 0, "LABEL_1": 1}
    assert cfg.model_type == "mobilebert"
    assert cfg.problem_type is None
    assert cfg.finetuning_task is None
    assert cfg.classifier_activation is True


@pytest.mark.parametrize("n", [1, 3, 7])
def test_num_labels_kwarg_builds_labels_like_hf(n):
    ours = mbl.MobileBertConfig(num_labels=n)
    hf = HFConfig(num_labels=n)
    assert ours.num_labels == hf.num_labels == n
    assert ours.id2label == hf.id2label
    assert ours.label2id == hf.label2id


def test_kwargs_equal_hf_kwargs():
    ours = mbl.MobileBertConfig(**NON_DEFAULT)
    hf = HFConfig(**NON_DEFAULT)
    _assert_fields_equal(ours, hf, _hf_field_names())


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (dict(use_bottleneck=True, intra_bottleneck_size=64), 64),
        (dict(use_bottleneck=False, hidden_size=96, intra_bottleneck_size=64, embedding_size=32), 96),
        (dict(use_bottleneck=True, intra_bottleneck_size=64, true_hidden_size=999), 64),
        (dict(use_bottleneck=False, hidden_size=96, embedding_size=32, true_hidden_size=128), 96),
    ],
)
def test_true_hidden_size_is_derived(kwargs, expected):
    assert mbl.MobileBertConfig(**kwargs).true_hidden_size == expected


def test_true_hidden_size_follows_later_changes_or_is_consistent():
    cfg = mbl.MobileBertConfig.from_dict(dict(use_bottleneck=True, intra_bottleneck_size=64))
    assert cfg.true_hidden_size == 64
    assert cfg.to_dict()["true_hidden_size"] == 64


# ------------------------------------------------------------------------------------ JSON round trips


def test_hf_save_then_ours_load(tmp_path):
    hf = HFConfig(**NON_DEFAULT, custom_note="kept")
    hf.save_pretrained(tmp_path)
    hf_loaded = HFConfig.from_pretrained(tmp_path)
    for source in (tmp_path, tmp_path / "config.json", str(tmp_path)):
        ours = mbl.MobileBertConfig.from_pretrained(source)
        _assert_fields_equal(ours, hf_loaded, _hf_field_names())
        assert ours.custom_note == "kept"
        # JSON has string keys; in Python id2label keys are ints, like HF
        assert all(type(k) is int for k in ours.id2label)
        assert all(type(v) is int for v in ours.label2id.values())


def test_ours_save_then_hf_load(tmp_path):
    ours = mbl.MobileBertConfig(**NON_DEFAULT, custom_note="kept")
    ours.save_pretrained(tmp_path)
    hf_loaded = HFConfig.from_pretrained(tmp_path)
    hf_expected = HFConfig(**NON_DEFAULT, custom_note="kept")
    _assert_fields_equal(hf_loaded, hf_expected, _hf_field_names())
    assert hf_loaded.custom_note == "kept"
    # HF's config.json conventions: id2label keys are strings in the file, model_type is present
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["model_type"] == "mobilebert"
    assert data["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert data["label2id"] == {"negative": 0, "neutral": 1, "positive": 2}
    assert data["problem_type"] == "single_label_classification"


def test_ours_save_then_ours_load(tmp_path):
    ours = mbl.MobileBertConfig(**NON_DEFAULT, custom_note={"nested": [1, 2]})
    ours.save_pretrained(tmp_path)
    again = mbl.MobileBertConfig.from_pretrained(tmp_path)
    _assert_fields_equal(again, ours, _hf_field_names() + ["custom_note"])
    assert again.to_dict() == {**ours.to_dict(), "_name_or_path": again.to_dict()["_name_or_path"]}


def test_defaults_round_trip_with_hf(tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "ours").mkdir()
    HFConfig().save_pretrained(tmp_path / "hf")
    _assert_fields_equal(mbl.MobileBertConfig.from_pretrained(tmp_path / "hf"), HFConfig(), _hf_field_names())
    mbl.MobileBertConfig().save_pretrained(tmp_path / "ours")
    _assert_fields_equal(HFConfig.from_pretrained(tmp_path / "ours"), HFConfig(), _hf_field_names())


def test_to_dict_from_dict_and_json_string():
    ours = mbl.MobileBertConfig(**NON_DEFAULT)
    d = ours.to_dict()
    assert d["model_type"] == "mobilebert"
    assert d["true_hidden_size"] == 48
    assert d["id2label"] == NON_DEFAULT["id2label"]
    assert d["hidden_act"] == "gelu_new"
    again = mbl.MobileBertConfig.from_dict(d)
    _assert_fields_equal(again, ours, _hf_field_names())
    js = json.loads(ours.to_json_string())
    assert js["id2label"] == {"0": "negative", "1": "neutral", "2": "positive"}
    assert js["normalization_type"] == "layer_norm"
    assert js["classifier_activation"] is False
    _assert_fields_equal(mbl.MobileBertConfig.from_dict(js), ours, _hf_field_names())
    # the JSON string is what HF reads, too
    hf = HFConfig.from_dict(js)
    _assert_fields_equal(hf, HFConfig(**NON_DEFAULT), _hf_field_names())


def test_unknown_keys_are_kept_and_round_trip(tmp_path):
    cfg = mbl.MobileBertConfig(tokenizer_class="MobileBertTokenizer", my_extra={"a": [1, 2]})
    assert cfg.tokenizer_class == "MobileBertTokenizer"
    assert cfg.my_extra == {"a": [1, 2]}
    d = cfg.to_dict()
    assert d["tokenizer_class"] == "MobileBertTokenizer"
    assert d["my_extra"] == {"a": [1, 2]}
    assert mbl.MobileBertConfig.from_dict(d).my_extra == {"a": [1, 2]}
    cfg.save_pretrained(tmp_path)
    assert mbl.MobileBertConfig.from_pretrained(tmp_path).my_extra == {"a": [1, 2]}
    assert HFConfig.from_pretrained(tmp_path).my_extra == {"a": [1, 2]}


# ----------------------------------------------------------------------------------------- old configs


@pytest.mark.parametrize("name, data", [("uncased", OLD_2020_UNCASED), ("tiny", OLD_2020_TINY), ("v4", V4_STYLE)])
def test_old_config_json_gets_hf_defaults(tmp_path, name, data):
    (tmp_path / "config.json").write_text(json.dumps(data))
    ours = mbl.MobileBertConfig.from_pretrained(tmp_path)
    hf = HFConfig.from_pretrained(tmp_path)
    # HF keeps a JSON true_hidden_size verbatim; ours always recomputes; these files are consistent.
    _assert_fields_equal(ours, hf, _hf_field_names())
    assert ours.model_type == "mobilebert"
    assert ours.layer_norm_eps == 1e-12
    assert ours.pad_token_id == 0
    assert ours.true_hidden_size == 128
    if "classifier_activation" not in data:
        assert ours.classifier_activation is True  # absent means True (HF default)
    else:
        assert ours.classifier_activation is data["classifier_activation"]
    if name == "tiny":
        assert ours.key_query_shared_bottleneck is True
        assert ours.use_bottleneck_attention is True


def test_old_config_written_back_loads_in_hf(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "config.json").write_text(json.dumps(OLD_2020_UNCASED))
    mbl.MobileBertConfig.from_pretrained(tmp_path / "in").save_pretrained(tmp_path / "out")
    hf = HFConfig.from_pretrained(tmp_path / "out")
    _assert_fields_equal(hf, HFConfig.from_pretrained(tmp_path / "in"), _hf_field_names())
    assert hf.classifier_activation is True


def test_teacher_json_without_normalization_type_uses_hf_defaults(tmp_path):
    data = {k: v for k, v in OLD_2020_UNCASED.items() if k not in ("normalization_type", "num_feedforward_networks")}
    data.update(hidden_act="gelu", intermediate_size=4096, intra_bottleneck_size=1024, hidden_dropout_prob=0.1)
    (tmp_path / "config.json").write_text(json.dumps(data))
    ours = mbl.MobileBertConfig.from_pretrained(tmp_path)
    assert ours.normalization_type == "no_norm"
    assert ours.num_feedforward_networks == 4
    assert ours.true_hidden_size == 1024
    _assert_fields_equal(ours, HFConfig.from_pretrained(tmp_path), _hf_field_names())


@pytest.mark.parametrize(
    "data, expected",
    [
        ({**OLD_2020_UNCASED, "true_hidden_size": 999}, 128),
        ({**OLD_2020_UNCASED, "use_bottleneck": False, "true_hidden_size": 128}, 512),
        ({**OLD_2020_UNCASED, "intra_bottleneck_size": 256, "true_hidden_size": 128}, 256),
    ],
)
def test_true_hidden_size_in_json_is_ignored(tmp_path, data, expected):
    (tmp_path / "config.json").write_text(json.dumps(data))
    cfg = mbl.MobileBertConfig.from_pretrained(tmp_path)
    assert cfg.true_hidden_size == expected
    assert mbl.MobileBertConfig.from_dict(data).true_hidden_size == expected
    assert json.loads(cfg.to_json_string())["true_hidden_size"] == expected


def test_classifier_activation_absent_means_true():
    assert mbl.MobileBertConfig.from_dict(OLD_2020_UNCASED).classifier_activation is True
    explicit = mbl.MobileBertConfig.from_dict({**OLD_2020_UNCASED, "classifier_activation": False})
    assert explicit.classifier_activation is False


def test_config_from_pretrained_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        mbl.MobileBertConfig.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError):
        mbl.MobileBertConfig.from_pretrained(tmp_path / "nope.json")


# ------------------------------------------------------------------------------------------ activations

# prelu and xielu carry trainable parameters no MobileBERT checkpoint has.
_HF_ACTS = sorted(set(transformers.activations.ACT2CLS) - {"prelu", "xielu"})


@pytest.mark.parametrize("act", _HF_ACTS)
def test_every_hf_activation_name_is_accepted(act):
    assert mbl.MobileBertConfig(hidden_act=act).hidden_act == act


# ------------------------------------------------------------------------------------------- validation

INVALID = [
    # true_hidden_size not divisible by num_attention_heads
    (dict(use_bottleneck=True, intra_bottleneck_size=30, num_attention_heads=4), "num_attention_heads"),
    (dict(use_bottleneck=False, hidden_size=30, embedding_size=16, num_attention_heads=4), "num_attention_heads"),
    (dict(intra_bottleneck_size=128, num_attention_heads=3), "num_attention_heads"),
    (dict(normalization_type="batch_norm"), "normalization_type"),
    (dict(normalization_type="LayerNorm"), "normalization_type"),
    (dict(hidden_act="not_an_activation"), "hidden_act"),
    (
        dict(use_bottleneck=True, use_bottleneck_attention=False, key_query_shared_bottleneck=False),
        "key_query_shared_bottleneck",
    ),
    (dict(num_labels=0), "num_labels"),
    (dict(num_labels=-2), "num_labels"),
]
for _field in (
    "vocab_size",
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
    "embedding_size",
    "intra_bottleneck_size",
):
    INVALID.append(({_field: 0}, _field))
    INVALID.append(({_field: -4}, _field))
INVALID.append((dict(num_hidden_layers=-1), "num_hidden_layers"))
INVALID.append((dict(num_feedforward_networks=-1), "num_feedforward_networks"))


def _ids(case):
    kwargs, field = case
    return field + ":" + ",".join(f"{k}={v}" for k, v in kwargs.items())


@pytest.mark.parametrize("case", INVALID, ids=[_ids(c) for c in INVALID])
def test_invalid_config_raises_naming_field(case):
    kwargs, field = case
    with pytest.raises(ValueError, match=re.escape(field)):
        mbl.MobileBertConfig(**kwargs)
    with pytest.raises(ValueError, match=re.escape(field)):
        mbl.MobileBertConfig.from_dict(dict(kwargs))


@pytest.mark.parametrize("case", INVALID[:8], ids=[_ids(c) for c in INVALID[:8]])
def test_invalid_config_json_raises_naming_field(tmp_path, case):
    kwargs, field = case
    data = {**OLD_2020_UNCASED, **kwargs}
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=re.escape(field)):
        mbl.MobileBertConfig.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(use_bottleneck=True, use_bottleneck_attention=True, key_query_shared_bottleneck=False),
        dict(use_bottleneck=False, use_bottleneck_attention=False, key_query_shared_bottleneck=False),
        dict(use_bottleneck=False, hidden_size=64, embedding_size=64, num_attention_heads=16),
        dict(normalization_type="layer_norm"),
        dict(num_labels=1),
    ],
)
def test_valid_corner_configs_are_accepted(kwargs):
    cfg = mbl.MobileBertConfig(**kwargs)
    for k, v in kwargs.items():
        assert getattr(cfg, k) == v


def test_num_labels_setter_like_hf():
    ours, hf = mbl.MobileBertConfig(), HFConfig()
    ours.num_labels = 4
    hf.num_labels = 4
    assert ours.num_labels == hf.num_labels == 4
    assert ours.id2label == hf.id2label
    assert ours.label2id == hf.label2id
