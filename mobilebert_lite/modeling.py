"""The eight MobileBert* classes with transformers' names, inputs, outputs and losses (NumPy in, NumPy out)."""

from __future__ import annotations

import os

import numpy as np

from . import losses
from .backends import make_engine
from .config import MobileBertConfig
from .hub import MODEL_FILES, resolve_model_dir
from .inputs import label_array, prepare_inputs
from .outputs import (
    BaseModelOutputWithPooling,
    MaskedLMOutput,
    MobileBertForPreTrainingOutput,
    MultipleChoiceModelOutput,
    NextSentencePredictorOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from .quantization import check_quantize, is_quantized_checkpoint, quantize_params, split_quantized
from .weights import class_spec, read_raw_weights, save_weights, select_weights


class MobileBertPreTrainedModel:
    """Shared loading, saving and encoder plumbing. Subclasses implement `forward` like their HF twins."""

    _semantics = "pt"  # transformers' PyTorch numerics; the TF twins (tf_modeling.py) set "tf"

    @classmethod
    def _spec_name(cls) -> str:
        """The PyTorch-named class whose weights and heads this class has (itself, or the one a TF twin wraps)."""
        return next(c.__name__ for c in cls.__mro__ if c.__name__ in MODEL_CLASSES)

    def __init__(self, config: MobileBertConfig, params: dict | None = None, *, backend: str | None = None,
                 num_threads: int | None = None, seed: int = 0, quantize: str | None = None):
        if not isinstance(config, MobileBertConfig):
            raise TypeError(f"config must be a MobileBertConfig, got {type(config).__name__}")
        config.validate()
        self._check_config(config)
        check_quantize(quantize)
        self.config = config
        name = self._spec_name()
        stored = None
        if params is not None and is_quantized_checkpoint(params):
            # an int8 checkpoint (or an int8 model's params) runs the Linears it holds in int8, as they are
            params, stored = split_quantized(params)
            quantize = "int8"
        params = random_params(config, name, seed) if params is None else select_weights(config, name, params)
        if stored is not None:
            params = quantize_params(params, stored, only=stored.__contains__)
        elif quantize == "int8":
            params = quantize_params(params)
        self.quantize, self._stored_int8 = quantize, stored
        self.params = params
        self.engine = make_engine(config, params, name, backend, num_threads, self._semantics)
        self.backend = self.engine.name
        self.num_threads = num_threads

    @staticmethod
    def _check_config(config: MobileBertConfig) -> None:
        pass

    # ----------------------------------------------------------------------------------- loading and saving
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, config: MobileBertConfig | None = None,
                        backend: str | None = None, num_threads: int | None = None, from_tf: bool = False,
                        weights_format: str | None = None, quantize: str | None = None, **config_overrides):
        """Load a local model directory: config.json + model.safetensors (or a sharded index, or a
        pytorch_model.bin read without torch); with from_tf=True, tf_model.h5 (needs h5py).

        quantize="int8" runs the encoder's Linears in int8 (weights per output channel, activations per token;
        see mobilebert_lite/quantization.py); a checkpoint written by `mobilebert-lite quantize` runs in int8
        without it."""
        fmt = weights_format or ("tf" if from_tf else "pt")
        path = resolve_model_dir(pretrained_model_name_or_path,
                                 ("tf_model.h5", "tf_model.h5.index.json") if fmt == "tf" else MODEL_FILES)
        if config is None:
            config = MobileBertConfig.from_pretrained(path, **config_overrides)
        elif config_overrides:
            raise TypeError("pass either config= or config overrides, not both")
        return cls(config, read_raw_weights(path, fmt), backend=backend, num_threads=num_threads, quantize=quantize)

    def save_pretrained(self, save_directory) -> None:
        """Write config.json and model.safetensors with HF's key names for this class (loadable by HF)."""
        os.makedirs(save_directory, exist_ok=True)
        config = self.config.copy()
        config.architectures = [type(self).__name__]
        save_weights(save_directory, self._spec_name(), self.params, self._stored_int8)
        config.save_pretrained(save_directory)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __repr__(self) -> str:
        q = f", quantize={self.quantize!r}" if self.quantize else ""
        return (f"{type(self).__name__}(layers={self.config.num_hidden_layers}, hidden={self.config.hidden_size}, "
                f"backend={self.backend!r}{q})")

    # ------------------------------------------------------------------------------------------ plumbing
    def _encode(self, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds,
                output_hidden_states, output_attentions, return_dict, rank=2):
        """Validate inputs and run the engine (encoder and this class's heads). Returns (inputs, results,
        return_dict), with None flags taken from the config as transformers does; see ReferenceEngine.run."""
        cfg = self.config
        want_hidden = cfg.output_hidden_states if output_hidden_states is None else bool(output_hidden_states)
        want_attn = cfg.output_attentions if output_attentions is None else bool(output_attentions)
        inp = prepare_inputs(cfg, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, rank=rank)
        res = self.engine.run(inp, want_hidden, want_attn)
        return inp, res, (cfg.return_dict if return_dict is None else bool(return_dict))

    @staticmethod
    def _finish(output, return_dict):
        return output if return_dict else output.to_tuple()


