"""Published blocks the graph pass used to pass over without a word: PointNet's head (a Dropout
between a Linear and its BatchNorm), TCN's TemporalBlock (a chomp between the Conv and the ReLU),
activations written out as ``x * g(x)``, other normalizations, and transposes before the
activation. Each is now a chain that is rewritten exactly, or a chain listed as skipped, with why.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import (BnplaceWarning, drop_redundant_bias, find_chains, fold_with_report,
                           rewrite)
from tests.graph.helpers import identity_batchnorms, outputs, trained_statistics

_BatchNorm = nn.modules.batchnorm._BatchNorm


def _described(model: nn.Module, x: torch.Tensor | None = None) -> list[tuple]:
    return [(c.linear, c.activation, c.dropout, c.batchnorm, c.placement, c.skipped)
            for c in find_chains(model, example_inputs=x)]


def _trains(model: nn.Module, x: torch.Tensor) -> None:
    """One SGD step runs and changes the weights."""
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = model(x).square().mean()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def _unchanged(new: nn.Module, model: nn.Module, x: torch.Tensor) -> None:
    for train in (True, False):
        torch.testing.assert_close(outputs(new, x, train), outputs(model, x, train),
                                   rtol=0, atol=0)


class PointNetHead(nn.Module):
    """PointNet's classifier head (``PointNetCls`` in fxia22/pointnet.pytorch): the second
    layer drops out between its Linear and its BatchNorm, before the ReLU."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(32, 16)
        self.fc2 = nn.Linear(16, 8)
        self.fc3 = nn.Linear(8, k)
        self.dropout = nn.Dropout(p=0.3)
        self.bn1 = nn.BatchNorm1d(16)
        self.bn2 = nn.BatchNorm1d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.fc1(x)))
        x = F.relu(self.bn2(self.dropout(self.fc2(x))))
        return F.log_softmax(self.fc3(x), dim=1)


def test_pointnet_dropout_before_its_batchnorm_is_an_after_dropout_chain() -> None:
    model = PointNetHead()
    x = torch.randn(8, 32)
    assert _described(model) == [
        ("fc1", "relu", None, "bn1", Placement.BEFORE_ACTIVATION, None),
        ("fc2", "relu_1", "dropout", "bn2", Placement.AFTER_DROPOUT, None)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", BnplaceWarning)
        same = rewrite(model, {"fc2": Placement.AFTER_DROPOUT}, drop_bias=False)
    _unchanged(same, model, x)


@pytest.mark.parametrize("placement", [Placement.BEFORE_ACTIVATION, Placement.AFTER_ACTIVATION,
                                       Placement.NONE])
def test_pointnet_head_gets_each_placement_with_its_dropout_after_the_relu(
        placement: Placement) -> None:
    x = torch.randn(8, 32)
    model = trained_statistics(PointNetHead(), x)
    new = rewrite(model, placement)
    chains = find_chains(new)
    assert [(c.linear, c.activation, c.dropout, c.placement) for c in chains] == [
        ("fc1", "relu", None, placement), ("fc2", "relu_1", "dropout", placement)]
    assert not chains[1].nodes.dropout_first
    if placement is Placement.BEFORE_ACTIVATION:
        # in eval mode the dropout is the identity: PointNet's order computes this one
        assert new.fc2.bias is None and model.fc2.bias is not None
        torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))
    _trains(new, x)


def test_pointnet_head_keeps_the_bias_before_its_dropout_and_folds_through_it() -> None:
    x = torch.randn(8, 32)
    model = trained_statistics(PointNetHead(), x)
    lean = drop_redundant_bias(model)
    # dropout multiplies the bias by its mask before the BN: it no longer cancels out
    assert lean.fc1.bias is None and lean.fc2.bias is not None
    for train in (True, False):
        torch.testing.assert_close(outputs(lean, x, train), outputs(model, x, train))
    folded, report = fold_with_report(model, example_inputs=x)
    assert [(f.batchnorm, f.into, f.direction) for f in report.folded] == [
        ("bn1", "fc1", "preceding"), ("bn2", "fc2", "preceding")]
    assert report.left == {}
    torch.testing.assert_close(folded(x), model.eval()(x))


