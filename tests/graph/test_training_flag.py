"""self.training survives rewriting and torch.save/torch.load of a traced model."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import find_chains, rewrite
from tests.graph.helpers import assert_follows_train_and_eval, outputs


class FunctionalBN(nn.Module):
    """A functional BatchNorm in a chain, with F.rrelu and F.dropout taking self.training."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 5)
        self.register_buffer("rm", torch.zeros(5))
        self.register_buffer("rv", torch.ones(5))
        self.weight = nn.Parameter(torch.ones(5))
        self.bias = nn.Parameter(torch.zeros(5))
        self.out = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.fc(x))
        h = F.dropout(h, 0.5, self.training)
        h = F.batch_norm(h, self.rm, self.rv, self.weight, self.bias, self.training)
        return self.out(F.rrelu(h, training=self.training))


def _reload(model: nn.Module) -> nn.Module:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_functional_batchnorm_moves() -> None:
    torch.manual_seed(0)
    model = FunctionalBN()
    chains = find_chains(model)
    assert len(chains) == 1 and chains[0].placement is Placement.AFTER_DROPOUT
    assert chains[0].batchnorm == "batch_norm"
    x = torch.randn(8, 4)
    new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert [c.placement for c in find_chains(new)] == [Placement.BEFORE_ACTIVATION]
    outputs(new, x, True)
    assert not torch.equal(new.rm, torch.zeros(5))  # the BN still updates its statistics
    assert torch.equal(model.rm, torch.zeros(5))  # ... in the copy only


@pytest.mark.parametrize("placement", list(Placement))
def test_saved_traced_model_still_switches_to_eval(placement: Placement) -> None:
    torch.manual_seed(0)
    model = FunctionalBN()
    new = rewrite(model, placement)
    loaded = _reload(new)
    x = torch.randn(8, 4)
    assert_follows_train_and_eval(loaded, new, x)
    # the same randomness in train mode as the in-memory model
    torch.testing.assert_close(outputs(loaded, x, True, seed=5), outputs(new, x, True, seed=5))
