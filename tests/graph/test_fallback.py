"""Tracing falls back to the traceable parts, and says what it left."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from bnplace import Placement
from bnplace.graph import BnplaceWarning, TraceError, find_chains, rewrite, trace
from tests.graph.helpers import identity_batchnorms, outputs


def _mlp_block() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Dropout(0.1))


class DataDependentRoot(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = _mlp_block()
        self.b = _mlp_block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent: fx cannot trace this
            return self.a(x)
        return self.b(x)


class Gate(nn.Module):
    """An untraceable submodule that holds a traceable Sequential."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = _mlp_block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(int(x.abs().max().item() > 100) + 1):
            x = self.inner(x)
        return x


class DataDependentChild(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Linear(4, 4)
        self.gate = Gate()
        self.post = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.gate(torch.relu(self.pre(x))))


def test_untraceable_root_falls_back_to_children() -> None:
    model = DataDependentRoot()
    traced = trace(model)
    assert not traced.complete
    assert [p.prefix for p in traced.parts] == ["a", "b"]
    reason = traced.untraced[""]
    assert "test_fallback.py" in reason and "x.sum() > 0" in reason
    chains = find_chains(model)
    assert [c.linear for c in chains] == ["a.0", "b.0"]
    assert "" in chains.untraced
    with pytest.warns(BnplaceWarning, match="left untraced"):
        new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert type(new) is DataDependentRoot
    assert [c.placement for c in find_chains(new)] == [Placement.BEFORE_ACTIVATION] * 2
    identity_batchnorms(new)
    for x in (torch.ones(3, 4), -torch.ones(3, 4)):
        torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))


def test_untraceable_submodule_is_kept_whole() -> None:
    model = DataDependentChild()
    traced = trace(model)
    assert [p.prefix for p in traced.parts] == ["", "gate.inner"]
    assert "gate" in traced.untraced and ".item()" in traced.untraced["gate"] \
        or "gate" in traced.untraced
    chains = find_chains(model)
    assert [c.linear for c in chains] == ["pre", "gate.inner.0"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BnplaceWarning)
        new = rewrite(model, Placement.AFTER_ACTIVATION)
    assert [c.placement for c in find_chains(new)] == [Placement.AFTER_ACTIVATION] * 2
    assert isinstance(new.get_submodule("gate"), Gate)  # kept whole, its Sequential rewritten
    identity_batchnorms(new)
    x = torch.randn(3, 4)
    torch.testing.assert_close(outputs(new, x, False), outputs(model, x, False))


class Hopeless(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        while x.norm() > 1:
            x = x / 2
        return self.act(self.fc(x))


def test_nothing_traces_names_the_call_and_what_to_try() -> None:
    with pytest.raises(TraceError) as info:
        trace(Hopeless())
    message = str(info.value)
    assert "Hopeless.forward" in message and "while x.norm() > 1" in message
    assert "leaf_modules" in message and "concrete_args" in message
    with pytest.raises(TraceError):
        rewrite(Hopeless(), "none")


class Flagged(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, double: bool = False) -> torch.Tensor:
        x = torch.relu(self.fc(x))
        if double:
            x = x * 2
        return x


def test_concrete_args_and_leaf_modules() -> None:
    chains = find_chains(Flagged(), concrete_args={"double": False})
    assert [c.linear for c in chains] == ["fc"]
    model = DataDependentChild()
    traced = trace(model, leaf_modules=[Gate])
    assert [p.prefix for p in traced.parts] == [""] and not traced.untraced


def test_shapes_reach_separately_traced_parts() -> None:
    model = DataDependentChild()
    # fake tensors cannot run Gate's .item(): find_chains (the caller's model) misses gate.inner
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chains = find_chains(model, torch.randn(3, 4))
    said = " ".join(str(w.message) for w in caught)
    assert "could not run the model" in said and "no shapes for `model`" in said
    assert [c.shape for c in chains] == [(3, 4), None]  # the root part was reached
    # rewrite works on its own copy, so it may run the real model (eval mode, no grad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BnplaceWarning)
        new = rewrite(model, Placement.BEFORE_ACTIVATION, example_inputs=torch.randn(3, 4))
    assert type(new.pre_bn) is nn.BatchNorm1d
    assert type(new.get_submodule("gate.inner.0_bn")) is nn.BatchNorm1d
    # the root's own `if` needs real data: fake tensors reach no part
    root = DataDependentRoot()
    with pytest.warns(UserWarning, match="could not run the model"):
        chains = find_chains(root, torch.ones(3, 4))
    assert [c.shape for c in chains] == [None, None]
    # a real run reaches only the branch taken; the other part gets a last-axis BN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BnplaceWarning)
        new = rewrite(root, Placement.BEFORE_ACTIVATION, example_inputs=torch.ones(3, 4))
    assert type(new.a[1]) is nn.BatchNorm1d
    assert type(new.b[1]).__name__ == "ChannelLastBatchNorm"


def test_lazy_modules_with_example_inputs() -> None:
    model = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Dropout(0.1))
    new = rewrite(model, Placement.BEFORE_ACTIVATION, example_inputs=torch.randn(2, 5))
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)  # untouched
    assert type(new[1]) is nn.BatchNorm1d and new[0].bias is None
    assert new(torch.randn(3, 5)).shape == (3, 8)


class OptionalMask(nn.Module):
    """``forward(x, mask=None)``: a proxy is never None, so a plain trace takes the mask branch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.bn, self.out = nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.relu(self.bn(self.fc(x)))
        if mask is not None:
            x = x * mask
        return self.out(x)


def test_optional_argument_left_out_keeps_its_branch() -> None:
    model, x = identity_batchnorms(OptionalMask()), torch.randn(4, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BnplaceWarning)
        moved = identity_batchnorms(rewrite(model, Placement.AFTER_ACTIVATION, x))
    # identity BNs in eval mode: the moved BN changes nothing, the mask branch would
    torch.testing.assert_close(outputs(moved, x, False), outputs(model, x, False))
    with pytest.raises(AssertionError, match="mask"):  # refused, never silently ignored
        moved(x, torch.zeros(4, 8))
