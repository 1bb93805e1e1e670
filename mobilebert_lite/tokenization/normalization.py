"""BERT normaliser, pre-tokeniser and WordPiece in readable pure Python: the slow tokenizer's core and the oracle of
the native one.

The normaliser works one code point at a time (HF's Rust BertNormalizer does too), so the whole configuration folds
into one table: code point -> output string, for the code points that change. Each output character remembers the
input character it came from, which is how offsets point back into the original text.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass

from . import unicode_tables

# Pre-tokeniser classes of a normalised character.
OTHER, WHITESPACE, PUNCTUATION = 0, 1, 2


def _expand(ranges) -> list[int]:
    return [c for a, b in ranges for c in range(a, b + 1)]


@functools.lru_cache(maxsize=16)
def build_char_map(clean_text: bool, handle_chinese_chars: bool, strip_accents: bool, lowercase: bool,
                   tables=unicode_tables) -> dict[int, str]:
    """Code point -> normalised text for every code point the normaliser changes (HF's order: clean, CJK, strip
    accents, lowercase). Code points absent from the map are kept as they are."""
    out: dict[int, str] = {}
    if clean_text:
        out.update(dict.fromkeys(_expand(tables.REMOVED), ""))
        out.update({c: " " for c in _expand(tables.CLEAN_WHITESPACE) if c != 0x20})
    if handle_chinese_chars:
        for c in _expand(tables.CJK):
            out.setdefault(c, f" {chr(c)} ")

    def later_steps(text: str) -> str:
        if strip_accents:
            text = "".join(tables.STRIP_ACCENTS.get(ord(ch), ch) for ch in text)
        if lowercase:
            text = "".join(tables.LOWERCASE.get(ord(ch), ch) for ch in text)
        return text

    # Only characters the later steps change need work; removed ones stay removed, whitespace stays a space.
    candidates = set()
    if strip_accents:
        candidates |= set(tables.STRIP_ACCENTS)
    if lowercase:
        candidates |= set(tables.LOWERCASE)
    for c in candidates:
        base = out.get(c, chr(c))
        if c in out and base in ("", " "):
            continue
        text = later_steps(base)
        if text != chr(c):
            out[c] = text
        else:
            out.pop(c, None)
    return out


class _RangeSet:
    """Membership in a sorted tuple of inclusive ranges."""

    def __init__(self, ranges):
        self._starts = [a for a, _ in ranges]
        self._ends = [b for _, b in ranges]

    def __contains__(self, c: int) -> bool:
        i = bisect.bisect_right(self._starts, c) - 1
        return i >= 0 and c <= self._ends[i]


_SPLIT_WHITESPACE = _RangeSet(unicode_tables.SPLIT_WHITESPACE)
_PUNCTUATION = _RangeSet(unicode_tables.PUNCTUATION)


@functools.lru_cache(maxsize=4096)
def split_class(c: int) -> int:
    """The pre-tokeniser's view of a normalised character: split and drop, isolate, or keep in the word."""
    if c in _SPLIT_WHITESPACE:
        return WHITESPACE
    if c in _PUNCTUATION:
        return PUNCTUATION
    return OTHER


def reorder_pattern(ranges=unicode_tables.REORDER_SENSITIVE) -> re.Pattern:
    """Matches the characters whose accent stripping goes through NFD's canonical reordering visibly."""
    return re.compile("[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]")


@dataclass(frozen=True)
class ExactPath:
    """The normaliser's separate steps, for the texts where composing them per character is not exact. HF's NFD
    tags each output character as replacing an input character or as inserted after one, sorts each run of
    combining marks by combining class with the tags travelling along, and only then hands out offsets: a replacing
    character takes the next input character's offsets, an inserted one the previous input character's. So a mark
    that survives accent stripping can end up with the offsets of a neighbour that is then removed."""

    pre_map: dict  # clean text + CJK spacing
    lowercase: bool
    pattern: re.Pattern

    def normalize(self, text: str) -> list[tuple[str, int]]:
        pre = [(m, i) for i, ch in enumerate(text) for m in self.pre_map.get(ord(ch), ch)]
        seq = [(d, k > 0) for m, _ in pre for k, d in enumerate(unicodedata.normalize("NFD", m))]
        j = 0
        while j < len(seq):  # canonical ordering: stable sort of each run of combining marks
            k = j
            while k < len(seq) and unicodedata.combining(seq[k][0]):
                k += 1
            if k > j:
                seq[j:k] = sorted(seq[j:k], key=lambda item: unicodedata.combining(item[0]))
                j = k
            else:
                j += 1
        out, consumed = [], 0
        for ch, inserted in seq:
            if inserted:
                src = pre[consumed - 1][1] if consumed else 0
            else:
                src = pre[consumed][1]
                consumed += 1
            if unicode_tables.STRIP_ACCENTS.get(ord(ch)) == "":  # a non-spacing mark: stripped
                continue
            mapped = unicode_tables.LOWERCASE.get(ord(ch), ch) if self.lowercase else ch
            out.extend((m, src) for m in mapped)
        return out


