"""Task pipelines with transformers' task names, arguments and output dicts: `mobilebert_lite.pipeline(task, ...)`.

Each task lives in its own module and registers a Pipeline subclass in TASKS (module name, class name), imported on
first use so that `import mobilebert_lite` stays fast.
"""

from __future__ import annotations

import importlib

from .base import Pipeline, load_model_and_tokenizer

# task name -> (module in this package, class name)
TASKS = {
    "fill-mask": ("fill_mask", "FillMaskPipeline"),
    "text-classification": ("text_classification", "TextClassificationPipeline"),
    "sentiment-analysis": ("text_classification", "TextClassificationPipeline"),
    "zero-shot-classification": ("zero_shot", "ZeroShotClassificationPipeline"),
    "feature-extraction": ("feature_extraction", "FeatureExtractionPipeline"),
    "sentence-embeddings": ("feature_extraction", "SentenceEmbeddingPipeline"),
    "token-classification": ("token_classification", "TokenClassificationPipeline"),
    "ner": ("token_classification", "TokenClassificationPipeline"),
    "question-answering": ("question_answering", "QuestionAnsweringPipeline"),
    "multiple-choice": ("multiple_choice", "MultipleChoicePipeline"),
    "next-sentence-prediction": ("multiple_choice", "NextSentencePredictionPipeline"),
}


def pipeline_class(task: str) -> type:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    module, name = TASKS[task]
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def pipeline(task: str, model=None, tokenizer=None, *, batch_size: int = 1, num_threads: int | None = None,
             backend: str | None = None, quantize: str | None = None, **kwargs) -> Pipeline:
    """A ready pipeline for `task`. `model`: a model directory (or hub id with the `hub` extra), or a model
    instance of the class the task needs; `tokenizer`: a directory, an instance, or None (the model directory's
    tokenizer files, else the bundled bert-base-uncased vocabulary). `batch_size` > 1 groups inputs of similar
    length and pads them; 1 (the default, as in transformers) runs each input unpadded, exactly as alone.
    quantize="int8" loads a model directory with int8 encoder Linears (see MobileBertModel.from_pretrained).
    Further keyword arguments become the task's default call arguments (e.g. top_k=3)."""
    cls = pipeline_class(task)
    if model is None:
        raise ValueError(f"pipeline({task!r}) needs model= (a model directory or a loaded model)")
    model, tokenizer = load_model_and_tokenizer(model, tokenizer, cls.model_class, backend=backend,
                                                num_threads=num_threads, quantize=quantize)
    return cls(model=model, tokenizer=tokenizer, batch_size=batch_size, task=task, **kwargs)


__all__ = ["Pipeline", "TASKS", "pipeline", "pipeline_class"]
