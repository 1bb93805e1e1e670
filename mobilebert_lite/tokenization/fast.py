"""MobileBertTokenizerFast: MobileBertTokenizer with the C++ WordPiece core (`_C.WordPieceTokenizer`)."""

from __future__ import annotations

from .normalization import WordPieceCore
from .tokenizer import MobileBertTokenizer


class MobileBertTokenizerFast(MobileBertTokenizer):
    """The same tokenizer with the C++ core (`_C.WordPieceTokenizer`); falls back to the Python core, with the same
    results, when the native module is not built."""

    is_fast = True

    def _make_core(self, char_map):
        from . import unicode_tables
        try:
            from .. import _C
            native = _C.WordPieceTokenizer
        except (ImportError, AttributeError):
            return super()._make_core(char_map)
        core = native(self.vocab, self.vocab[self.unk_token], char_map, list(unicode_tables.SPLIT_WHITESPACE),
                      list(unicode_tables.PUNCTUATION), self.max_input_chars_per_word, self.continuing_subword_prefix)
        if self._exact is None:
            return core
        return _RoutedCore(core, super()._make_core(char_map), self._exact.pattern)


class _RoutedCore:
    """The native core, except for the rare texts that need the exact (reordering) normaliser path: those few go
    through the Python core, so both tokenizers give identical results everywhere."""

    def __init__(self, native, python: WordPieceCore, pattern):
        self.native, self.python, self.pattern = native, python, pattern

    def encode_batch(self, texts: list[str]):
        result = self.native.encode_batch(texts)
        special = [i for i, t in enumerate(texts) if self.pattern.search(t)]
        if not special:
            return result
        ids, starts, ends, words, splits = result
        special = set(special)
        out = ([], [], [], [], [0])
        for i in range(len(texts)):
            if i in special:
                parts = self.python.encode_batch([texts[i]])[:4]
            else:
                a, b = splits[i], splits[i + 1]
                parts = [ids[a:b], starts[a:b], ends[a:b], words[a:b]]
            for dst, src in zip(out, parts):
                dst += src
            out[4].append(len(out[0]))
        return out
