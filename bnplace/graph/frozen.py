"""A frozen BatchNorm: torchvision's and Detectron2's ``FrozenBatchNorm2d``.

It is a plain ``nn.Module`` (no ``_BatchNorm`` subclass) whose ``weight``, ``bias``,
``running_mean`` and ``running_var`` are buffers, and whose forward computes
``x * scale + shift`` with ``scale = weight * rsqrt(running_var + eps)``: an eval-mode BatchNorm
that never trains. Detection backbones use it to keep pretrained statistics fixed. fx would trace
into its arithmetic and no chain would see a BatchNorm; kept whole, it is one, with a known map.
"""

from __future__ import annotations

import torch
from torch import nn

CLASS_PREFIX = "FrozenBatchNorm"  # torchvision's and Detectron2's class names start so
_TENSORS = ("weight", "bias", "running_mean", "running_var")


def is_frozen_batchnorm(module: nn.Module) -> bool:
    """A module named ``FrozenBatchNorm*`` holding one value per channel in each of ``weight``,
    ``bias``, ``running_mean`` and ``running_var``, and a number ``eps``."""
    if not type(module).__name__.startswith(CLASS_PREFIX):
        return False
    values = [getattr(module, name, None) for name in _TENSORS]
    return (all(isinstance(v, torch.Tensor) and v.dim() == 1 for v in values)
            and len({v.shape for v in values}) == 1  # type: ignore[union-attr]
            and isinstance(getattr(module, "eps", None), (int, float)))
