"""The tiny random transformers checkpoint that the config, loading, bad-input and output tests share."""

from __future__ import annotations

# true_hidden_size 32, 4 heads: attention.self.query.weight is (32, 32), value.weight (32, 64).
TINY = dict(
    vocab_size=99,
    hidden_size=64,
    embedding_size=16,
    intra_bottleneck_size=32,
    num_attention_heads=4,
    intermediate_size=48,
    num_hidden_layers=2,
    num_feedforward_networks=2,
    max_position_embeddings=24,
    type_vocab_size=2,
    # every used weight (incl. Q/K) moves the outputs >= 4x the tolerance; 0.2 makes the pooler ill-conditioned
    initializer_range=0.1,
)


def make_tiny_hf_model(class_name, seed=0, *, eager=False, perturb_word_embeddings=False, **overrides):
    """A random transformers model of TINY (+ overrides) with every norm weight and bias perturbed, so that none
    is a no-op; eager=True returns attention probabilities; perturb_word_embeddings also makes the [PAD] row
    non-zero (the trigram's padding neighbour)."""
    import torch
    import transformers

    kwargs = {**TINY, **overrides}
    if eager:
        kwargs["attn_implementation"] = "eager"
    cfg = transformers.MobileBertConfig(**kwargs)
    torch.manual_seed(seed)
    model = getattr(transformers, class_name)(cfg).eval()
    gen = torch.Generator().manual_seed(seed + 1000)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif perturb_word_embeddings and name.endswith("word_embeddings.weight"):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    return model
