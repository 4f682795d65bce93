"""Keep the weights of the best trial so far, and save the study's winner as a model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Union

import optuna
import torch
from optuna.trial import FrozenTrial
from torch import nn

from bnplace.placement import Placement
from bnplace.tune.study import Trainer, trial_seed
from bnplace.tune.variants import build_variant

WINNER_MODEL = "winner.pt"  # torch.save of the model: its class must be importable to load it
WINNER_EXPORTED = "winner.pt2"  # torch.export program: loads with torch alone, for inference
WINNER_STATE_DICT = "winner_state_dict.pt"

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
        torch.save(model.state_dict(), path)
        for older in self.folder.glob("trial-*.pt"):
            if older != path:
                older.unlink(missing_ok=True)  # another worker may have removed it already


def save_winner(best: FrozenTrial, trainer: Trainer, checkpoints: Checkpoints,
                output: Path) -> list[Path]:
    """Write the winning model and its state_dict; the files written.

    Its weights come from the checkpoint this process (or one sharing the folder) kept; a trial
    trained on another machine is trained again here from its parameters and seed.
    """
    placement = Placement.parse(best.params["placement"])
    checkpoint = checkpoints.path(best)
    if checkpoint.exists():
        model = build_variant(trainer.model_fn, placement, trainer.data.example,
                              trainer.shown_warnings)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    else:
        model, _ = trainer.fit(placement, best.params["lr"], best.params.get("weight_decay", 0.0),
                               trial_seed(trainer.options, best.number))
    model = model.cpu().eval()
    torch.save(model.state_dict(), output / WINNER_STATE_DICT)
    written = [output / WINNER_STATE_DICT]
    for name, save in ((WINNER_MODEL, torch.save), (WINNER_EXPORTED, _export(trainer.data.example))):
        try:
            save(model, output / name)
            written.append(output / name)
        except Exception:  # a model that cannot be pickled or exported: the rest is still there
            (output / name).unlink(missing_ok=True)
    return written


def _export(example: torch.Tensor) -> Callable[[nn.Module, Path], None]:
    """Save a model as a torch.export program taking any batch size, like ``example``."""
    def save(model: nn.Module, path: Path) -> None:
        batch = torch.export.Dim("batch")
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, path)
    return save
