"""``run_pretraining``: the whole self-supervised job, called by ``examples/pretrain.py``.

Audio sources -> headers scanned (short and unreadable files counted) -> model (a preset or
config, or a checkpoint to continue from) -> :class:`~hf_w2v2.pretrain.trainer.PreTrainingTrainer`
with the Gumbel schedule and the optional time budget -> final checkpoint, feature extractor,
metrics, curves, model card -> optional push to the Hub, in the lifecycle every job shares
(:mod:`hf_w2v2.training.lifecycle`).

A run resumes from the newest ``checkpoint-*`` of ``output_dir`` (``--auto_resume``, on by
default; or ``--resume_from_checkpoint latest|PATH``): the step, optimizer, scheduler, RNG
states, Gumbel temperature (a function of the step) and the time already spent all continue.
``--init_from CHECKPOINT`` instead starts a new run (fresh optimizer and schedule) from a
pre-trained model's weights: continued pre-training on more audio.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainingArguments

from hf_w2v2.data.audio import TARGET_SAMPLING_RATE
from hf_w2v2.data.processor import build_feature_extractor, uses_attention_mask
from hf_w2v2.data.sampler import check_fits
from hf_w2v2.pretrain.arguments import DataArguments, ModelArguments, ScheduleArguments
from hf_w2v2.pretrain.card import write_pretrain_card
from hf_w2v2.pretrain.collator import DataCollatorForPreTraining
from hf_w2v2.pretrain.data import UnlabeledAudioDataset, load_audio_set
from hf_w2v2.pretrain.model import load_model
from hf_w2v2.pretrain.stream import pretrain_stream
from hf_w2v2.pretrain.temperature import GumbelSchedule
from hf_w2v2.pretrain.trainer import PreTrainingTrainer
from hf_w2v2.training.arguments import CardArguments
from hf_w2v2.training.budget import budget_for_run
from hf_w2v2.training.distributed import DistributedReportCallback
from hf_w2v2.training.lifecycle import Curves, RunResult, evaluate_set, finish_run, record_metrics, start_run
from hf_w2v2.training.streaming import check_stream_args

CURVES = Curves("contrastive + diversity loss", (("contrastive_accuracy", "eval contrastive accuracy"),), "accuracy")


def run_pretraining(
    model_args: ModelArguments,
    schedule: ScheduleArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    card_args: CardArguments | None = None,
) -> RunResult:
    """Train (or resume), evaluate, and write the output folder; see the module docstring."""
    train_sources = data_args.train_sources  # checked before any heavy work
    if data_args.train_loading == "stream":
        check_stream_args(training_args, data_args.max_batch_seconds)
    run = start_run(training_args, auto_resume=schedule.auto_resume, max_train_minutes=schedule.max_train_minutes)
    model = load_model(model_args)
    stream = data_args.train_loading == "stream"
    train_set: Any = (
        pretrain_stream(train_sources, data_args, run.args)
        if stream
        else load_audio_set(train_sources, data_args, run.args.seed, data_args.max_train_files)
    )
    eval_set = load_audio_set([data_args.eval_source], data_args, run.args.seed) if data_args.eval_source else None
    if data_args.max_batch_seconds is not None and isinstance(train_set, UnlabeledAudioDataset):  # a stream refuses it
        check_fits(train_set.lengths, round(data_args.max_batch_seconds * TARGET_SAMPLING_RATE))
    layer_norm = uses_attention_mask(model.config)  # group-norm encoders get unpadded (cropped) batches
    collator = DataCollatorForPreTraining(
        normalize=data_args.normalize, return_attention_mask=layer_norm, crop_to_shortest=not layer_norm
    )
    trainer = PreTrainingTrainer(
        model=model,
        args=run.args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        gumbel_schedule=GumbelSchedule(schedule.gumbel_start, schedule.gumbel_end, schedule.gumbel_decay),
        time_budget=budget_for_run(schedule.max_train_minutes, run.checkpoint),
        max_batch_seconds=data_args.max_batch_seconds,
        callbacks=[DistributedReportCallback()],  # logs DDP/FSDP/ZeRO and, at the end, each rank's weight checksum
    )
    result = RunResult(output_dir=run.output_dir, resumed_from=run.checkpoint)
    record_metrics(trainer, "train", dict(trainer.train(resume_from_checkpoint=run.checkpoint).metrics), result)
    trainer.save_model()
    build_feature_extractor(model.config).save_pretrained(run.output_dir)
    if eval_set is not None:
        record_metrics(trainer, "eval", dict(evaluate_set(trainer, eval_set, "eval", None).metrics or {}), result)
    trainer.save_state()  # after the final evaluation, so that trainer_state.json holds it
    card = lambda done: write_pretrain_card(run, model_args, schedule, data_args, card_args or CardArguments(), done)
    return finish_run(trainer, run, result, card, CURVES, commit_message="hf_w2v2 pre-training")
