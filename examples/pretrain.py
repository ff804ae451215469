"""Self-supervised wav2vec 2.0 pre-training on unlabeled audio with the transformers Trainer.

    python examples/pretrain.py examples/configs/pretrain_small.json
    python examples/pretrain.py examples/configs/pretrain_small.json --max_steps 100 --output_dir runs/x
    python examples/pretrain.py --config_name base --train_source /data/audio --output_dir runs/base \
        --per_device_train_batch_size 8 --max_steps 400000 --bf16 --push_to_hub
    accelerate launch examples/pretrain.py CONFIG.json      # several GPUs

A JSON file given first sets any option; command-line options override it.
A run resumes from the newest ``checkpoint-*`` of ``output_dir`` unless
``--auto_resume False``. All options: ``python examples/pretrain.py --help``.
The logic lives in :mod:`hf_w2v2.pretraining_trainer` and :mod:`hf_w2v2.data.unlabeled`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from hf_w2v2 import Wav2Vec2Config, Wav2Vec2ForPreTraining, configuration
from hf_w2v2.data.unlabeled import UnlabeledAudioDataset, list_audio, scan_audio
from hf_w2v2.pretraining_collator import DataCollatorForPreTraining
from hf_w2v2.pretraining_trainer import PreTrainingTrainer, TimeLimitCallback
from hf_w2v2.precision import use_cpu_without_accelerator
from hf_w2v2.processor import build_feature_extractor, uses_attention_mask
from hf_w2v2.temperature import PAPER_DECAY, PAPER_END, PAPER_START, GumbelSchedule

logger = logging.getLogger("pretrain")
PRESETS = {"tiny": configuration.tiny, "base": configuration.base, "large_lv60": configuration.large_lv60}


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Checkpoint folder to continue pre-training from (weights and config)."}
    )
    config_name: str | None = field(
        default=None, metadata={"help": "Random init from a preset (tiny, base, large_lv60) or a config.json path."}
    )
    config_overrides: str | None = field(
        default=None, metadata={"help": 'JSON object of config fields to change, e.g. \'{"num_negatives": 50}\'.'}
    )


@dataclass
class ScheduleArguments:
    gumbel_start: float = field(default=PAPER_START, metadata={"help": "Gumbel temperature at step 0 (paper: 2)."})
    gumbel_end: float = field(default=PAPER_END, metadata={"help": "Floor of the Gumbel temperature (paper: 0.5)."})
    gumbel_decay: float = field(
        default=PAPER_DECAY, metadata={"help": "Per-optimizer-step decay of the temperature (paper: 0.999995)."}
    )
    max_train_minutes: float | None = field(
        default=None, metadata={"help": "Stop (and save) after this many minutes of training, even before max_steps."}
    )
    auto_resume: bool = field(
        default=True, metadata={"help": "Resume from the newest checkpoint in output_dir when there is one."}
    )


@dataclass
class DataArguments:
    train_source: str | None = field(
        default=None, metadata={"help": "Folder (searched recursively) or manifest (.tsv/.csv/.txt) of audio."}
    )
    extra_train_sources: list[str] = field(
        default_factory=list, metadata={"help": "More training audio (folders or manifests), added to train_source."}
    )
    eval_source: str | None = field(default=None, metadata={"help": "Held-out audio, same formats."})
    max_seconds: float = field(default=15.6, metadata={"help": "Random crop length (fairseq: 250k samples)."})
    min_seconds: float = field(default=2.0, metadata={"help": "Skip shorter files (fairseq: 32k samples)."})
    normalize: bool = field(default=True, metadata={"help": "Per-utterance zero mean, unit variance."})
    max_train_files: int | None = field(default=None, metadata={"help": "Use only the first N files (debug)."})


def parse_args(argv: list[str]) -> tuple[ModelArguments, ScheduleArguments, DataArguments, TrainingArguments]:
    """``[CONFIG.json] [--option value ...]``: the file gives defaults, the command line overrides them."""
    parser = HfArgumentParser((ModelArguments, ScheduleArguments, DataArguments, TrainingArguments))
    defaults: dict = {}
    if argv and argv[0].endswith(".json"):
        with open(argv[0], encoding="utf-8") as f:
            defaults = json.load(f)
        parser.set_defaults(**defaults)
        argv = argv[1:]
    return parser.parse_args_into_dataclasses(args=use_cpu_without_accelerator(argv, defaults))


def load_model(args: ModelArguments) -> Wav2Vec2ForPreTraining:
    overrides = json.loads(args.config_overrides) if args.config_overrides else {}
    if args.model_name_or_path:
        return Wav2Vec2ForPreTraining.from_pretrained(args.model_name_or_path, **overrides)
    if args.config_name in PRESETS:
        return Wav2Vec2ForPreTraining(PRESETS[args.config_name](**overrides))
    if args.config_name:
        return Wav2Vec2ForPreTraining(Wav2Vec2Config.from_pretrained(args.config_name, **overrides))
    raise ValueError("give --config_name (random init) or --model_name_or_path (continue from a checkpoint)")


def load_audio_set(
    sources: list[str], data: DataArguments, seed: int, limit: int | None = None
) -> UnlabeledAudioDataset:
    paths = [path for one in sources for path in list_audio(one)][:limit]
    scan = scan_audio(paths, min_seconds=data.min_seconds)
    logger.info(
        "%s: %d clips, %.2f h; %d shorter than %.1f s, %d unreadable",
        ", ".join(sources), len(scan.clips), scan.hours, scan.too_short, data.min_seconds, len(scan.unreadable),
    )
    return UnlabeledAudioDataset(scan.clips, max_seconds=data.max_seconds, seed=seed)


def main() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout)
    model_args, schedule, data_args, training_args = parse_args(sys.argv[1:])
    if not data_args.train_source:
        raise ValueError("--train_source is required (a folder or a manifest of audio files)")
    set_seed(training_args.seed)
    model = load_model(model_args)
    train_sources = [data_args.train_source] + data_args.extra_train_sources
    train_set = load_audio_set(train_sources, data_args, training_args.seed, data_args.max_train_files)
    eval_set = load_audio_set([data_args.eval_source], data_args, training_args.seed) if data_args.eval_source else None
    layer_norm = uses_attention_mask(model.config)  # group-norm encoders get unpadded (cropped) batches
    collator = DataCollatorForPreTraining(
        normalize=data_args.normalize, return_attention_mask=layer_norm, crop_to_shortest=not layer_norm
    )
    trainer = PreTrainingTrainer(
        model=model, args=training_args, train_dataset=train_set, eval_dataset=eval_set, data_collator=collator,
        gumbel_schedule=GumbelSchedule(schedule.gumbel_start, schedule.gumbel_end, schedule.gumbel_decay),
    )
    if schedule.max_train_minutes:
        trainer.add_callback(TimeLimitCallback(schedule.max_train_minutes))
    resume = training_args.resume_from_checkpoint
    if resume is None and schedule.auto_resume and training_args.output_dir:
        resume = get_last_checkpoint(training_args.output_dir) if os.path.isdir(training_args.output_dir) else None
        if resume:
            logger.info("resuming from %s", resume)
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()
    build_feature_extractor(model.config).save_pretrained(training_args.output_dir)
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    if eval_set is not None:
        trainer.save_metrics("eval", trainer.evaluate())
    trainer.save_state()  # after the final evaluation, so that trainer_state.json holds it
    if training_args.push_to_hub:
        trainer.push_to_hub(tags=["wav2vec2", "pretraining", "hf_w2v2"])


if __name__ == "__main__":
    main()
