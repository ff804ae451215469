"""A ``transformers.Trainer`` for wav2vec 2.0 self-supervised pre-training.

Shape legend: B batch, T samples, F frames, K negatives.

What it adds to the stock Trainer:

- **Loss normalisation.** ``Wav2Vec2ForPreTraining`` returns sums over masked
  frames (as transformers does). The trainer divides each micro-batch's sum by
  its number of masked frames, so the optimised and logged ``loss`` is per
  masked frame (fairseq divides by ``sample_size``, the masked-frame count).
  The Trainer then averages micro-batches of an accumulation window
  (``loss_is_scaled_for_ga = False``), which equals the per-frame mean of the
  whole window when micro-batches have equal masked counts.
- **Metrics.** Logged with ``loss``, averaged since the previous log:
  ``contrastive_loss`` and ``diversity_loss`` per masked frame,
  ``codevector_perplexity`` (mean over micro-batches; ``G x V`` is the
  maximum), ``contrastive_accuracy`` (argmax of the K+1 logits is the positive;
  chance ``1 / (K + 1)``) and ``gumbel_temperature``. ``learning_rate`` and
  ``grad_norm`` come from the Trainer. Evaluation reports the same with the
  ``eval_`` prefix.
- **Gumbel temperature.** A :class:`~hf_w2v2.pretrain.temperature.GumbelTemperatureCallback`
  is added unless one is given.
- **Evaluation with fixed targets.** The model draws masks only in training
  mode, so evaluation draws them here from a generator seeded with
  ``args.seed`` and the batch index: every evaluation scores the same task.
- **Length grouping.** With ``train_sampling_strategy="group_by_length"`` and a
  dataset exposing ``lengths`` (:class:`~hf_w2v2.pretrain.data.UnlabeledAudioDataset`),
  training batches come from :class:`~hf_w2v2.data.sampler.LengthGroupedSampler`
  and evaluation runs longest first, without decoding the audio to learn
  lengths (the stock sampler would read every item).
- **Reliability** (shared with fine-tuning, :mod:`hf_w2v2.training`): checkpoints written whole
  then renamed (``checkpoints``), LayerDrop decisions shared by all processes (``layerdrop``),
  NaN/inf losses skipped and counted (``nonfinite``), and a health monitor warning about codebook
  collapse, a trivially solved contrastive task and exploding gradients (``health``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from transformers import TrainerCallback

from hf_w2v2.data.sampler import LengthGroupedSampler
from hf_w2v2.models.lengths import conv_output_length
from hf_w2v2.models.losses import contrastive_logits
from hf_w2v2.models.masking import compute_span_mask
from hf_w2v2.models.negatives import sample_negative_indices
from hf_w2v2.pretrain.temperature import LOG_KEY, GumbelSchedule, GumbelTemperatureCallback
from hf_w2v2.training.budget import TimeBudgetTrainerMixin
from hf_w2v2.training.checkpoints import AtomicCheckpointMixin
from hf_w2v2.training.distributed import ShardingTrainerMixin
from hf_w2v2.training.health import HealthMonitorCallback
from hf_w2v2.training.layerdrop import LayerDropSyncMixin
from hf_w2v2.training.loaders import build_loader, duration_loader
from hf_w2v2.training.nonfinite import NonFiniteLossMixin


def draw_pretraining_targets(
    config: Any,
    num_samples: int,
    attention_mask: torch.Tensor | None,
    *,
    batch_size: int,
    device: torch.device | str,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Time mask ``(B, F)`` and flat negative indices ``(B, F, K)`` for a batch of ``num_samples`` samples.

    Uses the config's ``mask_time_*`` and ``num_negatives``; padded frames
    (from the sample-level ``attention_mask``) are never masked or sampled.
    """
    num_frames = int(conv_output_length(num_samples, config.conv_kernel, config.conv_stride))
    lengths = None
    if attention_mask is not None:
        lengths = conv_output_length(attention_mask.to(torch.long).sum(-1), config.conv_kernel, config.conv_stride)
        lengths = lengths.clamp(min=0)  # (B,) valid frames
    mask = compute_span_mask(
        (batch_size, num_frames),
        config.mask_time_prob,
        config.mask_time_length,
        min_masks=config.mask_time_min_masks,
        lengths=lengths,
        device=device,
        generator=generator,
    )
    return mask, sample_negative_indices(mask, config.num_negatives, generator=generator)


