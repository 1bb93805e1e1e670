"""One encoded sequence (or pair) and its overflow windows, with the truncation, merging and padding rules of HF's
Rust `Encoding`, plus the `BatchEncoding` dict that tokenizer calls return.

The rules are those of tokenizers 0.23 (`tokenizer/encoding.rs`, `utils/truncation.rs`): overflow windows of a
truncated sequence overlap by `stride` tokens; merging a sequence that has windows with one that has windows yields
every combination; padding pads the windows too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


class CharSpan(NamedTuple):
    start: int
    end: int


class TokenSpan(NamedTuple):
    start: int
    end: int


@dataclass
class Encoding:
    ids: list[int]
    type_ids: list[int]
    words: list[int | None]
    offsets: list[tuple[int, int]]
    special_tokens_mask: list[int]
    attention_mask: list[int]
    overflowing: list[Encoding] = field(default_factory=list)
    # sequence index -> (start, end) token range; special and padding tokens belong to no sequence
    sequence_ranges: dict[int, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_tokens(cls, ids, offsets, words, type_id: int = 0, special: bool = False) -> Encoding:
        n = len(ids)
        return cls(list(ids), [type_id] * n, list(words), list(offsets), [int(special)] * n, [1] * n)

    def __len__(self) -> int:
        return len(self.ids)

    def _slice(self, start: int, stop: int) -> Encoding:
        return Encoding(self.ids[start:stop], self.type_ids[start:stop], self.words[start:stop],
                        self.offsets[start:stop], self.special_tokens_mask[start:stop],
                        self.attention_mask[start:stop])

    def set_sequence_id(self, sequence_id: int) -> None:
        self.sequence_ranges[sequence_id] = (0, len(self))

    def truncate(self, max_len: int, stride: int, direction: str = "right") -> None:
        """Keep the first (or last) `max_len` tokens; the rest become overflow windows overlapping by `stride`."""
        n = len(self)
        if max_len >= n:
            return
        if max_len == 0:
            whole = Encoding(self.ids, self.type_ids, self.words, self.offsets, self.special_tokens_mask,
                             self.attention_mask, self.overflowing, self.sequence_ranges)
            self.__init__([], [], [], [], [], [], [whole], {})
            return
        if stride >= max_len:
            raise ValueError(
                f"stride ({stride}) must be strictly less than the room left for this sequence ({max_len} tokens; "
                "max_length minus the special tokens and the other sequence)")
        step = max_len - stride
        parts = []
        if direction == "right":
            for start in range(0, n, step):
                stop = min(start + max_len, n)
                parts.append((start, stop))
                if stop == n:
                    break
        else:
            for last in range(n - 1, -1, -step):
                stop = last + 1
                start = max(stop - max_len, 0)
                parts.append((start, stop))
                if start == 0:
                    break
        first = self._slice(*parts[0])
        first.overflowing = [self._slice(*p) for p in parts[1:]]
        self.__dict__.update(first.__dict__)

    def merge_with(self, pair: Encoding) -> None:
        """Append `pair`; overflow windows combine as in HF (each of ours with the pair and its windows, then us with
        each of the pair's windows)."""
        overflowing = []
        for mine in self.overflowing:
            for other in [pair, *pair.overflowing]:
                merged = mine.copy()
                merged.merge_with(other.copy())
                overflowing.append(merged)
        for other in pair.overflowing:
            merged = self.copy()
            merged.merge_with(other.copy())
            overflowing.append(merged)
        n = len(self)
        for seq, (a, b) in pair.sequence_ranges.items():
            self.sequence_ranges[seq] = (a + n, b + n)
        self.ids += pair.ids
        self.type_ids += pair.type_ids
        self.words += pair.words
        self.offsets += pair.offsets
        self.special_tokens_mask += pair.special_tokens_mask
        self.attention_mask += pair.attention_mask
        self.overflowing = overflowing

    def copy(self) -> Encoding:
        return Encoding(list(self.ids), list(self.type_ids), list(self.words), list(self.offsets),
                        list(self.special_tokens_mask), list(self.attention_mask),
                        [o.copy() for o in self.overflowing], dict(self.sequence_ranges))

    def pad(self, target: int, pad_id: int, pad_type_id: int, side: str) -> None:
        for o in self.overflowing:
            o.pad(target, pad_id, pad_type_id, side)
        k = target - len(self)
        if k <= 0:
            return
        if side == "left":
            self.ids = [pad_id] * k + self.ids
            self.type_ids = [pad_type_id] * k + self.type_ids
            self.words = [None] * k + self.words
            self.offsets = [(0, 0)] * k + self.offsets
            self.special_tokens_mask = [1] * k + self.special_tokens_mask
            self.attention_mask = [0] * k + self.attention_mask
            self.sequence_ranges = {s: (a + k, b + k) for s, (a, b) in self.sequence_ranges.items()}
        else:
            self.ids += [pad_id] * k
            self.type_ids += [pad_type_id] * k
            self.words += [None] * k
            self.offsets += [(0, 0)] * k
            self.special_tokens_mask += [1] * k
            self.attention_mask += [0] * k

    # --- queries used by BatchEncoding -------------------------------------------------------------------------
    @property
    def sequence_ids(self) -> list[int | None]:
        out: list[int | None] = [None] * len(self)
        for seq, (a, b) in self.sequence_ranges.items():
            out[a:b] = [seq] * (b - a)
        return out

    @property
    def word_ids(self) -> list[int | None]:
        return list(self.words)

    def token_to_sequence(self, token: int) -> int | None:
        for seq, (a, b) in self.sequence_ranges.items():
            if a <= token < b:
                return seq
        return None

    def token_to_chars(self, token: int) -> tuple[int, int] | None:
        if not 0 <= token < len(self) or self.token_to_sequence(token) is None:
            return None
        return self.offsets[token]

    def char_to_token(self, pos: int, sequence_index: int = 0) -> int | None:
        a, b = self.sequence_ranges.get(sequence_index, (0, len(self)))
        for i in range(a, b):
            start, end = self.offsets[i]
            if start <= pos < end:
                return i
        return None

    def word_to_tokens(self, word: int, sequence_index: int = 0) -> tuple[int, int] | None:
        a, b = self.sequence_ranges.get(sequence_index, (0, len(self)))
        hits = [i for i in range(a, b) if self.words[i] == word]
        return (hits[0], hits[-1] + 1) if hits else None


def truncate_pair(first: Encoding, second: Encoding | None, max_length: int, strategy: str, stride: int,
                  direction: str) -> None:
    """HF's `truncate_encodings`: make the pair fit `max_length` tokens (special tokens already subtracted)."""
    if max_length == 0:
        first.truncate(0, stride, direction)
        if second is not None:
            second.truncate(0, stride, direction)
        return
    total = len(first) + (len(second) if second is not None else 0)
    if total <= max_length:
        return
    excess = total - max_length
    if strategy == "longest_first":
        if second is None:
            first.truncate(max_length, stride, direction)
            return
        n1, n2 = len(first), len(second)
        swap = n1 > n2
        if swap:
            n1, n2 = n2, n1
        n2 = n1 if n1 > max_length else max(n1, max_length - n1)
        if n1 + n2 > max_length:
            n1 = max_length // 2
            n2 = n1 + max_length % 2
        if swap:
            n1, n2 = n2, n1
        first.truncate(n1, stride, direction)
        second.truncate(n2, stride, direction)
        return
    target = first if strategy == "only_first" else second
    if target is None:
        raise ValueError("truncation='only_second' needs a second sequence (text_pair)")
    if len(target) <= excess:
        raise ValueError(
            f"Sequence to truncate too short to respect the provided max_length: truncation='{strategy}' must remove "
            f"{excess} tokens from a sequence of {len(target)} tokens")
    target.truncate(len(target) - excess, stride, direction)


class BatchEncoding(dict):
    """The dict a tokenizer call returns (`input_ids`, `attention_mask`, ...) plus per-token alignment queries."""

    def __init__(self, data: dict, encodings: list[Encoding] | None = None, tensor_type: str | None = None,
                 id_to_token: dict[int, str] | None = None):
        super().__init__(data)
        self._encodings = encodings
        self._id_to_token = id_to_token or {}
        if tensor_type is not None:
            self.convert_to_tensors(tensor_type)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def encodings(self) -> list[Encoding] | None:
        return self._encodings

    @property
    def is_fast(self) -> bool:
        return self._encodings is not None

    def convert_to_tensors(self, tensor_type: str | None = None) -> BatchEncoding:
        if tensor_type is None:
            return self
        if tensor_type != "np":
            raise ValueError(f"return_tensors={tensor_type!r} is not supported: mobilebert-lite returns NumPy arrays "
                             "(return_tensors='np') or Python lists (None)")
        for key, value in self.items():
            try:
                arr = np.asarray(value)
                if arr.dtype == object:
                    raise ValueError
            except ValueError:
                raise ValueError(
                    f"Unable to create a tensor from '{key}': its sequences have different lengths. Use padding=True "
                    "or padding='max_length' (with truncation=True) to make them equal") from None
            if arr.dtype.kind == "i":
                arr = arr.astype(np.int64)
            self[key] = arr
        return self

    def _encoding(self, batch_index: int) -> Encoding:
        if self._encodings is None:
            raise ValueError("this BatchEncoding has no alignment information")
        return self._encodings[batch_index]

    def _split_index(self, batch_or_index: int, index: int | None) -> tuple[int, int]:
        if index is None:
            if self._encodings is not None and len(self._encodings) > 1:
                raise ValueError("this batch has several sequences: give the batch index and the token/char index")
            return 0, batch_or_index
        return batch_or_index, index

    def tokens(self, batch_index: int = 0) -> list[str]:
        return [self._id_to_token[i] for i in self._encoding(batch_index).ids]

    def word_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._encoding(batch_index).word_ids

    def words(self, batch_index: int = 0) -> list[int | None]:
        return self.word_ids(batch_index)

    def sequence_ids(self, batch_index: int = 0) -> list[int | None]:
        return self._encoding(batch_index).sequence_ids

    def token_to_sequence(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        b, t = self._split_index(batch_or_token_index, token_index)
        enc = self._encoding(b)
        return enc.token_to_sequence(t + len(enc) if t < 0 else t)

    def token_to_word(self, batch_or_token_index: int, token_index: int | None = None) -> int | None:
        b, t = self._split_index(batch_or_token_index, token_index)
        return self._encoding(b).words[t]

    def token_to_chars(self, batch_or_token_index: int, token_index: int | None = None) -> CharSpan | None:
        b, t = self._split_index(batch_or_token_index, token_index)
        span = self._encoding(b).token_to_chars(t)
        return CharSpan(*span) if span is not None else None

    def char_to_token(self, batch_or_char_index: int, char_index: int | None = None,
                      sequence_index: int = 0) -> int | None:
        b, c = self._split_index(batch_or_char_index, char_index)
        return self._encoding(b).char_to_token(c, sequence_index)

    def word_to_tokens(self, batch_or_word_index: int, word_index: int | None = None,
                       sequence_index: int = 0) -> TokenSpan | None:
        b, w = self._split_index(batch_or_word_index, word_index)
        span = self._encoding(b).word_to_tokens(w, sequence_index)
        return TokenSpan(*span) if span is not None else None
