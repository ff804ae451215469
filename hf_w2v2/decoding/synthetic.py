"""Simulated CTC outputs for a known transcript, to test and time decoders without a model.

Shape legend: F frames, V vocab.

Each character takes ``frames_per_char`` frames: one frame peaked on the character, then
blanks (word boundaries emit the delimiter). With probability ``confusion`` a character's
frame is confused: a random other character gets the highest score and the true one the
second highest, as an acoustic model unsure between similar sounds. Greedy decoding then
makes spelling errors that an LM can repair. These knobs are one :class:`SimulatedAcoustics`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hf_w2v2.decoding.alphabet import DELIMITER_LABEL, CTCAlphabet


@dataclass(frozen=True)
class SimulatedAcoustics:
    """How confident and how noisy the simulated acoustic model is (scores are logits, before log-softmax)."""

    frames_per_char: int = 3
    """Frames per character (>= 2, so repeated letters keep a blank between them)."""
    confusion: float = 0.0
    """Probability that a character's frame prefers a wrong character."""
    margin: float = 1.0
    """Logits by which the wrong character scores above the right one when confused."""
    peak: float = 8.0
    """Logits by which the intended label scores above the others."""
    noise: float = 0.5
    """Standard deviation of the Gaussian noise added to every logit."""


def synthetic_logits(
    text: str,
    alphabet: CTCAlphabet,
    acoustics: SimulatedAcoustics | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``(F, V)`` logits whose best path spells ``text`` except for confused characters.

    Args:
        text: transcript made of the alphabet's characters and spaces.
        alphabet: the ``V`` labels.
        acoustics: frames per character, confusion, margin, peak and noise (default: a confident model,
            3 frames per character, no confusion).
        generator: RNG for noise and confusions.

    Raises:
        ValueError: ``text`` uses a character the alphabet lacks, or ``frames_per_char`` is under 2.
    """
    sim = acoustics or SimulatedAcoustics()
    frames_per_char, confusion, margin, peak = sim.frames_per_char, sim.confusion, sim.margin, sim.peak
    if frames_per_char < 2:
        raise ValueError(f"frames_per_char must be >= 2 to separate repeated letters, got {frames_per_char}")
    index = {label: i for i, label in enumerate(alphabet.labels)}
    targets = []
    for char in " ".join(text.split()):
        if char not in index:
            raise ValueError(f"character {char!r} of {text!r} is not in the alphabet")
        targets.append(index[DELIMITER_LABEL if char == " " else char])
    choices = torch.tensor(sorted(index[c] for c in alphabet.characters))  # (C,) character ids
    num_frames = (len(targets) + 2) * frames_per_char  # one character's worth of blanks at each end
    logits = sim.noise * torch.randn(num_frames, len(alphabet), generator=generator)  # (F, V)
    logits[:, alphabet.blank_id] += peak
    for i, target in enumerate(targets):
        frame = (i + 1) * frames_per_char
        logits[frame, alphabet.blank_id] -= peak
        logits[frame, target] += peak
        if target != alphabet.delimiter_id and torch.rand(1, generator=generator).item() < confusion:
            wrong = int(choices[torch.randint(len(choices), (1,), generator=generator)])
            if wrong != target:
                logits[frame, wrong] = logits[frame, target] + margin
    return logits
