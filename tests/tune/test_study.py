"""End-to-end studies through the Python API on CPU, a few seconds each."""

from __future__ import annotations

import io
import json
import math
import warnings

import jsonschema
import optuna
import pytest
import torch
from rich.console import Console
from torch import nn

import bnplace
from bnplace.placement import Placement
from bnplace.tune.data import load_data
from bnplace.tune.options import TuneInputError, TuneOptions
from bnplace.tune.storage import SETTINGS
from bnplace.tune.training import accuracy, resolve_device
from bnplace.tune.variants import NoChainError
from examples import models as bnplace_models
from tests.tune.conftest import TokenBag, integer_pairs, tiny_mlp

NUMBER_OR_NULL = {"type": ["number", "null"]}
RESULTS_SCHEMA = {
    "type": "object",
    "required": ["best", "by_placement", "trials"],
    "properties": {
        "best": {"type": ["object", "null"],
                 "required": ["placement", "lr", "val_accuracy", "trial"],
                 "properties": {"placement": {"enum": [p.value for p in Placement]},
                                "lr": {"type": "number"}, "val_accuracy": {"type": "number"},
                                "trial": {"type": "integer"}}},
        "by_placement": {"type": "object", "additionalProperties": {
            "type": "object",
            "required": ["best_val_accuracy", "lr", "trials", "epoch_seconds"],
            "properties": {"best_val_accuracy": NUMBER_OR_NULL, "lr": NUMBER_OR_NULL,
                           "trials": {"type": "integer"}, "epoch_seconds": NUMBER_OR_NULL}}},
        "trials": {"type": "array", "items": {
            "type": "object",
            "required": ["number", "state", "params", "value", "reason"],
            "properties": {"number": {"type": "integer"},
                           "state": {"enum": ["COMPLETE", "PRUNED", "FAIL"]},
                           "params": {"type": "object"}, "value": NUMBER_OR_NULL,
                           "reason": {"type": ["string", "null"]}}}},
    },
}


