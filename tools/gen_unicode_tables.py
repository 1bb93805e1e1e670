"""Generate mobilebert_lite/tokenization/unicode_tables.py from the behaviour of HF's `tokenizers` library.

Why measure instead of using `unicodedata`: HF's Rust normaliser and pre-tokeniser use the Unicode tables of the
Rust crates it was built with, which differ from any given Python's `unicodedata` (Unicode version, which categories
count as "control", what `char::is_whitespace` accepts). Asking the library itself, one code point at a time, gives
tables that reproduce it exactly. Each normaliser step is measured on its own and the generator then checks that the
composition of the steps reproduces `BertNormalizer` for every code point under all 16 flag combinations.

Run (needs `tokenizers`, which the test extra brings with transformers):
    python tools/gen_unicode_tables.py            # writes the module
    python tools/gen_unicode_tables.py --check    # exits 1 if the committed module is out of date
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parents[1] / "mobilebert_lite" / "tokenization" / "unicode_tables.py"
CODE_POINTS = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000]


def _ranges(cps: list[int]) -> list[tuple[int, int]]:
    """Sorted code points -> inclusive (first, last) ranges."""
    out: list[tuple[int, int]] = []
    for c in cps:
        if out and out[-1][1] == c - 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


def measure():
    from tokenizers import normalizers, pre_tokenizers

    def norm(**flags):
        base = dict(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=False)
        base.update(flags)
        return normalizers.BertNormalizer(**base)

    clean, chinese = norm(clean_text=True), norm(handle_chinese_chars=True)
    strip, lower = norm(strip_accents=True), norm(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()

    import unicodedata

    nfd = normalizers.NFD()
    removed, whitespace, cjk, punct, split_space, reorder = [], [], [], [], [], []
    strip_map, lower_map = {}, {}
    for c in CODE_POINTS:
        ch = chr(c)
        r = clean.normalize_str(ch)
        if r == "":
            removed.append(c)
        elif r == " " and ch != " ":
            whitespace.append(c)
        elif r != ch:
            raise AssertionError(f"clean_text maps U+{c:04X} to {r!r}")
        if chinese.normalize_str(ch) != ch:
            assert chinese.normalize_str(ch) == f" {ch} ", c
            cjk.append(c)
        if (s := strip.normalize_str(ch)) != ch:
            strip_map[c] = s
        if (low := lower.normalize_str(ch)) != ch:
            lower_map[c] = low
        # NFD reorders combining marks; where a mark that survives accent stripping moves, HF's offsets follow
        # positions rather than characters, which the tokenizers reproduce on a slower exact path
        if any(unicodedata.combining(d) and strip.normalize_str(d) for d in nfd.normalize_str(ch)):
            reorder.append(c)
        pieces = [p for p, _ in pre.pre_tokenize_str("a" + ch + "a")]
        if pieces == ["a", "a"]:
            split_space.append(c)
        elif pieces == ["a", ch, "a"]:
            punct.append(c)
        else:
            assert pieces == ["a" + ch + "a"], (c, pieces)
    if " " not in [chr(c) for c in split_space]:
        split_space.append(0x20)
    return dict(
        removed=_ranges(removed),
        clean_whitespace=_ranges(sorted(set(whitespace) | {0x20})),
        cjk=_ranges(cjk),
        split_whitespace=_ranges(sorted(set(split_space))),
        punctuation=_ranges(punct),
        reorder_sensitive=_ranges(reorder),
        strip_accents=strip_map,
        lowercase=lower_map,
    )


def verify(flag_sets=None) -> None:
    """The committed tables, composed the way our tokenizers compose them, must reproduce BertNormalizer exactly for
    every code point (all 16 flag combinations unless `flag_sets` narrows them)."""
    from tokenizers import normalizers

    from mobilebert_lite.tokenization import unicode_tables
    from mobilebert_lite.tokenization.normalization import build_char_map

    for clean, chinese, strip, lower in flag_sets or itertools.product([False, True], repeat=4):
        hf = normalizers.BertNormalizer(
            clean_text=clean, handle_chinese_chars=chinese, strip_accents=strip, lowercase=lower
        )
        char_map = build_char_map(clean, chinese, strip, lower, tables=unicode_tables)
        bad = [c for c in CODE_POINTS if char_map.get(c, chr(c)) != hf.normalize_str(chr(c))]
        assert not bad, f"flags {(clean, chinese, strip, lower)}: {len(bad)} code points differ, first U+{bad[0]:04X}"
    print("verified: composed tables == BertNormalizer")


def render(tables) -> str:
    import tokenizers

    lines = [
        '"""Unicode tables of HF tokenizers\' BertNormalizer and BertPreTokenizer, measured per code point.',
        "",
        f"Generated by tools/gen_unicode_tables.py from tokenizers {tokenizers.__version__}; do not edit by hand.",
        "Ranges are inclusive (first, last) code point pairs; maps give the output of one step for one code point",
        'where it differs from the input."""',
        "",
        f"TOKENIZERS_VERSION = {tokenizers.__version__!r}",
        "",
    ]
    for name in ("removed", "clean_whitespace", "cjk", "split_whitespace", "punctuation", "reorder_sensitive"):
        lines.append(f"{name.upper()} = (")
        for a, b in tables[name]:
            lines.append(f"    (0x{a:04X}, 0x{b:04X}),")
        lines.append(")")
        lines.append("")
    for name in ("strip_accents", "lowercase"):
        lines.append(f"{name.upper()} = {{")
        for c, s in sorted(tables[name].items()):
            lines.append(f"    0x{c:04X}: {s!r},")
        lines.append("}")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare with the committed module")
    args = ap.parse_args()
    tables = measure()
    text = render(tables)
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date with the installed tokenizers; rerun tools/gen_unicode_tables.py")
            return 1
        print("up to date")
        verify()
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(text)} bytes)")
    verify()
    return 0


if __name__ == "__main__":
    sys.exit(main())
