"""Losses of wav2vec 2.0 and its heads, as pure functions.

Shape legend: B batch, F frames, P projected dim, K negatives, V vocabulary.

Losses run in float32 whatever the autocast dtype: the CTC forward-backward and
the contrastive softmax over K+1 candidates lose too much in half precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def contrastive_logits(
    context: torch.Tensor,
    positives: torch.Tensor,
    negatives: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Cosine similarities / kappa between contexts c_t and candidates [q_t, q~_1..q~_K] (paper eq. 3).

    ``context``, ``positives`` (B, F, P); ``negatives`` (K, B, F, P).
    Returns (K + 1, B, F) logits, positive first. Negatives identical to the
    positive (possible when few codewords are in use) get ``-inf`` so they are
    not counted as distractors.
    """
    candidates = torch.cat([positives[None], negatives], dim=0)  # (K + 1, B, F, P)
    logits = F.cosine_similarity(context.float(), candidates.float(), dim=-1) / temperature  # (K + 1, B, F)
    same_as_positive = (negatives == positives[None]).all(dim=-1)  # (K, B, F)
    if same_as_positive.any():
        pad = torch.zeros_like(same_as_positive[:1])  # (1, B, F): never mask the positive
        logits = logits.masked_fill(torch.cat([pad, same_as_positive], dim=0), float("-inf"))
    return logits


def contrastive_loss(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy of picking the positive (index 0) at the masked frames.

    ``logits`` (K + 1, B, F); ``mask`` (B, F) True where the loss is taken.
    """
    k1 = logits.shape[0]
    flat = logits.permute(1, 2, 0).reshape(-1, k1)  # (K + 1, B, F) -> (B x F, K + 1)
    target = torch.zeros(flat.shape[0], dtype=torch.long, device=logits.device)
    per_frame = F.cross_entropy(flat.float(), target, reduction="none")  # (B x F,)
    return per_frame[mask.reshape(-1)].sum()


def contrastive_accuracy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fraction of masked frames whose positive beats all distractors (chance is 1 / (K + 1))."""
    hits = (logits.argmax(dim=0) == 0) & mask  # (B, F)
    return hits.sum() / mask.sum().clamp_min(1)


def diversity_loss(perplexity: torch.Tensor, num_codevectors: int) -> torch.Tensor:
    """(G V - perplexity) / (G V): 0 when every codeword is used equally (paper eq. 4)."""
    return (num_codevectors - perplexity) / num_codevectors


def ctc_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    frame_lengths: torch.Tensor,
    blank_id: int,
    reduction: str = "sum",
    zero_infinity: bool = False,
) -> torch.Tensor:
    """CTC loss of ``logits`` (B, F, V) against padded ``labels`` (B, U).

    Label entries that are negative (``-100`` padding) or equal to the blank are
    ignored. A label sequence that cannot fit in its frames gives ``inf``
    (or 0 with ``zero_infinity``). ``reduction="mean"`` divides each loss by its
    target length, then averages over the batch (``torch.nn.CTCLoss``).
    """
    keep = (labels >= 0) & (labels != blank_id)  # (B, U)
    targets = labels[keep]  # flattened, concatenated targets
    log_probs = F.log_softmax(logits, dim=-1, dtype=torch.float32).transpose(0, 1)  # (B, F, V) -> (F, B, V)
    with torch.backends.cudnn.flags(enabled=False):  # cuDNN CTC is nondeterministic and restrictive
        return F.ctc_loss(
            log_probs,
            targets,
            frame_lengths,
            keep.sum(dim=-1),
            blank=blank_id,
            reduction=reduction,
            zero_infinity=zero_infinity,
        )


def am_softmax_loss(
    logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, scale: float = 30.0, margin: float = 0.4
) -> torch.Tensor:
    """Additive-margin softmax (Wang et al. 2018) used by the x-vector head.

    ``logits`` (B, E) inputs, ``weight`` (E, L) class vectors, ``labels`` (B,).
    Scores are cosines; the target class's cosine is lowered by ``margin``.
    """
    labels = labels.flatten()
    cosine = F.normalize(logits, dim=1) @ F.normalize(weight, dim=0)  # (B, L)
    target = F.one_hot(labels, weight.shape[1]).bool()
    return F.cross_entropy(scale * torch.where(target, cosine - margin, cosine), labels)
