"""The low-label study (wav2vec 2.0's Table 1 in miniature): one command reruns it all.

    python examples/low_label_study.py --output_dir runs/low_label            # the documented run
    python examples/low_label_study.py --output_dir /tmp/ll --quick True \\
        --pool tests/fixtures/finetune/train --dev_data tests/fixtures/finetune/dev \\
        --lm_corpus tests/fixtures/decoding/corpus.txt --label_minutes 0.1 --heldout_voices 1   # minutes

A rerun reuses every finished step in --output_dir. Results: results.json, table.md and
low_label.png there; the logic lives in :mod:`hf_w2v2.studies.low_label`.
"""

import logging
import sys

from transformers import HfArgumentParser

from hf_w2v2.studies.low_label import StudyConfig, run_study


def main() -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout)
    (config,) = HfArgumentParser(StudyConfig).parse_args_into_dataclasses()
    run_study(config)
    with open(f"{config.output_dir}/table.md", encoding="utf-8") as table:
        print(table.read())


if __name__ == "__main__":
    main()
