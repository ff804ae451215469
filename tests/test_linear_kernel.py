"""The linear layers' measured CPU inference kernel (MKL or oneDNN): same products, used only where no
gradient is recorded, never past a swapped or hooked module. Functional only: no timing is asserted."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from hf_w2v2.models import linear_kernel as LK
from hf_w2v2.models.configuration import tiny
from hf_w2v2.models.ctc import Wav2Vec2ForCTC


def test_both_kernels_give_the_linear_product() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(48, 80)
    x = torch.randn(2, 7, 48)
    with torch.no_grad():
        reference = layer(x)
        for kernel in LK.LINEAR_KERNELS:
            with LK.use_linear_kernel(kernel):
                torch.testing.assert_close(LK.apply_linear(layer, x), reference, atol=1e-5, rtol=1e-5)


def test_gradients_and_other_dtypes_take_f_linear(monkeypatch) -> None:
    monkeypatch.setattr(LK, "_onednn", lambda *args: pytest.fail("oneDNN's op records no gradient"))
    layer = nn.Linear(8, 4)
    with LK.use_linear_kernel("onednn"):
        LK.apply_linear(layer, torch.randn(3, 8)).sum().backward()  # weights require grad
        assert layer.weight.grad is not None
        with torch.no_grad():
            LK.apply_linear(layer.double(), torch.randn(3, 8, dtype=torch.float64))


def test_swapped_and_hooked_modules_are_called_as_themselves(monkeypatch) -> None:
    monkeypatch.setattr(LK, "linear", lambda *args: pytest.fail("the module's own forward must run"))
    calls = []
    hooked = nn.Linear(8, 4)
    hooked.register_forward_hook(lambda module, args, out: calls.append(out.shape))
    quantised = torch.ao.quantization.quantize_dynamic(nn.Sequential(nn.Linear(8, 4)), {nn.Linear})[0]
    with torch.no_grad(), LK.use_linear_kernel("onednn"):
        LK.apply_linear(hooked, torch.randn(3, 8))
        LK.apply_linear(quantised, torch.randn(3, 8))
    assert calls == [torch.Size([3, 4])]


def test_the_kernel_is_measured_once_per_shape_and_can_be_forced(monkeypatch, caplog) -> None:
    LK.clear_linear_kernels()
    x, weight = torch.randn(5, 16), torch.randn(24, 16)
    with caplog.at_level(logging.INFO, logger=LK.__name__):
        first = LK.linear_kernel(x, weight)
        assert LK.linear_kernel(torch.randn(9, 16), weight) == first
    assert first in LK.LINEAR_KERNELS and sum("linear kernel" in r.message for r in caplog.records) == 1
    monkeypatch.setenv(LK.KERNEL_ENV, "mkl")
    assert LK.linear_kernel(x, weight) == "mkl"
    monkeypatch.setenv(LK.KERNEL_ENV, "blis")
    with pytest.raises(ValueError, match="HF_W2V2_LINEAR_KERNEL"):
        LK.linear_kernel(x, weight)


def test_a_failing_onednn_op_leaves_mkl(monkeypatch, caplog) -> None:
    LK.clear_linear_kernels()

    def broken(*args: object) -> torch.Tensor:
        raise RuntimeError("no oneDNN here")

    monkeypatch.setattr(LK, "_onednn", broken)
    with caplog.at_level(logging.INFO, logger=LK.__name__):
        assert LK.linear_kernel(torch.randn(5, 16), torch.randn(24, 16)) == "mkl"
    assert "no oneDNN here" in caplog.text
    LK.clear_linear_kernels()


def test_model_logits_agree_between_kernels() -> None:
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(tiny(vocab_size=12)).eval()
    audio = torch.randn(2, 6000)
    with torch.no_grad():
        logits = {}
        for kernel in LK.LINEAR_KERNELS:
            with LK.use_linear_kernel(kernel):
                logits[kernel] = model(audio).logits
    torch.testing.assert_close(logits["onednn"], logits["mkl"], atol=1e-5, rtol=1e-4)
