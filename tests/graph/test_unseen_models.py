"""Models in the style of published code the graph pass had not met before (MobileNet,
EfficientNet, Inception, DCGAN, models with frozen parts or TorchScript pieces): each is rewritten
exactly, or left with a reason, never silently changed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import rewrite

_BatchNorm = nn.modules.batchnorm._BatchNorm


class FrozenBackbone(nn.Module):
    """Fine-tuning: a pretrained backbone kept in eval mode under a training head."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.mid = nn.Linear(16, 16)
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu6(self.mid(self.backbone(x))))


def test_an_inserted_batchnorm_takes_the_mode_of_its_layer() -> None:
    model = FrozenBackbone()
    model.backbone.eval()
    new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert [(name, m.training) for name, m in new.named_modules()
            if isinstance(m, _BatchNorm)] == [("backbone.0_bn", False), ("mid_bn", True)]

    model.eval()  # an eval-mode model: the traced rewrite of a functional chain
    new = rewrite(model, Placement.AFTER_ACTIVATION)
    assert {m.training for m in new.modules()} == {False}
    x = torch.randn(1, 8)  # one sample: a BN left in training mode would raise
    before = [m.running_mean.clone() for m in new.modules() if isinstance(m, _BatchNorm)]
    assert new(x).shape == (1, 2)
    after = [m.running_mean for m in new.modules() if isinstance(m, _BatchNorm)]
    assert all(torch.equal(a, b) for a, b in zip(before, after)) and len(after) == 2