def test_study_tries_every_placement_and_writes_its_results(tmp_path):
    result = bnplace.tune(tiny_mlp, trials=6, epochs=2, output=tmp_path, progress=False)

    document = json.loads((tmp_path / "results.json").read_text())
    jsonschema.validate(document, RESULTS_SCHEMA)
    assert document["best"] == result.best
    first_four = sorted(document["trials"], key=lambda t: t["number"])[:4]
    assert {t["params"]["placement"] for t in first_four} == {p.value for p in Placement}
    assert sum(row["trials"] for row in document["by_placement"].values()) == 6
    best_row = document["by_placement"][result.best["placement"]]
    assert best_row["best_val_accuracy"] == result.best["val_accuracy"]
    assert document["by_placement"]["none"]["overhead_vs_none"] == 0
    for name in ("accuracy_vs_lr.png", "learning_curves.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("build", [tiny_mlp, bnplace_models.SmallCNN], ids=["mlp", "cnn"])
def test_saved_winner_reproduces_the_reported_accuracy(tmp_path, build):
    """Also where trials train on CUDA under bf16: the saved float32 model, on CPU, scores what
    the report says."""
    result = bnplace.tune(build, trials=4, epochs=2, output=tmp_path, progress=False)

    data = load_data("digits", build())
    winner = torch.load(tmp_path / "winner.pt", weights_only=False)
    assert accuracy(winner, data.val, torch.device("cpu")) == result.best["val_accuracy"]
    exported = torch.export.load(tmp_path / "winner.pt2").module()  # eval mode, batch of any size
    with torch.no_grad():
        hits = (exported(data.val.inputs).argmax(1) == data.val.targets).float().mean().item()
    assert hits == pytest.approx(result.best["val_accuracy"])
    state = torch.load(tmp_path / "winner_state_dict.pt")
    assert state.keys() == winner.state_dict().keys()


def test_studies_sharing_an_output_folder_keep_their_own_winners(tmp_path):
    def narrow():
        return bnplace_models.MLP(hidden=(8,))

    first = bnplace.tune(tiny_mlp, trials=1, epochs=1, study_name="wide", output=tmp_path,
                         progress=False)
    weights = torch.load(tmp_path / "winner_state_dict.pt")
    bnplace.tune(narrow, trials=1, epochs=1, study_name="narrow", output=tmp_path, progress=False)

    again = bnplace.tune(tiny_mlp, trials=1, epochs=1, study_name="wide", output=tmp_path,
                         progress=False)   # the report again: the narrow study's trial 0 is no help

    assert again.best == first.best
    for name, tensor in torch.load(tmp_path / "winner_state_dict.pt").items():
        torch.testing.assert_close(tensor, weights[name])


def test_a_study_of_fewer_trials_than_placements_names_the_ones_not_tried(tmp_path):
    console = Console(file=io.StringIO(), width=200)
    result = bnplace.tune(tiny_mlp, trials=2, epochs=1, output=tmp_path, progress=False,
                          console=console)

    assert [row["trials"] for row in result.by_placement.values()] == [1, 1, 0, 0]
    assert ("Not tried: after-dropout, none; the study ended before reaching them (raise --trials "
            "to compare every placement).") in console.file.getvalue().splitlines()


def test_grid_sampler_covers_every_cell_once(tmp_path):
    placements = ("none", "before-activation")
    result = bnplace.tune(tiny_mlp, sampler="grid", pruner="none", placements=placements, epochs=1,
                          lr_min=1e-3, lr_max=1e-1, output=tmp_path, progress=False)

    ladder = TuneOptions(lr_min=1e-3, lr_max=1e-1).lr_ladder()
    cells = sorted((t["params"]["placement"], t["params"]["lr"]) for t in result.trials)
    assert cells == sorted((p, lr) for p in placements for lr in ladder)
    assert [t["state"] for t in result.trials] == ["COMPLETE"] * 16


def test_huge_learning_rate_is_pruned_as_diverged_without_nan_in_storage(tmp_path):
    # 1e37 overflows float32 on every device; at 1e12 a ReLU net can die instead, its loss
    # finite: on CUDA's random stream one such trial completed at 10 %
    result = bnplace.tune(tiny_mlp, trials=4, epochs=3, lr_min=1e37, lr_max=1e38,
                          placements=("none",), output=tmp_path, progress=False)

    assert result.best is None
    assert [t["state"] for t in result.trials] == ["PRUNED"] * 4
    assert all(t["reason"].startswith("diverged: the loss became NaN or infinite in epoch")
               for t in result.trials)
    assert all(t["value"] is None or math.isfinite(t["value"]) for t in result.trials)
    assert result.by_placement["none"]["best_val_accuracy"] is None


def test_a_failing_trial_is_recorded_and_the_study_goes_on(tmp_path):
    calls = []

    def flaky_model() -> nn.Module:
        calls.append(1)
        if len(calls) in (3, 4):  # the first call is the up-front check, then one per trial
            raise RuntimeError("out of memory (simulated)")
        return tiny_mlp()

    result = bnplace.tune(flaky_model, trials=5, epochs=1, output=tmp_path, progress=False)

    states = {t["number"]: (t["state"], t["reason"]) for t in result.trials}
    assert states[1] == states[2] == ("FAIL", "RuntimeError: out of memory (simulated)")
    assert [states[n][0] for n in (0, 3, 4)] == ["COMPLETE"] * 3
    assert result.best is not None


def test_model_without_a_chain_is_refused_before_training(tmp_path):
    with pytest.raises(NoChainError, match="no linear → activation chain"):
        bnplace.tune(lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), trials=1,
                     output=tmp_path, progress=False)
    assert not (tmp_path / "study.db").exists()


def test_same_command_again_runs_only_missing_trials(tmp_path):
    first = bnplace.tune(tiny_mlp, trials=3, epochs=1, output=tmp_path, progress=False)
    second = bnplace.tune(tiny_mlp, trials=5, epochs=1, output=tmp_path, progress=False)

    assert second.trials[:3] == first.trials
    assert [t["number"] for t in second.trials] == [0, 1, 2, 3, 4]


