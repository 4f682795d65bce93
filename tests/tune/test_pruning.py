"""Fair pruning: a slow-starting `none` trial is judged against `none` trials only."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import create_trial

import bnplace
from bnplace.tune import api
from bnplace.tune.pruning import SamePlacementPruner
from tests.tune.conftest import tiny_mlp

SPACE = {"placement": CategoricalDistribution(["before-activation", "none"]),
         "lr": FloatDistribution(1e-3, 1.0, log=True)}


def _median() -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)


def _study_with_history(pruner: optuna.pruners.BasePruner) -> optuna.Study:
    """Four fast BN trials and two `none` trials that start slowly and finish as well."""
    study = optuna.create_study(direction="maximize", pruner=pruner)
    for _ in range(4):
        study.add_trial(create_trial(params={"placement": "before-activation", "lr": 0.1},
                                     distributions=SPACE, value=0.97,
                                     intermediate_values={0: 0.90, 1: 0.95, 2: 0.96}))
    for _ in range(2):
        study.add_trial(create_trial(params={"placement": "none", "lr": 0.05},
                                     distributions=SPACE, value=0.96,
                                     intermediate_values={0: 0.30, 1: 0.60, 2: 0.96}))
    return study


def _prunes_none_trial(pruner: optuna.pruners.BasePruner, curve: list[float]) -> bool:
    study = _study_with_history(pruner)
    study.enqueue_trial({"placement": "none", "lr": 0.05})
    trial = study.ask(SPACE)
    for step, value in enumerate(curve):
        trial.report(value, step)
    return trial.should_prune()


def test_plain_median_pruner_kills_the_slow_starter():
    assert _prunes_none_trial(_median(), [0.35, 0.65])  # the unfairness being fixed


def test_same_placement_pruner_keeps_a_slow_starter_on_track():
    assert not _prunes_none_trial(SamePlacementPruner(_median), [0.35, 0.65])


def test_same_placement_pruner_still_prunes_a_weak_trial_of_its_placement():
    assert _prunes_none_trial(SamePlacementPruner(_median), [0.20, 0.40])


@pytest.mark.parametrize("pruner", ["hyperband", "median"])
def test_pruned_trials_name_their_placement(tmp_path, pruner):
    result = bnplace.tune(tiny_mlp, trials=10, epochs=4, pruner=pruner, output=tmp_path,
                          progress=False)
    for trial in result.trials:
        if trial["state"] == "PRUNED":
            assert f"behind earlier {trial['params']['placement']} trials" in trial["reason"]
    assert len(result.trials) == 10


class _PrunesEveryTrialAtItsSecondEpoch(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.last_step == 1


def test_a_trial_is_never_pruned_after_its_last_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr(api, "make_pruner", lambda options: _PrunesEveryTrialAtItsSecondEpoch())
    two = bnplace.tune(tiny_mlp, trials=2, epochs=2, output=tmp_path / "two", progress=False)
    assert [(t["state"], t["epochs"]) for t in two.trials] == [("COMPLETE", 2)] * 2
    assert two.best is not None

    three = bnplace.tune(tiny_mlp, trials=2, epochs=3, output=tmp_path / "three", progress=False)
    assert [(t["state"], t["epochs"]) for t in three.trials] == [("PRUNED", 2)] * 2
