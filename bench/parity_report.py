"""Print the max relative difference of every parity-checked output vs stock transformers.

    python bench/parity_report.py

Uses the same small configs and seeded weights as tests/test_parity.py (fp32, eval mode).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from transformers.models.wav2vec2 import modeling_wav2vec2 as stock_modeling

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from oracle import audio_batch, make_pair, rel_diff


def main() -> None:
    rows = []
    for family in ("base", "large-lv60"):
        for masked in (False, True):
            audio, mask = audio_batch([8000, 6400, 5000])
            mask = mask if masked else None
            tag = f"{family:10s} {'mask' if masked else 'no-mask'}"
            stock, ours = make_pair("Wav2Vec2Model", family)
            with torch.no_grad():
                r, o = (
                    stock(audio, attention_mask=mask, output_hidden_states=True),
                    ours(audio, attention_mask=mask, output_hidden_states=True),
                )
            rows.append((tag, "last_hidden_state", rel_diff(o.last_hidden_state, r.last_hidden_state)))
            rows.append((tag, "extract_features", rel_diff(o.extract_features, r.extract_features)))
            rows.append(
                (tag, "hidden_states (max)", max(rel_diff(a, b) for a, b in zip(o.hidden_states, r.hidden_states)))
            )
            labels = torch.tensor([[3, 4, 5, 5, 6, 7], [8, 9, 10, 3, -100, -100], [4, 4, 11, -100, -100, -100]])
            for reduction in ("mean", "sum"):
                stock, ours = make_pair("Wav2Vec2ForCTC", family, ctc_loss_reduction=reduction)
                with torch.no_grad():
                    r, o = (
                        stock(audio, attention_mask=mask, labels=labels),
                        ours(audio, attention_mask=mask, labels=labels),
                    )
                rows.append((tag, "ctc logits", rel_diff(o.logits, r.logits)))
                rows.append((tag, f"ctc loss ({reduction})", rel_diff(o.loss, r.loss)))
            stock, ours = make_pair("Wav2Vec2ForPreTraining", family)
            frames = int(ours._get_feat_extract_output_lengths(audio.shape[1]))
            fm = None if mask is None else ours.frame_padding_mask(mask, frames)
            np.random.seed(0)
            tm = stock_modeling._compute_mask_indices((3, frames), 0.5, 3, attention_mask=fm, min_masks=2)
            neg = torch.tensor(stock_modeling._sample_negative_indices((3, frames), 6, tm))
            tm = torch.tensor(tm)
            with torch.no_grad():
                r = stock(audio, attention_mask=mask, mask_time_indices=tm, sampled_negative_indices=neg)
                o = ours(audio, attention_mask=mask, mask_time_indices=tm, sampled_negative_indices=neg)
            for f in ("loss", "contrastive_loss", "diversity_loss", "codevector_perplexity"):
                rows.append((tag, f"pretraining {f}", rel_diff(getattr(o, f), getattr(r, f))))
            for name in ("Wav2Vec2ForSequenceClassification", "Wav2Vec2ForAudioFrameClassification"):
                stock, ours = make_pair(name, family)
                with torch.no_grad():
                    rows.append(
                        (
                            tag,
                            f"{name[8:]} logits",
                            rel_diff(ours(audio, attention_mask=mask).logits, stock(audio, attention_mask=mask).logits),
                        )
                    )
        stock, ours = make_pair("Wav2Vec2ForXVector", family)
        audio, _ = audio_batch([6000, 6000])
        with torch.no_grad():
            rows.append(
                (
                    f"{family:10s} no-mask",
                    "xvector embeddings",
                    rel_diff(ours(audio).embeddings, stock(audio).embeddings),
                )
            )
    worst = max(r[2] for r in rows)
    for tag, name, value in rows:
        print(f"{tag:20s} {name:40s} {value:.2e}")
    print(f"worst max relative difference: {worst:.2e} (budget 1e-4)")


if __name__ == "__main__":
    main()
