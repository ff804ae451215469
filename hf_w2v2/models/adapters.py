"""Adapters: small modules added to a wav2vec 2.0 encoder after (or instead of) full fine-tuning.

Shape legend: B batch, F frames, F' adapted frames, D model dim, O output dim, A adapter dim, V vocabulary.

Two kinds exist in the Hub's checkpoints, with their config fields and state-dict keys:

* the **convolutional adapter** (``add_adapter``, key prefix ``wav2vec2.adapter.``) on top of the
  encoder: an optional projection D -> O (``output_hidden_size``, with its LayerNorm) then
  ``num_adapter_layers`` strided convolutions with a GLU, each shortening the sequence by
  ``adapter_stride``. It bridges an encoder to a decoder in speech-encoder-decoder models and
  lets a large encoder feed a smaller head.
* the **attention adapters** of MMS (Pratap et al. 2023, arXiv 2305.13516; ``adapter_attn_dim``,
  keys ``encoder.layers.{i}.adapter_layer.``): one bottleneck per pre-LN Transformer block,
  ``x + W2 relu(W1 LN(x))``, trained per language together with the CTC head while the rest of
  the model stays frozen. A language's weights live next to the model as
  ``adapter.<lang>.safetensors`` (or ``adapter.<lang>.bin``), keyed like the model's own
  state dict (``wav2vec2.encoder.layers.{i}.adapter_layer.*`` and ``lm_head.*``);
  :meth:`LanguageAdapterMixin.load_adapter` swaps them in, resizing the head to the
  language's vocabulary.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig

from .configuration import Wav2Vec2Config
from .integrity import NonFiniteWeightsError

logger = logging.getLogger(__name__)

ADAPTER_SAFE_FILE = "adapter.{}.safetensors"
"""File name of a language's adapter weights in safetensors format (the MMS checkpoints' layout)."""
ADAPTER_PT_FILE = "adapter.{}.bin"
"""File name of a language's adapter weights as a PyTorch pickle (read with ``weights_only=True``)."""

_HUB_KWARGS = ("cache_dir", "force_download", "proxies", "local_files_only", "token", "revision")
"""Download options :meth:`LanguageAdapterMixin.load_adapter` passes on to the Hub client."""


# --- convolutional adapter (add_adapter) ------------------------------------------------------
def adapter_output_length(lengths: torch.Tensor | int, num_layers: int, stride: int) -> torch.Tensor | int:
    """Frames left after ``num_layers`` adapter convolutions (kernel k, padding 1, stride s).

    Each maps L frames to ``floor((L + 2 - k) / s) + 1``; the Hub configs use k = 3, for which this
    is ``floor((L - 1) / s) + 1``, the formula stock transformers applies whatever the kernel.
    """
    for _ in range(num_layers):
        if isinstance(lengths, torch.Tensor):
            lengths = torch.div(lengths - 1, stride, rounding_mode="floor") + 1
        else:
            lengths = (lengths - 1) // stride + 1
    return lengths


