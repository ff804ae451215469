"""CTC forced alignment: where each character and word of a *known* transcript is in the audio.

Shape legend: F frames, V vocabulary, U target tokens, S = 2U + 1 CTC states.

The transcript's tokens ``y_1..y_U`` are interleaved with blanks, ``b y_1 b y_2 ... y_U b``
(S states). A CTC path visits the states left to right, one per frame: it may stay, step to
the next state, or skip the blank between two *different* tokens. Viterbi finds the path with
the highest total log-probability (Graves et al. 2006; the same lattice as the CTC loss with
max for sum); a token spans the frames its state is visited. Times use the encoder's frame
hop (20 ms for wav2vec 2.0), so they are multiples of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from hf_w2v2.decoding.alphabet import CTCAlphabet
from hf_w2v2.decoding.formats import ALIGN_FORMATS, srt_timestamp, textgrid
from hf_w2v2.decoding.outputs import SECONDS_PER_FRAME, Span

VITERBI_BEAM = 200.0  # nats below a frame's best path at which a partial alignment is dropped


@dataclass
class Alignment:
    """A transcript placed on the audio: ``chars`` (delimiters excluded) and ``words`` with times;
    ``score`` is the path's total log-probability; ``num_frames`` the frames of the logits."""

    text: str
    words: list[Span] = field(default_factory=list)
    chars: list[Span] = field(default_factory=list)
    score: float = 0.0
    num_frames: int = 0
    seconds_per_frame: float = SECONDS_PER_FRAME

    def to_dict(self) -> dict:
        return asdict(self)


def tokenize_transcript(text: str, alphabet: CTCAlphabet) -> tuple[list[int], list[str]]:
    """Token ids of ``text`` (words joined by the delimiter) and its words.

    A character the alphabet lacks is tried in the other case, then mapped to the unknown
    token; without one it is an error naming the character.
    """
    words = text.split()
    if not words:
        raise ValueError("the transcript is empty: nothing to align")
    index = {label: i for i, label in enumerate(alphabet.labels) if i != alphabet.blank_id}
    tokens: list[int] = []
    for w, word in enumerate(words):
        if w and alphabet.delimiter_id is not None:
            tokens.append(alphabet.delimiter_id)
        for char in word:
            found = index.get(char, index.get(char.upper(), index.get(char.lower())))
            if found is None:
                if alphabet.unk_id is None:
                    raise ValueError(f"character {char!r} of word {word!r} is not in the model's vocabulary")
                found = alphabet.unk_id
            tokens.append(found)
    return tokens, words


def ctc_viterbi(
    log_probs: torch.Tensor | np.ndarray, targets: Sequence[int], blank_id: int = 0, beam: float | None = VITERBI_BEAM
) -> tuple[list[int], float]:
    """Best CTC path of ``targets`` through ``log_probs`` (F, V): the target index (0..U-1) or -1
    (blank) at every frame, and the path's log-probability.

    Only a window of states is kept per frame: those that can still reach the last state, and
    (with ``beam``) those within ``beam`` nats of the frame's best. Back-pointers cost one byte per
    kept state, so memory follows the window's width, not S: an hour (180k frames) with 10k words
    (S ~ 110k states) needs ~20 GB of back-pointers unpruned and a few MB with the beam. When the
    beam loses every path to the end it is widened (x8, twice), then dropped.

    Raises:
        ValueError: no path exists (fewer frames than tokens plus the blanks between repeats).
    """
    lp = np.asarray(log_probs.detach().float().cpu() if isinstance(log_probs, torch.Tensor) else log_probs)
    num_frames, num_tokens = lp.shape[0], len(targets)
    repeats = sum(1 for a, b in zip(targets, targets[1:]) if a == b)
    if num_tokens + repeats > num_frames:
        raise ValueError(
            f"{num_tokens} tokens ({repeats} repeated pairs) cannot be aligned to {num_frames} frames: "
            "the audio is too short for the transcript"
        )
    states = np.full(2 * num_tokens + 1, blank_id, dtype=np.int64)  # (S,) blank, y1, blank, y2, ...
    states[1::2] = np.asarray(targets, dtype=np.int64)
    # A state may be entered from two back when it is a token different from the token two back.
    skip = np.zeros(len(states), dtype=bool)
    skip[3::2] = states[3::2] != states[1:-2:2]
    beams = [beam, beam * 8, beam * 64, None] if beam is not None else [None]
    for width in beams:
        found = _viterbi_window(lp, states, skip, width)
        if found is not None:
            return found
    raise AssertionError("the unpruned Viterbi always reaches the end")  # the length check above ensures it


