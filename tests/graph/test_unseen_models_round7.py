"""Round seven: small chain-holding models in the states users hand them over, not new
architectures. Pinned: pruned layers (``torch.nn.utils.prune``), eager quantization stubs and
fused ``torch.ao.nn.intrinsic`` modules, SWA/EMA ``AveragedModel``, half precision and
``channels_last``. Found and fixed:

* a layer whose *bias* is pruned: ``drop_bias`` raised a KeyError (the bias a pruning hook
  computes is no parameter to remove); it now stays;
* a layer with a forward hook (feature extraction) lost its bias to ``drop_bias``, so the hook saw
  other values; a BN with a forward hook was folded away, and its hook never fired again. Both
  now stay;
* ``AveragedModel(nn.Sequential(...))`` did not trace at all: ``self.module.parameters()`` in
  ``update_parameters`` counted as picking the Sequential's layers by position;
* an ``nn.DataParallel`` *submodule* was kept whole by fx, so its chains went unseen (no chain,
  "not called by the model's forward"); it is now a TraceError like a wrapped model.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.ao.nn.intrinsic as nni
import torch.ao.quantization as tq
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from bnplace import Placement
from bnplace.graph import (TraceError, drop_redundant_bias, find_chains, fold, fold_with_report,
                           rewrite)
from tests.graph.helpers import batchnorm_count, outputs, trained_statistics
from tests.graph.test_unseen_models_round4 import _trains


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.bn1 = nn.BatchNorm1d(8)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(F.relu(self.bn1(self.fc1(x)))))


def _mlp_sequential() -> nn.Sequential:
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(8, 3))


class QuantReady(nn.Module):
    """Eager-mode quantization: stubs around a Conv → BN → ReLU → Dropout chain."""

    def __init__(self) -> None:
        super().__init__()
        self.quant = tq.QuantStub()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.drop = nn.Dropout(0.2)
        self.conv2 = nn.Conv2d(8, 4, 1)
        self.dequant = tq.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.conv2(self.drop(self.relu(self.bn(self.conv(self.quant(x)))))))


def _pruned(bias: bool) -> nn.Module:
    model = MLP()
    for layer in (model.fc1, model.fc2):
        prune.l1_unstructured(layer, "weight", amount=0.5)
        if bias:
            prune.l1_unstructured(layer, "bias", amount=0.5)
    return model


def _pruned_and_removed() -> nn.Module:
    model = _pruned(bias=False)
    prune.remove(model.fc1, "weight")
    return model


def _fused_for_qat() -> nn.Module:
    return tq.fuse_modules_qat(QuantReady().train(), [["conv", "bn", "relu"]])


def _intrinsic() -> nn.Module:
    return nn.Sequential(
        nni.ConvBnReLU2d(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
        nn.Dropout(0.2), nn.Conv2d(8, 4, 1))


def _averaged() -> nn.Module:
    return AveragedModel(_mlp_sequential(), multi_avg_fn=get_ema_multi_avg_fn(0.99))


torch.manual_seed(0)
_X, _IMAGES = torch.randn(5, 6), torch.randn(2, 3, 6, 6)


def _tolerance(x: torch.Tensor) -> dict[str, float]:
    """float32: 1e-5; half precision (values near 1, 11 bits): a few units in the last place."""
    return {"rtol": 1e-5, "atol": 1e-5} if x.dtype == torch.float32 else {"rtol": 4e-3,
                                                                          "atol": 4e-3}


@pytest.mark.parametrize(("make", "x", "foldable"), [
    (lambda: _pruned(bias=False), _X, False),  # fc1 computes its weight: left, with why
    (lambda: _pruned(bias=True), _X, False),
    (_pruned_and_removed, _X, True),
    (QuantReady, _IMAGES, True),
    (_fused_for_qat, _IMAGES, True),
    (_intrinsic, _IMAGES, True),
    (_averaged, _X, True),
    (lambda: MLP().half(), _X.half(), True),
    (lambda: MLP().to(memory_format=torch.channels_last), _X, True),
    (lambda: QuantReady().to(memory_format=torch.channels_last),
     _IMAGES.to(memory_format=torch.channels_last), True)])
def test_a_model_in_a_users_state_keeps_its_outputs(make, x: torch.Tensor,
                                                     foldable: bool) -> None:
    torch.manual_seed(0)
    model = make()
    chains = find_chains(model)
    assert [(c.placement, c.skipped) for c in chains] == [(Placement.BEFORE_ACTIVATION, None)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AveragedModel's own forward(*args) is left untraced
        same = rewrite(model, Placement.BEFORE_ACTIVATION, drop_bias=False)
        lean = drop_redundant_bias(model)
        for train in (True, False):
            expected = outputs(model, x, train)
            assert torch.equal(outputs(same, x, train), expected)
            torch.testing.assert_close(outputs(lean, x, train), expected, **_tolerance(x))
        if x.dtype is torch.float32:
            for placement in Placement:
                _trains(rewrite(model, placement), x)
        model = trained_statistics(model, x)
        folded, report = fold_with_report(model)
    assert len(report.folded) == foldable and len(report.left) == (not foldable)
    assert batchnorm_count(folded) == batchnorm_count(model) - foldable
    torch.testing.assert_close(outputs(folded, x, False), outputs(model, x, False),
                               **_tolerance(x))


def test_a_pruned_bias_stays_where_drop_bias_would_remove_it() -> None:
    torch.manual_seed(0)
    model = _pruned(bias=True)
    lean = drop_redundant_bias(model)
    assert torch.equal(lean.fc1.bias_orig, model.fc1.bias_orig)
    assert torch.equal(lean.bn1.running_mean, model.bn1.running_mean)
    new = rewrite(model, Placement.AFTER_ACTIVATION)
    assert set(new.state_dict()) == set(model.state_dict())  # a fresh rewrite's keys: it loads


def test_forward_hooks_see_the_same_values_after_drop_bias_and_fold() -> None:
    torch.manual_seed(0)
    model = trained_statistics(MLP(), _X)
    seen: dict[str, torch.Tensor] = {}
    for name in ("fc1", "bn1"):
        model.get_submodule(name).register_forward_hook(
            lambda module, args, out, name=name: seen.__setitem__(name, out))
    model(_X)
    expected = dict(seen)
    for new in (drop_redundant_bias(model), rewrite(model, Placement.BEFORE_ACTIVATION),
                fold(model)):
        seen.clear()
        new.eval()(_X)
        assert seen.keys() == expected.keys()
        for name, value in expected.items():
            torch.testing.assert_close(seen[name], value, rtol=0, atol=0)
    assert fold_with_report(model)[1].left == {
        "bn1": "it has forward hooks, which would stop firing once it is merged away"}


class WithParallelPart(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.DataParallel(MLP())
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@pytest.mark.parametrize("run", [find_chains, drop_redundant_bias, fold,
                                 lambda m: rewrite(m, Placement.NONE)])
def test_a_data_parallel_submodule_is_refused_like_a_wrapped_model(run) -> None:
    with pytest.raises(TraceError) as caught:
        run(WithParallelPart())
    assert str(caught.value) == (
        "`body` is a DataParallel, which only runs MLP on several devices: unwrap it first "
        "(`model.body = model.body.module`), and wrap that part of the model bnplace returns "
        "again")
