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
from .outputs import MobileBertForPreTrainingOutput, ModelOutput, TFMobileBertForPreTrainingOutput
from .pipelines import pipeline
from .tf_modeling import (
    TFMobileBertForMaskedLM,
    TFMobileBertForMultipleChoice,
    TFMobileBertForNextSentencePrediction,
    TFMobileBertForPreTraining,
    TFMobileBertForQuestionAnswering,
    TFMobileBertForSequenceClassification,
    TFMobileBertForTokenClassification,
    TFMobileBertModel,
    TFMobileBertPreTrainedModel,
)
from .tokenization import BatchEncoding, MobileBertTokenizer, MobileBertTokenizerFast

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "BatchEncoding",
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
    "MobileBertTokenizer",
    "MobileBertTokenizerFast",
    "ModelOutput",
    "TFMobileBertForMaskedLM",
    "TFMobileBertForMultipleChoice",
    "TFMobileBertForNextSentencePrediction",
    "TFMobileBertForPreTraining",
    "TFMobileBertForPreTrainingOutput",
    "TFMobileBertForQuestionAnswering",
    "TFMobileBertForSequenceClassification",
    "TFMobileBertForTokenClassification",
    "TFMobileBertModel",
    "TFMobileBertPreTrainedModel",
    "pipeline",
    "runtime_info",
]