def pretraining_statistics(outputs: Any, inputs: dict[str, Any], config: Any) -> dict[str, torch.Tensor]:
    """Detached sums of one micro-batch: masked frames, correct picks, both losses, perplexity.

    Reads ``mask_time_indices`` / ``contrastive_logits`` from the outputs (our
    model) or rebuilds them from the inputs and projected states (transformers').
    """
    mask = getattr(outputs, "mask_time_indices", None)
    if mask is None:
        mask = inputs["mask_time_indices"]
    mask = mask.to(torch.bool)
    logits = getattr(outputs, "contrastive_logits", None)
    if logits is None:
        logits = contrastive_logits(
            outputs.projected_states,
            outputs.projected_quantized_states,
            inputs["sampled_negative_indices"],
            config.contrastive_logits_temperature,
            mask,
        )
    with torch.no_grad():
        correct = ((logits.argmax(dim=0) == 0) & mask).sum()  # (K + 1, B, F) -> scalar
    return {
        "masked_frames": mask.sum().detach().float(),
        "correct": correct.detach().float(),
        "contrastive_loss": outputs.contrastive_loss.detach().float(),
        "diversity_loss": outputs.diversity_loss.detach().float(),
        "codevector_perplexity": outputs.codevector_perplexity.detach().float(),
        "batches": torch.ones((), device=mask.device),
    }


class MetricAccumulator:
    """Sums of :func:`pretraining_statistics` since the last :meth:`pop`, kept on device (no sync per step)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for key, value in stats.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()

    def pop(self, reduce: Any = None) -> dict[str, float]:
        """Per-frame / per-batch averages; ``reduce`` sums a stacked tensor across processes."""
        if not self.sums:
            return {}
        keys = sorted(self.sums)
        totals = torch.stack([self.sums[k] for k in keys])  # (metrics,)
        if reduce is not None:
            totals = reduce(totals)
        s = dict(zip(keys, totals.tolist()))
        self.sums = {}
        frames = max(s["masked_frames"], 1.0)
        return {
            "contrastive_loss": s["contrastive_loss"] / frames,
            "diversity_loss": s["diversity_loss"] / frames,
            "codevector_perplexity": s["codevector_perplexity"] / max(s["batches"], 1.0),
            "contrastive_accuracy": s["correct"] / frames,
            "masked_frames_per_batch": s["masked_frames"] / max(s["batches"], 1.0),
        }


class DatasetEpochCallback(TrainerCallback):
    """Tells ``train_dataset.set_epoch`` the epoch index at each epoch start (resumed runs included).

    Random crops depend on the epoch; accelerate forwards ``set_epoch`` to the
    dataset only for some sampler layouts (not after skipping batches on
    resume), so the trainer does it itself. With ``dataloader_num_workers > 0``
    use non-persistent workers so each epoch's workers see the new value.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.dataset.set_epoch(math.floor(state.epoch + 1e-6))  # resumed mid-epoch: state.epoch = 1.5 -> 1


