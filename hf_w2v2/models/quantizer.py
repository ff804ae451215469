"""Gumbel product quantizer (paper section 2, "Quantization module", eq. 1).

Shape legend: B batch, F frames, C encoder channels, G codebook groups,
V entries per codebook, Q codevector dim (Q = G x Q/G).

Each frame's features are projected to G x V logits. In training one entry per
group is picked with a straight-through hard Gumbel-softmax at temperature tau;
in eval the argmax is taken. The G picked entries (each of size Q/G) are
concatenated. The perplexity of the codebook usage, averaged over (masked)
frames, feeds the diversity loss (eq. 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .configuration import Wav2Vec2Config


def gumbel_softmax_hard(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """One-hot samples of ``softmax((logits + g) / tau)`` along the last axis, with straight-through gradients.

    ``g`` is standard Gumbel noise drawn from ``generator`` on the logits' device.
    """
    uniform = torch.rand(logits.shape, device=logits.device, dtype=logits.dtype, generator=generator)
    gumbels = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(logits.dtype).tiny)))
    soft = ((logits + gumbels) / tau).softmax(dim=-1)
    hard = F.one_hot(soft.argmax(dim=-1), soft.shape[-1]).to(soft.dtype)
    return hard - soft.detach() + soft


def codebook_perplexity(probs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over groups of ``exp(entropy)`` of the mean codeword distribution.

    ``probs`` (N, G, V) per-frame distributions; ``mask`` (N,) selects the frames
    to average over (all when None). The result lies in [G, G x V].
    """
    if mask is not None:
        weights = mask.to(probs.dtype)[:, None, None]  # (N,) -> (N, 1, 1)
        marginal = (probs * weights).sum(dim=0) / mask.sum().clamp_min(1)  # (G, V); no NaN for an empty mask
    else:
        marginal = probs.mean(dim=0)  # (G, V)
    entropy = -torch.xlogy(marginal, marginal).sum(dim=-1)  # (G,)
    return entropy.exp().sum()


class GumbelVectorQuantizer(nn.Module):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.num_groups = config.num_codevector_groups
        self.num_vars = config.num_codevectors_per_group
        entry_dim = config.codevector_dim // self.num_groups
        self.codevectors = nn.Parameter(torch.empty(1, self.num_groups * self.num_vars, entry_dim))
        self.weight_proj = nn.Linear(config.conv_dim[-1], self.num_groups * self.num_vars)
        self.temperature = 2.0
        """Gumbel-softmax temperature tau; set per optimizer step by :mod:`hf_w2v2.pretrain.temperature`."""

    def forward(
        self,
        features: torch.Tensor,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantize ``features`` (B, F, C) -> (B, F, Q); also return the perplexity over ``mask`` frames."""
        b, f, _ = features.shape
        logits = self.weight_proj(features).view(b * f, self.num_groups, self.num_vars)  # (B, F, GV) -> (BF, G, V)
        flat_mask = None if mask is None else mask.reshape(b * f)  # (B, F) -> (BF,)
        if self.training:
            one_hot = gumbel_softmax_hard(logits.float(), self.temperature, generator).type_as(logits)
            perplexity = codebook_perplexity(logits.float().softmax(dim=-1), flat_mask)
        else:
            one_hot = F.one_hot(logits.argmax(dim=-1), self.num_vars).type_as(logits)
            perplexity = codebook_perplexity(one_hot, flat_mask)
        one_hot = one_hot.view(b * f, self.num_groups, self.num_vars)  # (BF, G, V)
        codebooks = self.codevectors.view(self.num_groups, self.num_vars, -1)  # (1, GV, Q/G) -> (G, V, Q/G)
        # Select entries as a one-hot weighted sum (one batched matmul per group, no (BF, GV, Q/G)
        # temporary) so that straight-through gradients reach the logits.
        picked = torch.einsum("ngv,gvd->ngd", one_hot, codebooks.to(one_hot.dtype))  # (BF, G, Q/G)
        return picked.reshape(b, f, -1), perplexity  # (BF, G, Q/G) -> (B, F, Q)
