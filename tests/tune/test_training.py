"""The training loop's CPU thread policy."""

from __future__ import annotations

import torch
from torch import nn

from bnplace.tune.training import cpu_threads, default_threads


def test_small_models_train_on_one_cpu_thread_and_the_setting_is_restored() -> None:
    cpu = torch.device("cpu")
    assert default_threads(nn.Linear(64, 10), cpu) == 1
    assert default_threads(nn.Linear(2048, 2048), cpu) is None  # 4M parameters: torch decides
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
