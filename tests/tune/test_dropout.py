"""Trials on CPU draw plain Dropout masks with uniform_: the same dropout, faster, and only
while training."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from bnplace.tune import dropout as dropout_module
from bnplace.tune.dropout import bernoulli_is_slow, uniform_mask_dropout

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def slow_bernoulli(monkeypatch):
    """Every test runs as on a CPU where torch draws bernoulli_ element by element (CI's CPU
    may be an Intel one, where it does not)."""
    monkeypatch.setattr(dropout_module, "bernoulli_is_slow", lambda: True)


def _drawn(dropout: nn.Dropout, x: torch.Tensor) -> torch.Tensor:
    with uniform_mask_dropout(dropout, CPU):
        return dropout(x)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_units_are_kept_with_probability_1_minus_p_and_scaled_by_its_inverse(p):
    torch.manual_seed(0)
    out = _drawn(nn.Dropout(p), torch.ones(200_000))
    kept = out != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / (1 - p)))


def test_the_gradient_flows_through_the_kept_units_only():
    torch.manual_seed(0)
    x = torch.randn(64, 128, requires_grad=True)
    out = _drawn(nn.Dropout(0.5), x)
    out.sum().backward()
    torch.testing.assert_close(x.grad, (out != 0).float() * 2.0)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_p_zero_and_one_match_torch(p):
    x = torch.randn(8, 4)
    torch.testing.assert_close(_drawn(nn.Dropout(p), x), nn.Dropout(p)(x))


def test_eval_mode_passes_inputs_through():
    x = torch.randn(8, 4)
    assert _drawn(nn.Dropout(0.5).eval(), x) is x


def test_masks_follow_torch_seed():
    x = torch.randn(32, 32)
    torch.manual_seed(3)
    first = _drawn(nn.Dropout(0.5), x)
    torch.manual_seed(3)
    assert torch.equal(_drawn(nn.Dropout(0.5), x), first)


def test_only_plain_out_of_place_dropouts_on_cpu_are_swapped_and_all_come_back():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Dropout(0.5, inplace=True),
                          nn.Dropout2d(0.5), nn.AlphaDropout(0.5))
    plain, inplace, channel, alpha = model[1:]
    with uniform_mask_dropout(model, CPU):
        assert "forward" in vars(plain)
        assert not any("forward" in vars(m) for m in (inplace, channel, alpha, model[0]))
    assert "forward" not in vars(plain)
    pickle.dumps(model)  # a saved winner holds torch's own Dropout


def test_other_devices_keep_torchs_dropout():
    dropout = nn.Dropout(0.5)
    with uniform_mask_dropout(dropout, torch.device("cuda")):
        assert "forward" not in vars(dropout)


def test_the_forward_comes_back_when_training_stops_early():
    dropout = nn.Dropout(0.5)
    with pytest.raises(KeyboardInterrupt), uniform_mask_dropout(dropout, CPU):
        raise KeyboardInterrupt
    assert "forward" not in vars(dropout)


def test_intel_cpus_with_mkl_keep_torchs_dropout(monkeypatch):
    monkeypatch.setattr(dropout_module, "bernoulli_is_slow", lambda: False)
    dropout = nn.Dropout(0.5)
    with uniform_mask_dropout(dropout, CPU):
        assert "forward" not in vars(dropout)


@pytest.mark.parametrize(("mkl", "intel", "slow"),
                         [(True, True, False), (True, False, True), (False, True, True)])
def test_bernoulli_is_slow_unless_torch_can_use_mkl_on_an_intel_cpu(monkeypatch, mkl, intel, slow):
    monkeypatch.setattr(torch.backends.mkl, "is_available", lambda: mkl)
    monkeypatch.setattr(dropout_module, "_intel_cpu", lambda: intel)
    bernoulli_is_slow.cache_clear()
    try:
        assert bernoulli_is_slow() is slow
    finally:
        bernoulli_is_slow.cache_clear()
