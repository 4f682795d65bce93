"""Module, functional, torch.* and method forms; in-place; every activation and dropout kind."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import ChannelLastBatchNorm, find_chains, rewrite
from bnplace.placement import ACTIVATIONS, LAYER_NAMES, LayerKind
from tests.graph.helpers import assert_follows_train_and_eval, identity_batchnorms, outputs


class FunctionChain(nn.Module):
    """Linear → fn → Dropout, with fn given as a callable of (module, x)."""

    def __init__(self, fn, width: int = 6) -> None:
        super().__init__()
        self.fc = nn.Linear(5, width)
        self.w = nn.Parameter(torch.full((1,), 0.25))  # PReLU's weight for its functional forms
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(width, 3)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.fn(self, self.fc(x))))


def _activation_forms():
    forms = []
    for key, names in ACTIVATIONS.items():
        for fn in names.torch_functions:
            extra = (lambda s: (s.w,)) if key == "prelu" else (lambda s: ())
            for space, label in ((F, "F"), (torch, "torch")):
                if hasattr(space, fn):
                    forms.append(pytest.param(
                        lambda s, x, f=getattr(space, fn), e=extra: f(x, *e(s)),
                        id=f"{label}.{fn}"))
            if hasattr(torch.Tensor, fn):
                forms.append(pytest.param(
                    lambda s, x, f=fn, e=extra: getattr(x, f)(*e(s)), id=f"Tensor.{fn}"))
    return forms


class ModuleActivation(nn.Module):
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.fc = nn.Linear(5, 6)
        self.act = act
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.act(self.fc(x))))


ACTIVATION_FORMS = _activation_forms()


@pytest.mark.parametrize("form", ACTIVATION_FORMS)
def test_every_activation_form(form) -> None:
    torch.manual_seed(0)
    model = FunctionChain(form)
    chains = find_chains(model)
    assert len(chains) == 1, chains
    chain = chains[0]
    assert chain.linear == "fc" and chain.dropout == "drop" and chain.skipped is None
    x = torch.randn(4, 5)
    for placement in Placement:
        new = identity_batchnorms(rewrite(model, placement))
        assert [c.placement for c in find_chains(new)] == [placement]
        torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))


def _has_inplace(name: str) -> bool:
    try:
        getattr(nn, name)(inplace=True)
    except TypeError:
        return False
    return True


MODULE_FORMS = [(m, False) for n in ACTIVATIONS.values() for m in n.torch_modules] + \
    [(m, True) for n in ACTIVATIONS.values() for m in n.torch_modules if _has_inplace(m)]


@pytest.mark.parametrize("name, inplace", MODULE_FORMS)
def test_every_activation_module(name: str, inplace: bool) -> None:
    cls = getattr(nn, name)
    act = cls(inplace=True) if inplace else cls()
    model = ModuleActivation(act)
    x = torch.randn(4, 5)
    assert [c.activation for c in find_chains(model)] == ["act"]
    for placement in Placement:
        new = identity_batchnorms(rewrite(model, placement))
        assert [c.placement for c in find_chains(new)] == [placement]
        torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))


class DropoutChain(nn.Module):
    def __init__(self, drop, module, conv=None) -> None:
        super().__init__()
        self.conv = conv or nn.Conv2d(2, 4, 3, padding=1)
        self.drop = drop
        self.module = module
        self.p = 0.3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self, torch.relu(self.conv(x)))


def _dropout_forms():
    forms = []
    for name in LAYER_NAMES[LayerKind.DROPOUT].torch_modules:
        forms.append(pytest.param(lambda s, x: s.module(x), getattr(nn, name)(0.3), "1d" in name,
                                  id=f"nn.{name}"))
    for fn in LAYER_NAMES[LayerKind.DROPOUT].torch_functions:
        if hasattr(F, fn):
            forms.append(pytest.param(lambda s, x, f=getattr(F, fn): f(x, s.p, s.training), None,
                                      "1d" in fn, id=f"F.{fn}"))
        elif hasattr(torch, fn):  # looked up at call time, as `torch.dropout_(...)` in a forward
            forms.append(pytest.param(lambda s, x, f=fn: getattr(torch, f)(x, s.p, s.training),
                                      None, False, id=f"torch.{fn}"))
    forms.append(pytest.param(lambda s, x: F.dropout(x, s.p, s.training, inplace=True), None,
                              False, id="F.dropout-inplace"))
    return forms


@pytest.mark.parametrize("form, module, one_d", _dropout_forms())
def test_every_dropout_form(form, module, one_d) -> None:
    torch.manual_seed(0)
    model = DropoutChain(form, module, nn.Conv1d(2, 4, 3, padding=1) if one_d else None)
    chains = find_chains(model)
    assert len(chains) == 1 and chains[0].dropout is not None and chains[0].skipped is None
    x = torch.randn(4, 2, 5) if one_d else torch.randn(4, 2, 5, 5)
    for placement in Placement:
        new = rewrite(model, placement)
        assert [c.placement for c in find_chains(new)] == [placement]
        identity_batchnorms(new)
        # eval: dropout is off in the rewritten model as in the original
        torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))
        assert torch.equal(outputs(new, x, False), outputs(new, x, False))
        if placement is Placement.BEFORE_ACTIVATION:
            bn = [m for m in new.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            assert len(bn) == 1 and bn[0].num_features == 4


def test_functional_dropout_follows_train_and_eval() -> None:
    """fx bakes F.dropout's training flag; the rewritten model must still follow train()/eval()."""
    from examples.models import FunctionalMLP

    torch.manual_seed(0)
    model = FunctionalMLP(p=0.5)
    x = torch.randn(16, 1, 8, 8)
    for placement in Placement:
        assert_follows_train_and_eval(identity_batchnorms(rewrite(model, placement)), model, x)


