"""Round 7 of user workflows nobody had tried: data as people return it, models bound with
functools.partial, and a weight decay the report must name."""

from __future__ import annotations

import functools
import io
import json

import numpy as np
import pytest
import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import bnplace
from bnplace.loading import SpecError
from bnplace.tune.data import load_data
from bnplace.tune.options import TuneInputError
from examples.models import MLP
from tests.tune.conftest import tiny_mlp

FAST = {"epochs": 1, "device": "cpu", "progress": False, "pruner": "none"}


def _pairs():
    x, y = torch.randn(40, 64), torch.arange(40) % 10  # every class in train and val
    return (x[:30], y[:30]), (x[30:], y[30:])


def test_class_names_as_text_are_a_one_line_error_saying_to_encode_them():
    (train_x, _), val = _pairs()
    names = np.array(["cat", "dog"] * 15)  # labels read from a CSV column, as text
    with pytest.raises(SpecError) as refused:
        load_data(lambda: ((train_x.numpy(), names), val), MLP())
    assert str(refused.value) == (
        "the train targets hold text ('cat', ...), not numbers: turn class names into class "
        "indices 0..K-1 first (sklearn's LabelEncoder, or numpy.unique(y, return_inverse=True)[1])")


def test_ragged_inputs_are_a_one_line_error():
    train, (_, val_y) = _pairs()
    with pytest.raises(SpecError) as refused:
        load_data(lambda: (train, ([[0.0] * 64] * 9 + [[0.0]], val_y)), MLP())
    assert str(refused.value) == ("the val inputs cannot become a tensor: ValueError: expected "
                                  "sequence of length 64 at dim 1 (got 1)")


def test_features_computed_with_autograd_history_train_in_every_trial(tmp_path):
    """Features from a pretrained network run outside torch.no_grad() carry its graph: before,
    every trial's second step failed ("Trying to backward through the graph a second time")."""
    (train_x, train_y), (val_x, val_y) = _pairs()
    backbone = nn.Linear(64, 64)
    features = ((backbone(train_x), train_y), (backbone(val_x), val_y))
    result = bnplace.tune(tiny_mlp, data=features, trials=2, placements="none,before-activation",
                          batch_size=8, output=tmp_path, **FAST)
    assert [(t["state"], t["reason"]) for t in result.trials] == [("COMPLETE", None)] * 2


class Rows(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int):
        return self.x[index], self.y[index], index  # the index too, for logging


def _train_test_split_order():
    (train_x, train_y), (val_x, val_y) = _pairs()
    return [train_x, val_x, train_y, val_y]


@pytest.mark.parametrize("make, message", [
    (lambda train, val: (DataLoader(Rows(*train), batch_size=8), val),
     "the train DataLoader must yield (inputs, targets) pairs of tensors, got a list of 3: "
     "(Tensor, Tensor, Tensor)"),
    (lambda train, val: (DataLoader(TensorDataset(*train), batch_size=8,
                                    collate_fn=lambda rows: tuple(np.stack(part) for part in
                                                                  zip(*rows))), val),
     "the train DataLoader must yield (inputs, targets) pairs of tensors, got a tuple of 2: "
     "(ndarray, ndarray)"),
    (lambda train, val: (train, Rows(*val)),
     "val data must be an (inputs, targets) pair, a TensorDataset or a DataLoader, got Rows: "
     "wrap it in a DataLoader (DataLoader(dataset, batch_size=64, shuffle=True) for the train "
     "set)"),
    (lambda train, val: _train_test_split_order(),
     "data 'data' must return (train, val), got a list of 4: train_test_split's X_train, "
     "X_val, y_train, y_val? return ((X_train, y_train), (X_val, y_val))"),
])
def test_data_in_a_form_the_tuner_does_not_read_says_what_it_got(make, message):
    train, val = _pairs()

    def data():
        return make(train, val)

    with pytest.raises(SpecError) as refused:
        load_data(data, MLP())
    assert str(refused.value) == message


def _mlp(hidden: int, p: float) -> nn.Module:
    return nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(p), nn.Linear(hidden, 10))


def test_two_partials_of_one_function_do_not_share_a_study(tmp_path):
    """Both build an nn.Sequential of as many parameters: recorded as 'functools:partial', the
    second joined the first's study and mixed its trials in."""
    options = {"data": _pairs(), "trials": 1, "placements": "none", "batch_size": 8,
               "output": tmp_path, **FAST}
    bnplace.tune(functools.partial(_mlp, 16, p=0.1), **options)
    again = bnplace.tune(functools.partial(_mlp, 16, p=0.1), **options)  # the same: resumes
    assert len(again.trials) == 1
    with pytest.raises(TuneInputError) as refused:
        bnplace.tune(functools.partial(_mlp, 16, p=0.5), **options)
    name = f"{__name__}:_mlp"
    assert str(refused.value) == (
        f"study 'Sequential-data' was started with other settings (model '{name}(16, p=0.1)' -> "
        f"'{name}(16, p=0.5)'); run it with the same ones, or choose another --study-name or "
        "--output")


def test_a_searched_weight_decay_of_the_winner_is_reported(tmp_path):
    """Before, only the trial list held it: the winner could not be trained again from the
    report's `best`, its row or the console."""
    out = io.StringIO()
    result = bnplace.tune(tiny_mlp, data=_pairs(), trials=1, placements="none", batch_size=8,
                          weight_decay=True, output=tmp_path, **FAST,
                          console=Console(file=out, width=200))
    decay = result.trials[0]["params"]["weight_decay"]
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["best"]["weight_decay"] == document["by_placement"]["none"]["weight_decay"] \
        == decay == pytest.approx(1e-4)
    assert f"Winner: none at lr 0.0316, weight decay {decay:.3g} — " in out.getvalue()
    without = bnplace.tune(tiny_mlp, data=_pairs(), trials=1, placements="none", batch_size=8,
                           output=tmp_path / "plain", **FAST, console=Console(file=io.StringIO()))
    assert "weight_decay" not in without.best and "weight_decay" not in without.by_placement["none"]
