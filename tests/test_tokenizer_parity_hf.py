"""Tokenizer parity with transformers: MobileBertTokenizer (Python) and MobileBertTokenizerFast (C++) must give
exactly what transformers' BertTokenizerFast (Rust) gives, on every line of tests/data/tokenizer_corpus.jsonl.

Both sides load the same directory (the bundled bert-base-uncased vocab.txt + tokenizer_config.json). Each check
runs over the corpus in batches, collects every disagreement and fails once, naming the number of mismatching
inputs and the first one (input repr, field, HF's value, ours). Where HF raises, ours must raise too.

transformers 5 dropped encode_plus / batch_encode_plus / build_inputs_with_special_tokens /
create_token_type_ids_from_sequences and the two-list get_special_tokens_mask from BertTokenizerFast; those are
compared with HF's __call__ or with its pure-Python BertTokenizerLegacy, which still has them.

MBL_TOKENIZER_PARITY_SELFTEST=1 makes "ours" HF's own tokenizer: a check of this harness (every test must pass
or skip), useful after editing the file.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

# HF's Rust side panics (e.g. stride too large) print a full backtrace each time when RUST_BACKTRACE=1: slow
# and noisy; the panic itself is what the tests compare.
os.environ["RUST_BACKTRACE"] = "0"

transformers = pytest.importorskip("transformers")

CORPUS = Path(__file__).resolve().parent / "data" / "tokenizer_corpus.jsonl"
BUNDLED_VOCAB = Path(__file__).resolve().parent.parent / "mobilebert_lite" / "data" / "vocab_uncased.txt"
CHUNK = 256
IMPLS = ("MobileBertTokenizer", "MobileBertTokenizerFast")
SELFTEST = os.environ.get("MBL_TOKENIZER_PARITY_SELFTEST") == "1"
REPR_LIMIT = 400


# --------------------------------------------------------------------------------------------------------------
# corpus and tokenizers


def load_corpus(path=CORPUS) -> list:
    # split("\n"), not splitlines(): the JSON lines are separated by "\n" only.
    return [json.loads(x) for x in Path(path).read_text("utf-8").split("\n") if x]


@pytest.fixture(scope="session")
def corpus():
    return load_corpus()


def sample(lines: list, n: int, offset: int = 0) -> list:
    """n lines spread evenly over the corpus (the corpus is shuffled, so this mixes every kind of text)."""
    step = max(1, len(lines) // n)
    return lines[offset::step][:n]


def write_tokenizer_dir(path: Path, do_lower_case: bool) -> str:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BUNDLED_VOCAB, path / "vocab.txt")
    config = {"do_lower_case": do_lower_case, "model_max_length": 512}
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    return str(path)


@pytest.fixture(scope="session")
def tokenizer_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokenizer_dirs")
    return {lower: write_tokenizer_dir(root / ("uncased" if lower else "cased"), lower) for lower in (True, False)}


_CACHE: dict = {}


def our_class(name: str):
    if SELFTEST:
        return transformers.BertTokenizerFast
    import mobilebert_lite

    cls = getattr(mobilebert_lite, name, None)
    if cls is None:
        pytest.fail(f"mobilebert_lite.{name} does not exist (yet)")
    return cls


def cached(key, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


@pytest.fixture(params=[True, False], ids=["uncased", "cased"])
def do_lower_case(request):
    return request.param


@pytest.fixture
def hf(do_lower_case, tokenizer_dirs):
    d = tokenizer_dirs[do_lower_case]
    return cached(("hf", d), lambda: transformers.BertTokenizerFast.from_pretrained(d))


@pytest.fixture
def legacy(do_lower_case, tokenizer_dirs):
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

    d = tokenizer_dirs[do_lower_case]
    return cached(("legacy", d), lambda: BertTokenizerLegacy.from_pretrained(d))


@pytest.fixture(params=IMPLS)
def ours(request, do_lower_case, tokenizer_dirs):
    d = tokenizer_dirs[do_lower_case]
    return cached((request.param, d), lambda: our_class(request.param).from_pretrained(d))


def require(tok, name: str):
    """The method `name` of tok; in self-test mode HF lacks a few of our methods, and those tests skip."""
    if SELFTEST and not hasattr(tok, name):
        pytest.skip(f"self-test: HF's tokenizer has no {name}")
    return getattr(tok, name)


# --------------------------------------------------------------------------------------------------------------
# mismatch bookkeeping


def short_repr(x) -> str:
    r = repr(x)
    return r if len(r) <= REPR_LIMIT else r[:REPR_LIMIT] + f"... ({len(r)} chars)"


class Mismatches:
    """Collects (input, field, expected, got); check() fails once with the count and the first mismatch."""

    def __init__(self, what: str):
        self.what = what
        self.items = []
        self.inputs = set()

    def add(self, where, field, expected, got):
        self.inputs.add(short_repr(where))
        self.items.append((where, field, expected, got))

    def check(self):
        if not self.items:
            return
        where, field, expected, got = self.items[0]
        fields = sorted({f for _, f, _, _ in self.items})
        if len(fields) > 8:
            fields = fields[:8] + [f"... {len(fields) - 8} more"]
        raise AssertionError(
            f"{self.what}: {len(self.inputs)} mismatching input(s), {len(self.items)} mismatching field(s) "
            f"(fields: {', '.join(fields)})\nfirst input: {short_repr(where)}\nfield: {field}\n"
            f"HF:   {short_repr(expected)}\nours: {short_repr(got)}"
        )


def attempt(fn, *args, **kwargs):
    """(result, None) or (None, exception). HF's Rust panics are BaseException (pyo3 PanicException), not
    Exception; they are "HF raises" too."""
    try:
        return fn(*args, **kwargs), None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - see docstring
        return None, exc


def describe_error(exc) -> str:
    return f"raises {type(exc).__name__}: {str(exc)[:200]}"


def compare_results(mm, where, field, exp, exp_err, got, got_err) -> bool:
    """Shared exception logic: True when both returned normally (the caller compares values)."""
    if exp_err is not None and got_err is not None:
        return False
    if exp_err is not None or got_err is not None:
        mm.add(where, field, describe_error(exp_err) if exp_err else exp, describe_error(got_err) if got_err else got)
        return False
    return True


def same_value(exp, got) -> bool:
    """Element-exact equality; offsets must be tuples like HF's, numpy arrays need the same dtype and shape."""
    if isinstance(exp, np.ndarray):
        return (isinstance(got, np.ndarray) and got.dtype == exp.dtype and got.shape == exp.shape
                and np.array_equal(got, exp))
    if isinstance(exp, list):
        return isinstance(got, (list, tuple)) and list(got) == exp
    return got == exp