def _extras(res):
    """The optional encoder outputs every class returns."""
    return {"hidden_states": res["hidden_states"], "attentions": res["attentions"]}


_COMMON_DOC = """
    Inputs (NumPy arrays or nested lists): input_ids [B, L] or inputs_embeds [B, L, embedding_size] (exactly one),
    attention_mask, token_type_ids, position_ids [B, L]; output_hidden_states, output_attentions, return_dict.
"""


class MobileBertModel(MobileBertPreTrainedModel):
    __doc__ = "The bare encoder: last_hidden_state, pooler_output, hidden_states, attentions." + _COMMON_DOC

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, output_hidden_states=None, output_attentions=None, return_dict=None):
        _, res, rd = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
            output_attentions, return_dict)
        out = BaseModelOutputWithPooling(last_hidden_state=res["last_hidden_state"],
                                         pooler_output=res["pooler_output"], **_extras(res))
        return self._finish(out, rd)


def _check_mlm_config(config):
    if config.embedding_size > config.hidden_size:
        # The MLM head scores with hidden_size - embedding_size extra rows; a negative count cannot exist.
        raise ValueError(f"embedding_size={config.embedding_size} must not exceed hidden_size={config.hidden_size} "
                         "for the masked-language-model head")


class MobileBertForPreTraining(MobileBertPreTrainedModel):
    __doc__ = "MLM + next-sentence heads; loss = MLM CE + NSP CE when labels and next_sentence_label are given." \
        + _COMMON_DOC
    _check_config = staticmethod(_check_mlm_config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, next_sentence_label=None, output_hidden_states=None,
                output_attentions=None, return_dict=None):
        inp, res, rd = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
            output_attentions, return_dict)
        B, L = inp["shape"]
        prediction_logits = res["mlm_logits"].reshape(B, L, -1)
        seq_logits = res["pooled_logits"]
        loss = None
        if labels is not None and next_sentence_label is not None:
            mlm = losses.cross_entropy(prediction_logits, label_array("labels", labels, (B, L), True))
            nsp = losses.cross_entropy(seq_logits, label_array("next_sentence_label", next_sentence_label, (B,), True))
            loss = np.asarray(mlm + nsp, dtype=np.float32)
        out = MobileBertForPreTrainingOutput(loss=loss, prediction_logits=prediction_logits,
                                             seq_relationship_logits=seq_logits, **_extras(res))
        return self._finish(out, rd)


