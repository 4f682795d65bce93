"""Blocks from published code met for the first time: RepVGG's summed branches and models
compiled with torch.compile. Each is rewritten exactly, or left with a reason."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bnplace import Placement
from bnplace.graph import BnplaceWarning, TraceError, find_chains, fold_with_report, rewrite
from tests.graph.helpers import outputs, trained_statistics


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, padding: int) -> nn.Sequential:
    result = nn.Sequential()
    result.add_module("conv", nn.Conv2d(cin, cout, kernel, stride, padding, bias=False))
    result.add_module("bn", nn.BatchNorm2d(cout))
    return result


class RepVGGBlock(nn.Module):
    """The RepVGG reference block (training form): 3x3 conv+BN, 1x1 conv+BN and an identity BN
    summed before the ReLU, through an ``se`` that is ``nn.Identity`` by default."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.nonlinearity = nn.ReLU()
        self.se = nn.Identity()
        self.rbr_identity = nn.BatchNorm2d(cin) if cout == cin and stride == 1 else None
        self.rbr_dense = _conv_bn(cin, cout, 3, stride, 1)
        self.rbr_1x1 = _conv_bn(cin, cout, 1, stride, 0)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        id_out = 0 if self.rbr_identity is None else self.rbr_identity(inputs)
        return self.nonlinearity(self.se(self.rbr_dense(inputs) + self.rbr_1x1(inputs) + id_out))


class RepVGG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stage0 = RepVGGBlock(3, 8, stride=2)
        self.stage1 = RepVGGBlock(8, 8)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.gap(self.stage1(self.stage0(x)))
        return self.linear(out.view(out.size(0), -1))



def test_repvgg_branches_summed_before_the_relu_are_chains_left_as_they_are() -> None:
    x = torch.randn(4, 3, 8, 8)
    model = trained_statistics(RepVGG(), x)
    chains = find_chains(model)
    assert [(c.linear, c.activation, c.batchnorm, c.placement, c.skipped) for c in chains] == [
        (f"{stage}.{branch}.conv", f"{stage}.nonlinearity", f"{stage}.{branch}.bn",
         Placement.BEFORE_ACTIVATION, f"`{add}` sums the output of `{stage}.{branch}.bn` with "
                                      f"another branch before the activation")
        for stage, add in (("stage0", "add"), ("stage1", "add_2"))
        for branch in ("rbr_dense", "rbr_1x1")]
    with pytest.warns(BnplaceWarning) as caught:
        new = rewrite(model, Placement.AFTER_ACTIVATION)
    assert len(caught) == 4 and all("left at before-activation" in str(w.message) for w in caught)
    for train in (True, False):
        torch.testing.assert_close(outputs(new, x, train), outputs(model, x, train),
                                   rtol=0, atol=0)
    folded, report = fold_with_report(model, example_inputs=x)
    assert [(f.batchnorm, f.into) for f in report.folded] == [
        (f"{stage}.{branch}.bn", f"{stage}.{branch}.conv")
        for stage in ("stage0", "stage1") for branch in ("rbr_dense", "rbr_1x1")]
    assert list(report.left) == ["stage1.rbr_identity"]
    torch.testing.assert_close(folded(x), model.eval()(x))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
        self.head = nn.Linear(16, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.head(self.body(x))))


def test_a_torch_compiled_submodule_is_kept_whole_and_named() -> None:
    model = Net().eval()
    model.body = torch.compile(model.body, backend="eager")
    x = torch.randn(4, 8)
    chains = find_chains(model)
    assert [c.linear for c in chains] == ["head"]
    assert chains.untraced == {"body": "a torch.compile module: its compiled forward is kept as "
                                       "it is (rewrite the model before compiling it)"}
    with pytest.warns(BnplaceWarning, match="left untraced .*`body`: a torch.compile module"):
        new = rewrite(model, Placement.NONE)
    torch.testing.assert_close(new(x), model(x), rtol=0, atol=0)


def test_a_torch_compiled_model_is_a_one_line_trace_error() -> None:
    compiled = torch.compile(Net(), backend="eager")
    with pytest.raises(TraceError) as caught:
        rewrite(compiled, Placement.BEFORE_ACTIVATION)
    assert str(caught.value) == ("Net is compiled with torch.compile, whose forward fx cannot "
                                 "trace: pass the model before compiling it (`model._orig_mod`)")
