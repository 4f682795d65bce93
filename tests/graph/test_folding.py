"""bnplace.fold: every foldable BN merged away, outputs equal to the eval-mode model."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
import torch.nn.functional as F
from torch import nn

from bnplace import Placement, fold
from bnplace.graph import FoldedBatchNorm, fold_with_report
from examples import models
from tests.graph.helpers import batchnorm_count

CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
BATCHNORMS = {0: nn.BatchNorm1d, 1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def trained(model: nn.Module, shape: tuple[int, ...], steps: int = 4) -> nn.Module:
    """A few SGD steps on shifted, scaled data: BN statistics and scales far from their defaults."""
    torch.manual_seed(1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(steps):
        loss = model(torch.randn(shape) * 3 + 1).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def assert_same_outputs(model: nn.Module, folded: nn.Module, shape: tuple[int, ...]) -> None:
    x = torch.randn(shape) * 3 + 1
    with torch.no_grad():
        expected, got = model.eval()(x), folded(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def chain(dims: int, placement: Placement, bias: bool, affine: bool) -> list[nn.Module]:
    """Layer → (BN at ``placement``) → ReLU → Dropout, 6 → 5 channels (features for dims 0)."""
    layer = nn.Linear(6, 5, bias=bias) if dims == 0 else CONVS[dims](6, 5, 3, bias=bias)
    bn = BATCHNORMS[dims](5, affine=affine)
    order = {Placement.BEFORE_ACTIVATION: [layer, bn, nn.ReLU(), nn.Dropout(0.3)],
             Placement.AFTER_ACTIVATION: [layer, nn.ReLU(), bn, nn.Dropout(0.3)],
             Placement.AFTER_DROPOUT: [layer, nn.ReLU(), nn.Dropout(0.3), bn]}
    return order[placement]


def head(dims: int, bias: bool) -> nn.Module:
    return nn.Linear(5, 4, bias=bias) if dims == 0 else CONVS[dims](5, 4, 2, bias=bias)


def input_shape(dims: int) -> tuple[int, ...]:
    return (16, 6) if dims == 0 else (8, 6) + (5,) * dims


@pytest.mark.parametrize("dims", [0, 1, 2, 3])
@pytest.mark.parametrize("placement", [Placement.BEFORE_ACTIVATION, Placement.AFTER_ACTIVATION,
                                       Placement.AFTER_DROPOUT])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_every_placement_and_layer_folds_exactly(dims: int, placement: Placement, bias: bool,
                                                 affine: bool) -> None:
    torch.manual_seed(0)
    model = trained(nn.Sequential(*chain(dims, placement, bias, affine), head(dims, bias)),
                    input_shape(dims))
    folded, report = fold_with_report(model)
    direction = "preceding" if placement is Placement.BEFORE_ACTIVATION else "following"
    assert [(f.batchnorm, f.into, f.direction) for f in report.folded] == [
        ("1" if direction == "preceding" else str(2 + (placement is Placement.AFTER_DROPOUT)),
         "0" if direction == "preceding" else "4", direction)]
    assert report.left == {}
    assert batchnorm_count(folded) == 0 and type(folded) is nn.Sequential
    assert_same_outputs(model, folded, input_shape(dims))


@pytest.mark.parametrize("name, shape, folded, left", [
    ("MLP", (16, 1, 8, 8), [], []),
    ("Lesson3Head", (16, 1, 8, 8), [("bn1", "fc2", "following"), ("bn2", "out", "following")], []),
    ("KerasQuestionMLP", (16, 1, 8, 8), [("features.2", "features.1", "preceding"),
                                         ("features.6", "features.5", "preceding")], []),
    ("FunctionalMLP", (16, 1, 8, 8), [], []),
    ("SmallCNN", (16, 1, 8, 8), [("features.9", "classifier.classifier.1", "following")],
     ["features.2", "features.5"]),
    ("VGGHead", (16, 64), [], []),
])
def test_example_models(name: str, shape: tuple[int, ...], folded: list, left: list) -> None:
    torch.manual_seed(0)
    model = trained(getattr(models, name)(), shape)
    before = copy.deepcopy(model.state_dict())
    result, report = fold_with_report(model)
    assert [(f.batchnorm, f.into, f.direction) for f in report.folded] == folded
    assert sorted(report.left) == left
    assert batchnorm_count(result) == len(left)
    assert not result.training
    assert_same_outputs(model, result, shape)
    for key, value in model.state_dict().items():  # the input model is untouched
        assert torch.equal(value, before[key])


def test_small_cnn_conv_blocks_are_left_for_zero_padding() -> None:
    _, report = fold_with_report(models.SmallCNN())
    assert "`features.3` pads with zeros" in report.left["features.2"]
    assert "`features.7` pads with zeros" in report.left["features.5"]


class FunctionalDropoutNet(nn.Module):
    """BN after the activation, then ``F.dropout`` in a custom forward (becomes a GraphModule)."""

    def __init__(self, follow_training: bool) -> None:
        super().__init__()
        self.follow_training = follow_training
        self.fc1, self.bn, self.fc2 = nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(F.relu(self.fc1(x)))
        x = F.dropout(x, 0.5, self.training) if self.follow_training else F.dropout(x, 0.5)
        return self.fc2(x)


def test_custom_forward_folds_through_functional_dropout() -> None:
    model = trained(FunctionalDropoutNet(follow_training=True), (16, 6))
    folded, report = fold_with_report(model)
    assert [(f.batchnorm, f.into) for f in report.folded] == [("bn", "fc2")]
    assert batchnorm_count(folded) == 0
    assert_same_outputs(model, folded, (16, 6))


def test_dropout_that_ignores_eval_mode_is_not_looked_through() -> None:
    _, report = fold_with_report(FunctionalDropoutNet(follow_training=False))
    assert "drops out in eval mode too" in report.left["bn"]


def conv_block(pool: nn.Module, next_layer: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), pool, next_layer)


def with_scales(model: nn.Module, sign: float) -> nn.Module:
    with torch.no_grad():
        model[2].weight.copy_(sign * torch.linspace(0.5, 2.0, 4))
    return model


@pytest.mark.parametrize("pool, next_layer, sign, folded", [
    (nn.AvgPool2d(2), nn.Conv2d(4, 2, 2), 1.0, True),
    (nn.AvgPool2d(2), nn.Conv2d(4, 2, 2), -1.0, True),
    (nn.AdaptiveAvgPool2d(2), nn.Conv2d(4, 2, 1, padding_mode="reflect", padding=1), 1.0, True),
    (nn.MaxPool2d(2), nn.Conv2d(4, 2, 2), 1.0, True),
    (nn.MaxPool2d(2), nn.Conv2d(4, 2, 2), -1.0, False),
    (nn.AvgPool2d(2, padding=1), nn.Conv2d(4, 2, 2), 1.0, False),
    (nn.AvgPool2d(2, padding=1, count_include_pad=False), nn.Conv2d(4, 2, 2), 1.0, True),
    (nn.Identity(), nn.Conv2d(4, 2, 3, padding=1), 1.0, False),
    (nn.Identity(), nn.Conv2d(4, 2, 3, padding=1, padding_mode="replicate"), 1.0, True),
    (nn.Identity(), nn.Conv2d(4, 4, 3, groups=2), 1.0, True),
    (nn.Flatten(), nn.Linear(4 * 6 * 6, 3), 1.0, True),
    (nn.MaxPool2d(2), nn.Sequential(nn.Flatten(), nn.Linear(4 * 3 * 3, 3)), -1.0, False),
])
def test_following_layer_through_pooling_padding_and_flatten(
        pool: nn.Module, next_layer: nn.Module, sign: float, folded: bool) -> None:
    torch.manual_seed(0)
    model = with_scales(trained(conv_block(pool, next_layer), (8, 3, 8, 8)), sign)
    result, report = fold_with_report(model)
    assert [f.batchnorm for f in report.folded] == (["2"] if folded else [])
    assert list(report.left) == ([] if folded else ["2"])
    assert_same_outputs(model, result, (8, 3, 8, 8))


class Shared(nn.Module):
    """One Linear called twice, and a BN whose output has a second user (a residual)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.bn1, self.bn2, self.out = (nn.Linear(5, 5), nn.BatchNorm1d(5),
                                                 nn.BatchNorm1d(5), nn.Linear(5, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(torch.relu(self.fc(x)))
        y = self.bn2(torch.relu(self.fc(x)))
        return self.out(y) + y.sum(1, keepdim=True)


def test_shared_layer_gets_a_copy_and_a_value_with_other_users_is_left() -> None:
    model = trained(Shared(), (16, 5))
    result, report = fold_with_report(model)
    # the second call of `fc` gets its own copy with bn1 merged in; the first keeps `fc`
    assert report.folded == [FoldedBatchNorm("bn1", "fc_folded", "following", copy_of="fc")]
    assert report.left == {"bn2": "it is fed by `relu_1` (torch.relu), not a Linear/Conv; "
                                  "the output of `bn2` (BatchNorm1d) has 2 users"}
    assert torch.equal(result.fc.weight, model.fc.weight)
    assert_same_outputs(model, result, (16, 5))


def test_batch_statistics_are_left_and_tied_weights_untied() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False),
                          nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 4))
    model[4].weight = model[2].weight
    model = trained(model, (16, 4))
    folded, report = fold_with_report(model)
    assert report.folded == [FoldedBatchNorm("3", "2_folded", "preceding", copy_of="2")]
    assert report.left == {"1": "it normalises with batch statistics at inference "
                                "(track_running_stats=False)"}
    assert_same_outputs(model, folded, (16, 4))


