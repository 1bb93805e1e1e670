"""zero-shot-classification: transformers' ZeroShotClassificationPipeline (v5) on an NLI sequence classifier.

Each candidate label becomes one (sequence, hypothesis_template.format(label)) pair; the NLI model's entailment
logit says how well the label fits. The pairs are truncated on the sequence side only, so the hypothesis stays
whole.
"""

from __future__ import annotations

import numpy as np

from .base import Pipeline

DEFAULT_TEMPLATE = "This example is {}."


class ZeroShotClassificationPipeline(Pipeline):
    """`classify(sequences, candidate_labels, hypothesis_template="This example is {}.", multi_label=False)`.

    One sequence -> `{"sequence", "labels", "scores"}` with labels sorted by score; a list -> a list of those.
    `candidate_labels`: a list, or one string of comma-separated labels."""

    model_class = "MobileBertForSequenceClassification"

    def __call__(self, sequences, *args, **kwargs):
        if len(args) == 1 and "candidate_labels" not in kwargs:
            kwargs["candidate_labels"] = args[0]
        elif args:
            raise ValueError(f"Unable to understand extra arguments {args}")
        opts = self.options(kwargs)
        unknown = set(opts) - {"candidate_labels", "hypothesis_template", "multi_label"}
        if unknown:
            raise TypeError(f"zero-shot-classification got unexpected argument(s): {', '.join(sorted(unknown))}")
        labels = parse_labels(opts.get("candidate_labels"))
        template = _check_template(opts.get("hypothesis_template", DEFAULT_TEMPLATE), labels)
        multi_label = opts.get("multi_label", False)
        if not isinstance(multi_label, (bool, np.bool_)):
            raise TypeError(f"multi_label must be a bool, got {multi_label!r}")

        texts = [sequences] if isinstance(sequences, str) else sequences
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError("You must include at least one sequence: a string or a non-empty list of strings, got "
                             f"{type(sequences).__name__}")
        encodings = [self._encode(text, template.format(label)) for text in texts for label in labels]
        logits = np.stack([out["logits"] for out in self.run_model(encodings)]).astype(np.float32)
        logits = logits.reshape(len(texts), len(labels), -1)
        results = [self._postprocess(text, labels, rows, multi_label) for text, rows in zip(texts, logits)]
        return results[0] if isinstance(sequences, str) else results

    @property
    def entailment_id(self) -> int:
        """The id of the first label whose name starts with "entail" (any case); -1 when there is none."""
        for label, index in self.model.config.label2id.items():
            if label.lower().startswith("entail"):
                return index
        return -1

    def _encode(self, sequence: str, hypothesis: str) -> dict:
        try:
            enc = self.tokenizer(sequence, hypothesis, truncation="only_first")
        except ValueError as exc:
            # the hypothesis alone exceeds the budget: only_first cannot help, so run untruncated (transformers)
            if "too short" not in str(exc):
                raise
            enc = self.tokenizer(sequence, hypothesis, truncation=False)
        return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}

    def _postprocess(self, sequence: str, labels: list[str], logits: np.ndarray, multi_label: bool) -> dict:
        """logits [n_labels, n_classes] -> labels sorted by score (ties: later label first, as numpy's
        reversed argsort in transformers)."""
        entailment = self.entailment_id
        if multi_label or len(labels) == 1:
            # each label on its own: softmax over [contradiction, entailment]
            contradiction = -1 if entailment == 0 else 0
            pair = logits[:, [contradiction, entailment]].astype(np.float64)
            pair = np.exp(pair - pair.max(axis=-1, keepdims=True))
            scores = pair[:, 1] / pair.sum(axis=-1)
        else:
            # labels compete: softmax of the entailment logits across candidate labels
            entail = logits[:, entailment].astype(np.float64)
            scores = np.exp(entail - entail.max())
            scores = scores / scores.sum()
        order = list(reversed(scores.argsort()))
        return {"sequence": sequence, "labels": [labels[i] for i in order], "scores": [float(scores[i]) for i in order]}


def parse_labels(labels) -> list[str]:
    """A list of labels, or one comma-separated string ("a, b,c" -> ["a", "b", "c"], empty items dropped)."""
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",") if label.strip()]
    if labels is None or not isinstance(labels, (list, tuple)) or not labels:
        raise ValueError(f"You must include at least one label: candidate_labels must be a non-empty list of "
                         f"strings or a comma-separated string, got {labels!r}")
    if not all(isinstance(label, str) for label in labels):
        raise TypeError(f"candidate_labels must be strings, got {labels!r}")
    return list(labels)


def _check_template(template, labels: list[str]) -> str:
    if not isinstance(template, str):
        raise TypeError(f"hypothesis_template must be a string, got {type(template).__name__}")
    if template.format(labels[0]) == template:
        raise ValueError(f'The provided hypothesis_template "{template}" was not able to be formatted with the '
                         "target labels. Make sure the passed template includes formatting syntax such as {} where "
                         "the label should go.")
    return template