def _viterbi_window(
    lp: np.ndarray, states: np.ndarray, skip: np.ndarray, beam: float | None
) -> tuple[list[int], float] | None:
    """:func:`ctc_viterbi` with one beam; ``None`` when the pruning lost every path to the end."""
    num_frames, num_states = lp.shape[0], len(states)
    lo, alpha = 0, lp[0, states[:2]].astype(np.float64)  # alive states [lo, lo + len(alpha))
    backs: list[tuple[int, np.ndarray]] = [(0, np.zeros(len(alpha), dtype=np.int8))]  # per frame: (lo, moves)
    for t in range(1, num_frames):
        hi = min(num_states, lo + len(alpha) + 2)  # a path moves at most two states per frame
        prev = np.full(hi - lo + 2, -np.inf)  # (2 + width,) two dead states before lo, then alpha
        prev[2 : 2 + len(alpha)] = alpha
        stay, step = prev[2:], prev[1:-1]
        jump = np.where(skip[lo:hi], prev[:-2], -np.inf)
        moves = np.stack([stay, step, jump])  # (3, width)
        back = moves.argmax(axis=0).astype(np.int8)  # 0 stay, 1 step, 2 skip
        alpha = moves.max(axis=0) + lp[t, states[lo:hi]]
        backs.append((lo, back))
        # States that can no longer reach the last two by the last frame, or fall out of the beam, die.
        first = max(0, num_states - 2 - 2 * (num_frames - 1 - t) - lo)
        alive = np.flatnonzero(alpha[first:] >= (alpha.max() - beam if beam is not None else -np.inf)) + first
        if alive.size == 0:
            return None
        alpha, lo = alpha[alive[0] : alive[-1] + 1], lo + int(alive[0])
    last = num_states - 1
    ends = {s: alpha[s - lo] for s in (last, last - 1) if 0 <= s - lo < len(alpha)}
    if not ends or max(ends.values()) == -np.inf:
        return None
    s = max(ends, key=lambda k: (ends[k], k))  # prefer the final blank on a tie
    score = float(ends[s])
    path = [0] * num_frames
    for t in range(num_frames - 1, -1, -1):
        path[t] = s // 2 if s % 2 else -1
        frame_lo, back = backs[t]
        s -= int(back[s - frame_lo])
    return path, score


def token_spans(path: Sequence[int], num_tokens: int) -> list[tuple[int, int]]:
    """``[start, end)`` frames of each target index along a Viterbi path."""
    spans = [(-1, -1)] * num_tokens
    for t, u in enumerate(path):
        if u >= 0:
            start = spans[u][0] if spans[u][0] >= 0 else t
            spans[u] = (start, t + 1)
    return spans


def align_logits(
    logits: torch.Tensor,
    text: str,
    alphabet: CTCAlphabet,
    seconds_per_frame: float = SECONDS_PER_FRAME,
) -> Alignment:
    """Align transcript ``text`` to CTC ``logits`` (F, V): character and word spans with times."""
    if logits.dim() != 2 or logits.shape[1] != len(alphabet):
        raise ValueError(f"logits must have shape (frames, {len(alphabet)}), got {tuple(logits.shape)}")
    tokens, words = tokenize_transcript(text, alphabet)
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # (F, V)
    path, score = ctc_viterbi(log_probs, tokens, alphabet.blank_id)
    spans = token_spans(path, len(tokens))
    chars: list[Span] = []
    word_spans: list[Span] = []
    current: list[Span] = []
    for u, (token, (start, end)) in enumerate(zip(tokens, spans)):
        if token == alphabet.delimiter_id:
            continue
        char = text_char(words, u, tokens, alphabet)
        chars.append(Span.from_frames(char, start, end, seconds_per_frame))
        current.append(chars[-1])
        if u + 1 == len(tokens) or tokens[u + 1] == alphabet.delimiter_id:
            word = words[len(word_spans)]
            word_spans.append(Span.from_frames(word, current[0].start_frame, current[-1].end_frame, seconds_per_frame))
            current = []
    return Alignment(" ".join(words), word_spans, chars, score, logits.shape[0], seconds_per_frame)


def text_char(words: list[str], u: int, tokens: list[int], alphabet: CTCAlphabet) -> str:
    """The transcript's own spelling of token ``u`` (not the vocabulary's case or ``[UNK]``)."""
    flat = "".join(" " + w if i else w for i, w in enumerate(words))
    if alphabet.delimiter_id is None:
        flat = flat.replace(" ", "")
    return flat[u]


def render_alignment(alignment: Alignment, fmt: str, path: str | None = None, duration: float | None = None) -> str:
    """The alignment as ``json`` (words and chars), ``tsv`` (level, start, end, text), ``srt``
    (one cue per word) or ``textgrid`` (Praat, a words tier and a chars tier)."""
    if fmt == "json":
        record: dict[str, object] = {"file": path, "text": alignment.text, "score": alignment.score}
        for level in ("words", "chars"):
            record[level] = [
                {"text": s.text, "start": round(s.start, 3), "end": round(s.end, 3)} for s in getattr(alignment, level)
            ]
        return json.dumps(record, ensure_ascii=False) + "\n"
    if fmt == "tsv":
        rows = ["level\tstart\tend\ttext"]
        for level in ("words", "chars"):
            rows += [f"{level[:-1]}\t{s.start:.3f}\t{s.end:.3f}\t{s.text}" for s in getattr(alignment, level)]
        return "\n".join(rows) + "\n"
    if fmt == "srt":
        cues = [
            f"{i}\n{srt_timestamp(w.start)} --> {srt_timestamp(w.end)}\n{w.text}\n"
            for i, w in enumerate(alignment.words, 1)
        ]
        return "\n".join(cues)
    if fmt == "textgrid":
        total = duration if duration is not None else alignment.num_frames * alignment.seconds_per_frame
        return to_textgrid(alignment, total)
    raise ValueError(f"unknown alignment format {fmt!r}; choose one of {', '.join(ALIGN_FORMATS)}")


def to_textgrid(alignment: Alignment, duration: float) -> str:
    """Praat TextGrid (long text format) with interval tiers "words" and "chars"; gaps are empty intervals."""
    tiers = [
        (name, [(s.start, s.end, s.text) for s in spans])
        for name, spans in (("words", alignment.words), ("chars", alignment.chars))
    ]
    return textgrid(tiers, duration)
