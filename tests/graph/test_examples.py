"""Every example model: chains found, every placement to every other and back."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from bnplace import Placement
from bnplace.graph import find_chains, rewrite
from examples import models
from tests.graph.helpers import identity_batchnorms, outputs, placements

EXAMPLES = {
    "MLP": (models.MLP, (8, 1, 8, 8), ["none", "none"]),
    "Lesson3Head": (models.Lesson3Head, (8, 1, 8, 8), ["after-dropout", "after-dropout"]),
    "KerasQuestionMLP": (models.KerasQuestionMLP, (8, 1, 8, 8),
                         ["before-activation", "before-activation"]),
    "FunctionalMLP": (models.FunctionalMLP, (8, 1, 8, 8), ["none", "none"]),
    "SmallCNN": (models.SmallCNN, (8, 1, 8, 8), ["after-activation"] * 3 + ["none"] * 2),
    "VGGHead": (models.VGGHead, (8, 64), ["none", "none"]),
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_chains_found(name: str) -> None:
    cls, _, expected = EXAMPLES[name]
    chains = find_chains(cls())
    assert [c.placement.value for c in chains] == expected
    assert all(c.skipped is None for c in chains)


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("placement", list(Placement))
def test_rewrite_every_placement(name: str, placement: Placement) -> None:
    cls, shape, _ = EXAMPLES[name]
    torch.manual_seed(0)
    model = cls()
    before = copy.deepcopy(model.state_dict())
    x = torch.randn(shape)
    new = rewrite(model, placement)
    # the input model is untouched
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key])
    for chain in find_chains(new):
        assert chain.placement is chain.placement_for(placement)
    assert new(x).shape == model(x).shape


@pytest.mark.parametrize("name", EXAMPLES)
def test_same_placement_changes_nothing(name: str) -> None:
    cls, shape, expected = EXAMPLES[name]
    torch.manual_seed(0)
    model = cls()
    x = torch.randn(shape)
    # give BNs trained statistics first
    model.train()
    for _ in range(3):
        model(torch.randn(shape))
    same = {c.linear: c.placement for c in find_chains(model)}
    spellings = [same] + ([expected[0]] if len(set(expected)) == 1 else [])
    for placement in spellings:
        new = rewrite(model, placement)
        assert placements(new) == expected
        for train in (True, False):
            torch.testing.assert_close(outputs(new, x, train), outputs(model, x, train),
                                       rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", EXAMPLES)
def test_round_trips(name: str) -> None:
    cls, shape, expected = EXAMPLES[name]
    torch.manual_seed(0)
    model = cls()
    x = torch.randn(shape)
    n_params = sum(p.numel() for p in model.parameters())
    for a, b in itertools.permutations(list(Placement), 2):
        there = rewrite(model, a, drop_bias=False)
        back = rewrite(there, b, drop_bias=False)
        again = rewrite(back, a, drop_bias=False)
        assert placements(again) == placements(there)
        assert sum(p.numel() for p in again.parameters()) == \
            sum(p.numel() for p in there.parameters())
        identity_batchnorms(there)
        identity_batchnorms(again)
        torch.testing.assert_close(outputs(again, x, False), outputs(there, x, False))
    assert sum(p.numel() for p in model.parameters()) == n_params
