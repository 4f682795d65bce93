"""Gates: a sigmoid/hardsigmoid whose output scales another tensor (squeeze-and-excitation in
SENet, MobileNetV3 and EfficientNet, GLU-style gating) is not a chain to put BatchNorm in."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import BnplaceWarning, find_chains, rewrite
from tests.graph.helpers import identity_batchnorms


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation, as MobileNetV3 uses it (ReLU, then Hardsigmoid)."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return self.scale_activation(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._scale(x) * x


def _conv_bn_act(cin: int, cout: int, kernel: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, groups=groups,
                                   bias=False), nn.BatchNorm2d(cout), nn.Hardswish())


class MobileNetV3Block(nn.Module):
    """torchvision's MobileNetV3 InvertedResidual: expand, depthwise, SE, project."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _conv_bn_act(8, 16, 1), _conv_bn_act(16, 16, 3, groups=16),
            SqueezeExcitation(16, 8),
            nn.Sequential(nn.Conv2d(16, 8, 1, bias=False), nn.BatchNorm2d(8)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def test_the_gate_of_a_mobilenetv3_squeeze_excitation_is_left() -> None:
    model = MobileNetV3Block()
    x = torch.randn(2, 8, 6, 6)
    gate = "`block.2.scale_activation` is a gate: its output scales another tensor in `mul`"
    assert [(c.linear, c.activation, c.placement, c.skipped)
            for c in find_chains(model, example_inputs=x)] == [
        ("block.0.0", "block.0.2", Placement.BEFORE_ACTIVATION, None),
        ("block.1.0", "block.1.2", Placement.BEFORE_ACTIVATION, None),
        ("block.2.fc1", "block.2.activation", Placement.NONE, None),
        ("block.2.fc2", "block.2.scale_activation", Placement.NONE, gate)]
    with pytest.warns(BnplaceWarning) as caught:
        new = rewrite(model, Placement.BEFORE_ACTIVATION, example_inputs=x)
    assert [str(w.message) for w in caught] == [
        f"bnplace: chain `block.2.fc2` left at none: {gate}"]
    assert [(c.linear, c.placement) for c in find_chains(new)][2:] == [
        ("block.2.fc1", Placement.BEFORE_ACTIVATION), ("block.2.fc2", Placement.NONE)]
    assert isinstance(new.get_submodule("block.2.fc1_bn"), nn.BatchNorm2d)
    assert new.get_submodule("block.2.fc2").bias is not None


class MBConv(nn.Module):
    """EfficientNet-PyTorch's MBConvBlock (lukemelas): one SiLU module for every activation,
    the SE gate written as ``torch.sigmoid(x_squeezed) * x``."""

    def __init__(self) -> None:
        super().__init__()
        self._expand_conv = nn.Conv2d(8, 16, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(16)
        self._depthwise_conv = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self._bn1 = nn.BatchNorm2d(16)
        self._se_reduce = nn.Conv2d(16, 4, 1)
        self._se_expand = nn.Conv2d(4, 16, 1)
        self._project_conv = nn.Conv2d(16, 8, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(8)
        self._swish = nn.SiLU()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self._swish(self._bn0(self._expand_conv(inputs)))
        x = self._swish(self._bn1(self._depthwise_conv(x)))
        x_squeezed = F.adaptive_avg_pool2d(x, 1)
        x_squeezed = self._se_expand(self._swish(self._se_reduce(x_squeezed)))
        x = torch.sigmoid(x_squeezed) * x
        return self._bn2(self._project_conv(x)) + inputs


def test_the_gate_of_an_efficientnet_mbconv_is_left_and_the_rest_rewritten() -> None:
    model = MBConv()
    x = torch.randn(2, 8, 6, 6)
    assert [(c.linear, c.activation, c.placement, c.skipped) for c in find_chains(model)] == [
        ("_expand_conv", "_swish", Placement.BEFORE_ACTIVATION, None),
        ("_depthwise_conv", "_swish", Placement.BEFORE_ACTIVATION, None),
        ("_se_reduce", "_swish", Placement.NONE, None),
        ("_se_expand", "sigmoid", Placement.NONE,
         "`sigmoid` is a gate: its output scales another tensor in `mul`")]
    with pytest.warns(BnplaceWarning, match="chain `_se_expand` left at none: `sigmoid` is a "
                                            "gate"):
        new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert [(c.linear, c.batchnorm) for c in find_chains(new)][2:] == [
        ("_se_reduce", "_se_reduce_bn"), ("_se_expand", None)]
    model.eval()  # the inserted BN as an identity: the gate and everything else unchanged
    torch.testing.assert_close(identity_batchnorms(new).eval()(x), model(x))


class SELayer(nn.Module):
    """The SENet reference code: Linear layers on the squeezed vector, the gate broadcast with
    ``view`` and ``expand_as``."""

    def __init__(self, channels: int = 16, reduction: int = 4) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction, bias=False),
                                nn.ReLU(inplace=True),
                                nn.Linear(channels // reduction, channels, bias=False),
                                nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


def test_a_gate_reshaped_and_expanded_before_it_scales_is_a_gate() -> None:
    chains = find_chains(SELayer(), example_inputs=torch.randn(2, 16, 4, 4))
    assert [(c.linear, c.skipped) for c in chains] == [
        ("fc.0", None),
        ("fc.2", "`fc.3` is a gate: its output scales another tensor in `mul`")]


class GatedLinearUnit(nn.Module):
    """Dauphin et al.'s gated linear unit with two projections: ``a * sigmoid(b)``."""

    def __init__(self) -> None:
        super().__init__()
        self.value = nn.Linear(8, 16)
        self.gate = nn.Linear(8, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.value(x) * torch.sigmoid(self.gate(x)))


def test_a_glu_style_gate_is_left_as_it_is() -> None:
    model = GatedLinearUnit().eval()
    x = torch.randn(4, 8)
    assert [(c.linear, c.skipped) for c in find_chains(model)] == [
        ("gate", "`sigmoid` is a gate: its output scales another tensor in `mul`")]
    with pytest.warns(BnplaceWarning, match="chain `gate` left at none: `sigmoid` is a gate"):
        new = rewrite(model, Placement.BEFORE_ACTIVATION)
    torch.testing.assert_close(new(x), model(x), rtol=0, atol=0)


class SigmoidMLP(nn.Module):
    """A classic sigmoid hidden layer, and a tanh scaled by a learned per-feature factor: neither
    output scales another tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(8, 16)
        self.mid = nn.Linear(16, 16)
        self.alpha = nn.Parameter(torch.ones(16))
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.sigmoid(self.hidden(x))
        return self.out(torch.tanh(self.mid(h)) * self.alpha * 2)


def test_a_sigmoid_that_gates_nothing_is_still_a_chain() -> None:
    model = SigmoidMLP()
    chains = find_chains(model)
    assert [(c.linear, c.activation, c.skipped) for c in chains] == [
        ("hidden", "sigmoid", None), ("mid", "tanh", None)]
    new = rewrite(model, Placement.BEFORE_ACTIVATION, example_inputs=torch.randn(4, 8))
    assert [c.placement for c in find_chains(new)] == [Placement.BEFORE_ACTIVATION] * 2
