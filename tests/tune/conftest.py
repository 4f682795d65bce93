"""Shared helpers for the tuner tests: a tiny model, CLI runs and reading a study back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from collections.abc import Iterator

import optuna
import pytest
import torch
from torch import nn

from bnplace.tune.storage import is_counted, with_installed_driver
from examples.models import MLP

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = "examples/models.py:MLP"
TINY_KWARGS = '{"hidden": [16]}'


def tiny_mlp() -> MLP:
    """One hidden chain of 16 units: trains an epoch of digits in a few milliseconds."""
    return MLP(hidden=(16,))


class TokenBag(nn.Module):
    """Embeds integer token ids: its inputs must stay integers."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.hidden = nn.Sequential(nn.Linear(16, 16), nn.ReLU())
        self.out = nn.Linear(16, 10)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(self.embed(tokens).mean(dim=1)))


def integer_pairs(high: int, features: int):
    """(train, val) of 30 and 10 rows of integer features below ``high``."""
    x, y = torch.randint(0, high, (40, features)), torch.arange(40) % 10  # each class in both
    return (x[:30], y[:30]), (x[30:], y[30:])


def cli(*args: str) -> list[str]:
    """The command line of ``bnplace tune`` on the tiny model, run from this checkout."""
    return [sys.executable, "-m", "bnplace", "tune", "--model", TINY_MODEL,
            "--model-kwargs", TINY_KWARGS, *args]


# One torch thread per worker process: two workers with a thread per core each would
# oversubscribe a 2-core machine, and OpenMP's spin-waits then slow training a hundredfold.
WORKER_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(cli(*args), cwd=REPO, env={**WORKER_ENV, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), cwd=REPO, env=WORKER_ENV, capture_output=True, text=True,
                          timeout=timeout)


def trials_of(storage: str, study_name: str) -> list[optuna.trial.FrozenTrial]:
    storage = with_installed_driver(storage)
    return optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)


def counted(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if is_counted(t)]


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and lose a lot to spin-waits on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
