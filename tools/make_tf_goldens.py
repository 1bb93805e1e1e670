#!/usr/bin/env python
"""Writes tests/data/tf_goldens/: tiny random-weight ``tf_model.h5`` checkpoints of the eight transformers 4.x
``TFMobileBert*`` classes, with the outputs TensorFlow computes for them (``golden.npz``).

This runs ONLY in a throwaway environment with TensorFlow and transformers 4.x; CI never imports it. The recipe
(Python 3.11; see tests/data/tf_goldens/VERSIONS.md for the exact versions used):

    python -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0 "h5py<3.15" numpy==2.4.6 transformers==4.57.6
    /tmp/tfenv/bin/pip install --no-deps tf-keras==2.21.0
    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python tools/make_tf_goldens.py            # (re)writes the fixtures
    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python tools/make_tf_goldens.py --verify   # reload each h5, compare

Layout: ``tests/data/tf_goldens/<config>/<fixture>/{tf_model.h5, config.json, golden.npz}`` plus
``manifest.json`` (one entry per fixture: dir, class, config, input / output / extra array names, fully masked
rows) and ``VERSIONS.md``.

golden.npz holds, all float32 or int32:
* the call's inputs under their keyword names: ``input_ids``, ``attention_mask``, ``token_type_ids`` and the
  label keywords of the class (``labels``, ``next_sentence_label``, ``start_positions``, ``end_positions``);
* every output field under its ModelOutput name (``loss``, ``logits``, ``prediction_logits``, ...), computed with
  ``output_hidden_states=True, output_attentions=True, training=False``; ``hidden_states`` and ``attentions`` are
  stacked on a new axis 0 (``[L+1, B, S, H]`` and ``[L, B, heads, S, S]``);
* ``loss_legacy``: the loss with ``config.tf_legacy_loss=True`` (MaskedLM, TokenClassification, NSP only).

The weights are set from a fixed seed (per config, class and variable name, so the result does not depend on
Keras' per-process name uniquification), and every variable is random: kernels ~ N(0, 1/fan_in), biases,
LayerNorm/NoNorm weights (around 1) and betas all away from 0 and 1, and the MLM ``decoder/weight`` independent
of the word embeddings (TF never ties them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import zlib
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "tf_goldens"
SEED = 20250611
MAX_BYTES = 2_500_000

CLASSES = [
    "TFMobileBertModel",
    "TFMobileBertForPreTraining",
    "TFMobileBertForMaskedLM",
    "TFMobileBertForNextSentencePrediction",
    "TFMobileBertForSequenceClassification",
    "TFMobileBertForMultipleChoice",
    "TFMobileBertForTokenClassification",
    "TFMobileBertForQuestionAnswering",
]

_BASE = dict(
    vocab_size=64,
    hidden_size=16,
    embedding_size=8,
    intra_bottleneck_size=8,
    true_hidden_size=8,
    num_attention_heads=2,
    num_hidden_layers=1,
    num_feedforward_networks=2,
    intermediate_size=12,
    max_position_embeddings=16,
    type_vocab_size=2,
)

# name -> (config kwargs, sequence length). Each config is as small as still exercises its layout: the h5 files
# carry ~740 bytes of HDF5 metadata per group or dataset (a MobileBERT layer has 40-70 of them), and the whole
# directory must stay under MAX_BYTES; so only one config (the cheapest per layer) has two layers.
CONFIGS = {
    # The released MobileBERT layout (no_norm, relu, trigram input, key/query shared bottleneck, stacked FFNs:
    # ffn.0 plus the final intermediate/output), shrunk.
    "default_nonorm": (dict(_BASE), 9),
    # MobileBERT-TINY: attention inputs all come from the input bottleneck (use_bottleneck_attention; the shared
    # key/query bottleneck still exists in the checkpoint but is unused), a single FFN.
    "tiny_bottleneck_attn": (
        dict(
            _BASE,
            vocab_size=48,
            num_feedforward_networks=1,
            use_bottleneck_attention=True,
            key_query_shared_bottleneck=True,
            intermediate_size=10,
        ),
        8,
    ),
    # Two layers, one FFN each. Real LayerNorm everywhere (eps not the default), exact-erf gelu, no pooler
    # activation, no bottleneck at all (use_bottleneck=False: true_hidden_size = hidden_size, q/k/v from the hidden
    # state, dropout branch of the output blocks), no trigram input (embedding_transformation still applies:
    # embedding_size != hidden_size), three heads, three token types. (TF cannot build a model with
    # use_bottleneck=True but neither key_query_shared_bottleneck nor use_bottleneck_attention: query/key expect
    # true_hidden_size inputs.)
    "layernorm_gelu": (
        dict(
            _BASE,
            vocab_size=40,
            num_hidden_layers=2,
            num_feedforward_networks=1,
            normalization_type="layer_norm",
            hidden_act="gelu",
            classifier_activation=False,
            use_bottleneck=False,
            trigram_input=False,
            hidden_size=12,
            true_hidden_size=12,
            embedding_size=6,
            num_attention_heads=3,
            type_vocab_size=3,
            layer_norm_eps=1e-6,
        ),
        7,
    ),
}

FULLY_MASKED = {"TFMobileBertModel", "TFMobileBertForSequenceClassification", "TFMobileBertForMultipleChoice"}
NUM_LABELS = 3
NUM_CHOICES = 3


def _tf():
    import tensorflow as tf
    import tf_keras  # noqa: F401  (TF_USE_LEGACY_KERAS=1 must resolve to tf-keras)
    import transformers

    return tf, transformers


def _seed(*parts: str) -> int:
    return zlib.crc32("\x00".join((str(SEED),) + parts).encode()) & 0x7FFFFFFF


def make_config(config_name: str, class_name: str, num_labels: int = NUM_LABELS):
    _, transformers = _tf()
    kwargs = dict(CONFIGS[config_name][0])
    true_hidden = kwargs.pop("true_hidden_size")
    if class_name == "TFMobileBertForQuestionAnswering":
        num_labels = 2  # qa_outputs splits its num_labels outputs into start / end
    config = transformers.MobileBertConfig(num_labels=num_labels, **kwargs)
    assert config.true_hidden_size == true_hidden, (config.true_hidden_size, true_hidden)
    return config


def variable_key(name: str) -> str:
    """The variable name without the per-process model scope and ':0'."""
    name = name.split(":")[0]
    return "/".join(name.split("/")[1:])


def randomize(model, config_name: str, class_name: str) -> None:
    """Gives every variable a random value of a scale that keeps the outputs O(1)."""
    hidden = model.config.hidden_size
    for var in model.weights:
        key = variable_key(var.name)
        rng = np.random.default_rng(_seed(config_name, class_name, key))
        shape = tuple(var.shape)
        leaf = key.split("/")[-1]
        parent = key.split("/")[-2] if "/" in key else ""
        if leaf == "kernel":
            value = rng.standard_normal(shape) / np.sqrt(shape[0])
        elif parent in ("word_embeddings",) or leaf == "embeddings":
            value = rng.standard_normal(shape) * 0.5
        elif parent in ("decoder", "dense") and leaf == "weight":
            # LM head: logits = transform(h) @ concat([decoder.T, dense]) + bias, fan-in = hidden_size
            value = rng.standard_normal(shape) * (1.5 / np.sqrt(hidden))
        elif parent == "LayerNorm" and leaf in ("weight", "gamma"):
            value = rng.uniform(0.6, 1.4, shape) * rng.choice([-1.0, 1.0], shape, p=[0.1, 0.9])
        elif leaf in ("bias", "beta"):
            value = rng.standard_normal(shape) * 0.2
        else:
            raise AssertionError(f"unexpected variable {var.name}")
        var.assign(value.astype(np.float32))


def make_inputs(config_name: str, class_name: str, vocab: int, type_vocab: int, variant: str = ""):
    seq = CONFIGS[config_name][1]
    rng = np.random.default_rng(_seed(config_name, class_name, variant, "inputs"))
    batch = 2 if class_name == "TFMobileBertForMultipleChoice" else 3
    rows = batch * (NUM_CHOICES if class_name == "TFMobileBertForMultipleChoice" else 1)
    ids = rng.integers(1, vocab, size=(rows, seq)).astype(np.int32)
    mask = np.ones((rows, seq), np.int32)
    types = np.zeros((rows, seq), np.int32)
    for r in range(rows):
        split = int(rng.integers(2, seq - 3))
        types[r, split:] = rng.integers(1, type_vocab)
    # row 1: trailing padding; row 2: a hole in the middle and trailing padding (pad id 0, type 0)
    mask[1, seq - 3 :] = 0
    mask[2, 2] = 0
    mask[2, seq - 2 :] = 0
    ids[mask == 0] = 0
    types[mask == 0] = 0
    fully_masked = []
    if class_name in FULLY_MASKED:
        # a row whose attention_mask is all zeros but whose ids / types are real: TF adds -10000 to every key,
        # which reproduces the unmasked attention (not uniform attention as PyTorch's finfo.min gives)
        r = rows - 2 if class_name == "TFMobileBertForMultipleChoice" else 0
        mask[r, :] = 0
        fully_masked.append(r)
    inputs = dict(input_ids=ids, attention_mask=mask, token_type_ids=types)
    if class_name == "TFMobileBertForMultipleChoice":
        inputs = {k: v.reshape(batch, NUM_CHOICES, seq) for k, v in inputs.items()}
        fully_masked = [[r // NUM_CHOICES, r % NUM_CHOICES] for r in fully_masked]
    else:
        fully_masked = [[r] for r in fully_masked]
    return inputs, fully_masked, rng


def mlm_labels(rng, ids, mask, vocab):
    labels = np.full(ids.shape, -100, np.int32)
    pick = (rng.random(ids.shape) < 0.4) & (mask == 1)
    pick[0, 1] = True  # at least one active position per fixture
    labels[pick] = rng.integers(0, vocab, size=int(pick.sum()))
    return labels


def make_labels(class_name: str, inputs, rng, vocab: int, variant: str):
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    batch, seq = ids.shape[0], ids.shape[-1]
    if class_name == "TFMobileBertModel":
        return {}
    if class_name == "TFMobileBertForPreTraining":
        return dict(labels=mlm_labels(rng, ids, mask, vocab), next_sentence_label=np.array([1, -100, 0], np.int32))
    if class_name == "TFMobileBertForMaskedLM":
        return dict(labels=mlm_labels(rng, ids, mask, vocab))
    if class_name == "TFMobileBertForNextSentencePrediction":
        return dict(next_sentence_label=np.array([0, 1, -100], np.int32))
    if class_name == "TFMobileBertForSequenceClassification":
        if variant == "regression":
            return dict(labels=rng.standard_normal(batch).astype(np.float32))
        return dict(labels=rng.integers(0, NUM_LABELS, size=batch).astype(np.int32))
    if class_name == "TFMobileBertForMultipleChoice":
        return dict(labels=np.array([2, 0], np.int32))
    if class_name == "TFMobileBertForTokenClassification":
        labels = rng.integers(0, NUM_LABELS, size=ids.shape).astype(np.int32)
        labels[mask == 0] = -100
        labels[0, 0] = -100  # e.g. [CLS]
        return dict(labels=labels)
    if class_name == "TFMobileBertForQuestionAnswering":
        start = rng.integers(0, seq, size=batch).astype(np.int32)
        end = np.minimum(start + rng.integers(0, 3, size=batch), seq - 1).astype(np.int32)
        return dict(start_positions=start, end_positions=end)
    raise AssertionError(class_name)


LEGACY_LOSS_CLASSES = {
    "TFMobileBertForMaskedLM",
    "TFMobileBertForTokenClassification",
    "TFMobileBertForNextSentencePrediction",
}


def run_model(model, arrays: dict, input_names: list, label_names: list, label_tensor: bool = False) -> dict:
    """Calls the model as the fixture prescribes and returns {output field: float32 array}."""
    tf, _ = _tf()
    kwargs = {k: arrays[k] for k in input_names}
    for k in label_names:
        kwargs[k] = tf.constant(arrays[k]) if label_tensor else arrays[k]
    out = model(**kwargs, output_hidden_states=True, output_attentions=True, return_dict=True, training=False)
    result = {}
    for field, value in out.items():
        if field in ("hidden_states", "attentions"):
            value = np.stack([np.asarray(v) for v in value])
        result[field] = np.asarray(value).astype(np.float32)
    return result


def run_all(model, class_name: str, arrays: dict, entry: dict) -> dict:
    result = run_model(model, arrays, entry["inputs"], entry["labels"], entry.get("labels_as_tf_tensor", False))
    if "loss_legacy" in entry["extra"]:
        old = model.config.tf_legacy_loss
        model.config.tf_legacy_loss = True
        try:
            legacy = run_model(model, arrays, entry["inputs"], entry["labels"])
        finally:
            model.config.tf_legacy_loss = old
        for k, v in legacy.items():
            if k != "loss":
                assert np.array_equal(v, result[k]), (class_name, k)
        result["loss_legacy"] = legacy["loss"]
    return result


def rename_legacy_head(h5_path: Path) -> None:
    """predictions___cls -> mlm___cls in groups, dataset paths and the weight/layer name attributes."""
    import h5py

    old, new = "predictions___cls", "mlm___cls"
    with h5py.File(h5_path, "r+") as f:
        f.attrs["layer_names"] = np.array(
            [n.replace(old, new) for n in f.attrs["layer_names"].astype(str)], dtype=f.attrs["layer_names"].dtype
        )
        f.move(old, new)
        group = f[new]
        names = group.attrs["weight_names"].astype(str)
        for scope in list(group.keys()):
            if old in group[scope]:
                group[scope].move(old, new)
        group.attrs["weight_names"] = np.array(
            [n.replace(old, new) for n in names], dtype=group.attrs["weight_names"].dtype
        )
        for n in group.attrs["weight_names"].astype(str):
            assert n in group, n


# The heads do not depend on the encoder layout (only the pooler does, through classifier_activation), so the
# TINY layout gets the encoder-level classes only, plus the two variants; that keeps the directory under MAX_BYTES.
TINY_CLASSES = ["TFMobileBertModel", "TFMobileBertForPreTraining", "TFMobileBertForMaskedLM"]


def fixture_specs():
    """(config name, class name, variant) of every fixture."""
    for config_name in CONFIGS:
        for class_name in CLASSES:
            if config_name != "tiny_bottleneck_attn" or class_name in TINY_CLASSES:
                yield config_name, class_name, ""
            if class_name == "TFMobileBertForMaskedLM" and config_name == "tiny_bottleneck_attn":
                yield config_name, class_name, "legacy_mlm_cls"
            if class_name == "TFMobileBertForSequenceClassification" and config_name == "tiny_bottleneck_attn":
                yield config_name, class_name, "regression"


def build(out_dir: Path) -> list:
    tf, transformers = _tf()
    import tf_keras

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    manifest = []
    for config_name, class_name, variant in fixture_specs():
        tf_keras.backend.clear_session()  # deterministic Keras names (model scope, dropout_N)
        source_variant = "" if variant == "legacy_mlm_cls" else variant
        config = make_config(config_name, class_name, num_labels=1 if variant == "regression" else NUM_LABELS)
        cls = getattr(transformers, class_name)
        model = cls(config)
        model(model.dummy_inputs, training=False)  # build
        randomize(model, config_name, class_name + (f"/{source_variant}" if source_variant else ""))

        inputs, fully_masked, rng = make_inputs(
            config_name, class_name, config.vocab_size, config.type_vocab_size, source_variant
        )
        labels = make_labels(class_name, inputs, rng, config.vocab_size, source_variant)
        arrays = {**inputs, **labels}
        entry = dict(
            dir=f"{config_name}/{class_name}" + (f"_{variant}" if variant else ""),
            **{"class": class_name},
            config=config_name,
            variant=variant or None,
            inputs=list(inputs),
            labels=list(labels),
            extra=["loss_legacy"] if class_name in LEGACY_LOSS_CLASSES else [],
            fully_masked_rows=fully_masked,
        )
        if variant == "regression":
            entry["labels_as_tf_tensor"] = True  # TF raises on numpy labels with num_labels == 1
        outputs = run_all(model, class_name, arrays, entry)
        entry["outputs"] = [k for k in outputs if k not in entry["extra"]]
        entry["arrays"] = list(arrays) + list(outputs)
        entry["shapes"] = {k: list(v.shape) for k, v in {**arrays, **outputs}.items()}
        if variant == "legacy_mlm_cls":
            entry["note"] = (
                "head group renamed predictions___cls -> mlm___cls (older transformers releases); outputs are those "
                "of the model before renaming. transformers 4.57.6 itself does not load this head (zeros + warning)."
            )
        d = out_dir / entry["dir"]
        d.mkdir(parents=True)
        model.save_pretrained(str(d))
        if variant == "legacy_mlm_cls":
            rename_legacy_head(d / "tf_model.h5")
        np.savez_compressed(d / "golden.npz", **arrays, **outputs)
        manifest.append(entry)
        big = max(float(np.abs(v).max()) for k, v in outputs.items() if k not in ("attentions",))
        print(f"{entry['dir']:<70} max|out|={big:8.3f}  " + " ".join(f"{k}{list(v.shape)}" for k, v in outputs.items()))
    notes = {
        "inputs": "call keywords, int32; MultipleChoice inputs are [B, C, S] "
        "(hidden_states/attentions then have batch B*C)",
        "labels": "call keywords; int32 except the regression variant "
        "(float32, passed as tf.Tensor: TF raises on numpy)",
        "outputs": "ModelOutput field names, float32; "
        "hidden_states [L+1, B, S, H] and attentions [L, B, heads, S, S] stacked",
        "loss_legacy": "loss with config.tf_legacy_loss=True (only the active positions / rows, unreduced)",
        "fully_masked_rows": "index (into the input batch, [b] or [b, c]) of rows whose attention_mask is all 0 but "
        "whose ids are real: TF adds -10000 to every key, so these rows reproduce the unmasked attention up to "
        "rounding at ulp(10000) ~ 1e-3 in the scores; compare them with a looser tolerance",
        "weights": "every variable random (seeded), MLM decoder/weight independent of word_embeddings",
    }
    (out_dir / "manifest.json").write_text(json.dumps(dict(notes=notes, fixtures=manifest), indent=1) + "\n")
    return manifest


def write_versions(out_dir: Path, argv: list) -> None:
    import platform
    from importlib import metadata

    tf, transformers = _tf()
    import h5py

    pkgs = ["tensorflow-cpu", "tf-keras", "keras", "transformers", "numpy", "h5py"]
    pip = f"{Path(sys.executable).parent.parent}/bin/pip"
    lines = [
        "# How these fixtures were made",
        "",
        "Generated by `tools/make_tf_goldens.py` in a throwaway virtualenv (never needed by CI):",
        "",
        "```",
        f'{pip} install tensorflow-cpu==2.21.0 "h5py<3.15" numpy==2.4.6 transformers==4.57.6',
        f"{pip} install --no-deps tf-keras==2.21.0",
        "TF_USE_LEGACY_KERAS=1 python " + " ".join(["tools/make_tf_goldens.py"] + argv),
        "```",
        "",
        f"Python {platform.python_version()} ({platform.system()} {platform.machine()}); "
        "torch not installed (not needed).",
        "",
        "| package | version |",
        "|---|---|",
    ]
    for p in pkgs:
        try:
            lines.append(f"| {p} | {metadata.version(p)} |")
        except metadata.PackageNotFoundError:
            pass
    lines += [
        f"| HDF5 (h5py build) | {h5py.version.hdf5_version} |",
        "",
        "keras 3 is only a dependency of tensorflow-cpu; TF_USE_LEGACY_KERAS=1 makes transformers use tf-keras 2.",
        "",
        "Full `pip freeze` of the environment:",
        "",
        "```",
        *sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()),
        "```",
        "",
        f"tf.__version__ = {tf.__version__}, transformers.__version__ = {transformers.__version__}, "
        f"TF_USE_LEGACY_KERAS={os.environ.get('TF_USE_LEGACY_KERAS')}.",
        "",
        "Check: `TF_USE_LEGACY_KERAS=1 python tools/make_tf_goldens.py --verify` reloads every `tf_model.h5` with",
        "`TFMobileBertFor<X>.from_pretrained` and requires bit-identical outputs (the legacy `mlm___cls` fixture is",
        "checked to load with an all-zero head in 4.57.6, as documented).",
        "",
    ]
    (out_dir / "VERSIONS.md").write_text("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--verify", action="store_true", help="only reload the existing fixtures and compare")
    ap.add_argument("--no-verify", action="store_true", help="write the fixtures without reloading them")
    args = ap.parse_args(argv)
    if not args.verify:
        build(args.out)
        write_versions(args.out, [a for a in (argv if argv is not None else sys.argv[1:])])
    failures = 0
    if not args.no_verify:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import check_tf_h5_load

        failures = check_tf_h5_load.check_all(args.out, args.out, atol=0.0, self_check=True)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"total size of {args.out}: {total} bytes")
    if total > MAX_BYTES:
        print(f"ERROR: over {MAX_BYTES} bytes")
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
