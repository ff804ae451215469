"""Behaviour beyond parity: bad input, training-mode masking, freezing, checkpointing, own masks and negatives."""

from __future__ import annotations

import math

import pytest
import torch
from oracle import audio_batch, config_kwargs, rel_diff

import hf_w2v2
from hf_w2v2.models.configuration import large_lv60, tiny
from hf_w2v2.models.lengths import conv_output_length, receptive_field


def _ctc(**overrides) -> hf_w2v2.Wav2Vec2ForCTC:
    torch.manual_seed(0)
    return hf_w2v2.Wav2Vec2ForCTC(hf_w2v2.Wav2Vec2Config(**config_kwargs("large-lv60", **overrides)))


def test_output_lengths_match_the_encoder():
    model = _ctc().eval()
    for n in (400, 401, 719, 720, 16000, 16319):
        frames = model.wav2vec2.feature_extractor(torch.zeros(1, n)).shape[-1]
        assert conv_output_length(n, model.config.conv_kernel, model.config.conv_stride) == frames
        lengths = torch.tensor([n])
        assert int(model._get_feat_extract_output_lengths(lengths)) == frames
    assert receptive_field(model.config.conv_kernel, model.config.conv_stride) == 400
    assert model.config.inputs_to_logits_ratio == 320


@pytest.mark.parametrize(
    "audio, message",
    [
        (torch.zeros(1, 399), "shorter than the receptive field"),
        (torch.zeros(4000), r"shape \(batch, samples\)"),
        (torch.zeros(1, 2, 4000), r"shape \(batch, samples\)"),
        (torch.zeros(1, 4000, dtype=torch.int16), "floating point"),
        (torch.tensor([[0.0] * 3999 + [float("nan")]]), "NaN or infinite"),
        (torch.tensor([[0.0] * 3999 + [float("inf")]]), "NaN or infinite"),
    ],
)
def test_bad_audio_raises_a_clear_value_error(audio, message):
    model = _ctc().eval()
    with pytest.raises(ValueError, match=message):
        model(audio)


def test_labels_out_of_vocabulary_raise():
    model = _ctc().eval()
    with pytest.raises(ValueError, match="out of range: vocab_size is 12"):
        model(torch.randn(1, 4000), labels=torch.tensor([[1, 12]]))


def test_padded_item_shorter_than_receptive_field_raises():
    model = _ctc().eval()
    audio, mask = audio_batch([4000, 300])
    with pytest.raises(ValueError, match="receptive field"):
        model(audio, attention_mask=mask)


def test_labels_longer_than_frames_give_inf_or_zero_with_zero_infinity():
    """Documented: no CTC alignment exists -> inf loss; ctc_zero_infinity turns it into 0."""
    audio = torch.randn(1, 1600)  # 4 frames
    labels = torch.tensor([[3, 4, 5, 6, 7, 8]])
    model = _ctc().eval()
    assert math.isinf(model(audio, labels=labels).loss.item())
    model = _ctc(ctc_zero_infinity=True).eval()
    assert model(audio, labels=labels).loss.item() == 0.0


def test_spec_augment_masks_in_training_only_and_never_in_padding():
    torch.manual_seed(0)
    model = hf_w2v2.Wav2Vec2Model(tiny(feat_extract_norm="layer", mask_time_prob=0.5, mask_time_length=2))
    audio, mask = audio_batch([16000, 8000])
    frames = model.frame_padding_mask(mask, 49)
    model.train()
    hidden = torch.randn(2, 49, 32)
    masked, used = model.mask_hidden_states(hidden.clone(), padding_mask=frames)
    assert used is not None and used.any()
    assert not (used & ~frames).any()
    assert torch.equal(masked[used], model.masked_spec_embed.expand(int(used.sum()), -1))
    model.eval()
    same, used = model.mask_hidden_states(hidden.clone(), padding_mask=frames)
    assert used is None and torch.equal(same, hidden)


def test_feature_masking_zeroes_whole_channels_in_training():
    torch.manual_seed(0)
    model = hf_w2v2.Wav2Vec2Model(tiny(mask_time_prob=0.0, mask_feature_prob=0.5, mask_feature_length=4)).train()
    out, _ = model.mask_hidden_states(torch.ones(2, 10, 32))
    zero_channels = (out == 0).all(dim=1)  # (B, D)
    assert zero_channels.any()
    assert ((out == 0) == zero_channels[:, None, :]).all()


def test_no_masked_spec_embed_without_masking_like_the_hub_format():
    model = hf_w2v2.Wav2Vec2Model(tiny(mask_time_prob=0.0, mask_feature_prob=0.0))
    assert "masked_spec_embed" not in model.state_dict()


def test_freeze_feature_encoder_stops_its_gradients():
    model = _ctc(layerdrop=0.0)
    model.freeze_feature_encoder()
    model.train()
    audio, _ = audio_batch([6000])
    model(audio, labels=torch.tensor([[3, 4]])).loss.backward()
    assert all(p.grad is None for p in model.wav2vec2.feature_extractor.parameters())
    assert model.lm_head.weight.grad is not None and model.lm_head.weight.grad.abs().sum() > 0


