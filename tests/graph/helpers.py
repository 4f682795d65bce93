"""Shared helpers for the graph tests."""

from __future__ import annotations

import torch
from torch import nn


def identity_batchnorms(model: nn.Module) -> nn.Module:
    """Make every fresh BN an exact identity in eval mode: running_var = 1 - eps.

    The running mean is left alone: a fresh BN holds 0 there, or minus the bias that
    ``drop_bias`` moved into it (which the identity must keep subtracting back).
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_var is not None:
            with torch.no_grad():
                m.running_var.fill_(1 - m.eps)
    return model


def outputs(model: nn.Module, x: torch.Tensor, train: bool, seed: int = 0) -> torch.Tensor:
    model.train(train)
    torch.manual_seed(seed)
    with torch.no_grad():
        return model(x)


def assert_follows_train_and_eval(model: nn.Module, reference: nn.Module,
                                   x: torch.Tensor) -> None:
    """In eval mode ``model`` is deterministic and matches ``reference``; in train mode its
    dropout is on (two seeds give two outputs): fx must not have baked the training flag."""
    model.eval()
    assert torch.equal(model(x), model(x))
    torch.testing.assert_close(outputs(model, x, False), outputs(reference, x, False))
    assert not torch.equal(outputs(model, x, True, seed=1), outputs(model, x, True, seed=2))


def placements(model: nn.Module) -> list[str]:
    from bnplace.graph import find_chains

    return [c.placement.value for c in find_chains(model)]


def batchnorm_count(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def trained_statistics(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """``model`` in eval mode with running statistics and affine parameters far from a fresh
    BN's, so a fold or rewrite that ignores them shows in the outputs."""
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(x * 2 + 1)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 2)
                m.bias.uniform_(-1, 1)
    return model.eval()
