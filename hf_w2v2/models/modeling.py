"""The wav2vec 2.0 encoder as a Hugging Face ``PreTrainedModel``.

Shape legend: B batch, T samples, F frames, C encoder channels, D model dim.

``Wav2Vec2Model`` = feature encoder -> feature projection -> SpecAugment
masking -> Transformer (-> convolutional adapter with ``config.add_adapter``).
Heads live in their own files (``ctc.py``, ``classification.py``, ``xvector.py``,
``pretraining.py``) and share :class:`Wav2Vec2PreTrainedModel` for loading,
saving, weight init and language adapters.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import PreTrainedModel

from .adapters import ConvAdapter, LanguageAdapterMixin, adapter_output_length
from .configuration import Wav2Vec2Config
from .feature_encoder import FeatureEncoder
from .feature_projection import FeatureProjection
from .integrity import warn_nonfinite_weights
from .lengths import attention_mask_to_lengths, conv_output_length, lengths_to_padding_mask
from .loading import ConfigWeightsMismatchError, architecture_mismatch, init_missing_composites, mismatch_message
from .masking import compute_span_mask, time_mask
from .outputs import Wav2Vec2BaseModelOutput
from .position_encoder import ConvPositionEncoder
from .quantizer import GumbelVectorQuantizer
from .transformer import TransformerEncoder
from .validation import check_audio


# LanguageAdapterMixin.load_adapter replaces the PEFT mixin's method of that name, as in stock transformers.
class Wav2Vec2PreTrainedModel(LanguageAdapterMixin, PreTrainedModel):  # type: ignore[misc]
    """Shared loading, saving, init, length arithmetic and language adapters of all wav2vec 2.0 classes.

    The config is validated here, when a model is built (directly or by ``from_pretrained``), as
    stock transformers does: a config may be created first and edited field by field.
    """

    config: Wav2Vec2Config
    config_class = Wav2Vec2Config
    base_model_prefix = "wav2vec2"
    main_input_name = "input_values"
    input_modalities = "audio"
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def __init__(self, config: Wav2Vec2Config, *inputs: Any, **kwargs: Any) -> None:
        if isinstance(config, Wav2Vec2Config):
            try:
                config.check()
            except ValueError as error:
                source = getattr(config, "_name_or_path", "")
                raise ValueError(f"{source}/config.json: {error}" if source else str(error)) from None
        super().__init__(config, *inputs, **kwargs)

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any) -> Any:
        """``PreTrainedModel.from_pretrained``, then the checks of :mod:`hf_w2v2.models.loading`.

        Raises ``ConfigWeightsMismatchError`` (a ``ValueError``) when ``config.json`` and the weights
        describe different encoders, and ``OSError`` naming a weights file that cannot be read
        (truncated, overwritten). NaN/inf weights load with a warning naming them, as in stock.
        """
        source = str(args[0] if args else kwargs.get("pretrained_model_name_or_path"))
        want_info = kwargs.pop("output_loading_info", False)
        try:
            loaded: Any = super().from_pretrained(*args, output_loading_info=True, **kwargs)
        except SafetensorError as error:
            raise OSError(
                f"{source}: a weights file (model.safetensors) is damaged or truncated ({error}); "
                "copy or download it again, or use another checkpoint"
            ) from None
        except RuntimeError as error:
            if "ignore_mismatched_sizes" not in str(error):
                raise
            raise ConfigWeightsMismatchError(
                mismatch_message(source, "tensor shapes differ, listed in the report logged above")
            ) from None
        model, info = loaded
        init_missing_composites(model, model._init_weights, info.get("missing_keys", ()))
        problem = architecture_mismatch(
            model, info.get("missing_keys", ()), info.get("unexpected_keys", ()), info.get("mismatched_keys", ())
        )
        if problem is not None:
            raise ConfigWeightsMismatchError(mismatch_message(source, problem, model.config))
        warn_nonfinite_weights(model, source)
        return (model, info) if want_info else model

    def get_input_embeddings(self) -> None:  # type: ignore[override]  # audio in: no token embedding
        """None: the input is audio, there is no embedding table (accelerate's FSDP2 asks, and expects None
        from models without one; the inherited method raises ``NotImplementedError``)."""
        return None

    def _init_weights(self, module: nn.Module) -> None:
        """fairseq's init. Only ``torch.nn.init`` calls, so weights loaded by ``from_pretrained`` are kept."""
        std = self.config.initializer_range
        if isinstance(module, GumbelVectorQuantizer):
            nn.init.normal_(module.weight_proj.weight, mean=0.0, std=1.0)
            nn.init.zeros_(module.weight_proj.bias)
            nn.init.uniform_(module.codevectors)
        elif isinstance(module, ConvPositionEncoder):
            conv = module.conv
            kernel, channels = conv.kernel_size[0], conv.in_channels
            v_std = math.sqrt(4.0 / (kernel * channels))
            nn.init.normal_(conv.parametrizations.weight.original1, mean=0.0, std=v_std)
            # g = expected norm of v over the (out, in/groups) slice of each kernel tap, so w ~= v.
            nn.init.constant_(
                conv.parametrizations.weight.original0, v_std * math.sqrt(channels * channels / conv.groups)
            )
            nn.init.zeros_(conv.bias)
        elif isinstance(module, FeatureProjection):
            bound = 1.0 / math.sqrt(module.projection.in_features)
            nn.init.uniform_(module.projection.weight, -bound, bound)
            nn.init.uniform_(module.projection.bias, -bound, bound)
        elif isinstance(module, nn.Conv1d) and not hasattr(module, "parametrizations"):
            nn.init.kaiming_normal_(module.weight)
            if module.bias is not None:
                bound = math.sqrt(module.groups / (module.in_channels * module.kernel_size[0]))
                nn.init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, nn.Linear) and not _in_special_parent(self, module):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, Wav2Vec2Model) and module.masked_spec_embed is not None:
            nn.init.uniform_(module.masked_spec_embed)

    # --- length arithmetic --------------------------------------------------------
    def _get_feat_extract_output_lengths(
        self, input_lengths: torch.Tensor | int, add_adapter: bool | None = None
    ) -> torch.Tensor | int:
        """Output frames for ``input_lengths`` samples (transformers' method name, kept for pipelines).

        Includes the convolutional adapter's down-sampling when ``add_adapter`` (default: the config's).
        """
        cfg = self.config
        frames = conv_output_length(input_lengths, cfg.conv_kernel, cfg.conv_stride)
        if cfg.add_adapter if add_adapter is None else add_adapter:
            frames = adapter_output_length(frames, cfg.num_adapter_layers, cfg.adapter_stride)
        return frames

    def frame_lengths(self, attention_mask: torch.Tensor, add_adapter: bool | None = None) -> torch.Tensor:
        """Valid output frames per item from a sample-level attention mask ``(B, T)`` (adapter as above)."""
        lengths = self._get_feat_extract_output_lengths(attention_mask_to_lengths(attention_mask), add_adapter)
        assert isinstance(lengths, torch.Tensor)  # tensor in, tensor out
        return lengths

    def frame_padding_mask(
        self, attention_mask: torch.Tensor | None, num_frames: int, add_adapter: bool | None = None
    ) -> torch.Tensor | None:
        """``(B, F)`` True on valid frames, or None when nothing is padded."""
        if attention_mask is None:
            return None
        return lengths_to_padding_mask(self.frame_lengths(attention_mask, add_adapter), num_frames)

    def _get_feature_vector_attention_mask(
        self, feature_vector_length: int, attention_mask: torch.Tensor, add_adapter: bool | None = None
    ) -> torch.Tensor:
        """``(B, F)`` bool mask of valid frames (transformers' method name, kept for custom heads)."""
        return lengths_to_padding_mask(self.frame_lengths(attention_mask, add_adapter), feature_vector_length)

    def freeze_feature_encoder(self, num_layers: int | None = None) -> None:
        """Stop training the convolutional feature encoder (only its first ``num_layers`` blocks if given)."""
        self.base_encoder().feature_extractor.freeze(num_layers)

    def freeze_base_model(self) -> None:
        """Train only the head."""
        for param in self.base_encoder().parameters():
            param.requires_grad = False

    @property
    def input_dtype(self) -> torch.dtype:
        """dtype that ``input_values`` are cast to: that of the first convolution's weight (the model's dtype)."""
        first: Any = self.base_encoder().feature_extractor.conv_layers[0]
        return first.conv.weight.dtype

    def base_encoder(self) -> Wav2Vec2Model:
        return self if isinstance(self, Wav2Vec2Model) else getattr(self, self.base_model_prefix)


