"""Adapters against stock transformers (the oracle): the convolutional adapter (``add_adapter``) and the
MMS language adapters (``adapter_attn_dim``, ``adapter.<lang>.safetensors`` files, ``load_adapter``,
``target_lang``), same weights, both loading directions. Folders are built here; no network."""

from __future__ import annotations

import pytest
import torch
import transformers
from oracle import audio_batch, config_kwargs, make_pair, rel_diff
from safetensors.torch import save_file

import hf_w2v2

TOL = 1e-4
LABELS = torch.tensor([[3, 4, 5], [8, 9, -100]])


def _randomised(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Perturb every parameter (norms and biases too) so that a swapped or ignored weight shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model.eval()


# --- convolutional adapter ----------------------------------------------------------------------
@pytest.mark.parametrize("family", ["base", "large-lv60"])
@pytest.mark.parametrize("output_hidden_size", [None, 64])
def test_conv_adapter_encoder_output_and_lengths(family, output_hidden_size):
    stock, ours = make_pair(
        "Wav2Vec2Model", family, add_adapter=True, num_adapter_layers=2, output_hidden_size=output_hidden_size
    )
    audio, mask = audio_batch([8000, 6400])
    mask = mask if family == "large-lv60" else None
    with torch.no_grad():
        ref = stock(audio, attention_mask=mask, output_hidden_states=True)
        out = ours(audio, attention_mask=mask, output_hidden_states=True)
    assert out.last_hidden_state.shape[-1] == (output_hidden_size or 48)
    assert rel_diff(out.last_hidden_state, ref.last_hidden_state) <= TOL
    for mine, theirs in zip(out.hidden_states, ref.hidden_states, strict=True):  # the encoder's, before the adapter
        assert rel_diff(mine, theirs) <= TOL
    lengths = torch.tensor([8000, 6400, 401])
    for add_adapter in (None, False, True):
        assert torch.equal(
            ours._get_feat_extract_output_lengths(lengths, add_adapter=add_adapter),
            stock._get_feat_extract_output_lengths(lengths, add_adapter=add_adapter),
        )
    assert ours._get_feat_extract_output_lengths(8000) == out.last_hidden_state.shape[1]


@pytest.mark.parametrize("family", ["base", "large-lv60"])
def test_conv_adapter_ctc_logits_and_loss(family):
    stock, ours = make_pair("Wav2Vec2ForCTC", family, add_adapter=True, num_adapter_layers=1, output_hidden_size=96)
    assert ours.lm_head.in_features == stock.lm_head.in_features == 96
    audio, mask = audio_batch([8000, 6400])
    with torch.no_grad():
        ref = stock(audio, attention_mask=mask, labels=LABELS)
        out = ours(audio, attention_mask=mask, labels=LABELS)
    assert rel_diff(out.logits, ref.logits) <= TOL
    assert torch.isfinite(out.loss) and rel_diff(out.loss, ref.loss) <= TOL


def test_output_hidden_size_without_adapter_leaves_the_head_on_hidden_size():
    stock, ours = make_pair("Wav2Vec2ForCTC", "base", output_hidden_size=64)
    assert ours.lm_head.in_features == stock.lm_head.in_features == 48


@pytest.mark.parametrize("name", ["Wav2Vec2ForSequenceClassification", "Wav2Vec2ForAudioFrameClassification"])
def test_classification_heads_refuse_the_conv_adapter_like_stock(name):
    config = config_kwargs("base", add_adapter=True)
    with pytest.raises(ValueError, match="does not support the use of Wav2Vec2 adapters") as ours:
        getattr(hf_w2v2, name)(hf_w2v2.Wav2Vec2Config(**config))
    with pytest.raises(ValueError) as stock:
        getattr(transformers, name)(transformers.Wav2Vec2Config(**config))
    assert str(ours.value) == str(stock.value)


def test_pretraining_refuses_the_conv_adapter_with_a_reason():
    with pytest.raises(ValueError, match="add_adapter"):
        hf_w2v2.Wav2Vec2ForPreTraining(hf_w2v2.Wav2Vec2Config(**config_kwargs("base", add_adapter=True)))


@pytest.mark.parametrize("direction", ["stock->ours", "ours->stock"])
def test_conv_adapter_checkpoint_loads_both_ways(tmp_path, direction):
    kwargs = config_kwargs("large-lv60", add_adapter=True, num_adapter_layers=2, output_hidden_size=64)
    src_lib, dst_lib = (transformers, hf_w2v2) if direction == "stock->ours" else (hf_w2v2, transformers)
    torch.manual_seed(3)
    source = _randomised(src_lib.Wav2Vec2ForCTC(src_lib.Wav2Vec2Config(**kwargs)), 3)
    source.save_pretrained(tmp_path)
    loaded, info = dst_lib.Wav2Vec2ForCTC.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info.values()), info
    assert set(loaded.state_dict()) == set(source.state_dict())
    assert any(k.startswith("wav2vec2.adapter.layers.1.conv") for k in loaded.state_dict())
    audio, mask = audio_batch([8000, 6400])
    with torch.no_grad():
        assert (
            rel_diff(loaded.eval()(audio, attention_mask=mask).logits, source(audio, attention_mask=mask).logits) <= TOL
        )


