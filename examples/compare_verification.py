"""Score one trials file with several x-vector models: EER / minDCF side by side and one DET plot.

    python examples/compare_verification.py runs/sv_aam_softmax/trials_eval.txt \
        runs/sv_softmax runs/sv_am_softmax runs/sv_aam_softmax --det det.png

Trials files (``1|0 A B`` lines) are written by ``finetune_classification.py --task xvector``
for every evaluated set. Logic: :mod:`hf_w2v2.classify.verification`.
"""

import argparse
from pathlib import Path

from hf_w2v2.classify.inference import load_model, score_trials
from hf_w2v2.classify.verification import equal_error_rate, min_dcf, plot_det_curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trials", help="trials file")
    parser.add_argument("models", nargs="+", help="x-vector model folders")
    parser.add_argument("--det", default=None, help="write a DET plot with one curve per model")
    parser.add_argument("--p-target", type=float, default=0.01)
    args = parser.parse_args()
    curves = {}
    print("| model | loss | EER | minDCF |\n|---|---|---|---|")
    for folder in args.models:
        model = load_model(folder)
        scores, targets = score_trials(model, args.trials)
        eer, _ = equal_error_rate(scores, targets)
        dcf, _ = min_dcf(scores, targets, args.p_target)
        loss = getattr(model.config, "xvector_loss", "am_softmax")
        print(f"| {Path(folder).name} | {loss} | {eer:.2%} | {dcf:.3f} |", flush=True)
        curves[Path(folder).name] = (scores, targets)
    if args.det:
        print(f"wrote {plot_det_curve(curves, args.det)}")


if __name__ == "__main__":
    main()
