"""Layers whose weight a forward pre-hook computes (the old-style ``nn.utils.spectral_norm`` of
SN-GAN discriminators, ``nn.utils.weight_norm``): bnplace's fake-tensor runs leave no fake
weight behind, so users see only bnplace's own warnings, and a trained model copies."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable

import pytest
import torch
from torch import nn

from bnplace import Placement
from bnplace.graph import find_chains, fold_with_report, rewrite

Wrap = Callable[[nn.Module], nn.Module]
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.nn.utils.weight_norm` is deprecated:FutureWarning")
_HOOKED: list[Wrap] = [nn.utils.spectral_norm, nn.utils.weight_norm]


class SNDiscriminator(nn.Module):
    """An SN-GAN style discriminator, one BN in the middle (as in SNGAN's ablations)."""

    def __init__(self, wrap: Wrap) -> None:
        super().__init__()
        self.c1 = wrap(nn.Conv2d(3, 8, 3))
        self.act = nn.LeakyReLU(0.1)
        self.c2 = wrap(nn.Conv2d(8, 8, 3))
        self.bn = nn.BatchNorm2d(8)
        self.fc = wrap(nn.Linear(8 * 4 * 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.c1(x))
        x = self.act(self.bn(self.c2(x)))
        return self.fc(x.view(x.size(0), -1))


def _trained(wrap: Wrap, x: torch.Tensor) -> nn.Module:
    """After a training step: the hooks left ``weight`` as a non-leaf tensor."""
    torch.manual_seed(0)
    model = SNDiscriminator(wrap)
    model(x).sum().backward()
    return model.eval()


def _plain_tensor_types(model: nn.Module) -> set[type]:
    return {type(v) for m in model.modules() for v in vars(m).values()
            if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("wrap", _HOOKED, ids=lambda w: w.__name__)
def test_fake_runs_leave_no_fake_weight_and_no_foreign_warning(wrap: Wrap) -> None:
    # in float64: the dropped bias comes back through the BN, and float32 rounding of that,
    # summed with cancellation by `fc`, moved some outputs by more than float32's tolerance
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    model = SNDiscriminator(wrap).double().eval()  # as `bnplace rewrite --input-shape` loads it
    expected = model(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chains = find_chains(model, example_inputs=x)
        same = rewrite(model, Placement.BEFORE_ACTIVATION, example_inputs=x)
    assert [(w.category, str(w.message)) for w in caught] == []
    assert [(c.linear, c.placement) for c in chains] == [
        ("c1", Placement.NONE), ("c2", Placement.BEFORE_ACTIVATION)]
    assert _plain_tensor_types(model) == _plain_tensor_types(same) == {torch.Tensor}
    torch.save(same, io.BytesIO())
    same.get_submodule("c1_bn").running_var.fill_(1 - 1e-5)  # the inserted BN: an identity
    with torch.no_grad():
        torch.testing.assert_close(same.eval()(x), expected)


@pytest.mark.parametrize("wrap", _HOOKED, ids=lambda w: w.__name__)
def test_a_trained_model_with_computed_weights_rewrites_and_folds(wrap: Wrap) -> None:
    x = torch.randn(2, 3, 8, 8)
    model = _trained(wrap, x)
    new = rewrite(model, Placement.AFTER_ACTIVATION)
    assert [c.placement for c in find_chains(new)] == [Placement.AFTER_ACTIVATION] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no foreign warning either
        folded, report = fold_with_report(model, example_inputs=x)
    assert report.folded == [] and list(report.left) == ["bn"]
    assert report.left["bn"].startswith("`c2` computes its weight")
    torch.testing.assert_close(folded(x), model(x))
