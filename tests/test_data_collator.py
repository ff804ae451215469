"""DataCollatorCTCWithPadding against the feature extractor's own padding, and with a CTC model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2Config

from hf_w2v2.data.collator import LABEL_PAD, DataCollatorCTCWithPadding
from hf_w2v2.data.processor import build_processor
from hf_w2v2.text import build_tokenizer


def _features(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {"input_values": rng.standard_normal(n).astype(np.float32), "labels": rng.integers(3, 8, m), "input_length": n}
        for n, m in [(7000, 3), (10000, 5), (4500, 1)]
    ]


def _processor(tmp_path: Path, norm: str):
    config = Wav2Vec2Config(feat_extract_norm=norm, do_stable_layer_norm=norm == "layer")
    return build_processor(config, build_tokenizer(["ABCDE"], tmp_path))


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_matches_feature_extractor_pad(tmp_path: Path, norm: str) -> None:
    processor = _processor(tmp_path, norm)
    collator = DataCollatorCTCWithPadding.from_processor(processor)
    features = _features()
    batch = collator(features)
    oracle = processor.feature_extractor.pad(
        [{"input_values": f["input_values"]} for f in features], padding=True, return_tensors="pt"
    )
    torch.testing.assert_close(batch["input_values"], oracle["input_values"].float())
    assert batch["input_values"].shape == (3, 10000) and batch["input_values"].dtype == torch.float32
    assert ("attention_mask" in batch) is (norm == "layer") is ("attention_mask" in oracle)
    if norm == "layer":
        torch.testing.assert_close(batch["attention_mask"], oracle["attention_mask"].long())
        assert batch["attention_mask"].sum(dim=1).tolist() == [7000, 10000, 4500]


def test_labels_padded_with_minus_100_and_multiples() -> None:
    collator = DataCollatorCTCWithPadding(
        return_attention_mask=True, pad_to_multiple_of=320, pad_to_multiple_of_labels=8
    )
    features = _features()
    batch = collator(features)
    assert batch["input_values"].shape == (3, 10240) and batch["attention_mask"].shape == (3, 10240)
    assert batch["labels"].shape == (3, 8) and batch["labels"].dtype == torch.long
    for row, feature in zip(batch["labels"], features):
        n = len(feature["labels"])
        assert row[:n].tolist() == list(feature["labels"]) and (row[n:] == LABEL_PAD).all()
    assert (batch["input_values"][2, 4500:] == 0).all()
    assert set(batch) == {"input_values", "attention_mask", "labels"}  # input_length is not passed on


def test_accepts_lists_and_tensors_and_no_labels() -> None:
    batch = DataCollatorCTCWithPadding()([{"input_values": [0.5, 0.5]}, {"input_values": torch.ones(3)}])
    assert batch["input_values"].tolist() == [[0.5, 0.5, 0.0], [1.0, 1.0, 1.0]] and set(batch) == {"input_values"}


def test_bad_input_is_reported() -> None:
    with pytest.raises(ValueError, match="empty"):
        DataCollatorCTCWithPadding()([])
    with pytest.raises(ValueError, match="input_values"):
        DataCollatorCTCWithPadding()([{"audio": [0.0]}])
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        DataCollatorCTCWithPadding(pad_to_multiple_of=0)


def test_batch_feeds_a_ctc_model(tmp_path: Path) -> None:
    """The collated batch gives a finite CTC loss that ignores label padding (stock model as oracle)."""
    from transformers import Wav2Vec2ForCTC

    torch.manual_seed(0)
    processor = _processor(tmp_path, "group")
    config = Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        vocab_size=len(processor.tokenizer),
        pad_token_id=processor.tokenizer.pad_token_id,
        ctc_loss_reduction="sum",
    )
    model = Wav2Vec2ForCTC(config).eval()
    features = _features()
    tight = DataCollatorCTCWithPadding.from_processor(processor)(features)
    loose = DataCollatorCTCWithPadding.from_processor(processor, pad_to_multiple_of_labels=16)(features)
    assert loose["labels"].shape[1] == 16 > tight["labels"].shape[1]
    with torch.no_grad():
        loss_tight, loss_loose = model(**tight).loss, model(**loose).loss
    assert torch.isfinite(loss_tight) and loss_tight > 0
    torch.testing.assert_close(loss_loose, loss_tight)  # -100 label padding is ignored
