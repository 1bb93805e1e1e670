"""Output containers that behave like transformers' ModelOutput: attribute, key and index access, None dropped."""

from __future__ import annotations

from collections import OrderedDict


class ModelOutput(OrderedDict):
    """An ordered mapping of the non-None fields, in declaration order, also readable as attributes.

    Integer and slice indexing go through `to_tuple()`, as in transformers; a missing optional field reads as None.
    """

    _fields: tuple = ()

    def __init__(self, *args, **kwargs):
        if args:
            raise TypeError(f"{type(self).__name__} takes keyword arguments only")
        unknown = set(kwargs) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        super().__init__()
        for name in self._fields:
            value = kwargs.get(name)
            if value is not None:
                super().__setitem__(name, value)

    def __getattr__(self, name):
        if name in type(self)._fields:
            return self.get(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name, value):
        if name not in self._fields:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        self[name] = value

    def __setitem__(self, key, value):
        if key not in self._fields:
            raise KeyError(f"{type(self).__name__} has no field {key!r}")
        if value is None:
            self.pop(key, None)
            return
        if key not in self:
            # keep declaration order when a field is filled in later
            items = {**self, key: value}
            super().clear()
            for name in self._fields:
                if name in items:
                    super().__setitem__(name, items[name])
        else:
            super().__setitem__(key, value)

    def __getitem__(self, key):
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        return super().__getitem__(key)

    def to_tuple(self) -> tuple:
        return tuple(self[k] for k in self.keys())

    def __reduce__(self):
        return (_rebuild, (type(self), dict(self)))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={_short(v)}" for k, v in self.items())
        return f"{type(self).__name__}({inner})"


def _rebuild(cls, fields):
    return cls(**fields)


def _short(value):
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"array{tuple(shape)}"
    if isinstance(value, tuple):
        return f"tuple[{len(value)}]"
    return repr(value)


def _output(name, *fields, doc=""):
    return type(name, (ModelOutput,), {"_fields": fields, "__doc__": doc})


BaseModelOutputWithPooling = _output(
    "BaseModelOutputWithPooling", "last_hidden_state", "pooler_output", "hidden_states", "attentions")
MobileBertForPreTrainingOutput = _output(
    "MobileBertForPreTrainingOutput", "loss", "prediction_logits", "seq_relationship_logits", "hidden_states",
    "attentions", doc="Output of MobileBertForPreTraining; loss is MLM CE + NSP CE when both label sets are given.")
MaskedLMOutput = _output("MaskedLMOutput", "loss", "logits", "hidden_states", "attentions")
NextSentencePredictorOutput = _output("NextSentencePredictorOutput", "loss", "logits", "hidden_states", "attentions")
SequenceClassifierOutput = _output("SequenceClassifierOutput", "loss", "logits", "hidden_states", "attentions")
MultipleChoiceModelOutput = _output("MultipleChoiceModelOutput", "loss", "logits", "hidden_states", "attentions")
TokenClassifierOutput = _output("TokenClassifierOutput", "loss", "logits", "hidden_states", "attentions")
QuestionAnsweringModelOutput = _output(
    "QuestionAnsweringModelOutput", "loss", "start_logits", "end_logits", "hidden_states", "attentions")

# transformers 4.x TensorFlow output classes: the same fields (losses have TF shapes, see tf_modeling.py)
def _tf_twin(pt_output, name=None):
    return _output(name or "TF" + pt_output.__name__, *pt_output._fields, doc=pt_output.__doc__ or "")


TFBaseModelOutputWithPooling = _tf_twin(BaseModelOutputWithPooling)
TFMobileBertForPreTrainingOutput = _tf_twin(MobileBertForPreTrainingOutput)
TFMaskedLMOutput = _tf_twin(MaskedLMOutput)
TFNextSentencePredictorOutput = _tf_twin(NextSentencePredictorOutput)
TFSequenceClassifierOutput = _tf_twin(SequenceClassifierOutput)
TFMultipleChoiceModelOutput = _tf_twin(MultipleChoiceModelOutput)
TFTokenClassifierOutput = _tf_twin(TokenClassifierOutput)
TFQuestionAnsweringModelOutput = _tf_twin(QuestionAnsweringModelOutput)