class PreTrainingTrainer(
    AtomicCheckpointMixin, LayerDropSyncMixin, NonFiniteLossMixin, TimeBudgetTrainerMixin, ShardingTrainerMixin
):
    """``Trainer`` for ``Wav2Vec2ForPreTraining``; see the module docstring.

    Extra arguments: ``gumbel_schedule``, the temperature schedule (paper default),
    ``time_budget``, a :class:`~hf_w2v2.training.budget.TimeBudgetCallback` that drives the
    learning rate and stops training when the time is spent, and ``max_batch_seconds``, batches of
    at most that much padded audio instead of a fixed batch size.
    """

    loss_is_scaled_for_ga = False  # compute_loss returns a per-micro-batch mean; the Trainer divides by GA steps

    def __init__(
        self,
        *args: Any,
        gumbel_schedule: GumbelSchedule | None = None,
        max_batch_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_batch_seconds = max_batch_seconds
        if self._temperature_callback() is None:
            self.add_callback(GumbelTemperatureCallback(gumbel_schedule))
        if hasattr(self.train_dataset, "set_epoch"):
            self.add_callback(DatasetEpochCallback(self.train_dataset))
        if not any(isinstance(cb, HealthMonitorCallback) for cb in self.callback_handler.callbacks):
            self.add_callback(HealthMonitorCallback())  # codebook collapse, trivial task, exploding gradients
        self._train_metrics = MetricAccumulator()
        self._eval_metrics = MetricAccumulator()
        self._eval_batches = 0

    def _temperature_callback(self) -> GumbelTemperatureCallback | None:
        found = [cb for cb in self.callback_handler.callbacks if isinstance(cb, GumbelTemperatureCallback)]
        return found[0] if found else None

    def compute_loss(
        self, model: nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        """Summed pre-training loss divided by the micro-batch's masked frames."""
        outputs = model(**inputs)
        if outputs.loss is None:
            raise ValueError("the model returned no loss: it drew no time mask (mask_time_prob is 0?)")
        stats = pretraining_statistics(outputs, inputs, self.accelerator.unwrap_model(model).config)
        (self._train_metrics if model.training else self._eval_metrics).add(stats)
        loss = self.guard_loss(model, outputs.loss / stats["masked_frames"].clamp(min=1.0))  # NaN/inf: skipped
        return (loss, outputs) if return_outputs else loss

    def prediction_step(
        self, model: nn.Module, inputs: dict[str, Any], prediction_loss_only: bool, ignore_keys: list[str] | None = None
    ) -> tuple[torch.Tensor | None, None, None]:
        """Loss on seeded masks and negatives (the model draws none in eval mode)."""
        inputs = {k: v.to(self.args.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        if "mask_time_indices" not in inputs:
            input_values = inputs["input_values"]  # (B, T)
            generator = torch.Generator().manual_seed(self.args.seed + self._eval_batches)
            mask, negatives = draw_pretraining_targets(
                self.accelerator.unwrap_model(model).config,
                input_values.shape[1],
                inputs.get("attention_mask"),
                batch_size=input_values.shape[0],
                device=input_values.device,
                generator=generator,
            )
            inputs = {**inputs, "mask_time_indices": mask, "sampled_negative_indices": negatives}
        self._eval_batches += 1
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        assert isinstance(loss, torch.Tensor)  # return_outputs=False
        return loss.detach(), None, None

    def evaluation_loop(self, *args: Any, **kwargs: Any) -> Any:
        """Standard loop, plus the pre-training metrics under ``{prefix}_``."""
        self._eval_metrics = MetricAccumulator()
        self._eval_batches = 0
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", "eval")
        metrics = output.metrics if output.metrics is not None else {}
        for key, value in self._eval_metrics.pop(self._reduce).items():
            metrics[f"{prefix}_{key}"] = value
        return output

    def _reduce(self, totals: torch.Tensor) -> torch.Tensor:
        return self.accelerator.reduce(totals, reduction="sum")

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add the averaged pre-training metrics and the temperature to training logs."""
        if "loss" in logs:
            logs.update(self._train_metrics.pop(self._reduce))
            callback = self._temperature_callback()
            if callback is not None:
                logs[LOG_KEY] = callback.temperature
        super().log(logs, start_time)

    def get_train_dataloader(self) -> DataLoader:
        """Batches by audio seconds (``max_batch_seconds``), length-grouped batches from
        ``train_dataset.lengths`` when asked; the stock loader otherwise."""
        lengths = getattr(self.train_dataset, "lengths", None)
        if self.max_batch_seconds is not None and self.train_dataset is not None:
            return duration_loader(self, self.train_dataset, lengths, self.max_batch_seconds)
        if self.args.train_sampling_strategy != "group_by_length" or lengths is None:
            return super().get_train_dataloader()
        group = self.args.train_batch_size * self.args.gradient_accumulation_steps
        dataset: Any = self.train_dataset
        sampler = LengthGroupedSampler(lengths, group, seed=self.args.seed, dataset=dataset)
        return build_loader(self, dataset, self.args.train_batch_size, sampler)

    def get_eval_dataloader(self, eval_dataset: str | Dataset | None = None) -> DataLoader:
        """Longest-first batches (no decoding to learn lengths) for length-grouped runs; stock otherwise."""
        dataset: Any
        if isinstance(eval_dataset, str):
            dataset = self.eval_dataset[eval_dataset]  # type: ignore[index]  # a named eval set
        else:
            dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        lengths = getattr(dataset, "lengths", None)
        if self.args.train_sampling_strategy != "group_by_length" or lengths is None:
            return super().get_eval_dataloader(eval_dataset)
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        return build_loader(self, dataset, self.args.eval_batch_size, order)
