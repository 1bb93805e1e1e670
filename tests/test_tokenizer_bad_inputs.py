"""Malformed tokenizer inputs: MobileBertTokenizer and MobileBertTokenizerFast reject them with a clear exception
(TypeError / ValueError / FileNotFoundError or a subclass) whose message names the problem. Where transformers'
BertTokenizerFast raises an ordinary exception, ours raises the same class; where HF panics in Rust
(pyo3 PanicException, not even an Exception) or silently carries on, ours raises a ValueError instead."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

import mobilebert_lite as mbl

os.environ["RUST_BACKTRACE"] = "0"  # HF panics below would print a full Rust backtrace each

BUNDLED_VOCAB = Path(mbl.__file__).resolve().parent / "data" / "vocab_uncased.txt"
IMPLS = ("MobileBertTokenizer", "MobileBertTokenizerFast")


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    shutil.copyfile(BUNDLED_VOCAB, d / "vocab.txt")
    (d / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "model_max_length": 512}))
    return str(d)


@pytest.fixture(scope="module", params=IMPLS)
def tok(request, tokenizer_dir):
    return getattr(mbl, request.param).from_pretrained(tokenizer_dir)


@pytest.fixture(scope="module")
def hf(tokenizer_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.BertTokenizerFast.from_pretrained(tokenizer_dir)


def expect(exc_types, fragments, fn, *args, **kwargs):
    """fn raises one of exc_types; its message contains at least one of the fragments (case-insensitive)."""
    with pytest.raises(exc_types) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert any(re.search(re.escape(f), msg, re.I) for f in fragments), (
        f"{type(info.value).__name__} message does not name the problem (expected one of {fragments}): {msg!r}")
    return info.value


def hf_exception(hf, fn_name, *args, **kwargs):
    """The exception HF raises for the same call, or None (HF accepted it)."""
    try:
        getattr(hf, fn_name)(*args, **kwargs) if fn_name != "__call__" else hf(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - Rust panics are BaseException
        return exc
    return None


# --------------------------------------------------------------------------------------------------------------
# text arguments: same exception class as HF

TEXT_CASES = [
    # (id, args, kwargs, exception class HF raises too, message fragments)
    ("None", (None,), {}, ValueError, ["text"]),
    ("bytes", (b"hello",), {}, ValueError, ["str", "bytes"]),
    ("int", (5,), {}, ValueError, ["str", "int"]),
    ("float", (1.5,), {}, ValueError, ["str", "float"]),
    ("pair int", ("hello", 5), {}, ValueError, ["str", "int"]),
    ("pair bytes", ("hello", b"x"), {}, ValueError, ["str", "bytes"]),
    ("list with int", (["hello", 5],), {}, TypeError, ["str", "int"]),
    ("list with None", (["hello", None],), {}, TypeError, ["str", "None"]),
    ("list with bytes", (["hello", b"x"],), {}, TypeError, ["str", "bytes"]),
    ("words with int", ([["hello", 5]],), {"is_split_into_words": True}, TypeError, ["str", "int"]),
    ("words given a str", ("hello world",), {"is_split_into_words": True}, TypeError, ["list", "str", "word"]),
    ("pair batch length", (["a", "b"], ["c"]), {}, ValueError, ["length", "match"]),
]


@pytest.mark.parametrize("args,kwargs,exc_type,fragments", [c[1:] for c in TEXT_CASES],
                         ids=[c[0] for c in TEXT_CASES])
def test_bad_text(tok, hf, args, kwargs, exc_type, fragments):
    hf_exc = hf_exception(hf, "__call__", *args, **kwargs)
    assert isinstance(hf_exc, exc_type), f"test premise: HF raises {exc_type.__name__}, got {hf_exc!r}"
    expect(exc_type, fragments, tok, *args, **kwargs)


@pytest.mark.parametrize("method", ["tokenize", "encode"])
@pytest.mark.parametrize("bad", [None, b"x", 5], ids=["None", "bytes", "int"])
def test_bad_text_to_tokenize_and_encode(tok, method, bad):
    expect((TypeError, ValueError), ["str", "text", type(bad).__name__], getattr(tok, method), bad)


# --------------------------------------------------------------------------------------------------------------
# options

OPTION_CASES = [
    ("padding='foo'", {"padding": "foo"}, ValueError, ["padding", "foo"]),
    ("padding=3", {"padding": 3}, ValueError, ["padding", "3"]),
    ("truncation='foo'", {"truncation": "foo"}, ValueError, ["truncation", "foo"]),
    ("padding_side='middle'", {"padding": True, "padding_side": "middle"}, ValueError, ["padding_side", "middle"]),
    ("return_tensors='xx'", {"return_tensors": "xx"}, ValueError, ["return_tensors", "xx", "tensor"]),
    ("unknown keyword", {"no_such_option": 1}, TypeError, ["no_such_option"]),
]


@pytest.mark.parametrize("kwargs,exc_type,fragments", [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_bad_option(tok, hf, kwargs, exc_type, fragments):
    if "no_such_option" not in kwargs:  # HF accepts (and ignores with a warning) unknown keywords
        hf_exc = hf_exception(hf, "__call__", "hello world", **kwargs)
        assert isinstance(hf_exc, exc_type), f"test premise: HF raises {exc_type.__name__}, got {hf_exc!r}"
    expect(exc_type, fragments, tok, "hello world", **kwargs)


# HF raises OverflowError ("can't convert negative int to unsigned") from its Rust binding; a ValueError naming
# the argument is what we promise, OverflowError is accepted for HF compatibility.
NEGATIVE = (ValueError, OverflowError)


@pytest.mark.parametrize("kwargs,fragment", [
    ({"truncation": True, "max_length": -1}, "max_length"),
    ({"padding": "max_length", "max_length": -1}, "max_length"),
    ({"truncation": True, "max_length": 8, "stride": -1, "return_overflowing_tokens": True}, "stride"),
], ids=["truncation", "padding", "stride"])
def test_negative_lengths(tok, kwargs, fragment):
    expect(NEGATIVE, [fragment], tok, "hello world, this is a test", **kwargs)


@pytest.mark.parametrize("pair", [False, True], ids=["single", "pair"])
@pytest.mark.parametrize("stride", [6, 8, 20])
def test_stride_not_below_max_length(tok, hf, stride, pair):
    """max_length=8 leaves 6 tokens (5 for a pair) for the text; a stride that large cannot advance. HF panics."""
    text = " ".join(["word"] * 40)
    args = (text, "a b") if pair else (text,)
    kwargs = dict(truncation="only_first", max_length=8, stride=stride, return_overflowing_tokens=True)
    assert hf_exception(hf, "__call__", *args, **kwargs) is not None, "test premise: HF refuses this stride"
    expect(ValueError, ["stride"], tok, *args, **kwargs)


def test_only_second_without_pair(tok, hf):
    kwargs = dict(truncation="only_second", max_length=4)
    assert hf_exception(hf, "__call__", "a b c d e f", **kwargs) is not None
    expect(Exception, ["second", "pair"], tok, "a b c d e f", **kwargs)


def test_only_second_too_short(tok, hf):
    """The second sequence cannot shrink enough: HF raises a plain Exception ("Truncation error: ...")."""
    args, kwargs = ("a b c d e f", "x"), dict(truncation="only_second", max_length=4)
    assert hf_exception(hf, "__call__", *args, **kwargs) is not None
    expect(Exception, ["truncat", "too short", "max_length"], tok, *args, **kwargs)


# --------------------------------------------------------------------------------------------------------------
# decoding and lookups

@pytest.mark.parametrize("ids,exc_type,fragment", [
    ("abc", TypeError, "str"),
    ([1.5], TypeError, "float"),
    ([-1], (ValueError, OverflowError), "-1"),
    ([None], TypeError, "None"),
], ids=["str", "float", "negative", "None"])
def test_bad_decode(tok, ids, exc_type, fragment):
    expect(exc_type, [fragment], tok.decode, ids)


def test_bad_convert_ids_to_tokens(tok):
    expect((ValueError, OverflowError, TypeError), ["-1"], tok.convert_ids_to_tokens, [-1])


# --------------------------------------------------------------------------------------------------------------
# files

@pytest.mark.parametrize("name", IMPLS)
def test_missing_vocab_file(tmp_path, name):
    """HF silently builds an empty tokenizer here; a missing file is an error for us."""
    missing = tmp_path / "nope" / "vocab.txt"
    exc = expect(FileNotFoundError, ["vocab", "not found", "no such"], getattr(mbl, name), vocab_file=str(missing))
    assert "nope" in str(exc), f"the message should name the path: {exc}"


@pytest.mark.parametrize("name", IMPLS)
def test_missing_directory(tmp_path, name):
    expect((FileNotFoundError, OSError), [str(tmp_path / "absent"), "not found"], getattr(mbl, name).from_pretrained,
           str(tmp_path / "absent"))


@pytest.mark.parametrize("name", IMPLS)
def test_directory_without_vocabulary(tmp_path, name):
    (tmp_path / "tokenizer_config.json").write_text("{}")
    expect(FileNotFoundError, ["vocab.txt", "tokenizer.json"], getattr(mbl, name).from_pretrained, str(tmp_path))


@pytest.mark.parametrize("name", IMPLS)
def test_vocabulary_without_unk(tmp_path, name):
    """HF fails only at the first encode ("Missing [UNK] token"); failing at construction is clearer."""
    (tmp_path / "vocab.txt").write_text("[PAD]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\n", encoding="utf-8")
    cls = getattr(mbl, name)

    def build_and_use():
        cls(vocab_file=str(tmp_path / "vocab.txt"))("hello zzz")

    expect(ValueError, ["[UNK]", "unknown token"], build_and_use)
    expect(ValueError, ["[UNK]", "unknown token"], lambda: cls.from_pretrained(str(tmp_path))("hello zzz"))


@pytest.mark.parametrize("name", IMPLS)
def test_empty_vocabulary(tmp_path, name):
    (tmp_path / "vocab.txt").write_text("", encoding="utf-8")
    expect(ValueError, ["empty", "vocab"], getattr(mbl, name), vocab_file=str(tmp_path / "vocab.txt"))


@pytest.mark.parametrize("name", IMPLS)
def test_bad_tokenizer_config(tmp_path, name):
    shutil.copyfile(BUNDLED_VOCAB, tmp_path / "vocab.txt")
    (tmp_path / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    expect(ValueError, ["tokenizer_config.json", "json"], getattr(mbl, name).from_pretrained, str(tmp_path))
