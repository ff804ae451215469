"""Verification EER of untrained embeddings: mean and std over time of each encoder layer's hidden states.

A reference row for the x-vector runs of docs/classification_runs.md: how much speaker information the
encoder carries before any speaker training. Each clip is cut to its first second (as ``--max_seconds 1``
keeps the middle second, near enough for 0.4 s digits), zero-padded to 0.25 s, embedded as
``[mean_t h_t ; std_t h_t]`` of one layer, centred by the set's mean embedding and scored by cosine.

    python bench/sv_untrained_baseline.py models/w2v2-small-synth-en runs/sv_softmax/trials_fsdd_heldout.txt \
        runs/sv_softmax/trials_synth_heldout.txt

Prints one EER per layer (0 = the projected conv features, then each Transformer block) per trials file.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from hf_w2v2.classify.inference import load_clip
from hf_w2v2.classify.verification import cosine_scores, equal_error_rate, read_trials
from hf_w2v2.data.audio import TARGET_SAMPLING_RATE
from hf_w2v2.models.modeling import Wav2Vec2Model


@torch.no_grad()
def layer_statistics(model: Wav2Vec2Model, path: str) -> list[torch.Tensor]:
    """Per layer, the (2D,) mean and std over time of one clip's hidden states."""
    audio = load_clip(path, TARGET_SAMPLING_RATE // 4)[:TARGET_SAMPLING_RATE]
    out = model(torch.from_numpy(audio)[None], output_hidden_states=True)
    return [torch.cat([h[0].mean(dim=0), h[0].std(dim=0)]) for h in out.hidden_states]  # (F, D) -> (2D,)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="any wav2vec 2.0 folder (its encoder is used)")
    parser.add_argument("trials", nargs="+", help="trials files (1|0 A B lines)")
    args = parser.parse_args()
    model = Wav2Vec2Model.from_pretrained(args.model).eval()
    for trials_file in args.trials:
        trials = read_trials(trials_file)
        files = sorted({name for t in trials for name in (t.a, t.b)})
        stats = [layer_statistics(model, f) for f in files]
        index = {f: i for i, f in enumerate(files)}
        targets = np.array([t.target for t in trials])
        eers = []
        for layer in range(len(stats[0])):
            emb = F.normalize(torch.stack([s[layer] for s in stats]), dim=-1)  # (N, 2D)
            scores = cosine_scores(emb - emb.mean(dim=0), index, trials)  # centred by the set's mean
            eers.append(equal_error_rate(scores, targets)[0])
        print(f"{trials_file}: EER by layer " + " ".join(f"{e:.1%}" for e in eers), flush=True)


if __name__ == "__main__":
    main()
