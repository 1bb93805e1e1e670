"""Tokenizers with the names and behaviour of transformers' BERT/MobileBERT tokenizers."""

from .encoding import BatchEncoding, CharSpan, Encoding, TokenSpan
from .fast import MobileBertTokenizerFast
from .tokenizer import MobileBertTokenizer

__all__ = ["BatchEncoding", "CharSpan", "Encoding", "MobileBertTokenizer", "MobileBertTokenizerFast", "TokenSpan"]
