"""Unsafe cases are skipped with a reason and left exactly as they were."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import BnplaceWarning, find_chains, rewrite
from tests.graph.helpers import identity_batchnorms, outputs


class ResidualBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + x): the second chain joins the skip connection."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + x)


class ResNetish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.layer = nn.Sequential(ResidualBlock(), ResidualBlock())
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(self.stem(x)).mean((2, 3)))


def _train_stats(model: nn.Module, shape: tuple[int, ...]) -> None:
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(shape))


def test_residual_join_is_skipped() -> None:
    torch.manual_seed(0)
    model = ResNetish()
    _train_stats(model, (8, 1, 6, 6))
    chains = find_chains(model)
    by = chains.by_linear()
    assert by["stem.0"].skipped is None
    assert by["layer.0.conv1"].skipped is None
    joined = by["layer.0.conv2"]
    assert joined.skipped == ("`add` sums the output of `layer.0.bn2` with another branch "
                              "before the activation")
    assert joined.batchnorm == "layer.0.bn2" and joined.activation.endswith("relu_1")
    x = torch.randn(5, 1, 6, 6)
    with pytest.warns(BnplaceWarning, match="with another branch before the activation"):
        new = rewrite(model, Placement.AFTER_ACTIVATION)
    # the joined chains still hold their BN where it was
    assert isinstance(new.get_submodule("layer.0.bn2"), nn.BatchNorm2d)
    new_chains = find_chains(new).by_linear()
    assert new_chains["layer.0.conv2"].placement is Placement.BEFORE_ACTIVATION
    assert new_chains["layer.0.conv1"].placement is Placement.AFTER_ACTIVATION
    # same placement: nothing changes, in train and eval
    same = rewrite(model, {"layer.0.conv1": "before-activation"})
    for train in (False, True):
        torch.testing.assert_close(outputs(same, x, train), outputs(model, x, train))


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.fc(self.drop(self.act(self.fc(x))))))


def test_module_called_twice_is_skipped() -> None:
    model = Shared()
    chains = find_chains(model)
    assert chains and all(c.skipped and "called at 2 places" in c.skipped for c in chains)
    with pytest.warns(BnplaceWarning, match="called at 2 places"):
        new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in new.modules())
    x = torch.randn(3, 4)
    torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))


class Reused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.fc2 = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.fc(x))
        b = self.fc2(x)
        return self.drop(a) + a + torch.tanh(b) * b  # a reused; fc2's output used twice


def test_values_with_other_users_are_skipped() -> None:
    model = Reused()
    chains = find_chains(model).by_linear()
    assert "2 users" in chains["fc"].skipped
    assert "2 users" in chains["fc2"].skipped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BnplaceWarning)
        new = rewrite(model, Placement.AFTER_DROPOUT)
    x = torch.randn(3, 4)
    torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))
    assert not any(isinstance(m, nn.BatchNorm1d) for m in new.modules())


class InplaceMethod(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        x.relu_()  # result unused: the chain lives only through mutation
        return self.drop(x)


def test_inplace_result_unused_is_skipped() -> None:
    chains = find_chains(InplaceMethod())
    assert len(chains) == 1 and "in place" in chains[0].skipped


class InplaceChain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.bn = nn.BatchNorm1d(6)
        self.fc2 = nn.Linear(6, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.fc(x)), inplace=True)
        x = F.dropout(x, 0.3, self.training, inplace=True)
        return F.leaky_relu_(self.fc2(x))


def test_inplace_chains_rewrite() -> None:
    torch.manual_seed(0)
    model = InplaceChain()
    _train_stats(model, (8, 4))
    chains = find_chains(model)
    assert [c.placement for c in chains] == [Placement.BEFORE_ACTIVATION, Placement.NONE]
    x = torch.randn(5, 4)
    for placement in Placement:
        new = rewrite(model, {"fc": placement, "fc2": Placement.NONE}, drop_bias=False)
        back = rewrite(new, Placement.BEFORE_ACTIVATION if placement is not Placement.NONE
                       else "none", drop_bias=False)
        back = rewrite(back, {"fc2": "none"}, drop_bias=False)
        if placement is not Placement.NONE:
            for train in (False, True):
                torch.testing.assert_close(outputs(back, x, train), outputs(model, x, train))


class TrainingBranch(nn.Module):
    """A forward that branches on self.training: never replaced by a one-branch trace."""

    def __init__(self) -> None:
        super().__init__()
        self.seq = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Dropout(0.2))
        self.fc = nn.Linear(5, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.seq(x)
        if self.training:
            x = x * 2
        return F.dropout(torch.relu(self.fc(x)), 0.2, self.training)


def test_training_branch_keeps_module_and_skips_functional_chain() -> None:
    torch.manual_seed(0)
    model = TrainingBranch()
    chains = find_chains(model).by_linear()
    assert chains["seq.0"].skipped is None
    assert "self.training" in chains["fc"].skipped
    with pytest.warns(BnplaceWarning, match="self.training"):
        new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert type(new) is TrainingBranch  # rewritten in place, the branch still works
    assert isinstance(new.seq[1], nn.BatchNorm1d)
    identity_batchnorms(new)
    x = torch.randn(4, 4)
    torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))


def test_placement_dict_names_must_exist() -> None:
    with pytest.raises(ValueError, match="no chain starts at 'nope'"):
        rewrite(Shared(), {"nope": "none"})
    with pytest.raises(ValueError, match="unknown placement"):
        rewrite(Shared(), "sideways")
