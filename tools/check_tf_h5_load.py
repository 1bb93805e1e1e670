#!/usr/bin/env python
"""Checks that a ``tf_model.h5`` + ``config.json`` written by mobilebert-lite loads in real transformers 4.x
TensorFlow and reproduces the golden outputs of tests/data/tf_goldens/.

Runs ONLY in the throwaway TensorFlow environment described in tools/make_tf_goldens.py (never in CI):

    # one directory
    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python tools/check_tf_h5_load.py \\
        tests/data/tf_goldens/default_nonorm/TFMobileBertForMaskedLM  /tmp/ours/mlm  [TFMobileBertForMaskedLM]

    # every fixture: OURS_ROOT/<fixture dir as in manifest.json>/{tf_model.h5,config.json}
    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python tools/check_tf_h5_load.py --all tests/data/tf_goldens /tmp/ours

For each directory it
1. compares every variable of our h5 with the fixture's h5 (names with the per-process model scope dropped,
   ``mlm___cls`` read as ``predictions___cls``; shapes, dtype float32, values; exact unless --weights-atol),
   and checks the Keras h5 attributes (``layer_names``, ``weight_names``, ``backend``, ``keras_version``);
2. compares the model-defining fields of config.json with the fixture's;
3. loads the directory with ``TFMobileBertFor<X>.from_pretrained`` and fails on any "not used" / "newly
   initialized" warning;
4. runs the golden inputs (and labels) through it and compares every golden array (``loss_legacy`` with
   ``config.tf_legacy_loss=True``) within --atol (default 0: our save of the fixture's weights must give TF's
   outputs bit for bit).
Exit status 0 only if everything passed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_tf_goldens as goldens  # noqa: E402

VERBOSE = False

MODEL_FIELDS = sorted(
    set(goldens._BASE)
    | {
        "normalization_type",
        "hidden_act",
        "classifier_activation",
        "key_query_shared_bottleneck",
        "use_bottleneck_attention",
        "use_bottleneck",
        "trigram_input",
        "layer_norm_eps",
        "id2label",
        "tf_legacy_loss",
        "pad_token_id",
        "true_hidden_size",
        "model_type",
    }
)


def read_h5(path: Path) -> tuple[dict, list]:
    """{variable path without model scope: array}, plus a list of structural problems."""
    import h5py

    problems = []
    weights = {}
    with h5py.File(path, "r") as f:
        for attr in ("layer_names", "backend", "keras_version"):
            if attr not in f.attrs:
                problems.append(f"root attribute {attr!r} missing")
        layer_names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs.get("layer_names", [])]
        for layer in layer_names:
            if layer not in f:
                problems.append(f"layer group {layer!r} listed in layer_names but absent")
                continue
            group = f[layer]
            if "weight_names" not in group.attrs:
                problems.append(f"{layer}: no weight_names attribute")
                continue
            for wn in group.attrs["weight_names"]:
                wn = wn.decode() if isinstance(wn, bytes) else str(wn)
                if wn not in group:
                    problems.append(f"{layer}: weight {wn!r} listed but absent")
                    continue
                ds = group[wn]
                key = goldens.variable_key(wn).replace("mlm___cls/", "predictions___cls/")
                if key in weights:
                    problems.append(f"duplicate variable {key}")
                if ds.dtype != np.float32:
                    problems.append(f"{key}: dtype {ds.dtype}")
                weights[key] = ds[()]
    return weights, problems


def compare_weights(fixture_h5: Path, ours_h5: Path, atol: float) -> list:
    ref, ref_problems = read_h5(fixture_h5)
    got, problems = read_h5(ours_h5)
    assert not ref_problems, ref_problems
    errors = list(problems)
    for k in sorted(set(ref) - set(got)):
        errors.append(f"missing variable {k} {ref[k].shape}")
    for k in sorted(set(got) - set(ref)):
        errors.append(f"unexpected variable {k} {got[k].shape}")
    for k in sorted(set(ref) & set(got)):
        if ref[k].shape != got[k].shape:
            errors.append(f"{k}: shape {got[k].shape} != {ref[k].shape}")
        else:
            d = float(np.max(np.abs(ref[k].astype(np.float64) - got[k]))) if ref[k].size else 0.0
            if not d <= atol:
                errors.append(f"{k}: max |diff| {d:.3g}")
    return errors


def compare_configs(fixture_dir: Path, ours_dir: Path) -> tuple[list, list]:
    """Model-defining fields compared as transformers resolves them (defaults filled in); the rest as notes."""
    import transformers

    ref_raw = json.loads((fixture_dir / "config.json").read_text())
    got_raw = json.loads((ours_dir / "config.json").read_text())
    ref = transformers.MobileBertConfig.from_pretrained(str(fixture_dir)).to_dict()
    got = transformers.MobileBertConfig.from_pretrained(str(ours_dir)).to_dict()
    errors, notes = [], []
    for k in MODEL_FIELDS:
        if ref.get(k) != got.get(k):
            errors.append(f"config {k}: ours {got.get(k, '<absent>')!r} vs fixture {ref.get(k, '<absent>')!r}")
    for k in sorted(set(ref_raw) | set(got_raw)):
        if k in MODEL_FIELDS or k == "transformers_version" or ref_raw.get(k) == got_raw.get(k):
            continue
        notes.append(f"config.json {k}: ours {got_raw.get(k, '<absent>')!r} vs fixture {ref_raw.get(k, '<absent>')!r}")
    return errors, notes


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def load_tf(model_dir: Path, class_name: str):
    import transformers

    capture = _Capture()
    root = logging.getLogger("transformers")
    root.addHandler(capture)
    try:
        model = getattr(transformers, class_name).from_pretrained(str(model_dir))
    finally:
        root.removeHandler(capture)
    bad = []
    for m in capture.records:
        if "not used" in m or "newly initialized" in m or "not initialized" in m:
            # Keras uniquifies dropout layer names per process ("dropout_94"), so the weightless dropout group of a
            # file saved elsewhere is always "not used": harmless, HF loads the real weights by layer name.
            listed = re.search(r"\[([^\]]*)\]", m)
            names = re.findall(r"'([^']*)'", listed.group(1)) if listed else []
            if names and all(re.fullmatch(r"dropout(_\d+)?", n) for n in names):
                continue
            bad.append(m)
    return model, bad


def compare_outputs(golden: dict, got: dict, names: list, atol: float) -> tuple[list, float]:
    errors, worst = [], 0.0
    for k in names:
        if k not in got:
            errors.append(f"output {k} missing")
            continue
        if golden[k].shape != got[k].shape:
            errors.append(f"output {k}: shape {got[k].shape} != golden {golden[k].shape}")
            continue
        d = float(np.max(np.abs(golden[k].astype(np.float64) - got[k]))) if golden[k].size else 0.0
        worst = max(worst, d)
        if not d <= atol:
            errors.append(f"output {k}: max |diff| {d:.3g} > {atol:g}")
    for k in sorted(set(got) - set(names)):
        errors.append(f"unexpected output {k}")
    return errors, worst


def check(
    fixture_dir: Path,
    ours_dir: Path,
    class_name: str | None,
    entry: dict | None = None,
    atol: float = 0.0,
    weights_atol: float = 0.0,
    self_check: bool = False,
) -> int:
    fixture_dir, ours_dir = Path(fixture_dir), Path(ours_dir)
    if entry is None:
        root = fixture_dir.parent.parent
        manifest = json.loads((root / "manifest.json").read_text())["fixtures"]
        rel = fixture_dir.resolve().relative_to(root.resolve()).as_posix()
        entry = next(e for e in manifest if e["dir"] == rel)
    class_name = class_name or entry["class"]
    if class_name != entry["class"]:
        print(f"note: loading as {class_name}, fixture class is {entry['class']}")
    label = f"{entry['dir']} <- {ours_dir}"
    legacy_self = self_check and entry.get("variant") == "legacy_mlm_cls"

    errors, notes = [], []
    if not self_check:
        errors += compare_weights(fixture_dir / "tf_model.h5", ours_dir / "tf_model.h5", weights_atol)
        e, n = compare_configs(fixture_dir, ours_dir)
        errors += e
        notes += n
    else:
        _, problems = read_h5(ours_dir / "tf_model.h5")
        errors += problems

    golden = dict(np.load(fixture_dir / "golden.npz"))
    model, bad = load_tf(ours_dir, class_name)
    if legacy_self:
        # transformers 4.57.6 does not know the old head name: it warns and leaves the head at zero.
        if not any("mlm___cls" in m for m in bad):
            errors.append(f"expected a 'mlm___cls not used' warning, got {bad}")
        got = goldens.run_all(model, class_name, golden, entry)
        if np.any(got["logits"] != 0.0):
            errors.append("legacy head unexpectedly loaded (logits not all zero): update the fixture note")
        else:
            notes.append("4.57.6 ignores the mlm___cls head (all-zero logits), as documented")
        worst = 0.0
    else:
        errors += [f"load warning: {m}" for m in bad]
        got = goldens.run_all(model, class_name, golden, entry)
        e, worst = compare_outputs(golden, got, entry["outputs"] + entry["extra"], atol)
        errors += e
    config_notes = [n for n in notes if n.startswith("config.json ")]
    for n in notes if VERBOSE else [n for n in notes if n not in config_notes]:
        print(f"  note {label}: {n}")
    if config_notes and not VERBOSE:
        print(f"  note {label}: {len(config_notes)} config.json fields differ outside the model-defining ones (-v)")
    status = "OK  " if not errors else "FAIL"
    print(f"{status} {label}  max|diff|={worst:.3g}")
    for e in errors:
        print(f"    {e}")
    return 0 if not errors else 1


def check_all(
    fixtures_root: Path, ours_root: Path, atol: float = 0.0, weights_atol: float = 0.0, self_check: bool = False
) -> int:
    import tf_keras

    fixtures_root, ours_root = Path(fixtures_root), Path(ours_root)
    manifest = json.loads((fixtures_root / "manifest.json").read_text())["fixtures"]
    failures = 0
    for entry in manifest:
        tf_keras.backend.clear_session()
        ours = ours_root / entry["dir"]
        if not (ours / "tf_model.h5").exists():
            print(f"MISS {entry['dir']}: no {ours}/tf_model.h5")
            failures += 1
            continue
        failures += check(fixtures_root / entry["dir"], ours, None, entry, atol, weights_atol, self_check)
    print(f"{len(manifest) - failures} passed, {failures} failed")
    return failures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fixture", type=Path, help="fixture dir (or fixtures root with --all)")
    ap.add_argument("ours", type=Path, help="dir with our tf_model.h5 + config.json (or a root with --all)")
    ap.add_argument("class_name", nargs="?", help="TFMobileBertFor<X> (default: the fixture's class)")
    ap.add_argument("--all", action="store_true", help="check every fixture of manifest.json")
    ap.add_argument("--atol", type=float, default=0.0, help="output tolerance (default 0: bit-identical)")
    ap.add_argument("--weights-atol", type=float, default=0.0, help="weight tolerance (default 0: exact)")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every non-model config.json difference")
    args = ap.parse_args(argv)
    global VERBOSE
    VERBOSE = args.verbose
    if args.all:
        return 1 if check_all(args.fixture, args.ours, args.atol, args.weights_atol) else 0
    return check(args.fixture, args.ours, args.class_name, None, args.atol, args.weights_atol)


if __name__ == "__main__":
    sys.exit(main())
