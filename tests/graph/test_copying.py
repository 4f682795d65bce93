"""copy_module behaves as copy.deepcopy."""

from __future__ import annotations

import copy

import torch
from torch import fx, nn

from bnplace.graph.copying import copy_module
from examples.models import Lesson3Head, SmallCNN


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 3)
        self.b = nn.Linear(3, 3)
        self.b.weight = self.a.weight  # tied
        self.shared = nn.ReLU()
        self.again = self.shared  # one module, two names
        self.register_buffer("scale", torch.ones(3))
        self.config = {"depth": [1, 2]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.again(self.b(self.shared(self.a(x)))) * self.scale


def test_copy_matches_deepcopy() -> None:
    digits = torch.randn(2, 1, 8, 8)
    for model, x in ((SmallCNN(), digits), (Lesson3Head(), digits), (Tied(), torch.randn(2, 3)),
                     (fx.symbolic_trace(Tied()), torch.randn(2, 3))):
        ours, theirs = copy_module(model), copy.deepcopy(model)
        assert type(ours).__name__ == type(model).__name__  # GraphModules get a class each
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for (k, a), b in zip(ours.state_dict().items(), model.state_dict().values()):
            assert torch.equal(a, b) and a.data_ptr() != b.data_ptr(), k
        model.eval(), ours.eval()
        torch.testing.assert_close(ours(x), model(x))


def test_copy_keeps_sharing_and_independence() -> None:
    model = Tied()
    new = copy_module(model)
    assert new.b.weight is new.a.weight and new.a.weight is not model.a.weight
    assert new.again is new.shared
    assert new.config == model.config and new.config["depth"] is not model.config["depth"]
    with torch.no_grad():
        new.a.weight.add_(1)
        new.scale.add_(1)
    assert not torch.equal(new.a.weight, model.a.weight)
    assert torch.equal(model.scale, torch.ones(3))
    assert isinstance(new.a.weight, nn.Parameter) and new.a.weight.requires_grad


def test_finish_graph_module_drops_unused_submodules() -> None:
    from bnplace.graph import trace
    from bnplace.graph.rewriting import finish_graph_module, install_part

    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3), nn.ReLU())
    part = trace(model).parts[0]
    gm = part.graph_module
    bn = next(n for n in gm.graph.nodes if n.target == "1")
    bn.replace_all_uses_with(bn.args[0])
    gm.graph.erase_node(bn)
    finish_graph_module(gm)
    assert [name for name, _ in gm.named_children()] == ["0", "2"]
    assert install_part(model, "", gm) is gm
    x = torch.randn(2, 3)
    torch.testing.assert_close(gm(x), torch.relu(model[0](x)))


class LazyNet(nn.Module):
    """Built without input sizes, as LazyLinear users write it; parameters exist after a call."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.LazyLinear(16)
        self.bn = nn.LazyBatchNorm1d()
        self.act = nn.ReLU()
        self.out = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.bn(self.fc(x))))


def test_uninitialized_lazy_model_is_rewritten_and_left_lazy() -> None:
    from bnplace import Placement, drop_redundant_bias, find_chains, rewrite

    model, x = LazyNet(), torch.randn(4, 5)
    moved = rewrite(model, Placement.AFTER_ACTIVATION, x)
    assert [c.placement for c in find_chains(moved)] == [Placement.AFTER_ACTIVATION]
    assert moved(x).shape == (4, 3) and drop_redundant_bias(model)(x).shape == (4, 3)
    assert all(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())