# --- MMS attention adapters -------------------------------------------------------------------------
def test_attention_adapter_logits_and_adapter_keys():
    stock, ours = make_pair("Wav2Vec2ForCTC", "large-lv60", adapter_attn_dim=8)
    audio, mask = audio_batch([8000, 6400])
    with torch.no_grad():
        assert rel_diff(ours(audio, attention_mask=mask).logits, stock(audio, attention_mask=mask).logits) <= TOL
    assert list(ours._get_adapters()) == list(stock._get_adapters())
    assert len(ours._get_adapters()) == 3 * 6 + 2  # norm, linear_1, linear_2 (weight + bias) per block, lm_head
    encoder_stock, encoder_ours = make_pair("Wav2Vec2Model", "large-lv60", adapter_attn_dim=8)
    assert list(encoder_ours._get_adapters()) == list(encoder_stock._get_adapters())  # no prefix, no head
    base_stock, base_ours = make_pair("Wav2Vec2ForCTC", "base", adapter_attn_dim=8)  # post-LN: no adapter layers
    assert list(base_ours._get_adapters()) == list(base_stock._get_adapters()) == ["lm_head.weight", "lm_head.bias"]


def _mms_folder(folder, writer: str = "stock"):
    """An MMS-style folder: a CTC checkpoint with adapters plus adapter files for three languages,
    "fra" (other vocabulary size, safetensors), "ita" (same size, .bin only), "deu" (both formats)."""
    kwargs = config_kwargs("large-lv60", adapter_attn_dim=8)
    lib = transformers if writer == "stock" else hf_w2v2
    torch.manual_seed(5)
    model = _randomised(lib.Wav2Vec2ForCTC(lib.Wav2Vec2Config(**kwargs)), 5)
    model.save_pretrained(folder)
    g = torch.Generator().manual_seed(6)
    adapters = model._get_adapters()
    languages = {}
    for lang, vocab in (("fra", 20), ("ita", 12), ("deu", 7)):
        weights = {k: torch.randn(v.shape, generator=g) * 0.1 for k, v in adapters.items()}
        weights["lm_head.weight"] = torch.randn(vocab, 48, generator=g) * 0.1
        weights["lm_head.bias"] = torch.randn(vocab, generator=g) * 0.1
        languages[lang] = weights
    save_file(languages["fra"], folder / "adapter.fra.safetensors")
    torch.save(languages["ita"], folder / "adapter.ita.bin")
    save_file(languages["deu"], folder / "adapter.deu.safetensors")
    torch.save(languages["deu"], folder / "adapter.deu.bin")
    return model


def _logits(model, audio, mask):
    with torch.no_grad():
        return model.eval()(audio, attention_mask=mask).logits


