"""An output squashing layer scaled or shifted by constants (TD3/DDPG actors'
``max_action * tanh(...)``, CleanRL's ``tanh(...) * action_scale + action_bias``, a sigmoid mapped
to a range) is still the output layer; combined with another computed tensor it is not."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import BnplaceWarning, find_chains, rewrite


class TD3Actor(nn.Module):
    """The TD3 reference actor (Fujimoto et al.): ``max_action`` is a float attribute."""

    def __init__(self, state_dim: int = 6, action_dim: int = 2, max_action: float = 2.0) -> None:
        super().__init__()
        self.l1 = nn.Linear(state_dim, 32)
        self.l2 = nn.Linear(32, 32)
        self.l3 = nn.Linear(32, action_dim)
        self.max_action = max_action

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.l1(state))
        a = F.relu(self.l2(a))
        return self.max_action * torch.tanh(self.l3(a))


def test_a_td3_actor_keeps_its_scaled_tanh_output_layer() -> None:
    model = TD3Actor().eval()
    chains = find_chains(model)
    assert [(c.linear, c.activation, c.skipped) for c in chains] == [
        ("l1", "relu", None), ("l2", "relu_1", None),
        ("l3", "tanh", "it is the output layer (`tanh` gives the model's output)")]
    with pytest.warns(BnplaceWarning, match="chain `l3` left at none: it is the output layer"):
        new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert [(c.linear, c.placement) for c in find_chains(new)] == [
        ("l1", Placement.BEFORE_ACTIVATION), ("l2", Placement.BEFORE_ACTIVATION),
        ("l3", Placement.NONE)]


class CleanRLActor(nn.Module):
    """CleanRL's TD3/DDPG actor: the action range held in registered buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 32)
        self.fc_mu = nn.Linear(32, 2)
        self.register_buffer("action_scale", torch.tensor([2.0, 0.5]))
        self.register_buffer("action_bias", torch.tensor([0.0, 0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(x))
        x = torch.tanh(self.fc_mu(x))
        return x * self.action_scale + self.action_bias


class Squashed(nn.Module):
    """A hidden ReLU layer, then an output squashing written as ``head``."""

    def __init__(self, head: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.hidden = nn.Linear(6, 32)
        self.out = nn.Linear(32, 2)
        self.scale = 3.0
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self, self.out(torch.relu(self.hidden(x))))


CONSTANT_HEADS = {
    "tanh * 2": lambda m, h: torch.tanh(h) * 2,
    "(tanh + 1) / 2": lambda m, h: (torch.tanh(h) + 1) / 2,
    "0.5 * (tanh + 1)": lambda m, h: 0.5 * (torch.tanh(h) + 1),
    "sigmoid * float attribute": lambda m, h: torch.sigmoid(h) * m.scale,
    "1 - sigmoid, reshaped": lambda m, h: (1 - h.sigmoid()).view(-1),
    "torch.mul, then sub": lambda m, h: torch.mul(torch.tanh(h), m.scale).sub(1.0),
    "negated": lambda m, h: -torch.tanh(h),
}


@pytest.mark.parametrize("head", CONSTANT_HEADS.values(), ids=CONSTANT_HEADS)
def test_a_squashing_output_shifted_or_scaled_by_constants_is_the_output_layer(
        head: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> None:
    chains = find_chains(Squashed(head))
    assert [c.linear for c in chains] == ["hidden", "out"]
    assert chains[0].skipped is None
    assert chains[1].skipped == f"it is the output layer (`{chains[1].activation}` gives the " \
                                f"model's output)"


def test_a_cleanrl_actor_scaled_by_buffers_keeps_its_output_layer() -> None:
    model = CleanRLActor().eval()
    x = torch.randn(4, 6)
    assert [(c.linear, c.skipped) for c in find_chains(model)] == [
        ("fc1", None), ("fc_mu", "it is the output layer (`tanh` gives the model's output)")]
    with pytest.warns(BnplaceWarning, match="chain `fc_mu` left at none"):
        new = rewrite(model, Placement.AFTER_ACTIVATION, example_inputs=x)
    assert [(c.linear, c.placement) for c in find_chains(new)] == [
        ("fc1", Placement.AFTER_ACTIVATION), ("fc_mu", Placement.NONE)]


COMPUTED_HEADS = {
    "tanh + a computed tensor": lambda m, h: torch.tanh(h) + h,
    "tanh scaled by a computed std": lambda m, h: torch.tanh(h) * h.exp(),
}


@pytest.mark.parametrize("head", COMPUTED_HEADS.values(), ids=COMPUTED_HEADS)
def test_a_squashing_combined_with_a_computed_tensor_is_not_the_output_layer(
        head: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> None:
    chains = find_chains(Squashed(head))
    assert chains[1].skipped is None or "output layer" not in chains[1].skipped
