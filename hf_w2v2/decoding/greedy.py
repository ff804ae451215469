"""Greedy (best-path) CTC decoding with character and word times.

Shape legend: B batch, F frames, V vocab.

Best path (Graves et al. 2006, section 3.2): take the most likely label of each frame,
merge runs of the same label, then drop blanks. A label repeated in the text ("LL") is
only emitted twice when a blank separates the runs. Each kept label spans the frames of
its run; a word spans its first to its last character.
"""

from __future__ import annotations

import torch

from hf_w2v2.decoding.alphabet import CTCAlphabet
from hf_w2v2.decoding.outputs import SECONDS_PER_FRAME, Span, Transcription


def collapse_ctc(ids: torch.Tensor, blank_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Merge repeated ids and drop blanks.

    Args:
        ids: ``(F,)`` label id per frame.
        blank_id: id of the CTC blank.

    Returns:
        ``(tokens, start_frames, end_frames)``, each ``(N,)``: the kept ids and the frame
        range ``[start, end)`` of each one's run.
    """
    if ids.dim() != 1:
        raise ValueError(f"ids must be (F,), got shape {tuple(ids.shape)}")
    num_frames = ids.shape[0]
    new_run = torch.ones(num_frames, dtype=torch.bool, device=ids.device)  # (F,)
    new_run[1:] = ids[1:] != ids[:-1]
    starts = new_run.nonzero().squeeze(1)  # (R,) first frame of each run
    ends = torch.empty_like(starts)  # (R,) one past the last frame of each run
    ends[:-1] = starts[1:]
    ends[-1:] = num_frames
    run_ids = ids[starts]  # (R,) gather the label of each run
    keep = run_ids != blank_id
    return run_ids[keep], starts[keep], ends[keep]


def spans_to_transcription(
    tokens: list[int], starts: list[int], ends: list[int], alphabet: CTCAlphabet, seconds_per_frame: float
) -> Transcription:
    """Group collapsed tokens into characters and words (split at the word delimiter)."""
    chars: list[Span] = []
    words: list[Span] = []
    word: list[Span] = []
    for token, start, end in zip(tokens, starts, ends):
        if token == alphabet.delimiter_id:
            if word:
                words.append(_join(word, seconds_per_frame))
                word = []
            continue
        char = Span.from_frames(alphabet.labels[token], start, end, seconds_per_frame)
        chars.append(char)
        word.append(char)
    if word:
        words.append(_join(word, seconds_per_frame))
    return Transcription(text=" ".join(w.text for w in words), words=words, chars=chars)


def _join(chars: list[Span], seconds_per_frame: float) -> Span:
    text = "".join(c.text for c in chars)
    return Span.from_frames(text, chars[0].start_frame, chars[-1].end_frame, seconds_per_frame)


def greedy_decode(
    logits: torch.Tensor,
    alphabet: CTCAlphabet,
    lengths: torch.Tensor | None = None,
    seconds_per_frame: float = SECONDS_PER_FRAME,
) -> list[Transcription]:
    """Best-path decoding of a batch of CTC outputs.

    Args:
        logits: ``(B, F, V)`` or ``(F, V)`` scores (logits, log-probs or probs: only the
            argmax matters).
        alphabet: labels of the ``V`` classes.
        lengths: ``(B,)`` valid frames per row; all ``F`` when ``None``.
        seconds_per_frame: encoder hop in seconds (0.02 for wav2vec 2.0 at 16 kHz).

    Returns:
        One :class:`Transcription` per row.

    Raises:
        ValueError: ``V`` differs from the alphabet size, or the shape is not 2-D/3-D.
    """
    if logits.dim() == 2:
        logits = logits.unsqueeze(0)  # (F, V) -> (1, F, V)
    if logits.dim() != 3:
        raise ValueError(f"logits must be (B, F, V) or (F, V), got shape {tuple(logits.shape)}")
    if logits.shape[-1] != len(alphabet):
        raise ValueError(
            f"logits have {logits.shape[-1]} classes but the alphabet has {len(alphabet)} labels: "
            "the model and the tokenizer vocabulary do not match"
        )
    best = logits.argmax(dim=-1).cpu()  # (B, F)
    if lengths is None:
        lengths = torch.full((best.shape[0],), best.shape[1], dtype=torch.long)
    return [decode_ids(row[:length], alphabet, seconds_per_frame) for row, length in zip(best, lengths.tolist())]


def decode_ids(ids: torch.Tensor, alphabet: CTCAlphabet, seconds_per_frame: float = SECONDS_PER_FRAME) -> Transcription:
    """Best-path transcription of ``(F,)`` per-frame label ids (the argmax of the logits)."""
    tokens, starts, ends = collapse_ctc(ids, alphabet.blank_id)
    return spans_to_transcription(tokens.tolist(), starts.tolist(), ends.tolist(), alphabet, seconds_per_frame)
