"""Round 8 of user workflows nobody had tried: a --timeout shorter than any trial, and
DataLoaders over features that still carry an autograd graph."""

from __future__ import annotations

import io
import json
import time

import torch
from click.testing import CliRunner
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bnplace
from bnplace.cli import main
from tests.tune.conftest import tiny_mlp

FAST = {"epochs": 1, "device": "cpu", "progress": False, "pruner": "none"}


def test_a_timeout_before_the_first_trial_says_to_raise_the_timeout_and_exits_1(tmp_path):
    """Before, it said to raise --trials and that every trial's reason was in results.json."""
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "tune", "--model", "tests.tune.conftest:tiny_mlp", "--data", "synthetic",
        "--timeout", "0.0001", "--epochs", "1", "--device", "cpu", "--output", str(out)],
        env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert ("No trial finished: --timeout ran out before the first trial did; give a larger "
            "--timeout (each trial trains every epoch).\n") in result.output
    assert "Not tried" not in result.output and "--trials" not in result.output
    assert json.loads((out / "results.json").read_text())["trials"] == []


def _slow_mlp() -> nn.Module:
    time.sleep(0.3)  # longer than the timeout: the study ends after its first trial
    return tiny_mlp()


def test_placements_a_timeout_left_untried_say_to_raise_the_timeout(tmp_path):
    out = io.StringIO()
    result = bnplace.tune(_slow_mlp, data="synthetic", timeout=0.2, batch_size=64,
                          output=tmp_path, console=Console(file=out, width=200), **FAST)
    assert len(result.trials) == 1
    assert ("Not tried: after-activation, after-dropout, none; the study ended before reaching "
            "them (raise --timeout to compare every placement).\n") in out.getvalue()


def test_a_dataloader_over_features_with_autograd_history_trains_in_every_trial(tmp_path):
    """Before, every trial failed: "Trying to backward through the graph a second time"."""
    x, y = torch.randn(40, 64), torch.arange(40) % 10
    features = nn.Linear(64, 64)(x)  # a pretrained backbone run outside torch.no_grad()
    loaders = (DataLoader(TensorDataset(features[:30], y[:30]), batch_size=8),
               DataLoader(TensorDataset(features[30:], y[30:]), batch_size=8))
    result = bnplace.tune(tiny_mlp, data=lambda: loaders, trials=2, output=tmp_path,
                          placements="none,before-activation", **FAST)
    assert [(t["state"], t["reason"]) for t in result.trials] == [("COMPLETE", None)] * 2
