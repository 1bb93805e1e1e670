"""TFMobileBert*: transformers 4.x's TensorFlow classes, on the same engine as the PyTorch-named ones.

Each twin is its PyTorch-named class run with TensorFlow numerics (`semantics="tf"`: the config eps at every
LayerNorm and -10000 added to masked attention scores), plus what differs on the TensorFlow side
(shared/reference/tf_twins.md, measured on transformers 4.57.6):
- the `call` signature: keywords, or a dict, a list (in signature order) or an array as the first argument;
  `training` accepted (only False: this is an inference engine); an unknown keyword is a ValueError;
- TF output classes (TFMaskedLMOutput, ...) and TF loss shapes and reductions: (1,) masked means for PreTraining,
  MaskedLM and TokenClassification, one loss per example (B,) for the other heads, `config.tf_legacy_loss`
  honoured, `problem_type` ignored (as TF does);
- the MLM decoder is never tied: `tf_model.h5` always carries its own decoder weight, and it is used as saved;
- `from_pretrained` reads `tf_model.h5` (h5py, the `tf` extra), or PyTorch weights with `from_pt=True`;
  `save_pretrained` writes a `tf_model.h5` that transformers 4.x loads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from . import losses, modeling, outputs
from .inputs import label_array

_SIGNATURE = ("input_ids", "attention_mask", "token_type_ids", "position_ids", "head_mask", "inputs_embeds",
              "output_attentions", "output_hidden_states", "return_dict")


class TFMobileBertPreTrainedModel:
    """Mixin over a PyTorch-named class: TF call conventions, TF losses, h5 weights."""

    _semantics = "tf"
    _labels: tuple = ()
    _tf_output = None

    # ------------------------------------------------------------------------------------------- calling
    @classmethod
    def _signature(cls) -> tuple:
        return _SIGNATURE + cls._labels + ("training",)

    def __call__(self, inputs=None, *args, **kwargs):
        return self.call(**self._unpack(inputs, args, kwargs))

    def _unpack(self, first, args, kwargs) -> dict:
        """transformers' `input_processing`: keywords, or everything packed into the first argument."""
        sig = self._signature()
        if len(args) > len(sig) - 1:
            raise TypeError(f"{type(self).__name__} takes at most {len(sig)} positional arguments")
        unknown = [k for k in kwargs if k not in sig]
        if unknown:
            raise ValueError(f"The following keyword arguments are not supported by this model: {unknown}.")
        values = dict(zip(sig[1:], args))
        for key, value in kwargs.items():
            if key in values:
                raise TypeError(f"{type(self).__name__} got multiple values for argument {key!r}")
            values[key] = value
        if isinstance(first, Mapping):
            for key, value in first.items():
                if key not in sig:
                    raise TypeError(f"{type(self).__name__}.call() got an unexpected keyword argument {key!r}")
                values[key] = value
        elif isinstance(first, (list, tuple)) and first and all(
                isinstance(x, np.ndarray) or x is None for x in first):
            # the list form: arrays in signature order ([input_ids, attention_mask, ...]); a plain nested
            # Python list is read as input_ids instead (transformers would fail on it)
            if len(first) > len(sig):
                raise ValueError(f"got {len(first)} inputs in the list, the signature has {len(sig)}")
            values.update(zip(sig, first))
        elif first is not None:
            values["input_ids"] = first
        return values

    def call(self, **kw):
        if kw.pop("training", False):
            raise NotImplementedError("training=True (dropout) is not supported: mobilebert-lite is an inference "
                                      "engine; call with training=False")
        if kw.pop("head_mask", None) is not None:
            raise NotImplementedError("head_mask is not supported by TFMobileBert models (transformers raises "
                                      "the same)")
        labels = {name: kw.pop(name, None) for name in self._labels}
        return_dict = kw.pop("return_dict", None)
        res = self._pt_call(**kw, return_dict=True)
        loss = self._tf_loss(res, labels)
        fields = {k: v for k, v in res.items() if k != "loss"}
        out = self._tf_output(**fields) if loss is None else self._tf_output(loss=loss, **fields)
        return out if (self.config.return_dict if return_dict is None else return_dict) else out.to_tuple()

    def _pt_call(self, **kw):
        return self.forward(**kw)

    def _tf_loss(self, res, labels):
        return None

    def _legacy(self) -> bool:
        return bool(getattr(self.config, "tf_legacy_loss", False))

    # ------------------------------------------------------------------------------- loading and saving
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *, from_pt: bool = False, **kwargs):
        """A directory with config.json and tf_model.h5 (or, with from_pt=True, PyTorch weights)."""
        return super().from_pretrained(pretrained_model_name_or_path, weights_format="pt" if from_pt else "tf",
                                       **kwargs)

    def save_pretrained(self, save_directory) -> None:
        """config.json and tf_model.h5 (Keras h5 layout, loadable by transformers 4.x TFMobileBert classes)."""
        from .converters import tf_h5

        if self.quantize:
            raise NotImplementedError("tf_model.h5 holds float weights only: save an int8 model with the PyTorch-"
                                      "named class (an int8 model.safetensors), or quantise with "
                                      "`mobilebert-lite quantize`")

        os.makedirs(save_directory, exist_ok=True)
        config = self.config.copy()
        config.architectures = [self._spec_name()]  # as transformers' TF save_pretrained writes it (no TF prefix)
        tf_h5.write_tf_h5(os.path.join(save_directory, tf_h5.TF_WEIGHTS_NAME), self._spec_name(), self.params,
                          self.config)
        config.save_pretrained(save_directory)


def _ints(name, value, shape):
    return label_array(name, value, shape, True)


