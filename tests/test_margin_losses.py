"""Margin softmax losses of the x-vector head (softmax, AM-softmax, AAM-softmax/ArcFace) and their selection."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers.models.wav2vec2 import modeling_wav2vec2 as stock

from hf_w2v2.models.configuration import tiny
from hf_w2v2.models.losses import aam_softmax_loss, am_softmax_loss, margin_softmax_loss, softmax_loss
from hf_w2v2.models.xvector import MarginSoftmaxLoss, Wav2Vec2ForXVector


def data(seed: int = 0, b: int = 6, e: int = 8, n: int = 5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, e, generator=g), torch.randint(0, n, (b,), generator=g), torch.randn(e, n, generator=g)


def arcface_by_angle(x, labels, w, s, m, easy):
    """The definition: the target logit is s cos(theta + m) (with ArcFace's fixes), from explicit angles."""
    cos = (F.normalize(x.double(), dim=1) @ F.normalize(w.double(), dim=0)).clamp(-1, 1)
    theta = torch.acos(cos)
    if easy:
        target = torch.where(cos > 0, torch.cos(theta + m), cos)
    else:
        target = torch.where(theta + m <= math.pi, torch.cos(theta + m), cos - math.sin(math.pi - m) * m)
    onehot = F.one_hot(labels, w.shape[1]).bool()
    return F.cross_entropy(s * torch.where(onehot, target, cos), labels)


@pytest.mark.parametrize("easy", [False, True])
def test_aam_matches_angle_definition(easy):
    for seed in range(4):
        x, y, w = data(seed)
        ours = aam_softmax_loss(x, y, w, scale=30.0, margin=0.3, easy_margin=easy)
        assert torch.allclose(ours.double(), arcface_by_angle(x, y, w, 30.0, 0.3, easy), atol=1e-4)


def test_aam_continuation_is_monotonic_past_pi_minus_m():
    """Without easy margin the loss keeps rising as the angle to the own class grows past pi - m (never rewarded)."""
    m = 0.5
    w = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])  # (E=3, L=2): own class along x, other along z
    angles = torch.linspace(0.0, math.pi, 200)
    x = torch.stack([torch.cos(angles), torch.sin(angles), torch.zeros(200)], dim=1)  # in the x-y plane: cos(z) = 0
    labels = torch.zeros(1, dtype=torch.long)
    losses = [aam_softmax_loss(x[i : i + 1], labels, w, 1.0, m).item() for i in range(200)]
    assert all(b >= a - 1e-6 for a, b in zip(losses, losses[1:])), "loss must not drop as the angle grows"
    easy = [aam_softmax_loss(x[i : i + 1], labels, w, 1.0, m, easy_margin=True).item() for i in range(200)]
    # At theta = pi: easy margin keeps cos = -1; ArcFace's continuation gives -1 - m sin(pi - m).
    assert easy[-1] == pytest.approx(math.log1p(math.e), abs=1e-4)
    assert losses[-1] == pytest.approx(math.log1p(math.exp(1 + math.sin(math.pi - m) * m)), abs=1e-4)


def test_zero_margin_aam_equals_zero_margin_am():
    x, y, w = data(1)
    assert torch.allclose(aam_softmax_loss(x, y, w, 30.0, 0.0), am_softmax_loss(x, y, w, 30.0, 0.0), atol=1e-5)


def test_margin_raises_the_loss():
    x, y, w = data(2)
    assert aam_softmax_loss(x, y, w, 30.0, 0.3) > aam_softmax_loss(x, y, w, 30.0, 0.0)
    assert am_softmax_loss(x, y, w, 30.0, 0.3) > am_softmax_loss(x, y, w, 30.0, 0.0)


def test_softmax_is_plain_cross_entropy():
    x, y, w = data(3)
    assert torch.allclose(softmax_loss(x, y, w), F.cross_entropy(x @ w, y))
    assert torch.allclose(margin_softmax_loss("softmax", x, y, w), F.cross_entropy(x @ w, y))


