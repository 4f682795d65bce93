"""The study's sampler, seeded per trial so that workers sharing a study never draw alike.

One seed per process repeats its draws in every process started with it: workers launched
together on one storage would try the same learning rates side by side. A trial's number is
unique across every worker of a study, so a sampler seeded with ``--seed`` plus the trial's
number draws differently in each worker, the same every time the study is run again from
scratch, and anew when it resumes (the new trials have new numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from bnplace.tune.options import SEED_RANGE, TuneOptions


def make_sampler(options: TuneOptions) -> BaseSampler:
    """TPE after one random round per placement, or random; the grid's cells are enqueued."""
    if options.sampler == "tpe":
        startup = len(options.placements) + 2
        return TrialSeeded(lambda seed: optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup), options.seed)
    return TrialSeeded(lambda seed: optuna.samplers.RandomSampler(seed=seed), options.seed)


class TrialSeeded(BaseSampler):
    """Delegates each trial to a fresh sampler seeded with ``seed`` plus the trial's number.

    The samplers used (TPE, random) keep nothing between trials but their random state: what
    they learn, they read from the study's trials.
    """

    def __init__(self, make: Callable[[int], BaseSampler], seed: int) -> None:
        self._make, self._seed = make, seed
        self._sampler = make(seed)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        # wrapped into the samplers' range: a seed near its top plus a trial number would leave it
        self._sampler = self._make((self._seed + trial.number) % (SEED_RANGE[1] + 1))
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._sampler.after_trial(study, trial, state, values)
