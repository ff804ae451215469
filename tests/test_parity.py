"""Parity with stock transformers (the oracle) in fp32 eval mode, same weights: <= 1e-4 max relative difference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from oracle import audio_batch, make_pair, rel_diff
from transformers.models.wav2vec2 import modeling_wav2vec2 as stock_modeling

import hf_w2v2

TOL = 1e-4
FAMILIES = ["base", "large-lv60"]
LENGTHS = [8000, 6400, 5000]


def _inputs(family: str, masked: bool):
    audio, mask = audio_batch(LENGTHS)
    return audio, (mask if masked else None)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("masked", [False, True])
def test_model_outputs_and_every_hidden_state(family, masked):
    stock, ours = make_pair("Wav2Vec2Model", family)
    audio, mask = _inputs(family, masked)
    with torch.no_grad():
        ref = stock(audio, attention_mask=mask, output_hidden_states=True)
        out = ours(audio, attention_mask=mask, output_hidden_states=True)
    assert rel_diff(out.last_hidden_state, ref.last_hidden_state) <= TOL
    assert rel_diff(out.extract_features, ref.extract_features) <= TOL
    assert len(out.hidden_states) == len(ref.hidden_states) == ours.config.num_hidden_layers + 1
    for mine, theirs in zip(out.hidden_states, ref.hidden_states):
        assert rel_diff(mine, theirs) <= TOL


@pytest.mark.parametrize("family", FAMILIES)
def test_attention_maps(family):
    stock, ours = make_pair("Wav2Vec2Model", family)
    stock.config._attn_implementation = "eager"
    audio, mask = _inputs(family, True)
    with torch.no_grad():
        ref = stock(audio, attention_mask=mask, output_attentions=True)
        out = ours(audio, attention_mask=mask, output_attentions=True)
    assert len(out.attentions) == len(ref.attentions)
    for mine, theirs in zip(out.attentions, ref.attentions):
        assert rel_diff(mine, theirs) <= TOL


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("masked", [False, True])
def test_ctc_logits_and_loss(family, reduction, masked):
    stock, ours = make_pair("Wav2Vec2ForCTC", family, ctc_loss_reduction=reduction)
    audio, mask = _inputs(family, masked)
    labels = torch.tensor([[3, 4, 5, 5, 6, 7], [8, 9, 10, 3, -100, -100], [4, 4, 11, -100, -100, -100]])
    with torch.no_grad():
        ref = stock(audio, attention_mask=mask, labels=labels)
        out = ours(audio, attention_mask=mask, labels=labels)
    assert rel_diff(out.logits, ref.logits) <= TOL
    assert torch.isfinite(out.loss)
    assert rel_diff(out.loss, ref.loss) <= TOL


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("masked", [False, True])
def test_pretraining_losses_given_masks_and_negatives(family, masked):
    stock, ours = make_pair("Wav2Vec2ForPreTraining", family)
    audio, mask = _inputs(family, masked)
    frames = int(ours._get_feat_extract_output_lengths(audio.shape[1]))
    frame_mask = None
    if mask is not None:
        frame_mask = ours.frame_padding_mask(mask, frames).numpy()
    np.random.seed(0)
    time_mask = stock_modeling._compute_mask_indices(
        (audio.shape[0], frames),
        mask_prob=0.5,
        mask_length=3,
        attention_mask=None if frame_mask is None else torch.tensor(frame_mask),
        min_masks=2,
    )
    negatives = stock_modeling._sample_negative_indices((audio.shape[0], frames), ours.config.num_negatives, time_mask)
    time_mask = torch.tensor(time_mask, dtype=torch.bool)
    negatives = torch.tensor(negatives, dtype=torch.long)
    with torch.no_grad():
        ref = stock(audio, attention_mask=mask, mask_time_indices=time_mask, sampled_negative_indices=negatives)
        out = ours(audio, attention_mask=mask, mask_time_indices=time_mask, sampled_negative_indices=negatives)
    for field in (
        "loss",
        "contrastive_loss",
        "diversity_loss",
        "codevector_perplexity",
        "projected_states",
        "projected_quantized_states",
    ):
        assert rel_diff(getattr(out, field), getattr(ref, field)) <= TOL, field
    assert out.loss > 0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_sequence_classification(family, weighted, masked):
    stock, ours = make_pair("Wav2Vec2ForSequenceClassification", family, use_weighted_layer_sum=weighted)
    audio, mask = _inputs(family, masked)
    labels = torch.tensor([0, 3, 4])
    with torch.no_grad():
        ref = stock(audio, attention_mask=mask, labels=labels)
        out = ours(audio, attention_mask=mask, labels=labels)
    assert rel_diff(out.logits, ref.logits) <= TOL
    assert rel_diff(out.loss, ref.loss) <= TOL


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("weighted", [False, True])
def test_frame_classification(family, weighted):
    stock, ours = make_pair("Wav2Vec2ForAudioFrameClassification", family, use_weighted_layer_sum=weighted)
    audio, mask = _inputs(family, True)
    frames = int(ours._get_feat_extract_output_lengths(audio.shape[1]))
    labels = torch.nn.functional.one_hot(
        torch.randint(0, 5, (3, frames), generator=torch.Generator().manual_seed(1)), 5
    )
    with torch.no_grad():
        ref = stock(audio, attention_mask=mask, labels=labels)
        out = ours(audio, attention_mask=mask, labels=labels)
    assert rel_diff(out.logits, ref.logits) <= TOL
    assert rel_diff(out.loss, ref.loss) <= TOL


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("weighted", [False, True])
def test_xvector_embeddings_unpadded(family, weighted):
    stock, ours = make_pair("Wav2Vec2ForXVector", family, use_weighted_layer_sum=weighted)
    audio, _ = audio_batch([6000, 6000])
    labels = torch.tensor([1, 4])
    with torch.no_grad():
        ref = stock(audio, labels=labels)
        out = ours(audio, labels=labels)
    assert rel_diff(out.embeddings, ref.embeddings) <= TOL
    assert rel_diff(out.logits, ref.logits) <= TOL
    assert rel_diff(out.loss, ref.loss) <= TOL


def test_xvector_with_attention_mask_full_length_item_matches():
    """transformers ignores TDNN dilation in its pooled lengths; items without padding still agree."""
    stock, ours = make_pair("Wav2Vec2ForXVector", "large-lv60")
    audio, mask = audio_batch([8000, 6000])
    with torch.no_grad():
        ref = stock(audio, attention_mask=mask)
        out = ours(audio, attention_mask=mask)
    assert rel_diff(out.embeddings[0], ref.embeddings[0]) <= TOL


def test_xvector_padded_item_equals_item_alone():
    _, ours = make_pair("Wav2Vec2ForXVector", "large-lv60")
    audio, mask = audio_batch([8000, 6000])
    with torch.no_grad():
        batched = ours(audio, attention_mask=mask).embeddings
        alone = ours(audio[1:, :6000]).embeddings
    assert rel_diff(batched[1], alone[0]) <= TOL


@pytest.mark.parametrize("name", ["Wav2Vec2Model", "Wav2Vec2ForCTC"])
def test_layer_norm_family_padded_batch_equals_items_one_by_one(name):
    _, ours = make_pair(name, "large-lv60")
    audio, mask = audio_batch(LENGTHS)
    with torch.no_grad():
        batched = ours(audio, attention_mask=mask)[0]
        for i, n in enumerate(LENGTHS):
            alone = ours(audio[i : i + 1, :n])[0]
            frames = alone.shape[1]
            assert rel_diff(batched[i, :frames], alone[0]) <= TOL


def test_return_dict_false_gives_the_same_tuple_as_transformers():
    stock, ours = make_pair("Wav2Vec2ForCTC", "base")
    audio, _ = audio_batch([4000])
    with torch.no_grad():
        ref = stock(audio, return_dict=False)
        out = ours(audio, return_dict=False)
    assert isinstance(out, tuple) and len(out) == len(ref)
    assert rel_diff(out[0], ref[0]) <= TOL


HEADS = [
    "Wav2Vec2Model",
    "Wav2Vec2ForCTC",
    "Wav2Vec2ForPreTraining",
    "Wav2Vec2ForSequenceClassification",
    "Wav2Vec2ForAudioFrameClassification",
    "Wav2Vec2ForXVector",
]


@pytest.mark.parametrize("name", HEADS)
def test_every_head_honours_output_hidden_states_from_the_config(tmp_path, name):
    """``from_pretrained(path, output_hidden_states=True)`` returns the hidden states, as stock does."""
    stock, _ = make_pair(name, "large-lv60")
    stock.save_pretrained(tmp_path)
    ref_model = getattr(transformers, name).from_pretrained(tmp_path, output_hidden_states=True).eval()
    ours = getattr(hf_w2v2, name).from_pretrained(tmp_path, output_hidden_states=True).eval()
    audio, _ = audio_batch([6000, 6000])
    with torch.no_grad():
        ref, out = ref_model(audio), ours(audio)
        explicit_off = ours(audio, output_hidden_states=False)
    assert len(out.hidden_states) == len(ref.hidden_states) == ours.config.num_hidden_layers + 1
    for mine, theirs in zip(out.hidden_states, ref.hidden_states, strict=True):
        assert rel_diff(mine, theirs) <= TOL
    assert explicit_off.hidden_states is None  # an explicit argument still wins over the config


@pytest.mark.parametrize("name", HEADS)
def test_every_head_honours_output_attentions_from_the_config(name):
    stock, ours = make_pair(name, "base", output_attentions=True)
    stock.config._attn_implementation = "eager"  # stock's SDPA path returns no attention maps
    audio, _ = audio_batch([6000, 6000])
    with torch.no_grad():
        ref, out = stock(audio), ours(audio)
    assert len(out.attentions) == len(ref.attentions) == ours.config.num_hidden_layers
    for mine, theirs in zip(out.attentions, ref.attentions, strict=True):
        assert rel_diff(mine, theirs) <= TOL


def test_return_dict_false_in_the_config_gives_a_tuple():
    stock, ours = make_pair("Wav2Vec2Model", "base", return_dict=False)
    audio, _ = audio_batch([4000])
    with torch.no_grad():
        ref, out = stock(audio), ours(audio)
    assert isinstance(out, tuple) and len(out) == len(ref)
    assert rel_diff(out[0], ref[0]) <= TOL
    _, ctc = make_pair("Wav2Vec2ForCTC", "base", return_dict=False)
    with torch.no_grad():
        assert isinstance(ctc(audio), tuple)  # stock 5.24's heads fail here (see docs/compatibility.md)
