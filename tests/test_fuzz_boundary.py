"""Property-based tests of the public input boundary (issue 23.17): model forward, feature extractor /
processor, collator and data readers get random shapes, dtypes, lengths, masks, label values and file
bytes, and either return a result or raise one of the documented errors (``ValueError`` and its
subclasses, e.g. ``AudioLoadError``), never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_w2v2 import Wav2Vec2ForCTC
from hf_w2v2.data.audio import load_audio_bytes
from hf_w2v2.data.collator import DataCollatorCTCWithPadding
from hf_w2v2.data.sources import read_manifest
from hf_w2v2.models.configuration import config_from_name

DOCUMENTED = (ValueError,)
VOCAB = 8
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def model() -> Wav2Vec2ForCTC:
    torch.manual_seed(0)
    return Wav2Vec2ForCTC(config_from_name("tiny", vocab_size=VOCAB, feat_extract_norm="layer")).eval()


# Floating inputs of another dtype are cast to the model's (models/validation.py); integers and bools are refused.
DTYPES = st.sampled_from(
    [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int16, torch.int64, torch.bool]
)


@st.composite
def forward_inputs(draw):
    ndim = draw(st.sampled_from([1, 2, 2, 2, 3]))
    batch = draw(st.integers(0, 3))
    samples = draw(st.integers(0, 1200))
    shape = {1: (samples,), 2: (batch, samples), 3: (batch, 2, samples)}[ndim]
    dtype = draw(DTYPES)
    values = torch.randn(shape) * draw(st.sampled_from([0.0, 1.0, 1e4]))
    if draw(st.booleans()) and values.numel():
        values.view(-1)[0] = draw(st.sampled_from([float("nan"), float("inf"), 0.0]))
    kwargs = {"input_values": values.to(dtype)}
    if draw(st.booleans()):
        mask_shape = draw(st.sampled_from([shape, (batch, max(samples - 1, 0)), (samples,)]))
        kwargs["attention_mask"] = torch.randint(0, 2, mask_shape).to(
            draw(st.sampled_from([torch.long, torch.bool, torch.float32]))
        )
    if draw(st.booleans()):
        # labels for another batch size are refused by the label batch-size check of models/validation.py
        rows = max(0, batch + draw(st.sampled_from([-1, 0, 0, 1])))
        labels = torch.randint(-100, VOCAB + 3, (rows, draw(st.integers(0, 6))))
        kwargs["labels"] = labels.to(draw(st.sampled_from([torch.long, torch.int32, torch.float32])))
    return kwargs


@FUZZ
@given(inputs=forward_inputs(), training=st.booleans())
def test_model_forward_returns_or_raises_a_documented_error(model, inputs, training) -> None:
    model.train(training)
    try:
        out = model(**inputs)
    except DOCUMENTED:
        return
    assert out.logits.shape[0] == inputs["input_values"].shape[0] and out.logits.shape[-1] == VOCAB


@st.composite
def collator_features(draw):
    count = draw(st.integers(0, 3))
    features = []
    for _ in range(count):
        kind = draw(st.sampled_from(["list", "array", "tensor", "2d", "scalar", "str", "none"]))
        n = draw(st.integers(0, 50))
        audio = {
            "list": [0.1] * n,
            "array": np.random.randn(n).astype(draw(st.sampled_from([np.float32, np.float64, np.int16]))),
            "tensor": torch.randn(n),
            "2d": np.zeros((2, n)),
            "scalar": 1.5,
            "str": "abc",
            "none": None,
        }[kind]
        item = {"input_values": audio}
        if draw(st.booleans()):
            item["labels"] = draw(st.lists(st.integers(-200, 50), max_size=5))
        if draw(st.booleans()):
            item = {"audio": audio}
        features.append(item)
    return features


@FUZZ
@given(features=collator_features(), mask=st.booleans(), multiple=st.sampled_from([None, 1, 8, 0, -3]))
def test_collator_returns_or_raises_a_documented_error(features, mask, multiple) -> None:
    try:
        batch = DataCollatorCTCWithPadding(return_attention_mask=mask, pad_to_multiple_of=multiple)(features)
    except DOCUMENTED:
        return
    assert batch["input_values"].shape[0] == len(features) and batch["input_values"].dtype == torch.float32


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=600), prefix=st.sampled_from([b"", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC", b"OggS"]))
def test_audio_bytes_decode_or_raise_a_documented_error(data, prefix) -> None:
    try:
        audio = load_audio_bytes(prefix + data, name="fuzz")
    except DOCUMENTED:
        return
    assert audio.ndim == 1 and audio.dtype == np.float32 and np.isfinite(audio).all()


@settings(max_examples=60, deadline=None)
@given(
    text=st.lists(st.sampled_from([*'ab,"\n\t{}[]:0 \\x', '"file_name"', '"text"', "a.wav", "null"]), max_size=60).map(
        "".join
    ),
    suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]),
    header=st.sampled_from(["", "file_name,text\n", '{"file_name": "a.wav", "text": "A"}\n']),
)
def test_manifest_reader_returns_or_raises_a_documented_error(text, suffix, header) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"m{suffix}"
        path.write_text(header + text, encoding="utf-8")
        (Path(folder) / "a.wav").write_bytes(b"")
        try:
            rows = read_manifest(path)
        except DOCUMENTED:
            return
        assert all(isinstance(u.path, str) and isinstance(u.text, str) for u in rows)


LISTING_PIECES = st.sampled_from(
    [*'ab,"\n\t{}:0 1 \\/#', "a.wav", "../", "/tmp/", "./", "..", "\xe9", "\udce9", '"path"', '"text"', "\ufeff"]
)
LISTING_BYTES = st.sampled_from([b"", b"\xe9", b"\xff\xfe", b"\x00", b"\xc3"])


def listing_bytes(draw_text: str, raw: bytes) -> bytes:
    """Fuzzed listing text as bytes, lone surrogates kept as their escaped bytes, plus raw non-UTF-8 bytes."""
    return draw_text.encode("utf-8", "surrogateescape") + raw


@settings(max_examples=40, deadline=None)
@given(
    text=st.lists(LISTING_PIECES, max_size=40).map("".join),
    raw=LISTING_BYTES,
    kind=st.sampled_from(["list.txt", "trials.txt", "m.csv", "m.jsonl", "metadata.csv", "shard.jsonl", "x.trans.txt"]),
)
def test_listing_readers_return_paths_inside_the_folder_or_raise_a_documented_error(text, raw, kind) -> None:
    """Every reader of a listing (issue 35): a result whose paths stay in the dataset folder, or a ValueError
    (not UTF-8, outside the folder, malformed, missing files); a stream shard skips and counts instead."""
    from hf_w2v2.classify.verification import read_trials
    from hf_w2v2.data.paths import is_inside
    from hf_w2v2.data.shards import ShardStats
    from hf_w2v2.data.sources import read_audio_paths, read_librispeech, read_source
    from hf_w2v2.data.stream_sources import read_shard

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "data"
        folder.mkdir()
        (folder / "a.wav").write_bytes(b"")
        path = folder / kind
        path.write_bytes(listing_bytes(text, raw))
        readers = {
            "list.txt": lambda: read_audio_paths(path),
            "trials.txt": lambda: [p for t in read_trials(path, check_files=False) for p in (t.a, t.b)],
            "m.csv": lambda: [u.path for u in read_source(path)],  # type: ignore[union-attr]
            "m.jsonl": lambda: [u.path for u in read_source(path)],  # type: ignore[union-attr]
            "metadata.csv": lambda: [u.path for u in read_source(folder)],  # type: ignore[union-attr]
            "x.trans.txt": lambda: [u.path for u in read_librispeech(folder)],
        }
        if kind == "shard.jsonl":
            stats = ShardStats()
            items = list(read_shard({"kind": "jsonl", "path": str(path)}, stats))
            paths = [item["path"] for item in items if item["path"] is not None]
            assert stats.items == len(items)
        else:
            try:
                paths = readers[kind]()
            except DOCUMENTED:
                return
        for found in paths:  # a relative entry climbing out would land in the scratch folder next to data/
            assert found is not None and (is_inside(found, folder) or not is_inside(found, scratch)), found


@FUZZ
@given(
    audio=st.lists(st.integers(0, 300), min_size=1, max_size=3),  # the stock extractor: IndexError on []
    dtype=st.sampled_from([np.float32, np.float64, np.int16, np.int32]),
    sampling_rate=st.sampled_from([None, 16000, 8000]),
    padding=st.sampled_from([True, False, "longest"]),
)
def test_feature_extractor_returns_or_raises_a_documented_error(audio, dtype, sampling_rate, padding) -> None:
    from hf_w2v2.data.processor import build_feature_extractor

    extractor = build_feature_extractor(config_from_name("tiny", feat_extract_norm="layer"))
    arrays = [np.random.randn(n).astype(dtype) for n in audio]
    try:
        out = extractor(arrays, sampling_rate=sampling_rate, padding=padding, return_tensors="pt")
    except DOCUMENTED:
        return
    assert out["input_values"].shape[0] == len(arrays)
