"""Frozen conv blocks run once per utterance instead of once per step (``--cache_frozen_features``), for
CTC fine-tuning and classification alike.

Shape legend: B batch, T samples, C channels, F_k frames after the first k conv blocks.

When the first k blocks of the feature encoder are frozen, their output for an utterance
never changes during fine-tuning, yet they are the most expensive part of the encoder
(they run at 3,200 / 1,600 / 800 frames per second). :class:`FrozenFeatureCache` computes
that output once for every item of the training (and evaluation) datasets and keeps it in
memory; :class:`CachedFeatureCollator` adds the padded cached outputs to each ordinary audio
batch under :data:`PREFIX_KEY`. The model's forward knows nothing of this: the fine-tuning
trainer takes that entry out of the batch and hands it to :class:`CachedPrefixEncoder`, which
stands in for the model's feature encoder (same parameters, same state-dict keys) and, for that
one forward pass, runs only the blocks after the cached ones (:func:`use_cached_prefix`).

It is exact: a layer-norm encoder runs batches of similar-length utterances (its norms
act on each frame, and the unpadded convolutions give valid frames that never see the
padding); a group-norm encoder runs each utterance alone (its first norm is over time).
Both run under the same autocast dtype as training and store that dtype (which is what
the next block's convolution would cast it to). Valid frames therefore match an uncached
forward pass; padded frames are masked as usual. Memory: ``C_k * F_k`` values per
utterance, e.g. 128 channels at 800 frames/s in bf16 is 205 KB per second of audio
(1.1 GB for 1.5 h); after all 7 blocks (50 frames/s) 13 KB.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm.auto import tqdm

from hf_w2v2.models.feature_encoder import FeatureEncoder

if TYPE_CHECKING:
    import datasets
    from transformers import TrainingArguments

logger = logging.getLogger(__name__)

KEY_COLUMN = "cache_key"
"""Dataset column holding each item's key in the cache."""

PREFIX_KEY = "cached_prefix"
"""Batch entry holding the padded cached conv outputs (taken out by the trainer before the forward)."""

DEFAULT_BATCH_SIZE = 8
"""Items per forward pass when caching a frame-local (layer-norm) encoder."""


@dataclass(frozen=True)
class PrefixCompute:
    """Where and how the frozen conv blocks run while :meth:`FrozenFeatureCache.add` fills the cache."""

    device: torch.device | str = "cpu"
    """Device the encoder runs on (the cached outputs are kept on the CPU)."""
    autocast_dtype: torch.dtype | None = None
    """Autocast dtype of training (bf16/fp16), also the dtype stored; ``None``: float32, no autocast."""
    batch_size: int | None = None
    """Items per forward pass, of similar length: default :data:`DEFAULT_BATCH_SIZE` for a layer-norm
    encoder, 1 for a group-norm one (which normalises over time, so padding would change its outputs:
    a larger value is refused)."""