def test_gradient_checkpointing_gives_the_same_gradients():
    kwargs = dict(
        layerdrop=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        final_dropout=0.0,
        mask_time_prob=0.0,
    )
    audio, mask = audio_batch([6000, 5000])
    labels = torch.tensor([[3, 4, 5], [6, 7, -100]])
    grads = []
    for checkpointing in (False, True):
        model = _ctc(**kwargs).train()
        if checkpointing:
            getattr(model, "activation_checkpointing_enable", model.gradient_checkpointing_enable)()
            assert model.wav2vec2.encoder.gradient_checkpointing
        model(audio, attention_mask=mask, labels=labels).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert rel_diff(grads[1], grads[0]) <= 1e-5


def test_layerdrop_skips_blocks_in_training_but_keeps_hidden_state_count():
    torch.manual_seed(0)
    model = hf_w2v2.Wav2Vec2Model(tiny(layerdrop=1.0)).train()
    out = model(torch.randn(1, 4000), output_hidden_states=True)
    assert len(out.hidden_states) == 3
    assert torch.equal(out.hidden_states[0], out.hidden_states[-1])  # every block skipped


def test_pretraining_draws_its_own_masks_and_negatives_in_training():
    torch.manual_seed(0)
    model = hf_w2v2.Wav2Vec2ForPreTraining(tiny(mask_time_prob=0.5, mask_time_length=2, feat_extract_norm="layer"))
    model.train()
    audio, mask = audio_batch([16000, 9000])
    out = model(audio, attention_mask=mask)
    frames = model.frame_padding_mask(mask, out.mask_time_indices.shape[1])
    assert out.loss is not None and torch.isfinite(out.loss)
    assert out.mask_time_indices.any() and not (out.mask_time_indices & ~frames).any()
    b, f, k = out.sampled_negative_indices.shape
    assert k == model.config.num_negatives
    rows = out.sampled_negative_indices // f  # flat index -> row
    assert torch.equal(rows, torch.arange(b)[:, None, None].expand(b, f, k))
    out.loss.backward()
    assert model.quantizer.weight_proj.weight.grad.abs().sum() > 0


def test_pretraining_uses_given_masks_and_negatives():
    torch.manual_seed(0)
    model = hf_w2v2.Wav2Vec2ForPreTraining(tiny()).eval()
    audio = torch.randn(1, 8000)
    mask = torch.zeros(1, 24, dtype=torch.bool)
    mask[0, 3:9] = True
    negatives = torch.full((1, 24, 5), 4)
    out = model(audio, mask_time_indices=mask, sampled_negative_indices=negatives)
    assert torch.equal(out.sampled_negative_indices, negatives)
    assert out.contrastive_logits.shape == (6, 1, 24)
    assert model(audio).loss is None  # eval without a mask: nothing to predict


def test_large_preset_matches_published_shape():
    config = large_lv60()
    assert (config.hidden_size, config.num_hidden_layers, config.conv_bias) == (1024, 24, True)
    with torch.device("meta"):
        model = hf_w2v2.Wav2Vec2Model(config)
    assert 300e6 < sum(p.numel() for p in model.parameters()) < 320e6


def test_equal_count_masking_gives_every_utterance_the_same_number_of_masked_frames():
    torch.manual_seed(0)
    config = tiny(mask_time_prob=0.6, mask_time_length=2, mask_time_equal_count=True, feat_extract_norm="layer")
    model = hf_w2v2.Wav2Vec2ForPreTraining(config).train()
    audio, mask = audio_batch([16000, 9000, 12000])
    counts = model(audio, attention_mask=mask).mask_time_indices.sum(dim=-1)
    assert counts.min() > 0 and (counts == counts[0]).all()


def test_empty_time_mask_gives_finite_losses():
    model = hf_w2v2.Wav2Vec2ForPreTraining(tiny()).train()
    audio = torch.randn(2, 8000)
    empty = torch.zeros(2, 24, dtype=torch.bool)
    out = model(audio, mask_time_indices=empty, sampled_negative_indices=torch.zeros(2, 24, 5, dtype=torch.long))
    assert torch.isfinite(out.codevector_perplexity) and out.loss.item() == 0.0


def test_eval_after_in_place_updates_uses_the_new_weights():
    """Regression: packed Q/K/V weights must never be a stale copy (updates via .data or foreach)."""
    torch.manual_seed(0)
    model = hf_w2v2.Wav2Vec2ForCTC(tiny()).eval()
    audio = torch.randn(1, 8000)
    with torch.no_grad():
        before = model(audio).logits
        for p in model.parameters():
            p.data.add_(0.1 * torch.randn_like(p))  # .data updates leave the version counter alone
        after = model(audio).logits
    fresh = hf_w2v2.Wav2Vec2ForCTC(tiny()).eval()
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(before, after)
        assert torch.equal(after, fresh(audio).logits)