def exact_path(clean_text: bool, handle_chinese_chars: bool, strip_accents: bool, lowercase: bool):
    """The ExactPath for a configuration, or None when it needs none (no accent stripping, no reordering)."""
    if not strip_accents:
        return None
    return ExactPath(build_char_map(clean_text, handle_chinese_chars, False, False), lowercase, reorder_pattern())


class WordPieceCore:
    """Text (without special tokens) -> WordPiece ids with character offsets and word indices."""

    def __init__(self, vocab: dict[str, int], unk_id: int, char_map: dict[int, str],
                 max_input_chars_per_word: int = 100, continuing_prefix: str = "##",
                 exact: ExactPath | None = None):
        self.vocab = vocab
        self.unk_id = unk_id
        self.char_map = char_map
        self.max_chars = max_input_chars_per_word
        self.prefix = continuing_prefix
        self.exact = exact

    def normalize(self, text: str) -> list[tuple[str, int]]:
        """Normalised characters, each with the index of the input character it came from."""
        if self.exact is not None and self.exact.pattern.search(text):
            return self.exact.normalize(text)
        out = []
        for i, ch in enumerate(text):
            mapped = self.char_map.get(ord(ch))
            if mapped is None:
                out.append((ch, i))
            else:
                out.extend((m, i) for m in mapped)
        return out

    def pre_tokenize(self, chars: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
        """Split on whitespace (dropped) and punctuation (each mark a word of its own)."""
        words, current = [], []
        for ch, src in chars:
            kind = split_class(ord(ch))
            if kind == OTHER:
                current.append((ch, src))
                continue
            if current:
                words.append(current)
                current = []
            if kind == PUNCTUATION:
                words.append([(ch, src)])
        if current:
            words.append(current)
        return words

    def word_pieces(self, word: list[tuple[str, int]]) -> list[tuple[int, int, int]]:
        """Greedy longest-match-first WordPiece of one word -> (id, start, end) with offsets in the input text; the
        whole word becomes one [UNK] if it is too long or any position has no match."""
        text = "".join(ch for ch, _ in word)
        whole = [(self.unk_id, word[0][1], word[-1][1] + 1)]
        if len(text) > self.max_chars:
            return whole
        pieces, start = [], 0
        while start < len(text):
            end = len(text)
            while end > start:
                piece = text[start:end] if start == 0 else self.prefix + text[start:end]
                if piece in self.vocab:
                    pieces.append((self.vocab[piece], word[start][1], word[end - 1][1] + 1))
                    break
                end -= 1
            else:
                return whole
            start = end
        return pieces

    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]], list[int]]:
        """ids, (start, end) offsets and word indices (0-based within `text`)."""
        ids, offsets, words = [], [], []
        for w, word in enumerate(self.pre_tokenize(self.normalize(text))):
            for token_id, start, end in self.word_pieces(word):
                ids.append(token_id)
                offsets.append((start, end))
                words.append(w)
        return ids, offsets, words

    def encode_batch(self, texts: list[str]):
        """Many texts at once, flattened: (ids, starts, ends, words, splits); text i owns items splits[i]:splits[i+1].
        This is the interface the native core implements too."""
        ids, starts, ends, words, splits = [], [], [], [], [0]
        for text in texts:
            t_ids, t_offsets, t_words = self.encode(text)
            ids += t_ids
            starts += [a for a, _ in t_offsets]
            ends += [b for _, b in t_offsets]
            words += t_words
            splits.append(len(ids))
        return ids, starts, ends, words, splits
