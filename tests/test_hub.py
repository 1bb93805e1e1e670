"""Hub ids resolved through a local HF cache tree (refs/main -> snapshots/<commit>), offline variables, and the
errors for models that are nowhere. No test touches the network: HF_HUB_OFFLINE is set wherever a lookup could
fall through to a download."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import mobilebert_lite as mbl
from mobilebert_lite import hub

VOCAB = os.path.join(os.path.dirname(mbl.__file__), "data", "vocab_uncased.txt")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OLD_COMMIT = "f" * 40


def _save_tiny(path, seed=0):
    cfg = mbl.MobileBertConfig(vocab_size=30522, hidden_size=32, embedding_size=16, intra_bottleneck_size=16,
                               intermediate_size=24, num_hidden_layers=1, max_position_embeddings=32)
    model = mbl.MobileBertModel(cfg, backend="reference", seed=seed)
    model.save_pretrained(path)
    shutil.copyfile(VOCAB, os.path.join(path, "vocab.txt"))
    return model


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An HF hub cache with models--org--tiny: refs/main -> COMMIT, plus an older snapshot."""
    root = tmp_path / "hub"
    repo = root / "models--org--tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT + "\n")
    model = _save_tiny(str(repo / "snapshots" / COMMIT), seed=1)
    _save_tiny(str(repo / "snapshots" / OLD_COMMIT), seed=2)
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root, model


def test_local_directory_is_returned_as_is(tmp_path):
    assert hub.resolve_model_dir(str(tmp_path)) == str(tmp_path)
    assert hub.resolve_model_dir(tmp_path) == str(tmp_path)


def test_hub_id_resolves_to_the_main_snapshot(cache):
    root, _ = cache
    expected = str(root / "models--org--tiny" / "snapshots" / COMMIT)
    assert hub.resolve_model_dir("org/tiny") == expected
    assert hub.resolve_model_dir("org/tiny", hub.MODEL_FILES) == expected
    assert hub.resolve_model_dir("org/tiny", revision=OLD_COMMIT).endswith(OLD_COMMIT)


def test_hf_home_and_default_locations(cache, monkeypatch, tmp_path):
    root, _ = cache
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # $HF_HOME/hub is the cache
    assert hub.hub_cache_dir() == str(root)
    assert hub.resolve_model_dir("org/tiny").startswith(str(root))
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert hub.hub_cache_dir() == os.path.join(str(tmp_path / "home"), ".cache", "huggingface", "hub")


def test_from_pretrained_with_a_hub_id(cache):
    _, model = cache
    loaded = mbl.MobileBertModel.from_pretrained("org/tiny", backend="reference")
    ids = np.array([[101, 7592, 2088, 102]])
    np.testing.assert_array_equal(loaded(input_ids=ids).last_hidden_state, model(input_ids=ids).last_hidden_state)
    tok = mbl.MobileBertTokenizerFast.from_pretrained("org/tiny")
    assert tok("hello world")["input_ids"] == [101, 7592, 2088, 102]
    assert mbl.MobileBertTokenizer.from_pretrained("org/tiny").vocab_size == 30522


def test_snapshot_without_the_needed_files_is_not_used(cache):
    root, _ = cache
    snapshot = root / "models--org--tiny" / "snapshots" / COMMIT
    os.remove(snapshot / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        mbl.MobileBertModel.from_pretrained("org/tiny")
    assert hub.resolve_model_dir("org/tiny", hub.TOKENIZER_FILES) == str(snapshot)


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_missing_id_names_where_it_looked(cache, monkeypatch, variable):
    root, _ = cache
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv(variable, "1")

    def no_network(*args, **kwargs):
        raise AssertionError("the hub was asked while offline")

    if _has_hf_hub():
        import huggingface_hub

        monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    with pytest.raises(FileNotFoundError) as exc:
        hub.resolve_model_dir("org/missing", hub.MODEL_FILES)
    message = str(exc.value)
    assert "org/missing" in message and str(root / "models--org--missing") in message and "offline" in message
    with pytest.raises(FileNotFoundError, match="offline"):
        mbl.MobileBertModel.from_pretrained("org/missing")


def test_without_huggingface_hub_it_says_how_to_get_it(cache, monkeypatch):
    import sys

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(FileNotFoundError, match=r"mobilebert-lite\[hub\]"):
        hub.resolve_model_dir("org/missing")


def test_download_is_used_when_online(cache, monkeypatch, tmp_path):
    """Not offline and huggingface_hub present: snapshot_download is asked (a stub here, never the network)."""
    hf = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    calls = []

    def fake_download(repo_id, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, allow_patterns))
        return str(tmp_path)

    monkeypatch.setattr(hf, "snapshot_download", fake_download)
    assert hub.resolve_model_dir("org/other", hub.MODEL_FILES) == str(tmp_path)
    assert calls[0][0] == "org/other" and "model.safetensors" in calls[0][2] and "*.json" in calls[0][2]
    assert hub.resolve_model_dir("org/tiny") != str(tmp_path)  # cached: no download
    assert len(calls) == 1

    def failing(*args, **kwargs):
        raise OSError("connection refused")

    monkeypatch.setattr(hf, "snapshot_download", failing)
    with pytest.raises(FileNotFoundError, match="connection refused"):
        hub.resolve_model_dir("org/other")


def test_missing_local_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        hub.resolve_model_dir(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="tokenizer directory .* does not exist"):
        mbl.MobileBertTokenizerFast.from_pretrained(str(tmp_path / "nope"))
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(FileNotFoundError):
        hub.resolve_model_dir(str(file))


def test_repo_id_syntax():
    assert hub.looks_like_repo_id("google/mobilebert-uncased")
    assert hub.looks_like_repo_id("bert-base-uncased")
    for bad in ("/abs/path", "./rel", "a/b/c", "a--b/c", "a/..", "", "org/"):
        assert not hub.looks_like_repo_id(bad), bad


def _has_hf_hub() -> bool:
    import importlib.util

    return importlib.util.find_spec("huggingface_hub") is not None
