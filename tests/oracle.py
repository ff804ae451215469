"""Helpers to build stock-transformers oracles and our twins with the same weights."""

from __future__ import annotations

import torch
import transformers

import hf_w2v2

# Small configs of the two released families; kernels/strides as in the paper.
FAMILIES: dict[str, dict] = {
    # facebook/wav2vec2-base: group norm, post-LN, no conv bias, even pos-conv kernel.
    "base": dict(feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False, num_conv_pos_embeddings=16),
    # facebook/wav2vec2-large-lv60: layer norm, pre-LN ("stable layer norm"), conv bias.
    "large-lv60": dict(
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True, num_conv_pos_embeddings=15
    ),
}

SMALL = dict(
    hidden_size=48,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=96,
    conv_dim=(32, 32, 32, 32, 32, 32, 32),
    num_conv_pos_embedding_groups=4,
    num_codevectors_per_group=12,
    num_codevector_groups=2,
    codevector_dim=24,
    proj_codevector_dim=20,
    num_negatives=6,
    classifier_proj_size=16,
    tdnn_dim=(24, 24, 40),
    tdnn_kernel=(3, 3, 1),
    tdnn_dilation=(1, 2, 1),
    xvector_output_dim=16,
    vocab_size=12,
    num_labels=5,
)


def config_kwargs(family: str, **overrides) -> dict:
    kwargs = dict(SMALL)
    kwargs.update(FAMILIES[family])
    kwargs.update(overrides)
    return kwargs


def make_pair(name: str, family: str, seed: int = 0, **overrides):
    """Stock model with seeded random weights and our model with the same state dict, both in eval mode."""
    kwargs = config_kwargs(family, **overrides)
    torch.manual_seed(seed)
    stock = getattr(transformers, name)(transformers.Wav2Vec2Config(**kwargs)).eval()
    ours = getattr(hf_w2v2, name)(hf_w2v2.Wav2Vec2Config(**kwargs)).eval()
    # Randomise norms and biases too, so that a swapped or ignored parameter shows.
    with torch.no_grad():
        for p in stock.parameters():
            p.add_(0.05 * torch.randn_like(p))
    missing, unexpected = ours.load_state_dict(stock.state_dict(), strict=True)
    assert not missing and not unexpected
    return stock, ours


def rel_diff(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max |ours - ref| / max |ref| (0 when both are zero)."""
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    scale = ref.abs().max().item()
    return (ours - ref).abs().max().item() / (scale if scale > 0 else 1.0)


def audio_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded random audio (B, T) and its 0/1 attention mask."""
    g = torch.Generator().manual_seed(seed)
    batch = torch.zeros(len(lengths), max(lengths))
    mask = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for i, n in enumerate(lengths):
        batch[i, :n] = torch.randn(n, generator=g)
        mask[i, :n] = 1
    return batch, mask
