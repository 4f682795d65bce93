"""Hypothesis-generated MLP and CNN stacks: shapes, `none`, round trips."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from bnplace import Placement
from bnplace.graph import find_chains, rewrite
from tests.graph.helpers import identity_batchnorms, outputs

ACTIVATIONS = [nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
               nn.SiLU, nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.Softplus]
PLACEMENTS = list(Placement)

block = st.tuples(
    st.integers(2, 6),                      # width
    st.sampled_from(ACTIVATIONS),
    st.booleans(),                          # dropout?
    st.sampled_from(PLACEMENTS),            # where its BN sits
    st.booleans(),                          # bias?
)


def _stack(blocks, conv: bool) -> tuple[nn.Module, tuple[int, ...]]:
    layers: list[nn.Module] = []
    width = 3
    for out, act, drop, placement, bias in blocks:
        lin = (nn.Conv2d(width, out, 3, padding=1, bias=bias) if conv
               else nn.Linear(width, out, bias=bias))
        bn = nn.BatchNorm2d(out) if conv else nn.BatchNorm1d(out)
        dropout = (nn.Dropout2d(0.2) if conv else nn.Dropout(0.2)) if drop else None
        seq = [lin]
        if placement is Placement.BEFORE_ACTIVATION:
            seq.append(bn)
        seq.append(act())
        if placement is Placement.AFTER_ACTIVATION:
            seq.append(bn)
        if dropout is not None:
            seq.append(dropout)
        if placement is Placement.AFTER_DROPOUT:
            seq.append(bn)
        layers += seq
        width = out
    if conv:
        layers += [nn.Flatten()]
        return nn.Sequential(*layers, nn.Linear(width * 16, 2)), (5, 3, 4, 4)
    return nn.Sequential(*layers, nn.Linear(width, 2)), (5, 3)


stacks = st.tuples(st.lists(block, min_size=1, max_size=5), st.booleans())

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@SETTINGS
@given(stacks, st.sampled_from(PLACEMENTS))
def test_rewrite_keeps_output_shape(spec, placement) -> None:
    model, shape = _stack(*spec)
    x = torch.randn(shape)
    new = rewrite(model, placement)
    assert outputs(new, x, True).shape == outputs(model, x, True).shape
    assert outputs(new, x, False).shape == outputs(model, x, False).shape
    chains = find_chains(new)
    assert len(chains) == len(spec[0])
    assert all(c.placement is c.placement_for(placement) for c in chains)


@SETTINGS
@given(stacks)
def test_none_leaves_no_batchnorm(spec) -> None:
    model, _ = _stack(*spec)
    new = rewrite(model, Placement.NONE)
    assert all(c.batchnorm is None for c in find_chains(new))
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in new.modules())


@SETTINGS
@given(stacks, st.sampled_from(PLACEMENTS), st.sampled_from(PLACEMENTS))
def test_round_trips_keep_parameter_count(spec, a, b) -> None:
    model, shape = _stack(*spec)
    there = rewrite(model, a, drop_bias=False)
    back = rewrite(rewrite(there, b, drop_bias=False), a, drop_bias=False)
    assert _n_params(back) == _n_params(there)
    assert [c.placement for c in find_chains(back)] == [c.placement for c in find_chains(there)]
    x = torch.randn(shape)
    for train in (False, True):
        torch.testing.assert_close(outputs(back, x, train), outputs(there, x, train))


@SETTINGS
@given(stacks, st.sampled_from(PLACEMENTS))
def test_fresh_batchnorm_is_identity(spec, placement) -> None:
    model, shape = _stack(*spec)
    plain = rewrite(model, Placement.NONE)
    new = identity_batchnorms(rewrite(plain, placement))
    x = torch.randn(shape)
    torch.testing.assert_close(outputs(new, x, False), outputs(plain, x, False))