class ConvAdapterLayer(nn.Module):
    """Conv1d(O -> 2O, k, stride s, padding 1) then a GLU over channels: (B, O, F) -> (B, O, F')."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        dim = config.output_hidden_size or config.hidden_size
        self.conv = nn.Conv1d(dim, 2 * dim, config.adapter_kernel_size, stride=config.adapter_stride, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.glu(self.conv(x), dim=1)


class ConvAdapter(nn.Module):
    """Encoder output (B, F, D) -> (B, F', O), with LayerDrop over its layers while training."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        out_dim = config.output_hidden_size or config.hidden_size
        if out_dim != config.hidden_size:
            self.proj: nn.Linear | None = nn.Linear(config.hidden_size, out_dim)
            self.proj_layer_norm: nn.LayerNorm | None = nn.LayerNorm(out_dim)
        else:
            self.proj = self.proj_layer_norm = None
        self.layers = nn.ModuleList([ConvAdapterLayer(config) for _ in range(config.num_adapter_layers)])
        self.layerdrop = float(config.layerdrop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj is not None and self.proj_layer_norm is not None:
            x = self.proj_layer_norm(self.proj(x))  # (B, F, D) -> (B, F, O)
        x = x.transpose(1, 2)  # (B, F, O) -> (B, O, F)
        for layer in self.layers:
            if self.training and self.layerdrop > 0.0 and torch.rand(()) < self.layerdrop:
                continue
            x = layer(x)
        return x.transpose(1, 2)  # (B, O, F') -> (B, F', O)


# --- attention adapters (MMS, adapter_attn_dim) -----------------------------------------------
class AttentionAdapter(nn.Module):
    """Bottleneck ``W2 relu(W1 LN(x))``: (B, F, D) -> (B, F, D); the block adds it to its output."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        if config.adapter_attn_dim is None:
            raise ValueError("an attention adapter needs config.adapter_attn_dim")
        self.norm = nn.LayerNorm(config.hidden_size)
        self.linear_1 = nn.Linear(config.hidden_size, config.adapter_attn_dim)
        self.linear_2 = nn.Linear(config.adapter_attn_dim, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.relu(self.linear_1(self.norm(x))))  # (B, F, D) -> (B, F, A) -> (B, F, D)


def resolve_adapter_file(
    name_or_path: str, target_lang: str, use_safetensors: bool | None, **hub_kwargs: Any
) -> tuple[str, bool]:
    """Path of ``adapter.<target_lang>.safetensors`` (preferred) or ``.bin`` for a local folder or Hub repo.

    ``use_safetensors``: True = only the safetensors file, False = only the pickle, None = either.
    Returns the path and whether it is a safetensors file; raises ``OSError`` naming what is missing.
    """
    candidates = []
    if use_safetensors is not False:
        candidates.append((ADAPTER_SAFE_FILE.format(target_lang), True))
    if use_safetensors is not True:
        candidates.append((ADAPTER_PT_FILE.format(target_lang), False))
    if not name_or_path:
        raise OSError(
            f"cannot find adapter weights for {target_lang!r}: the model was not loaded with from_pretrained, "
            "so it has no folder or Hub repository to read them from"
        )
    folder = Path(name_or_path)
    if not folder.is_dir() and _looks_local(name_or_path):
        raise FileNotFoundError(
            f"cannot load the adapter weights of {target_lang!r}: the model folder {name_or_path} it was loaded "
            "from no longer exists (moved or removed?); load the model again from where it is now"
        )
    for filename, is_safe in candidates:
        if folder.is_dir():
            if (folder / filename).is_file():
                return str(folder / filename), is_safe
            continue
        path = _hub_file(name_or_path, filename, hub_kwargs)
        if path is not None:
            return path, is_safe
    names = " or ".join(name for name, _ in candidates)
    raise OSError(f"{name_or_path} does not appear to have a file named {names} (adapter weights of {target_lang!r})")


def _looks_local(name_or_path: str) -> bool:
    """A filesystem path rather than a Hub repository id (``org/name``: one slash, no leading dot)."""
    return (
        Path(name_or_path).is_absolute()
        or name_or_path.startswith((".", "~"))
        or name_or_path.count("/") > 1
        or "\\" in name_or_path
    )


def _hub_file(repo_id: str, filename: str, hub_kwargs: dict[str, Any]) -> str | None:
    """Download ``filename`` of Hub repository ``repo_id``; None when the repository has no such file."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    kwargs = {k: v for k, v in hub_kwargs.items() if k in _HUB_KWARGS and v is not None and k != "proxies"}
    try:
        return hf_hub_download(repo_id, filename, **kwargs)
    except (EntryNotFoundError, HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError):
        return None


def read_adapter_file(path: str, is_safetensors: bool) -> dict[str, torch.Tensor]:
    """The tensors of an adapter file; pickles are read with ``weights_only=True`` (no code runs).

    Raises ``OSError`` naming a file that cannot be read (truncated, overwritten) and
    :class:`~hf_w2v2.models.integrity.NonFiniteWeightsError` for NaN/inf values: an adapter
    is loaded into a model that is already in use, so it is refused rather than warned about.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(path) if is_safetensors else torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise OSError(f"adapter file {path} is damaged or truncated ({error}); copy or download it again") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise OSError(f"adapter file {path} does not hold a mapping of tensor names to tensors")
    bad = {key: int((~torch.isfinite(value)).sum()) for key, value in state.items() if value.is_floating_point()}
    bad = {key: count for key, count in bad.items() if count}
    if bad:
        raise NonFiniteWeightsError(path, bad)
    return state


if TYPE_CHECKING:
    _ModuleBase = nn.Module
else:  # a plain mixin at run time, placed before PreTrainedModel (whose PEFT mixin has its own load_adapter)
    _ModuleBase = object


class LanguageAdapterMixin(_ModuleBase):
    """``load_adapter`` / ``_get_adapters`` / ``init_adapter_layers`` for models with MMS attention adapters.

    Mixed into :class:`~hf_w2v2.models.modeling.Wav2Vec2PreTrainedModel`; a head with a CTC
    ``lm_head`` also swaps that head with the language.
    """

    config: PretrainedConfig  # a Wav2Vec2Config; typed as PreTrainedModel types it
    target_lang: str | None = None
    """Language whose adapter weights were loaded last by :meth:`load_adapter` (None: the checkpoint's own)."""

    def _get_adapters(self) -> dict[str, nn.Parameter]:
        """Every parameter a language adapter file holds, by state-dict key (adapter layers, then ``lm_head``)."""
        if getattr(self.config, "adapter_attn_dim", None) is None:
            raise ValueError(f"{type(self).__name__} has no adapters: config.adapter_attn_dim is not set")
        weights: dict[str, nn.Parameter] = {}
        for name, module in self.named_modules():
            if isinstance(module, AttentionAdapter):
                for param_name, param in module.named_parameters():
                    weights[f"{name}.{param_name}"] = param
        head = getattr(self, "lm_head", None)
        if isinstance(head, nn.Linear):
            for param_name, param in head.named_parameters():
                weights[f"lm_head.{param_name}"] = param
        return weights

    def init_adapter_layers(self) -> None:
        """(Re-)initialise the attention adapters and the CTC head, e.g. before training a new language.

        LayerNorms to (1, 0); linear weights ~ N(0, initializer_range), biases 0.
        """
        std = float(getattr(self.config, "initializer_range", 0.02))
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, AttentionAdapter):
                    _reset_linear_and_norms(module, std)
            head = getattr(self, "lm_head", None)
            if isinstance(head, nn.Linear):
                _reset_linear_and_norms(head, std)

    def load_adapter(self, target_lang: str, force_load: bool = True, **kwargs: Any) -> None:
        """Load the adapter weights of ``target_lang`` from the folder / Hub repo the model came from.

        Reads ``adapter.<target_lang>.safetensors`` (or ``.bin``; ``use_safetensors=True/False``
        restricts to one) from ``config._name_or_path``. Keys must be exactly those of
        :meth:`_get_adapters`. A head of another size is replaced by one of the language's
        vocabulary size (``config.vocab_size`` follows). ``force_load=False`` skips the
        language already loaded. Hub options (``cache_dir``, ``revision``, ``token``,
        ``local_files_only``, ``force_download``) are passed to the download.
        """
        config = self.config
        if getattr(config, "adapter_attn_dim", None) is None:
            raise ValueError(f"Cannot load_adapter for {target_lang} if `config.adapter_attn_dim` is not defined.")
        if target_lang == self.target_lang and not force_load:
            logger.warning("Adapter weights are already set to %s.", target_lang)
            return
        path, is_safe = resolve_adapter_file(
            getattr(config, "_name_or_path", ""), target_lang, kwargs.pop("use_safetensors", None), **kwargs
        )
        state = read_adapter_file(path, is_safe)
        expected = self._get_adapters()
        unexpected = sorted(set(state) - set(expected))
        missing = sorted(set(expected) - set(state))
        if unexpected:
            raise ValueError(f"The adapter weights {path} has unexpected keys: {', '.join(unexpected)}.")
        if missing:
            raise ValueError(f"The adapter weights {path} has missing keys: {', '.join(missing)}.")
        # Check every shape before changing anything (the head may take the language's vocabulary size).
        vocab = state["lm_head.weight"].shape[0] if "lm_head.weight" in state else None
        for key, value in state.items():
            wanted = tuple(expected[key].shape)
            if key.startswith("lm_head.") and vocab is not None:
                wanted = (vocab,) + wanted[1:]
            if tuple(value.shape) != wanted:
                raise RuntimeError(
                    f"size mismatch for {key} in {path}: {tuple(value.shape)} in the file, {wanted} wanted"
                )
        if vocab is not None:
            self._resize_head(vocab)
            expected = self._get_adapters()
        with torch.no_grad():
            for key, value in state.items():
                expected[key].copy_(value.to(dtype=expected[key].dtype, device=expected[key].device))
        self.target_lang = target_lang

    def _resize_head(self, vocab_size: int) -> None:
        """Replace ``lm_head`` by a new ``Linear(O, vocab_size)`` on the same device and dtype when the size differs."""
        head = getattr(self, "lm_head", None)
        if not isinstance(head, nn.Linear) or head.out_features == vocab_size:
            return
        new = nn.Linear(head.in_features, vocab_size, device=head.weight.device, dtype=head.weight.dtype)
        self.lm_head = new
        self.config.vocab_size = vocab_size


def _reset_linear_and_norms(module: nn.Module, std: float) -> None:
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.normal_(sub.weight, mean=0.0, std=std)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.LayerNorm):
            nn.init.ones_(sub.weight)
            nn.init.zeros_(sub.bias)