# --------------------------------------------------------------------------------------------------------------
# BatchEncoding comparison


def span(x):
    return None if x is None else tuple(x)


def compare_probes(mm, where, exp, got, row, n_tokens, texts):
    """char_to_token / token_to_chars at a few positions of every sequence of the row."""
    for seq, text in enumerate(texts):
        if not isinstance(text, str) or not text:
            continue
        for c in sorted({0, len(text) // 2, len(text) - 1}):
            e, ee = attempt(exp.char_to_token, row, c, sequence_index=seq)
            g, ge = attempt(got.char_to_token, row, c, sequence_index=seq)
            if compare_results(mm, where, f"char_to_token({row}, {c}, sequence_index={seq})", e, ee, g, ge):
                if e != g:
                    mm.add(where, f"char_to_token({row}, {c}, sequence_index={seq})", e, g)
    for t in sorted({0, 1, n_tokens // 2, n_tokens - 1} - {-1}):
        e, ee = attempt(exp.token_to_chars, row, t)
        g, ge = attempt(got.token_to_chars, row, t)
        if compare_results(mm, where, f"token_to_chars({row}, {t})", e, ee, g, ge) and span(e) != span(g):
            mm.add(where, f"token_to_chars({row}, {t})", span(e), span(g))


def compare_rows(mm, exp, got, inputs, probes):
    """Every field, tokens(), word_ids() and sequence_ids() of every row of a batched call."""
    keys_e, keys_g = list(exp.keys()), list(got.keys())
    if keys_e != keys_g:
        mm.add(inputs[0], "keys", keys_e, keys_g)
        return
    n_rows = len(exp["input_ids"])
    if len(got["input_ids"]) != n_rows:
        mm.add(inputs[0], "number of rows", n_rows, len(got["input_ids"]))
        return
    mapping = exp.get("overflow_to_sample_mapping")
    for row in range(n_rows):
        where = inputs[int(mapping[row]) if mapping is not None else row]
        for key in keys_e:
            if key == "overflow_to_sample_mapping":
                continue
            if not same_value(exp[key][row], got[key][row]):
                mm.add(where, f"{key}[{row}]", exp[key][row], got[key][row])
        for name in ("tokens", "word_ids", "sequence_ids"):
            e, g = getattr(exp, name)(row), attempt(getattr(got, name), row)
            if g[1] is not None or list(g[0]) != e:
                mm.add(where, f"{name}({row})", e, describe_error(g[1]) if g[1] else g[0])
        if probes:
            compare_probes(mm, where, exp, got, row, len(exp["input_ids"][row]), where)
    if mapping is not None and not same_value(mapping, got["overflow_to_sample_mapping"]):
        mm.add(inputs[0], "overflow_to_sample_mapping", mapping, got["overflow_to_sample_mapping"])


def compare_call(mm, hf, ours, texts, pairs=None, probes=False, method="__call__", **kwargs):
    """hf(texts[, pairs], **kwargs) vs the same call of ours. A batch where either side raises is bisected down to
    single lines, so that an exception is pinned to its input and both sides raising on the same line counts as
    agreement (bisection, not line by line: HF's per-call Python overhead is large)."""
    args = (texts,) if pairs is None else (texts, pairs)
    exp, exp_err = attempt(hf, *args, **kwargs)
    got, got_err = attempt(require(ours, method) if method != "__call__" else ours, *args, **kwargs)
    inputs = [(t,) if pairs is None else (t, p) for t, p in zip(texts, pairs or texts)]
    if (exp_err is not None or got_err is not None) and len(texts) > 1:
        half = len(texts) // 2
        for part in (slice(0, half), slice(half, None)):
            compare_call(mm, hf, ours, texts[part], None if pairs is None else pairs[part], probes, method, **kwargs)
        return
    if compare_results(mm, inputs[0], f"call {kwargs}", exp, exp_err, got, got_err):
        compare_rows(mm, exp, got, inputs, probes)


def run_chunks(mm, hf, ours, texts, pairs=None, chunk=CHUNK, **kwargs):
    for i in range(0, len(texts), chunk):
        compare_call(mm, hf, ours, texts[i:i + chunk], None if pairs is None else pairs[i:i + chunk], **kwargs)


FULL = dict(return_offsets_mapping=True, return_special_tokens_mask=True, return_length=True)


# --------------------------------------------------------------------------------------------------------------
# whole corpus: single texts and pairs


def test_single_texts(hf, ours, corpus):
    mm = Mismatches("single texts, whole corpus")
    run_chunks(mm, hf, ours, corpus, probes=True, **FULL)
    mm.check()


def test_pairs(hf, ours, corpus):
    mm = Mismatches("pairs (line i, line i+1), whole corpus")
    run_chunks(mm, hf, ours, corpus[:-1], corpus[1:], probes=True, **FULL)
    mm.check()


def test_unbatched_calls(hf, ours, corpus):
    """A str (not a list) returns flat lists; word_ids() etc. take no index."""
    mm = Mismatches("unbatched calls")
    lines = sample(corpus, 400)
    for text, pair in zip(lines, lines[1:] + lines[:1]):
        for args in ((text,), (text, pair)):
            e, ee = attempt(hf, *args, **FULL)
            g, ge = attempt(ours, *args, **FULL)
            if not compare_results(mm, args, "call", e, ee, g, ge):
                continue
            for key in e.keys():
                if not same_value(e[key], g.get(key)):
                    mm.add(args, key, e[key], g.get(key))
            for name in ("tokens", "word_ids", "sequence_ids"):
                if list(getattr(g, name)()) != getattr(e, name)():
                    mm.add(args, f"{name}()", getattr(e, name)(), getattr(g, name)())
    mm.check()


def test_encode_plus_and_batch_encode_plus(hf, ours, corpus):
    """transformers 5 removed both; they are its __call__ on one input / a batch."""
    mm = Mismatches("encode_plus / batch_encode_plus")
    lines = sample(corpus, 300)
    encode_plus = require(ours, "encode_plus")
    for text, pair in zip(lines, lines[1:]):
        e, ee = attempt(hf, text, pair, **FULL)
        g, ge = attempt(encode_plus, text, pair, **FULL)
        if compare_results(mm, (text, pair), "encode_plus", e, ee, g, ge):
            for key in e.keys():
                if not same_value(e[key], g.get(key)):
                    mm.add((text, pair), key, e[key], g.get(key))
    require(ours, "batch_encode_plus")
    run_chunks(mm, hf, ours, lines, method="batch_encode_plus", chunk=64, **FULL)
    mm.check()


def test_tokenize_and_encode(hf, ours, corpus):
    mm = Mismatches("tokenize / encode")
    for i, text in enumerate(corpus):
        checks = [("tokenize", (text,), {}),
                  ("encode(add_special_tokens=False)", (text,), {"add_special_tokens": False})]
        if i % 4 == 0:  # every fourth line: the pair path of encode instead of the plain one
            checks = checks[:1] + [("encode(text, pair)", (text, corpus[i - 1]), {})]
        for name, args, kwargs in checks:
            fn = "tokenize" if name == "tokenize" else "encode"
            e, ee = attempt(getattr(hf, fn), *args, **kwargs)
            g, ge = attempt(getattr(ours, fn), *args, **kwargs)
            if compare_results(mm, args, name, e, ee, g, ge) and not same_value(e, g):
                mm.add(args, name, e, g)
    mm.check()


# --------------------------------------------------------------------------------------------------------------
# truncation, overflow windows, padding


TRUNCATIONS = ("longest_first", "only_first", "only_second", True)


def test_truncation_pairs(hf, ours, corpus):
    mm = Mismatches("truncation of pairs")
    lines = sample(corpus, 100, offset=1)
    for strategy in TRUNCATIONS:
        for max_length in (2, 3, 8, 16, 64):
            run_chunks(mm, hf, ours, lines[:-1], lines[1:], chunk=64, truncation=strategy, max_length=max_length,
                       return_offsets_mapping=True, return_special_tokens_mask=True)
    mm.check()


def test_truncation_single(hf, ours, corpus):
    """Single texts: only_second raises in HF; max_length below the special-token count is ignored by HF;
    truncation=True without max_length means model_max_length (512), which the long corpus lines exceed."""
    mm = Mismatches("truncation of single texts")
    lines = sample(corpus, 150, offset=2)
    long_lines = [t for t in corpus if len(t.split()) > 250]
    assert long_lines, "the corpus must contain long texts"
    configs = [dict(truncation=s, max_length=m) for s in TRUNCATIONS for m in (0, 1, 2, 3, 8, 64)]
    configs += [dict(truncation=False, max_length=8), dict(truncation="do_not_truncate", max_length=8),
                dict(max_length=8), dict(truncation=True)]
    for kwargs in configs:
        run_chunks(mm, hf, ours, lines, chunk=100, return_offsets_mapping=True, **kwargs)
    run_chunks(mm, hf, ours, long_lines, truncation=True, return_offsets_mapping=True)
    run_chunks(mm, hf, ours, long_lines[:-1], long_lines[1:], truncation=True, return_offsets_mapping=True)
    mm.check()


OVERFLOW_EXTRAS = dict(return_overflowing_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True)


def test_overflow_windows(hf, ours, corpus):
    mm = Mismatches("overflowing windows")
    lines = sample(corpus, 30, offset=3)
    long_lines = [t for t in corpus if len(t.split()) > 250][:2]
    for max_length in (16, 32):
        for stride in (0, 2, 7):
            # padding='max_length' on the stride-2 windows only: the padded rows cost as much again to compare
            padding = "max_length" if stride == 2 else False
            kw = dict(OVERFLOW_EXTRAS, max_length=max_length, stride=stride, padding=padding)
            run_chunks(mm, hf, ours, lines + long_lines, chunk=32, truncation=True, **kw)
            for strategy in ("only_first", "only_second", "longest_first"):
                run_chunks(mm, hf, ours, lines[:-1], lines[1:], chunk=32, truncation=strategy, **kw)
    mm.check()


def test_overflow_stride_too_large(hf, ours, corpus):
    """HF panics (pyo3 PanicException) when stride >= the room left for the text; ours must raise as well."""
    mm = Mismatches("overflow with stride >= max_length")
    lines = sample(corpus, 40, offset=4)
    for stride in (8, 13, 50):
        run_chunks(mm, hf, ours, lines, chunk=40, truncation=True, max_length=8, stride=stride,
                   return_overflowing_tokens=True)
    mm.check()


PADDINGS = [
    dict(padding=True),
    dict(padding="longest"),
    dict(padding="do_not_pad"),
    dict(padding=False, return_length=True),
    dict(padding="max_length", max_length=64, truncation=True),
    dict(padding="max_length", max_length=64, truncation=True, padding_side="left"),
    dict(padding=True, pad_to_multiple_of=8),
    dict(padding=True, pad_to_multiple_of=8, padding_side="left", return_length=True),
    dict(padding="max_length", truncation=True),  # max_length = model_max_length
    dict(padding=True, truncation=True, max_length=20, pad_to_multiple_of=8),
    dict(padding=True, return_attention_mask=False, return_token_type_ids=False),
    dict(padding=True, return_tensors="np"),
    dict(padding="max_length", max_length=32, truncation=True, return_tensors="np", padding_side="left"),
    dict(padding=True, pad_to_multiple_of=8, return_tensors="np", return_length=True,
         return_special_tokens_mask=True),
]


@pytest.mark.parametrize("kwargs", PADDINGS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_padding(hf, ours, corpus, kwargs):
    mm = Mismatches(f"padding {kwargs}")
    lines = sample(corpus, 256, offset=5)
    extra = {} if kwargs.get("return_tensors") else {"return_offsets_mapping": True}
    run_chunks(mm, hf, ours, lines, chunk=64, **kwargs, **extra)
    run_chunks(mm, hf, ours, lines[:-1], lines[1:], chunk=64, **kwargs, **extra)
    mm.check()


def test_return_tensors_np_arrays(hf, ours, corpus):
    """The arrays themselves: numpy.ndarray, same dtype, same shape, same values."""
    mm = Mismatches("return_tensors='np'")
    lines = sample(corpus, 128, offset=6)
    for i in range(0, len(lines), 32):
        batch = lines[i:i + 32]
        e = hf(batch, padding=True, return_tensors="np", return_special_tokens_mask=True)
        g = ours(batch, padding=True, return_tensors="np", return_special_tokens_mask=True)
        for key in e.keys():
            if not same_value(e[key], g.get(key)):
                mm.add(batch[0], key, (type(e[key]).__name__, e[key].dtype, e[key].shape),
                       (type(g.get(key)).__name__, getattr(g.get(key), "dtype", None), getattr(g.get(key), "shape", 0)))
    mm.check()


# --------------------------------------------------------------------------------------------------------------
# pre-split words


def test_is_split_into_words(hf, ours, corpus):
    mm = Mismatches("is_split_into_words=True")
    words = [t.split() for t in sample(corpus, 600, offset=7)]
    kw = dict(is_split_into_words=True, **FULL)
    run_chunks(mm, hf, ours, words, chunk=100, **kw)
    run_chunks(mm, hf, ours, words[:-1], words[1:], chunk=100, **kw)
    run_chunks(mm, hf, ours, words[:100], chunk=50, is_split_into_words=True, truncation=True, max_length=16,
               padding=True)
    mm.check()


# --------------------------------------------------------------------------------------------------------------
# decoding


DECODE_FLAGS = [dict(), dict(skip_special_tokens=True)] + [
    dict(skip_special_tokens=s, clean_up_tokenization_spaces=c) for s in (False, True) for c in (False, True)]


def decode_inputs(hf, corpus):
    """Ids of a third of the corpus with special tokens and padding, plus random id runs (## pieces first,
    [unused] slots, special tokens in the middle)."""
    lines = corpus[::3]
    ids = []
    for i in range(0, len(lines), CHUNK):
        ids += hf(lines[i:i + CHUNK], padding=True, truncation=True, max_length=64)["input_ids"]
    rng = np.random.default_rng(0)
    ids += [rng.integers(0, hf.vocab_size, size=int(n)).tolist() for n in rng.integers(0, 40, size=300)]
    ids += [[], [0], [100], [101, 102], [1012, 1012, 1005, 1055], [2023, 1005, 1055, 1037, 3231, 999, 1029]]
    return ids


def test_decode(hf, ours, corpus):
    mm = Mismatches("decode / batch_decode")
    ids = cached(("decode_inputs", id(hf)), lambda: decode_inputs(hf, corpus))
    for flags in DECODE_FLAGS:
        e = hf.batch_decode(ids, **flags)
        g, ge = attempt(ours.batch_decode, ids, **flags)
        if ge is not None or len(g) != len(e):
            mm.add(f"batch_decode(**{flags})", "call", f"{len(e)} strings", describe_error(ge) if ge else len(g))
            continue
        for row, exp, got in zip(ids, e, g):
            if exp != got:
                mm.add(row, f"batch_decode(**{flags})", exp, got)
        for row in ids[::40]:
            exp, (got, err) = hf.decode(row, **flags), attempt(ours.decode, row, **flags)
            if err is not None or exp != got:
                mm.add(row, f"decode(**{flags})", exp, describe_error(err) if err else got)
    for single in (101, 7592):  # an int decodes as a one-token list
        if hf.decode(single) != attempt(ours.decode, single)[0]:
            mm.add(single, "decode(int)", hf.decode(single), attempt(ours.decode, single))
    mm.check()


# --------------------------------------------------------------------------------------------------------------
# special-token helpers and vocabulary lookups


def test_special_token_helpers(hf, legacy, ours, corpus):
    mm = Mismatches("special-token helpers")
    texts = sample(corpus, 200, offset=8)
    rows = [hf.encode(t, add_special_tokens=False) for t in texts]
    mask = require(ours, "get_special_tokens_mask")
    build = require(ours, "build_inputs_with_special_tokens")
    types = require(ours, "create_token_type_ids_from_sequences")
    for i in range(len(texts) - 1):
        a, b = rows[i], rows[i + 1]
        checks = [
            # the helpers agree with what __call__ itself builds
            ("build_inputs_with_special_tokens(a) vs encode(text)", hf.encode(texts[i]), build, (a,), {}),
        ]
        if texts[i + 1]:  # HF's __call__ treats text_pair="" as no pair at all (one [SEP])
            checks.append(("build_inputs_with_special_tokens(a, b) vs encode(text, pair)",
                           hf.encode(texts[i], texts[i + 1]), build, (a, b), {}))
        checks += [
            ("get_special_tokens_mask(already_has_special_tokens=True)",
             hf.get_special_tokens_mask(hf.encode(texts[i], texts[i + 1]), already_has_special_tokens=True),
             mask, (hf.encode(texts[i], texts[i + 1]),), {"already_has_special_tokens": True}),
            # and with HF's pure-Python tokenizer, which still has them
            ("get_special_tokens_mask(a)", legacy.get_special_tokens_mask(a), mask, (a,), {}),
            ("get_special_tokens_mask(a, b)", legacy.get_special_tokens_mask(a, b), mask, (a, b), {}),
            ("create_token_type_ids_from_sequences(a)", legacy.create_token_type_ids_from_sequences(a), types,
             (a,), {}),
            ("create_token_type_ids_from_sequences(a, b)", legacy.create_token_type_ids_from_sequences(a, b), types,
             (a, b), {}),
        ]
        for name, expected, mine, args, kwargs in checks:
            got, err = attempt(mine, *args, **kwargs)
            if err is not None or not same_value(expected, got):
                mm.add((texts[i], texts[i + 1]), name, expected, describe_error(err) if err else got)
    mm.check()


def test_vocabulary_lookups(hf, ours):
    mm = Mismatches("convert_ids_to_tokens / convert_tokens_to_ids")
    all_ids = list(range(hf.vocab_size))
    if ours.convert_ids_to_tokens(all_ids) != hf.convert_ids_to_tokens(all_ids):
        mm.add("all ids", "convert_ids_to_tokens", "(HF list)", "differs")
    tokens = hf.convert_ids_to_tokens(all_ids)
    if ours.convert_tokens_to_ids(tokens) != hf.convert_tokens_to_ids(tokens):
        mm.add("all tokens", "convert_tokens_to_ids", "(HF list)", "differs")
    cases = [
        ("convert_ids_to_tokens", 0), ("convert_ids_to_tokens", 103), ("convert_ids_to_tokens", [101, 7592, 102]),
        ("convert_ids_to_tokens", []), ("convert_tokens_to_ids", "the"), ("convert_tokens_to_ids", "zzqqxx"),
        ("convert_tokens_to_ids", ["[CLS]", "hello", "definitely-not-a-token", "##ing", "[MASK]"]),
        ("convert_tokens_to_ids", []), ("convert_tokens_to_ids", "Hello"), ("convert_tokens_to_ids", "[mask]"),
        ("convert_tokens_to_ids", ""),
    ]
    for name, arg in cases:
        e, ee = attempt(getattr(hf, name), arg)
        g, ge = attempt(getattr(ours, name), arg)
        if compare_results(mm, arg, name, e, ee, g, ge) and e != g:
            mm.add(arg, name, e, g)
    for skip in (False, True):
        ids = [101, 7592, 102, 0]
        e = hf.convert_ids_to_tokens(ids, skip_special_tokens=skip)
        g = ours.convert_ids_to_tokens(ids, skip_special_tokens=skip)
        if e != g:
            mm.add(ids, f"convert_ids_to_tokens(skip_special_tokens={skip})", e, g)
    mm.check()


def test_attributes(hf, ours):
    mm = Mismatches("attributes")
    names = ["vocab_size", "model_max_length", "padding_side", "truncation_side", "do_lower_case",
             "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
             "unk_token_id", "sep_token_id", "pad_token_id", "cls_token_id", "mask_token_id",
             "pad_token_type_id", "model_input_names", "all_special_tokens", "all_special_ids"]
    for name in names:
        e, ee = attempt(getattr, hf, name)
        g, ge = attempt(getattr, ours, name)
        if compare_results(mm, name, name, e, ee, g, ge) and e != g:
            mm.add(name, name, e, g)
    if len(ours) != len(hf):
        mm.add("len()", "len", len(hf), len(ours))
    if ours.get_vocab() != hf.get_vocab():
        mm.add("get_vocab()", "get_vocab", "(HF dict)", "differs")
    mm.check()


# --------------------------------------------------------------------------------------------------------------
# construction and saving


def test_save_pretrained_roundtrip(hf, ours, corpus, tmp_path, do_lower_case, request):
    """ours.save_pretrained(d): ours and HF both reload d and still agree with the original HF tokenizer."""
    saved = tmp_path / "saved"
    files = ours.save_pretrained(str(saved))
    assert (saved / "vocab.txt").is_file() or (saved / "tokenizer.json").is_file(), f"save_pretrained wrote {files}"
    reloaded_ours = type(ours).from_pretrained(str(saved))
    reloaded_hf = transformers.BertTokenizerFast.from_pretrained(str(saved))
    lines = sample(corpus, 400, offset=9)
    for name, tok in (("our reload", reloaded_ours), ("HF reload of our save", reloaded_hf)):
        mm = Mismatches(f"{name} (do_lower_case={do_lower_case})")
        run_chunks(mm, hf, tok, lines, chunk=100, return_offsets_mapping=True)
        run_chunks(mm, hf, tok, lines[:-1], lines[1:], chunk=100, truncation="longest_first", max_length=24)
        mm.check()


def test_save_vocabulary(ours, tmp_path):
    paths = ours.save_vocabulary(str(tmp_path))
    assert isinstance(paths, tuple) and len(paths) >= 1, f"save_vocabulary returned {paths!r}"
    written = Path(paths[0]).read_text("utf-8").split("\n")
    assert written[:30522] == BUNDLED_VOCAB.read_text("utf-8").split("\n")[:30522]


def test_direct_construction(hf, ours, corpus, tokenizer_dirs, do_lower_case):
    """MobileBertTokenizer(vocab_file, do_lower_case=...) and the default (bundled uncased vocab)."""
    if SELFTEST:
        pytest.skip("self-test: HF has no bundled vocabulary")
    cls = type(ours)
    vocab = str(Path(tokenizer_dirs[do_lower_case]) / "vocab.txt")
    lines = sample(corpus, 300, offset=10)
    mm = Mismatches("constructed from vocab_file")
    run_chunks(mm, hf, cls(vocab_file=vocab, do_lower_case=do_lower_case), lines, return_offsets_mapping=True)
    if do_lower_case:
        run_chunks(mm, hf, cls(), lines, return_offsets_mapping=True)
    mm.check()


def test_constructor_options(tokenizer_dirs, corpus):
    """strip_accents / tokenize_chinese_chars overrides passed to from_pretrained, compared with HF given the same."""
    lines = sample(corpus, 300, offset=11)
    d = tokenizer_dirs[True]
    options = [dict(strip_accents=False), dict(strip_accents=True, do_lower_case=False),
               dict(tokenize_chinese_chars=False), dict(do_lower_case=False, tokenize_chinese_chars=False)]
    for name in IMPLS:
        for opts in options:
            hf_tok = transformers.BertTokenizerFast.from_pretrained(d, **opts)
            mm = Mismatches(f"{name}.from_pretrained(dir, **{opts})")
            run_chunks(mm, hf_tok, our_class(name).from_pretrained(d, **opts), lines, return_offsets_mapping=True)
            mm.check()
