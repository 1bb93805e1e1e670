"""The command line: `run` on the example model and on a saved model directory, `info`, and its errors."""

import json

import numpy as np
import pytest

import mobilebert_lite as mbl
from mobilebert_lite import cli


def _run_json(capsys, argv):
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_run_example_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MBL_CACHE", str(tmp_path))
    report = _run_json(capsys, ["run", "--json", "--backend", "reference", "--ids", "101 7592 102", "--ids", "101 102"])
    assert report["example_model"] is True
    assert report["class"] == "MobileBertForMaskedLM"
    assert report["outputs"]["logits"]["shape"] == [2, 3, 30522]
    # the example is written once and reused
    assert (tmp_path / "example-tiny-mlm" / "model.safetensors").is_file()


def test_run_matches_python_api(tmp_path, capsys):
    cfg = mbl.MobileBertConfig(vocab_size=50, hidden_size=32, embedding_size=16, intra_bottleneck_size=16,
                               intermediate_size=24, num_hidden_layers=2, num_labels=3)
    model = mbl.MobileBertForSequenceClassification(cfg, backend="reference", seed=3)
    model.save_pretrained(tmp_path)
    report = _run_json(capsys, ["run", "--json", "--backend", "reference", "--model", str(tmp_path),
                                "--ids", "1 2 3 4"])
    expected = model(input_ids=np.array([[1, 2, 3, 4]])).logits
    got = report["outputs"]["logits"]
    assert got["shape"] == [1, 3]
    np.testing.assert_allclose(got["first"], np.round(expected.reshape(-1), 6), atol=1e-6)
    assert got["argmax_last_axis"] == expected.argmax(-1).tolist()


def test_run_human_output(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MBL_CACHE", str(tmp_path))
    assert cli.main(["run", "--backend", "reference"]) == 0
    text = capsys.readouterr().out
    assert "MobileBertForMaskedLM" in text and "logits" in text and "random example weights" in text


def test_info(capsys):
    info = _run_json(capsys, ["info"])
    assert "reference" in info["backends"]


def test_run_errors(tmp_path, capsys):
    with pytest.raises(SystemExit, match="integer token ids"):
        cli.main(["run", "--model", str(tmp_path), "--ids", "1 x 3"])
    assert cli.main(["run", "--model", str(tmp_path / "nope")]) == 2
    assert "no config.json" in capsys.readouterr().err
