"""The tuner's settings, checked once up front so bad input fails before any training."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from bnplace.placement import Placement

SAMPLERS = ("tpe", "grid", "random")
PRUNERS = ("hyperband", "median", "none")
LR_LADDER_STEPS = 8  # rungs of the `grid` sampler's learning-rate ladder
DEFAULT_TRIALS = 20  # for tpe/random; grid defaults to every cell
WEIGHT_DECAY_RANGE = (1e-6, 1e-2)
MIN_BATCH_SIZE = 2  # BatchNorm normalizes over a batch: a batch of one is skipped, never trained
SEED_RANGE = (0, 2**32 - 1)  # what numpy and Optuna's samplers take


class TuneInputError(ValueError):
    """A setting the tuner cannot use: shown to CLI users as a one-line error (exit 2)."""


@dataclass(frozen=True)
class TuneOptions:
    """Everything a study needs besides the model and the data (the CLI flags, one to one)."""

    placements: tuple[Placement | str, ...] | str = tuple(Placement)  # or "a,b" as on the CLI
    trials: int | None = None
    epochs: int = 10
    batch_size: int = 64
    lr_min: float = 1e-3
    lr_max: float = 1.0
    weight_decay: bool = False
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str | None = None
    study_name: str | None = None
    device: str = "auto"
    seed: int = 0
    timeout: float | None = None
    output: Path | None = None
    heartbeat: int = 5
    threads: int | None = None
    progress: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        names = self.placements.split(",") if isinstance(self.placements, str) else self.placements
        try:
            chosen = {Placement.parse(p) for p in names if str(p).strip()}
        except ValueError as err:
            raise TuneInputError(str(err)) from None
        if not chosen:
            raise TuneInputError("no placement to tune: give at least one")
        # in Placement's order whatever order they were given in: a study's search space (Optuna
        # refuses a categorical parameter whose choices change order) and settings stay the same
        object.__setattr__(self, "placements", tuple(p for p in Placement if p in chosen))
        _check_types(self)
        _check_choice("sampler", self.sampler, SAMPLERS)
        _check_choice("pruner", self.pruner, PRUNERS)
        for name in ("epochs", "heartbeat"):
            _check_at_least(name, getattr(self, name))
        _check_at_least("batch_size", self.batch_size, MIN_BATCH_SIZE)
        if self.trials is not None:
            _check_at_least("trials", self.trials)
        if self.threads is not None:
            _check_at_least("threads", self.threads)
        if not SEED_RANGE[0] <= self.seed <= SEED_RANGE[1]:
            raise TuneInputError(f"seed must be from {SEED_RANGE[0]} to {SEED_RANGE[1]}, got "
                                 f"{self.seed}")
        if not 0 < self.lr_min < self.lr_max or not math.isfinite(self.lr_max):
            raise TuneInputError(f"need 0 < lr-min < lr-max, got {self.lr_min} and {self.lr_max}")
        if self.timeout is not None and self.timeout <= 0:
            raise TuneInputError(f"timeout must be positive, got {self.timeout}")
        if self.study_name is not None and not re.fullmatch(r"[\w.\-]+", self.study_name):
            raise TuneInputError(f"study name {self.study_name!r}: use letters, digits, '.', '_', '-'")

    @property
    def total_trials(self) -> int:
        """The study's total: ``trials`` (default DEFAULT_TRIALS); the grid stops at its size."""
        if self.sampler == "grid":
            return min(self.trials or len(self.grid_cells()), len(self.grid_cells()))
        return self.trials or DEFAULT_TRIALS

    def lr_ladder(self) -> list[float]:
        """LR_LADDER_STEPS learning rates evenly spaced in log scale from lr_min to lr_max."""
        return [float(lr) for lr in np.geomspace(self.lr_min, self.lr_max, LR_LADDER_STEPS)]

    def grid_cells(self) -> list[dict[str, object]]:
        """Every placement × ladder rung, rung-major so a partial grid still covers each placement."""
        return [self._cell(p, lr) for lr in self.lr_ladder() for p in self.placements]

    def first_cells(self) -> list[dict[str, object]]:
        """The trials run before any sampling: the whole grid, or each placement at the middle lr."""
        if self.sampler == "grid":
            return self.grid_cells()
        return [self._cell(p, math.sqrt(self.lr_min * self.lr_max)) for p in self.placements]

    def _cell(self, placement: Placement, lr: float) -> dict[str, object]:
        cell: dict[str, object] = {"placement": placement.value, "lr": lr}
        if self.weight_decay:  # a fixed middle value: the grid is placement × lr only
            cell["weight_decay"] = math.sqrt(WEIGHT_DECAY_RANGE[0] * WEIGHT_DECAY_RANGE[1])
        return cell


def options_from(given: Mapping[str, Any], also_valid: Iterable[str] = ()) -> TuneOptions:
    """TuneOptions from keyword arguments; a misspelt name is a TuneInputError naming the closest
    valid one (as the command line does for a flag), not Python's bare TypeError.

    ``also_valid`` are the caller's own keyword arguments, offered as suggestions too.
    """
    valid = [option.name for option in fields(TuneOptions)] + list(also_valid)
    for name in given:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"choose from: {', '.join(valid)}"
            raise TuneInputError(f"unknown option {name!r}; {hint}")
    return TuneOptions(**given)


# the numeric settings and the types they take (None is also accepted where the default is None)
_NUMBERS: dict[str, type | tuple[type, ...]] = {
    "trials": int, "epochs": int, "batch_size": int, "seed": int, "heartbeat": int,
    "threads": int, "lr_min": (int, float), "lr_max": (int, float), "timeout": (int, float)}


def _check_types(options: TuneOptions) -> None:
    """A number given as text (``trials="3"``) fails here, by name, not as a TypeError deep in a
    comparison; a bool is no number here either."""
    defaults = {option.name: option.default for option in fields(TuneOptions)}
    for name, wanted in _NUMBERS.items():
        value = getattr(options, name)
        if value is None and defaults[name] is None:
            continue
        if isinstance(value, bool) or not isinstance(value, wanted):
            kind = "an integer" if wanted is int else "a number"
            raise TuneInputError(f"{name.replace('_', '-')} must be {kind}, got {value!r}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise TuneInputError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")


def _check_at_least(name: str, value: int, least: int = 1) -> None:
    if value < least:
        raise TuneInputError(f"{name.replace('_', '-')} must be at least {least}, got {value}")
