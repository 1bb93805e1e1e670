"""token-classification / ner: transformers 5's TokenClassificationPipeline, step for step.

The post-processing is a port of `transformers/pipelines/token_classification.py` (5.23) and keeps its quirks:
scores are NumPy float32 values computed in float32 from the logits; without `stride` long texts are truncated to
`model_max_length`; with `stride` the text is cut into windows of `model_max_length` tokens overlapping by `stride`,
padded to one length (as transformers pads them), and overlapping entities of different windows are de-duplicated
(the longer span wins, then the higher score); `[UNK]` tokens show the original text slice as their word.
"""

from __future__ import annotations

import types
import warnings

import numpy as np

from .base import Pipeline

STRATEGIES = ("none", "simple", "first", "average", "max")
_WORD_STRATEGIES = ("first", "average", "max")


class TokenClassificationPipeline(Pipeline):
    """`ner(inputs, aggregation_strategy="none", ignore_labels=["O"], stride=None, is_split_into_words=False,
    delimiter=None, offset_mapping=None)`; inputs: a string, a list of strings, or words with
    is_split_into_words=True. A string gives a list of entity dicts, a list of strings one such list each."""

    model_class = "MobileBertForTokenClassification"

    def __init__(self, model, tokenizer, batch_size: int = 1, task: str = "", **defaults):
        super().__init__(model, tokenizer, batch_size=batch_size, task=task, **defaults)
        self._fast = _has_offsets(tokenizer)
        self._default_params = self._sanitize(**defaults)  # bad construction arguments fail here, as in HF

    def __call__(self, inputs, **kwargs):
        items, is_split_into_words, offset_mapping, delimiter = _parse_inputs(inputs, **kwargs)
        kwargs["is_split_into_words"], kwargs["delimiter"] = is_split_into_words, delimiter
        if is_split_into_words and not all(isinstance(item, list) for item in items):
            # transformers: one list of words is one input, answered as a batch of one (a list of lists)
            items = [items]
        if offset_mapping:
            kwargs["offset_mapping"] = offset_mapping
        # transformers sanitises the construction and call arguments separately and merges the results
        pre, post = self._default_params
        call_pre, call_post = self._sanitize(**kwargs)
        pre, post = {**pre, **call_pre}, {**post, **call_post}

        chunks = [self._preprocess(item, **pre) for item in items]
        flat = [window for windows in chunks for window in windows]
        outputs = iter(self.run_model([w["model_inputs"] for w in flat]))
        results = [self._postprocess([{**w, "logits": next(outputs)["logits"]} for w in windows], **post)
                   for windows in chunks]
        # a list (or generator) gives a list of results; so does one list of words (a batch of one)
        return results[0] if isinstance(inputs, str) else results

    # --------------------------------------------------------------------------------------------- arguments
    def _sanitize(self, ignore_labels=None, aggregation_strategy=None, offset_mapping=None,
                  is_split_into_words: bool = False, stride: int | None = None, delimiter: str | None = None):
        """transformers' `_sanitize_parameters`: (preprocess params, postprocess params)."""
        pre: dict = {"is_split_into_words": is_split_into_words}
        if is_split_into_words:
            pre["delimiter"] = " " if delimiter is None else delimiter
        if offset_mapping is not None:
            pre["offset_mapping"] = offset_mapping
        post: dict = {}
        if aggregation_strategy is not None:
            aggregation_strategy = _strategy(aggregation_strategy)
            if aggregation_strategy in _WORD_STRATEGIES and not self._fast:
                raise ValueError('Slow tokenizers cannot handle subwords. Please set the `aggregation_strategy` '
                                 'option to `"simple"` or use a fast tokenizer.')
            post["aggregation_strategy"] = aggregation_strategy
        if ignore_labels is not None:
            post["ignore_labels"] = ignore_labels
        if stride is not None:
            if stride >= self.tokenizer.model_max_length:
                raise ValueError("`stride` must be less than `tokenizer.model_max_length` (or even lower if the "
                                 "tokenizer adds special tokens)")
            # only a strategy given in the same call is checked, as in transformers
            if aggregation_strategy == "none":
                raise ValueError('`stride` was provided to process all the text but `aggregation_strategy="none"`, '
                                 "please select another one instead.")
            if not self._fast:
                raise ValueError("`stride` was provided to process all the text but you're using a slow tokenizer. "
                                 "Please use a fast tokenizer.")
            pre["tokenizer_params"] = {"return_overflowing_tokens": True, "padding": True, "stride": stride}
        return pre, post

    # ------------------------------------------------------------------------------------------ preprocess
    def _preprocess(self, sentence, offset_mapping=None, is_split_into_words=False, delimiter=None,
                    tokenizer_params=None) -> list[dict]:
        """One dict per window: the model inputs plus what post-processing needs."""
        tokenizer_params = dict(tokenizer_params or {})
        word_to_chars_map = None
        if is_split_into_words:
            if not isinstance(sentence, list):
                raise ValueError("When `is_split_into_words=True`, `sentence` must be a list of tokens.")
            words = sentence
            sentence = delimiter.join(words)  # the text that start/end index and `word` slices come from
            word_to_chars_map, char_offset = [], 0
            for word in words:
                word_to_chars_map.append((char_offset, char_offset + len(word)))
                char_offset += len(word) + len(delimiter)
            text_to_tokenize = words
            tokenizer_params["is_split_into_words"] = True
        else:
            if not isinstance(sentence, str):
                raise ValueError("When `is_split_into_words=False`, `sentence` must be an untokenized string.")
            text_to_tokenize = sentence
        inputs = self.tokenizer(text_to_tokenize, return_tensors="np",
                                truncation=bool(self.tokenizer.model_max_length > 0),
                                return_special_tokens_mask=True, return_offsets_mapping=self._fast,
                                **tokenizer_params)
        if is_split_into_words and not self._fast:
            raise ValueError("is_split_into_words=True is only supported with fast tokenizers.")
        windows = []
        for i in range(len(inputs["input_ids"])):
            offsets = inputs["offset_mapping"][i] if "offset_mapping" in inputs else None
            if offset_mapping is not None:
                # a user offset_mapping replaces the tokenizer's; transformers takes the first of the batch for
                # every input
                offsets = offset_mapping[0]
            windows.append({
                "model_inputs": {k: inputs[k][i] for k in ("input_ids", "token_type_ids", "attention_mask")
                                 if k in inputs},
                "special_tokens_mask": inputs["special_tokens_mask"][i],
                "offset_mapping": offsets,
                "sentence": sentence,
                "word_ids": inputs.word_ids(i) if word_to_chars_map is not None else None,
                "word_to_chars_map": word_to_chars_map,
            })
        return windows

    # ----------------------------------------------------------------------------------------- postprocess
    def _postprocess(self, windows: list[dict], aggregation_strategy: str = "none", ignore_labels=None) -> list:
        if ignore_labels is None:
            ignore_labels = ["O"]
        all_entities = []
        for window in windows:
            logits = np.asarray(window["logits"], dtype=np.float32)
            # float32 softmax exactly as transformers computes it
            shifted_exp = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
            scores = shifted_exp / shifted_exp.sum(axis=-1, keepdims=True)
            pre_entities = self.gather_pre_entities(
                window["sentence"], window["model_inputs"]["input_ids"], scores, window["offset_mapping"],
                window["special_tokens_mask"], aggregation_strategy, word_ids=window["word_ids"],
                word_to_chars_map=window["word_to_chars_map"])
            grouped = self.aggregate(pre_entities, aggregation_strategy)
            all_entities += [entity for entity in grouped
                             if entity.get("entity") not in ignore_labels
                             and entity.get("entity_group") not in ignore_labels]
        if len(windows) > 1:
            all_entities = aggregate_overlapping_entities(all_entities)
        return all_entities

    def gather_pre_entities(self, sentence, input_ids, scores, offset_mapping, special_tokens_mask,
                            aggregation_strategy, word_ids=None, word_to_chars_map=None) -> list[dict]:
        """One dict per non-special token: word, per-label scores, character span, index, is_subword."""
        pre_entities = []
        subword_prefix = getattr(self.tokenizer, "continuing_subword_prefix", None) if self._fast \
            else None
        for idx, token_scores in enumerate(scores):
            if special_tokens_mask[idx]:
                continue
            word = self.tokenizer.convert_ids_to_tokens(int(input_ids[idx]))
            if offset_mapping is not None:
                start_ind, end_ind = (int(v) for v in offset_mapping[idx])
                # pre-tokenized input: offsets are within each word, shift them into the joined sentence
                if word_ids is not None and word_to_chars_map is not None and word_ids[idx] is not None:
                    start_char = word_to_chars_map[word_ids[idx]][0]
                    start_ind, end_ind = start_ind + start_char, end_ind + start_char
                word_ref = sentence[start_ind:end_ind]
                if subword_prefix:
                    # WordPiece knows its words: a "##" piece is longer than its slice of the text
                    is_subword = len(word) != len(word_ref)
                else:
                    # transformers' fallback heuristic for tokenizers without word information
                    if aggregation_strategy in _WORD_STRATEGIES:
                        warnings.warn("Tokenizer does not support real words, using fallback heuristic", UserWarning,
                                      stacklevel=3)
                    is_subword = start_ind > 0 and " " not in sentence[start_ind - 1:start_ind + 1]
                if int(input_ids[idx]) == self.tokenizer.unk_token_id:
                    word, is_subword = word_ref, False
            else:
                start_ind = end_ind = None
                is_subword = False
            pre_entities.append({"word": word, "scores": token_scores, "start": start_ind, "end": end_ind,
                                 "index": idx, "is_subword": is_subword})
        return pre_entities

    def aggregate(self, pre_entities: list[dict], aggregation_strategy: str) -> list[dict]:
        if aggregation_strategy in ("none", "simple"):
            entities = []
            for pre_entity in pre_entities:
                entity_idx = pre_entity["scores"].argmax()
                entities.append({"entity": self._label(entity_idx), "score": pre_entity["scores"][entity_idx],
                                 "index": pre_entity["index"], "word": pre_entity["word"],
                                 "start": pre_entity["start"], "end": pre_entity["end"]})
        else:
            entities = self.aggregate_words(pre_entities, aggregation_strategy)
        if aggregation_strategy == "none":
            return entities
        return self.group_entities(entities)

    def aggregate_word(self, entities: list[dict], aggregation_strategy: str) -> dict:
        """One word from its tokens: the label of the first token, of the most confident token, or of the
        averaged probabilities."""
        word = self.tokenizer.convert_tokens_to_string([entity["word"] for entity in entities])
        if aggregation_strategy == "first":
            scores = entities[0]["scores"]
            idx = scores.argmax()
            score = scores[idx]
        elif aggregation_strategy == "max":
            scores = max(entities, key=lambda entity: entity["scores"].max())["scores"]
            idx = scores.argmax()
            score = scores[idx]
        elif aggregation_strategy == "average":
            average_scores = np.nanmean(np.stack([entity["scores"] for entity in entities]), axis=0)
            idx = average_scores.argmax()
            score = average_scores[idx]
        else:
            raise ValueError("Invalid aggregation_strategy")
        return {"entity": self._label(idx), "score": score, "word": word, "start": entities[0]["start"],
                "end": entities[-1]["end"]}

    def aggregate_words(self, entities: list[dict], aggregation_strategy: str) -> list[dict]:
        """Merge subword tokens into words, so that a word cannot end up with two labels."""
        if aggregation_strategy in ("none", "simple"):
            raise ValueError("NONE and SIMPLE strategies are invalid for word aggregation")
        word_entities, word_group = [], None
        for entity in entities:
            if word_group is None:
                word_group = [entity]
            elif entity["is_subword"]:
                word_group.append(entity)
            else:
                word_entities.append(self.aggregate_word(word_group, aggregation_strategy))
                word_group = [entity]
        if word_group is not None:
            word_entities.append(self.aggregate_word(word_group, aggregation_strategy))
        return word_entities

    def group_sub_entities(self, entities: list[dict]) -> dict:
        """One entity group from adjacent entities of the same tag: mean score, words joined by the decoder."""
        scores = np.nanmean([entity["score"] for entity in entities])
        return {"entity_group": entities[0]["entity"].split("-", 1)[-1], "score": np.mean(scores),
                "word": self.tokenizer.convert_tokens_to_string([entity["word"] for entity in entities]),
                "start": entities[0]["start"], "end": entities[-1]["end"]}

    def group_entities(self, entities: list[dict]) -> list[dict]:
        """Group adjacent entities with the same tag; a `B-` entity always starts a new group."""
        entity_groups, current = [], []
        for entity in entities:
            if not current:
                current.append(entity)
                continue
            bi, tag = get_tag(entity["entity"])
            _, last_tag = get_tag(current[-1]["entity"])
            if tag == last_tag and bi != "B":
                current.append(entity)
            else:
                entity_groups.append(self.group_sub_entities(current))
                current = [entity]
        if current:
            entity_groups.append(self.group_sub_entities(current))
        return entity_groups

    def _label(self, idx) -> str:
        return self.model.config.id2label[int(idx)]


