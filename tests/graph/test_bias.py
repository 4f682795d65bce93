"""drop_bias / drop_redundant_bias: exact in train and eval mode, on trained statistics."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from bnplace import Placement
from bnplace.graph import drop_redundant_bias, find_chains, rewrite
from examples.models import KerasQuestionMLP, Lesson3Head
from tests.graph.helpers import outputs


def _trained(model: nn.Module, shape: tuple[int, ...], steps: int = 20) -> nn.Module:
    """Train briefly, so BN statistics and biases are far from their initial values."""
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(steps):
        x = torch.randn(shape) * 3 + 1
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


CNN_SHAPE = (16, 2, 6, 6)


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4, momentum=None), nn.ELU(),
        nn.Dropout2d(0.1),
        nn.Flatten(), nn.Linear(4 * 36, 8), nn.BatchNorm1d(8, track_running_stats=False), nn.Tanh(),
        nn.Linear(8, 3),
    )


@pytest.mark.parametrize("build, shape", [
    (KerasQuestionMLP, (16, 1, 8, 8)),
    (_cnn, CNN_SHAPE),
])
def test_drop_redundant_bias_is_exact(build, shape) -> None:
    model = _trained(build(), shape)
    before = copy.deepcopy(model.state_dict())
    new = drop_redundant_bias(model)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    dropped = [k for k in before if k.endswith(".bias") and k not in new.state_dict()]
    assert dropped  # every linear feeding straight into BN lost its bias
    x = torch.randn(shape) * 3 + 1
    for train in (False, True):
        torch.testing.assert_close(outputs(new, x, train), outputs(model, x, train),
                                   rtol=1e-5, atol=1e-5)
    # the statistics keep matching while training goes on
    for _ in range(3):
        xb = torch.randn(shape) * 3 + 1
        outputs(new, xb, True)
        outputs(model, xb, True)
    torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False),
                               rtol=1e-5, atol=1e-5)


def test_rewrite_to_same_placement_with_drop_bias_keeps_outputs() -> None:
    model = _trained(KerasQuestionMLP(), (16, 1, 8, 8))
    new = rewrite(model, Placement.BEFORE_ACTIVATION, drop_bias=True)
    assert new.features[1].bias is None and model.features[1].bias is not None
    x = torch.randn(16, 1, 8, 8)
    for train in (False, True):
        torch.testing.assert_close(outputs(new, x, train), outputs(model, x, train),
                                   rtol=1e-5, atol=1e-5)


def test_moving_bn_before_activation_drops_bias() -> None:
    model = _trained(Lesson3Head(), (16, 1, 8, 8))
    with_bias = rewrite(model, Placement.BEFORE_ACTIVATION, drop_bias=False)
    without = rewrite(model, Placement.BEFORE_ACTIVATION, drop_bias=True)
    assert with_bias.get_submodule("fc1").bias is not None
    assert without.get_submodule("fc1").bias is None
    assert without.get_submodule("out").bias is not None  # feeds no BN
    x = torch.randn(16, 1, 8, 8)
    for train in (False, True):
        torch.testing.assert_close(outputs(without, x, train), outputs(with_bias, x, train),
                                   rtol=1e-5, atol=1e-5)


def test_no_bias_dropped_after_activation() -> None:
    model = Lesson3Head()
    new = rewrite(model, Placement.AFTER_ACTIVATION, drop_bias=True)
    assert new.get_submodule("fc1").bias is not None
    chains = find_chains(new)
    assert all(c.placement is Placement.AFTER_ACTIVATION for c in chains)
