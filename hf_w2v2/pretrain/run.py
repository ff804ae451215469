"""``run_pretraining``: the whole self-supervised job, called by ``examples/pretrain.py``.

Audio sources -> headers scanned (short and unreadable files counted) -> model (a preset or
config, or a checkpoint to continue from) -> :class:`~hf_w2v2.pretrain.trainer.PreTrainingTrainer`
with the Gumbel schedule and the optional time budget -> final checkpoint, feature extractor,
metrics -> optional push to the Hub. The mirror of :func:`hf_w2v2.finetune.run.run_finetuning`.

A run resumes from the newest ``checkpoint-*`` of ``output_dir`` (``--auto_resume``, on by
default; or ``--resume_from_checkpoint latest|PATH``): the step, optimizer, scheduler, RNG
states, Gumbel temperature (a function of the step) and the time already spent all continue.
``--init_from CHECKPOINT`` instead starts a new run (fresh optimizer and schedule) from a
pre-trained model's weights: continued pre-training on more audio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from transformers import TrainingArguments, set_seed

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE
from hf_w2v2.data.processor import build_feature_extractor, uses_attention_mask
from hf_w2v2.data.sampler import check_fits
from hf_w2v2.data.sources import read_audio_paths
from hf_w2v2.models.configuration import config_from_name
from hf_w2v2.models.integrity import check_finite_weights
from hf_w2v2.models.pretraining import Wav2Vec2ForPreTraining
from hf_w2v2.pretrain.arguments import DataArguments, ModelArguments, ScheduleArguments
from hf_w2v2.pretrain.collator import DataCollatorForPreTraining
from hf_w2v2.pretrain.data import UnlabeledAudioDataset, scan_audio
from hf_w2v2.pretrain.stream import pretrain_stream
from hf_w2v2.pretrain.temperature import GumbelSchedule
from hf_w2v2.pretrain.trainer import PreTrainingTrainer
from hf_w2v2.training.budget import budget_for_run
from hf_w2v2.training.checkpoints import latest_complete_checkpoint, resolve_checkpoint
from hf_w2v2.training.distributed import DistributedReportCallback
from hf_w2v2.training.run_lock import acquire_run_lock
from hf_w2v2.training.streaming import check_stream_args

if TYPE_CHECKING:
    import datasets

logger = logging.getLogger(__name__)

HUB_TAGS = ["wav2vec2", "pretraining", "hf_w2v2"]


@dataclass
class PretrainResult:
    """What a run produced."""

    output_dir: str
    metrics: dict[str, float] = field(default_factory=dict)
    resumed_from: str | None = None


def load_model(args: ModelArguments) -> Wav2Vec2ForPreTraining:
    """A new model from ``config_name`` or the checkpoint ``model_name_or_path``, with the overrides applied."""
    overrides = args.overrides()
    if args.model_name_or_path:
        model = Wav2Vec2ForPreTraining.from_pretrained(args.model_name_or_path, **overrides)
        check_finite_weights(model, args.model_name_or_path)
        return model
    assert args.config_name is not None  # ModelArguments checks that one of the two is given
    return Wav2Vec2ForPreTraining(config_from_name(args.config_name, **overrides))


def load_audio_set(
    sources: list[str], data: DataArguments, seed: int, limit: int | None = None
) -> UnlabeledAudioDataset:
    """Scan the files of ``sources`` (headers only) and wrap the usable ones as random crops."""
    paths = [path for source in sources for path in read_audio_paths(source)][:limit]
    scan = scan_audio(paths, min_seconds=data.min_seconds)
    logger.info(
        "%s: %d clips, %.2f h; %d shorter than %.1f s, %d unreadable",
        ", ".join(sources),
        len(scan.clips),
        scan.hours,
        scan.too_short,
        data.min_seconds,
        len(scan.unreadable),
    )
    return UnlabeledAudioDataset(scan.clips, max_seconds=data.max_seconds, seed=seed)


def resume_checkpoint(schedule: ScheduleArguments, training_args: TrainingArguments) -> str | None:
    """``--resume_from_checkpoint`` when given, else the newest checkpoint of ``output_dir`` with ``auto_resume``."""
    output_dir = training_args.output_dir or ""
    if training_args.resume_from_checkpoint is not None:
        return resolve_checkpoint(training_args.resume_from_checkpoint, output_dir)
    if schedule.auto_resume:
        last, skipped = latest_complete_checkpoint(output_dir)
        for line in skipped:
            logger.warning("auto_resume: skipped %s", line)
        return last
    return None


def run_pretraining(
    model_args: ModelArguments, schedule: ScheduleArguments, data_args: DataArguments, training_args: TrainingArguments
) -> PretrainResult:
    """Train (or resume), evaluate, and write the output folder; see the module docstring."""
    train_sources = data_args.train_sources  # checked before any heavy work
    if data_args.train_loading == "stream":
        check_stream_args(training_args, data_args.max_batch_seconds)
    set_seed(training_args.seed)
    lock = acquire_run_lock(str(training_args.output_dir))  # a second run into this folder fails here
    checkpoint = resume_checkpoint(schedule, training_args)
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    model = load_model(model_args)
    train_set: UnlabeledAudioDataset | datasets.IterableDataset
    if data_args.train_loading == "stream":
        train_set = pretrain_stream(train_sources, data_args, training_args)
    else:
        train_set = load_audio_set(train_sources, data_args, training_args.seed, data_args.max_train_files)
    eval_set = load_audio_set([data_args.eval_source], data_args, training_args.seed) if data_args.eval_source else None
    if data_args.max_batch_seconds is not None and isinstance(train_set, UnlabeledAudioDataset):  # a stream refuses it
        check_fits(train_set.lengths, round(data_args.max_batch_seconds * TARGET_SAMPLING_RATE))
    layer_norm = uses_attention_mask(model.config)  # group-norm encoders get unpadded (cropped) batches
    collator = DataCollatorForPreTraining(
        normalize=data_args.normalize, return_attention_mask=layer_norm, crop_to_shortest=not layer_norm
    )
    push, training_args.push_to_hub = training_args.push_to_hub, False  # pushed once, at the end
    trainer = PreTrainingTrainer(
        model=model,
        args=training_args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        gumbel_schedule=GumbelSchedule(schedule.gumbel_start, schedule.gumbel_end, schedule.gumbel_decay),
        time_budget=budget_for_run(schedule.max_train_minutes, checkpoint),
        max_batch_seconds=data_args.max_batch_seconds,
        callbacks=[DistributedReportCallback()],  # logs DDP/FSDP/ZeRO and, at the end, each rank's weight checksum
    )
    result = PretrainResult(output_dir=training_args.output_dir or "", resumed_from=checkpoint)
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model()
    build_feature_extractor(model.config).save_pretrained(result.output_dir)
    result.metrics.update(train_output.metrics)
    trainer.log_metrics("train", train_output.metrics)
    trainer.save_metrics("train", train_output.metrics)
    if eval_set is not None:
        eval_metrics = trainer.evaluate()
        trainer.save_metrics("eval", eval_metrics)
        result.metrics.update(eval_metrics)
    trainer.save_state()  # after the final evaluation, so that trainer_state.json holds it
    if push:
        training_args.push_to_hub = True
        trainer.push_to_hub(tags=HUB_TAGS)
    lock.release()
    return result