@pytest.mark.parametrize("writer", ["stock", "ours"])
def test_target_lang_in_from_pretrained_matches_stock(tmp_path, writer):
    _mms_folder(tmp_path, writer)
    audio, mask = audio_batch([8000, 6400])
    for lang, vocab in (("fra", 20), ("ita", 12)):
        stock = transformers.Wav2Vec2ForCTC.from_pretrained(tmp_path, target_lang=lang)
        ours = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path, target_lang=lang)
        assert ours.target_lang == lang and ours.config.vocab_size == stock.config.vocab_size == vocab
        assert rel_diff(_logits(ours, audio, mask), _logits(stock, audio, mask)) <= TOL


def test_switching_languages_on_a_loaded_model_matches_stock(tmp_path):
    _mms_folder(tmp_path)
    audio, mask = audio_batch([8000, 6400])
    stock = transformers.Wav2Vec2ForCTC.from_pretrained(tmp_path)
    ours = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path)
    assert rel_diff(_logits(ours, audio, mask), _logits(stock, audio, mask)) <= TOL  # the checkpoint's own adapters
    outputs = {}
    for lang in ("fra", "ita", "deu", "fra"):
        stock.load_adapter(lang)
        ours.load_adapter(lang)
        assert ours.lm_head.out_features == stock.lm_head.out_features == ours.config.vocab_size
        mine = _logits(ours, audio, mask)
        assert rel_diff(mine, _logits(stock, audio, mask)) <= TOL, lang
        if lang in outputs:  # back to a language: exactly its weights again
            assert torch.equal(mine, outputs[lang])
        outputs[lang] = mine
    assert not torch.allclose(outputs["fra"][..., :7], outputs["deu"])


def test_load_adapter_file_formats_and_errors_like_stock(tmp_path):
    _mms_folder(tmp_path)
    stock = transformers.Wav2Vec2ForCTC.from_pretrained(tmp_path)
    ours = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path)
    cases = [
        ("fra", dict(use_safetensors=True)),
        ("fra", dict(use_safetensors=False)),  # only a safetensors file exists
        ("ita", dict(use_safetensors=True)),  # only a .bin exists
        ("ita", dict(use_safetensors=False)),
        ("ita", {}),
        ("deu", dict(use_safetensors=False)),
        ("xxx", {}),
    ]
    for lang, kwargs in cases:
        outcome = []
        for model in (stock, ours):
            try:
                model.load_adapter(lang, **kwargs)
                outcome.append("ok")
            except OSError as error:
                outcome.append("OSError")
                if model is ours:
                    assert f"adapter.{lang}." in str(error)
        assert outcome[0] == outcome[1], (lang, kwargs, outcome)


def test_adapter_file_with_wrong_keys_is_refused_naming_them(tmp_path):
    model = _mms_folder(tmp_path)
    weights = {k: v.detach().clone() for k, v in model._get_adapters().items()}
    extra = dict(weights, **{"wav2vec2.encoder.layers.9.adapter_layer.norm.weight": torch.zeros(48)})
    save_file(extra, tmp_path / "adapter.bad.safetensors")
    del weights["lm_head.bias"]
    save_file(weights, tmp_path / "adapter.part.safetensors")
    ours = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"unexpected keys: wav2vec2\.encoder\.layers\.9"):
        ours.load_adapter("bad")
    with pytest.raises(ValueError, match=r"missing keys: lm_head\.bias"):
        ours.load_adapter("part")


def test_adapters_need_adapter_attn_dim(tmp_path):
    torch.manual_seed(0)
    hf_w2v2.Wav2Vec2ForCTC(hf_w2v2.Wav2Vec2Config(**config_kwargs("large-lv60"))).save_pretrained(tmp_path)
    model = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="adapter_attn_dim"):
        model.load_adapter("fra")
    with pytest.raises(ValueError, match="adapter_attn_dim"):
        hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path, target_lang="fra")