@dataclass
class FrozenFeatureCache:
    """Outputs ``(C_k, F_k)`` of the first ``num_layers`` conv blocks, by item key."""

    num_layers: int
    features: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.features.values())

    def add(
        self,
        encoder: FeatureEncoder,
        dataset: datasets.Dataset | Any,
        first_key: int = 0,
        compute: PrefixCompute | None = None,
        show_progress: bool = True,
        desc: str = "caching frozen conv blocks",
    ) -> datasets.Dataset | KeyedDataset:
        """Compute the prefix for every item of ``dataset`` (``input_values`` column, or items with that key).

        ``compute``: device, autocast dtype and batch size (default: CPU, float32, the encoder's default
        batch). ``compute.batch_size`` items of similar length run together (default 8) when the encoder's
        norms act on each frame alone (layer norm): the valid frames of a right-padded batch are those
        of each item run alone, and each item keeps only its own frames. A group-norm encoder
        normalises over time, so padding would change its outputs: items run one at a time
        (the default there; a larger ``batch_size`` is refused).

        Returns the dataset with a ``cache_key`` column (``first_key``, ``first_key + 1``, ...), or a
        :class:`KeyedDataset` whose items carry it.
        """
        compute = compute or PrefixCompute()
        autocast_dtype, batch_size = compute.autocast_dtype, compute.batch_size
        frozen = encoder.num_frozen_layers
        if self.num_layers > frozen:
            raise ValueError(f"cannot cache {self.num_layers} conv blocks: only the first {frozen} are frozen")
        if batch_size is None:
            batch_size = DEFAULT_BATCH_SIZE if encoder.frame_local else 1
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if batch_size > 1 and not encoder.frame_local:
            raise ValueError(
                "a group-norm feature encoder normalises over time, so padding changes its outputs: "
                "cache it with batch_size=1"
            )
        device = torch.device(compute.device)
        autocast = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
        store_dtype = autocast_dtype or torch.float32
        table = hasattr(dataset, "with_format")  # a datasets.Dataset (CTC) or a map-style dataset of dicts (clips)
        audio_only = dataset.with_format("numpy", columns=["input_values"]) if table else dataset
        if table and "input_length" in dataset.column_names:  # samples per item
            lengths = [int(n) for n in dataset["input_length"]]
        else:
            lengths = [len(audio_only[i]["input_values"]) for i in range(len(dataset))]
        order = sorted(range(len(dataset)), key=lambda i: lengths[i])  # similar lengths share a batch
        was_training = encoder.training
        encoder.eval()  # conv blocks have no dropout; eval() only guards against subclass surprises
        try:
            with (
                torch.no_grad(),
                autocast,
                tqdm(total=len(dataset), desc=desc, disable=not show_progress, unit="utt") as bar,
            ):
                for start in range(0, len(order), batch_size):
                    rows = order[start : start + batch_size]
                    audio = torch.zeros(len(rows), max(lengths[i] for i in rows), device=device)  # (B, T_max)
                    for row, i in enumerate(rows):
                        audio[row, : lengths[i]] = torch.as_tensor(audio_only[i]["input_values"], dtype=torch.float32)
                    prefix = encoder.prefix(audio, self.num_layers)  # (B, C_k, F_k max)
                    for row, i in enumerate(rows):
                        frames = int(encoder.output_frames(lengths[i], self.num_layers))
                        own = prefix[row, :, :frames]  # (C_k, F_k) of this item, frames-major in memory
                        # copy=True: one fresh tensor (a view would keep the whole batch's storage alive);
                        # it keeps the frames-major strides, which the collator copies fastest.
                        self.features[first_key + i] = own.to(device="cpu", dtype=store_dtype, copy=True)
                    bar.update(len(rows))
        finally:
            encoder.train(was_training)
        if not table:
            return KeyedDataset(dataset, first_key)
        keys = list(range(first_key, first_key + len(dataset)))
        keyed = dataset.add_column(KEY_COLUMN, keys) if KEY_COLUMN not in dataset.column_names else dataset
        return keyed.with_format("numpy")


