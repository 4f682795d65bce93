"""A forward that reads shapes in Python traces with example inputs, shapes fixed and checked."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import BnplaceWarning, TraceError, find_chains, fold, rewrite, trace
from examples.models import SmallCNN
from tests.graph.helpers import assert_follows_train_and_eval, identity_batchnorms, outputs


class Net(nn.Module):
    """The PyTorch tutorial's LeNet, as written there (1×32×32 inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, self.num_flat_features(x))
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x

    def num_flat_features(self, x: torch.Tensor) -> int:
        size = x.size()[1:]
        num_features = 1
        for s in size:
            num_features *= s
        return num_features


class DigitsNet(Net):
    """The same forward on 1×8×8 digits (conv2 pads, so 16 flat features are left)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv2 = nn.Conv2d(6, 16, 3, padding=1)
        self.fc1 = nn.Linear(16, 120)


class FlatAll(nn.Module):
    """Counts the batch axis into the flat size: fixed from the example, it fits no other batch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.act = nn.Linear(64, 8), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x.view(self.flat(x)).view(-1, 64)))

    def flat(self, x: torch.Tensor) -> int:
        n = 1
        for d in x.shape:
            n *= d
        return n


class ShapeBranch(nn.Module):
    """Branches on the rank and the width; BN and dropout follow self.training."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.bn = nn.Linear(64, 8, bias=False), nn.BatchNorm1d(8)
        self.out = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.flatten(1)
        if len(x.shape) == 2 and x.shape[1] == int(x.size(1)):
            x = F.dropout(F.relu(self.bn(self.fc(x))), 0.5, self.training)
        return self.out(x)


class DataBranch(nn.Module):
    """Reads a shape, then branches on tensor data: no example fixes that."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = 1
        for s in x.shape[1:]:
            width *= s
        x = x.reshape(-1, width)
        if x.mean() > 0:
            return torch.relu(self.fc(x))
        return torch.tanh(self.fc(x))


LENET_INPUT = (2, 1, 32, 32)


def _rewrite(model: nn.Module, placement: Placement, x: torch.Tensor) -> nn.Module:
    with pytest.warns(BnplaceWarning, match="shapes fixed from the example inputs"):
        return rewrite(model, placement, example_inputs=x)


def test_lenet_traces_with_its_shapes_fixed() -> None:
    with pytest.raises(TraceError, match="example_inputs=") as info:
        trace(Net())
    assert "for s in size:" in str(info.value)
    traced = trace(Net(), example_inputs=torch.randn(LENET_INPUT))
    assert traced.complete
    assert "test_concrete_tracing.py" in traced.concrete[""]
    assert "for s in size:" in traced.concrete[""]
    views = [n for n in traced.parts[0].graph.nodes if n.target == "view"]
    assert [n.args[1:] for n in views] == [(-1, 576)]  # the batch axis stays symbolic
    assert not [n for n in traced.parts[0].graph.nodes if n.target == "size"]  # no dead reads
    assert find_chains(Net(), example_inputs=torch.randn(LENET_INPUT)).concrete == traced.concrete


@pytest.mark.parametrize("placement", list(Placement))
def test_lenet_rewrites_to_every_placement(placement: Placement) -> None:
    torch.manual_seed(0)
    model, x = Net(), torch.randn(LENET_INPUT)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    new = _rewrite(model, placement, x)
    assert torch.equal(torch.random.get_rng_state(), rng)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    chains = find_chains(new, example_inputs=x)
    assert [c.linear for c in chains] == ["conv1", "conv2", "fc1", "fc2"]
    assert {c.placement for c in chains} == {chains[0].placement_for(placement)}
    # fresh BNs are the identity in eval mode: outputs equal, at another batch size too
    identity_batchnorms(new)
    other = torch.randn(5, 1, 32, 32)
    torch.testing.assert_close(outputs(new, other, False), outputs(model, other, False))
    folded = fold(new, example_inputs=x)
    torch.testing.assert_close(folded(other), outputs(model, other, False))


def test_rewritten_lenet_survives_save_and_load() -> None:
    x = torch.randn(LENET_INPUT)
    new = _rewrite(Net(), Placement.BEFORE_ACTIVATION, x).eval()
    buffer = io.BytesIO()
    torch.save(new, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False).eval()
    other = torch.randn(3, 1, 32, 32)
    torch.testing.assert_close(loaded(other), new(other))


def test_lenet_inside_a_container_traces_as_one_graph() -> None:
    model = nn.Sequential(nn.Identity(), Net())
    traced = trace(model, example_inputs=torch.randn(LENET_INPUT))
    assert traced.complete and list(traced.concrete) == [""]


def test_shapes_that_depend_on_the_batch_size_are_rejected() -> None:
    with pytest.raises(TraceError) as info:
        rewrite(FlatAll(), Placement.BEFORE_ACTIVATION, example_inputs=torch.randn(2, 1, 8, 8))
    message = str(info.value)
    assert "for d in x.shape:" in message
    assert "the fixed shapes depend on the batch size: on 5 samples instead of 2" in message


def test_shape_branches_keep_train_and_eval_behaviour() -> None:
    torch.manual_seed(0)
    model, x = ShapeBranch().train(), torch.randn(4, 1, 8, 8)
    stats = [b.clone() for b in model.bn.buffers()]
    traced = trace(model, example_inputs=x)
    assert "if x.dim() == 4:" in traced.concrete[""] and "int(x.size(1))" in traced.concrete[""]
    new = _rewrite(model, Placement.AFTER_DROPOUT, x)
    assert all(torch.equal(a, b) for a, b in zip(stats, model.bn.buffers()))  # no BN stat moved
    assert [c.placement for c in find_chains(new)] == [Placement.AFTER_DROPOUT]
    assert_follows_train_and_eval(new, model, torch.randn(7, 1, 8, 8))


def test_data_dependent_branch_still_fails_and_says_why() -> None:
    with pytest.raises(TraceError) as info:
        trace(DataBranch(), example_inputs=torch.randn(2, 64))
    message = str(info.value)
    assert "with shapes fixed from the example inputs" in message
    assert "computed from tensor data" in message and "if x.mean() > 0:" in message
    assert "example_inputs=..." not in message  # they were given


def test_a_model_that_traces_is_traced_as_before() -> None:
    model, x = SmallCNN(), torch.randn(2, 1, 8, 8)
    plain, with_inputs = trace(model), trace(model, example_inputs=x)
    assert with_inputs.concrete == {}
    assert [str(p.graph) for p in with_inputs.parts] == [str(p.graph) for p in plain.parts]
    with warnings.catch_warnings():
        warnings.simplefilter("error", BnplaceWarning)
        rewrite(model, Placement.BEFORE_ACTIVATION, example_inputs=x)
