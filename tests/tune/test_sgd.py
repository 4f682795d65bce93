"""The trials' optimizer makes torch.optim.SGD's updates."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace.tune.sgd import MomentumSGD


class PartlyUsed(nn.Module):
    """A frozen layer, a layer used only from step ``late_from`` on, and one never used."""

    def __init__(self, late_from: int) -> None:
        super().__init__()
        self.frozen = nn.Linear(8, 8).requires_grad_(False)
        self.hidden = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.late = nn.Linear(16, 16)
        self.unused = nn.Linear(16, 16)
        self.out = nn.Linear(16, 3)
        self.late_from, self.steps = late_from, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.steps += 1
        h = self.hidden(self.frozen(x))
        return self.out(self.late(h) if self.steps >= self.late_from else h)


def trained(model: nn.Module, step) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    for _ in range(6):
        x = torch.randn(16, 8, generator=generator)
        y = torch.randint(0, 3, (16,), generator=generator)
        step(F.cross_entropy(model(x), y))
    return model.state_dict()


def torch_step(model: nn.Module, **options):
    optimizer = torch.optim.SGD(model.parameters(), **options)

    def step(loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def twins(late_from: int) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = PartlyUsed(late_from)
    twin = PartlyUsed(late_from)
    twin.load_state_dict(model.state_dict())
    return model, twin


@pytest.mark.parametrize("settings", [
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True),
    dict(lr=0.1, momentum=0.0),
])
def test_updates_equal_fused_torch_sgd_bit_for_bit(settings):
    ours, theirs = twins(late_from=0)
    expected = trained(theirs, torch_step(theirs, fused=True, **settings))
    got = trained(ours, MomentumSGD(ours.parameters(), **settings).step)
    assert got.keys() == expected.keys()
    for name in expected:
        assert torch.equal(got[name], expected[name]), name


def test_a_parameter_first_used_later_starts_its_momentum_then():
    """torch 2.13's fused SGD fails such a step (a missing momentum buffer): compare with its
    per-parameter SGD, which agrees with ours up to rounding."""
    ours, theirs = twins(late_from=3)
    expected = trained(theirs, torch_step(theirs, lr=0.1, momentum=0.9, foreach=False))
    got = trained(ours, MomentumSGD(ours.parameters(), lr=0.1, momentum=0.9).step)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], msg=name)
    assert not torch.equal(got["late.weight"], twins(late_from=3)[0].state_dict()["late.weight"])


def test_frozen_and_unused_parameters_are_left_alone():
    model, untouched = twins(late_from=0)
    trained(model, MomentumSGD(model.parameters(), lr=0.1, momentum=0.9,
                               weight_decay=0.1).step)
    for name in ("frozen.weight", "frozen.bias", "unused.weight", "unused.bias"):
        assert torch.equal(model.state_dict()[name], untouched.state_dict()[name]), name
