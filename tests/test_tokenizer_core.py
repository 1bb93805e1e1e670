"""The native WordPiece core (`_C.WordPieceTokenizer`, csrc/tokenizer/) against its oracle, the pure-Python
`normalization.WordPieceCore`, and against HF `tokenizers` directly.

Both cores return (ids, starts, ends, words, splits) for a batch; they must be identical, item for item. Skipped
when the native module is not built, unless MBL_REQUIRE_NATIVE=1 (then a missing module fails the tests).
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import threading

import pytest

from mobilebert_lite.tokenization import normalization, unicode_tables
from mobilebert_lite.tokenization.files import DEFAULT_VOCAB, read_vocab
from mobilebert_lite.tokenization.normalization import PUNCTUATION, WHITESPACE, WordPieceCore, build_char_map


def _native_module():
    try:
        from mobilebert_lite import _C
    except ImportError as e:
        if os.environ.get("MBL_REQUIRE_NATIVE"):
            raise
        pytest.skip(f"mobilebert_lite._C is not importable ({e})", allow_module_level=True)
    if not hasattr(_C, "WordPieceTokenizer"):
        if os.environ.get("MBL_REQUIRE_NATIVE"):
            raise AssertionError("mobilebert_lite._C has no WordPieceTokenizer (stale build?)")
        pytest.skip("mobilebert_lite._C has no WordPieceTokenizer (stale build?)", allow_module_level=True)
    return _C


_C = _native_module()

CORPUS = pathlib.Path(__file__).resolve().parent / "data" / "tokenizer_corpus.jsonl"
FLAGS = [(c, h, s, lo) for c in (False, True) for h in (False, True) for s in (False, True) for lo in (False, True)]


def flags_id(flags):
    return "clean{}-cjk{}-strip{}-lower{}".format(*map(int, flags))

WS, PUNCT = list(unicode_tables.SPLIT_WHITESPACE), list(unicode_tables.PUNCTUATION)


@pytest.fixture(scope="module")
def vocab():
    return read_vocab(DEFAULT_VOCAB)


def native(vocab, char_map, unk="[UNK]", max_chars=100, prefix="##", ws=WS, punct=PUNCT):
    return _C.WordPieceTokenizer(vocab, vocab[unk], char_map, ws, punct, max_chars, prefix)


def python(vocab, char_map, unk="[UNK]", max_chars=100, prefix="##"):
    return WordPieceCore(vocab, vocab[unk], char_map, max_chars, prefix)


def assert_same(texts, nat, ref):
    got, want = nat.encode_batch(texts), ref.encode_batch(texts)
    assert isinstance(got, tuple) and len(got) == 5 and all(type(x) is list for x in got)
    names = ("ids", "starts", "ends", "words", "splits")
    assert got[4] == want[4], "splits differ"
    if tuple(got) == tuple(want):
        return
    for i, text in enumerate(texts):  # report the first text that differs
        a, b = want[4][i], want[4][i + 1]
        for name, g, w in zip(names, got, want):
            assert g[a:b] == w[a:b], f"{name} differ for texts[{i}] = {text!r}"


# --- Text generators -------------------------------------------------------------------------------------------

# Characters the normaliser or pre-tokeniser treats specially, to mix into random text.
SPECIAL_CHARS = (
    "\x00\x01\t\n\r\x0b\x0c\x1f \x7f\x85\xa0\xad\u180e\u200b\u200d\u2028\u3000\ufeff\ufffd\U000e0001"
    "ÀÉîõüÅçñßẞİıΣσςǅǄﬁ\u0301\u0308\u0653Ⅻ①㎏ＡＢｃ一二我的\u3400\U00020000\U0002f800\uf900"
    ".,;:!?'\"()[]{}<>@#$%^&*-_=+/\\|~`¡¿«»—–…‘’“”„•€£¥©®°±×÷"
)


def random_code_point_text(rng, length):
    out = []
    for _ in range(length):
        r = rng.random()
        if r < 0.3:
            c = rng.randrange(0x110000)
        elif r < 0.5:
            c = rng.randrange(0x10000)
        elif r < 0.6:
            c = rng.randrange(0x100)
        elif r < 0.8:
            c = ord(rng.choice(SPECIAL_CHARS))
        else:
            c = rng.randrange(0x20, 0x7F)
        if 0xD800 <= c <= 0xDFFF:  # surrogates: not text (tested on their own below)
            c = 0x41
        out.append(chr(c))
    return "".join(out)


WORDS = ("the", "a", "tokenization", "unbelievable", "MobileBERT", "running", "don't", "x", "qzxv", "über",
         "naïve", "3.14159", "42", "e-mail", "co-operate", "HTTP", "URL", "antidisestablishmentarianism", "##", "#")


def random_ascii_text(rng):
    parts = []
    for _ in range(rng.randrange(0, 25)):
        r = rng.random()
        if r < 0.5:
            parts.append(rng.choice(WORDS))
        elif r < 0.7:
            parts.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789")
                                 for _ in range(rng.randrange(1, 15))))
        elif r < 0.85:
            parts.append(rng.choice(".,;:!?'\"()[]{}<>@#$%^&*-_=+/\\|~`"))
        else:
            parts.append(rng.choice(["", " ", "  ", "\t", "\n", "\r\n", "\x00", "\x7f"]))
        parts.append(rng.choice(["", " ", " ", " ", "\n"]))
    return "".join(parts)


def corpus_texts(limit=None):
    texts = []
    if CORPUS.is_file():
        with open(CORPUS, encoding="utf-8") as f:
            texts = [json.loads(line) for line in f if line.strip()]
        texts = [t for t in texts if isinstance(t, str)]
    rng = random.Random(7)
    texts += [random_ascii_text(rng) for _ in range(300)]
    return texts if limit is None else texts[:limit]


# --- Parity with the Python core -------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", FLAGS, ids=flags_id)
def test_matches_python_core_on_corpus(vocab, flags):
    char_map = build_char_map(*flags)
    rng = random.Random(hash(flags) & 0xFFFF)
    texts = corpus_texts(1500) + [random_code_point_text(rng, rng.randrange(0, 60)) for _ in range(300)]
    assert_same(texts, native(vocab, char_map), python(vocab, char_map))


@pytest.mark.parametrize("flags", [(True, True, True, True), (False, False, False, False), (True, True, False, True)])
def test_random_code_points(vocab, flags):
    char_map = build_char_map(*flags)
    rng = random.Random(1234)
    texts = [random_code_point_text(rng, rng.randrange(0, 200)) for _ in range(1000)]
    assert_same(texts, native(vocab, char_map), python(vocab, char_map))


def test_random_ascii_mixes(vocab):
    char_map = build_char_map(True, True, True, True)
    rng = random.Random(99)
    texts = [random_ascii_text(rng) for _ in range(2000)]
    assert_same(texts, native(vocab, char_map), python(vocab, char_map))


@pytest.mark.parametrize("max_chars", [0, 1, 2, 5, 100])
def test_word_length_limit(vocab, max_chars):
    char_map = build_char_map(True, True, True, True)
    texts = []
    for n in sorted({0, 1, 2, max_chars - 1, max_chars, max_chars + 1, 99, 100, 101, 150}):
        if n < 0:
            continue
        texts += ["a" * n, "ab" * (n // 2), "x" + "y" * max(n - 1, 0) + " z", "A" * n + ".", "é" * n]
        # removed chars do not count; a char that normalises to two does (\u0130 lowercases to "i" + U+0307)
        texts += ["a" * n + "\x00\u200b", "\x00" + "b" * n, "\u0130" * (n // 2), "\u0130" * (n // 2) + "c"]
    texts += ["a" * 100 + " " + "b" * 101 + " " + "c" * 100]
    for flags in [(True, True, True, True), (True, True, False, True), (False, False, False, False)]:
        char_map = build_char_map(*flags)
        assert_same(texts, native(vocab, char_map, max_chars=max_chars), python(vocab, char_map, max_chars=max_chars))


def test_empty_and_removed_only(vocab):
    texts = ["", "", " ", "\t\n ", "\x00", "\x00\x01\x7f\u200b", "\ufeff" * 10, "\U000e0001", "\x00 \x00", ""]
    for flags in FLAGS:
        char_map = build_char_map(*flags)
        assert_same(texts, native(vocab, char_map), python(vocab, char_map))
    assert native(vocab, build_char_map(True, True, True, True)).encode_batch([]) == ([], [], [], [], [0])
    out = native(vocab, build_char_map(True, True, True, True)).encode_batch(["", "\x00\u200b", " "])
    assert out == ([], [], [], [], [0, 0, 0, 0])


def test_lone_surrogates_and_string_kinds(vocab):
    # CPython stores str as 1-, 2- or 4-byte units; the native core reads each layout directly.
    char_map = build_char_map(True, True, True, True)
    texts = ["abc déf", "abc \u0100ĉ", "abc \U0001f600 x", "\ud800", "a\udc00b \ud83d", "x\udfff."]
    assert_same(texts, native(vocab, char_map), python(vocab, char_map))


def test_tuple_and_str_subclass(vocab):
    class S(str):
        pass

    char_map = build_char_map(True, True, True, True)
    nat, ref = native(vocab, char_map), python(vocab, char_map)
    texts = ["Hello, world!", S("MobileBERT runs"), "tokenization"]
    assert nat.encode_batch(tuple(texts)) == tuple(ref.encode_batch([str(t) for t in texts]))


# --- Custom vocabularies: longest match, unk, prefixes ---------------------------------------------------------


SMALL_VOCAB = {"[UNK]": 0, "a": 1, "##b": 2, "ab": 3, "##bc": 4, "##c": 5, "abc": 6, "##cd": 7, "d": 8,
               "##d": 9, "x": 10, "##": 11, "###": 12, "#": 13, "##a": 14, "!": 15, "b#": 16}


@pytest.mark.parametrize("prefix", ["##", "", "#", "@@", "continuation-"])
def test_small_vocab_longest_match(prefix):
    vocab = {(prefix + k[2:] if k.startswith("##") and len(k) > 2 else k): v for k, v in SMALL_VOCAB.items()}
    words = ["a", "ab", "abc", "abcd", "abcdd", "abd", "ac", "acd", "abcc", "b", "ba", "aa", "aba", "abcabc",
             "d", "dd", "abx", "x", "xa", "a!b", "##", "#a", "a#b", "b#", "", "abcd" * 30]
    texts = [" ".join(words), *words, "a b c d", "abc!abc", "zz ab"]
    for max_chars in (100, 3, 1, 0):
        nat = native(vocab, {}, max_chars=max_chars, prefix=prefix)
        assert_same(texts, nat, python(vocab, {}, max_chars=max_chars, prefix=prefix))
    # Spot checks of the expected pieces (longest match first; one unk for a word with an unmatched position).
    nat = native(vocab, {}, prefix=prefix)
    ids, starts, ends, words_, splits = nat.encode_batch(["abcd abd zz"])
    if prefix == "##":
        assert ids == [6, 9, 3, 9, 0]
        assert list(zip(starts, ends)) == [(0, 3), (3, 4), (5, 7), (7, 8), (9, 11)]
        assert words_ == [0, 0, 1, 1, 2] and splits == [0, 5]


def test_prefix_words_without_punctuation():
    # With '#' not punctuation, words may start with the prefix itself: the first piece is then looked up as is.
    vocab = {"[UNK]": 0, "##": 1, "##a": 2, "###": 3, "#": 4, "a": 5, "##ab": 6, "####": 7}
    ws = [(0x20, 0x20)]
    texts = ["##a", "##ab", "###a", "a##", "a###", "#", "##", "###", "####", "#####a", "a#a"]
    texts.append(" ".join(texts))

    def split_class(c):
        return WHITESPACE if c == 0x20 else normalization.OTHER

    nat = _C.WordPieceTokenizer(vocab, 0, {}, ws, [], 100, "##")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(normalization, "split_class", split_class)
        assert_same(texts, nat, python(vocab, {}))


def test_custom_tables_and_char_map():
    # A char map whose replacements contain the character itself, whitespace and punctuation; overlapping
    # whitespace and punctuation ranges (whitespace wins).
    vocab = {"[UNK]": 0, "q": 1, "##q": 2, "y": 3, "x": 4, "-": 5, "z": 6, "##z": 7, "k": 8}
    char_map = {ord("q"): "qq", ord("x"): "x y", ord("k"): "-k-", ord("r"): "", ord("Z"): "z", 0x10FFFF: "z"}
    ws = [(0x20, 0x20), (ord("_"), ord("_"))]
    punct = [(ord("-"), ord("-")), (ord("_"), ord("_")), (ord("!"), ord("!"))]

    def split_class(c):
        if c in (0x20, ord("_")):
            return WHITESPACE
        if c in (ord("-"), ord("!")):
            return PUNCTUATION
        return normalization.OTHER

    texts = ["q", "qq", "xq", "qxq", "k", "kk", "rrr", "qrq", "Zz", "q_q", "a!b", "x_-k", "\U0010ffff\U0010ffffq",
             "q" * 50, "q" * 51, "y" * 101, ""]
    nat = _C.WordPieceTokenizer(vocab, 0, char_map, ws, punct, 100, "##")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(normalization, "split_class", split_class)
        assert_same(texts, nat, python(vocab, char_map))


def test_random_small_vocabularies():
    rng = random.Random(5)
    alphabet = "abc#"

    def split_class(c):
        return WHITESPACE if c == 0x20 else normalization.OTHER

    for _ in range(200):
        prefix = rng.choice(["##", "#", "", "a#"])
        tokens = {"".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 5)))
                  for _ in range(rng.randrange(1, 25))}
        tokens |= {prefix + t for t in rng.sample(sorted(tokens), k=len(tokens) // 2)}
        vocab = {"[UNK]": 0, **{t: i + 1 for i, t in enumerate(sorted(tokens))}}
        texts = [" ".join("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 9)))
                          for _ in range(rng.randrange(0, 6))) for _ in range(20)]
        max_chars = rng.choice([100, 4, 6])
        nat = _C.WordPieceTokenizer(vocab, 0, {}, [(0x20, 0x20)], [], max_chars, prefix)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(normalization, "split_class", split_class)
            assert_same(texts, nat, python(vocab, {}, max_chars=max_chars, prefix=prefix))


def test_repeated_ids_and_unk_not_first():
    vocab = {"a": 7, "##a": 7, "b": 3, "[UNK]": 5, "oov": 1}
    nat, ref = native(vocab, {}), python(vocab, {})
    assert_same(["a aa ab ba b c", "oov"], nat, ref)


# --- Threads ---------------------------------------------------------------------------------------------------


def test_concurrent_calls(vocab):
    nat = native(vocab, build_char_map(True, True, True, True))
    texts = corpus_texts(800)
    expected = nat.encode_batch(texts)
    results, errors = [None] * 4, []

    def run(k):
        try:
            for _ in range(3):
                results[k] = nat.encode_batch(texts[k:] + texts[:k])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for k in range(4):
        assert results[k] == nat.encode_batch(texts[k:] + texts[:k])
    assert nat.encode_batch(texts) == expected


# --- Parity with HF tokenizers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [(True, True, True, True), (True, True, False, True), (False, False, False, False),
                                   (True, False, True, False)], ids=flags_id)
def test_matches_hf_tokenizers(vocab, flags):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    clean, cjk, strip, lower = flags
    hf = tokenizers.Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    hf.normalizer = normalizers.BertNormalizer(clean_text=clean, handle_chinese_chars=cjk, strip_accents=strip,
                                               lowercase=lower)
    hf.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    rng = random.Random(11)
    texts = corpus_texts(400) + [random_code_point_text(rng, rng.randrange(0, 80)) for _ in range(200)]
    texts += ["a" * 100, "a" * 101, "b" * 100 + " " + "c" * 101]
    specials = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")
    texts = [t for t in texts if not any(s in t for s in specials)]  # the core does not handle added tokens

    ids, starts, ends, words, splits = native(vocab, build_char_map(*flags)).encode_batch(texts)
    for i, (text, enc) in enumerate(zip(texts, hf.encode_batch(texts, add_special_tokens=False))):
        a, b = splits[i], splits[i + 1]
        got = (ids[a:b], list(zip(starts[a:b], ends[a:b])), words[a:b])
        want = (enc.ids, [tuple(o) for o in enc.offsets], enc.word_ids)
        assert got == want, f"texts[{i}] = {text!r}"


# --- Bad arguments ---------------------------------------------------------------------------------------------


GOOD = dict(vocab={"[UNK]": 0, "a": 1}, unk_id=0, char_map={}, split_whitespace=WS, punctuation=PUNCT)


def make(**changes):
    kwargs = {**GOOD, **changes}
    return _C.WordPieceTokenizer(**kwargs)


@pytest.mark.parametrize("changes, error, match", [
    (dict(vocab={"[UNK]": 0, "a": -1}), ValueError, r"vocab\['a'\] is -1"),
    (dict(vocab={"[UNK]": 0, "a": 2**31}), ValueError, r"vocab\['a'\]"),
    (dict(vocab={"[UNK]": 0, "a": 2**70}), ValueError, r"vocab\['a'\]"),
    (dict(vocab={"[UNK]": 0, "a": "1"}), TypeError, r"vocab\['a'\] must be an int, got str"),
    (dict(vocab={"[UNK]": 0, b"a": 1}), TypeError, r"vocab keys must be str, got bytes"),
    (dict(unk_id=5), ValueError, r"unk_id 5 is not an id of vocab"),
    (dict(unk_id=-1), ValueError, r"unk_id -1 is not an id of vocab"),
    (dict(char_map={-1: "a"}), ValueError, r"char_map key is -1"),
    (dict(char_map={0x110000: "a"}), ValueError, r"char_map key is 1114112"),
    (dict(char_map={"a": "b"}), TypeError, r"char_map key must be an int, got str"),
    (dict(char_map={65: b"a"}), TypeError, r"char_map\[65\] must be a str, got bytes"),
    (dict(split_whitespace=[(32, 32), (5, 2)]), ValueError, r"split_whitespace\[1\] is \(5, 2\)"),
    (dict(punctuation=[(-1, 5)]), ValueError, r"punctuation\[0\] is \(-1, 5\)"),
    (dict(punctuation=[(0, 0x110000)]), ValueError, r"punctuation\[0\] is \(0, 1114112\)"),
    (dict(max_input_chars_per_word=-1), ValueError, r"max_input_chars_per_word must be >= 0, got -1"),
])
def test_bad_constructor_arguments(changes, error, match):
    with pytest.raises(error, match=match):
        make(**changes)


def test_bad_constructor_types():
    with pytest.raises(TypeError):
        make(vocab=["a"])
    with pytest.raises(TypeError):
        make(split_whitespace=[(1, 2, 3)])
    with pytest.raises(TypeError):
        make(continuing_prefix=b"##")


@pytest.mark.parametrize("texts, match", [
    (["a", "b", "c", b"d"], r"texts\[3\] is bytes, expected str"),
    ([None], r"texts\[0\] is NoneType, expected str"),
    (["a", 1], r"texts\[1\] is int, expected str"),
    ("abc", r"texts must be a list of str, got str"),
    (None, r"texts must be a list of str, got NoneType"),
    ({"a"}, r"texts must be a list of str, got set"),
])
def test_bad_texts(texts, match):
    with pytest.raises(TypeError, match=match):
        make().encode_batch(texts)


def test_defaults_and_keywords(vocab):
    char_map = build_char_map(True, True, True, True)
    nat = _C.WordPieceTokenizer(vocab=vocab, unk_id=vocab["[UNK]"], char_map=char_map, split_whitespace=WS,
                                punctuation=PUNCT)
    assert_same(["Hello, World! " + "a" * 101], nat, python(vocab, char_map))
    assert nat.encode_batch(texts=["hello"])[0] == [vocab["hello"]]


def test_fast_tokenizer_runs_the_native_core():
    import mobilebert_lite

    tok = mobilebert_lite.MobileBertTokenizerFast()
    core = getattr(tok._core, "native", tok._core)  # uncased: the router in front of the native core
    has_native = hasattr(getattr(mobilebert_lite, "_C", None), "WordPieceTokenizer")
    if not has_native and os.environ.get("MBL_REQUIRE_NATIVE") != "1":
        pytest.skip("native module not built")
    assert type(core).__name__ == "WordPieceTokenizer"
    assert mobilebert_lite.runtime_info()["tokenizer_core"] == "native"
