"""Random-weight Hugging Face MobileBERT checkpoints for the parity tests.

Every parameter of the HF model is overwritten with deterministic random values chosen so that no bug can hide
behind a trivial value:

* NoNorm / LayerNorm weights ~ U(0.5, 1.5) (never 1),
* every bias (including ``cls.predictions.bias``) ~ N(0, 0.1) (never 0),
* embedding tables ~ N(0, EMBEDDING_STD), including the [PAD] row 0 of ``word_embeddings`` (HF zero-initialises
  it through ``padding_idx``; trained checkpoints have it non-zero, and the trigram input treats [PAD] tokens as
  real neighbours, so a zero row would hide a wrong trigram implementation),
* linear weights ~ N(0, gain / sqrt(fan_in)); ``cls.predictions.dense.weight`` ([H - E, V], used untransposed)
  uses fan-in ``H - E``; then every nn.Linear that runs is rescaled (``calibrate_linears``) so that its output
  has std 1 (std 4 in front of the activation function, so relu6/gelu_10/... reach their clipped regions):
  activations are O(1) everywhere instead of the ~0 that HF's ``initializer_range=0.02`` init gives, and the
  NoNorm residual stream does not explode.

The model is saved with ``save_pretrained`` (safetensors) and re-loaded from disk with
``attn_implementation="eager"`` (so ``output_attentions`` returns the probabilities), in eval mode. The checkpoint
on disk is checked to load into HF without missing/unexpected keys and to reproduce the perturbed weights
bit for bit, and the model is checked to produce finite, non-trivial outputs on which HF's own fp32 result is
within CONDITIONING_LIMIT of its fp64 result (so the parity tolerance measures our error, not HF's rounding).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

CLASS_NAMES = (
    "MobileBertModel",
    "MobileBertForPreTraining",
    "MobileBertForMaskedLM",
    "MobileBertForNextSentencePrediction",
    "MobileBertForSequenceClassification",
    "MobileBertForMultipleChoice",
    "MobileBertForTokenClassification",
    "MobileBertForQuestionAnswering",
)

EMBEDDING_STD = 0.5
BIAS_STD = 0.1
NORM_WEIGHT_RANGE = (0.5, 1.5)
DEFAULT_SEED = 1234


def _quiet_transformers():
    import torch
    import transformers

    # The models are tiny: torch's intra-op thread pool only adds overhead (ms per op on 2 busy cores).
    torch.set_num_threads(1)

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def perturb_parameters(model, seed: int = DEFAULT_SEED, gain: float = 1.0) -> int:
    """Overwrite every parameter of ``model`` in place; returns the number of parameters touched."""
    import torch

    config = model.config
    gen = torch.Generator().manual_seed(seed)
    touched = 0
    with torch.no_grad():
        # named_parameters() de-duplicates tied parameters (decoder.weight is word_embeddings.weight, ...).
        for name, p in model.named_parameters():
            touched += 1
            if p.numel() == 0:  # cls.predictions.dense.weight when hidden_size == embedding_size
                continue
            shape = tuple(p.shape)
            if name.endswith("LayerNorm.weight"):
                lo, hi = NORM_WEIGHT_RANGE
                new = lo + (hi - lo) * torch.rand(shape, generator=gen)
            elif name.endswith("bias"):
                new = BIAS_STD * torch.randn(shape, generator=gen)
            elif "embeddings." in name and "embedding_transformation" not in name:
                new = EMBEDDING_STD * torch.randn(shape, generator=gen)
            elif name.endswith("cls.predictions.dense.weight"):
                fan_in = config.hidden_size - config.embedding_size
                new = torch.randn(shape, generator=gen) * (gain / math.sqrt(fan_in))
            elif p.dim() == 2:
                new = torch.randn(shape, generator=gen) * (gain / math.sqrt(shape[1]))
            else:
                raise AssertionError(f"parameter {name} {shape} has no perturbation rule")
            p.copy_(new.to(p.dtype))
    return touched


def _check_perturbed(model):
    """Every parameter must be away from its trivial value."""
    import torch

    pad = model.config.pad_token_id
    for name, p in model.named_parameters():
        if p.numel() == 0:
            continue
        if name.endswith("LayerNorm.weight"):
            assert torch.all((p >= 0.5) & (p <= 1.5)), name
            assert torch.max(torch.abs(p - 1)) > 0.1, name
        else:
            zeros = p.numel() - int(torch.count_nonzero(p))
            assert zeros <= max(1, p.numel() // 100000), f"{name} has {zeros} exact zeros"
    emb = model.get_input_embeddings().weight
    assert torch.max(torch.abs(emb[pad])) > 0.1, "the [PAD] row of word_embeddings must be non-zero"


def _calibration_inputs(model, rows=3, L=8, seed=0):
    """A small padded pair batch (with [PAD]=0 inside) as torch kwargs for the model's class."""
    import torch

    cfg = model.config
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, cfg.vocab_size, size=(rows, L))
    mask = np.ones((rows, L), dtype=np.int64)
    types = np.zeros((rows, L), dtype=np.int64)
    lengths = [L, L - 3, 2][:rows]
    for r, n in enumerate(lengths):
        ids[r, n:] = 0
        mask[r, n:] = 0
        types[r, n // 2:n] = 1
    kwargs = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask),
              "token_type_ids": torch.tensor(types)}
    if type(model).__name__ == "MobileBertForMultipleChoice":
        kwargs = {k: v[:, None, :].expand(rows, 2, L).contiguous() for k, v in kwargs.items()}
    return kwargs