class MobileBertForMaskedLM(MobileBertPreTrainedModel):
    __doc__ = "Masked-language-model head (no pooler); labels [B, L] with -100 ignored." + _COMMON_DOC
    _check_config = staticmethod(_check_mlm_config)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_hidden_states=None, output_attentions=None,
                return_dict=None):
        inp, res, rd = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
            output_attentions, return_dict)
        logits = res["mlm_logits"].reshape(*inp["shape"], -1)
        loss = None
        if labels is not None:
            loss = losses.cross_entropy(logits, label_array("labels", labels, inp["shape"], True))
        return self._finish(MaskedLMOutput(loss=loss, logits=logits, **_extras(res)), rd)

    def logits_at(self, positions, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                  inputs_embeds=None):
        """MLM logits [P, vocab_size] for chosen (batch index, token index) pairs only.

        The encoder runs as in forward(); the vocabulary projection (the costly part: vocab_size outputs per
        position) runs only for these P positions, e.g. the [MASK] tokens of a fill-mask query.
        """
        inp = prepare_inputs(self.config, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
        B, L = inp["shape"]
        pos = np.asarray(positions)
        if pos.ndim != 2 or pos.shape[1] != 2 or not np.issubdtype(pos.dtype, np.integer):
            raise ValueError(f"positions must be integer (batch index, token index) pairs of shape [P, 2], got "
                             f"shape {pos.shape} and dtype {pos.dtype}")
        if pos.size and (pos[:, 0].min() < 0 or pos[:, 0].max() >= B or pos[:, 1].min() < 0 or pos[:, 1].max() >= L):
            raise ValueError(f"positions hold an index out of range for inputs of shape {(B, L)}")
        rows = (pos[:, 0] * L + pos[:, 1]).astype(np.int64)
        return self.engine.run(inp, mlm_rows=rows)["mlm_logits"]


class MobileBertForNextSentencePrediction(MobileBertPreTrainedModel):
    __doc__ = "Next-sentence head on the pooled output; labels [B] (0 = B continues A)." + _COMMON_DOC

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_hidden_states=None, output_attentions=None,
                return_dict=None):
        inp, res, rd = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
            output_attentions, return_dict)
        logits = res["pooled_logits"]
        loss = None
        if labels is not None:
            loss = losses.cross_entropy(logits, label_array("labels", labels, inp["shape"][:1], True))
        out = NextSentencePredictorOutput(loss=loss, logits=logits, **_extras(res))
        return self._finish(out, rd)


class MobileBertForSequenceClassification(MobileBertPreTrainedModel):
    __doc__ = ("Classifier on the pooled output. The loss follows config.problem_type, inferred on the first call "
               "with labels (and stored in the config) exactly as transformers does: regression (MSE) for "
               "num_labels == 1, single-label CE for integer labels, multi-label BCE otherwise.") + _COMMON_DOC

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_hidden_states=None, output_attentions=None,
                return_dict=None):
        inp, res, rd = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
            output_attentions, return_dict)
        logits = res["pooled_logits"]
        loss = None if labels is None else self._loss(logits, labels, inp["shape"][0])
        return self._finish(SequenceClassifierOutput(loss=loss, logits=logits, **_extras(res)), rd)

    def _loss(self, logits, labels, batch):
        cfg, n = self.config, self.config.num_labels
        raw = np.asarray(labels)
        if cfg.problem_type is None:
            if n == 1:
                cfg.problem_type = "regression"
            elif np.issubdtype(raw.dtype, np.integer) and raw.dtype != bool:
                cfg.problem_type = "single_label_classification"
            else:
                cfg.problem_type = "multi_label_classification"
        if cfg.problem_type == "regression":
            shape = (batch,) if raw.ndim <= 1 else (batch, n)
            y = label_array("labels", labels, shape, False)
            return losses.mse(np.squeeze(logits), np.squeeze(y)) if n == 1 else losses.mse(logits, y)
        if cfg.problem_type == "single_label_classification":
            return losses.cross_entropy(logits, label_array("labels", labels, (batch,), True))
        return losses.bce_with_logits(logits, label_array("labels", labels, (batch, n), False))


