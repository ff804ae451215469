"""Same wall time, same data: stock transformers recipe vs our fine-tuning recipe, dev CER side by side.

* **stock**: ``transformers.Wav2Vec2ForCTC`` with the small config (conv 128x7, hidden 256, 4
  layers, layer norm, 3.7 M parameters), random init, transformers' config defaults (SpecAugment
  0.05, LayerDrop 0.1, dropouts 0.1, summed CTC), AdamW at a constant 1e-3, random batches of 16
  utterances (~62 s of audio), bf16 autocast (``--no_bf16`` for fp32, both legs), as in the issue's reference run.
* **ours**: the whole recipe ``examples/configs/finetune_small_synth.yaml`` (or ``--ours_config``)
  run exactly as ``examples/finetune_ctc.py`` runs it (``hf_w2v2.finetune.run_finetuning``):
  same architecture, pre-trained initialisation when the recipe says so, and a complete output
  folder (weights, processor, model card, curves, predictions) in ``--ours_output_dir``.

Both train for ``--minutes`` of wall time (evaluation included) on synth-train and are scored
on synth-dev during training; the table gives the final dev CER / WER and the CER over time.
Each leg writes ``compare_<leg>.json`` to ``--output_dir``; the table shows every leg found there,
so the legs may run as separate processes (``--only``) and still be printed side by side.

    python bench/bench_finetune_compare.py --minutes 45            # the issue's setting
    python bench/bench_finetune_compare.py --minutes 10 --max_eval 60  # shortened
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import transformers
from transformers import TrainerCallback, TrainingArguments

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_w2v2.data.collator import DataCollatorCTCWithPadding
from hf_w2v2.finetune.arguments import parse_finetune_args
from hf_w2v2.finetune.run import prepare_data, split_metrics
from hf_w2v2.finetune.trainer import CTCTrainer
from hf_w2v2.models.configuration import small
from hf_w2v2.training.budget import TimeBudgetCallback
from hf_w2v2.training.precision import has_accelerator
from hf_w2v2.training.trainer import argmax_logits

ROOT = Path(__file__).resolve().parents[1]


class EvalEveryMinutes(TrainerCallback):
    """Ask for an evaluation each time another ``minutes`` of training have passed."""

    def __init__(self, minutes: float) -> None:
        self.period = 60.0 * minutes
        self.start = None
        self.done = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        due = int((time.monotonic() - self.start) // self.period)
        if due > self.done:
            self.done = due
            control.should_evaluate = True


def stock_model(config_fields: dict) -> transformers.Wav2Vec2ForCTC:
    """Stock transformers model, transformers' default regularisation."""
    return transformers.Wav2Vec2ForCTC(transformers.Wav2Vec2Config(**config_fields))


def train_one(name: str, model, data, training_args: TrainingArguments, minutes: float, eval_every: float) -> dict:
    eval_split = data.evals["eval"]
    trainer = CTCTrainer(
        model=model,
        args=training_args,
        train_dataset=data.train.dataset,
        eval_dataset=eval_split.dataset,
        data_collator=DataCollatorCTCWithPadding.from_processor(data.processor),
        processing_class=data.processor,
        compute_metrics=split_metrics(eval_split, data.processor.tokenizer, model.config),
        preprocess_logits_for_metrics=argmax_logits,
        time_budget=TimeBudgetCallback(minutes),
        callbacks=[EvalEveryMinutes(eval_every)],
    )
    start = time.monotonic()
    trainer.train()
    wall = time.monotonic() - start
    final = trainer.evaluate()
    history = [
        (round(e["epoch"], 3), e["step"], e["eval_cer"], e["eval_wer"])
        for e in trainer.state.log_history
        if "eval_cer" in e
    ]
    audio_s = sum(int(n) for n in data.train.dataset["input_length"]) / 16000 * trainer.state.epoch
    return {
        "name": name,
        "steps": trainer.state.global_step,
        "wall_s": wall,
        "train_audio_s": audio_s,
        "audio_s_per_s": audio_s / wall,
        "dev_cer": final["eval_cer"],
        "dev_wer": final["eval_wer"],
        "history": history,
    }


