"""Dropout masks for CPU trials drawn with ``uniform_`` rather than ``bernoulli_``.

torch uses MKL's vectorized generator for ``bernoulli_`` only on Intel CPUs; elsewhere (AMD,
ARM) it draws each element one at a time in double precision, about three times as long as
``uniform_``, and on the digits MLPs the two Dropouts' masks took a fifth of a training step.
Comparing a uniform draw with ``p`` keeps each element with the same probability ``1 - p`` and
scales it by the same ``1 / (1 - p)``: a trial trains the same model, only the random stream
differs. In-place dropouts, the channel-wise ones and ``F.dropout`` calls keep torch's own, and
so does every Dropout on an Intel CPU with MKL, where torch's generator is the faster one.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import types
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn


def _uniform_mask_dropout(self: nn.Dropout, x: torch.Tensor) -> torch.Tensor:
    if not self.training or self.p == 0.0:
        return x
    if self.p == 1.0:
        return x * 0.0
    keep = torch.empty_like(x).uniform_().ge_(self.p).mul_(1.0 / (1.0 - self.p))
    return x * keep


@functools.cache
def bernoulli_is_slow() -> bool:
    """Whether torch's CPU ``bernoulli_`` takes its element-by-element path on this machine."""
    return not (torch.backends.mkl.is_available() and _intel_cpu())


def _intel_cpu() -> bool:
    if "intel" in platform.processor().lower():  # Windows names the vendor here
        return True
    try:
        return "GenuineIntel" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@contextlib.contextmanager
def uniform_mask_dropout(model: nn.Module, device: torch.device) -> Iterator[None]:
    """While training on a CPU whose ``bernoulli_`` is slow, ``model``'s plain ``nn.Dropout``
    modules draw uniform masks; their own forward comes back afterwards, so a saved model holds
    torch's Dropout."""
    slow = device.type == "cpu" and bernoulli_is_slow()
    swapped = [module for module in model.modules()
               if slow and type(module) is nn.Dropout and not module.inplace]
    for module in swapped:
        module.forward = types.MethodType(_uniform_mask_dropout, module)
    try:
        yield
    finally:
        for module in swapped:
            del module.forward