class MobileBertForMultipleChoice(MobileBertPreTrainedModel):
    __doc__ = ("Scores C candidate sequences per example. Inputs are [B, C, L] (inputs_embeds [B, C, L, E]); "
               "logits [B, C]; labels [B] = index of the right choice.") + _COMMON_DOC

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_hidden_states=None, output_attentions=None,
                return_dict=None):
        inp, res, rd = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
            output_attentions, return_dict, rank=3)
        B, C, _ = inp["shape"]
        logits = res["pooled_logits"].reshape(B, C)
        loss = None
        if labels is not None:
            loss = losses.cross_entropy(logits, label_array("labels", labels, (B,), True))
        return self._finish(MultipleChoiceModelOutput(loss=loss, logits=logits, **_extras(res)), rd)


class MobileBertForTokenClassification(MobileBertPreTrainedModel):
    __doc__ = "Per-token classifier (no pooler); labels [B, L] with -100 ignored (the mask is not used)." \
        + _COMMON_DOC

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, labels=None, output_hidden_states=None, output_attentions=None,
                return_dict=None):
        inp, res, rd = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
            output_attentions, return_dict)
        logits = res["token_logits"]
        loss = None
        if labels is not None:
            loss = losses.cross_entropy(logits, label_array("labels", labels, inp["shape"], True))
        return self._finish(TokenClassifierOutput(loss=loss, logits=logits, **_extras(res)), rd)


class MobileBertForQuestionAnswering(MobileBertPreTrainedModel):
    __doc__ = ("Span head (no pooler): start_logits, end_logits [B, L]. Loss with start_positions/end_positions "
               "[B] (or [B, 1]): positions are clamped to [0, L] and L is ignored, as in transformers.") + _COMMON_DOC

    @staticmethod
    def _check_config(config):
        if config.num_labels != 2:
            raise ValueError(f"num_labels must be 2 for question answering (start and end), got {config.num_labels}")

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_hidden_states=None,
                output_attentions=None, return_dict=None):
        inp, res, rd = self._encode(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds, output_hidden_states,
            output_attentions, return_dict)
        logits = res["token_logits"]
        start_logits = np.ascontiguousarray(logits[..., 0])
        end_logits = np.ascontiguousarray(logits[..., 1])
        loss = None
        if start_positions is not None and end_positions is not None:
            B, L = inp["shape"]
            start = self._positions("start_positions", start_positions, B, L)
            end = self._positions("end_positions", end_positions, B, L)
            loss = np.asarray((losses.cross_entropy(start_logits, start, ignore_index=L)
                               + losses.cross_entropy(end_logits, end, ignore_index=L)) / 2, dtype=np.float32)
        out = QuestionAnsweringModelOutput(loss=loss, start_logits=start_logits, end_logits=end_logits,
                                           **_extras(res))
        return self._finish(out, rd)

    @staticmethod
    def _positions(name, value, batch, length):
        arr = np.asarray(value)
        shape = (batch, 1) if arr.ndim == 2 else (batch,)
        return np.clip(label_array(name, value, shape, True).reshape(batch), 0, length)


# ---------------------------------------------------------------------------------------------- random init
def random_params(config: MobileBertConfig, class_name: str, seed: int = 0) -> dict:
    """Fresh weights like HF's init: normal(0, initializer_range) matrices, zero biases, unit norm scales."""
    rng = np.random.default_rng(seed)
    required, _ = class_spec(config, class_name)
    params = {}
    for name, shape in required.items():
        if name.endswith("LayerNorm.weight"):
            value = np.ones(shape, np.float32)
        elif name.endswith("bias") and len(shape) == 1:
            value = np.zeros(shape, np.float32)
        else:
            value = rng.normal(0.0, config.initializer_range, size=shape).astype(np.float32)
        params[name] = value
    if config.pad_token_id is not None and 0 <= config.pad_token_id < config.vocab_size:
        params["embeddings.word_embeddings.weight"][config.pad_token_id] = 0.0
    return params


MODEL_CLASSES = {
    cls.__name__: cls
    for cls in (MobileBertModel, MobileBertForPreTraining, MobileBertForMaskedLM,
                MobileBertForNextSentencePrediction, MobileBertForSequenceClassification,
                MobileBertForMultipleChoice, MobileBertForTokenClassification, MobileBertForQuestionAnswering)
}
