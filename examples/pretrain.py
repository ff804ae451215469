"""Self-supervised wav2vec 2.0 pre-training on unlabeled audio with the transformers Trainer.

    python examples/pretrain.py examples/configs/pretrain_small.json
    python examples/pretrain.py examples/configs/pretrain_small.json --max_steps 100 --output_dir runs/x
    python examples/pretrain.py examples/configs/pretrain_small_continue.json --init_from runs/pretrain_small
    python examples/pretrain.py --config_name base --train_source /data/audio --output_dir runs/base \
        --per_device_train_batch_size 8 --max_steps 400000 --bf16 --push_to_hub
    accelerate launch examples/pretrain.py RECIPE.json      # several GPUs

A recipe file (JSON or YAML) given first sets any option; command-line options override it.
A run resumes from the newest ``checkpoint-*`` of ``output_dir`` unless ``--auto_resume False``.
All options: ``python examples/pretrain.py --help``. The logic lives in :mod:`hf_w2v2.pretrain`.
"""

import logging
import sys

from hf_w2v2.exits import exit_on_interrupt
from hf_w2v2.pretrain import parse_pretrain_args, run_pretraining


def main() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout)
    result = run_pretraining(*parse_pretrain_args())
    for key in sorted(result.metrics):
        if key.startswith("eval_"):
            print(f"{key}: {result.metrics[key]:.4f}")
    print(f"output folder: {result.output_dir}")


if __name__ == "__main__":
    with exit_on_interrupt():  # Ctrl-C: a checkpoint at the step, how to resume, exit 130; no traceback
        main()
