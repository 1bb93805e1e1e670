"""The one-call native engine: thread-count invariance, concurrent callers, scoring chosen MLM positions,
and its refusals. Parity with transformers is in test_parity_hf.py (both backends)."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import mobilebert_lite as mbl
from mobilebert_lite.activations import ACTIVATIONS

pytestmark = pytest.mark.skipif("native" not in mbl.BACKENDS, reason="native module not built")

SMALL = dict(vocab_size=120, hidden_size=64, embedding_size=32, intra_bottleneck_size=32, num_attention_heads=4,
             intermediate_size=48, num_hidden_layers=3, classifier_activation=True)


def _perturbed(cls, cfg, seed=0):
    """A model whose every parameter is away from HF's init (NoNorm scales != 1, biases != 0)."""
    rng = np.random.default_rng(seed)
    base = cls(cfg, backend="reference", seed=seed)
    return {k: (v + rng.normal(0, 0.1, v.shape)).astype(np.float32) for k, v in base.params.items()}


def _inputs(rng, cfg, batch, length):
    ids = rng.integers(0, cfg.vocab_size, (batch, length))
    mask = np.ones_like(ids)
    for b in range(1, batch):
        mask[b, length - b:] = 0
    types = np.zeros_like(ids)
    types[:, length // 2:] = 1
    return dict(input_ids=ids, attention_mask=mask, token_type_ids=types)


@pytest.mark.parametrize("cls", [mbl.MobileBertForPreTraining, mbl.MobileBertForQuestionAnswering])
def test_thread_count_does_not_change_results(cls):
    # K is never split across threads and attention runs one task per (sequence, head): bitwise equal.
    cfg = mbl.MobileBertConfig(**SMALL)
    params = _perturbed(cls, cfg)
    inputs = _inputs(np.random.default_rng(1), cfg, batch=5, length=37)
    outs = []
    for threads in (1, 2, 3):
        model = cls(cfg, params, backend="native", num_threads=threads)
        outs.append(model(**inputs, output_hidden_states=True, output_attentions=True))
    for other in outs[1:]:
        for key in outs[0]:
            a, b = outs[0][key], other[key]
            for x, y in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
                np.testing.assert_array_equal(x, y, err_msg=key)


def test_concurrent_callers_get_their_own_results():
    cfg = mbl.MobileBertConfig(**SMALL)
    params = _perturbed(mbl.MobileBertForMaskedLM, cfg)
    model = mbl.MobileBertForMaskedLM(cfg, params, backend="native", num_threads=2)
    rng = np.random.default_rng(2)
    jobs = [_inputs(rng, cfg, batch=1 + i % 3, length=5 + 7 * i) for i in range(8)]
    expected = [model(**job).logits for job in jobs]
    errors, results = [], {}

    def worker(tid):
        try:
            for rep in range(5):
                i = (tid + rep) % len(jobs)
                results[(tid, rep)] = (i, model(**jobs[i]).logits)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(results) == 20
    for i, logits in results.values():
        np.testing.assert_array_equal(logits, expected[i])


@pytest.mark.parametrize("backend", ["reference", "native"])
def test_logits_at_scores_only_chosen_positions(backend):
    cfg = mbl.MobileBertConfig(**SMALL)
    params = _perturbed(mbl.MobileBertForMaskedLM, cfg, seed=3)
    model = mbl.MobileBertForMaskedLM(cfg, params, backend=backend)
    inputs = _inputs(np.random.default_rng(4), cfg, batch=3, length=11)
    full = model(**inputs).logits
    positions = np.array([[0, 0], [2, 7], [1, 10], [0, 3]])
    picked = model.logits_at(positions, **inputs)
    assert picked.shape == (4, cfg.vocab_size)
    np.testing.assert_allclose(picked, full[positions[:, 0], positions[:, 1]], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        model.logits_at([[3, 0]], **inputs)
    with pytest.raises(ValueError, match=r"shape \[P, 2\]"):
        model.logits_at([1, 2], **inputs)


@pytest.mark.parametrize("hidden_act", sorted(ACTIVATIONS))
def test_every_config_activation_runs_natively(hidden_act):
    # Every activation the config accepts has a native kernel: none has to fall back or refuse.
    cfg = mbl.MobileBertConfig(**{**SMALL, "hidden_act": hidden_act, "num_hidden_layers": 1})
    params = _perturbed(mbl.MobileBertForMaskedLM, cfg, seed=5)
    inputs = _inputs(np.random.default_rng(6), cfg, batch=2, length=6)
    ref = mbl.MobileBertForMaskedLM(cfg, params, backend="reference")(**inputs).logits
    nat = mbl.MobileBertForMaskedLM(cfg, params, backend="native")(**inputs).logits
    assert np.abs(nat - ref).max() <= 1e-4 * max(1.0, np.abs(ref).max())


def test_native_engine_refuses_bad_arrays_without_crashing():
    from mobilebert_lite import _C

    cfg = mbl.MobileBertConfig(**SMALL)
    model = mbl.MobileBertModel(cfg, backend="native")
    engine = model.engine._engine
    ids = np.zeros((1, 4), np.int64)
    pos = np.arange(4, dtype=np.int64)[None]
    with pytest.raises(ValueError, match="input_ids holds 120, out of range"):
        engine.forward(np.full((1, 4), 120, np.int64), None, ids, pos, None)
    with pytest.raises(ValueError, match="int64"):
        engine.forward(ids.astype(np.int32), None, ids, pos, None)
    with pytest.raises(ValueError, match="exactly one of input_ids and inputs_embeds"):
        engine.forward(None, None, ids, pos, None)
    assert isinstance(_C.runtime_info()["threads"], int)


def test_bad_forced_isa_fails_at_load(tmp_path):
    code = ("import mobilebert_lite as m\n"
            "cfg = m.MobileBertConfig(vocab_size=20, hidden_size=16, embedding_size=8, intra_bottleneck_size=8,"
            " intermediate_size=8, num_hidden_layers=1)\n"
            "m.MobileBertModel(cfg, backend='native')\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MBL_FORCE_ISA": "bogus"},
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    assert "unknown MBL_FORCE_ISA value 'bogus'" in proc.stderr