def test_fewer_trials_than_the_study_holds_runs_none_and_says_the_table_covers_all(tmp_path):
    bnplace.tune(tiny_mlp, trials=2, epochs=1, output=tmp_path, progress=False)
    console = Console(file=io.StringIO(), width=200)
    again = bnplace.tune(tiny_mlp, trials=1, epochs=1, output=tmp_path, console=console)

    assert len(again.trials) == 2
    assert ("More trials than asked for: the study already held 2 trials (--trials 1), so none "
            "was run; the table covers all 2.") in console.file.getvalue()


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_resumed_study_draws_new_learning_rates_and_a_fresh_one_repeats(tmp_path, sampler):
    def study(folder, trials):
        return bnplace.tune(tiny_mlp, placements=("none",), sampler=sampler, trials=trials,
                            epochs=1, output=tmp_path / folder, progress=False)

    study("resumed", 2)
    resumed = [t["params"]["lr"] for t in study("resumed", 4).trials]
    assert len(set(resumed)) == 4
    assert [t["params"]["lr"] for t in study("fresh", 2).trials] == resumed[:2]


def test_a_study_refuses_to_resume_with_other_settings(tmp_path):
    bnplace.tune(tiny_mlp, trials=1, epochs=1, output=tmp_path, progress=False)
    with pytest.raises(ValueError, match="epochs 1 -> 2"):
        bnplace.tune(tiny_mlp, trials=2, epochs=2, output=tmp_path, progress=False)


def test_another_unnamed_dataset_is_refused_not_mixed_into_the_study(tmp_path):
    digits = load_data("digits", tiny_mlp())
    pair = (digits.train.inputs, digits.train.targets), (digits.val.inputs, digits.val.targets)
    bnplace.tune(tiny_mlp, pair, trials=1, epochs=1, output=tmp_path, progress=False)
    smaller = (pair[0][0][:500], pair[0][1][:500]), pair[1]
    with pytest.raises(TuneInputError, match="data_shape .*'train': 1437.* -> .*'train': 500"):
        bnplace.tune(tiny_mlp, smaller, trials=2, epochs=1, output=tmp_path, progress=False)


def test_a_study_started_before_a_setting_was_recorded_resumes(tmp_path):
    first = bnplace.tune(tiny_mlp, trials=1, epochs=1, output=tmp_path, progress=False)
    study = optuna.load_study(study_name=first.study_name, storage=first.storage)
    older = {k: v for k, v in study.user_attrs[SETTINGS].items() if k != "data_shape"}
    study.set_user_attr(SETTINGS, older)   # as an earlier bnplace recorded it

    again = bnplace.tune(tiny_mlp, trials=2, epochs=1, output=tmp_path, progress=False)
    assert [t["number"] for t in again.trials] == [0, 1]


def test_a_batch_size_of_one_is_refused_before_training(tmp_path):
    with pytest.raises(TuneInputError, match="batch-size must be at least 2, got 1"):
        bnplace.tune(tiny_mlp, batch_size=1, output=tmp_path, progress=False)
    assert not list(tmp_path.iterdir())


def test_placements_as_the_command_lines_comma_separated_text():
    chosen = TuneOptions(placements="none, after-activation").placements
    assert chosen == (Placement.AFTER_ACTIVATION, Placement.NONE)   # not "unknown placement 'n'"


