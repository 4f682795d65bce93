"""Shared helpers for the graph tests."""

from __future__ import annotations

import torch
from torch import nn


def identity_batchnorms(model: nn.Module) -> nn.Module:
    """Make every BN an exact identity in eval mode: mean 0, var 1 - eps, weight 1, bias 0."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                if m.running_mean is not None:
                    m.running_mean.zero_()
                    m.running_var.fill_(1 - m.eps)
                if m.affine:
                    m.weight.fill_(1)
                    m.bias.zero_()
    return model


def fresh_identity(model: nn.Module) -> nn.Module:
    """Like identity_batchnorms, for a model rewritten with fresh BNs (running_var = 1)."""
    return identity_batchnorms(model)


def outputs(model: nn.Module, x: torch.Tensor, train: bool, seed: int = 0) -> torch.Tensor:
    model.train(train)
    torch.manual_seed(seed)
    with torch.no_grad():
        return model(x)


def placements(model: nn.Module) -> list[str]:
    from bnplace.graph import find_chains

    return [c.placement.value for c in find_chains(model)]


def batchnorm_count(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
