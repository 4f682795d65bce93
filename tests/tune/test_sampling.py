"""Workers sharing a study draw different points; one process draws the same every time."""

from __future__ import annotations

import optuna
import pytest

from bnplace.tune.options import TuneOptions
from bnplace.tune.sampling import make_sampler
from bnplace.tune.study import suggest


def drawn_together(storage: str, options: TuneOptions, workers: int) -> list[float]:
    """The learning rates that ``workers`` processes, started at the same instant on one fresh
    study, draw for their first trials."""
    optuna.create_study(study_name="shared", storage=storage, direction="maximize")
    studies = [optuna.load_study(study_name="shared", storage=storage,
                                 sampler=make_sampler(options)) for _ in range(workers)]
    trials = [study.ask() for study in studies]   # each asks before any trial finishes
    return [suggest(trial, options)[1] for trial in trials]


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_workers_started_together_draw_different_learning_rates(tmp_path, sampler):
    options = TuneOptions(sampler=sampler, placements=("none",))
    drawn = drawn_together(f"sqlite:///{tmp_path / 'a.db'}", options, workers=3)
    assert len(set(drawn)) == 3
    assert drawn_together(f"sqlite:///{tmp_path / 'b.db'}", options, workers=3) == drawn


def test_a_seed_at_the_top_of_its_range_still_seeds_every_trial(tmp_path):
    options = TuneOptions(seed=2**32 - 1, placements=("none",))  # numpy's largest, plus 1
    assert len(set(drawn_together(f"sqlite:///{tmp_path / 'a.db'}", options, workers=2))) == 2
