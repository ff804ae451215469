"""Self-supervised pre-training model: masked contrastive prediction of quantized latents (paper section 3).

Shape legend: B batch, F frames, C encoder channels, Q codevector dim,
P projected dim, K negatives.

Loss = L_m + alpha * L_d (eq. 2): the contrastive term L_m (eq. 3) asks each
masked context c_t to pick its quantized target q_t among K distractors drawn
from other masked frames of the same utterance; the diversity term L_d (eq. 4)
pushes the codebooks towards uniform use. As in transformers, both are sums over
masked frames (L_d is multiplied by the number of masked frames), so a trainer
divides by that count.

When the caller gives no ``mask_time_indices`` the model draws them in
training mode; when it gives no ``sampled_negative_indices`` but a mask exists,
it draws the negatives, all on the input's device (:mod:`hf_w2v2.models.masking`,
:mod:`hf_w2v2.models.negatives`). Given indices (transformers' collator path) are used
as they are.
"""

from __future__ import annotations

import torch
from torch import nn

from .configuration import Wav2Vec2Config
from .losses import contrastive_logits, contrastive_loss, diversity_loss
from .modeling import Wav2Vec2Model, Wav2Vec2PreTrainedModel, _want_dict
from .negatives import sample_negative_indices
from .outputs import Wav2Vec2ForPreTrainingOutput
from .quantizer import GumbelVectorQuantizer


class Wav2Vec2ForPreTraining(Wav2Vec2PreTrainedModel):
    def __init__(self, config: Wav2Vec2Config) -> None:
        super().__init__(config)
        if config.add_adapter:
            # The contrastive task compares contexts and targets frame by frame; the adapter shortens the contexts.
            raise ValueError(
                "Pre-training does not support the convolutional adapter (config.add_adapter=True): it shortens "
                "the context frames, which then no longer match the quantized targets"
            )
        self.wav2vec2 = Wav2Vec2Model(config)
        self.dropout_features = nn.Dropout(config.feat_quantizer_dropout)
        self.quantizer = GumbelVectorQuantizer(config)
        self.project_hid = nn.Linear(config.hidden_size, config.proj_codevector_dim)
        self.project_q = nn.Linear(config.codevector_dim, config.proj_codevector_dim)
        self.post_init()

    def set_gumbel_temperature(self, temperature: float) -> None:
        """Set tau of the Gumbel softmax (scheduled by ``hf_w2v2.pretrain.temperature.GumbelTemperatureCallback``)."""
        self.quantizer.temperature = float(temperature)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_time_indices: torch.Tensor | None = None,
        sampled_negative_indices: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> Wav2Vec2ForPreTrainingOutput | tuple:
        """``mask_time_indices`` (B, F) bool; ``sampled_negative_indices`` (B, F, K) flat indices into B x F."""
        enc, mask, penalty = self.wav2vec2.encode(
            input_values, attention_mask, mask_time_indices, output_attentions, output_hidden_states
        )
        projected = self.project_hid(enc.last_hidden_state)  # (B, F, D) -> (B, F, P)
        features = self.dropout_features(enc.extract_features)  # (B, F, C)
        quantized, perplexity = self.quantizer(features, mask)  # (B, F, Q)
        targets = self.project_q(quantized.to(self.project_q.weight.dtype))  # (B, F, Q) -> (B, F, P)
        out = Wav2Vec2ForPreTrainingOutput(
            projected_states=projected,
            projected_quantized_states=targets,
            codevector_perplexity=perplexity,
            hidden_states=enc.hidden_states,
            attentions=enc.attentions,
            mask_time_indices=mask,
        )
        if mask is not None and sampled_negative_indices is None:
            sampled_negative_indices = sample_negative_indices(mask, self.config.num_negatives)
        if mask is not None and sampled_negative_indices is not None:
            self._add_losses(out, mask, sampled_negative_indices, penalty)
        return out if _want_dict(self.config, return_dict) else out.to_tuple()

    def _add_losses(
        self,
        out: Wav2Vec2ForPreTrainingOutput,
        mask: torch.Tensor,
        negative_indices: torch.Tensor,
        feature_penalty: torch.Tensor | None,
    ) -> None:
        cfg = self.config
        context, targets = out.projected_states, out.projected_quantized_states  # (B, F, P) each
        assert context is not None and targets is not None and out.codevector_perplexity is not None
        logits = contrastive_logits(context, targets, negative_indices, cfg.contrastive_logits_temperature, mask)
        num_codevectors = cfg.num_codevectors_per_group * cfg.num_codevector_groups
        out.contrastive_loss = contrastive_loss(logits, mask)
        out.diversity_loss = diversity_loss(out.codevector_perplexity, num_codevectors) * mask.sum()
        loss = out.contrastive_loss + cfg.diversity_loss_weight * out.diversity_loss
        if feature_penalty is not None:
            # fairseq's features_pen, scaled by the masked-frame count like the other sums.
            loss = loss + cfg.feature_penalty_weight * feature_penalty * mask.sum()
        out.loss = loss
        out.sampled_negative_indices = negative_indices
        out.contrastive_logits = logits
