"""How a study's total is counted: what counts, what is re-run, and the surplus guard."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

import bnplace
from bnplace.tune.options import TuneOptions
from bnplace.tune.storage import REASON, enqueue_missing, is_counted, over_budget, reason_of
from tests.tune.conftest import tiny_mlp

SPACE = {"placement": CategoricalDistribution(["none", "before-activation"]),
         "lr": FloatDistribution(1e-3, 1.0, log=True)}


def _trial(state: TrialState, placement: str = "none", lr: float = 0.01, **user_attrs):
    return create_trial(state=state, params={"placement": placement, "lr": lr},
                        distributions=SPACE, user_attrs=user_attrs,
                        value=0.9 if state == TrialState.COMPLETE else None)


def test_finished_work_counts_and_an_interrupted_trial_does_not():
    assert is_counted(_trial(TrialState.COMPLETE))
    assert is_counted(_trial(TrialState.PRUNED, **{REASON: "diverged: ..."}))
    assert is_counted(_trial(TrialState.FAIL, **{REASON: "RuntimeError: boom"}))
    interrupted = _trial(TrialState.FAIL)
    assert not is_counted(interrupted)
    assert reason_of(interrupted).startswith("interrupted")


def test_first_cells_are_queued_once_and_only_where_missing():
    study = optuna.create_study(direction="maximize")
    options = TuneOptions(placements=("none", "before-activation"))
    middle = options.first_cells()[0]["lr"]
    study.add_trial(_trial(TrialState.COMPLETE, "none", middle))
    study.add_trial(_trial(TrialState.FAIL, "before-activation", middle))  # interrupted: redo it

    enqueue_missing(study, options.first_cells(), budget=10)
    enqueue_missing(study, options.first_cells(), budget=10)  # a second worker joining

    waiting = [t.system_attrs["fixed_params"] for t in study.get_trials(states=(TrialState.WAITING,))]
    assert waiting == [{"placement": "before-activation", "lr": middle}]


def test_queued_cells_never_exceed_the_budget():
    study = optuna.create_study(direction="maximize")
    enqueue_missing(study, TuneOptions(sampler="grid").grid_cells(), budget=5)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 5


def test_a_trial_started_after_the_total_was_taken_is_surplus():
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial(TrialState.COMPLETE))
    first, second = study.ask(), study.ask()  # two workers passed the budget check at once
    assert not over_budget(study, first.number, total=2)
    assert over_budget(study, second.number, total=2)


def test_weight_decay_is_searched_when_asked(tmp_path):
    result = bnplace.tune(tiny_mlp, trials=5, epochs=1, weight_decay=True, output=tmp_path,
                          progress=False)
    decays = [t["params"]["weight_decay"] for t in result.trials]
    assert all(1e-6 <= d <= 1e-2 for d in decays) and len(set(decays)) > 1


def test_timeout_stops_starting_trials(tmp_path):
    result = bnplace.tune(tiny_mlp, trials=500, epochs=1, timeout=1, output=tmp_path,
                          progress=False)
    assert 1 <= len(result.trials) < 500