@pytest.mark.parametrize("options, message", [
    ({"epoch": 3}, "unknown option 'epoch'; did you mean 'epochs'?"),
    ({"model_kwarg": {}}, "unknown option 'model_kwarg'; did you mean 'model_kwargs'?"),
    ({"colour": True}, "unknown option 'colour'; choose from: placements, trials, epochs, "
                       "batch_size, lr_min, lr_max, weight_decay, sampler, pruner, storage, "
                       "study_name, device, seed, timeout, output, heartbeat, threads, progress, "
                       "data, model_kwargs, console"),
])
def test_a_misspelt_option_names_the_closest_valid_one_before_anything_runs(
        tmp_path, options, message):
    def never_built():
        raise AssertionError("no model is built for a misspelt option")

    with pytest.raises(TuneInputError) as refused:
        bnplace.tune(never_built, output=tmp_path, **options)
    assert str(refused.value) == message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, message", [
    ({"trials": "3"}, "trials must be an integer, got '3'"),
    ({"epochs": 2.5}, "epochs must be an integer, got 2.5"),
    ({"lr_max": "1"}, "lr-max must be a number, got '1'"),
    ({"batch_size": True}, "batch-size must be an integer, got True"),
])
def test_a_setting_of_the_wrong_type_is_named_before_anything_runs(tmp_path, options, message):
    with pytest.raises(TuneInputError) as refused:
        bnplace.tune(tiny_mlp, output=tmp_path, **options)
    assert str(refused.value) == message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model_fn, message", [
    (bnplace_models.MLP(), "model_fn is a model instance (MLP), not a class or function: give "
                           "its class, or a function that builds a new model (every trial "
                           "trains a fresh one)"),
    (lambda: None, "model_fn returned NoneType, not a torch.nn.Module"),
    ("not a spec", "bad spec 'not a spec': expected 'package.module:Name' or "
                   "'path/to/file.py:Name'"),
])
def test_a_model_fn_that_builds_no_model_is_refused_on_one_line(tmp_path, model_fn, message):
    with pytest.raises(ValueError) as refused:   # TuneInputError, or the spec's SpecError
        bnplace.tune(model_fn, output=tmp_path, progress=False)
    assert str(refused.value) == message
    assert list(tmp_path.iterdir()) == []


def test_model_kwargs_reach_a_python_callable(tmp_path):
    result = bnplace.tune(bnplace_models.MLP, model_kwargs={"hidden": [8]}, trials=1, epochs=1,
                          output=tmp_path, progress=False)
    state = torch.load(tmp_path / "winner_state_dict.pt")
    assert result.best is not None
    assert {tuple(t.shape) for name, t in state.items() if name.endswith("weight")} >= {(8, 64)}


def test_the_same_placements_in_another_order_resume_the_study(tmp_path):
    bnplace.tune(tiny_mlp, placements=("none", "before-activation"), trials=1, epochs=1,
                 output=tmp_path, progress=False)
    again = bnplace.tune(tiny_mlp, placements=("before-activation", "none"), trials=2, epochs=1,
                         output=tmp_path, progress=False)
    assert [t["number"] for t in again.trials] == [0, 1]


def test_a_model_with_other_parameters_is_refused_though_built_by_the_same_callable(tmp_path):
    hidden = [16]

    def build() -> nn.Module:  # one name, two architectures: only the parameters tell them apart
        return bnplace_models.MLP(hidden=tuple(hidden))

    bnplace.tune(build, trials=1, epochs=1, output=tmp_path, progress=False)
    before = sum(p.numel() for p in build().parameters())
    hidden[0] = 8
    after = sum(p.numel() for p in build().parameters())
    with pytest.raises(ValueError, match=f"other settings \\(parameters {before} -> {after}\\)"):
        bnplace.tune(build, trials=2, epochs=1, output=tmp_path, progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_study_trains_on_the_gpu(tmp_path):
    assert resolve_device("auto").type == "cuda"
    result = bnplace.tune(tiny_mlp, trials=4, epochs=2, device="cuda", output=tmp_path,
                          progress=False)
    assert result.best["val_accuracy"] > 0.5


def test_a_model_of_integer_token_ids_trains_on_them(tmp_path):
    result = bnplace.tune(TokenBag, data=lambda: integer_pairs(50, 6), trials=4, epochs=1,
                          output=tmp_path, progress=False)
    assert [t["state"] for t in result.trials] == ["COMPLETE"] * 4


def test_the_graph_pass_warns_once_per_study_not_once_per_trial(tmp_path):
    from tests.graph.test_concrete_tracing import DigitsNet

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bnplace.tune(DigitsNet, trials=5, epochs=1, output=tmp_path, progress=False)
    fixed = [w for w in caught if "shapes fixed from the example inputs" in str(w.message)]
    assert len(fixed) == 1
