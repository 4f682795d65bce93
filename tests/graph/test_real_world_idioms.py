"""Idioms from models people publish (timm, torchvision, Keras ports, DCGAN-style heads) that
the graph pass must either rewrite exactly or leave with a reason, never get silently wrong."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import (BnplaceWarning, TraceError, drop_redundant_bias, find_chains, fold,
                           fold_with_report, rewrite)
from tests.graph.helpers import batchnorm_count, identity_batchnorms, outputs, trained_statistics



class Conv2dSame(nn.Conv2d):
    """timm's TF-"SAME" conv: pads zeros itself while ``self.padding`` stays 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        s = self.stride[0]
        ph = max((math.ceil(ih / s) - 1) * s + kh - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + kw - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class StdConv2d(nn.Conv2d):
    """Weight-standardized conv (BiT): the weight it applies is not ``self.weight``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                         training=True, momentum=0.0, eps=1e-6).reshape_as(self.weight)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class SameThenBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = Conv2dSame(8, 8, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(self.bn(F.relu(self.c1(x))))


class StdThenBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = StdConv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(F.relu(self.bn(self.c1(x))))


@pytest.mark.parametrize("model_class", [SameThenBN, StdThenBN])
def test_layer_subclass_with_its_own_forward_is_not_merged_into(model_class: type) -> None:
    x = torch.randn(2, 3, 8, 8)
    model = trained_statistics(model_class(), x)
    folded, report = fold_with_report(model, example_inputs=x)
    assert not report.folded
    assert "overrides forward" in report.left["bn"]
    torch.testing.assert_close(folded(x), model(x))
    dropped = drop_redundant_bias(model)
    assert all(m.bias is not None for m in dropped.modules() if isinstance(m, nn.Conv2d))


class Tied(nn.Module):
    """An autoencoder-style pair of Linears sharing one weight."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(16, 16)
        self.bn = nn.BatchNorm1d(16)
        self.dec = nn.Linear(16, 16)
        self.dec.weight = self.enc.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(F.relu(self.bn(self.enc(x))))


def test_fold_into_a_private_copy_works_with_example_inputs() -> None:
    x = torch.randn(8, 16)
    model = trained_statistics(Tied(), x)
    folded, report = fold_with_report(model, example_inputs=x)
    assert [(f.batchnorm, f.copy_of) for f in report.folded] == [("bn", "enc")]
    torch.testing.assert_close(folded(x), model(x))
    assert model.dec.weight is model.enc.weight  # the original keeps its tying


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 10)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        return self.fc(self.drop(x.view(x.size(0), -1)))


def test_rewrite_with_example_inputs_keeps_train_mode() -> None:
    new = rewrite(ConvNet().train(), Placement.BEFORE_ACTIVATION,
                  example_inputs=torch.randn(2, 1, 8, 8))
    assert {m.training for m in new.modules()} == {True}


class KerasPoolThenBN(nn.Module):
    """A Keras port: Conv → ReLU → MaxPool → BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.BatchNorm2d(4))
        self.head = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


class TwoBatchNorms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2),
                                 nn.BatchNorm1d(8), nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize(("model_class", "reason", "shape"), [
    (KerasPoolThenBN, "comes after `features.2`", (4, 1, 8, 8)),
    (TwoBatchNorms, "a second BatchNorm `net.4`", (4, 8)),
])
def test_batchnorm_past_the_chain_end_is_left(model_class: type, reason: str,
                                              shape: tuple[int, ...]) -> None:
    model = model_class()
    (chain,) = find_chains(model)
    assert chain.skipped and reason in chain.skipped
    x = torch.randn(shape)
    for placement in set(Placement) - {chain.placement}:
        with pytest.warns(BnplaceWarning, match="left at"):
            new = rewrite(model, placement)
        assert batchnorm_count(new) == batchnorm_count(model)
        for train in (False, True):
            torch.testing.assert_close(outputs(new, x, train), outputs(model, x, train))


class IdentityNorm(nn.Module):
    """timm's ``norm_layer or nn.Identity``: the BN slot holds an Identity."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.Identity()
        self.act = nn.ReLU()
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.norm(self.conv(x))).mean((2, 3)))


def test_identity_in_the_norm_slot_is_passed_over() -> None:
    model = IdentityNorm()
    (chain,) = find_chains(model)
    assert (chain.linear, chain.activation, chain.skipped) == ("conv", "act", None)
    x = torch.randn(4, 3, 6, 6)
    for placement in (Placement.BEFORE_ACTIVATION, Placement.AFTER_ACTIVATION):
        new = identity_batchnorms(rewrite(model, placement, drop_bias=False))
        assert [c.placement for c in find_chains(new)] == [placement]
        torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))


class BinaryClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(8, 8)
        self.out = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(F.relu(self.hidden(x))))


def test_sigmoid_output_layer_is_not_a_chain_to_rewrite() -> None:
    chains = find_chains(BinaryClassifier()).by_linear()
    assert chains["hidden"].skipped is None
    assert "output layer" in chains["out"].skipped
    with pytest.warns(BnplaceWarning, match="output layer"):
        new = rewrite(BinaryClassifier(), Placement.BEFORE_ACTIVATION)
    assert batchnorm_count(new) == 1