# Standard deviation each nn.Linear's output (before its bias) is calibrated to. Linears that feed the activation
# function get a wider range so that clipping activations (relu6, gelu_10, hardswish, ...) reach their clipped
# regions; everything else is O(1) so that softmax scores and the pooler's tanh are well conditioned.
ACTIVATION_INPUT_STD = 4.0
LINEAR_OUTPUT_STD = 1.0


def calibrate_linears(model):
    """One forward pass that rescales every nn.Linear weight, in execution order, so its output (minus bias)
    has a fixed standard deviation on a calibration batch (an LSUV-style init). Without it the NoNorm residual
    stream grows layer after layer and fp32 rounding in HF itself (attention softmax, pooler tanh) exceeds
    the 1e-5 parity tolerance. Linears that never run (e.g. embedding_transformation when not applied) keep
    their 1/sqrt(fan_in) scale. Deterministic."""
    import torch
    from torch import nn

    done = set()
    handles = []

    def make_hook(name):
        target = ACTIVATION_INPUT_STD if name.endswith(("intermediate.dense", "transform.dense")) else (
            LINEAR_OUTPUT_STD)

        def hook(module, args, out):
            if id(module) in done:
                return out
            done.add(id(module))
            bias = module.bias if module.bias is not None else 0.0
            core = out - bias
            std = float(core.std())
            if not np.isfinite(std) or std == 0.0 or core.numel() < 2:
                return out
            c = target / std
            module.weight.mul_(c)
            return core * c + bias

        return hook

    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(make_hook(name)))
    try:
        with torch.no_grad():
            model(**_calibration_inputs(model, seed=1))
    finally:
        for h in handles:
            h.remove()
    return len(done)


# HF's own fp32 output must be this close to its fp64 output (relative to max(1, max|x|)) on every tensor,
# so that the 1e-5 parity tolerance measures our error and not HF's rounding noise.
CONDITIONING_LIMIT = 2e-6


def fp64_model(model):
    import copy

    return copy.deepcopy(model).double().eval()


def _flat_outputs(out):
    for key, value in out.items():
        values = value if isinstance(value, tuple) else (value,)
        for i, v in enumerate(values):
            yield f"{key}[{i}]" if isinstance(value, tuple) else key, v


