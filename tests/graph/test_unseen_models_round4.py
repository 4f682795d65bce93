"""Published blocks the graph pass used to pass over without a word: PointNet's head (a Dropout
between a Linear and its BatchNorm). Each is now a chain that is rewritten exactly, or a chain
listed as skipped, with why.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import (BnplaceWarning, drop_redundant_bias, find_chains, fold_with_report,
                           rewrite)
from tests.graph.helpers import identity_batchnorms, outputs, trained_statistics

_BatchNorm = nn.modules.batchnorm._BatchNorm


def _described(model: nn.Module, x: torch.Tensor | None = None) -> list[tuple]:
    return [(c.linear, c.activation, c.dropout, c.batchnorm, c.placement, c.skipped)
            for c in find_chains(model, example_inputs=x)]


def _trains(model: nn.Module, x: torch.Tensor) -> None:
    """One SGD step runs and changes the weights."""
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(x).square().mean()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def _unchanged(new: nn.Module, model: nn.Module, x: torch.Tensor) -> None:
    for train in (True, False):
        torch.testing.assert_close(outputs(new, x, train), outputs(model, x, train),
                                   rtol=0, atol=0)


class PointNetHead(nn.Module):
    """PointNet's classifier head (``PointNetCls`` in fxia22/pointnet.pytorch): the second
    layer drops out between its Linear and its BatchNorm, before the ReLU."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(32, 16)
        self.fc2 = nn.Linear(16, 8)
        self.fc3 = nn.Linear(8, k)
        self.dropout = nn.Dropout(p=0.3)
        self.bn1 = nn.BatchNorm1d(16)
        self.bn2 = nn.BatchNorm1d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.dropout(self.fc2(x))))
        return F.log_softmax(self.fc3(x), dim=1)


def test_pointnet_dropout_before_its_batchnorm_is_an_after_dropout_chain() -> None:
    model = PointNetHead()
    x = torch.randn(8, 32)
    assert _described(model) == [
        ("fc1", "relu", None, "bn1", Placement.BEFORE_ACTIVATION, None),
        ("fc2", "relu_1", "dropout", "bn2", Placement.AFTER_DROPOUT, None)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", BnplaceWarning)
        same = rewrite(model, {"fc2": Placement.AFTER_DROPOUT}, drop_bias=False)
    _unchanged(same, model, x)


@pytest.mark.parametrize("placement", [Placement.BEFORE_ACTIVATION, Placement.AFTER_ACTIVATION,
                                       Placement.NONE])
def test_pointnet_head_gets_each_placement_with_its_dropout_after_the_relu(
        placement: Placement) -> None:
    x = torch.randn(8, 32)
    model = trained_statistics(PointNetHead(), x)
    new = rewrite(model, placement)
    chains = find_chains(new)
    assert [(c.linear, c.activation, c.dropout, c.placement) for c in chains] == [
        ("fc1", "relu", None, placement), ("fc2", "relu_1", "dropout", placement)]
    assert not chains[1].nodes.dropout_first
    if placement is Placement.BEFORE_ACTIVATION:
        # in eval mode the dropout is the identity: PointNet's order computes this one
        assert new.fc2.bias is None and model.fc2.bias is not None
        torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))
    _trains(new, x)


def test_pointnet_head_keeps_the_bias_before_its_dropout_and_folds_through_it() -> None:
    x = torch.randn(8, 32)
    model = trained_statistics(PointNetHead(), x)
    lean = drop_redundant_bias(model)
    # dropout multiplies the bias by its mask before the BN: it no longer cancels out
    assert lean.fc1.bias is None and lean.fc2.bias is not None
    for train in (True, False):
        torch.testing.assert_close(outputs(lean, x, train), outputs(model, x, train))
    folded, report = fold_with_report(model, example_inputs=x)
    assert [(f.batchnorm, f.into, f.direction) for f in report.folded] == [
        ("bn1", "fc1", "preceding"), ("bn2", "fc2", "preceding")]
    assert report.left == {}
    torch.testing.assert_close(folded(x), model.eval()(x))


def test_a_sequential_conv_block_dropping_out_before_its_batchnorm_is_reordered_in_place() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Dropout2d(0.2), nn.BatchNorm2d(8),
                          nn.ReLU(), nn.Conv2d(8, 4, 1))
    x = torch.randn(4, 3, 6, 6)
    model = trained_statistics(model, x)
    assert _described(model) == [("0", "3", "1", "2", Placement.AFTER_DROPOUT, None)]
    new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert type(new) is nn.Sequential  # in place: the keys stay, less the bias the BN takes
    assert set(new.state_dict()) == set(model.state_dict()) - {"0.bias"}
    assert [type(m).__name__ for m in new] == ["Conv2d", "BatchNorm2d", "ReLU", "Dropout2d",
                                               "Conv2d"]
    torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))
    _trains(new, x)


class DropBeforeReLU(nn.Module):
    """A hidden layer written ``F.relu(self.dropout(self.fc(x)))``: dropping out before a ReLU
    is dropping out after it (``relu(m * z) == m * relu(z)`` for a mask ``m >= 0``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)
        self.dropout = nn.Dropout(0.5)
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.dropout(self.fc(x))))


def test_a_dropout_before_the_relu_is_part_of_the_chain() -> None:
    model = DropBeforeReLU()
    x = torch.randn(8, 8)
    assert _described(model) == [("fc", "relu", "dropout", None, Placement.NONE, None)]
    _unchanged(rewrite(model, Placement.NONE), model, x)
    new = identity_batchnorms(rewrite(model, Placement.BEFORE_ACTIVATION, drop_bias=False))
    assert [(c.batchnorm, c.placement) for c in find_chains(new)] == [
        ("fc_bn", Placement.BEFORE_ACTIVATION)]
    torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))
    _trains(new, x)
