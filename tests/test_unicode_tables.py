"""The committed Unicode tables reproduce HF tokenizers' BertNormalizer and BertPreTokenizer for every code point."""

import importlib.util
import pathlib

import pytest

pytest.importorskip("tokenizers")
TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "gen_unicode_tables.py"


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_unicode_tables", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tables_match_installed_tokenizers(gen):
    from mobilebert_lite.tokenization import unicode_tables

    assert gen.render(gen.measure()) == pathlib.Path(unicode_tables.__file__).read_text(encoding="utf-8"), (
        "unicode_tables.py differs from what the installed tokenizers does; rerun tools/gen_unicode_tables.py")


@pytest.mark.parametrize("lowercase", [True, False])
def test_composed_normaliser_matches_hf(gen, lowercase):
    # the configurations BERT checkpoints use: clean text, CJK splitting, accents stripped iff lower-casing
    gen.verify([(True, True, lowercase, lowercase)])