class TFMobileBertModel(TFMobileBertPreTrainedModel, modeling.MobileBertModel):
    _tf_output = outputs.TFBaseModelOutputWithPooling


class TFMobileBertForPreTraining(TFMobileBertPreTrainedModel, modeling.MobileBertForPreTraining):
    _labels = ("labels", "next_sentence_label")
    _tf_output = outputs.TFMobileBertForPreTrainingOutput

    def _tf_loss(self, res, labels):
        if labels["labels"] is None or labels["next_sentence_label"] is None:
            return None  # TF computes the loss only when both label sets are given
        logits, seq = res["prediction_logits"], res["seq_relationship_logits"]
        mlm = _ints("labels", labels["labels"], logits.shape[:2])
        nsp = _ints("next_sentence_label", labels["next_sentence_label"], seq.shape[:1])
        return losses.tf_masked_mean(logits, mlm, mlm != -100) + losses.tf_masked_mean(seq, nsp, nsp != -100)


class TFMobileBertForMaskedLM(TFMobileBertPreTrainedModel, modeling.MobileBertForMaskedLM):
    _labels = ("labels",)
    _tf_output = outputs.TFMaskedLMOutput

    def _tf_loss(self, res, labels):
        if labels["labels"] is None:
            return None
        logits = res["logits"]
        y = _ints("labels", labels["labels"], logits.shape[:2])
        fn = losses.tf_active_rows if self._legacy() else losses.tf_masked_mean
        return fn(logits, y, y != -100)


class TFMobileBertForNextSentencePrediction(TFMobileBertPreTrainedModel,
                                            modeling.MobileBertForNextSentencePrediction):
    _labels = ("next_sentence_label",)
    _tf_output = outputs.TFNextSentencePredictorOutput

    def _tf_loss(self, res, labels):
        if labels["next_sentence_label"] is None:
            return None
        logits = res["logits"]
        y = _ints("next_sentence_label", labels["next_sentence_label"], logits.shape[:1])
        if self._legacy():
            return losses.tf_active_rows(logits, y, y != -100)
        # one loss per example, ignored (-100) examples set to 0 and kept
        ce = losses.sparse_ce_rows(logits, np.where(y != -100, y, 0))
        return (ce * (y != -100)).astype(np.float32)


class TFMobileBertForSequenceClassification(TFMobileBertPreTrainedModel,
                                            modeling.MobileBertForSequenceClassification):
    _labels = ("labels",)
    _tf_output = outputs.TFSequenceClassifierOutput

    def _tf_loss(self, res, labels):
        if labels["labels"] is None:
            return None
        logits = res["logits"]
        B = logits.shape[0]
        if logits.shape[1] == 1:  # regression: per-example squared error (problem_type is ignored, as in TF)
            raw = np.asarray(labels["labels"])
            y = label_array("labels", labels["labels"], (B, 1) if raw.ndim == 2 else (B,), False).reshape(B, 1)
            d = logits.astype(np.float64) - y.astype(np.float64)
            return np.mean(d * d, axis=-1).astype(np.float32)
        return losses.sparse_ce_rows(logits, _ints("labels", labels["labels"], (B,))).astype(np.float32)


class TFMobileBertForMultipleChoice(TFMobileBertPreTrainedModel, modeling.MobileBertForMultipleChoice):
    _labels = ("labels",)
    _tf_output = outputs.TFMultipleChoiceModelOutput

    def _tf_loss(self, res, labels):
        if labels["labels"] is None:
            return None
        logits = res["logits"]
        return losses.sparse_ce_rows(logits, _ints("labels", labels["labels"], logits.shape[:1])).astype(np.float32)


class TFMobileBertForTokenClassification(TFMobileBertPreTrainedModel, modeling.MobileBertForTokenClassification):
    _labels = ("labels",)
    _tf_output = outputs.TFTokenClassifierOutput

    def _tf_loss(self, res, labels):
        if labels["labels"] is None:
            return None
        logits = res["logits"]
        y = _ints("labels", labels["labels"], logits.shape[:2])
        if self._legacy():  # -1 (deprecated) or -100 marks ignored tokens
            return losses.tf_active_rows(logits, y, y != (-1 if (y == -1).any() else -100))
        return losses.tf_masked_mean(logits, y, y >= 0)


class TFMobileBertForQuestionAnswering(TFMobileBertPreTrainedModel, modeling.MobileBertForQuestionAnswering):
    _labels = ("start_positions", "end_positions")
    _tf_output = outputs.TFQuestionAnsweringModelOutput

    def _tf_loss(self, res, labels):
        if labels["start_positions"] is None or labels["end_positions"] is None:
            return None
        B, L = res["start_logits"].shape
        per_example = []
        for name, logits in (("start_positions", res["start_logits"]), ("end_positions", res["end_logits"])):
            raw = np.asarray(labels[name])
            pos = _ints(name, labels[name], (B, 1) if raw.ndim == 2 else (B,)).reshape(B)
            if pos.size and (pos.min() < 0 or pos.max() >= L):  # TF neither clamps nor ignores
                raise ValueError(f"{name} must lie in [0, {L}) for the TensorFlow loss, got {pos.tolist()}")
            per_example.append(losses.sparse_ce_rows(logits, pos))
        return ((per_example[0] + per_example[1]) / 2).astype(np.float32)


TF_MODEL_CLASSES = {
    cls.__name__: cls
    for cls in (TFMobileBertModel, TFMobileBertForPreTraining, TFMobileBertForMaskedLM,
                TFMobileBertForNextSentencePrediction, TFMobileBertForSequenceClassification,
                TFMobileBertForMultipleChoice, TFMobileBertForTokenClassification, TFMobileBertForQuestionAnswering)
}
