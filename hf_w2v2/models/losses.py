"""Losses of wav2vec 2.0 and its heads, as pure functions.

Shape legend: B batch, F frames, P projected dim, K negatives, V vocabulary.

Losses run in float32 whatever the autocast dtype: the CTC forward-backward and
the contrastive softmax over K+1 candidates lose too much in half precision.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .configuration import XVECTOR_LOSSES

LABEL_PAD = -100
"""Label value of padding in ``labels`` (transformers' convention): ignored by the losses, written by
the collators, and what the Trainer pads predictions and labels with across batches."""

COSINE_EPS = 1e-8
"""Floor of each vector's norm in cosine similarities (``torch.nn.functional.cosine_similarity``'s eps)."""


def contrastive_logits(
    context: torch.Tensor,
    targets: torch.Tensor,
    negative_indices: torch.Tensor,
    temperature: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cosine similarities / kappa between contexts c_t and candidates [q_t, q~_1..q~_K] (paper eq. 3).

    ``context``, ``targets`` (B, F, P); ``negative_indices`` (B, F, K) flat indices into the
    B x F frames (``sampled_negative_indices``), each in its own utterance's row as the paper
    draws them; ``mask`` (B, F), when given, marks the frames whose logits are used: indices of
    other frames may point anywhere (they are ignored). Returns (K + 1, B, F) logits, positive
    first, in float32. Negatives identical to the positive (possible when few codewords are in
    use) get ``-inf`` so they are not counted as distractors.

    Each utterance's F x F cosine matrix is one matmul, and the K + 1 candidates are read from
    it: the (K, B, F, P) tensor of distractor vectors is never built (it was most of a CPU
    pre-training step).
    """
    b, f, _ = targets.shape
    rows = torch.arange(b, device=targets.device)[:, None, None]  # (B, 1, 1)
    local = negative_indices.long() - rows * f  # (B, F, K) frame index within the own utterance
    outside = (local < 0) | (local >= f)  # (B, F, K)
    used = outside if mask is None else outside & mask.to(torch.bool)[:, :, None]
    if bool(used.any()):
        raise ValueError("sampled_negative_indices must point into the same utterance (row b: [b*F, (b+1)*F))")
    own = torch.arange(f, device=targets.device)[None, :, None].expand(b, f, 1)  # (B, F, 1) the positive
    local = torch.where(outside, own, local)  # unused entries -> the frame itself (then -inf, below)
    candidates = torch.cat([own, local], dim=-1)  # (B, F, K + 1)
    with torch.autocast(targets.device.type, enabled=False):  # float32 similarities, also under autocast
        c = F.normalize(context.float(), dim=-1, eps=COSINE_EPS)  # (B, F, P)
        q = F.normalize(targets.float(), dim=-1, eps=COSINE_EPS)  # (B, F, P)
        cosine = torch.bmm(c, q.transpose(1, 2))  # (B, F, P) x (B, P, F) -> (B, F, F): cos(c_t, q_s)
    logits = cosine.gather(2, candidates) / temperature  # (B, F, K + 1)
    with torch.no_grad():
        # Exact equality of target vectors, as one id per distinct vector.
        ids = torch.unique(targets.detach().reshape(b * f, -1), dim=0, return_inverse=True)[1].view(b, f)  # (B, F)
        same = ids.gather(1, local.reshape(b, -1)).view_as(local) == ids[:, :, None]  # (B, F, K)
    logits = logits.masked_fill(F.pad(same, (1, 0)), float("-inf"))  # never the positive (column 0)
    return logits.permute(2, 0, 1)  # (B, F, K + 1) -> (K + 1, B, F)


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

    Label entries that are negative (:data:`LABEL_PAD` padding) or equal to the blank are
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


MARGIN_LOSSES = XVECTOR_LOSSES  # the config declares and checks them
"""Speaker-embedding objectives of the x-vector head (``config.xvector_loss``)."""


def aam_softmax_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    scale: float = 30.0,
    margin: float = 0.2,
    easy_margin: bool = False,
) -> torch.Tensor:
    """Additive angular margin softmax, ArcFace (Deng et al. 2019): the target logit is s cos(theta + m).

    ``logits`` (B, E) inputs, ``weight`` (E, L) class vectors, ``labels`` (B,).

    cos(theta + m) stops decreasing once theta + m passes pi, so a target far from its class
    would be *rewarded* for moving away. Two standard fixes, chosen by ``easy_margin``:

    * ``False`` (ArcFace's own): where theta > pi - m, use the linear continuation
      cos(theta) - m sin(m) instead (monotonic, and equal at the joint);
    * ``True``: add the margin only where cos(theta) > 0 (theta < pi / 2), plain cos(theta) elsewhere.
    """
    labels = labels.flatten()
    with torch.autocast(logits.device.type, enabled=False):  # acos-free, but sqrt(1 - c^2) needs float32
        cosine = F.normalize(logits.float(), dim=1) @ F.normalize(weight.float(), dim=0)  # (B, L)
        cosine = cosine.clamp(-1.0, 1.0)
        sine = torch.sqrt((1.0 - cosine * cosine).clamp_min(0.0))  # sin(theta) >= 0 for theta in [0, pi]
        shifted = cosine * math.cos(margin) - sine * math.sin(margin)  # cos(theta + m)
        if easy_margin:
            shifted = torch.where(cosine > 0, shifted, cosine)
        else:
            shifted = torch.where(
                cosine > math.cos(math.pi - margin), shifted, cosine - math.sin(math.pi - margin) * margin
            )
        target = F.one_hot(labels, weight.shape[1]).bool()
        return F.cross_entropy(scale * torch.where(target, shifted, cosine), labels)


def softmax_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Plain softmax cross-entropy over the class scores ``logits @ weight`` (no normalisation, no margin)."""
    scores = logits.float() @ weight.float()  # (B, E) x (E, L) -> (B, L)
    return F.cross_entropy(scores, labels.flatten())


def margin_softmax_loss(
    kind: str,
    logits: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    scale: float = 30.0,
    margin: float = 0.4,
    easy_margin: bool = False,
) -> torch.Tensor:
    """The x-vector objective named ``kind`` (one of :data:`MARGIN_LOSSES`); ``scale``/``margin`` of the margin ones."""
    if kind == "am_softmax":
        return am_softmax_loss(logits, labels, weight, scale, margin)
    if kind == "aam_softmax":
        return aam_softmax_loss(logits, labels, weight, scale, margin, easy_margin)
    if kind == "softmax":
        return softmax_loss(logits, labels, weight)
    raise ValueError(f"xvector_loss must be one of {list(MARGIN_LOSSES)}, got {kind!r}")
