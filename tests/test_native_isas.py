"""The whole model on the native backend under every ISA this CPU supports (MBL_FORCE_ISA), vs the NumPy engine.

MBL_FORCE_ISA is read once per process, so each ISA runs in its own subprocess. The reference engine is checked
against transformers elsewhere; here native must agree with it within DESIGN.md's native tolerance.
"""

import json
import os
import subprocess
import sys

import pytest

import mobilebert_lite as mbl

pytestmark = pytest.mark.skipif("native" not in mbl.BACKENDS, reason="native module not built")

CONFIGS = {
    "uncased_layout": {},
    "tiny_layout": {"use_bottleneck_attention": True, "num_feedforward_networks": 2},
    "layer_norm_gelu": {"normalization_type": "layer_norm", "hidden_act": "gelu", "layer_norm_eps": 1e-3},
    "no_bottleneck_gelu_new": {"use_bottleneck": False, "trigram_input": False, "hidden_act": "gelu_new"},
    "odd_sizes_silu": {"vocab_size": 101, "hidden_size": 60, "embedding_size": 20, "intra_bottleneck_size": 24,
                       "num_attention_heads": 3, "intermediate_size": 37, "hidden_act": "silu"},
}

_SCRIPT = r"""
import json, sys
import numpy as np
import mobilebert_lite as mbl

configs = json.loads(sys.argv[1])
out = {"isa": mbl.runtime_info()["isa"]}
rng = np.random.default_rng(0)
for name, over in configs.items():
    kw = dict(vocab_size=99, hidden_size=64, embedding_size=32, intra_bottleneck_size=32, num_attention_heads=4,
              intermediate_size=48, num_hidden_layers=2, classifier_activation=True)
    kw.update(over)
    cfg = mbl.MobileBertConfig(**kw)
    worst = 0.0
    for cls in (mbl.MobileBertForPreTraining, mbl.MobileBertForQuestionAnswering):
        ref = cls(cfg, backend="reference", seed=1)
        # Perturb every parameter so NoNorm/LayerNorm scales and biases are away from 1 and 0.
        params = {k: (v + rng.normal(0, 0.1, v.shape)).astype(np.float32) for k, v in ref.params.items()}
        ref = cls(cfg, params, backend="reference")
        nat = cls(cfg, params, backend="native")
        ids = rng.integers(0, cfg.vocab_size, (3, 17))
        mask = np.ones_like(ids)
        mask[1, 11:] = 0
        a = ref(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        b = nat(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        for key in a:
            xs = a[key] if isinstance(a[key], tuple) else (a[key],)
            ys = b[key] if isinstance(b[key], tuple) else (b[key],)
            for x, y in zip(xs, ys):
                worst = max(worst, float(np.abs(x - y).max() / max(1.0, np.abs(x).max())))
    out[name] = worst
print(json.dumps(out))
"""


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512", "neon"])
def test_model_native_vs_reference_per_isa(isa, tmp_path):
    supported = mbl.runtime_info()["supported_isas"]
    if isa not in supported:
        pytest.skip(f"{isa} is not supported by this CPU/build ({supported})")
    env = {**os.environ, "MBL_FORCE_ISA": isa}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(CONFIGS)], env=env, capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)  # not the source tree: import the installed package
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result.pop("isa") == isa
    for name, err in result.items():
        assert err <= 1e-4, f"{isa}/{name}: native vs reference relative error {err:.3e} > 1e-4"
