"""Greedy CTC decoding, alphabets and synthetic logits."""

from __future__ import annotations

import pytest
import torch
from fixtures.decoding.tiny import VOCAB, alphabet, make_processor

from hf_w2v2.decoding.alphabet import CTCAlphabet
from hf_w2v2.decoding.greedy import collapse_ctc, greedy_decode
from hf_w2v2.decoding.outputs import SECONDS_PER_FRAME
from hf_w2v2.decoding.synthetic import SimulatedAcoustics, synthetic_logits


def one_hot(ids: list[int], vocab_size: int = len(VOCAB)) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(ids), vocab_size).float()  # (F, V)


def test_collapse_merges_runs_and_drops_blanks() -> None:
    tokens, starts, ends = collapse_ctc(torch.tensor([0, 5, 5, 0, 5, 7, 7, 7, 0]), blank_id=0)
    assert tokens.tolist() == [5, 5, 7]  # a blank between two runs of 5 keeps both
    assert starts.tolist() == [1, 4, 5]
    assert ends.tolist() == [3, 5, 8]


def test_collapse_all_blank_and_empty() -> None:
    assert collapse_ctc(torch.zeros(6, dtype=torch.long), 0)[0].numel() == 0
    assert collapse_ctc(torch.zeros(0, dtype=torch.long), 0)[0].numel() == 0


def test_words_and_offsets_in_seconds() -> None:
    a, b, d = VOCAB["A"], VOCAB["B"], VOCAB["|"]
    # frames: _ A A _ B | | B _   -> "AB B"
    out = greedy_decode(one_hot([0, a, a, 0, b, d, d, b, 0]), alphabet())[0]
    assert out.text == "AB B"
    assert [(w.text, w.start_frame, w.end_frame) for w in out.words] == [("AB", 1, 5), ("B", 7, 8)]
    assert out.words[0].start == pytest.approx(1 * 0.02) and out.words[0].end == pytest.approx(5 * 0.02)
    assert [c.text for c in out.chars] == ["A", "B", "B"]
    assert out.chars[1].start == pytest.approx(4 * 0.02)


def test_default_frame_seconds_is_the_hop_of_the_default_config() -> None:
    from hf_w2v2 import Wav2Vec2Config
    from hf_w2v2.models.lengths import hop_length

    assert hop_length(Wav2Vec2Config().conv_stride) == 320
    assert pytest.approx(hop_length(Wav2Vec2Config().conv_stride) / 16_000) == SECONDS_PER_FRAME


def test_batch_respects_lengths() -> None:
    a = VOCAB["A"]
    logits = torch.stack([one_hot([a, 0, a, 0]), one_hot([a, 0, a, 0])])  # (2, 4, V)
    out = greedy_decode(logits, alphabet(), lengths=torch.tensor([4, 1]))
    assert [t.text for t in out] == ["AA", "A"]


def test_matches_transformers_tokenizer(tmp_path) -> None:
    """Text and word frame offsets agree with Wav2Vec2CTCTokenizer.decode (the oracle)."""
    tokenizer = make_processor(tmp_path).tokenizer
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 60, len(VOCAB), generator=generator)  # (B, F, V)
    logits[..., VOCAB["[UNK]"]] = -1e4  # the tokenizer spells [UNK] differently
    logits[..., 0] += 1.0  # more blanks, as in a trained model
    ours = greedy_decode(logits, CTCAlphabet.from_tokenizer(tokenizer))
    for row, mine in zip(logits.argmax(-1), ours):
        ref = tokenizer.decode(row.tolist(), output_word_offsets=True)
        assert mine.text == ref.text
        assert [(w.text, w.start_frame, w.end_frame) for w in mine.words] == [
            (w["word"], int(w["start_offset"]), int(w["end_offset"])) for w in ref.word_offsets
        ]


def test_wrong_vocab_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="40 classes but the alphabet has 30"):
        greedy_decode(torch.zeros(5, 40), alphabet())


def test_alphabet_from_tokenizer_in_id_order(tmp_path) -> None:
    a = CTCAlphabet.from_tokenizer(make_processor(tmp_path))  # a processor works too
    assert a.labels[:4] == ("", "⁇", " ", "'")
    assert a.labels[VOCAB["Z"]] == "Z"
    assert (a.blank_id, a.unk_id, a.delimiter_id) == (0, 1, 2)
    assert a.characters == set(VOCAB) - {"[PAD]", "[UNK]", "|"}


def test_alphabet_rejects_gaps_and_missing_blank() -> None:
    with pytest.raises(ValueError, match="without gaps"):
        CTCAlphabet.from_vocab({"[PAD]": 0, "A": 2})
    with pytest.raises(ValueError, match="blank token"):
        CTCAlphabet.from_vocab({"<pad>": 0, "A": 1})


def test_synthetic_logits_spell_the_text() -> None:
    g = torch.Generator().manual_seed(0)
    text = "HELLO WORLD IT'S ME"
    assert greedy_decode(synthetic_logits(text, alphabet(), generator=g), alphabet())[0].text == text
    noisy = synthetic_logits(text, alphabet(), SimulatedAcoustics(confusion=1.0), generator=g)
    assert greedy_decode(noisy, alphabet())[0].text != text
    with pytest.raises(ValueError, match="not in the alphabet"):
        synthetic_logits("hello", alphabet())
