"""Measure each BatchNorm's variance shift on real batches (Li et al., CVPR 2019, "Understanding
the Disharmony between Dropout and Batch Normalization by Variance Shift").

Dropout scales what survives by 1/(1-p) in training and does nothing at inference, so a BN fed by
a dropout sees a larger variance while it learns its statistics than when it uses them. Two
ratios show it, each a channel-summed variance over a channel-summed variance:

* ``train_eval``: variance of the BN's input in train mode / in eval mode, on the same batches;
* ``running_eval``: the BN's running variance / the variance of its input in eval mode: what the
  BN divides by at inference against what it meets there.

Both are 1 for a BN no dropout reaches. A BN that has not seen a training batch yet
(``num_batches_tracked`` 0, a freshly built model) first gets the running statistics training would
give it: the average over the batches in train mode (``estimated``); otherwise upstream BNs would
normalise with their defaults in eval mode and every ratio downstream would measure that instead.
The model is never changed: all of this runs on a copy, under its own random seed, with hooks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from bnplace.graph.copying import copy_module
from bnplace.graph.shapes import ChannelLastBatchNorm

_BatchNorm = nn.modules.batchnorm._BatchNorm


@dataclass(frozen=True)
class VarianceShift:
    """The variance shift of one BatchNorm module."""

    batchnorm: str
    train_eval: float
    running_eval: float | None
    estimated: bool = False  # running statistics estimated from the batches (untrained BN)

    @property
    def shift(self) -> float:
        """The largest factor either ratio is away from 1 (1.0 means no shift)."""
        ratios = [r for r in (self.train_eval, self.running_eval) if r is not None and r == r]
        return max((max(r, 1 / r) if r > 0 else float("inf") for r in ratios), default=1.0)


def variance_shift(model: nn.Module, batches: Iterable[torch.Tensor],
                   seed: int = 0) -> list[VarianceShift]:
    """The variance shift of every BatchNorm that ``model`` calls on ``batches`` (input tensors).

    ``model`` itself is untouched: statistics, mode and the global random state stay as they are.
    """
    probe = copy_module(model)
    batchnorms = {name: m for name, m in probe.named_modules() if isinstance(m, _BatchNorm)}
    names = {id(m): name for name, m in batchnorms.items()}
    inputs = list(batches)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        estimated = _estimate_untrained_statistics(probe, batchnorms, inputs)
        running = {name: m.running_var.detach().double().clone()
                   for name, m in batchnorms.items() if m.running_var is not None}
        eval_var = _input_variances(probe.eval(), names, inputs)
        train_var = _input_variances(probe.train(), names, inputs)
    shifts = []
    for name, seen in eval_var.items():
        expected = running.get(name)
        shifts.append(VarianceShift(name, _ratio(train_var[name], seen),
                                    _ratio(expected, seen) if expected is not None else None,
                                    name in estimated))
    return shifts


def _estimate_untrained_statistics(probe: nn.Module, batchnorms: dict[str, nn.Module],
                                   inputs: list[torch.Tensor]) -> set[str]:
    """Give every BN of ``probe`` that never saw a training batch the cumulative average of its
    train-mode batch statistics; trained BNs keep theirs (momentum 0). Returns the names changed."""
    untrained = {name for name, m in batchnorms.items()
                 if m.running_var is not None and int(m.num_batches_tracked) == 0}
    if not untrained:
        return untrained
    for name, m in batchnorms.items():
        m.momentum = None if name in untrained else 0.0
    probe.train()
    with torch.no_grad():
        for x in inputs:
            probe(x)
    return untrained


def _input_variances(model: nn.Module, names: dict[int, str], inputs: list[torch.Tensor]
                     ) -> dict[str, torch.Tensor]:
    """Per BN, the per-channel variance of its input averaged over its calls (hooks only)."""
    sums: dict[str, torch.Tensor] = {}
    calls: dict[str, int] = {}

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        variance = _channel_variance(module, args[0].detach().double())
        name = names[id(module)]
        sums[name] = sums[name] + variance if name in sums else variance
        calls[name] = calls.get(name, 0) + 1

    handles = [m.register_forward_pre_hook(record) for m in model.modules()
               if id(m) in names]
    try:
        with torch.no_grad():
            for x in inputs:
                model(x)
    finally:
        for handle in handles:
            handle.remove()
    return {name: total / calls[name] for name, total in sums.items()}


def _channel_variance(bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Variance per channel over every other axis (the channels BN normalises)."""
    axis = x.dim() - 1 if isinstance(bn, ChannelLastBatchNorm) else min(1, x.dim() - 1)
    return x.movedim(axis, 0).reshape(x.shape[axis], -1).var(dim=1)


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> float:
    bottom = float(denominator.sum())
    return float(numerator.sum()) / bottom if bottom > 0 else float("nan")  # a silent input
