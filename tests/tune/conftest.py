"""Shared helpers for the tuner tests: a tiny model, CLI runs and reading a study back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from bnplace.tune.storage import is_counted
from examples.models import MLP

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = "examples/models.py:MLP"
TINY_KWARGS = '{"hidden": [16]}'


def tiny_mlp() -> MLP:
    """One hidden chain of 16 units: trains an epoch of digits in a few milliseconds."""
    return MLP(hidden=(16,))


def cli(*args: str) -> list[str]:
    """The command line of ``bnplace tune`` on the tiny model, run from this checkout."""
    return [sys.executable, "-m", "bnplace", "tune", "--model", TINY_MODEL,
            "--model-kwargs", TINY_KWARGS, *args]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout)


def trials_of(storage: str, study_name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)


def counted(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if is_counted(t)]


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