NerPipeline = TokenClassificationPipeline


def get_tag(entity_name: str) -> tuple[str, str]:
    """("B" or "I", tag); a label without a B-/I- prefix counts as a continuation."""
    if entity_name.startswith("B-"):
        return "B", entity_name[2:]
    if entity_name.startswith("I-"):
        return "I", entity_name[2:]
    return "I", entity_name


def aggregate_overlapping_entities(entities: list[dict]) -> list[dict]:
    """Entities of overlapping stride windows: of those starting inside the previous one, keep the longer span,
    then the higher score (transformers' rule)."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda x: x["start"])
    aggregated, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            current_length = entity["end"] - entity["start"]
            previous_length = previous["end"] - previous["start"]
            if current_length > previous_length or (current_length == previous_length
                                                    and entity["score"] > previous["score"]):
                previous = entity
        else:
            aggregated.append(previous)
            previous = entity
    aggregated.append(previous)
    return aggregated


def _has_offsets(tokenizer) -> bool:
    """transformers' "fast tokenizer" test. Both our tokenizer classes give offsets and word ids (in transformers 5
    every BERT tokenizer is a fast one), so MobileBertTokenizer counts as fast here despite its is_fast=False."""
    from ..tokenization import MobileBertTokenizer

    return bool(getattr(tokenizer, "is_fast", False)) or isinstance(tokenizer, MobileBertTokenizer)


def _strategy(value) -> str:
    """An aggregation strategy name (case-insensitive, or an enum with a `.value`)."""
    name = getattr(value, "value", value)
    if not isinstance(name, str) or name.lower() not in STRATEGIES:
        raise KeyError(f"unknown aggregation_strategy {value!r}; expected one of {STRATEGIES}")
    return name.lower()


def _parse_inputs(inputs, **kwargs):
    """transformers' TokenClassificationArgumentHandler: (inputs list, is_split_into_words, offset_mapping,
    delimiter)."""
    is_split_into_words = kwargs.get("is_split_into_words", False)
    delimiter = kwargs.get("delimiter")
    if isinstance(inputs, (list, tuple)) and len(inputs) > 0:
        inputs = list(inputs)
    elif isinstance(inputs, str):
        inputs = [inputs]
    elif isinstance(inputs, types.GeneratorType):
        inputs = list(inputs)
        if not inputs:
            raise ValueError("At least one input is required.")
    else:
        raise ValueError("At least one input is required.")
    offset_mapping = kwargs.get("offset_mapping")
    if offset_mapping:
        if isinstance(offset_mapping, list) and isinstance(offset_mapping[0], tuple):
            offset_mapping = [offset_mapping]
        if len(offset_mapping) != len(inputs):
            raise ValueError("offset_mapping should have the same batch size as the input")
    return inputs, is_split_into_words, offset_mapping, delimiter

