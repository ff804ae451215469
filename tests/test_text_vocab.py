"""Character vocabulary, tokenizer, processor and coverage report (hf_w2v2.text, hf_w2v2.data.processor)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoProcessor, Wav2Vec2Config

from hf_w2v2.data.processor import build_processor, build_processor_from_texts, uses_attention_mask
from hf_w2v2.text import TextNormalizer, build_tokenizer, build_vocab, coverage_report, vocab_size

FIXTURES = Path(__file__).parent / "fixtures"


def _lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


def test_vocab_order_is_fixed_and_independent_of_input_order() -> None:
    vocab = build_vocab(["b a", "c'a"])
    assert list(vocab) == ["[PAD]", "[UNK]", "|", "'", "a", "b", "c"]
    assert list(vocab.values()) == list(range(7))
    assert build_vocab(["c'a", "b a"]) == vocab


def test_vocab_min_count_and_errors() -> None:
    assert "Z" not in build_vocab(["AAZ", "AB"], min_count=2)
    with pytest.raises(ValueError, match="empty"):
        build_vocab(["", " "])
    with pytest.raises(ValueError, match="min_count"):
        build_vocab(["A"], min_count=0)


def test_tokenizer_ids_pad_is_blank_and_size(tmp_path: Path) -> None:
    tokenizer = build_tokenizer(["HELLO WORLD"], tmp_path)
    assert tokenizer.pad_token_id == 0 and tokenizer.unk_token_id == 1
    assert tokenizer.convert_tokens_to_ids("|") == 2
    saved = json.loads((tmp_path / "vocab.json").read_text())
    assert vocab_size(tokenizer) == len(tokenizer) == len(saved) == 3 + len(set("HELOWRD"))
    ids = tokenizer("HELLO WORLD").input_ids
    assert ids[5] == 2  # the space became the word delimiter
    assert tokenizer.decode(ids, group_tokens=False) == "HELLO WORLD"
    assert tokenizer("HEY").input_ids[2] == tokenizer.unk_token_id


@pytest.mark.parametrize(("norm", "mask"), [("group", False), ("layer", True)])
def test_processor_follows_model_family(tmp_path: Path, norm: str, mask: bool) -> None:
    config = Wav2Vec2Config(feat_extract_norm=norm, do_stable_layer_norm=norm == "layer")
    processor = build_processor(config, build_tokenizer(["AB"], tmp_path))
    extractor = processor.feature_extractor
    assert uses_attention_mask(config) is mask
    assert extractor.return_attention_mask is mask
    assert extractor.do_normalize and extractor.sampling_rate == 16000 and extractor.padding_value == 0.0


@pytest.mark.parametrize(("norm", "mask"), [("group", False), ("layer", True)])
def test_processor_from_the_project_config(tmp_path: Path, norm: str, mask: bool) -> None:
    hf_w2v2 = pytest.importorskip("hf_w2v2")
    config = hf_w2v2.Wav2Vec2Config(feat_extract_norm=norm, do_stable_layer_norm=norm == "layer")
    assert build_processor(config, build_tokenizer(["AB"], tmp_path)).feature_extractor.return_attention_mask is mask


def test_unknown_feat_extract_norm_is_rejected() -> None:
    with pytest.raises(ValueError, match="feat_extract_norm"):
        uses_attention_mask(Wav2Vec2Config(feat_extract_norm="batch"))


def test_round_trip_synth_train_vocab_through_auto_processor(tmp_path: Path) -> None:
    """Build from synth-train, save next to a model config, reload, encode/decode every synth-dev line."""
    config = Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True)
    built = build_processor_from_texts(config, _lines("synth_train_text.txt"), tmp_path)
    config.vocab_size, config.pad_token_id = len(built.tokenizer), built.tokenizer.pad_token_id
    config.save_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    assert type(processor).__name__ == "Wav2Vec2Processor"
    assert processor.tokenizer.get_vocab() == built.tokenizer.get_vocab()
    assert len(processor.tokenizer) == 3 + 27  # [PAD] [UNK] | ' A-Z
    assert processor.feature_extractor.return_attention_mask is True
    normalizer = TextNormalizer()
    for line in _lines("synth_dev_text.txt"):
        text = normalizer(line)
        ids = processor.tokenizer(text).input_ids
        assert processor.tokenizer.unk_token_id not in ids
        assert processor.tokenizer.decode(ids, group_tokens=False) == text == line


def test_coverage_report(tmp_path: Path) -> None:
    train = ["Hello world", "?!", "hello"]
    vocab = build_tokenizer([TextNormalizer()(t) for t in train], tmp_path).get_vocab()
    report = coverage_report(vocab, train, eval_texts=["Héllo wörld", "...", "hello"])
    assert report.char_counts["L"] == 5 and report.empty_train == [1]
    assert report.missing_eval == {"É": 1, "Ö": 1} and report.eval_with_missing == 1
    assert report.empty_eval == [1]
    assert report.eval_char_coverage == pytest.approx(1 - 2 / 15)
    text = report.format()
    assert "'É':1" in text and "empty after normalisation" in text
    assert "train: 3 clips" in text and "eval: 3 clips," in text
    report.eval_sets = {"eval": 1, "unseen-speaker": 2}  # the eval and test sets, pooled: the line names them
    assert "eval: 3 clips (eval 1, unseen-speaker 2), character coverage" in report.format()
