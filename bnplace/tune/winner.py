"""Keep the weights of the best trial so far, and save the study's winner as a model."""

from __future__ import annotations

from pathlib import Path

import torch
from optuna.trial import FrozenTrial
from torch import nn

from bnplace.placement import Placement
from bnplace.tune.study import Trainer, trial_seed
from bnplace.tune.variants import build_variant

WINNER_MODEL = "winner.pt"
WINNER_STATE_DICT = "winner_state_dict.pt"


class Checkpoints:
    """One state_dict on disk: the best completed trial's, replaced when a trial beats it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, number: int) -> Path:
        return self.folder / f"trial-{number}.pt"

    def save(self, number: int, model: nn.Module) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), self.path(number))
        for older in self.folder.glob("trial-*.pt"):
            if older != self.path(number):
                older.unlink(missing_ok=True)  # another worker may have removed it already


def save_winner(best: FrozenTrial, trainer: Trainer, checkpoints: Checkpoints,
                output: Path) -> list[Path]:
    """Write the winning model and its state_dict; the files written.

    Its weights come from the checkpoint this process (or one sharing the folder) kept; a trial
    trained on another machine is trained again here from its parameters and seed.
    """
    placement = Placement.parse(best.params["placement"])
    checkpoint = checkpoints.path(best.number)
    if checkpoint.exists():
        model = build_variant(trainer.model_fn, placement, trainer.data.example)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    else:
        model, _ = trainer.fit(placement, best.params["lr"], best.params.get("weight_decay", 0.0),
                               trial_seed(trainer.options, best.number))
    model = model.cpu().eval()
    written = [output / WINNER_STATE_DICT]
    torch.save(model.state_dict(), written[0])
    try:
        torch.save(model, output / WINNER_MODEL)
        written.append(output / WINNER_MODEL)
    except Exception:  # a model holding unpicklable parts: its state_dict is still there
        (output / WINNER_MODEL).unlink(missing_ok=True)
    return written
