"""Distractor sampling for the wav2vec 2.0 contrastive task.

Shape legend: B batch, F frames, K negatives (distractors) per masked frame.

Section 3.2 of the wav2vec 2.0 paper: "distractors are uniformly sampled from
other masked time steps of the same utterance". :func:`sample_negative_indices`
draws them in vectorised torch on the mask's device, without host
synchronisation, and returns *flat* indices into the ``(B x F)`` frame axis - the
``sampled_negative_indices`` format of transformers' ``Wav2Vec2ForPreTraining``
- so a model gathers them with ``quantized.view(B * F, D)[indices.view(-1)]``.

Every index of row ``b`` lies in ``[b * F, (b + 1) * F)``: an utterance can never
draw a distractor from its neighbour (a bug seen in a well-known toolkit, tested
in ``tests/test_negatives.py``).
"""

from __future__ import annotations

import torch

from hf_w2v2.models.masking import uniform


def masked_positions_by_rank(mask: torch.Tensor) -> torch.Tensor:
    """Long ``(B, F)``: entry ``[b, r]`` is the frame of the ``r``-th masked frame of row ``b``.

    Only the first ``mask[b].sum()`` entries of a row are meaningful; the rest
    list the unmasked frames (a stable sort puts masked frames first, in order).
    """
    return torch.sort((~mask).to(torch.uint8), dim=1, stable=True).indices  # (B, F)


def sample_negative_indices(
    mask: torch.Tensor, num_negatives: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Flat indices ``(B, F, K)`` of ``K`` distractors for each masked frame.

    Args:
        mask: bool ``(B, F)``, True on masked frames (must already exclude
            padding, as :func:`hf_w2v2.models.masking.compute_span_mask` does).
        num_negatives: ``K`` (100 in the paper).
        generator: source of randomness; ``None`` uses torch's default generator.
            Results for a CPU generator are the same on every device.

    For a masked frame of row ``b`` with ``n_b >= 2`` masked frames, each of the
    ``K`` distractors is drawn uniformly *with replacement* among the other
    ``n_b - 1`` masked frames of row ``b`` - never the frame itself, never
    another row, never an unmasked or padded frame. The returned value is the
    flat index ``b * F + f``.

    Entries that are not distractors point at the frame itself
    (``b * F + f``): all ``K`` entries of unmasked frames (the loss ignores them)
    and of masked frames in rows with fewer than two masked frames (no other
    masked frame exists). A model must treat a distractor equal to the positive
    as absent; transformers' ``Wav2Vec2ForPreTraining`` already does (it sets
    the logit of any negative identical to the positive to ``-inf``), so such a
    frame has a single candidate and contributes zero contrastive loss.
    """
    if mask.dim() != 2:
        raise ValueError(f"mask must be (batch, frames), got shape {tuple(mask.shape)}")
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be >= 1, got {num_negatives}")
    mask = mask.to(torch.bool)
    batch_size, num_frames = mask.shape
    device = mask.device

    count = mask.sum(dim=1, keepdim=True)  # (B, 1) masked frames per row
    rank = mask.to(torch.long).cumsum(dim=1) - 1  # (B, F) rank of a masked frame within its row
    rank = rank[:, :, None]  # (B, F) -> (B, F, 1)
    others = (count - 1)[:, :, None]  # (B, 1) -> (B, 1, 1) candidates excluding self

    # Draw j uniformly in [0, n_b - 2] and skip over the frame's own rank: uniform over the others.
    u = uniform((batch_size, num_frames, num_negatives), device=device, generator=generator)  # (B, F, K)
    pick = torch.floor(u * others).to(torch.long)
    pick = torch.minimum(pick, (others - 1).clamp(min=0))  # guard float rounding at u -> 1
    pick = pick + (pick >= rank).to(torch.long)  # (B, F, K) rank of the chosen distractor

    by_rank = masked_positions_by_rank(mask)  # (B, F)
    frames = by_rank.gather(1, pick.clamp(0, num_frames - 1).view(batch_size, -1))  # (B, F * K)
    frames = frames.view(batch_size, num_frames, num_negatives)  # (B, F * K) -> (B, F, K)

    own = torch.arange(num_frames, device=device)[None, :, None].expand_as(frames)  # (B, F, K) the frame itself
    has_distractors = mask[:, :, None] & (others >= 1)  # (B, F, 1)
    frames = torch.where(has_distractors, frames, own)
    row_offset = (torch.arange(batch_size, device=device) * num_frames)[:, None, None]  # (B, 1, 1)
    return frames + row_offset  # (B, F, K) flat indices into (B x F)
