"""The Trainer of CTC fine-tuning: :class:`~hf_w2v2.training.trainer.Wav2Vec2Trainer` with the model's own
CTC loss and its batches (length-grouped, by audio seconds, or with cached frozen conv outputs)."""

from __future__ import annotations

from hf_w2v2.training.trainer import Wav2Vec2Trainer


class CTCTrainer(Wav2Vec2Trainer):
    """``Trainer`` of ``Wav2Vec2ForCTC``: every shared mixin of :class:`Wav2Vec2Trainer`, nothing else.

    Length-grouped training batches (``train_sampling_strategy="group_by_length"``) come from
    :class:`~hf_w2v2.data.sampler.LengthGroupedSampler`, whose order is a function of
    (seed, epoch) alone: a run resumed mid-epoch sees exactly the batches of the uninterrupted
    run (the stock sampler draws from the global RNG, which a checkpoint restores to its state
    at the save, not at the epoch start, so the resumed epoch had another order).

    A :class:`~hf_w2v2.training.health.HealthMonitorCallback` warns about all-blank output and
    exploding gradients. A training loss that is NaN or infinite is skipped and counted
    (``skip_nonfinite_loss``, on by default; :class:`~hf_w2v2.training.nonfinite.NonFiniteLossMixin`).

    Evaluation reads datasets in order (never length-grouped), so prediction ``i`` is
    dataset item ``i``: padded frames are trimmed with the item's length and each
    prediction is written next to its utterance's name.
    """
