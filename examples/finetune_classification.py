"""Fine-tune a wav2vec 2.0 encoder for audio classification, speaker embeddings or frame labels.

    # keyword spotting (FSDD digits; splits from examples/make_splits.py)
    python examples/finetune_classification.py --model_name_or_path models/w2v2-small-synth-en \
        --train_data splits/digits_train.csv --eval_data splits/digits_test.csv --label_column label \
        --output_dir runs/digits --do_train --max_train_minutes 10 --balance sampler
    # speaker verification (ArcFace), EER on speakers never seen in training
    python examples/finetune_classification.py --task xvector \
        --config_overrides '{"xvector_loss": "aam_softmax", "xvector_margin": 0.2}' ...

All options: ``python examples/finetune_classification.py --help``. The logic lives in
:mod:`hf_w2v2.classify`.
"""

import logging
import sys

from hf_w2v2.classify import parse_classify_args, run_classification
from hf_w2v2.exits import exit_on_interrupt


def main() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout)
    model_args, data_args, card_args, training_args = parse_classify_args()
    result = run_classification(model_args, data_args, card_args, training_args)
    for row in result.rows:
        print(f"{row.split}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.metrics.items()), row.notes)
    print(f"output folder: {result.output_dir}")


if __name__ == "__main__":
    with exit_on_interrupt():  # Ctrl-C: a checkpoint at the step, how to resume, exit 130; no traceback
        main()