def _in_special_parent(root: nn.Module, module: nn.Module) -> bool:
    """Linear layers whose init is handled by their parent (quantizer, projection)."""
    for parent in root.modules():
        if isinstance(parent, GumbelVectorQuantizer) and module is parent.weight_proj:
            return True
        if isinstance(parent, FeatureProjection) and module is parent.projection:
            return True
    return False


class Wav2Vec2Model(Wav2Vec2PreTrainedModel):
    """Raw audio ``(B, T)`` -> contextualised frames ``(B, F, D)``; ``(B, F', O)`` with the conv adapter."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__(config)
        self.feature_extractor = FeatureEncoder(config)
        self.feature_projection = FeatureProjection(config)
        # The learned mask vector exists only when masking is configured (as in the Hub checkpoints).
        if config.mask_time_prob > 0.0 or config.mask_feature_prob > 0.0:
            self.masked_spec_embed: nn.Parameter | None = nn.Parameter(torch.empty(config.hidden_size).uniform_())
        else:
            self.masked_spec_embed = None
        self.encoder = TransformerEncoder(config)
        self.adapter = ConvAdapter(config) if config.add_adapter else None
        self.post_init()

    def mask_hidden_states(
        self,
        hidden: torch.Tensor,
        mask_time_indices: torch.Tensor | None = None,
        padding_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """SpecAugment on projected frames (B, F, D); returns them and the time mask used.

        A given ``mask_time_indices`` is applied in train and eval mode; otherwise
        spans are drawn only in training, on the input's device, never in padding.
        """
        cfg = self.config
        if not cfg.apply_spec_augment:
            return hidden, None
        b, f, d = hidden.shape
        if mask_time_indices is None and self.training and cfg.mask_time_prob > 0:
            lengths = None if padding_mask is None else padding_mask.sum(dim=-1)
            mask_time_indices = time_mask(cfg, (b, f), lengths, device=hidden.device, generator=generator)
        if mask_time_indices is not None:
            mask_time_indices = mask_time_indices.to(device=hidden.device, dtype=torch.bool)
            if self.masked_spec_embed is None:
                raise ValueError("time masks were given but the model has no masked_spec_embed (mask_time_prob is 0)")
            hidden = torch.where(mask_time_indices[..., None], self.masked_spec_embed.to(hidden.dtype), hidden)
        if self.training and cfg.mask_feature_prob > 0:
            channel_mask = compute_span_mask(
                (b, d),
                cfg.mask_feature_prob,
                cfg.mask_feature_length,
                min_masks=cfg.mask_feature_min_masks,
                device=hidden.device,
                generator=generator,
            )
            hidden = hidden.masked_fill(channel_mask[:, None, :], 0.0)  # (B, D) -> (B, 1, D) over frames
        return hidden, mask_time_indices

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> Wav2Vec2BaseModelOutput | tuple:
        """Encode ``input_values`` (B, T); ``attention_mask`` (B, T) marks real samples (1) vs padding (0)."""
        out, _, _ = self.encode(
            input_values, attention_mask, mask_time_indices, output_attentions, output_hidden_states
        )
        return out if _want_dict(self.config, return_dict) else out.to_tuple()

    def encode(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Wav2Vec2BaseModelOutput, torch.Tensor | None, torch.Tensor | None]:
        """``forward`` that always returns the dataclass, plus the time mask used (given or drawn)
        and, when ``config.feature_penalty_weight > 0``, fairseq's feature penalty (mean squared
        encoder output before the projection's LayerNorm)."""
        input_values = check_audio(input_values, self.config, attention_mask, self.input_dtype)
        features = self.feature_extractor(input_values).transpose(1, 2)  # (B, C, F) -> (B, F, C)
        output_hidden_states = _flag(output_hidden_states, getattr(self.config, "output_hidden_states", False))
        output_attentions = _flag(output_attentions, getattr(self.config, "output_attentions", False))
        penalty = features.float().pow(2).mean() if self.config.feature_penalty_weight > 0 else None
        padding_mask = self.frame_padding_mask(attention_mask, features.shape[1], add_adapter=False)
        hidden, extract_features = self.feature_projection(features)
        hidden, used_mask = self.mask_hidden_states(hidden, mask_time_indices, padding_mask, generator)
        last, hidden_states, attentions = self.encoder(hidden, padding_mask, output_hidden_states, output_attentions)
        if self.adapter is not None:
            last = self.adapter(last)  # (B, F, D) -> (B, F', O); hidden_states stay the encoder's
        out = Wav2Vec2BaseModelOutput(
            last_hidden_state=last,
            extract_features=extract_features,
            hidden_states=hidden_states,
            attentions=attentions,
        )
        return out, used_mask, penalty


def _flag(value: bool | None, default: bool) -> bool:
    return bool(default) if value is None else bool(value)


def _want_dict(config: Wav2Vec2Config, return_dict: bool | None) -> bool:
    return _flag(return_dict, getattr(config, "return_dict", True))
