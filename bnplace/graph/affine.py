"""BatchNorm at inference is a per-channel affine map ``y = scale * x + shift``; merge it into the
weights of the Linear/Conv before it or after it.

The arithmetic is done in float64 and written back in the layer's dtype, so a folded model matches
the original to rounding.
"""

from __future__ import annotations

import torch
from torch import nn


def batchnorm_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` of an eval-mode BN (running statistics; ``affine=False`` works too)."""
    var = bn.running_var.detach().double()
    mean = bn.running_mean.detach().double()
    scale = torch.rsqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.detach().double()
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias.detach().double()
    return scale, shift


def output_channels(layer: nn.Module) -> int:
    """How many outputs a Linear or Conv gives: the first axis of its weight, except for a
    transposed convolution, whose weight holds its inputs first."""
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        return layer.out_channels
    return layer.weight.shape[0]


def merge_into_preceding(layer: nn.Module, scale: torch.Tensor, shift: torch.Tensor) -> None:
    """Make ``layer`` (Linear, Conv or transposed Conv) compute ``scale * layer(x) + shift``."""
    weight = layer.weight
    spatial = [1] * (weight.dim() - 2)
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        # weight (in, out / groups, *k): scale each slot by the output channel it writes
        index = _grouped_channels(layer.in_channels, layer.in_channels // layer.groups,
                                  layer.out_channels // layer.groups)
        factor = scale[index].reshape(*index.shape, *spatial)
    else:
        factor = scale.reshape(-1, 1, *spatial)
    bias = _bias_or_zeros(layer) * scale + shift
    _store(layer, weight.detach().double() * factor, bias)


def merge_into_following(layer: nn.Module, scale: torch.Tensor, shift: torch.Tensor,
                         repeat: int = 1) -> None:
    """Make ``layer`` (Linear or Conv) compute ``layer(scale * x + shift)`` per input channel.

    ``repeat`` > 1 when a flatten sits between: each channel became ``repeat`` consecutive features.
    """
    weight = layer.weight.detach().double()
    scale, shift = scale.repeat_interleave(repeat), shift.repeat_interleave(repeat)
    if isinstance(layer, nn.modules.conv._ConvNd):
        index = _conv_input_channels(layer)
        spatial = [1] * (weight.dim() - 2)
        scale = scale[index].reshape(*index.shape, *spatial)
        shift = shift[index].reshape(*index.shape, *spatial)
        bias = _bias_or_zeros(layer) + (weight * shift).flatten(1).sum(1)
        _store(layer, weight * scale, bias)
    else:
        bias = _bias_or_zeros(layer) + weight @ shift
        _store(layer, weight * scale, bias)


def _conv_input_channels(conv: nn.modules.conv._ConvNd) -> torch.Tensor:
    """For each (output channel, weight input slot), the input channel it reads (groups aware)."""
    return _grouped_channels(conv.out_channels, conv.out_channels // conv.groups,
                             conv.in_channels // conv.groups)


def _grouped_channels(rows: int, rows_per_group: int, slots_per_group: int) -> torch.Tensor:
    """For each (weight row, slot) of a grouped convolution, the channel on the other side of
    the weight that the slot stands for: row ``r`` sees only the channels of its group."""
    group = torch.arange(rows) // rows_per_group
    return group[:, None] * slots_per_group + torch.arange(slots_per_group)[None, :]


def _bias_or_zeros(layer: nn.Module) -> torch.Tensor:
    if layer.bias is None:
        return torch.zeros(output_channels(layer), dtype=torch.float64,
                           device=layer.weight.device)
    return layer.bias.detach().double()


def _store(layer: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    like = layer.weight
    with torch.no_grad():
        like.copy_(weight.to(like.dtype))
        if layer.bias is None:
            layer.bias = nn.Parameter(bias.to(dtype=like.dtype, device=like.device),
                                      requires_grad=like.requires_grad)
        else:
            layer.bias.copy_(bias.to(layer.bias.dtype))
