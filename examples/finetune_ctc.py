"""Fine-tune a wav2vec 2.0 encoder for speech recognition (CTC) with the transformers Trainer.

    python examples/finetune_ctc.py examples/configs/finetune_small_synth.yaml
    python examples/finetune_ctc.py --model_name_or_path facebook/wav2vec2-base \
        --train_data data/train --eval_data data/dev --output_dir out --do_train --bf16
    accelerate launch examples/finetune_ctc.py CONFIG.yaml     # several GPUs

All options: ``python examples/finetune_ctc.py --help``. The logic lives in
:mod:`hf_w2v2.finetune`.
"""

import logging
import sys

from hf_w2v2.exits import exit_on_interrupt
from hf_w2v2.finetune import parse_finetune_args


def main() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout)
    model_args, data_args, card_args, training_args = parse_finetune_args()
    from hf_w2v2.finetune import run_finetuning  # after parsing: --help does not load the Trainer stack

    result = run_finetuning(model_args, data_args, card_args, training_args)
    for key in sorted(result.metrics):
        if key.endswith(("_wer", "_cer")):
            print(f"{key}: {result.metrics[key]:.4f}")
    print(f"output folder: {result.output_dir}")


if __name__ == "__main__":
    with exit_on_interrupt():  # Ctrl-C: a checkpoint at the step, how to resume, exit 130; no traceback
        main()
