"""Both jobs in one process, as ``accelerate launch`` starts it: fine-tuning, then pre-training.

    accelerate launch ... tests/strategy_worker.py FINETUNE_ARGS... ::: PRETRAIN_ARGS...
    python tests/strategy_worker.py --make-start FOLDER    # the pre-trained starts (below), then exit

Used by ``tests/test_strategies.py`` and ``bench/gpu_check.py`` (one launch per strategy instead of two:
the start-up of a process group is most of a tiny run's time). Not collected by pytest (no ``test_``
prefix). :func:`make_start` writes the two pre-trained starts they share.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from hf_w2v2.finetune import parse_finetune_args, run_finetuning
from hf_w2v2.pretrain import parse_pretrain_args, run_pretraining

SEPARATOR = ":::"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def make_start(root: Path) -> Path:
    """``root/pre`` (a pre-trained tiny ``Wav2Vec2ForPreTraining``) and ``root/ctc`` (its encoder with a CTC
    head and the vocabulary of tests/fixtures/finetune/train): deterministic fine-tuning (no dropout,
    LayerDrop or SpecAugment; CTC ``mean`` reduction, so a batch's loss is the mean of its shards' losses)."""
    import torch

    from hf_w2v2 import Wav2Vec2ForCTC, Wav2Vec2ForPreTraining
    from hf_w2v2.finetune.data import choose_processor, read_utterances
    from hf_w2v2.models.configuration import config_from_name
    from hf_w2v2.text.normalize import TextNormalizer

    torch.manual_seed(0)
    no_dropout = dict(hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0)
    config = config_from_name(
        "tiny", feat_extract_norm="layer", mask_time_prob=0.65, mask_time_length=5, layerdrop=0.0, **no_dropout
    )
    Wav2Vec2ForPreTraining(config).save_pretrained(root / "pre")
    texts = [u.text or "" for u in read_utterances(str(FIXTURES / "finetune/train"), "text", "audio")]
    processor, _ = choose_processor(config, texts, TextNormalizer())
    tokenizer = processor.tokenizer
    ctc = Wav2Vec2ForCTC.from_pretrained(
        root / "pre",
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        ctc_loss_reduction="mean",
        mask_time_prob=0.0,
        final_dropout=0.0,
    )
    ctc.save_pretrained(root / "ctc")
    processor.save_pretrained(root / "ctc")
    return root


def skip_deepspeed_cpu_kernels() -> None:
    """Leave DeepSpeed's C++ kernels unbuilt: on CPU it compiles a shared-memory all-reduce on first use (one to
    three minutes, in a cache other runs with other flags rebuild) after probing compilers for every op; gloo's
    all-reduce does the same job for a tiny test. An empty table of compatible ops: none is built or probed."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true":
        import deepspeed.ops

        deepspeed.ops.__compatible_ops__ = {}  # type: ignore[attr-defined]  # read by deepspeed.comm.torch


def main(argv: list[str]) -> None:
    if argv[:1] == ["--make-start"]:
        make_start(Path(argv[1]))
        return
    skip_deepspeed_cpu_kernels()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout)
    split = argv.index(SEPARATOR) if SEPARATOR in argv else len(argv)
    finetune, pretrain = argv[:split], argv[split + 1 :]
    if finetune:
        run_finetuning(*parse_finetune_args(finetune))
    if pretrain:
        run_pretraining(*parse_pretrain_args(pretrain))


if __name__ == "__main__":
    main(sys.argv[1:])
