"""Keep the weights of the best trial so far, and save the study's winner as a model."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Union

import optuna
import torch
from optuna.trial import FrozenTrial
from torch import nn

from bnplace.graph import BnplaceWarning
from bnplace.loading import describe_error
from bnplace.placement import Placement
from bnplace.atomic import Save, write_atomically
from bnplace.study_files import (WINNER_EXPORTED, WINNER_FILES, WINNER_MODEL,
                                 WINNER_STATE_DICT)
from bnplace.tune.files import StagedFiles
from bnplace.tune.study import Trainer, trial_seed
from bnplace.tune.variants import build_variant

Trial = Union[optuna.Trial, FrozenTrial]


class Checkpoints:
    """One state_dict on disk per study: its best completed trial's, replaced when a trial beats it.

    Studies sharing an output folder (other ``--study-name``s, or a study started again after
    its storage was deleted) number their trials alike, so a file is named by its study and by
    its trial's number and start time: the winner never gets another study's weights.
    """

    def __init__(self, folder: Path, study_name: str) -> None:
        self.folder = folder / study_name

    def path(self, trial: Trial) -> Path:
        started = trial.datetime_start
        stamp = "" if started is None else started.strftime("-%Y%m%dT%H%M%S%f")
        return self.folder / f"trial-{trial.number}{stamp}.pt"

    def save(self, trial: Trial, model: nn.Module) -> None:
        path = self.path(trial)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(path, functools.partial(torch.save, model.state_dict()))
        for older in self.folder.glob("trial-*.pt"):
            if older != path:
                older.unlink(missing_ok=True)  # another worker may have removed it already


def stage_winner(best: FrozenTrial | None, trainer: Trainer, checkpoints: Checkpoints,
                 files: StagedFiles) -> None:
    """Write the winning model and its state_dict aside in ``files``; with no winner (or a model
    that cannot be pickled or exported), have the old files of that name removed, so none is
    left beside a results.json that does not describe it.

    Its weights come from the checkpoint this process (or one sharing the folder) kept; a trial
    trained on another machine is trained again here from its parameters and seed.
    """
    if best is None:
        for name in WINNER_FILES:
            files.remove(name)
        return
    model = _winner_model(best, trainer, checkpoints)
    files.write(WINNER_STATE_DICT, functools.partial(torch.save, model.state_dict()))
    for name, save in ((WINNER_MODEL, functools.partial(torch.save, model)),
                       (WINNER_EXPORTED, _export(model, trainer.data.example))):
        try:
            files.write(name, save)
        except Exception as err:  # a model that cannot be pickled or exported: the rest is
            files.remove(name)     # still there, and the user is told why this file is not
            warnings.warn(f"bnplace: {name} not written: {describe_error(err)}", BnplaceWarning,
                          stacklevel=2)


def _winner_model(best: FrozenTrial, trainer: Trainer, checkpoints: Checkpoints) -> nn.Module:
    """The best trial's model in eval mode on the CPU, from its checkpoint or trained again."""
    placement = Placement.parse(best.params["placement"])
    checkpoint = checkpoints.path(best)
    if checkpoint.exists():
        model = build_variant(trainer.model_fn, placement, trainer.data.example,
                              trainer.shown_warnings)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    else:
        model, _ = trainer.fit(placement, best.params["lr"], best.params.get("weight_decay", 0.0),
                               trial_seed(trainer.options, best.number))
    return model.cpu().eval()


def _export(model: nn.Module, example: torch.Tensor) -> Save:
    """Save ``model`` as a torch.export program taking any batch size, like ``example``."""
    def save(path: Path) -> None:
        batch = torch.export.Dim("batch")
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, path)
    return save
