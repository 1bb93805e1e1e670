"""MobileBertTokenizer and MobileBertTokenizerFast: transformers' BERT tokenizer API and behaviour, NumPy-free core.

Both classes share this API layer, which follows HF's Rust pipeline step by step (split added tokens out of the raw
text, normalise + pre-tokenise + WordPiece each piece, truncate, add [CLS]/[SEP], pad); they differ only in the core
that turns a piece of text into WordPiece ids with offsets: readable Python (`normalization.WordPieceCore`) for the
slow class, C++ (`_C.WordPieceTokenizer`) for the fast one.

Deliberate differences from transformers 5.23, each because its behaviour there is unusable:
- `model_max_length` is 512 when nothing configures it (transformers: 1e30, so `truncation=True` did nothing);
- `encode_plus`, `batch_encode_plus`, `build_inputs_with_special_tokens`, `create_token_type_ids_from_sequences`
  and `get_special_tokens_mask` for raw sequences keep their transformers 4 meaning (5.23 removed or disabled them);
- bad input raises a clear TypeError/ValueError instead of a Rust panic, and decode refuses ids outside the
  vocabulary instead of silently dropping them.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ..hub import TOKENIZER_FILES, resolve_model_dir
from . import files
from .encoding import BatchEncoding, Encoding, truncate_pair
from .normalization import WordPieceCore, build_char_map, exact_path

PADDING = ("longest", "max_length", "do_not_pad")
TRUNCATION = ("longest_first", "only_first", "only_second", "do_not_truncate")
LARGE_INTEGER = int(1e20)
DEFAULT_MAX_LENGTH = 512
_INVALID_TEXT = ("text input must be of type `str` (single example), `list[str]` (batch or single pretokenized "
                 "example) or `list[list[str]]` (batch of pretokenized examples) or "
                 "`list[tuple[list[str], list[str]]]` (batch of pretokenized sequence pairs).")


def _is_valid_text_input(t) -> bool:
    """transformers' own check of what `text` may be (strings, lists of them, lists of lists of them)."""
    if isinstance(t, str):
        return True
    if not isinstance(t, (list, tuple)):
        return False
    if len(t) == 0 or isinstance(t[0], str):
        return True
    if isinstance(t[0], (list, tuple)):
        return len(t[0]) == 0 or isinstance(t[0][0], str) or (
            isinstance(t[0][0], (list, tuple)) and (len(t[0][0]) == 0 or isinstance(t[0][0][0], str)))
    return False


def _token_id(value) -> int:
    """Token ids are unsigned, as in HF (which raises OverflowError for a negative one)."""
    value = int(value)
    if value < 0:
        raise OverflowError(f"token id {value} is negative; ids are non-negative integers")
    return value


def _check_str(item, where: str) -> str:
    if not isinstance(item, str):
        raise TypeError(f"{where} is {type(item).__name__}, expected str")
    return item


