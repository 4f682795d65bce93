"""Round nine: torchvision/timm-style blocks (MobileNetV3, EfficientNet MBConv, ResNeXt, U-Net,
ShuffleNetV2, GhostNet, DeepLab's ASPP, ConvMixer, M5 audio, fastai tabular) already came out
right. Found and fixed, both about a tensor whose *shape* alone is read:

* LeViT's ``Linear_BN``, ``bn(l(x).flatten(0, 1)).reshape_as(x)`` before a Hardswish, was no
  chain at all (``reshape_as`` was not known as a reshape), so ``rewrite`` passed over it without
  a word; it is now listed and left, as a BatchNorm across a reshape is;
* a Conv whose output's shape is read (``batch = feat.shape[0]``) counted that read as a second
  user of its values: the chain was skipped and its bias kept. Fold already ignored such reads;
  now the chain finder and ``drop_redundant_bias`` do too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import drop_redundant_bias, find_chains, rewrite
from tests.graph.helpers import trained_statistics


class Linear_BN(nn.Sequential):  # noqa: N801 - LeViT's name
    """LeViT: a Linear and a BatchNorm1d over its tokens flattened into the batch axis."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.add_module("c", nn.Linear(a, b, bias=False))
        self.add_module("bn", nn.BatchNorm1d(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l, bn = self._modules.values()
        x = l(x)
        return bn(x.flatten(0, 1)).reshape_as(x)


class LeViTMlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mlp = nn.Sequential(Linear_BN(16, 32), nn.Hardswish(), Linear_BN(32, 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(x)


def test_levit_linear_bn_is_a_chain_left_across_its_reshape() -> None:
    model = LeViTMlp()
    described = [(c.linear, c.activation, c.batchnorm, c.placement, c.skipped)
                 for c in find_chains(model)]
    assert described == [(
        "mlp.0.c", "mlp.1", "mlp.0.bn", Placement.BEFORE_ACTIVATION,
        "`flatten` (Tensor.flatten) between `mlp.0.c` and the activation moves the axes of its "
        "output; bnplace does not place a BatchNorm across it")]


class PoolHead(nn.Module):
    """A head that reads its feature map's batch size before flattening it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        batch = feat.shape[0]
        feat = F.relu(self.bn(feat))
        return self.fc(F.adaptive_avg_pool2d(feat, 2).reshape(batch, -1))


def test_a_shape_read_is_no_other_user_of_a_chain() -> None:
    x = torch.randn(4, 3, 8, 8)
    model = trained_statistics(PoolHead(), x)
    assert [(c.linear, c.batchnorm, c.placement, c.skipped) for c in find_chains(model)] == [
        ("conv", "bn", Placement.BEFORE_ACTIVATION, None)]
    moved = rewrite(model, Placement.AFTER_ACTIVATION)
    assert [(c.linear, c.placement) for c in find_chains(moved)] == [
        ("conv", Placement.AFTER_ACTIVATION)]
    lean = drop_redundant_bias(model).eval()
    assert lean.conv.bias is None
    torch.testing.assert_close(lean(x), model(x))
    same = rewrite(model, Placement.BEFORE_ACTIVATION, drop_bias=False).eval()
    assert torch.equal(same(x), model(x))