def _sanity_forward(model):
    """Finite, non-trivial and well-conditioned outputs on a small padded batch."""
    import torch

    kwargs = _calibration_inputs(model, seed=0)
    flags = dict(output_hidden_states=True, output_attentions=True, return_dict=True)
    with torch.no_grad():
        out = model(**kwargs, **flags)
        out64 = fp64_model(model)(**kwargs, **flags)
    ref = dict(_flat_outputs(out64))
    for name, v in _flat_outputs(out):
        assert torch.isfinite(v).all(), f"{name} not finite"
        scale = float(v.abs().max())
        assert scale < 1e4, f"{name} blows up: max|x| = {scale:g}"
        if v.numel() > 1:
            assert float(v.std()) > 1e-2, f"{name} is (nearly) constant: std {float(v.std()):g}"
        err = float((v.double() - ref[name]).abs().max()) / max(1.0, float(ref[name].abs().max()))
        assert err <= CONDITIONING_LIMIT, (
            f"{name}: HF fp32 differs from HF fp64 by {err:.2e} (relative): checkpoint too ill-conditioned "
            "for the parity tolerance")


@dataclass(frozen=True)
class HFCheckpoint:
    path: str
    model: object  # the HF model, loaded from `path`, eval mode, eager attention
    class_name: str
    config_kwargs: dict

    @property
    def config(self):
        return self.model.config

    def __iter__(self):  # path, model = hf_checkpoint(...)
        return iter((self.path, self.model))


def _freeze(config_kwargs: dict) -> str:
    return json.dumps(config_kwargs, sort_keys=True, default=str)


class HFCheckpointFactory:
    """Builds (and caches for the session) random HF checkpoints in ``base_dir``."""

    def __init__(self, base_dir: str):
        self.base_dir = str(base_dir)
        self._cache: dict = {}

    def __call__(self, class_name: str, config_kwargs: dict, seed: int = DEFAULT_SEED, gain: float = 1.0):
        key = (class_name, _freeze(config_kwargs), seed, gain)
        if key not in self._cache:
            path = os.path.join(self.base_dir, f"ckpt{len(self._cache):04d}_{class_name}")
            self._cache[key] = build_hf_checkpoint(class_name, config_kwargs, path, seed=seed, gain=gain)
        return self._cache[key]


def build_hf_checkpoint(class_name: str, config_kwargs: dict, path: str, seed: int = DEFAULT_SEED,
                        gain: float = 1.0) -> HFCheckpoint:
    """Random-weight HF ``class_name`` with ``MobileBertConfig(**config_kwargs)``, saved to ``path``."""
    import torch

    transformers = _quiet_transformers()
    assert class_name in CLASS_NAMES, class_name
    cls = getattr(transformers, class_name)
    torch.manual_seed(seed)
    config = transformers.MobileBertConfig(**config_kwargs)
    built = cls(config).eval()
    touched = perturb_parameters(built, seed=seed, gain=gain)
    assert touched == len(list(built.named_parameters()))
    calibrate_linears(built)
    _check_perturbed(built)
    os.makedirs(path, exist_ok=True)
    built.save_pretrained(path)  # safetensors by default
    assert os.path.isfile(os.path.join(path, "model.safetensors")), os.listdir(path)
    assert os.path.isfile(os.path.join(path, "config.json")), os.listdir(path)

    model, info = cls.from_pretrained(path, attn_implementation="eager", output_loading_info=True)
    model.eval()
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info[k], f"HF reload of its own checkpoint reports {k}: {info[k]}"
    ref = built.state_dict()
    got = model.state_dict()
    assert ref.keys() == got.keys()
    for k in ref:
        assert torch.equal(ref[k], got[k]), f"HF reload changed {k}"
    _check_perturbed(model)
    _sanity_forward(model)
    return HFCheckpoint(path=path, model=model, class_name=class_name, config_kwargs=dict(config_kwargs))
