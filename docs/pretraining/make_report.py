"""Plot and tabulate a pre-training run from its ``trainer_state.json``.

    python docs/pretraining/make_report.py runs/pretrain_small --num_negatives 50 --num_codevectors 128

Writes ``curve.png`` and ``table.md`` next to this script (or to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def points(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(int(e["step"]), float(e[key])) for e in history if key in e]
    return [s for s, _ in pairs], [v for _, v in pairs]


def plot(history: list[dict], path: Path, num_negatives: int, num_codevectors: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    panels = [
        ("contrastive_loss", "contrastive loss / masked frame", math.log(num_negatives + 1), "chance ln(K+1)"),
        ("contrastive_accuracy", "positive picked among K+1", 1.0 / (num_negatives + 1), "chance 1/(K+1)"),
        ("codevector_perplexity", "codevector perplexity", num_codevectors, "maximum G x V"),
        ("gumbel_temperature", "Gumbel temperature", None, None),
    ]
    for ax, (key, title, reference, ref_label) in zip(axes.flat, panels):
        ax.plot(*points(history, key), label="train")
        eval_steps, eval_values = points(history, f"eval_{key}")
        if eval_steps:
            ax.plot(eval_steps, eval_values, "o-", label="eval (synth-dev)")
        if reference is not None:
            ax.axhline(reference, color="grey", linestyle="--", label=ref_label)
        ax.set_title(title)
        ax.set_xlabel("optimizer step")
        ax.legend(fontsize=8)
    lr_ax = axes.flat[3].twinx()
    lr_ax.plot(*points(history, "learning_rate"), color="tab:red", alpha=0.5)
    lr_ax.set_ylabel("learning rate", color="tab:red")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(history: list[dict], every: int) -> str:
    evals = {int(e["step"]): e for e in history if "eval_loss" in e}
    rows = [
        "| step | loss | contrastive | diversity | accuracy | perplexity | temperature | lr "
        "| eval accuracy | eval perplexity |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    train = [e for e in history if "contrastive_loss" in e and "eval_loss" not in e]
    for entry in train:
        step = int(entry["step"])
        if step % every and entry is not train[0] and entry is not train[-1]:
            continue
        ev = evals.get(step, {})
        eval_acc = f"{ev['eval_contrastive_accuracy']:.3f}" if ev else ""
        eval_ppl = f"{ev['eval_codevector_perplexity']:.1f}" if ev else ""
        rows.append(
            f"| {step} | {entry['loss']:.3f} | {entry['contrastive_loss']:.3f} | {entry['diversity_loss']:.3f} | "
            f"{entry['contrastive_accuracy']:.3f} | {entry['codevector_perplexity']:.1f} | "
            f"{entry['gumbel_temperature']:.3f} | {entry['learning_rate']:.2e} | {eval_acc} | {eval_ppl} |"
        )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="output_dir of examples/pretrain.py (or a checkpoint folder)")
    parser.add_argument("--num_negatives", type=int, required=True, help="K of the run")
    parser.add_argument("--num_codevectors", type=int, required=True, help="G x V of the run")
    parser.add_argument("--every", type=int, default=100, help="table row every N steps")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="output folder")
    args = parser.parse_args()
    history = json.loads((args.run / "trainer_state.json").read_text())["log_history"]
    args.out.mkdir(parents=True, exist_ok=True)
    plot(history, args.out / "curve.png", args.num_negatives, args.num_codevectors)
    (args.out / "table.md").write_text(table(history, args.every))
    print(f"wrote {args.out / 'curve.png'} and {args.out / 'table.md'}")


if __name__ == "__main__":
    main()
