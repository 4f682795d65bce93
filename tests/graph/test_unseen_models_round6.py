"""Round six: whole networks as users pass them, and forwards that are unusual.

Whole networks (torchvision's ResNet-18 with ``_make_layer`` and its downsample Sequential,
DenseNet's layers fed a list of tensors, a Siamese network with two inputs) are pinned: each is
rewritten to its own placement bit for bit and folds to the same outputs. Forwards that broke:

* ``forward(x, mask=None)``: after ``torch.load`` of the rewritten model, every later fx trace in
  the process failed (fx's own None check, re-registered under a dotted name);
* a ``torch.jit.script``-ed submodule: the copy bnplace returns had non-leaf parameters, so it did
  not train (an optimizer refused them);
* a forward that updates a buffer of its own (a running average of its features, a step counter):
  tracing ran the update on the model's buffer, and the traced copy missed it.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import BnplaceWarning, find_chains, fold, fold_with_report, rewrite
from tests.graph.helpers import batchnorm_count, outputs, trained_statistics
from tests.graph.test_unseen_models_round4 import _trains


def _reloaded(model: nn.Module) -> nn.Module:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


# ---- whole networks -------------------------------------------------------------------------

class BasicBlock(nn.Module):
    """ResNet's basic block (He et al. 2016, torchvision layout): one shared ReLU, ``out +=
    identity`` in place, a downsample Sequential when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """ResNet-18's layout, two stages of two blocks, built by ``_make_layer``."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(width, 2)
        self.layer2 = self._make_layer(2 * width, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2 * width, 3)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        layers = [BasicBlock(self.inplanes, planes, stride)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class DenseLayer(nn.Module):
    """DenseNet's layer (Huang et al. 2017, torchvision layout): called with the list of every
    earlier feature map, BN-ReLU-Conv twice, dropout by ``self.training``."""

    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, 2 * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(2 * growth), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, 1, 1, bias=False)

    def forward(self, inputs: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        features = [inputs] if isinstance(inputs, torch.Tensor) else inputs
        bottleneck = self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))
        new = self.conv2(self.relu2(self.norm2(bottleneck)))
        return F.dropout(new, p=0.1, training=self.training)


class DenseBlock(nn.ModuleDict):
    def __init__(self, layers: int, cin: int, growth: int) -> None:
        super().__init__({f"denselayer{i + 1}": DenseLayer(cin + i * growth, growth)
                          for i in range(layers)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for _, layer in self.items():
            features.append(layer(features))
        return torch.cat(features, 1)


class DenseNet(nn.Module):
    """A DenseNet-121 slice: the stem and one dense block."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(3, 8, 3, 1, 1, bias=False)), ("norm0", nn.BatchNorm2d(8)),
            ("relu0", nn.ReLU(inplace=True)), ("denseblock1", DenseBlock(2, 8, 4)),
            ("norm5", nn.BatchNorm2d(16))]))
        self.classifier = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.adaptive_avg_pool2d(F.relu(self.features(x), inplace=True), (1, 1))
        return self.classifier(torch.flatten(out, 1))


class Siamese(nn.Module):
    """A Siamese network, ``forward(a, b)``: one embedding for both inputs, a head on their
    distance."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                   nn.Linear(16, 8))
        self.head = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.head(torch.abs(self.embed(a) - self.embed(b)))


def _run(model: nn.Module, inputs: tuple[torch.Tensor, ...], train: bool) -> torch.Tensor:
    model.train(train)
    torch.manual_seed(0)
    with torch.no_grad():
        return model(*inputs)


@pytest.mark.parametrize(("make", "inputs", "skipped"), [
    (ResNet, (torch.randn(2, 3, 16, 16),), 5),  # conv2 → bn2 → += → relu, and downsample
    (DenseNet, (torch.randn(2, 3, 8, 8),), 0),
    (Siamese, (torch.randn(4, 8), torch.randn(4, 8)), 1)])  # the embedding, called twice
def test_whole_networks_keep_their_outputs(make: type, inputs: tuple[torch.Tensor, ...],
                                           skipped: int) -> None:
    torch.manual_seed(0)
    model = make()
    model.train()
    with torch.no_grad():
        model(*inputs)
    model.eval()
    chains = find_chains(model, example_inputs=inputs)
    assert sum(c.skipped is not None for c in chains) == skipped
    same = rewrite(model, {c.linear: c.placement for c in chains if not c.skipped},
                   drop_bias=False, example_inputs=inputs)
    for train in (True, False):
        assert torch.equal(_run(same, inputs, train), _run(model, inputs, train))
    folded, report = fold_with_report(model, example_inputs=inputs)
    assert batchnorm_count(folded) == batchnorm_count(model) - len(report.folded)
    torch.testing.assert_close(_run(_reloaded(folded), inputs, False),
                               _run(model, inputs, False), rtol=1e-5, atol=1e-5)


# ---- forward(x, mask=None), saved and loaded ------------------------------------------------

class MaskedMLP(nn.Module):
    """A model whose forward takes an optional mask (attention-style models, ``mask=None``)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn1, self.fc2 = nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Linear(16, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self.bn1(self.fc1(x)))
        if mask is not None:
            h = h * mask
        return self.fc2(h)


