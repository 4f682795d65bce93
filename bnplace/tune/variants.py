"""The tuner's only contact with the graph pass: check a model has chains, build a variant."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn

from bnplace.placement import Placement

ModelFactory = Callable[[], nn.Module]


class NoChainError(ValueError):
    """The model has no linear → activation chain, so there is no placement to tune."""


def require_chains(model: nn.Module, example: torch.Tensor) -> int:
    """The number of rewritable chains in ``model``; NoChainError when there is none, giving
    why the chains found are skipped when that is what left none."""
    from bnplace.graph import find_chains

    found = find_chains(model, example_inputs=(example,))
    chains = [chain for chain in found if not chain.skipped]
    if not chains and found:
        reasons = "; ".join(dict.fromkeys(str(chain.skipped) for chain in found))
        raise NoChainError(f"{type(model).__name__}: every linear → activation chain is skipped, "
                           f"so there is nothing to tune: {reasons}")
    if not chains:
        raise NoChainError(f"{type(model).__name__} has no linear → activation chain to place "
                           "BatchNorm in; nothing to tune")
    return len(chains)


def build_variant(model_fn: ModelFactory, placement: Placement, example: torch.Tensor,
                  shown: set[str]) -> nn.Module:
    """A fresh model from ``model_fn`` rewritten so every chain has ``placement``.

    Building a variant warns alike for every trial (the graph pass's notes, the user's own
    warnings), so each warning is shown once per ``shown`` set (a study keeps one).
    """
    from bnplace.graph import rewrite

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = rewrite(model_fn(), placement, example_inputs=(example,), drop_bias=True)
    for warning in caught:
        if str(warning.message) not in shown:
            shown.add(str(warning.message))
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    return model