class KeyedDataset(torch.utils.data.Dataset):
    """A map-style dataset of dicts (e.g. classification clips) whose items also carry their cache key;
    the wrapped dataset's attributes (``lengths``, ``labels``, ``names``, ``report``) read through."""

    def __init__(self, dataset: Any, first_key: int) -> None:
        self.dataset, self.first_key = dataset, first_key

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.dataset[index], KEY_COLUMN: self.first_key + index}

    def __getattr__(self, name: str) -> Any:
        if name in ("dataset", "first_key"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


@dataclass
class CachedFeatureCollator:
    """The audio batch of ``base``, plus the items' cached prefixes under :data:`PREFIX_KEY`.

    The prefix is ``(B, C_k, F_max)`` (zero-padded; padded frames are masked by the model as
    usual). A batch with an item that has no cache entry (e.g. a test set) is the plain audio batch.
    """

    base: Callable[[Sequence[Mapping[str, Any]]], dict[str, Any]]  # the job's audio collator
    cache: FrozenFeatureCache

    def _cached(self, item: Mapping[str, Any]) -> torch.Tensor | None:
        key = item.get(KEY_COLUMN)
        return None if key is None else self.cache.features.get(int(key))

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = self.base([{k: v for k, v in item.items() if k != KEY_COLUMN} for item in features])
        found = [self._cached(item) for item in features]
        prefixes = [p for p in found if p is not None]
        if len(prefixes) < len(found):
            return batch
        width = max(p.shape[1] for p in prefixes)
        # Frames-major storage, the encoder's own layout: its transpose back is contiguous.
        frames_major = prefixes[0].new_zeros(len(prefixes), width, prefixes[0].shape[0])  # (B, F_max, C_k)
        for row, prefix in enumerate(prefixes):
            frames_major[row, : prefix.shape[1]] = prefix.T  # (C_k, F_k) -> (F_k, C_k)
        batch[PREFIX_KEY] = frames_major.transpose(1, 2)  # (B, F_max, C_k) -> (B, C_k, F_max), a view
        return batch


class CachedPrefixEncoder(FeatureEncoder):
    """The model's feature encoder (its very blocks and parameters), able to start one forward pass
    from a cached output of its first ``num_layers`` blocks instead of from audio."""

    def __init__(self, encoder: FeatureEncoder, num_layers: int) -> None:
        nn.Module.__init__(self)
        self.conv_layers = encoder.conv_layers  # shared: same parameters and state-dict keys
        self.grad_mult = encoder.grad_mult
        self.gradient_checkpointing = encoder.gradient_checkpointing
        self.num_layers = num_layers
        self.next_prefix: torch.Tensor | None = None

    def forward(self, audio: torch.Tensor, kernel: str | None = None) -> torch.Tensor:
        """Blocks ``num_layers ...`` on the prefix handed over for this pass, else all blocks on ``audio``."""
        if self.next_prefix is None:
            return super().forward(audio, kernel)
        prefix, self.next_prefix = self.next_prefix, None
        if prefix.shape[0] != audio.shape[0] or prefix.shape[-1] != self.output_frames(audio.shape[1], self.num_layers):
            raise ValueError(
                f"cached prefix of shape {tuple(prefix.shape)} does not belong to an audio batch of shape "
                f"{tuple(audio.shape)} ({self.num_layers} cached blocks)"
            )
        return self.forward_from(prefix, self.num_layers, kernel)


def attach_cache(model: nn.Module, num_layers: int) -> CachedPrefixEncoder:
    """Put a :class:`CachedPrefixEncoder` in place of ``model``'s feature encoder (idempotent)."""
    base = model.base_encoder()  # type: ignore[operator]
    if not isinstance(base.feature_extractor, CachedPrefixEncoder):
        base.feature_extractor = CachedPrefixEncoder(base.feature_extractor, num_layers)
    return base.feature_extractor


@contextmanager
def use_cached_prefix(model: nn.Module, prefix: torch.Tensor | None) -> Iterator[None]:
    """Within the block, the next forward pass of ``model`` starts from ``prefix`` (None: from audio)."""
    if prefix is None:
        yield
        return
    encoder = model.base_encoder().feature_extractor  # type: ignore[operator]
    if not isinstance(encoder, CachedPrefixEncoder):
        raise ValueError("the batch holds cached conv outputs but the model has no cache attached (attach_cache)")
    encoder.next_prefix = prefix
    try:
        yield
    finally:
        encoder.next_prefix = None


def cache_frozen_features(
    model: nn.Module, sets: Mapping[str, Any], args: TrainingArguments
) -> tuple[FrozenFeatureCache | None, dict[str, Any], float]:
    """Compute the frozen conv blocks of ``model`` once for every item of ``sets`` (name -> dataset) and let the
    model's encoder start from them (:func:`attach_cache`).

    Returns the cache (None when no block is frozen: nothing to cache), the datasets with their cache
    keys, and the seconds it took (to charge to the time budget: it replaces work the steps would do).
    """
    encoder = model.base_encoder().feature_extractor  # type: ignore[operator]
    frozen = encoder.num_frozen_layers
    if frozen == 0:
        logger.warning("--cache_frozen_features: no conv block is frozen, nothing to cache")
        return None, dict(sets), 0.0
    dtype = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None
    model.to(args.device)
    cache = FrozenFeatureCache(num_layers=frozen)
    start, key, keyed = time.monotonic(), 0, {}
    for name, dataset in sets.items():
        keyed[name] = cache.add(
            encoder,
            dataset,
            first_key=key,
            compute=PrefixCompute(device=args.device, autocast_dtype=dtype),
            show_progress=not args.disable_tqdm,
            desc=f"caching conv ({name})",
        )
        key += len(dataset)
    seconds = time.monotonic() - start
    logger.info(
        "cached the first %d conv blocks for %d utterances: %.2f GB in memory, %.1f s",
        frozen,
        len(cache.features),
        cache.nbytes / 1e9,
        seconds,
    )
    attach_cache(model, frozen)
    return cache, keyed, seconds