class MobileBertTokenizer:
    """BERT WordPiece tokenizer with transformers' call API; pure-Python core (the fast class's oracle)."""

    vocab_files_names = {"vocab_file": files.VOCAB_FILE, "tokenizer_file": files.TOKENIZER_FILE}
    model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    is_fast = False

    def __init__(self, vocab_file: str | os.PathLike | None = None, do_lower_case: bool = True,
                 do_basic_tokenize: bool = True, never_split=None, unk_token: str = "[UNK]",
                 sep_token: str = "[SEP]", pad_token: str = "[PAD]", cls_token: str = "[CLS]",
                 mask_token: str = "[MASK]", tokenize_chinese_chars: bool = True, strip_accents: bool | None = None,
                 clean_text: bool = True, model_max_length: int | None = None, padding_side: str = "right",
                 truncation_side: str = "right", clean_up_tokenization_spaces: bool = False,
                 additional_special_tokens=None, vocab: dict[str, int] | None = None,
                 continuing_subword_prefix: str = "##", max_input_chars_per_word: int = 100,
                 added_tokens: dict[str, int] | None = None, **kwargs: Any):
        if vocab is None:
            vocab = files.read_vocab(vocab_file if vocab_file is not None else files.DEFAULT_VOCAB)
        if not do_basic_tokenize:
            raise ValueError("do_basic_tokenize=False is not supported (transformers' fast tokenizer ignores it too)")
        self.vocab = dict(vocab)
        self.do_lower_case = bool(do_lower_case)
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.strip_accents = strip_accents
        self.clean_text = bool(clean_text)
        self.continuing_subword_prefix = continuing_subword_prefix
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self.unk_token, self.sep_token, self.pad_token = str(unk_token), str(sep_token), str(pad_token)
        self.cls_token, self.mask_token = str(cls_token), str(mask_token)
        self.additional_special_tokens = [str(t) for t in (additional_special_tokens or [])]
        self.never_split = [str(t) for t in (never_split or [])]
        if self.unk_token not in self.vocab:
            raise ValueError(f"the vocabulary has no unknown token {self.unk_token!r}; WordPiece needs one to map "
                             "words it cannot split")
        self._set_model_max_length(model_max_length)
        for name, value in (("padding_side", padding_side), ("truncation_side", truncation_side)):
            if value not in ("right", "left"):
                raise ValueError(f"{name} must be 'right' or 'left', got {value!r}")
        self.padding_side, self.truncation_side = padding_side, truncation_side
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        self.name_or_path = str(kwargs.pop("name_or_path", ""))
        self._build_added_tokens(added_tokens or {})
        flags = (self.clean_text, self.tokenize_chinese_chars,
                 self.do_lower_case if strip_accents is None else bool(strip_accents), self.do_lower_case)
        self._exact = exact_path(*flags)
        self._core = self._make_core(build_char_map(*flags))

    def _set_model_max_length(self, value) -> None:
        if value is None or (isinstance(value, (int, float)) and value > LARGE_INTEGER):
            value = DEFAULT_MAX_LENGTH
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"model_max_length must be a positive int, got {value!r}")
        self.model_max_length = value

    def _make_core(self, char_map):
        return WordPieceCore(self.vocab, self.vocab[self.unk_token], char_map, self.max_input_chars_per_word,
                             self.continuing_subword_prefix, self._exact)

    def _build_added_tokens(self, added_tokens: dict[str, int]) -> None:
        """Special tokens (and never_split entries) are matched in the raw text before normalisation, exactly and
        case-sensitively, longest first; a special token missing from the vocabulary gets the next free id."""
        self._added = dict(added_tokens)
        for token in self.all_special_tokens + self.never_split:
            if token not in self._added:
                self._added[token] = self.vocab.get(token)
        next_id = max([len(self.vocab) - 1, *(v for v in self._added.values() if v is not None)]) + 1
        for token, token_id in self._added.items():
            if token_id is None:
                self._added[token], next_id = next_id, next_id + 1
        self._id_to_token = {i: t for t, i in self.vocab.items()}
        self._id_to_token.update({i: t for t, i in self._added.items()})
        self._special_ids = {self._added[t] for t in self.all_special_tokens}
        keys = sorted(self._added, key=len, reverse=True)
        self._added_re = re.compile("|".join(map(re.escape, keys))) if keys else None

    # --- vocabulary and special tokens -----------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs):
        options = files.read_pretrained(resolve_model_dir(pretrained_model_name_or_path, TOKENIZER_FILES,
                                                          kind="tokenizer"))
        options.update(kwargs)
        for key in ("tokenizer_class", "backend", "is_local", "local_files_only", "auto_map", "name_or_path",
                    "model_input_names", "special_tokens_map_file", "tokenizer_file", "added_tokens_decoder",
                    "extra_special_tokens"):
            options.pop(key, None)
        options["name_or_path"] = str(pretrained_model_name_or_path)
        return cls(**options)

    @property
    def all_special_tokens(self) -> list[str]:
        seen = []
        for t in [self.unk_token, self.sep_token, self.pad_token, self.cls_token, self.mask_token,
                  *self.additional_special_tokens]:
            if t not in seen:
                seen.append(t)
        return seen

    @property
    def all_special_ids(self) -> list[int]:
        return [self._added[t] for t in self.all_special_tokens]

    unk_token_id = property(lambda self: self._added[self.unk_token])
    sep_token_id = property(lambda self: self._added[self.sep_token])
    pad_token_id = property(lambda self: self._added[self.pad_token])
    cls_token_id = property(lambda self: self._added[self.cls_token])
    mask_token_id = property(lambda self: self._added[self.mask_token])
    pad_token_type_id = 0

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self._id_to_token)

    def get_vocab(self) -> dict[str, int]:
        return {**self.vocab, **self._added}

    def convert_tokens_to_ids(self, tokens):
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._added.get(tokens, self.vocab.get(tokens, self.unk_token_id))
        return [self.convert_tokens_to_ids(_check_str(t, f"tokens[{i}]")) for i, t in enumerate(tokens)]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        if isinstance(ids, int) or hasattr(ids, "__index__") and not hasattr(ids, "__len__"):
            return self._id_to_token.get(_token_id(ids))
        skip = self._special_ids if skip_special_tokens else ()
        return [self._id_to_token.get(_token_id(i)) for i in ids if int(i) not in skip]

    def _num_added(self, pair: bool) -> int:
        return 3 if pair else 2

    num_special_tokens_to_add = _num_added

    def build_inputs_with_special_tokens(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        out = [self.cls_token_id, *token_ids_0, self.sep_token_id]
        return out if token_ids_1 is None else out + [*token_ids_1, self.sep_token_id]

    def create_token_type_ids_from_sequences(self, token_ids_0: list[int], token_ids_1: list[int] | None = None):
        first = [0] * (len(token_ids_0) + 2)
        return first if token_ids_1 is None else first + [1] * (len(token_ids_1) + 1)

    def get_special_tokens_mask(self, token_ids_0: list[int], token_ids_1: list[int] | None = None,
                                already_has_special_tokens: bool = False) -> list[int]:
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("give one sequence of ids when already_has_special_tokens=True")
            return [int(int(i) in self._special_ids) for i in token_ids_0]
        mask = [1] + [0] * len(token_ids_0) + [1]
        return mask if token_ids_1 is None else mask + [0] * len(token_ids_1) + [1]

    # --- encoding ----------------------------------------------------------------------------------------------
    def _strategies(self, padding, truncation, max_length, pad_to_multiple_of, stride):
        """transformers' `_get_padding_truncation_strategies`, with clear errors for bad values."""
        if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool)
                                       or max_length < 0):
            raise ValueError(f"max_length must be a non-negative int or None, got {max_length!r}")
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 0:
            raise ValueError(f"stride must be a non-negative int, got {stride!r}")
        if pad_to_multiple_of is not None and (not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of <= 0):
            raise ValueError(f"pad_to_multiple_of must be a positive int or None, got {pad_to_multiple_of!r}")
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"
        if padding is True:
            padding = "longest"
        elif padding is False or padding is None:
            padding = "do_not_pad"
        padding = getattr(padding, "value", padding)
        if padding not in PADDING:
            raise ValueError(f"padding={padding!r} is not valid; use True, False or one of {PADDING}")
        if truncation is True:
            truncation = "longest_first"
        elif truncation is False or truncation is None:
            truncation = "do_not_truncate"
        truncation = getattr(truncation, "value", truncation)
        if truncation not in TRUNCATION:
            raise ValueError(f"truncation={truncation!r} is not valid; use True, False or one of {TRUNCATION}")
        if max_length is None:
            if padding == "max_length":
                max_length = self.model_max_length
            if truncation != "do_not_truncate":
                max_length = self.model_max_length
        if (truncation != "do_not_truncate" and padding != "do_not_pad" and pad_to_multiple_of is not None
                and max_length is not None and max_length % pad_to_multiple_of != 0):
            raise ValueError(f"Truncation and padding are both activated but truncation length ({max_length}) is not "
                             f"a multiple of pad_to_multiple_of ({pad_to_multiple_of}).")
        return padding, truncation, max_length

    def _split_added(self, text: str) -> list[tuple[int, int, int | None]]:
        """(start, end, added token id or None for plain text) pieces of the raw text."""
        if self._added_re is None:
            return [(0, len(text), None)]
        pieces, pos = [], 0
        for m in self._added_re.finditer(text):
            if m.start() > pos:
                pieces.append((pos, m.start(), None))
            pieces.append((m.start(), m.end(), self._added[m.group()]))
            pos = m.end()
        if pos < len(text) or not pieces:
            pieces.append((pos, len(text), None))
        return pieces

    def _encode_sequences(self, sequences: list, is_split_into_words: bool) -> list[Encoding]:
        """Each text (or list of words) -> one Encoding without special tokens. All plain-text pieces of the whole
        batch go to the core in one call."""
        plans, texts = [], []
        for seq in sequences:
            plan = []
            for w, word in enumerate(seq if is_split_into_words else [seq]):
                for start, end, added in self._split_added(word):
                    if added is None:
                        plan.append((w, start, len(texts)))
                        texts.append(word[start:end])
                    else:
                        plan.append((w, start, -1 - added, end))
            plans.append(plan)
        ids, starts, ends, words, splits = self._core.encode_batch(texts)
        out = []
        for plan in plans:
            e_ids, e_offsets, e_words, next_word = [], [], [], 0
            for item in plan:
                w, base, k = item[0], item[1], item[2]
                if k < 0:  # an added token: one token, one word
                    e_ids.append(-1 - k)
                    e_offsets.append((base, item[3]))
                    e_words.append(w if is_split_into_words else next_word)
                    next_word += 1
                    continue
                a, b = splits[k], splits[k + 1]
                e_ids += ids[a:b]
                e_offsets += [(s + base, t + base) for s, t in zip(starts[a:b], ends[a:b])]
                if is_split_into_words:
                    e_words += [w] * (b - a)
                elif a < b:
                    e_words += [next_word + x for x in words[a:b]]
                    next_word += words[b - 1] + 1
            out.append(Encoding.from_tokens(e_ids, e_offsets, e_words))
        return out

    def _special(self, token: str, type_id: int) -> Encoding:
        return Encoding([self._added[token]], [type_id], [None], [(0, 0)], [1], [1])

    def _post_process(self, first: Encoding, second: Encoding | None, add_special_tokens: bool, truncation: str,
                      max_length: int | None, stride: int) -> Encoding:
        """HF's post_process: truncate, set sequence ids and type ids, wrap in [CLS] ... [SEP] (... [SEP])."""
        if second is not None:  # HF encodes the pair with type id 1 before truncating: its windows keep it
            second.type_ids = [1] * len(second)
        room = max_length - (self._num_added(second is not None) if add_special_tokens else 0) \
            if truncation != "do_not_truncate" else -1
        # a max_length below the number of special tokens disables truncation in HF (its unsigned room wraps)
        if room >= 0:
            truncate_pair(first, second, room, truncation, stride, self.truncation_side)
        pieces = []
        for i, enc in enumerate([first] if second is None else [first, second]):
            enc.type_ids = [i] * len(enc)
            enc.set_sequence_id(i)
            for o in enc.overflowing:
                o.set_sequence_id(i)
            pieces.append(enc)
        if add_special_tokens:
            template = [self._special(self.cls_token, 0), pieces[0], self._special(self.sep_token, 0)]
            if second is not None:
                template += [pieces[1], self._special(self.sep_token, 1)]
            pieces = template
        result = Encoding([], [], [], [], [], [])
        for piece in pieces:
            result.merge_with(piece)
        return result

    def __call__(self, text=None, text_pair=None, add_special_tokens: bool = True, padding=False, truncation=None,
                 max_length: int | None = None, stride: int = 0, is_split_into_words: bool = False,
                 pad_to_multiple_of: int | None = None, padding_side: str | None = None,
                 return_tensors: str | None = None, return_token_type_ids: bool | None = None,
                 return_attention_mask: bool | None = None, return_overflowing_tokens: bool = False,
                 return_special_tokens_mask: bool = False, return_offsets_mapping: bool = False,
                 return_length: bool = False, verbose: bool = True, **kwargs) -> BatchEncoding:
        if kwargs:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(kwargs))}")
        if text is None:
            raise ValueError("You need to specify `text` (a string, a list of strings, or lists of words with "
                             "is_split_into_words=True)")
        if not _is_valid_text_input(text) or (text_pair is not None and not _is_valid_text_input(text_pair)):
            raise ValueError(_INVALID_TEXT)
        padding, truncation, max_length = self._strategies(padding, truncation, max_length, pad_to_multiple_of,
                                                           stride)
        if truncation != "do_not_truncate" and 0 <= max_length - self._num_added(False) < stride:
            raise ValueError(f"tokenizer stride set to {stride}, which is greater than or equal to its effective max "
                             f"length of {max_length - self._num_added(False)} (= {max_length} original max length - "
                             f"{self._num_added(False)} added special tokens)")
        side = padding_side if padding_side is not None else self.padding_side
        if side not in ("right", "left"):
            raise ValueError(f"padding_side must be 'right' or 'left', got {side!r}")
        if is_split_into_words:
            is_batched = isinstance(text, (list, tuple)) and bool(text) and isinstance(text[0], (list, tuple))
        else:
            is_batched = isinstance(text, (list, tuple))
        if is_batched:
            if isinstance(text_pair, str):
                raise TypeError("when tokenizing batches of text, `text_pair` must be a list or tuple with the same "
                                "length as `text`.")
            if text_pair is not None and len(text) != len(text_pair):
                raise ValueError(f"batch length of `text`: {len(text)} does not match batch length of "
                                 f"`text_pair`: {len(text_pair)}.")
            firsts, seconds = list(text), (list(text_pair) if text_pair is not None else None)
        else:
            firsts, seconds = [text], ([text_pair] if text_pair else None)
        self._check_items(firsts, "text", is_split_into_words)
        if seconds is not None:
            self._check_items(seconds, "text_pair", is_split_into_words)
        encoded = self._encode_sequences(firsts + (seconds or []), is_split_into_words)
        n = len(firsts)
        results = [self._post_process(encoded[i], encoded[n + i] if seconds is not None else None,
                                      add_special_tokens, truncation, max_length, stride) for i in range(n)]
        if padding != "do_not_pad" and results:
            target = max_length if padding == "max_length" else max(len(r) for r in results)
            if pad_to_multiple_of and target % pad_to_multiple_of:
                target += pad_to_multiple_of - target % pad_to_multiple_of
            for r in results:
                r.pad(target, self.pad_token_id, self.pad_token_type_id, side)
        return self._to_batch_encoding(results, is_batched, return_tensors, return_token_type_ids,
                                       return_attention_mask, return_overflowing_tokens, return_special_tokens_mask,
                                       return_offsets_mapping, return_length)

    @staticmethod
    def _check_items(items: list, name: str, is_split_into_words: bool) -> None:
        for i, item in enumerate(items):
            if is_split_into_words:
                if not isinstance(item, (list, tuple)):
                    raise TypeError(f"{name}[{i}] is {type(item).__name__}; with is_split_into_words=True each "
                                    "sequence must be a list of words")
                for j, word in enumerate(item):
                    _check_str(word, f"{name}[{i}][{j}]")
            else:
                _check_str(item, f"{name}[{i}]")

    def _to_batch_encoding(self, results, is_batched, return_tensors, return_token_type_ids, return_attention_mask,
                           return_overflowing_tokens, return_special_tokens_mask, return_offsets_mapping,
                           return_length) -> BatchEncoding:
        fields = [("input_ids", "ids", True),
                  ("token_type_ids", "type_ids", return_token_type_ids is not False),
                  ("attention_mask", "attention_mask", return_attention_mask is not False),
                  ("special_tokens_mask", "special_tokens_mask", return_special_tokens_mask),
                  ("offset_mapping", "offsets", return_offsets_mapping)]
        encodings, mapping = [], []
        for i, r in enumerate(results):
            windows = [r, *r.overflowing] if return_overflowing_tokens else [r]
            encodings += windows
            mapping += [i] * len(windows)
        data = {key: [getattr(e, attr) for e in encodings] for key, attr, wanted in fields if wanted}
        if return_length:
            data["length"] = [len(e) for e in encodings]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = mapping
        if not is_batched and return_tensors is None and not return_overflowing_tokens:
            data = {k: (v[0] if v and isinstance(v[0], list) else v) for k, v in data.items()}
        return BatchEncoding(data, encodings, tensor_type=return_tensors, id_to_token=self._id_to_token)

    # transformers 4 names, kept because user code still calls them
    def encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        return self(text, text_pair, **kwargs)

    def batch_encode_plus(self, batch_text_or_text_pairs, **kwargs) -> BatchEncoding:
        if not isinstance(batch_text_or_text_pairs, (list, tuple)):
            raise TypeError(f"batch_text_or_text_pairs has to be a list or a tuple (got "
                            f"{type(batch_text_or_text_pairs).__name__})")
        items = list(batch_text_or_text_pairs)
        if items and isinstance(items[0], tuple) and len(items[0]) == 2 and not kwargs.get("is_split_into_words"):
            return self([a for a, _ in items], [b for _, b in items], **kwargs)
        return self(items, **kwargs)

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, **kwargs) -> list[int]:
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        return self(text, pair, add_special_tokens=add_special_tokens, **kwargs).tokens()

    # --- decoding ----------------------------------------------------------------------------------------------
    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """HF's WordPiece decoder: '##' pieces glue to the previous token, and a token that is exactly one of
        . ? ! , attaches to the previous one."""
        out = []
        for i, token in enumerate(tokens):
            if i:
                token = token[len(self.continuing_subword_prefix):] if token.startswith(
                    self.continuing_subword_prefix) else " " + token
            out.append(_decoder_cleanup(token))
        return "".join(out)

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None,
               **kwargs) -> str:
        if isinstance(token_ids, dict):
            token_ids = token_ids["input_ids"]
        if hasattr(token_ids, "tolist"):
            token_ids = token_ids.tolist()
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        tokens = []
        for i, token_id in enumerate(token_ids):
            if isinstance(token_id, bool) or not isinstance(token_id, int):
                raise TypeError(f"token_ids[{i}] is {type(token_id).__name__}, expected int")
            token = self._id_to_token.get(token_id)
            if token is None:
                raise ValueError(f"token id {token_id} (token_ids[{i}]) is outside the vocabulary "
                                 f"(0..{len(self) - 1})")
            if not (skip_special_tokens and token_id in self._special_ids):
                tokens.append(token)
        text = self.convert_tokens_to_string(tokens)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else \
            clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None, **kwargs) -> list[str]:
        if hasattr(sequences, "tolist"):
            sequences = sequences.tolist()
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    @staticmethod
    def clean_up_tokenization(text: str) -> str:
        return _replace_all(text, _CLEANUP)

    # --- saving --------------------------------------------------------------------------------------------------
    def save_vocabulary(self, save_directory: str | os.PathLike, filename_prefix: str | None = None) -> tuple[str]:
        return files.save_vocab(self, save_directory, filename_prefix)

    def save_pretrained(self, save_directory: str | os.PathLike, filename_prefix: str | None = None,
                        **kwargs) -> tuple[str, ...]:
        if os.path.isfile(save_directory):
            raise ValueError(f"save_pretrained needs a directory, {save_directory} is a file")
        return files.write_pretrained(self, save_directory, filename_prefix)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"do_lower_case={self.do_lower_case}, model_max_length={self.model_max_length})")


# transformers' clean_up_tokenization; HF's WordPiece decoder applies the same list per token, in the same order,
# with " do not" -> " don't" after " 'm".
_CLEANUP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
            (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))
_DECODER_CLEANUP = _CLEANUP[:7] + ((" do not", " don't"),) + _CLEANUP[7:]


def _replace_all(text: str, pairs) -> str:
    for old, new in pairs:
        text = text.replace(old, new)
    return text


def _decoder_cleanup(token: str) -> str:
    return _replace_all(token, _DECODER_CLEANUP)
