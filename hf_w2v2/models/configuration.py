"""Configuration of wav2vec 2.0 models (Baevski et al. 2020, arXiv 2006.11477).

The field names and defaults are those of the Hub checkpoints (``model_type``
"wav2vec2"), so a ``config.json`` written here loads in stock transformers and a
Hub ``config.json`` loads here. Legacy fields found in old Hub files
(``freeze_feat_extract_train``, ``mask_channel_prob``, ``mask_time_selection``,
...) are kept as plain attributes and written back on save, never lost.

Presets are functions: :func:`base` is facebook/wav2vec2-base, :func:`large_lv60`
edits it into facebook/wav2vec2-large-lv60, :func:`small` is the 3.8 M-parameter model the
project pre-trains on a CPU (the shipped models' architecture) and :func:`tiny` a test-sized
model. :func:`config_from_name` reads a preset name or a ``config.json``; it is the one place
both trainers resolve ``--config_name``.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import PretrainedConfig

_ACTIVATIONS = ("gelu", "relu", "selu", "gelu_new", "silu", "swish", "tanh")
XVECTOR_LOSSES = ("softmax", "am_softmax", "aam_softmax")  # the x-vector objectives (models.losses)


class Wav2Vec2Config(PretrainedConfig):
    """All hyper-parameters of a wav2vec 2.0 encoder and its heads."""

    model_type = "wav2vec2"

    # --- Transformer -----------------------------------------------------------
    vocab_size: int | None = 32
    """Output classes of the CTC head (``lm_head``), blank included."""
    hidden_size: int = 768
    """Model dimension D of the Transformer."""
    num_hidden_layers: int = 12
    """Number of Transformer blocks."""
    num_attention_heads: int = 12
    """Attention heads per block; must divide ``hidden_size``."""
    intermediate_size: int = 3072
    """Inner dimension of the feed-forward sub-layer."""
    hidden_act: str = "gelu"
    """Activation of the feed-forward sub-layer."""
    hidden_dropout: float | int = 0.1
    """Dropout on residual branches and after the positional embedding."""
    activation_dropout: float | int = 0.1
    """Dropout inside the feed-forward sub-layer, after the activation."""
    attention_dropout: float | int = 0.1
    """Dropout on attention probabilities."""
    feat_proj_dropout: float | int = 0.0
    """Dropout after the feature projection (fairseq ``dropout_input``)."""
    feat_quantizer_dropout: float | int = 0.0
    """Dropout on the features fed to the quantizer (fairseq ``dropout_features``)."""
    final_dropout: float | int = 0.1
    """Dropout before the CTC head."""
    layerdrop: float | int = 0.1
    """Probability of skipping a whole Transformer block in training (LayerDrop)."""
    initializer_range: float = 0.02
    """Standard deviation of the normal init of linear layers."""
    layer_norm_eps: float = 1e-5
    """Epsilon of every LayerNorm."""
    do_stable_layer_norm: bool = False
    """True: pre-LN blocks and a final LayerNorm (large-lv60); False: post-LN (base)."""

    # --- Feature encoder -------------------------------------------------------
    feat_extract_norm: str = "group"
    """"group": GroupNorm on the first conv only (base); "layer": LayerNorm after every conv."""
    feat_extract_activation: str = "gelu"
    """Activation of the conv layers and of the positional convolution."""
    conv_dim: list[int] | tuple[int, ...] = (512, 512, 512, 512, 512, 512, 512)
    """Output channels of each conv layer (7 layers of 512 in the paper)."""
    conv_stride: list[int] | tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    """Stride of each conv layer (total 320 samples = 20 ms at 16 kHz)."""
    conv_kernel: list[int] | tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    """Kernel of each conv layer (receptive field 400 samples = 25 ms)."""
    conv_bias: bool = False
    """Whether the conv layers have a bias (True for large-lv60)."""

    # --- Positional convolution ------------------------------------------------
    num_conv_pos_embeddings: int = 128
    """Kernel of the convolutional positional embedding (fairseq ``conv_pos``)."""
    num_conv_pos_embedding_groups: int = 16
    """Groups of the positional convolution (fairseq ``conv_pos_groups``)."""

    # --- SpecAugment ------------------------------------------------------------
    apply_spec_augment: bool = True
    """Master switch for time and feature masking."""
    mask_time_prob: float | int = 0.05
    """Time masking rate: about ``prob * F / mask_time_length`` spans are drawn per utterance
    (paper: p=0.065 as a start probability)."""
    mask_time_length: int = 10
    """Length of each time span, in frames."""
    mask_time_min_masks: int = 2
    """Minimum number of time spans per utterance."""
    mask_time_equal_count: bool = False
    """Every utterance keeps the batch-minimum number of masked frames (fairseq ``require_same_masks``,
    True in its pre-training recipe; False = transformers)."""
    mask_feature_prob: float | int = 0.0
    """Like ``mask_time_prob`` along the channel axis (masked channels are zeroed)."""
    mask_feature_length: int = 10
    """Length of each channel span."""
    mask_feature_min_masks: int = 0
    """Minimum number of channel spans."""

    # --- Quantizer and contrastive task --------------------------------------------
    num_codevectors_per_group: int = 320
    """Entries V of each codebook."""
    num_codevector_groups: int = 2
    """Number of codebooks G (product quantization)."""
    contrastive_logits_temperature: float = 0.1
    """Temperature kappa of the contrastive loss (paper eq. 3)."""
    num_negatives: int = 100
    """Distractors K per masked frame."""
    codevector_dim: int = 256
    """Dimension of a concatenated quantized vector (G entries of codevector_dim / G)."""
    proj_codevector_dim: int = 256
    """Dimension of the space where contexts and targets are compared."""
    diversity_loss_weight: float = 0.1
    """Weight alpha of the diversity loss (paper eq. 2)."""
    feature_penalty_weight: float = 0.0
    """Weight of an L2 penalty on encoder features (fairseq ``feature_pen``, 10 in its pre-training
    recipe; 0 = off, as transformers)."""
    feature_grad_mult: float = 1.0
    """Gradient scale into the feature encoder (fairseq ``feature_grad_mult``, 0.1 in its base recipe;
    1 = off, as transformers)."""

    # --- Heads --------------------------------------------------------------------
    ctc_loss_reduction: str = "sum"
    """Reduction of the CTC loss: "sum" or "mean" (mean over target lengths, then batch)."""
    ctc_zero_infinity: bool = False
    """Zero infinite CTC losses (targets longer than the frames) and their gradients."""
    use_weighted_layer_sum: bool = False
    """Classification heads: softmax-weighted sum of all hidden states instead of the last."""
    classifier_proj_size: int = 256
    """Sequence classification: projection size before mean pooling."""
    tdnn_dim: list[int] | tuple[int, ...] = (512, 512, 512, 512, 1500)
    """X-vector: output channels of each TDNN layer."""
    tdnn_kernel: list[int] | tuple[int, ...] = (5, 3, 3, 1, 1)
    """X-vector: kernel of each TDNN layer."""
    tdnn_dilation: list[int] | tuple[int, ...] = (1, 2, 3, 1, 1)
    """X-vector: dilation of each TDNN layer."""
    xvector_output_dim: int = 512
    """X-vector: embedding dimension."""
    xvector_loss: str = "am_softmax"
    """X-vector: training objective, one of ``softmax``, ``am_softmax`` (transformers' own) or ``aam_softmax``
    (ArcFace); stock transformers ignores this field and trains ``am_softmax``."""
    xvector_scale: float = 30.0
    """X-vector: scale s of the margin softmax (transformers: 30)."""
    xvector_margin: float | None = None
    """X-vector: margin m; None: 0.4 for ``am_softmax`` (transformers' value), 0.2 for ``aam_softmax``, 0 for
    ``softmax``."""
    xvector_easy_margin: bool = False
    """X-vector, ``aam_softmax`` only: ArcFace's easy margin (no penalty past 90 degrees)."""

    # --- Tokens -------------------------------------------------------------------
    pad_token_id: int | None = 0
    """Padding token id, also the CTC blank."""
    bos_token_id: int | None = 1
    """Kept for Hub compatibility; unused by CTC."""
    eos_token_id: int | list[int] | None = 2
    """Kept for Hub compatibility; unused by CTC."""

    # --- Adapters (:mod:`hf_w2v2.models.adapters`) -----------------------------------------
    add_adapter: bool = False
    """Add the convolutional adapter on top of the encoder (speech-encoder-decoder models)."""
    adapter_kernel_size: int = 3
    """Kernel of each adapter convolution."""
    adapter_stride: int = 2
    """Stride of each adapter convolution (frames are divided by it per layer)."""
    num_adapter_layers: int = 3
    """Number of adapter convolutions."""
    output_hidden_size: int | None = None
    """Output size of the conv adapter (and input of the CTC head with it); defaults to ``hidden_size``."""
    adapter_attn_dim: int | None = None
    """Bottleneck of the MMS language adapters in every pre-LN block (None: no adapters)."""

    def __post_init__(self, **kwargs: Any) -> None:
        for name in ("conv_dim", "conv_stride", "conv_kernel"):  # read below, before check() runs
            if not isinstance(getattr(self, name), (list, tuple)):
                raise ValueError(
                    f"config field {name} must be a list of positive integers, got {getattr(self, name)!r}"
                )
        self.num_feat_extract_layers = len(self.conv_dim)
        self.output_hidden_size = self.output_hidden_size or self.hidden_size
        super().__post_init__(**kwargs)
        # Only what stock transformers checks when a config is created; everything else is checked by
        # check() when a model is built, so that fields can be set one by one after construction.
        self._check_conv_lengths()

    @classmethod
    def get_config_dict(
        cls, pretrained_model_name_or_path: Any, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``PretrainedConfig.get_config_dict``, refusing a ``config.json`` that is not a JSON object."""
        try:
            fields, rest = super().get_config_dict(pretrained_model_name_or_path, **kwargs)
        except (TypeError, AttributeError) as error:  # transformers reads a JSON list or string as if a dict
            raise ValueError(
                f"{_config_file(pretrained_model_name_or_path)} must hold a JSON object ({error})"
            ) from None
        if not isinstance(fields, dict):
            raise ValueError(
                f"{_config_file(pretrained_model_name_or_path)} must hold a JSON object of config fields, "
                f"got a JSON {type(fields).__name__}"
            )
        return fields, rest

    @classmethod  # the Hub options pass through **kwargs unchanged
    def from_pretrained(cls, pretrained_model_name_or_path: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """``PretrainedConfig.from_pretrained``; a field that cannot even be read names the file."""
        try:
            return super().from_pretrained(pretrained_model_name_or_path, **kwargs)
        except ValueError as error:
            name = _config_file(pretrained_model_name_or_path)
            raise ValueError(str(error) if name in str(error) else f"{name}: {error}") from None

    @property
    def inputs_to_logits_ratio(self) -> int:
        """Samples per output frame (320 for the paper's encoder)."""
        return functools.reduce(operator.mul, self.conv_stride, 1)

    def _check_conv_lengths(self) -> None:
        n = len(self.conv_dim)
        if not (len(self.conv_stride) == len(self.conv_kernel) == n):
            raise ValueError(
                f"conv_dim, conv_stride and conv_kernel must have the same length, got "
                f"{len(self.conv_dim)}, {len(self.conv_stride)} and {len(self.conv_kernel)}"
            )

    def check(self) -> None:
        """Raise a ``ValueError`` naming the first field of the wrong type, out of range or inconsistent.

        Called by every model's constructor (so also by ``from_pretrained``, for a ``config.json``).
        """
        check_field_types_and_ranges(self)
        check_sizes(self)
        self._check_conv_lengths()
        if not (len(self.tdnn_kernel) == len(self.tdnn_dilation) == len(self.tdnn_dim)):
            raise ValueError("tdnn_dim, tdnn_kernel and tdnn_dilation must have the same length")
        if self.feat_extract_norm not in ("group", "layer"):
            raise ValueError(f"feat_extract_norm must be 'group' or 'layer', got {self.feat_extract_norm!r}")
        for name in ("hidden_act", "feat_extract_activation"):
            if getattr(self, name) not in _ACTIVATIONS:
                raise ValueError(f"{name} must be one of {_ACTIVATIONS}, got {getattr(self, name)!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.hidden_size % self.num_conv_pos_embedding_groups:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_conv_pos_embedding_groups "
                f"({self.num_conv_pos_embedding_groups})"
            )
        if self.codevector_dim % self.num_codevector_groups:
            raise ValueError(
                f"codevector_dim ({self.codevector_dim}) must be divisible by num_codevector_groups "
                f"({self.num_codevector_groups})"
            )
        if self.xvector_loss not in XVECTOR_LOSSES:
            raise ValueError(f"xvector_loss must be one of {list(XVECTOR_LOSSES)}, got {self.xvector_loss!r}")
        margin = self.xvector_margin
        if margin is not None and (not _is_number(margin) or margin < 0):
            raise ValueError(f"config field xvector_margin must be None or a non-negative number, got {margin!r}")
        if self.ctc_loss_reduction not in ("sum", "mean"):
            raise ValueError(f"ctc_loss_reduction must be 'sum' or 'mean', got {self.ctc_loss_reduction!r}")
        self._check_pad_token_id()

    def _check_pad_token_id(self) -> None:
        """The pad id is the CTC blank: an integer row of the head (``0 <= pad_token_id < vocab_size``)."""
        pad = self.pad_token_id
        if pad is None:
            return
        if not _is_int(pad) or pad < 0:
            raise ValueError(
                f"config field pad_token_id must be a non-negative integer (the CTC blank's id in vocab.json), "
                f"got {pad!r}"
            )
        if self.vocab_size is not None and pad >= self.vocab_size:
            raise ValueError(
                f"config field pad_token_id ({pad}) is outside the vocabulary (vocab_size {self.vocab_size}): "
                "set it to the id of the pad token in vocab.json (the CTC blank, usually 0)"
            )


def _config_file(name_or_path: Any) -> str:
    path = Path(str(name_or_path))
    return str(path / "config.json") if path.is_dir() else str(name_or_path)


# Field kinds checked by check_field_types_and_ranges (fields not listed are free-form).
_POSITIVE_INTS = (
    "hidden_size",
    "num_attention_heads",
    "intermediate_size",
    "num_conv_pos_embeddings",
    "num_conv_pos_embedding_groups",
    "num_codevectors_per_group",
    "num_codevector_groups",
    "codevector_dim",
    "proj_codevector_dim",
    "num_negatives",
    "classifier_proj_size",
    "xvector_output_dim",
    "mask_time_length",
    "mask_feature_length",
)
_ADAPTER_POSITIVE_INTS = ("adapter_kernel_size", "adapter_stride", "num_adapter_layers", "output_hidden_size")
_NON_NEGATIVE_INTS = ("num_hidden_layers", "mask_time_min_masks", "mask_feature_min_masks")  # 0 blocks: frame-local
_OPTIONAL_POSITIVE_INTS = ("vocab_size", "adapter_attn_dim")
_POSITIVE_INT_SEQUENCES = ("conv_dim", "conv_stride", "conv_kernel", "tdnn_dim", "tdnn_kernel", "tdnn_dilation")
_PROBABILITIES = (
    "hidden_dropout",
    "activation_dropout",
    "attention_dropout",
    "feat_proj_dropout",
    "feat_quantizer_dropout",
    "final_dropout",
    "layerdrop",
    "mask_time_prob",
    "mask_feature_prob",
)
_POSITIVE_FLOATS = ("layer_norm_eps", "contrastive_logits_temperature", "xvector_scale")
_NON_NEGATIVE_FLOATS = ("initializer_range", "diversity_loss_weight", "feature_penalty_weight", "feature_grad_mult")
_BOOLS = (
    "do_stable_layer_norm",
    "conv_bias",
    "apply_spec_augment",
    "ctc_zero_infinity",
    "use_weighted_layer_sum",
    "add_adapter",
    "xvector_easy_margin",
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_field_types_and_ranges(config: Wav2Vec2Config) -> None:
    """Raise a ``ValueError`` naming the first field whose value has the wrong type or is out of range
    (e.g. ``num_hidden_layers: -1`` in a ``config.json``, which would build a model without blocks)."""

    def fail(name: str, expected: str) -> None:
        raise ValueError(f"config field {name} must be {expected}, got {getattr(config, name)!r}")

    ints = _POSITIVE_INTS + (_ADAPTER_POSITIVE_INTS if config.add_adapter else ())
    for name in ints:
        if not _is_int(getattr(config, name)) or getattr(config, name) < 1:
            fail(name, "a positive integer")
    for name in _NON_NEGATIVE_INTS:
        if not _is_int(getattr(config, name)) or getattr(config, name) < 0:
            fail(name, "a non-negative integer")
    for name in _OPTIONAL_POSITIVE_INTS:
        value = getattr(config, name)
        if value is not None and (not _is_int(value) or value < 1):
            fail(name, "None or a positive integer")
    for name in _POSITIVE_INT_SEQUENCES:
        value = getattr(config, name)
        if not isinstance(value, (list, tuple)) or not value or not all(_is_int(v) and v >= 1 for v in value):
            fail(name, "a non-empty list of positive integers")
    for name in _PROBABILITIES:
        if not _is_number(getattr(config, name)) or not 0.0 <= getattr(config, name) <= 1.0:
            fail(name, "a number in [0, 1]")
    for name in _POSITIVE_FLOATS:
        if not _is_number(getattr(config, name)) or getattr(config, name) <= 0:
            fail(name, "a positive number")
    for name in _NON_NEGATIVE_FLOATS:
        if not _is_number(getattr(config, name)) or getattr(config, name) < 0:
            fail(name, "a non-negative number")
    for name in _BOOLS:
        if not isinstance(getattr(config, name), bool):
            fail(name, "true or false")


MAX_HIDDEN_LAYERS = 1024  # Transformer blocks; the largest published wav2vec 2.0 models have 48
MAX_CONV_LAYERS = 64  # feature-encoder convolutions; the paper's encoder has 7
MAX_PARAMETERS = 10_000_000_000  # 10 G parameters (40 GB in float32), 5x XLS-R 2B, the largest wav2vec 2.0


def estimated_parameters(config: Wav2Vec2Config) -> int:
    """Parameter count of the encoder, quantizer and CTC head, without building them (within 2% for the presets)."""
    d, inner, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    channels = [1, *config.conv_dim]
    convs = sum(c_in * c_out * k for c_in, c_out, k in zip(channels, channels[1:], config.conv_kernel))
    blocks = layers * (4 * d * d + 2 * d * inner)  # attention (4 D x D) + feed-forward (2 D x I)
    position = d * d * config.num_conv_pos_embeddings // config.num_conv_pos_embedding_groups
    head = d * (config.vocab_size or 0)
    entries = config.num_codevector_groups * config.num_codevectors_per_group  # G x V codewords
    quantizer = entries * (channels[-1] + config.codevector_dim // config.num_codevector_groups)
    return convs + channels[-1] * d + blocks + position + head + quantizer


def check_sizes(config: Wav2Vec2Config) -> None:
    """Refuse sizes no real model has (``num_hidden_layers: 1000000`` would build for hours), naming the field."""
    if config.num_hidden_layers > MAX_HIDDEN_LAYERS:
        raise ValueError(
            f"config field num_hidden_layers is {config.num_hidden_layers}, above the limit of {MAX_HIDDEN_LAYERS} "
            "blocks (the largest published wav2vec 2.0 models have 48): a typo?"
        )
    if len(config.conv_dim) > MAX_CONV_LAYERS:
        raise ValueError(
            f"config field conv_dim has {len(config.conv_dim)} layers, above the limit of {MAX_CONV_LAYERS} "
            "(the paper's feature encoder has 7)"
        )
    count = estimated_parameters(config)
    if count > MAX_PARAMETERS:
        raise ValueError(
            f"this config describes a model of about {count / 1e9:.0f} G parameters (hidden_size "
            f"{config.hidden_size}, intermediate_size {config.intermediate_size}, num_hidden_layers "
            f"{config.num_hidden_layers}, conv_dim up to {max(config.conv_dim)}), above the limit of "
            f"{MAX_PARAMETERS / 1e9:.0f} G: check these fields for a typo"
        )


def check_override_names(overrides: dict[str, Any], option: str = "config_overrides") -> None:
    """Refuse keys that are no config field (``{"hiden_size": 64}`` would be ignored), suggesting close ones."""
    properties = {name for name in dir(Wav2Vec2Config) if isinstance(getattr(Wav2Vec2Config, name), property)}
    known = set(Wav2Vec2Config().to_dict()) | set(_all_annotations(Wav2Vec2Config)) | properties
    unknown = [name for name in overrides if name not in known]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise ValueError(
        f"{option}: unknown config field(s) {', '.join(hints)}; the fields are documented in "
        "hf_w2v2.models.configuration.Wav2Vec2Config"
    )


def _all_annotations(cls: type) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        fields.update(getattr(klass, "__annotations__", {}))
    return fields


def base(**overrides: Any) -> Wav2Vec2Config:
    """facebook/wav2vec2-base: 12 post-LN blocks, D=768, group-norm encoder (95 M parameters)."""
    return Wav2Vec2Config(**overrides)


def large_lv60(**overrides: Any) -> Wav2Vec2Config:
    """facebook/wav2vec2-large-lv60: 24 pre-LN blocks, D=1024, layer-norm encoder with conv bias."""
    fields: dict[str, Any] = dict(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        do_stable_layer_norm=True,
        feat_extract_norm="layer",
        conv_bias=True,
        codevector_dim=768,
        proj_codevector_dim=768,
    )
    fields.update(overrides)
    return base(**fields)


def tiny(**overrides: Any) -> Wav2Vec2Config:
    """A test-sized model with the full architecture (about 0.1 M parameters)."""
    fields: dict[str, Any] = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(16, 16, 16, 16, 16, 16, 16),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        num_codevectors_per_group=8,
        num_codevector_groups=2,
        codevector_dim=16,
        proj_codevector_dim=12,
        num_negatives=5,
        classifier_proj_size=8,
        tdnn_dim=(16, 16, 24),
        tdnn_kernel=(3, 3, 1),
        tdnn_dilation=(1, 2, 1),
        xvector_output_dim=8,
    )
    fields.update(overrides)
    return base(**fields)


def small(**overrides: Any) -> Wav2Vec2Config:
    """The project's CPU-sized model (3.8 M parameters): 7 convs of 128 channels with layer norm and
    bias, 4 pre-LN blocks of D=256, 2 x 64 codewords, K=50 negatives, no dropout, and the
    pre-training masking of its recipe (p=0.65, M=5). The architecture of ``models/w2v2-small-synth-en``."""
    fields: dict[str, Any] = dict(
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        do_stable_layer_norm=True,
        feat_extract_norm="layer",
        conv_bias=True,
        conv_dim=(128, 128, 128, 128, 128, 128, 128),
        num_conv_pos_embeddings=64,
        num_conv_pos_embedding_groups=16,
        num_codevectors_per_group=64,
        num_codevector_groups=2,
        codevector_dim=128,
        proj_codevector_dim=128,
        num_negatives=50,
        mask_time_prob=0.65,
        mask_time_length=5,
        hidden_dropout=0.0,
        activation_dropout=0.0,
        attention_dropout=0.0,
        feat_proj_dropout=0.0,
        feat_quantizer_dropout=0.0,
        layerdrop=0.0,
    )
    fields.update(overrides)
    return base(**fields)


PRESETS: dict[str, Callable[..., Wav2Vec2Config]] = {
    "tiny": tiny,
    "small": small,
    "base": base,
    "large_lv60": large_lv60,
}
"""Preset names accepted wherever a config is named (``--config_name small``)."""


def config_from_name(name: str, **overrides: Any) -> Wav2Vec2Config:
    """A preset name (:data:`PRESETS`) or a ``config.json`` file / folder, with ``overrides`` applied."""
    if name in PRESETS:
        return PRESETS[name](**overrides)
    path = Path(name)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ValueError(f"config_name {name!r} is neither a preset {sorted(PRESETS)} nor a config.json file/folder")
    fields = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(fields, dict):
        raise ValueError(f"{path} must hold a JSON object of config fields, got a JSON {type(fields).__name__}")
    fields.update(overrides)
    return Wav2Vec2Config(**fields)
