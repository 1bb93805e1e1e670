"""The pure-NumPy MobileBERT engine: the readable oracle, and the fallback when the native module is missing.

It follows transformers' MobileBERT exactly, quirks included (see shared/reference/mobilebert_spec.md):
trigram neighbours are [x(t+1) | x(t) | x(t-1)] with [PAD] tokens as real neighbours; Q and K come from the shared
bottleneck while V comes from the layer input; NoNorm is x*w+b; under layer_norm, embeddings.LayerNorm and
output.LayerNorm use eps 1e-5 while every other site uses config.layer_norm_eps; masked keys get float32 min.
The TF twins run the same graph with transformers' TensorFlow semantics (`semantics="tf"`): the config eps at every
norm and -10000 added to masked keys (which only matters for a fully masked row).

The primitives live in `NumpyOps`; the native backend swaps in C++ kernels by subclassing it, so the graph below
is the single description of the model's math.
"""

from __future__ import annotations

import numpy as np

from .activations import apply_activation
from .config import MobileBertConfig
from .quantization import Int8Weight, linear_weight

TORCH_DEFAULT_LAYER_NORM_EPS = 1e-5
_F32_MIN = np.finfo(np.float32).min
TF_MASK_VALUE = -10000.0
SEMANTICS = ("pt", "tf")


def quirks(cfg: MobileBertConfig, semantics: str = "pt") -> tuple[float, float]:
    """(eps of embeddings.LayerNorm and output.LayerNorm, value added to masked attention scores)."""
    if semantics == "pt":
        return TORCH_DEFAULT_LAYER_NORM_EPS, float(_F32_MIN)
    if semantics == "tf":
        return float(cfg.layer_norm_eps), TF_MASK_VALUE
    raise ValueError(f"semantics must be one of {SEMANTICS}, got {semantics!r}")


class NumpyOps:
    """float32 NumPy implementations of the engine's primitives."""

    name = "reference"

    def linear(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        """x @ weight.T + bias, with weight in PyTorch's [out, in] layout (or an int8 Int8Weight)."""
        if isinstance(weight, Int8Weight):
            return weight(x, bias)
        y = np.matmul(x, weight.T)
        if bias is not None:
            y += bias
        return y

    def add_norm(self, x, weight, beta, *, bias=None, residual=None, layer_norm=False, eps=1e-12):
        """norm(x + bias + residual) over the last axis; NoNorm is the affine map y*weight + beta."""
        y = x if bias is None else x + bias
        if residual is not None:
            y = y + residual
        if not layer_norm:
            return y * weight + beta
        mean = y.mean(axis=-1, keepdims=True)
        centred = y - mean
        var = np.mean(centred * centred, axis=-1, keepdims=True)
        return centred / np.sqrt(var + np.float32(eps)) * weight + beta

    def activation(self, name: str, x: np.ndarray) -> np.ndarray:
        return apply_activation(name, x)

    def attention(self, q, k, v, keep, num_heads, want_probs, mask_value=_F32_MIN):
        """Multi-head attention. q, k, v: [B, L, h*d]; keep: [B, L] bool (False = masked key) or None.

        Returns (context [B, L, h*d], probabilities [B, h, L, L] or None).
        """
        B, L, width = q.shape
        d = width // num_heads

        def heads(t):
            return t.reshape(B, L, num_heads, d).transpose(0, 2, 1, 3)

        scores = np.matmul(heads(q), heads(k).transpose(0, 1, 3, 2)) * np.float32(d ** -0.5)
        if keep is not None:
            # Added, as HF adds its mask: float32 min turns every masked score into -FLT_MAX (a fully masked row
            # becomes uniform), TensorFlow's -10000 keeps the differences between them.
            scores = np.where(keep[:, None, None, :], scores, scores + np.float32(mask_value))
        scores -= scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=-1, keepdims=True)
        context = np.matmul(probs, heads(v)).transpose(0, 2, 1, 3).reshape(B, L, width)
        return context, (probs if want_probs else None)


class Norms:
    """Which norm each site uses, with HF's eps quirk."""

    def __init__(self, cfg: MobileBertConfig, semantics: str = "pt"):
        self.layer_norm = cfg.normalization_type == "layer_norm"
        self.config_eps = float(cfg.layer_norm_eps)
        self.quirk_eps, self.mask_value = quirks(cfg, semantics)


def embed(cfg, params, ops, input_ids, inputs_embeds, token_type_ids, position_ids, semantics="pt"):
    """Embedding output [B, L, H] (hidden_states[0])."""
    p = "embeddings."
    x = params[p + "word_embeddings.weight"][input_ids] if inputs_embeds is None else inputs_embeds
    B, L, E = x.shape
    if cfg.trigram_input:
        zero = np.zeros((B, 1, E), np.float32)
        # Slot order is next | current | previous; zeros only at the two ends of the (padded) tensor.
        x = np.concatenate(
            [np.concatenate([x[:, 1:], zero], 1), x, np.concatenate([zero, x[:, :-1]], 1)], axis=2
        )
    if cfg.trigram_input or cfg.embedding_size != cfg.hidden_size:
        t = p + "embedding_transformation."
        x = ops.linear(x, linear_weight(params, t), params[t + "bias"])
    x = x + params[p + "position_embeddings.weight"][position_ids]
    x = x + params[p + "token_type_embeddings.weight"][token_type_ids]
    return ops.add_norm(x, params[p + "LayerNorm.weight"], params[p + "LayerNorm.bias"],
                        layer_norm=cfg.normalization_type == "layer_norm", eps=quirks(cfg, semantics)[0])


