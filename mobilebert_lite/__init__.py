"""mobilebert_lite: MobileBERT inference with NumPy and native SIMD kernels, behind transformers' names."""

from .backends import BACKENDS, runtime_info
from .config import MobileBertConfig
from .errors import CheckpointError
from .modeling import (
    MobileBertForMaskedLM,
    MobileBertForMultipleChoice,
    MobileBertForNextSentencePrediction,
    MobileBertForPreTraining,
    MobileBertForQuestionAnswering,
    MobileBertForSequenceClassification,
    MobileBertForTokenClassification,
    MobileBertModel,
    MobileBertPreTrainedModel,
)
from .outputs import MobileBertForPreTrainingOutput, ModelOutput

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "CheckpointError",
    "MobileBertConfig",
    "MobileBertForMaskedLM",
    "MobileBertForMultipleChoice",
    "MobileBertForNextSentencePrediction",
    "MobileBertForPreTraining",
    "MobileBertForPreTrainingOutput",
    "MobileBertForQuestionAnswering",
    "MobileBertForSequenceClassification",
    "MobileBertForTokenClassification",
    "MobileBertModel",
    "MobileBertPreTrainedModel",
    "ModelOutput",
    "runtime_info",
]