def test_view_is_looked_through_only_with_shapes() -> None:
    class ViewNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn, self.fc = nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Linear(48, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.bn(torch.relu(self.conv(x)))
            return self.fc(x.view(x.size(0), -1))

    model = trained(ViewNet(), (8, 1, 6, 6))
    _, without_shapes = fold_with_report(model)
    assert list(without_shapes.left) == ["bn"]
    folded, with_shapes = fold_with_report(model, torch.randn(2, 1, 6, 6))
    assert [f.into for f in with_shapes.folded] == ["fc"]
    assert_same_outputs(model, folded, (8, 1, 6, 6))


def test_fold_is_the_public_api() -> None:
    model = trained(models.KerasQuestionMLP(), (16, 1, 8, 8))
    folded = fold(model)
    assert batchnorm_count(folded) == 0
    assert_same_outputs(model, folded, (16, 1, 8, 8))


ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.LeakyReLU, nn.GELU, nn.SiLU)


def randomized_statistics(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """BN statistics and affine parameters of any sign and size, as training leaves them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=generator) * 2)
                m.running_var.copy_(torch.rand(n, generator=generator) * 3 + 0.05)
                if m.affine:
                    m.weight.copy_(torch.randn(n, generator=generator))
                    m.bias.copy_(torch.randn(n, generator=generator))
    return model.eval()


@settings(max_examples=30, deadline=None)
@given(blocks=st.lists(st.tuples(st.sampled_from([p for p in Placement if p is not Placement.NONE]),
                                 st.sampled_from(ACTIVATIONS), st.booleans(), st.booleans(),
                                 st.booleans(), st.integers(2, 6)), min_size=1, max_size=3),
       seed=st.integers(0, 2**16))
def test_any_mlp_of_chains_folds_every_batchnorm(blocks: list, seed: int) -> None:
    """Random MLPs: every BN folds (backward or forward), outputs unchanged."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    width = 5
    for placement, activation, bias, affine, dropout, out in blocks:
        linear, act = nn.Linear(width, out, bias=bias), activation()
        bn = nn.BatchNorm1d(out, affine=affine)
        drop = [nn.Dropout(0.3)] if dropout else []
        layers += {Placement.BEFORE_ACTIVATION: [linear, bn, act, *drop],
                   Placement.AFTER_ACTIVATION: [linear, act, bn, *drop],
                   Placement.AFTER_DROPOUT: [linear, act, *drop, bn]}[placement]
        width = out
    model = randomized_statistics(nn.Sequential(*layers, nn.Linear(width, 3)),
                                  torch.Generator().manual_seed(seed))
    folded, report = fold_with_report(model)
    assert report.left == {} and len(report.folded) == len(blocks)
    assert batchnorm_count(folded) == 0
    assert_same_outputs(model, folded, (7, 5))


class ResidualBlock(nn.Module):
    """ResNet's basic block (conv → BN → ReLU → conv → BN, + a conv → BN shortcut), then a
    pre-activation BN (BN → ReLU → conv, DenseNet's order), then depthwise conv → BN."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.shortcut = nn.Sequential(nn.Conv2d(3, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.pre_bn, self.conv3 = nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1)
        self.depthwise, self.bn4 = nn.Conv2d(8, 8, 3, groups=8), nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))
        y = self.conv3(F.relu(self.pre_bn(y)))
        return self.bn4(self.depthwise(y))


def test_residual_pre_activation_and_depthwise_blocks() -> None:
    model = trained(ResidualBlock(), (8, 3, 8, 8))
    folded, report = fold_with_report(model)
    assert [(f.batchnorm, f.into) for f in report.folded] == [
        ("bn1", "conv1"), ("bn2", "conv2"), ("shortcut.1", "shortcut.0"), ("bn4", "depthwise")]
    assert report.left == {"pre_bn": "it is fed by `relu_1` (F.relu), not a Linear/Conv; it is "
                                     "followed by `relu_2` (F.relu), which it cannot pass"}
    assert batchnorm_count(folded) == 1
    assert_same_outputs(model, folded, (8, 3, 8, 8))


def test_layers_that_compute_their_weight_are_left() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    model[0] = nn.utils.parametrizations.weight_norm(model[0])
    model = trained(model, (16, 4))
    folded, report = fold_with_report(model)
    assert report.folded == []
    assert report.left == {"1": "`0` computes its weight (a parametrization or weight norm) or has "
                                "forward hooks; it is followed by `2` (ReLU), which it cannot pass"}
    assert_same_outputs(model, folded, (16, 4))


def test_functional_linear_before_batchnorm_folds_forward() -> None:
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(5, 6))
            self.bn, self.fc = nn.BatchNorm1d(5), nn.Linear(5, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.bn(F.linear(x, self.weight)))

    model = trained(Functional(), (16, 6))
    folded, report = fold_with_report(model)
    assert [(f.batchnorm, f.into, f.direction) for f in report.folded] == [
        ("bn", "fc", "following")]
    assert_same_outputs(model, folded, (16, 6))
