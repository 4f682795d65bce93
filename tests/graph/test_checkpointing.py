"""A forward that calls ``torch.utils.checkpoint`` is never replaced by a traced copy: fx traces
through the checkpoint, so the copy would keep every activation for backward instead."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from bnplace import Placement
from bnplace.graph import BnplaceWarning, find_chains, rewrite
from tests.graph.helpers import identity_batchnorms

HELD = ("the forward of `CheckpointedNet` calls torch.utils.checkpoint, which a traced copy "
        "would drop (it would keep every activation for backward)")


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


class CheckpointedNet(nn.Module):
    """Blocks run under activation checkpointing to save memory, then a head."""

    def __init__(self, use_reentrant: bool) -> None:
        super().__init__()
        self.block = Block()
        self.fc = nn.Linear(4, 8)
        self.out = nn.Linear(8, 2)
        self.use_reentrant = use_reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = checkpoint(self.block, x, use_reentrant=self.use_reentrant)
        return self.out(F.relu(self.fc(h.mean((2, 3)))))


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_a_checkpointing_forward_keeps_its_checkpoint(use_reentrant: bool) -> None:
    model = CheckpointedNet(use_reentrant).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's own checkpoint warnings are not the user's
        chains = find_chains(model)
    assert [(c.linear, c.skipped) for c in chains] == [("fc", HELD), ("block.conv", None)]
    with pytest.warns(BnplaceWarning, match="chain `fc` left at none: the forward of "
                                            "`CheckpointedNet` calls torch.utils.checkpoint"):
        new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert type(new) is CheckpointedNet  # its own forward, checkpoint call included
    assert isinstance(new.block.get_submodule("conv_bn"), nn.BatchNorm2d)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)  # as checkpointing expects
    torch.testing.assert_close(identity_batchnorms(new)(x), model(x))