def test_hub_repo_without_the_file_is_an_os_error_offline():
    from hf_w2v2.models.adapters import resolve_adapter_file

    with pytest.raises(OSError, match=r"adapter\.fra\.safetensors or adapter\.fra\.bin"):
        resolve_adapter_file("hf-w2v2-tests/not-a-cached-repo", "fra", None, local_files_only=True)


def test_force_load_false_keeps_the_loaded_language(tmp_path):
    _mms_folder(tmp_path)
    ours = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path, target_lang="fra")
    with torch.no_grad():
        ours.lm_head.bias.fill_(1.0)
    ours.load_adapter("fra", force_load=False)
    assert torch.all(ours.lm_head.bias == 1.0)
    ours.load_adapter("fra")
    assert not torch.all(ours.lm_head.bias == 1.0)


def test_adapter_weights_saved_from_ours_load_in_stock(tmp_path):
    """A language trained with hf_w2v2 and saved the MMS way (``_get_adapters`` -> safetensors) loads in stock."""
    _mms_folder(tmp_path, writer="ours")
    ours = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path)
    ours.load_adapter("fra")
    ours.init_adapter_layers()
    with torch.no_grad():
        for p in ours._get_adapters().values():
            p.add_(0.05)
    save_file(
        {k: v.detach().contiguous() for k, v in ours._get_adapters().items()}, tmp_path / "adapter.new.safetensors"
    )
    stock = transformers.Wav2Vec2ForCTC.from_pretrained(tmp_path, target_lang="new")
    audio, mask = audio_batch([8000, 6400])
    assert rel_diff(_logits(ours, audio, mask), _logits(stock, audio, mask)) <= TOL


def test_init_adapter_layers_resets_only_adapters_and_head(tmp_path):
    _mms_folder(tmp_path)
    ours = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path)
    before = {k: v.detach().clone() for k, v in ours.state_dict().items()}
    ours.init_adapter_layers()
    adapter_keys = set(ours._get_adapters())
    for key, value in ours.state_dict().items():
        if key in adapter_keys:
            if key.endswith("norm.weight"):
                assert torch.all(value == 1.0), key
            elif key.endswith("bias"):
                assert torch.all(value == 0.0), key
            else:
                assert not torch.equal(value, before[key]) and value.std() < 0.1, key
        else:
            assert torch.equal(value, before[key]), key


def test_feature_vector_attention_mask_matches_stock():
    stock, ours = make_pair("Wav2Vec2Model", "large-lv60", add_adapter=True, num_adapter_layers=2)
    _, mask = audio_batch([8000, 6400, 3000])
    frames = int(ours._get_feat_extract_output_lengths(8000, add_adapter=False))
    for length, add_adapter in ((frames, False), (7, None), (7, True)):
        assert torch.equal(
            ours._get_feature_vector_attention_mask(length, mask, add_adapter=add_adapter),
            stock._get_feature_vector_attention_mask(length, mask, add_adapter=add_adapter),
        )


def test_adapter_file_of_the_wrong_shape_changes_nothing(tmp_path):
    model = _mms_folder(tmp_path)
    weights = {k: v.detach().clone() for k, v in model._get_adapters().items()}
    weights["lm_head.weight"] = torch.zeros(30, 48)
    weights["lm_head.bias"] = torch.zeros(30)
    weights["wav2vec2.encoder.layers.0.adapter_layer.norm.weight"] = torch.zeros(40)
    save_file(weights, tmp_path / "adapter.bad.safetensors")
    ours = hf_w2v2.Wav2Vec2ForCTC.from_pretrained(tmp_path)
    before = {k: v.detach().clone() for k, v in ours.state_dict().items()}
    with pytest.raises(RuntimeError, match=r"size mismatch for wav2vec2\.encoder\.layers\.0\.adapter_layer\.norm"):
        ours.load_adapter("bad")
    assert ours.config.vocab_size == 12 and ours.lm_head.out_features == 12
    assert all(torch.equal(v, before[k]) for k, v in ours.state_dict().items())
