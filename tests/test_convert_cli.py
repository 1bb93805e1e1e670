"""`mobilebert-lite convert` and converters.convert: pytorch_model.bin / tf_model.h5 (and sharded indexes) ->
model.safetensors that both mobilebert_lite and transformers load, written atomically."""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import numpy as np
import pytest

import mobilebert_lite as mbl
from mobilebert_lite.cli import main
from mobilebert_lite.converters.convert import convert

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
GOLDENS = pathlib.Path(__file__).parent / "data" / "tf_goldens"


def _hf_model(class_name="MobileBertForPreTraining", tie=True):
    from tiny_hf import make_tiny_hf_model

    model = make_tiny_hf_model(class_name, tie_word_embeddings=tie, eager=True)
    if not tie:  # an untied decoder that differs from the word embeddings
        with torch.no_grad():
            model.cls.predictions.decoder.weight.add_(0.05)
    return model


def _save_bin(model, directory, shards=1, **save_kwargs):
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(directory)
    state = model.state_dict()
    if shards == 1:
        torch.save(state, directory / "pytorch_model.bin", **save_kwargs)
        return
    keys = list(state)
    weight_map = {}
    for i in range(shards):
        part = {k: state[k] for k in keys[i::shards]}
        name = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        torch.save(part, directory / name)
        weight_map.update(dict.fromkeys(part, name))
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def _ids():
    return np.array([[1, 5, 7, 9, 2, 0], [1, 3, 4, 8, 8, 2]])


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("shards,legacy", [(1, False), (1, True), (3, False)])
def test_bin_to_safetensors_loads_in_ours_and_transformers(tmp_path, tie, shards, legacy):
    model = _hf_model(tie=tie)
    src = tmp_path / "src"
    _save_bin(model, src, shards, **({"_use_new_zipfile_serialization": False} if legacy else {}))
    assert main(["convert", str(src), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config.get("tie_word_embeddings", True) is tie
    ids = _ids()
    with torch.no_grad():
        expected = model(input_ids=torch.tensor(ids)).prediction_logits.numpy()
    ours = mbl.MobileBertForPreTraining.from_pretrained(tmp_path / "out", backend="reference")
    np.testing.assert_allclose(ours(input_ids=ids).prediction_logits, expected, atol=1e-4)
    hf = transformers.MobileBertForPreTraining.from_pretrained(tmp_path / "out", attn_implementation="eager").eval()
    reloaded, original = hf.state_dict(), model.state_dict()
    for key, value in original.items():
        if not key.endswith("position_ids"):
            assert torch.equal(reloaded[key], value), key
    with torch.no_grad():
        np.testing.assert_array_equal(hf(input_ids=torch.tensor(ids)).prediction_logits.numpy(), expected)
    # and the .bin directory loads directly, without converting
    direct = mbl.MobileBertForPreTraining.from_pretrained(src, backend="reference")
    assert set(direct.params) == set(ours.params)
    for key, value in ours.params.items():
        assert np.array_equal(direct.params[key], value), key


def test_fp16_bin_is_upcast_or_kept(tmp_path):
    model = _hf_model("MobileBertModel")
    _save_bin(model.half(), tmp_path / "src")
    out = convert(tmp_path / "src", tmp_path / "f32")
    keep = convert(tmp_path / "src" / "pytorch_model.bin", tmp_path / "f16", dtype="keep")
    from mobilebert_lite.safetensors_io import SafetensorsFile

    dtypes32 = {d for d, _ in SafetensorsFile(out).tensors.values()}
    dtypes16 = {d for d, _ in SafetensorsFile(keep).tensors.values()}
    assert "F16" not in dtypes32 and "F16" in dtypes16


@pytest.mark.parametrize("fixture", ["default_nonorm/TFMobileBertForPreTraining",
                                     "layernorm_gelu/TFMobileBertForQuestionAnswering",
                                     "tiny_bottleneck_attn/TFMobileBertForMaskedLM_legacy_mlm_cls"])
def test_h5_to_safetensors_keeps_every_weight(tmp_path, fixture):
    src = GOLDENS / fixture
    cls_name = json.loads((src / "config.json").read_text())["architectures"][0].removeprefix("TF")
    tf_model = getattr(mbl, "TF" + cls_name).from_pretrained(src, backend="reference")
    assert main(["convert", str(src / "tf_model.h5"), str(tmp_path)]) == 0
    pt_model = getattr(mbl, cls_name).from_pretrained(tmp_path, backend="reference")
    assert set(pt_model.params) == set(tf_model.params)
    for k, v in tf_model.params.items():
        assert np.array_equal(pt_model.params[k], v), k
    if "cls.predictions.decoder.weight" in tf_model.params:  # TF's own decoder: the config must not re-tie it
        assert json.loads((tmp_path / "config.json").read_text())["tie_word_embeddings"] is False


def test_failed_conversion_leaves_no_partial_file(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "pytorch_model.bin").write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"previous")
    assert main(["convert", str(src), str(out)]) == 2
    assert "mobilebert-lite: error:" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == b"previous"
    assert sorted(os.listdir(out)) == ["model.safetensors"]


def test_unknown_source_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "weights.npz").write_bytes(b"x")
    assert main(["convert", str(tmp_path / "weights.npz"), str(tmp_path / "out")]) == 2
    assert "do not know how to read weights.npz" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["convert", str(empty), str(tmp_path / "out")]) == 2
    shutil.rmtree(empty)


def test_sharded_h5_index_converts(tmp_path):
    index = GOLDENS.parent / "tf_sharded" / "tf_model.h5.index.json"
    assert main(["convert", str(index), str(tmp_path)]) == 0
    converted = mbl.MobileBertForMaskedLM.from_pretrained(tmp_path, backend="reference")
    single = mbl.TFMobileBertForMaskedLM.from_pretrained(GOLDENS / "tiny_bottleneck_attn/TFMobileBertForMaskedLM",
                                                         backend="reference")
    for k, v in single.params.items():
        assert np.array_equal(converted.params[k], v), k


def test_code_executing_pickle_is_refused_and_nothing_written(tmp_path, capsys):
    import pickle
    import zipfile

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    src = tmp_path / "src"
    src.mkdir()
    with zipfile.ZipFile(src / "pytorch_model.bin", "w") as z:  # laid out like torch.save's zip
        z.writestr("archive/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
        z.writestr("archive/version", "3\n")
    assert main(["convert", str(src), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "refusing to load pytorch_model.bin" in err and "system" in err
    assert not marker.exists()
    assert not (tmp_path / "out" / "model.safetensors").exists()