@pytest.mark.parametrize("conv, shape, bn", [
    (nn.Conv1d(3, 4, 3), (5, 3, 9), nn.BatchNorm1d),
    (nn.Conv2d(3, 4, 3), (5, 3, 9, 9), nn.BatchNorm2d),
    (nn.Conv3d(3, 4, 3), (5, 3, 6, 6, 6), nn.BatchNorm3d),
])
def test_conv_kinds(conv: nn.Module, shape: tuple[int, ...], bn: type) -> None:
    model = nn.Sequential(conv, nn.ReLU(), nn.Dropout(0.2))
    new = rewrite(model, Placement.BEFORE_ACTIVATION)
    inserted = [m for m in new.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(inserted) == 1 and type(inserted[0]) is bn and inserted[0].num_features == 4
    assert new[0].bias is None
    x = torch.randn(shape)
    assert new(x).shape == model(x).shape


class MyLinear(nn.Linear):
    """A user subclass: fx would trace into it (F.linear) without bnplace's tracer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 1.0


class MyReLU(nn.ReLU):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) + 0.0


class MyDropout(nn.Dropout):
    pass


class MyConv(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight, self.bias)


def test_user_subclasses_are_chain_layers() -> None:
    model = nn.Sequential(MyConv(1, 3, 3), nn.ReLU(), nn.Flatten(),
                          MyLinear(3 * 4 * 4, 8), MyReLU(), MyDropout(0.1), nn.Linear(8, 2))
    chains = find_chains(model)
    assert [(c.linear, c.activation, c.dropout) for c in chains] == \
        [("0", "1", None), ("3", "4", "5")]
    x = torch.randn(4, 1, 6, 6)
    for placement in Placement:
        new = identity_batchnorms(rewrite(model, placement))
        torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))
        assert isinstance(new[0], MyConv)


class Nested(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block1 = Block(4, 8)
        self.block2 = nn.ModuleDict({"inner": Block(8, 8)})
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block2["inner"](self.block1(x)))


class Block(nn.Module):
    def __init__(self, a: int, b: int) -> None:
        super().__init__()
        self.fc = nn.Linear(a, b)
        self.bn = nn.BatchNorm1d(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(F.gelu(self.bn(self.fc(x))), 0.1, self.training)


def test_nested_submodules() -> None:
    torch.manual_seed(0)
    model = Nested()
    chains = find_chains(model)
    assert [c.linear for c in chains] == ["block1.fc", "block2.inner.fc"]
    assert [c.batchnorm for c in chains] == ["block1.bn", "block2.inner.bn"]
    assert all(c.placement is Placement.BEFORE_ACTIVATION for c in chains)
    x = torch.randn(6, 4)
    model.train()
    for _ in range(3):
        model(torch.randn(6, 4))
    for placement in Placement:
        new = rewrite(model, placement, drop_bias=False)
        assert [c.placement for c in find_chains(new)] == [placement] * 2
        back = rewrite(new, Placement.BEFORE_ACTIVATION, drop_bias=False) \
            if placement is not Placement.NONE else None
        if back is not None:
            # moving a BN keeps its parameters and statistics: back where it was, same outputs
            for train in (False, True):
                torch.testing.assert_close(outputs(back, x, train), outputs(model, x, train))
            assert set(back.state_dict()) == set(model.state_dict())


def test_channel_last_linear_gets_last_axis_batchnorm() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Dropout(0.0))
    x = torch.randn(3, 4, 5)  # (N, L, C)
    new = rewrite(model, Placement.BEFORE_ACTIVATION, example_inputs=x, drop_bias=False)
    bn = [m for m in new.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(bn) == 1 and isinstance(bn[0], ChannelLastBatchNorm) and bn[0].num_features == 7
    new.train()
    h = model[0](x)
    expected = torch.relu((h - h.mean((0, 1))) / torch.sqrt(h.var((0, 1), unbiased=False) + 1e-5))
    torch.testing.assert_close(new(x), expected)
    # 2-D input: a plain BatchNorm1d
    flat = rewrite(model, Placement.BEFORE_ACTIVATION, example_inputs=torch.randn(3, 5))
    assert [type(m) for m in flat.modules() if isinstance(m, nn.BatchNorm1d)] == [nn.BatchNorm1d]
    # (N, H, W, C)
    x4 = torch.randn(2, 3, 4, 5)
    new4 = rewrite(model, Placement.AFTER_ACTIVATION, example_inputs=x4)
    new4.train()
    a = torch.relu(model[0](x4))
    expected = (a - a.mean((0, 1, 2))) / torch.sqrt(a.var((0, 1, 2), unbiased=False) + 1e-5)
    torch.testing.assert_close(new4(x4), expected)


def test_shape_propagation_moves_no_statistic() -> None:
    model = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU())
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    chains = find_chains(model, torch.randn(4, 5))
    assert chains[0].shape == (4, 7)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.training and model[1].training