class BasicBlock(nn.Module):
    """torchvision's BasicBlock: one ``self.relu`` called twice, the second after the join."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


def test_shared_activation_module_does_not_stop_a_chain() -> None:
    x = torch.randn(4, 4, 5, 5)
    model = trained_statistics(BasicBlock(), x)
    chains = find_chains(model).by_linear()
    assert chains["conv1"].skipped is None
    assert chains["conv2"].skipped == ("`add` sums the output of `bn2` with another branch "
                                       "before the activation")
    with pytest.warns(BnplaceWarning, match="with another branch before the activation"):
        new = rewrite(model, Placement.AFTER_ACTIVATION)
    assert find_chains(new).by_linear()["conv1"].placement is Placement.AFTER_ACTIVATION
    assert batchnorm_count(new) == 2
    same = rewrite(model, {"conv1": "before-activation"})
    for train in (False, True):
        torch.testing.assert_close(outputs(same, x, train), outputs(model, x, train))


class PicksByIndex(nn.Module):
    """An embedding read off the middle of a Sequential by position."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                  nn.Linear(16, 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.body[2](self.body[1](self.body[0](x)))
        return self.body[3](feat), feat


class SlicesUntraceably(nn.Module):
    """A VGG perceptual loss: slices of one Sequential (fx cannot call a slice)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = self.features[:2](x)
        return h1, self.features[2:4](h1)


def test_sequential_used_by_position_keeps_its_positions() -> None:
    x = torch.randn(8, 16)
    model = trained_statistics(PicksByIndex(), x)
    for placement in (Placement.AFTER_ACTIVATION, Placement.NONE):
        new = rewrite(model, placement, example_inputs=x)
        assert [c.placement for c in find_chains(new)] == [placement]
        logits, feat = new.eval()(x)  # positions not shifted: no IndexError, the right layers
        assert logits.shape == (8, 2)
    assert feat.min() >= 0  # without its BN, the ReLU's output
    with pytest.raises(TraceError, match="not installed as a submodule"):
        rewrite(SlicesUntraceably(), Placement.BEFORE_ACTIVATION)


class Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self.fc1(x))
        if mask is not None:
            h = h * mask
        return self.fc2(h)


def test_an_optional_argument_fixed_by_tracing_is_announced() -> None:
    with pytest.warns(BnplaceWarning, match=r"no longer takes mask=None"):
        new = rewrite(Masked(), Placement.BEFORE_ACTIVATION)
    assert new.eval()(torch.randn(3, 16)).shape == (3, 4)


def test_the_model_own_hooks_survive_a_traced_rewrite() -> None:
    seen: list[str] = []
    model = ConvNet()
    model.register_forward_hook(lambda module, args, out: seen.append("model"))
    new = rewrite(model, Placement.BEFORE_ACTIVATION)
    new.eval()(torch.randn(2, 1, 8, 8))
    assert seen == ["model"]
    fold(model)(torch.randn(2, 1, 8, 8))
    assert seen == ["model", "model"]


class Generator(nn.Module):
    """DCGAN's generator: ConvTranspose2d → BN → ReLU, ending in a Tanh image."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(8, 16, 4, 1, 0), nn.BatchNorm2d(16), nn.ReLU(True),
            nn.ConvTranspose2d(16, 3, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


def test_transposed_convolutions_form_chains_and_keep_outputs() -> None:
    z = torch.randn(4, 8, 1, 1)
    model = trained_statistics(Generator(), z)
    chains = find_chains(model).by_linear()
    assert (chains["main.0"].placement, chains["main.0"].skipped) == (
        Placement.BEFORE_ACTIVATION, None)
    assert "output layer" in chains["main.3"].skipped
    dropped = drop_redundant_bias(model)
    assert dropped.main[0].bias is None
    for train in (False, True):
        torch.testing.assert_close(outputs(dropped, z, train), outputs(model, z, train))
    folded, report = fold_with_report(model, example_inputs=z)
    assert [(f.batchnorm, f.into) for f in report.folded] == [("main.1", "main.0")]
    torch.testing.assert_close(folded(z), model.eval()(z))
    with pytest.warns(BnplaceWarning, match="output layer"):
        moved = rewrite(model, Placement.AFTER_ACTIVATION, example_inputs=z)
    assert [c.placement for c in find_chains(moved)] == [Placement.AFTER_ACTIVATION,
                                                          Placement.NONE]


class ReadsItsBias(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.bn = nn.BatchNorm1d(8)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.bn(self.fc(x)))) + self.fc.bias.sum()


def test_a_bias_the_forward_reads_is_kept() -> None:
    x = torch.randn(4, 8)
    model = trained_statistics(ReadsItsBias(), x)
    assert drop_redundant_bias(model).fc.bias is not None
    for placement in Placement:
        new = rewrite(model, placement)
        assert new.fc.bias is not None and new.eval()(x).shape == (4, 2)
