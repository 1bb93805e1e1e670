"""MobileBertConfig: every field of transformers' MobileBertConfig, with HF's defaults.

A config.json written by transformers (any version since 2020, including the original Google JSON without
`model_type`/`layer_norm_eps`) loads here; one written here loads in transformers.
"""

from __future__ import annotations

import copy
import json
import os

from .activations import ACTIVATIONS

# The model's own fields, in HF's order, with HF's defaults. Note classifier_activation: HF's default is True,
# while google/mobilebert-uncased's config says false; a config without the key means True.
MOBILEBERT_DEFAULTS = {
    "vocab_size": 30522,
    "hidden_size": 512,
    "num_hidden_layers": 24,
    "num_attention_heads": 4,
    "intermediate_size": 512,
    "hidden_act": "relu",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "embedding_size": 128,
    "trigram_input": True,
    "use_bottleneck": True,
    "intra_bottleneck_size": 128,
    "use_bottleneck_attention": False,
    "key_query_shared_bottleneck": True,
    "num_feedforward_networks": 4,
    "normalization_type": "no_norm",
    "classifier_activation": True,
    "classifier_dropout": None,
    "tie_word_embeddings": True,
}

# Generic PretrainedConfig fields that heads, pipelines and HF's loaders read.
GENERIC_DEFAULTS = {
    "architectures": None,
    "output_hidden_states": False,
    "output_attentions": False,
    "return_dict": True,
    "dtype": None,
    "chunk_size_feed_forward": 0,
    "is_encoder_decoder": False,
    "problem_type": None,
    "finetuning_task": None,
}

NORMALIZATION_TYPES = ("no_norm", "layer_norm")
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
_POSITIVE_INT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
    "embedding_size",
    "intra_bottleneck_size",
    "num_feedforward_networks",
)
_BOOL_FIELDS = (
    "trigram_input",
    "use_bottleneck",
    "use_bottleneck_attention",
    "key_query_shared_bottleneck",
    "classifier_activation",
    "tie_word_embeddings",
)
# Keys HF writes that carry no meaning for us and must not be stored as attributes.
_DROPPED_KEYS = ("transformers_version", "true_hidden_size", "num_labels")
CONFIG_NAME = "config.json"


