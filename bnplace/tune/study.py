"""The Optuna study: search space, samplers, fair pruners, the objective and the trial loop."""

from __future__ import annotations

import math
import os
import socket
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
import torch
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from bnplace.placement import Placement
from bnplace.tune.data import Dataset
from bnplace.tune.options import WEIGHT_DECAY_RANGE, TuneOptions
from bnplace.tune.pruning import SamePlacementPruner
from bnplace.tune.storage import (EPOCH_SECONDS, EPOCHS, NOT_RUN, REASON, WORKER, best_completed,
                                  enqueue_missing, fail_stale_trials, is_counted, over_budget)
from bnplace.tune.training import TrainingRun, train
from bnplace.tune.variants import ModelFactory, build_variant


def make_pruner(options: TuneOptions) -> BasePruner:
    """The chosen pruner, one copy per placement (see :mod:`bnplace.tune.pruning`)."""
    if options.pruner == "none":
        return optuna.pruners.NopPruner()
    if options.pruner == "median":
        return SamePlacementPruner(lambda: optuna.pruners.MedianPruner(
            n_startup_trials=1, n_warmup_steps=max(1, options.epochs // 4)))
    return SamePlacementPruner(lambda: optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=options.epochs, reduction_factor=3))


@dataclass
class Trainer:
    """Builds, rewrites and trains one placement variant; shared by trials and the winner's refit."""

    model_fn: ModelFactory
    data: Dataset
    options: TuneOptions
    device: torch.device
    shown_warnings: set[str] = field(default_factory=set)  # the graph pass's, shown once each

    def fit(self, placement: Placement, lr: float, weight_decay: float, seed: int,
            on_epoch: Callable[[TrainingRun], None] | None = None,
            run: TrainingRun | None = None) -> tuple[nn.Module, TrainingRun]:
        torch.manual_seed(seed)
        model = build_variant(self.model_fn, placement, self.data.example,
                              self.shown_warnings).to(self.device)
        run = train(model, self.data, epochs=self.options.epochs, lr=lr,
                    batch_size=self.options.batch_size, device=self.device, seed=seed,
                    weight_decay=weight_decay, on_epoch=on_epoch, run=run)
        return model, run


def trial_seed(options: TuneOptions, number: int) -> int:
    return options.seed + number


def suggest(trial: optuna.Trial, options: TuneOptions) -> tuple[Placement, float, float]:
    """The search space: placement × log-uniform learning rate (× log-uniform weight decay)."""
    placement = trial.suggest_categorical("placement", [p.value for p in options.placements])
    lr = trial.suggest_float("lr", options.lr_min, options.lr_max, log=True)
    weight_decay = (trial.suggest_float("weight_decay", *WEIGHT_DECAY_RANGE, log=True)
                    if options.weight_decay else 0.0)
    return Placement.parse(placement), lr, weight_decay


class BudgetTaken(Exception):
    """Raised to give up a trial that another worker's trial made surplus."""


class Objective:
    """One trial: train the suggested variant, report accuracy per epoch, record why it stopped."""

    def __init__(self, trainer: Trainer, on_best: Callable[[optuna.Trial, nn.Module], None]) -> None:
        self.trainer = trainer
        self.on_best = on_best

    def __call__(self, trial: optuna.Trial) -> float:
        options = self.trainer.options
        if over_budget(trial.study, trial.number, options.total_trials):
            trial.set_user_attr(NOT_RUN, "not run: other workers had already taken the study's "
                                         "last trials (not counted)")
            raise BudgetTaken()
        trial.set_user_attr(WORKER, f"{socket.gethostname()}:{os.getpid()}")
        placement, lr, weight_decay = suggest(trial, options)
        run = TrainingRun()

        def report(run: TrainingRun) -> None:
            epoch = len(run.val_accuracy) - 1
            trial.report(run.val_accuracy[-1], epoch)
            # after the last epoch nothing is left to save: a trained trial is kept, not pruned
            if epoch + 1 < options.epochs and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}: behind earlier "
                                         f"{placement} trials ({options.pruner} pruner)")

        try:
            model, run = self.trainer.fit(placement, lr, weight_decay,
                                          trial_seed(options, trial.number), report, run)
        except optuna.TrialPruned as pruned:
            trial.set_user_attr(REASON, str(pruned))
            raise
        except Exception as err:  # the user's model or data: record it, the study goes on
            trial.set_user_attr(REASON, f"{type(err).__name__}: {err}")
            raise
        finally:
            if run.epoch_seconds:
                trial.set_user_attr(EPOCH_SECONDS, statistics.median(run.epoch_seconds))
                trial.set_user_attr(EPOCHS, len(run.epoch_seconds))
        if run.diverged is not None:
            reason = f"diverged: the loss became NaN or infinite in epoch {run.diverged + 1}"
            trial.set_user_attr(REASON, reason)
            raise optuna.TrialPruned(reason)
        value = run.val_accuracy[-1]
        best = best_completed(trial.study.get_trials(deepcopy=False))
        if best is None or value > best.value:
            self.on_best(trial, model)
        return value


def run_trials(study: optuna.Study, objective: Objective, options: TuneOptions,
               on_change: Callable[[list[FrozenTrial], int], None]) -> None:
    """Run trials until the study holds ``options.total_trials`` counted ones (or time runs out).

    Trials running in other workers count as taken; when they are the only ones left this worker
    waits for them, so its report covers the whole study. Ctrl-C propagates (KeyboardInterrupt)
    after Optuna marks the running trial failed.
    """
    total = options.total_trials
    deadline = math.inf if options.timeout is None else time.monotonic() + options.timeout
    enqueue_missing(study, options.first_cells(), total)
    while True:
        fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        on_change(trials, total)
        done = sum(is_counted(t) for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        if done >= total or time.monotonic() >= deadline:
            return
        if done + running >= total:
            time.sleep(min(options.heartbeat, 1.0))
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # Optuna's own heartbeat check
            try:
                study.optimize(objective, n_trials=1, catch=(Exception,))
            except UpdateFinishedTrialError:
                pass  # another worker took this one for dead and failed it: it is not counted