def test_a_model_with_an_argument_fixed_to_none_is_saved_loaded_and_traced_again() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 8)
    model = trained_statistics(MaskedMLP(), x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BnplaceWarning)
        new = rewrite(model, Placement.AFTER_ACTIVATION)
    loaded = _reloaded(_reloaded(new))
    assert torch.equal(outputs(loaded, x, False), outputs(new, x, False))
    with pytest.raises(AssertionError, match="mask"):
        loaded(x, torch.ones(4, 16))  # the traced copy still refuses the argument it fixed
    # fx's own check, loaded, used to break every later trace (KeyError ..._assert_is_none)
    assert [c.placement for c in find_chains(loaded)] == [Placement.AFTER_ACTIVATION]
    assert [c.linear for c in find_chains(Siamese())] == ["embed.0", "head.0"]


# ---- a TorchScript submodule ----------------------------------------------------------------

class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class ScriptedStem(nn.Module):
    """A stem compiled with ``torch.jit.script`` (kept as it is) before a traceable body."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.jit.script(ConvBNReLU(3, 4))
        self.body = ConvBNReLU(4, 4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(self.stem(x)).mean((2, 3)))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("placement", [Placement.BEFORE_ACTIVATION, Placement.AFTER_ACTIVATION])
def test_a_rewritten_model_with_a_torchscript_part_trains_all_of_it(placement: Placement) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 6, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BnplaceWarning)
        new = rewrite(ScriptedStem(), placement)
    assert all(p.is_leaf and p.requires_grad for p in new.parameters())
    _trains(new, x)
    assert all(p.grad is not None for p in new.stem.parameters())


# ---- buffers updated by the forward ---------------------------------------------------------

class FeatureAverage(nn.Module):
    """A model keeping a running average of its hidden features (as a centre-loss or a feature
    monitor does), updated in every mode under ``torch.no_grad()``."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.fc1, self.bn1, self.fc2 = nn.Linear(16, 16), nn.BatchNorm1d(16), nn.Linear(16, 2)
        self.register_buffer("feature_mean", torch.zeros(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.fc1(self.body(x))))
        with torch.no_grad():
            self.feature_mean.mul_(0.9).add_(0.1 * h.mean(0))
        return self.fc2(h - self.feature_mean)


class StepCounter(nn.Module):
    """A model counting its calls in a buffer, ``self.steps += 1``."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 2)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.steps += 1
        return self.fc2(F.relu(self.fc1(x)))


def _twice(model: nn.Module, x: torch.Tensor, train: bool) -> list[torch.Tensor]:
    """Two calls: the second sees the buffer the first updated."""
    return [outputs(model, x, train), outputs(model, x, train)]


def test_a_forward_updating_its_buffer_is_held_back_and_left_untouched() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 8)
    model = trained_statistics(FeatureAverage(), x)
    kept = model.feature_mean.clone()
    chains = find_chains(model, example_inputs=x)
    assert torch.equal(model.feature_mean, kept)  # tracing and shapes ran no update on it
    assert [(c.linear, c.skipped) for c in chains] == [
        ("fc1", "the forward of `FeatureAverage` updates its buffer `feature_mean` in place, "
                "which a traced copy would not do the same way"),
        ("body.0", None)]
    with pytest.warns(BnplaceWarning, match="`fc1` left at before-activation"):
        new = rewrite(model, Placement.AFTER_ACTIVATION, example_inputs=x)
    assert type(new) is FeatureAverage and batchnorm_count(new) == 2
    assert [c.placement for c in find_chains(new)] == [Placement.BEFORE_ACTIVATION,
                                                        Placement.AFTER_ACTIVATION]
    same = rewrite(model, {"body.0": Placement.BEFORE_ACTIVATION}, drop_bias=False)
    reference = copy.deepcopy(model)
    for train in (True, False):
        assert all(torch.equal(a, b) for a, b in zip(_twice(same, x, train),
                                                     _twice(reference, x, train)))
    _trains(new, x)
    _trains(new, x)  # a traced copy would backward through the last call's update again

    folded, report = fold_with_report(model)
    assert [f.batchnorm for f in report.folded] == ["body.1"]
    assert report.left["bn1"].startswith("inside `FeatureAverage`, whose forward updates its "
                                         "buffer `feature_mean`")
    torch.testing.assert_close(_twice(folded, x, False), _twice(model, x, False))


def test_a_step_counter_keeps_counting_and_tracing_does_not_count() -> None:
    model = StepCounter()
    chains = find_chains(model)
    assert int(model.steps) == 0
    assert [c.skipped for c in chains] == [
        "the forward of `StepCounter` updates its buffer `steps` in place, which a traced copy "
        "would not do the same way"]
    with pytest.warns(BnplaceWarning):
        new = rewrite(model, Placement.BEFORE_ACTIVATION)
    new(torch.randn(4, 8))
    assert int(new.steps) == 1 and int(model.steps) == 0
    assert int(fold(model).steps) == 0