def test_unknown_kind_is_refused():
    x, y, w = data(0)
    with pytest.raises(ValueError, match="xvector_loss must be one of"):
        margin_softmax_loss("arcface", x, y, w)
    with pytest.raises(ValueError, match="xvector_loss must be one of"):
        Wav2Vec2ForXVector(tiny(num_labels=3, xvector_loss="cosface"))


def test_default_objective_is_stock_am_softmax():
    """Default config: the same loss as transformers' AMSoftmaxLoss (s = 30, m = 0.4) for the same weights."""
    config = tiny(num_labels=4)
    ours = MarginSoftmaxLoss.from_config(config)
    assert (ours.kind, ours.scale, ours.margin) == ("am_softmax", 30.0, 0.4)
    theirs = stock.AMSoftmaxLoss(config.xvector_output_dim, 4)
    theirs.weight.data.copy_(ours.weight.data)
    x, y, _ = data(4, e=config.xvector_output_dim, n=4)
    assert torch.allclose(ours(x, y), theirs(x, y), atol=1e-6)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"xvector_loss": "aam_softmax"}, ("aam_softmax", 30.0, 0.2, False)),
        (
            {"xvector_loss": "aam_softmax", "xvector_margin": 0.3, "xvector_scale": 20.0, "xvector_easy_margin": True},
            ("aam_softmax", 20.0, 0.3, True),
        ),
        ({"xvector_loss": "softmax"}, ("softmax", 30.0, 0.0, False)),
    ],
)
def test_head_picks_the_configured_loss_and_saves_it(tmp_path, fields, expected):
    model = Wav2Vec2ForXVector(tiny(num_labels=3, **fields))
    o = model.objective
    assert (o.kind, o.scale, o.margin, o.easy_margin) == expected
    model.save_pretrained(tmp_path)
    again = Wav2Vec2ForXVector.from_pretrained(tmp_path).objective
    assert (again.kind, again.scale, again.margin, again.easy_margin) == expected
    stock_model = stock.Wav2Vec2ForXVector.from_pretrained(tmp_path)  # stock ignores the new fields
    assert torch.equal(stock_model.objective.weight, model.objective.weight)


def test_head_loss_uses_the_configured_objective():
    torch.manual_seed(0)
    model = Wav2Vec2ForXVector(tiny(num_labels=3, xvector_loss="aam_softmax", xvector_margin=0.25)).eval()
    audio, labels = torch.randn(2, 8000), torch.tensor([0, 2])
    out = model(audio, labels=labels)
    expected = aam_softmax_loss(out.logits, labels, model.objective.weight, 30.0, 0.25)
    assert torch.allclose(out.loss, expected, atol=1e-6)


def test_xvector_loss_fields_are_declared_documented_and_checked(tmp_path):
    """The config declares every field the head reads (defaults = stock transformers' objective) and checks them;
    a saved config still loads in stock transformers, which keeps the fields as plain attributes."""
    from transformers import Wav2Vec2Config as StockConfig

    from hf_w2v2.models.configuration import Wav2Vec2Config

    config = Wav2Vec2Config()
    assert (config.xvector_loss, config.xvector_scale, config.xvector_margin, config.xvector_easy_margin) == (
        "am_softmax",
        30.0,
        None,
        False,
    )
    source = Path(__file__).parents[1] / "hf_w2v2" / "models" / "configuration.py"
    text = source.read_text()
    for name in ("xvector_loss", "xvector_scale", "xvector_margin", "xvector_easy_margin"):
        assert f"    {name}:" in text and '    """X-vector' in text.split(f"    {name}:")[1][:200], name
    for bad, match in (
        ({"xvector_scale": 0.0}, "xvector_scale"),
        ({"xvector_margin": -0.1}, "xvector_margin"),
        ({"xvector_easy_margin": "yes"}, "xvector_easy_margin"),
    ):
        with pytest.raises(ValueError, match=match):
            tiny(num_labels=3, **bad).check()
    tiny(num_labels=3, xvector_loss="aam_softmax", xvector_margin=0.2).save_pretrained(tmp_path)
    stock_config = StockConfig.from_pretrained(tmp_path)
    assert stock_config.xvector_loss == "aam_softmax" and stock_config.xvector_margin == 0.2
