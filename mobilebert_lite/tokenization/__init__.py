"""Tokenizers with the names and behaviour of transformers' BERT/MobileBERT tokenizers."""

from .encoding import BatchEncoding, CharSpan, Encoding, TokenSpan
from .tokenizer import MobileBertTokenizer, MobileBertTokenizerFast

__all__ = ["BatchEncoding", "CharSpan", "Encoding", "MobileBertTokenizer", "MobileBertTokenizerFast", "TokenSpan"]