def test_a_sequential_conv_block_dropping_out_before_its_batchnorm_is_reordered_in_place() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Dropout2d(0.2), nn.BatchNorm2d(8),
                          nn.ReLU(), nn.Conv2d(8, 4, 1))
    x = torch.randn(4, 3, 6, 6)
    model = trained_statistics(model, x)
    assert _described(model) == [("0", "3", "1", "2", Placement.AFTER_DROPOUT, None)]
    new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert type(new) is nn.Sequential  # in place: the keys stay, less the bias the BN takes
    assert set(new.state_dict()) == set(model.state_dict()) - {"0.bias"}
    assert [type(m).__name__ for m in new] == ["Conv2d", "BatchNorm2d", "ReLU", "Dropout2d",
                                               "Conv2d"]
    torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))
    _trains(new, x)


class DropBeforeReLU(nn.Module):
    """A hidden layer written ``F.relu(self.dropout(self.fc(x)))``: dropping out before a ReLU
    is dropping out after it (``relu(m * z) == m * relu(z)`` for a mask ``m >= 0``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)
        self.dropout = nn.Dropout(0.5)
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.dropout(self.fc(x))))


def test_a_dropout_before_the_relu_is_part_of_the_chain() -> None:
    model = DropBeforeReLU()
    x = torch.randn(8, 8)
    assert _described(model) == [("fc", "relu", "dropout", None, Placement.NONE, None)]
    _unchanged(rewrite(model, Placement.NONE), model, x)
    new = identity_batchnorms(rewrite(model, Placement.BEFORE_ACTIVATION, drop_bias=False))
    assert [(c.batchnorm, c.placement) for c in find_chains(new)] == [
        ("fc_bn", Placement.BEFORE_ACTIVATION)]
    torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))
    _trains(new, x)


class Chomp1d(nn.Module):
    """TCN's chomp (locuslab/TCN): cuts the padded steps off a causal convolution's output."""

    def __init__(self, chomp_size: int) -> None:
        super().__init__()
        self.chomp_size = chomp_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :-self.chomp_size].contiguous()


class TemporalBlock(nn.Module):
    """TCN's residual block (Bai et al. 2018, locuslab/TCN), weight norm included."""

    def __init__(self, n_inputs: int, n_outputs: int, kernel_size: int, dilation: int,
                 dropout: float = 0.2) -> None:
        super().__init__()
        padding = (kernel_size - 1) * dilation
        self.conv1 = nn.utils.weight_norm(nn.Conv1d(n_inputs, n_outputs, kernel_size,
                                                    padding=padding, dilation=dilation))
        self.chomp1 = Chomp1d(padding)
        self.relu1 = nn.ReLU()
        self.dropout1 = nn.Dropout(dropout)
        self.conv2 = nn.utils.weight_norm(nn.Conv1d(n_outputs, n_outputs, kernel_size,
                                                    padding=padding, dilation=dilation))
        self.chomp2 = Chomp1d(padding)
        self.relu2 = nn.ReLU()
        self.dropout2 = nn.Dropout(dropout)
        self.net = nn.Sequential(self.conv1, self.chomp1, self.relu1, self.dropout1,
                                 self.conv2, self.chomp2, self.relu2, self.dropout2)
        self.downsample = nn.Conv1d(n_inputs, n_outputs, 1) if n_inputs != n_outputs else None
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


@pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")
def test_tcn_chomp_is_passed_and_the_batchnorm_sees_only_the_kept_steps() -> None:
    torch.manual_seed(0)
    model = TemporalBlock(3, 6, kernel_size=3, dilation=2)
    x = torch.randn(4, 3, 10)
    assert _described(model, x) == [
        ("conv1", "relu1", "dropout1", None, Placement.NONE, None),
        ("conv2", "relu2", "dropout2", None, Placement.NONE, None),
        ("downsample", "relu", None, None, Placement.NONE,
         "`add` sums the output of `downsample` with another branch before the activation")]
    _unchanged(rewrite(model, Placement.NONE, example_inputs=x), model, x)

    with pytest.warns(BnplaceWarning, match="chain `downsample` left at none: `add` sums"):
        new = rewrite(model, Placement.BEFORE_ACTIVATION, example_inputs=x)
    seen: dict[str, tuple[int, ...]] = {}
    for name in ("conv1_bn", "conv2_bn"):
        bn = new.get_submodule(name)
        assert isinstance(bn, nn.BatchNorm1d) and bn.num_features == 6
        bn.register_forward_pre_hook(
            lambda m, args, name=name: seen.update({name: tuple(args[0].shape)}))
    assert new.conv1.bias is None and new.conv2.bias is None
    identity_batchnorms(new)
    torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))
    assert seen == {"conv1_bn": (4, 6, 10), "conv2_bn": (4, 6, 10)}  # not the 14 padded steps
    _trains(new, x)


class ChompedConvBN(nn.Module):
    """A TCN layer with BatchNorm after the chomp, as TCN forks with batch norm write it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 6, 3, padding=2)
        self.chomp = Chomp1d(2)
        self.bn = nn.BatchNorm1d(6)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.2)
        self.out = nn.Conv1d(6, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.relu(self.bn(self.chomp(self.conv(x))))))


def test_a_batchnorm_after_the_chomp_drops_the_bias_and_folds_through_it() -> None:
    x = torch.randn(4, 3, 10)
    model = trained_statistics(ChompedConvBN(), x)
    assert _described(model) == [
        ("conv", "relu", "dropout", "bn", Placement.BEFORE_ACTIVATION, None)]
    lean = drop_redundant_bias(model)
    assert lean.conv.bias is None
    for train in (True, False):
        torch.testing.assert_close(outputs(lean, x, train), outputs(model, x, train))
    folded, report = fold_with_report(model, example_inputs=x)
    assert [(f.batchnorm, f.into, f.direction) for f in report.folded] == [
        ("bn", "conv", "preceding")]
    torch.testing.assert_close(folded(x), model.eval()(x))
    moved = rewrite(model, Placement.AFTER_ACTIVATION, example_inputs=x)
    assert [c.placement for c in find_chains(moved)] == [Placement.AFTER_ACTIVATION]
    _trains(moved, x)


class Swish(nn.Module):
    """EfficientNet-PyTorch's (lukemelas) Swish."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class HSigmoid(nn.Module):
    """``h_sigmoid`` of the MobileNetV3 reimplementations (d-li14/mobilenetv3.pytorch)."""

    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + 3) / 6


class HSwish(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.sigmoid = HSigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(x)


class Mish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(F.softplus(x))


class WrittenOutActivations(nn.Module):
    """MobileNetV3's ``conv_3x3_bn`` stem (Conv → BN → h_swish), an EfficientNet-style Conv → BN
    → Swish, and a Linear → Mish → Dropout head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8),
                                  HSwish())
        self.conv = nn.Conv2d(8, 8, 1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.swish = Swish()
        self.fc = nn.Linear(8, 16)
        self.mish = Mish()
        self.drop = nn.Dropout(0.2)
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.swish(self.bn(self.conv(self.stem(x))))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.out(self.drop(self.mish(self.fc(x))))


def test_activations_written_out_as_x_times_a_gate_end_their_chains() -> None:
    x = torch.randn(4, 3, 8, 8)
    model = trained_statistics(WrittenOutActivations(), x)
    assert _described(model) == [
        ("stem.0", "mul", None, "stem.1", Placement.BEFORE_ACTIVATION, None),
        ("conv", "mul_1", None, "bn", Placement.BEFORE_ACTIVATION, None),
        ("fc", "mul_2", "drop", None, Placement.NONE, None)]
    with_bn = {"stem.0": Placement.AFTER_ACTIVATION, "conv": Placement.AFTER_ACTIVATION}
    there = rewrite(model, with_bn, drop_bias=False)
    back = rewrite(there, {name: Placement.BEFORE_ACTIVATION for name in with_bn}, drop_bias=False)
    _unchanged(back, model, x)  # the BN is back before both uses of its input: gate and product
    new = rewrite(model, Placement.AFTER_ACTIVATION)
    assert [(c.batchnorm, c.placement) for c in find_chains(new)] == [
        ("stem.1", Placement.AFTER_ACTIVATION), ("bn", Placement.AFTER_ACTIVATION),
        ("fc_bn", Placement.AFTER_ACTIVATION)]
    _trains(new, x)
    plain = rewrite(model.eval(), {"fc": Placement.BEFORE_ACTIVATION}, drop_bias=False)
    with torch.no_grad():
        plain.fc_bn.running_var.fill_(1 - plain.fc_bn.eps)  # the inserted BN is the identity
    torch.testing.assert_close(plain(x), model(x))


class OtherNorms(nn.Module):
    """Normalizations other than BatchNorm before the activation: pix2pix/CycleGAN's Conv →
    InstanceNorm → ReLU, torchvision detection heads' Conv → GroupNorm → ReLU, a Linear →
    LayerNorm → GELU projection."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(3, 8, 3), nn.InstanceNorm2d(8),
                                   nn.ReLU(True))
        self.head = nn.Conv2d(8, 8, 3, padding=1)
        self.gn = nn.GroupNorm(4, 8)
        self.proj = nn.Linear(8, 8)
        self.ln = nn.LayerNorm(8)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.gn(self.head(self.block(x))))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.out(F.gelu(self.ln(self.proj(x))))