class MobileBertConfig:
    """Configuration of a MobileBERT model; field names and defaults follow transformers."""

    model_type = "mobilebert"

    def __init__(self, **kwargs):
        kwargs = dict(kwargs)
        # Old configs spell the storage dtype `torch_dtype`.
        if "torch_dtype" in kwargs:
            kwargs.setdefault("dtype", kwargs.pop("torch_dtype"))
        for key in _DROPPED_KEYS[:2]:
            kwargs.pop(key, None)
        num_labels = kwargs.pop("num_labels", None)
        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)
        kwargs.pop("model_type", None)

        for name, default in {**MOBILEBERT_DEFAULTS, **GENERIC_DEFAULTS}.items():
            setattr(self, name, copy.deepcopy(kwargs.pop(name, default)))
        self._name_or_path = kwargs.pop("_name_or_path", kwargs.pop("name_or_path", ""))
        # Anything else (tokenizer_class, task_specific_params, bos_token_id, ...) is kept, as HF does.
        for name, value in kwargs.items():
            if isinstance(getattr(type(self), name, None), property):
                continue  # derived values (true_hidden_size, ...) are recomputed, never stored
            setattr(self, name, value)

        self._set_labels(num_labels, id2label, label2id)
        self.validate()

    # ----------------------------------------------------------------- labels
    def _set_labels(self, num_labels, id2label, label2id):
        if id2label is not None:
            if not isinstance(id2label, dict):
                raise ValueError(f"id2label must be a dict of label id -> name, got {type(id2label).__name__}")
            try:
                id2label = {int(k): str(v) for k, v in id2label.items()}
            except (TypeError, ValueError) as exc:
                raise ValueError(f"id2label keys must be integers: {exc}") from None
            if num_labels is not None and int(num_labels) != len(id2label):
                raise ValueError(
                    f"num_labels={num_labels} is incompatible with the id2label map of length {len(id2label)}"
                )
            self.id2label = id2label
        else:
            n = 2 if num_labels is None else num_labels
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"num_labels must be a positive integer, got {n!r}")
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}
        if label2id is not None:
            if not isinstance(label2id, dict):
                raise ValueError(f"label2id must be a dict of label name -> id, got {type(label2id).__name__}")
            self.label2id = {str(k): int(v) for k, v in label2id.items()}
        else:
            self.label2id = {v: k for k, v in self.id2label.items()}

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"num_labels must be a positive integer, got {n!r}")
        if n != len(self.id2label):
            self._set_labels(n, None, None)

    # ---------------------------------------------------------- derived sizes
    @property
    def true_hidden_size(self) -> int:
        """Width of the attention/FFN stream: always derived, never read from JSON (as HF does)."""
        return self.intra_bottleneck_size if self.use_bottleneck else self.hidden_size

    @property
    def attention_head_size(self) -> int:
        return self.true_hidden_size // self.num_attention_heads

    @property
    def use_return_dict(self) -> bool:
        return bool(self.return_dict)

    # ------------------------------------------------------------- validation
    def validate(self) -> None:
        """Raise ValueError naming the first field that makes this config unusable."""
        for name in _POSITIVE_INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in _BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.true_hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} does not divide the attention width "
                f"true_hidden_size={self.true_hidden_size} (intra_bottleneck_size if use_bottleneck else hidden_size)"
            )
        if self.normalization_type not in NORMALIZATION_TYPES:
            raise ValueError(
                f"normalization_type must be one of {NORMALIZATION_TYPES}, got {self.normalization_type!r}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(
                f"hidden_act {self.hidden_act!r} is not supported; expected one of {sorted(ACTIVATIONS)}"
            )
        if self.use_bottleneck and not self.use_bottleneck_attention and not self.key_query_shared_bottleneck:
            # HF builds query/key with input width true_hidden_size but feeds them the hidden_size-wide input.
            raise ValueError(
                "key_query_shared_bottleneck=False with use_bottleneck=True and use_bottleneck_attention=False "
                "is a combination transformers cannot run (query/key input widths do not match)"
            )
        eps = self.layer_norm_eps
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"layer_norm_eps must be a positive number, got {eps!r}")
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be None or one of {PROBLEM_TYPES}, got {self.problem_type!r}")
        if self.problem_type == "single_label_classification" and self.num_labels == 1:
            raise ValueError(
                'problem_type="single_label_classification" requires num_labels > 1; '
                'use num_labels=2 or problem_type="regression"'
            )

    # --------------------------------------------------------- serialisation
    @classmethod
    def from_dict(cls, config_dict: dict, **overrides) -> MobileBertConfig:
        if not isinstance(config_dict, dict):
            raise TypeError(f"from_dict expects a dict, got {type(config_dict).__name__}")
        model_type = config_dict.get("model_type", "mobilebert")
        if model_type not in ("mobilebert", None):
            raise ValueError(f"model_type {model_type!r} is not a MobileBERT config")
        return cls(**{**config_dict, **overrides})

    @classmethod
    def from_json_file(cls, path) -> MobileBertConfig:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_pretrained(cls, path, **overrides) -> MobileBertConfig:
        """Read a directory holding config.json, or a JSON file itself."""
        path = os.fspath(path)
        file = os.path.join(path, CONFIG_NAME) if os.path.isdir(path) else path
        if not os.path.isfile(file):
            raise FileNotFoundError(f"no {CONFIG_NAME} found at {path}")
        config = cls.from_json_file(file)
        for key, value in overrides.items():
            if key in ("num_labels",):
                config.num_labels = value
            else:
                setattr(config, key, value)
        if not config._name_or_path:
            config._name_or_path = path
        config.validate()
        return config

    def to_dict(self) -> dict:
        out = {}
        for name in list(GENERIC_DEFAULTS) + ["id2label", "label2id"] + list(MOBILEBERT_DEFAULTS):
            out[name] = copy.deepcopy(getattr(self, name))
        out["true_hidden_size"] = self.true_hidden_size
        out["_name_or_path"] = self._name_or_path
        out["model_type"] = self.model_type
        for name, value in vars(self).items():
            if name not in out and not name.startswith("__"):
                out[name] = copy.deepcopy(value)
        return out

    def to_json_string(self) -> str:
        data = self.to_dict()
        data["id2label"] = {str(k): v for k, v in data["id2label"].items()}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def save_pretrained(self, directory) -> str:
        from .io_utils import atomic_write_bytes

        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, CONFIG_NAME)
        atomic_write_bytes(path, self.to_json_string().encode("utf-8"))
        return path

    def copy(self) -> MobileBertConfig:
        return copy.deepcopy(self)

    def __eq__(self, other) -> bool:
        return isinstance(other, MobileBertConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"MobileBertConfig {self.to_json_string()}"
