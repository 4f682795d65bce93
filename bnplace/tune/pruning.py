"""Fair pruning: a trial is only ever compared with trials of its own placement.

Placements converge at different speeds (a `none` model often starts slower than a BN variant
and catches up), so a pruner looking at the whole study would kill the slow starter unfairly.
Each placement gets its own copy of the chosen pruner, and that copy sees the study through a
storage view holding only same-placement trials — including any study the pruner builds from
the storage itself, as Hyperband does for its brackets.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

PLACEMENT_PARAM = "placement"


class SamePlacementPruner(BasePruner):
    """Wraps a pruner so each placement's trials compete only with each other."""

    def __init__(self, make_pruner: Callable[[], BasePruner]) -> None:
        self._make_pruner = make_pruner
        self._pruners: dict[str, BasePruner] = {}

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        placement = trial.params[PLACEMENT_PARAM]
        pruner = self._pruners.setdefault(placement, self._make_pruner())
        view = optuna.Study(study.study_name, _SamePlacementStorage(study._storage, placement),
                            sampler=study.sampler, pruner=pruner)
        return pruner.prune(view, trial)


class _SamePlacementStorage:
    """A read-through view of a storage whose trial listings keep one placement only."""

    def __init__(self, storage: Any, placement: str) -> None:
        self._storage = storage
        self._placement = placement

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        trials = self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        return [t for t in trials if t.params.get(PLACEMENT_PARAM) == self._placement]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)
