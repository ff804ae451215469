"""Context network: a Transformer over the projected frames (paper section 2).

Shape legend: B batch, F frames, D model dim, H heads, E head dim (D = H x E).

Two block layouts exist in the released checkpoints:

* post-LN (``do_stable_layer_norm=False``, base): ``x = LN(x + Attn(x))``,
  ``x = LN(x + FFN(x))``; the input is normalised once before the first block.
* pre-LN, called "stable layer norm" (large-lv60): ``x = x + Attn(LN(x))``,
  ``x = x + FFN(LN(x))``; one LayerNorm after the last block.

Padded frames are zeroed before the positional convolution and masked as keys
in attention. ``hidden_states`` follow transformers 5.x: the input of every
block, then the output of the last block (before the final LayerNorm of the
pre-LN layout), ``num_hidden_layers + 1`` tensors in all.

Gradient checkpointing is per block: :class:`TransformerBlock` is a transformers
``GradientCheckpointingLayer``, so ``gradient_checkpointing_enable(gradient_checkpointing_kwargs=...,
every_n_layers=...)`` reaches each block with the caller's ``torch.utils.checkpoint`` options and
``is_gradient_checkpointing`` reports them, as for stock models. Pre-LN blocks of MMS checkpoints
(``adapter_attn_dim``) end with a language adapter (:mod:`.adapters`).

In CPU float32 inference the linear layers multiply through the library measured fastest on the
machine, MKL or oneDNN (:mod:`.linear_kernel`); the maths and the parameters are those above.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GradientCheckpointingLayer

from .activations import activation
from .adapters import AttentionAdapter
from .configuration import Wav2Vec2Config
from .linear_kernel import apply_linear, linear
from .position_encoder import ConvPositionEncoder


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention with a key padding mask."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        d = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = d // self.num_heads
        self.dropout = float(config.attention_dropout)
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def _plain_projections(self) -> bool:
        """True when Q, K and V are ordinary ``nn.Linear`` layers whose weights can be stacked.

        ``torch.ao.quantization.quantize_dynamic`` (and similar swaps: LoRA, weight-only int8)
        replace them with modules whose ``weight`` is not a tensor; those are called one by one.
        The TorchScript tracer (OpenVINO's converter) gets the three layers too: OpenVINO quantises
        and fuses each projection itself, while a packed GEMM's split costs it layout copies.
        """
        if torch.jit.is_tracing():
            return False
        return all(type(p) is nn.Linear for p in (self.q_proj, self.k_proj, self.v_proj))

    def _packed_qkv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Q, K and V weights stacked for one GEMM instead of three.

        Stacked anew on every call: a cached copy cannot tell reliably when an optimizer has
        updated the parameters in place (updates through ``.data`` leave no trace).
        """
        weight = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])  # (3D, D)
        bias = torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])  # (3D,)
        return weight, bias

    def forward(
        self, x: torch.Tensor, key_mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``key_mask`` (B, F) is True on frames that may be attended to."""
        b, f, d = x.shape
        if self._plain_projections():
            weight, bias = self._packed_qkv()
            qkv = linear(x, weight, bias).view(b, f, 3, self.num_heads, self.head_dim)  # (B, F, 3D) -> (B, F, 3, H, E)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # -> 3 x (B, H, F, E)
        else:  # quantised or otherwise swapped projections: call each module, never read its weight
            q, k, v = (
                proj(x).view(b, f, self.num_heads, self.head_dim).transpose(1, 2)  # (B, F, D) -> (B, H, F, E)
                for proj in (self.q_proj, self.k_proj, self.v_proj)
            )
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, F)
        dropout = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q @ k.transpose(-1, -2)) * self.head_dim**-0.5  # (B, H, F, F)
            if attn_mask is not None:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            weights = F.dropout(scores.softmax(dim=-1), p=dropout, training=self.training)
            out = weights @ v  # (B, H, F, E)
        else:
            weights = None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        out = out.transpose(1, 2).reshape(b, f, d)  # (B, H, F, E) -> (B, F, D)
        return apply_linear(self.out_proj, out), weights


class FeedForward(nn.Module):
    """Linear(D -> I) -> activation -> dropout -> Linear(I -> D) -> dropout."""

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = activation(config.hidden_act)
        self.intermediate_dropout = nn.Dropout(config.activation_dropout)
        self.output_dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.output_dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.intermediate_dropout(self.intermediate_act_fn(apply_linear(self.intermediate_dense, x)))
        return self.output_dropout(apply_linear(self.output_dense, x))


class TransformerBlock(GradientCheckpointingLayer):
    """One block; ``pre_norm`` selects the pre-LN ("stable layer norm") layout.

    Called with positional arguments only, so that reentrant checkpointing sees the hidden states.
    """

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.pre_norm = config.do_stable_layer_norm
        self.attention = SelfAttention(config)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        # MMS language adapters exist only in the pre-LN layout (as in the Hub checkpoints).
        with_adapter = self.pre_norm and getattr(config, "adapter_attn_dim", None) is not None
        self.adapter_layer = AttentionAdapter(config) if with_adapter else None

    def forward(
        self, x: torch.Tensor, key_mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pre_norm:
            attn, weights = self.attention(self.layer_norm(x), key_mask, need_weights)
            x = x + self.dropout(attn)
            x = x + self.feed_forward(self.final_layer_norm(x))
            if self.adapter_layer is not None:
                x = x + self.adapter_layer(x)
        else:
            attn, weights = self.attention(x, key_mask, need_weights)
            x = self.layer_norm(x + self.dropout(attn))
            x = self.final_layer_norm(x + self.feed_forward(x))
        return x, weights


def layerdrop_keep(
    num_layers: int, p: float, *, seed: int, step: int, micro_batch: int = 0, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Which of ``num_layers`` blocks run, ``(num_layers,)`` bool: each is skipped with probability ``p``.

    A pure function of (seed, step, micro-batch): every process of a data-parallel run draws the
    same decisions, so all of them run the same blocks (DDP then reduces the same gradients, and
    FSDP/ZeRO-3 ranks gather the same layers), and a resumed run draws what the uninterrupted run drew.
    """
    mixed = (seed * 1_000_003 + step) * 1_009 + micro_batch  # distinct for distinct (seed, step, micro-batch)
    generator = torch.Generator().manual_seed(mixed % (2**63))
    return (torch.rand(num_layers, generator=generator) >= p).to(device)


class TransformerEncoder(nn.Module):
    """Positional convolution + blocks, with LayerDrop; the blocks checkpoint themselves when enabled.

    LayerDrop decisions come from :func:`layerdrop_keep` with ``layerdrop_seed`` and
    ``layerdrop_step`` (the optimizer step; the trainers set both before each step, see
    :mod:`hf_w2v2.training.layerdrop`) and the index of the training pass within that step.
    Left unset, the step counts training passes.
    """

    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__()
        self.pre_norm = config.do_stable_layer_norm
        self.layerdrop = float(config.layerdrop)
        self.layerdrop_seed = 0  # the same on every process
        self.layerdrop_step: int | None = None  # the optimizer step; None: count training passes
        self.layerdrop_pass = 0  # training passes since layerdrop_step was set (micro-batches of one step)
        self.pos_conv_embed = ConvPositionEncoder(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList([TransformerBlock(config) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False  # mirrors the blocks' flag (set by gradient_checkpointing_enable)

    def forward(
        self,
        x: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        """``x`` (B, F, D); ``padding_mask`` (B, F) True on valid frames.

        Returns the last hidden state and, when asked, all hidden states and attention maps.
        """
        if padding_mask is not None:
            x = torch.where(padding_mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        x = x + self.pos_conv_embed(x)
        if not self.pre_norm:
            x = self.layer_norm(x)
        x = self.dropout(x)

        keep = self._layerdrop_keep()
        hidden_states: list[torch.Tensor] = []
        attentions: list[torch.Tensor] = []
        for index, block in enumerate(self.layers):
            if output_hidden_states:
                hidden_states.append(x)
            # LayerDrop (Fan et al. 2019): skip whole blocks at random while training.
            if keep is not None and not keep[index]:
                continue
            x, weights = block(x, padding_mask, output_attentions)
            if output_attentions:
                attentions.append(weights)
        if output_hidden_states:
            hidden_states.append(x)
        if self.pre_norm:
            x = self.layer_norm(x)
        return (
            x,
            tuple(hidden_states) if output_hidden_states else None,
            tuple(attentions) if output_attentions else None,
        )

    def _layerdrop_keep(self) -> list[bool] | None:
        """This training pass's LayerDrop decisions (None: every block runs)."""
        if not (self.training and self.layerdrop > 0.0):
            return None
        if self.layerdrop_step is None:  # no trainer: each pass is a step of its own
            step, micro = self.layerdrop_pass, 0
        else:
            step, micro = self.layerdrop_step, self.layerdrop_pass
        self.layerdrop_pass += 1
        return layerdrop_keep(
            len(self.layers), self.layerdrop, seed=self.layerdrop_seed, step=step, micro_batch=micro
        ).tolist()