def _dense_norm(ops, params, norms, prefix, norm_prefix, x, residual, eps=None):
    """norm(x @ W.T + b + residual) for the dense layer `prefix` and the norm `norm_prefix`."""
    weight, bias = linear_weight(params, prefix), params[prefix + "bias"]
    if isinstance(weight, Int8Weight):  # the bias goes into the dequantising fma, as in the native tile
        y, bias = weight(x, bias), None
    else:
        y = ops.linear(x, weight)
    return ops.add_norm(
        y, params[norm_prefix + "LayerNorm.weight"], params[norm_prefix + "LayerNorm.bias"], bias=bias,
        residual=residual, layer_norm=norms.layer_norm, eps=norms.config_eps if eps is None else eps,
    )


def encoder_layer(cfg, params, ops, i, X, keep, want_probs, semantics="pt"):
    """One MobileBERT block. X: [B, L, H]. Returns (Y [B, L, H], attention probabilities or None)."""
    p = f"encoder.layer.{i}."
    norms = Norms(cfg, semantics)
    if cfg.use_bottleneck:
        layer_input = _dense_norm(ops, params, norms, p + "bottleneck.input.dense.", p + "bottleneck.input.", X, None)
        if cfg.use_bottleneck_attention:
            q_in = k_in = v_in = layer_input
        else:  # key_query_shared_bottleneck (the other combination is rejected by the config)
            q_in = k_in = _dense_norm(ops, params, norms, p + "bottleneck.attention.dense.",
                                      p + "bottleneck.attention.", X, None)
            v_in = X
    else:
        q_in = k_in = v_in = layer_input = X

    a = p + "attention.self."
    q = ops.linear(q_in, linear_weight(params, a + "query."), params[a + "query.bias"])
    k = ops.linear(k_in, linear_weight(params, a + "key."), params[a + "key.bias"])
    v = ops.linear(v_in, linear_weight(params, a + "value."), params[a + "value.bias"])
    context, probs = ops.attention(q, k, v, keep, cfg.num_attention_heads, want_probs, norms.mask_value)
    A = _dense_norm(ops, params, norms, p + "attention.output.dense.", p + "attention.output.", context, layer_input)

    for j in range(cfg.num_feedforward_networks - 1):
        f = f"{p}ffn.{j}."
        F = ops.activation(cfg.hidden_act, ops.linear(A, linear_weight(params, f + "intermediate.dense."),
                                                      params[f + "intermediate.dense.bias"]))
        A = _dense_norm(ops, params, norms, f + "output.dense.", f + "output.", F, A)

    F = ops.activation(cfg.hidden_act, ops.linear(A, linear_weight(params, p + "intermediate.dense."),
                                                  params[p + "intermediate.dense.bias"]))
    # HF builds output.LayerNorm without passing the config eps: torch's default 1e-5 applies (not in TF).
    O = _dense_norm(ops, params, norms, p + "output.dense.", p + "output.", F, A, eps=norms.quirk_eps)
    if not cfg.use_bottleneck:
        return O, probs
    Y = _dense_norm(ops, params, norms, p + "output.bottleneck.dense.", p + "output.bottleneck.", O, X)
    return Y, probs


def encode(cfg, params, ops, input_ids, inputs_embeds, attention_mask, token_type_ids, position_ids,
           output_hidden_states=False, output_attentions=False, semantics="pt"):
    """Embeddings + every layer. Inputs are validated arrays (see inputs.py).

    Returns (last_hidden_state, hidden_states tuple or None, attentions tuple or None).
    """
    keep = None
    if attention_mask is not None and not attention_mask.all():
        keep = attention_mask.astype(bool)  # HF drops the mask entirely when nothing is padded
    h = embed(cfg, params, ops, input_ids, inputs_embeds, token_type_ids, position_ids, semantics)
    hidden_states = [h] if output_hidden_states else None
    attentions = [] if output_attentions else None
    for i in range(cfg.num_hidden_layers):
        h, probs = encoder_layer(cfg, params, ops, i, h, keep, output_attentions, semantics)
        if output_hidden_states:
            hidden_states.append(h)
        if output_attentions:
            attentions.append(probs)
    return h, (tuple(hidden_states) if output_hidden_states else None), \
        (tuple(attentions) if output_attentions else None)


def pool(cfg, params, ops, last_hidden_state):
    """Pooler: tanh(dense(h_CLS)) with classifier_activation, the raw CLS vector without."""
    first = last_hidden_state[:, 0]
    if not cfg.classifier_activation:
        return first
    return np.tanh(ops.linear(first, params["pooler.dense.weight"], params["pooler.dense.bias"]))


def mlm_transform(cfg, params, ops, hidden):
    """The MLM head's transform: a real LayerNorm with the config eps, even in no_norm models."""
    p = "cls.predictions.transform."
    t = ops.activation(cfg.hidden_act, ops.linear(hidden, params[p + "dense.weight"], params[p + "dense.bias"]))
    return ops.add_norm(t, params[p + "LayerNorm.weight"], params[p + "LayerNorm.bias"], layer_norm=True,
                        eps=float(cfg.layer_norm_eps))


def mlm_logits(cfg, params, ops, hidden):
    """logits = t[:, :E] @ decoder.T + t[:, E:] @ D + bias, with D = cls.predictions.dense.weight [H-E, V]."""
    t = mlm_transform(cfg, params, ops, hidden)
    E = cfg.embedding_size
    decoder = params.get("cls.predictions.decoder.weight", params["embeddings.word_embeddings.weight"])
    bias = params.get("cls.predictions.decoder.bias", params["cls.predictions.bias"])
    logits = np.matmul(t[..., :E], decoder.T)
    if cfg.hidden_size > E:
        logits += np.matmul(t[..., E:], params["cls.predictions.dense.weight"])
    logits += bias
    return logits
