"""X-vector speaker embeddings (Snyder et al. 2018) on top of wav2vec 2.0.

Shape legend: B batch, F frames, D model dim, C TDNN channels, E embedding dim, L speakers.

Projector -> TDNN (dilated 1-D convolutions over frames, ReLU) -> statistics
pooling (mean and standard deviation over valid frames) -> embedding layer ->
classifier trained with a margin softmax. Each TDNN kernel is stored as a
``Linear(C_in x k, C_out)`` (key ``tdnn.{i}.kernel``), as in the Hub format.

The objective is chosen by config fields (declared, documented and checked on
:class:`~hf_w2v2.models.configuration.Wav2Vec2Config`) that stock transformers ignores, so a saved
model still loads there: ``xvector_loss`` one of ``softmax``, ``am_softmax`` (the default, and the
only one of transformers: s = 30, m = 0.4) or ``aam_softmax`` (ArcFace); ``xvector_scale`` s,
``xvector_margin`` m (default 0.4 for AM, 0.2 for AAM) and ``xvector_easy_margin`` (AAM only, see
:func:`~hf_w2v2.models.losses.aam_softmax_loss`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .classification import _ClassificationBase, num_labels
from .configuration import Wav2Vec2Config
from .lengths import conv_output_length
from .losses import MARGIN_LOSSES, margin_softmax_loss
from .modeling import _want_dict
from .outputs import XVectorOutput
from .validation import check_labels


class TDNNLayer(nn.Module):
    def __init__(self, config: Wav2Vec2Config, index: int) -> None:
        super().__init__()
        self.in_dim = config.tdnn_dim[index - 1] if index > 0 else config.tdnn_dim[0]
        self.out_dim = config.tdnn_dim[index]
        self.kernel_size = config.tdnn_kernel[index]
        self.dilation = config.tdnn_dilation[index]
        self.kernel = nn.Linear(self.in_dim * self.kernel_size, self.out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Linear weight (C_out, k x C_in) laid out tap-major -> conv weight (C_out, C_in, k).
        weight = self.kernel.weight.view(self.out_dim, self.kernel_size, self.in_dim).transpose(1, 2)
        y = F.conv1d(x.transpose(1, 2), weight, self.kernel.bias, dilation=self.dilation)  # (B, C, F')
        return F.relu(y.transpose(1, 2))  # (B, C, F') -> (B, F', C)


DEFAULT_MARGINS = {"softmax": 0.0, "am_softmax": 0.4, "aam_softmax": 0.2}
DEFAULT_SCALE = 30.0


class MarginSoftmaxLoss(nn.Module):
    """Holds the class vectors ``weight`` (E, L) of the x-vector objective (softmax, AM- or AAM-softmax)."""

    def __init__(
        self,
        input_dim: int,
        num_labels: int,
        scale: float = DEFAULT_SCALE,
        margin: float = 0.4,
        kind: str = "am_softmax",
        easy_margin: bool = False,
    ) -> None:
        super().__init__()
        if kind not in MARGIN_LOSSES:
            raise ValueError(f"xvector_loss must be one of {list(MARGIN_LOSSES)}, got {kind!r}")
        self.kind, self.scale, self.margin, self.easy_margin = kind, scale, margin, easy_margin
        self.weight = nn.Parameter(torch.randn(input_dim, num_labels))

    @classmethod
    def from_config(cls, config: Wav2Vec2Config) -> MarginSoftmaxLoss:
        kind, margin = config.xvector_loss, config.xvector_margin
        return cls(
            config.xvector_output_dim,
            num_labels(config),
            scale=float(config.xvector_scale),
            margin=float(DEFAULT_MARGINS[kind] if margin is None else margin),
            kind=kind,
            easy_margin=bool(config.xvector_easy_margin),
        )

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return margin_softmax_loss(self.kind, logits, labels, self.weight, self.scale, self.margin, self.easy_margin)


AMSoftmaxLoss = MarginSoftmaxLoss  # the name of transformers' class (default kind: am_softmax)


class Wav2Vec2ForXVector(_ClassificationBase):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__(config)
        self.projector = nn.Linear(config.hidden_size, config.tdnn_dim[0])
        self.tdnn = nn.ModuleList([TDNNLayer(config, i) for i in range(len(config.tdnn_dim))])
        self.feature_extractor = nn.Linear(config.tdnn_dim[-1] * 2, config.xvector_output_dim)
        self.classifier = nn.Linear(config.xvector_output_dim, config.xvector_output_dim)
        self.objective = MarginSoftmaxLoss.from_config(config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, MarginSoftmaxLoss):
            nn.init.normal_(module.weight)

    def tdnn_lengths(self, frame_lengths: torch.Tensor) -> torch.Tensor:
        """Valid frames left after the unpadded, dilated TDNN stack.

        Deviation from transformers, which ignores the dilation here and so pools
        frames computed from padding for padded items; unpadded items agree.
        """
        spans = [(k - 1) * d + 1 for k, d in zip(self.config.tdnn_kernel, self.config.tdnn_dilation)]
        return conv_output_length(frame_lengths, spans, [1] * len(spans))

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> XVectorOutput | tuple:
        """``labels`` (B,) speaker ids for the margin-softmax loss (``config.xvector_loss``)."""
        hidden, all_hidden, attentions = self._features(
            input_values, attention_mask, output_attentions, output_hidden_states
        )
        x = self.projector(hidden)  # (B, F, D) -> (B, F, C)
        for layer in self.tdnn:
            x = layer(x)
        if attention_mask is None:
            mean, std = x.mean(dim=1), x.std(dim=1)  # (B, C) each
        else:
            lengths = self.tdnn_lengths(self.frame_lengths(attention_mask)).tolist()
            mean = torch.stack([x[i, :n].mean(dim=0) for i, n in enumerate(lengths)])
            std = torch.stack([x[i, :n].std(dim=0) for i, n in enumerate(lengths)])
        embeddings = self.feature_extractor(torch.cat([mean, std], dim=-1))  # (B, 2C) -> (B, E)
        logits = self.classifier(embeddings)
        loss = None
        if labels is not None:
            check_labels(labels, num_labels(self.config), "num_labels", batch_size=logits.shape[0])
            loss = self.objective(logits, labels)
        out = XVectorOutput(
            loss=loss, logits=logits, embeddings=embeddings, hidden_states=all_hidden, attentions=attentions
        )
        return out if _want_dict(self.config, return_dict) else out.to_tuple()
