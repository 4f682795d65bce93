"""Round eleven: a BatchNorm inside a ``torch.jit.script``ed submodule (or scripted itself) was
missing from ``fold_with_report``'s ``report.left``: scripting turns it into a
``RecursiveScriptModule``, no ``_BatchNorm``, so the walk over never-called BNs passed it over and
a reader could not tell it stayed. It is now named, with the untraced part's reason.

Tried in the same round and already right (no test needed beyond the suites): a Conformer conv
module (GLU, depthwise Conv1d + BatchNorm1d), PointNet, Wide&Deep, a TCN with weight norm and
chomp, ``BatchNorm2d(affine=False)``, a Siamese network calling one backbone twice.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bnplace.graph import fold_with_report
from bnplace.graph.tracing import SCRIPTED

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning")


class WithScripted(nn.Module):
    """A traced stem, then a scripted block holding a BN, then a scripted BN on its own."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.block = torch.jit.script(nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4),
                                                    nn.ReLU()))
        self.norm = torch.jit.script(nn.BatchNorm2d(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.block(self.stem(x)))


def test_scripted_batchnorms_are_named_in_report_left() -> None:
    torch.manual_seed(0)
    model = WithScripted().eval()
    x = torch.randn(2, 3, 9, 9)
    folded, report = fold_with_report(model, x)
    assert [f.batchnorm for f in report.folded] == ["stem.1"]
    assert report.left == {
        "block.1": f"inside `block`, whose forward does not trace ({SCRIPTED})",
        "norm": f"it is not traced: {SCRIPTED}",
    }
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x))


def test_only_scripted_batchnorms_are_reported() -> None:
    """A scripted BatchNorm1d is named; a scripted Conv beside it is no BN and is not."""
    model = nn.Sequential(nn.Linear(3, 4), torch.jit.script(nn.Linear(4, 4)),
                          torch.jit.script(nn.BatchNorm1d(4)), nn.ReLU()).eval()
    _, report = fold_with_report(model, torch.randn(2, 3))
    assert report.folded == []
    assert report.left == {"2": f"it is not traced: {SCRIPTED}"}