def test_a_chain_with_another_normalization_is_listed_and_left() -> None:
    model = OtherNorms()
    x = torch.randn(4, 3, 6, 6)
    second = "before the activation; a BatchNorm would be a second normalization"
    assert _described(model) == [
        ("block.1", "block.3", None, None, Placement.NONE,
         f"`block.2` (InstanceNorm2d) normalizes the output of `block.1` {second}"),
        ("head", "relu", None, None, Placement.NONE,
         f"`gn` (GroupNorm) normalizes the output of `head` {second}"),
        ("proj", "gelu", None, None, Placement.NONE,
         f"`ln` (LayerNorm) normalizes the output of `proj` {second}")]
    with pytest.warns(BnplaceWarning) as caught:
        new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert len(caught) == 3 and all("a second normalization" in str(w.message) for w in caught)
    _unchanged(new, model, x)


class TransposedBatchNorm(nn.Module):
    """A Linear on ``(N, L, C)`` normalized by BatchNorm1d through a transpose and back."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 16)
        self.bn = nn.BatchNorm1d(16)
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn(self.fc(x).transpose(1, 2)).transpose(1, 2)
        return self.out(F.relu(h))


class GeneratorStem(nn.Module):
    """A GAN generator's first layer: Linear, reshaped to a 4x4 map, BatchNorm2d, ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4 * 16)
        self.bn = nn.BatchNorm2d(4)
        self.up = nn.ConvTranspose2d(4, 1, 4, 2, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.up(F.relu(self.bn(self.fc(z).view(-1, 4, 4, 4)))))


@pytest.mark.parametrize(("model", "x", "moved"), [
    (TransposedBatchNorm(), torch.randn(4, 5, 8), "`transpose` (Tensor.transpose)"),
    (GeneratorStem(), torch.randn(4, 8), "`view` (Tensor.view)")])
def test_a_batchnorm_across_a_transpose_or_reshape_is_listed_and_left(
        model: nn.Module, x: torch.Tensor, moved: str) -> None:
    chains = find_chains(model)
    assert [(c.linear, c.batchnorm, c.placement, c.skipped) for c in chains][0] == (
        "fc", "bn", Placement.BEFORE_ACTIVATION,
        f"{moved} between `fc` and the activation moves the axes of its output; bnplace does "
        f"not place a BatchNorm across it")
    with pytest.warns(BnplaceWarning) as caught:
        new = rewrite(model, Placement.AFTER_ACTIVATION)
    assert any(str(w.message).startswith("bnplace: chain `fc` left at before-activation: "
                                         f"{moved}") for w in caught)
    _unchanged(new, model, x)