def run_ours(config: str, minutes: float, output_dir: str, bf16: bool, max_eval: int | None) -> dict:
    """The recipe through ``run_finetuning``; CER history from the Trainer's log."""
    from hf_w2v2.finetune.run import run_finetuning

    argv = [config, "--output_dir", output_dir, "--max_train_minutes", str(minutes), "--disable_tqdm", "True"]
    argv += ["--bf16", str(bf16)]  # the recipe says bf16; --no_bf16 turns it off for both legs
    argv += ["--max_eval_samples", str(max_eval)] if max_eval else []
    model_args, data_args, card_args, training_args = parse_finetune_args(argv)
    start = time.monotonic()
    result = run_finetuning(model_args, data_args, card_args, training_args)
    wall = time.monotonic() - start
    state = json.loads((Path(output_dir) / "trainer_state.json").read_text())
    history = [
        (round(e["epoch"], 3), e["step"], e["eval_cer"], e["eval_wer"]) for e in state["log_history"] if "eval_cer" in e
    ]
    return {
        "name": "ours",
        "steps": state["global_step"],
        "wall_s": wall,
        "train_audio_s": result.metrics["train_audio_seconds"],
        "audio_s_per_s": result.metrics["train_audio_seconds_per_second"],
        "dev_cer": result.metrics["eval_cer"],
        "dev_wer": result.metrics["eval_wer"],
        "history": history,
        "output_dir": output_dir,
        "test": {k: v for k, v in result.metrics.items() if k.startswith("test_")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=45.0, help="wall-clock budget of each run")
    parser.add_argument("--eval_every", type=float, default=10.0, help="minutes between dev evaluations (stock)")
    parser.add_argument("--ours_config", default=str(ROOT / "examples/configs/finetune_small_synth.yaml"))
    parser.add_argument("--ours_output_dir", default=None, help="output folder of our run (default: OUTPUT_DIR/ours)")
    parser.add_argument("--max_eval", type=int, default=None, help="dev utterances scored (default: all 150)")
    parser.add_argument("--output_dir", default=str(ROOT / "runs" / "bench-compare"))
    parser.add_argument("--no_bf16", action="store_true", help="fp32 instead of bf16 autocast (stock; ours too)")
    parser.add_argument("--only", choices=["stock", "ours"], default=None, help="run one side only")
    args = parser.parse_args()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "stock"):
        # the recipe file gives the data and vocabulary settings; the stock model is built below
        common = [
            "--output_dir",
            str(out / "stock"),
            "--max_train_minutes",
            str(args.minutes),
            "--report_to",
            "none",
            "--model_name_or_path",
            "",
            "--config_name",
            "small",
        ]
        common += ["--max_eval_samples", str(args.max_eval)] if args.max_eval else []
        model_args, data_args, _, ours_args = parse_finetune_args([args.ours_config, *common])
        data_args.test_data = []  # dev only
        data = prepare_data(model_args, data_args, ours_args, checkpoint=None)
        tokenizer = data.processor.tokenizer
        fields = small(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id).to_diff_dict()
        stock_args = TrainingArguments(
            output_dir=str(out / "stock"),
            learning_rate=1e-3,
            lr_scheduler_type="constant_with_warmup",
            warmup_steps=0,
            per_device_train_batch_size=16,
            num_train_epochs=1000,
            bf16=not args.no_bf16,
            use_cpu=not has_accelerator(),
            remove_unused_columns=False,
            eval_strategy="no",
            save_strategy="no",
            report_to="none",
            logging_steps=10,
            disable_tqdm=True,
            seed=0,
            per_device_eval_batch_size=16,
        )
        result = train_one("stock", stock_model(fields), data, stock_args, args.minutes, args.eval_every)
        (out / "compare_stock.json").write_text(json.dumps(result, indent=2))
    if args.only in (None, "ours"):
        ours_dir = args.ours_output_dir or str(out / "ours")
        result = run_ours(args.ours_config, args.minutes, ours_dir, bf16=not args.no_bf16, max_eval=args.max_eval)
        (out / "compare_ours.json").write_text(json.dumps(result, indent=2))
    print(f"\n{'recipe':8} {'steps':>6} {'audio-s':>8} {'audio-s/s':>9} {'dev CER':>8} {'dev WER':>8}")
    for leg in ("stock", "ours"):
        path = out / f"compare_{leg}.json"
        if not path.is_file():
            print(f"{leg:8} (not run: {path} missing)")
            continue
        r = json.loads(path.read_text())
        print(
            f"{r['name']:8} {r['steps']:6d} {r['train_audio_s']:8.0f} {r['audio_s_per_s']:9.1f} "
            f"{r['dev_cer']:8.3f} {r['dev_wer']:8.3f}"
        )
        print("         CER over training (epoch, step, CER, WER):", r["history"])


if __name__ == "__main__":
    main()
