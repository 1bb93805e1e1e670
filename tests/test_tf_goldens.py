"""TFMobileBert* twins vs transformers 4.57.6's TensorFlow classes, on committed goldens.

tests/data/tf_goldens/ holds tiny random-weight `tf_model.h5` checkpoints saved by the real TF classes (three
layouts, every class, a legacy `mlm___cls` head, a regression head) with their inputs, labels and every output,
losses in TF's shapes (made by tools/make_tf_goldens.py in a throwaway TensorFlow environment; versions in
VERSIONS.md). Tolerance as for the PyTorch parity tests: 1e-5 (reference) / 1e-4 (native) times
max(1, max|golden|). A fully masked row is TF's -10000 added to every score, rounded at ulp(10000) ~ 1e-3, so the
attention and hidden states of those rows only are compared at 2e-3.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import mobilebert_lite as mbl

pytest.importorskip("h5py")
ROOT = pathlib.Path(__file__).parent / "data" / "tf_goldens"
MANIFEST = json.loads((ROOT / "manifest.json").read_text())["fixtures"]
FULLY_MASKED_TOL = 2e-3
LEGACY_CLASSES = {"TFMobileBertForMaskedLM", "TFMobileBertForTokenClassification",
                  "TFMobileBertForNextSentencePrediction"}


def _fixture_id(entry):
    return entry["dir"].replace("/", "-")


def _compare(name, ours, golden, rtol, masked_rows, batch_axis):
    ours = np.asarray(ours)
    assert ours.shape == golden.shape, f"{name}: shape {ours.shape} != golden {golden.shape}"
    tol = rtol * max(1.0, float(np.abs(golden).max()))
    diff = np.abs(ours.astype(np.float64) - golden)
    if masked_rows and batch_axis is not None:
        rows = np.moveaxis(diff, batch_axis, 0)
        loose = np.zeros(rows.shape[0], bool)
        loose[masked_rows] = True
        assert rows[loose].max(initial=0) <= FULLY_MASKED_TOL * max(1.0, float(np.abs(golden).max())), name
        diff = rows[~loose]
    assert diff.max(initial=0) <= tol, f"{name}: max |ours - TF| = {diff.max():.3g} > {tol:.3g}"


@pytest.mark.parametrize("entry", MANIFEST, ids=_fixture_id)
def test_twin_matches_tensorflow(entry, backend, rtol):
    fixture = ROOT / entry["dir"]
    golden = dict(np.load(fixture / "golden.npz"))
    cls = getattr(mbl, entry["class"])
    model = cls.from_pretrained(fixture, backend=backend)
    feed = {k: golden[k] for k in entry["inputs"] + entry["labels"]}
    out = model(feed, output_hidden_states=True, output_attentions=True)
    multiple_choice = entry["class"] == "TFMobileBertForMultipleChoice"
    masked = entry.get("fully_masked_rows") or []
    # flattened row index of each fully masked input row ([b] or [b, c]), as the encoder sees the batch
    C = golden["input_ids"].shape[1] if multiple_choice else 1
    masked_flat = [r[0] * C + (r[1] if len(r) > 1 else 0) for r in masked]
    B = golden["input_ids"].shape[0]
    for name in entry["outputs"]:
        value = out[name]
        if name in ("hidden_states", "attentions"):  # per encoder row (B*C rows for multiple choice)
            value, axis, rows = np.stack(value), 1, masked_flat
        elif name == "last_hidden_state":
            axis, rows = 0, masked_flat
        elif np.ndim(value) >= 1 and np.shape(value)[0] == B:  # head outputs and per-example losses
            axis, rows = 0, sorted({r[0] for r in masked})
        else:
            axis, rows = None, []
        _compare(name, value, golden[name].astype(np.float64), rtol, rows, axis)


@pytest.mark.parametrize("entry", [e for e in MANIFEST if "loss_legacy" in e["extra"]], ids=_fixture_id)
def test_legacy_loss_matches_tensorflow(entry, backend, rtol):
    fixture = ROOT / entry["dir"]
    golden = dict(np.load(fixture / "golden.npz"))
    model = getattr(mbl, entry["class"]).from_pretrained(fixture, backend=backend, tf_legacy_loss=True)
    out = model({k: golden[k] for k in entry["inputs"] + entry["labels"]})
    _compare("loss_legacy", out.loss, golden["loss_legacy"].astype(np.float64), rtol, [], None)


def test_every_class_and_layout_is_covered():
    classes = {e["class"] for e in MANIFEST}
    assert classes == set(mbl.tf_modeling.TF_MODEL_CLASSES)
    assert {e["config"] for e in MANIFEST} >= {"default_nonorm", "tiny_bottleneck_attn", "layernorm_gelu"}
    assert any(e["variant"] == "legacy_mlm_cls" for e in MANIFEST)


@pytest.mark.parametrize("entry", MANIFEST[:8], ids=_fixture_id)
def test_saved_h5_reloads_identically(entry, tmp_path):
    """Our save_pretrained of a TF fixture gives back the same weights (transformers 4.57 loading our files was
    checked with tools/check_tf_h5_load.py: exact)."""
    cls = getattr(mbl, entry["class"])
    model = cls.from_pretrained(ROOT / entry["dir"], backend="reference")
    model.save_pretrained(tmp_path)
    again = cls.from_pretrained(tmp_path, backend="reference")
    for k, v in model.params.items():
        assert np.array_equal(again.params[k], v), k


def test_sharded_h5_from_transformers(backend):
    """tests/data/tf_sharded: the tiny_bottleneck_attn MaskedLM fixture re-saved by transformers 4.57.6 with
    max_shard_size="4KB" (4 shards + tf_model.h5.index.json; shards list variables, not layers)."""
    sharded = mbl.TFMobileBertForMaskedLM.from_pretrained(ROOT.parent / "tf_sharded", backend=backend)
    single = mbl.TFMobileBertForMaskedLM.from_pretrained(ROOT / "tiny_bottleneck_attn/TFMobileBertForMaskedLM",
                                                         backend=backend)
    assert set(sharded.params) == set(single.params)
    for k, v in single.params.items():
        assert np.array_equal(sharded.params[k], v), k
