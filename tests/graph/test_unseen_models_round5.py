"""Round five of published models the graph pass had not met: DeepSpeech2's clipped ReLU
(``nn.Hardtanh(0, 20)``), the PyTorch tutorial's ``clamp(min=0)`` ReLU, one activation module
placed twice in an ``nn.Sequential``, DCGAN's generator folded into its transposed convolutions,
and EfficientNet-PyTorch's drop-connect blocks named rightly when they do not trace. Also pinned:
one forward with a BatchNorm at every placement, and a learned PReLU shared by two chains.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import drop_redundant_bias, find_chains, fold_with_report, rewrite
from tests.graph.helpers import batchnorm_count, identity_batchnorms, outputs, trained_statistics
from tests.graph.test_unseen_models_round4 import _described, _trains, _unchanged


def _keeps_eval_outputs(new: nn.Module, model: nn.Module, x: torch.Tensor) -> None:
    """With every inserted or moved BN the identity, the rewritten model computes the same."""
    torch.testing.assert_close(outputs(identity_batchnorms(new), x, False),
                               outputs(model, x, False))


class SharedActivationMLP(nn.Sequential):
    """An MLP built with one ``act = nn.ReLU()`` and one dropout passed at every layer (fx names
    both calls after the first position)."""

    def __init__(self) -> None:
        act, drop = nn.ReLU(), nn.Dropout(0.3)
        super().__init__(nn.Linear(8, 16), act, drop, nn.Linear(16, 16), act, drop,
                         nn.Linear(16, 2))


@pytest.mark.parametrize("placement", [Placement.BEFORE_ACTIVATION, Placement.AFTER_ACTIVATION,
                                       Placement.AFTER_DROPOUT])
def test_one_activation_module_at_two_places_of_a_sequential_rewrites_both_chains(
        placement: Placement) -> None:
    model = SharedActivationMLP()
    x = torch.randn(8, 8)
    assert _described(model) == [("0", "1", "2", None, Placement.NONE, None),
                                 ("3", "1", "2", None, Placement.NONE, None)]
    new = rewrite(model, placement, drop_bias=False)
    assert [(c.linear, c.placement) for c in find_chains(new)] == [("0", placement),
                                                                   ("3", placement)]
    assert batchnorm_count(new) == 2
    _keeps_eval_outputs(new, model, x)
    _trains(new, x)


class DeepSpeechConv(nn.Module):
    """DeepSpeech2's convolutional front end (SeanNaren/deepspeech.pytorch): Conv → BN →
    ``Hardtanh(0, 20)``, a ReLU clipped at 20, then the features of each time step."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 4, (5, 3), stride=(2, 2), padding=(2, 1)), nn.BatchNorm2d(4),
            nn.Hardtanh(0, 20, inplace=True),
            nn.Conv2d(4, 4, (5, 3), stride=(2, 1), padding=(2, 1)), nn.BatchNorm2d(4),
            nn.Hardtanh(0, 20, inplace=True))
        self.fc = nn.Linear(4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        n, c, f, t = x.size()
        return self.fc(x.view(n, c * f, t).transpose(1, 2))


def test_deepspeech_hardtanh_is_an_activation() -> None:
    x = torch.randn(4, 1, 16, 6)
    model = trained_statistics(DeepSpeechConv(), x)
    assert _described(model) == [("conv.0", "conv.2", None, "conv.1",
                                  Placement.BEFORE_ACTIVATION, None),
                                 ("conv.3", "conv.5", None, "conv.4",
                                  Placement.BEFORE_ACTIVATION, None)]
    lean = drop_redundant_bias(model)
    assert lean.conv[0].bias is None and lean.conv[3].bias is None
    for train in (True, False):
        torch.testing.assert_close(outputs(lean, x, train), outputs(model, x, train))
    moved = rewrite(model, Placement.AFTER_ACTIVATION)
    assert [type(m).__name__ for m in moved.conv] == [
        "Conv2d", "Hardtanh", "BatchNorm2d", "Conv2d", "Hardtanh", "BatchNorm2d"]
    _trains(moved, x)


def test_a_hardtanh_giving_the_output_is_the_output_layer() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2), nn.Hardtanh())
    assert [(c.linear, c.skipped) for c in find_chains(model)] == [
        ("0", None), ("2", "it is the output layer (`3` gives the model's output)")]


