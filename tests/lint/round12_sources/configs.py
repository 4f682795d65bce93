from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch.nn as nn


@dataclass
class MLPConfig:
    in_dim: int = 32
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    out_dim: int = 10
    dropout: float = 0.1
    norm: Literal["batch", "layer", "none"] = "batch"


def norm_for(cfg: MLPConfig, width: int) -> nn.Module:
    if cfg.norm == "batch":
        return nn.BatchNorm1d(width)
    if cfg.norm == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


class MLP(nn.Module):
    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        dims = [cfg.in_dim, *cfg.hidden]
        blocks: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            blocks += [nn.Linear(a, b), norm_for(cfg, b), nn.GELU(), nn.Dropout(cfg.dropout)]
        self.body: nn.Sequential = nn.Sequential(*blocks)
        self.head: nn.Linear = nn.Linear(dims[-1], cfg.out_dim)
        self.proj: nn.Sequential = nn.Sequential(nn.Linear(cfg.in_dim, 16), nn.BatchNorm1d(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h: torch.Tensor = self.body(x)
        return self.head(h)
