"""Reading and writing tokenizer files: vocab.txt, tokenizer.json, tokenizer_config.json, special_tokens_map.json."""

from __future__ import annotations

import json
import os
import pathlib

from ..io_utils import atomic_write_bytes

DEFAULT_VOCAB = pathlib.Path(__file__).resolve().parents[1] / "data" / "vocab_uncased.txt"
VOCAB_FILE, TOKENIZER_FILE = "vocab.txt", "tokenizer.json"
CONFIG_FILE, SPECIAL_TOKENS_FILE = "tokenizer_config.json", "special_tokens_map.json"
SPECIAL_TOKEN_NAMES = ("unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def read_vocab(path: str | os.PathLike) -> dict[str, int]:
    """vocab.txt (one token per line, line number = id) -> token -> id. Later duplicates keep HF's behaviour (the last
    line wins)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise ValueError(f"vocabulary file {path} is not UTF-8 text: {e}") from None
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ValueError(f"vocabulary file {path} is empty")
    return {token.rstrip("\r") if token.endswith("\r") else token: i for i, token in enumerate(lines)}


def _read_json(path: pathlib.Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def _token_content(value):
    """Special tokens may be saved as plain strings or as AddedToken dicts."""
    if isinstance(value, dict):
        return value.get("content")
    return value


def read_tokenizer_json(path: pathlib.Path) -> dict:
    """The parts of an HF fast-tokenizer JSON a BERT WordPiece tokenizer uses -> constructor keyword arguments."""
    data = _read_json(path)
    model = data.get("model") or {}
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise ValueError(f"{path}: expected a WordPiece model with a vocab, found {model.get('type')!r}")
    out: dict = {"vocab": {str(k): int(v) for k, v in model["vocab"].items()}}
    if "unk_token" in model:
        out["unk_token"] = model["unk_token"]
    if "continuing_subword_prefix" in model:
        out["continuing_subword_prefix"] = model["continuing_subword_prefix"]
    if "max_input_chars_per_word" in model:
        out["max_input_chars_per_word"] = int(model["max_input_chars_per_word"])
    norm = data.get("normalizer") or {}
    if norm.get("type") == "BertNormalizer":
        out["clean_text"] = bool(norm.get("clean_text", True))
        out["tokenize_chinese_chars"] = bool(norm.get("handle_chinese_chars", True))
        out["strip_accents"] = norm.get("strip_accents")
        out["do_lower_case"] = bool(norm.get("lowercase", True))
    elif norm:
        raise ValueError(f"{path}: normalizer {norm.get('type')!r} is not supported (BertNormalizer only)")
    added = data.get("added_tokens") or []
    out["added_tokens"] = {a["content"]: int(a["id"]) for a in added if isinstance(a, dict) and "content" in a}
    return out


def read_pretrained(directory: str | os.PathLike) -> dict:
    """Constructor keyword arguments from a saved tokenizer directory (tokenizer.json wins over vocab.txt for the
    vocabulary and normaliser flags, as in transformers)."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"tokenizer directory not found: {directory} (give a local directory holding vocab.txt or tokenizer.json)")
    kwargs: dict = {}
    for name in (SPECIAL_TOKENS_FILE, CONFIG_FILE):
        if (directory / name).is_file():
            for key, value in _read_json(directory / name).items():
                kwargs[key] = _token_content(value) if key in SPECIAL_TOKEN_NAMES else value
    if (directory / TOKENIZER_FILE).is_file():
        kwargs.update(read_tokenizer_json(directory / TOKENIZER_FILE))
    elif (directory / VOCAB_FILE).is_file():
        kwargs["vocab_file"] = str(directory / VOCAB_FILE)
    else:
        raise FileNotFoundError(f"{directory} holds neither {VOCAB_FILE} nor {TOKENIZER_FILE}")
    return kwargs


def tokenizer_json(tok) -> dict:
    """An HF fast-tokenizer JSON equivalent to `tok` (so transformers loads what we save)."""
    added = [{"id": tok.vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t in tok.all_special_tokens if t in tok.vocab]
    added.sort(key=lambda a: a["id"])
    template = {
        "single": [{"SpecialToken": {"id": tok.cls_token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": tok.sep_token, "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": tok.cls_token, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"SpecialToken": {"id": tok.sep_token, "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": tok.sep_token, "type_id": 1}}],
        "special_tokens": {t: {"id": t, "ids": [tok.vocab[t]], "tokens": [t]} for t in (tok.cls_token, tok.sep_token)},
    }
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": tok.clean_text,
                       "handle_chinese_chars": tok.tokenize_chinese_chars, "strip_accents": tok.strip_accents,
                       "lowercase": tok.do_lower_case},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing", **template},
        "decoder": {"type": "WordPiece", "prefix": tok.continuing_subword_prefix, "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": tok.unk_token,
                  "continuing_subword_prefix": tok.continuing_subword_prefix,
                  "max_input_chars_per_word": tok.max_input_chars_per_word, "vocab": tok.vocab},
    }


def write_pretrained(tok, directory: str | os.PathLike, filename_prefix: str | None = None) -> tuple[str, ...]:
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "tokenizer_class": "BertTokenizer", "do_lower_case": tok.do_lower_case,
        "tokenize_chinese_chars": tok.tokenize_chinese_chars, "strip_accents": tok.strip_accents,
        "model_max_length": tok.model_max_length, "padding_side": tok.padding_side,
        "truncation_side": tok.truncation_side, "clean_up_tokenization_spaces": tok.clean_up_tokenization_spaces,
        **{name: getattr(tok, name) for name in SPECIAL_TOKEN_NAMES},
    }
    special = {name: getattr(tok, name) for name in SPECIAL_TOKEN_NAMES}
    files = []
    for name, data in ((CONFIG_FILE, config), (SPECIAL_TOKENS_FILE, special), (TOKENIZER_FILE, tokenizer_json(tok))):
        path = directory / name
        atomic_write_bytes(path, json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8"))
        files.append(str(path))
    files.extend(save_vocab(tok, directory, filename_prefix))
    return tuple(files)


def save_vocab(tok, directory: str | os.PathLike, filename_prefix: str | None = None) -> tuple[str]:
    directory = pathlib.Path(directory)
    path = directory / ((filename_prefix + "-" if filename_prefix else "") + VOCAB_FILE)
    if directory.exists() and not directory.is_dir():
        path = directory
    ordered = sorted(tok.vocab.items(), key=lambda kv: kv[1])
    atomic_write_bytes(path, "".join(token + "\n" for token, _ in ordered).encode("utf-8"))
    return (str(path),)