class TwoLayerNet(nn.Module):
    """The PyTorch tutorial's ``TwoLayerNet`` ("Learning PyTorch with Examples"), whose ReLU is
    ``clamp(min=0)``, with a ReLU6 written ``clamp(0, 6)`` (MobileNet ports) and clamps that bound
    a value without activating it (SAC's ``log_std``, a variance floor)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear1 = nn.Linear(8, 16)
        self.linear2 = nn.Linear(16, 16)
        self.mean = nn.Linear(16, 2)
        self.log_std = nn.Linear(16, 2)
        self.var = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h_relu = self.linear1(x).clamp(min=0)
        h = torch.clamp(self.linear2(h_relu), 0, 6)
        log_std = torch.clamp(self.log_std(h), -20, 2)
        return self.mean(h) + log_std.exp() + self.var(h).clamp(min=1e-3)


def test_a_clamp_at_zero_is_a_relu() -> None:
    model = TwoLayerNet()
    x = torch.randn(8, 8)
    assert _described(model) == [("linear1", "clamp", None, None, Placement.NONE, None),
                                 ("linear2", "clamp_1", None, None, Placement.NONE, None)]
    new = rewrite(model, Placement.BEFORE_ACTIVATION, drop_bias=False)
    assert [(c.linear, c.batchnorm, c.placement) for c in find_chains(new)] == [
        ("linear1", "linear1_bn", Placement.BEFORE_ACTIVATION),
        ("linear2", "linear2_bn", Placement.BEFORE_ACTIVATION)]
    _keeps_eval_outputs(new, model, x)
    _trains(new, x)


class DCGANGenerator(nn.Module):
    """The PyTorch DCGAN example's generator: ConvTranspose2d → BN → ReLU, Tanh image out;
    the second layer grouped, as in lightweight generators."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(8, 16, 4, 1, 0, bias=False), nn.BatchNorm2d(16), nn.ReLU(True),
            nn.ConvTranspose2d(16, 8, 4, 2, 1, groups=2), nn.BatchNorm2d(8), nn.ReLU(True),
            nn.ConvTranspose2d(8, 3, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def test_dcgan_generator_folds_into_its_transposed_convolutions() -> None:
    z = torch.randn(4, 8, 1, 1)
    model = trained_statistics(DCGANGenerator(), z)
    folded, report = fold_with_report(model)
    assert [(f.batchnorm, f.into, f.direction) for f in report.folded] == [
        ("main.1", "main.0", "preceding"), ("main.4", "main.3", "preceding")]
    assert report.left == {} and batchnorm_count(folded) == 0
    torch.testing.assert_close(folded(z), model.eval()(z), rtol=1e-5, atol=1e-5)


def test_a_batchnorm_before_a_transposed_convolution_is_left() -> None:
    x = torch.randn(4, 4, 5, 5)
    model = trained_statistics(nn.Sequential(nn.ReLU(), nn.BatchNorm2d(4),
                                             nn.ConvTranspose2d(4, 2, 4, 2, 1)), x)
    folded, report = fold_with_report(model)
    assert "`2` is a transposed convolution" in report.left["1"]
    torch.testing.assert_close(folded(x), model(x))


def drop_connect(inputs: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """EfficientNet-PyTorch's (lukemelas) drop connect: the random shape defeats fx."""
    if not training:
        return inputs
    keep_prob = 1 - p
    random_tensor = keep_prob + torch.rand([inputs.shape[0], 1, 1, 1], dtype=inputs.dtype)
    return inputs / keep_prob * torch.floor(random_tensor)


class MBConvBlock(nn.Module):
    """EfficientNet-PyTorch's ``MBConvBlock``, squeeze-and-excitation and drop connect
    included."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self._expand_conv = nn.Conv2d(c, 2 * c, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(2 * c)
        self._depthwise_conv = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c, bias=False)
        self._bn1 = nn.BatchNorm2d(2 * c)
        self._se_reduce = nn.Conv2d(2 * c, 2, 1)
        self._se_expand = nn.Conv2d(2, 2 * c, 1)
        self._project_conv = nn.Conv2d(2 * c, c, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c)
        self._swish = nn.SiLU()

    def forward(self, inputs: torch.Tensor, drop_connect_rate: float | None = None
                ) -> torch.Tensor:
        x = self._swish(self._bn0(self._expand_conv(inputs)))
        x = self._swish(self._bn1(self._depthwise_conv(x)))
        squeezed = self._se_expand(self._swish(self._se_reduce(F.adaptive_avg_pool2d(x, 1))))
        x = self._bn2(self._project_conv(torch.sigmoid(squeezed) * x))
        if drop_connect_rate:
            x = drop_connect(x, p=drop_connect_rate, training=self.training)
        return x + inputs


class EfficientNet(nn.Module):
    """The blocks get a drop-connect rate growing with depth: 0 for the first."""

    def __init__(self) -> None:
        super().__init__()
        self._blocks = nn.ModuleList([MBConvBlock(), MBConvBlock()])
        self._fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for idx, block in enumerate(self._blocks):
            x = block(x, drop_connect_rate=0.2 * idx / len(self._blocks))
        return self._fc(x.mean((2, 3)))


def test_a_block_that_does_not_trace_on_its_own_is_named_as_it_is() -> None:
    x = torch.randn(4, 8, 6, 6)
    model = trained_statistics(EfficientNet(), x)
    chains = find_chains(model)
    assert list(chains.untraced) == ["_blocks.1"]
    assert "`if drop_connect_rate:`" in chains.untraced["_blocks.1"]
    folded, report = fold_with_report(model)
    assert [f.batchnorm for f in report.folded] == ["_blocks.0._bn0", "_blocks.0._bn1",
                                                    "_blocks.0._bn2"]
    assert {name: why.split(",")[0] for name, why in report.left.items()} == {
        f"_blocks.1.{bn}": "inside `_blocks.1`" for bn in ("_bn0", "_bn1", "_bn2")}
    torch.testing.assert_close(folded(x), model(x))


class EveryPlacement(nn.Module):
    """One forward with a BN at each placement, the last after the ReLU and before a MaxPool
    (the Keras-port order a fold can pass only when every BN scale is positive)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c3, self.b3 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.d3 = nn.Dropout2d(0.2)
        self.c4, self.b4 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.b1(self.c1(x)))
        x = self.b2(F.relu(self.c2(x)))
        x = self.b3(self.d3(F.relu(self.c3(x))))
        x = self.pool(self.b4(F.relu(self.c4(x))))
        return self.fc(x.mean((2, 3)))


class SharedPReLU(nn.Module):
    """One learned PReLU (and one dropout) applied after two layers: a rewrite must keep it one
    parameter, called twice."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.out = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 2)
        self.act = nn.PReLU()
        self.drop = nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act(self.fc1(x)))
        return self.out(self.drop(self.act(self.fc2(x))))


def _prelus(model: nn.Module) -> int:
    return sum(isinstance(m, nn.PReLU) for m in model.modules())


@pytest.mark.parametrize(("model", "x", "placements"), [
    (EveryPlacement(), torch.randn(4, 3, 8, 8),
     [Placement.BEFORE_ACTIVATION, Placement.AFTER_ACTIVATION, Placement.AFTER_DROPOUT,
      Placement.AFTER_ACTIVATION]),
    (SharedPReLU(), torch.randn(8, 8), [Placement.NONE, Placement.NONE])])
def test_models_already_rewritten_exactly(model: nn.Module, x: torch.Tensor,
                                          placements: list[Placement]) -> None:
    model = trained_statistics(model, x)
    chains = find_chains(model)
    assert [(c.placement, c.skipped) for c in chains] == [(p, None) for p in placements]
    _unchanged(rewrite(model, {c.linear: c.placement for c in chains}, drop_bias=False),
               model, x)
    for placement in Placement:
        new = rewrite(model, placement)
        assert [c.placement for c in find_chains(new)] == [
            c.placement_for(placement) for c in chains]
        assert _prelus(new) == _prelus(model)  # a shared PReLU stays one module
        _trains(new, x)
