"""The default study against an exhaustive grid: best accuracy found, and the epochs each spent.

The grid trains every placement at 8 learning rates (log-spaced over the default range) for the
full epoch budget; the default study is what ``bnplace tune --model examples/models.py:MLP``
runs (TPE after one trial per placement, median pruning within each placement). Target: within
0.5 points of the grid's best accuracy using at most 40 % of its epochs.

One validation image is 0.28 points, and the grid's best is the luckiest of 32 training runs, so
one seed says little: the gap is averaged over several seeds (each a new grid and a new study).
The benchmark also re-trains the configuration each one picked with fresh seeds, which measures
the quality of the pick without the luck of the run that found it.

    python benchmarks/bench_tune.py
    python benchmarks/bench_tune.py --trials 16 --epochs 10 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402

import bnplace  # noqa: E402
from bnplace import Placement  # noqa: E402
from bnplace.tune.data import load_data  # noqa: E402
from bnplace.tune.options import TuneOptions  # noqa: E402
from bnplace.tune.study import Trainer  # noqa: E402
from bnplace.tune.training import cpu_threads, default_threads  # noqa: E402
from examples.models import MLP  # noqa: E402

RETRAIN_SEEDS = (1000, 1001, 1002)  # never a trial seed of a study with seed < 1000


def run(folder: Path, **options) -> tuple[dict, int]:
    """The best trial (placement, lr, val_accuracy) and total epochs trained of one study."""
    result = bnplace.tune(MLP, output=folder, progress=False, console=Console(quiet=True),
                          **options)
    return result.best, sum(trial["epochs"] for trial in result.trials)


def retrained_accuracy(trainer: Trainer, best: dict) -> float:
    """Mean final validation accuracy of ``best``'s placement and lr over RETRAIN_SEEDS."""
    placement = Placement.parse(best["placement"])
    runs = [trainer.fit(placement, best["lr"], 0.0, seed)[1] for seed in RETRAIN_SEEDS]
    return statistics.mean(run.val_accuracy[-1] for run in runs)


def main() -> None:
    defaults = TuneOptions()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="default study's total trials")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--pruner", default=defaults.pruner)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    args = parser.parse_args()

    device = torch.device("cpu")
    trainer = Trainer(MLP, load_data("digits", MLP()).to(device), TuneOptions(epochs=args.epochs),
                      device)
    print(f"machine: {platform.machine()}, torch {torch.__version__}; MLP on digits, "
          f"{args.epochs} epochs per trial, {len(args.seeds)} seeds")
    gaps, shares, pick_gaps = [], [], []
    with tempfile.TemporaryDirectory() as tmp, cpu_threads(default_threads(MLP(), device)):
        for seed in args.seeds:
            grid, grid_epochs = run(Path(tmp, f"grid-{seed}"), sampler="grid", pruner="none",
                                    epochs=args.epochs, seed=seed)
            study, epochs = run(Path(tmp, f"study-{seed}"), trials=args.trials,
                                pruner=args.pruner, epochs=args.epochs, seed=seed)
            gaps.append((grid["val_accuracy"] - study["val_accuracy"]) * 100)
            shares.append(epochs / grid_epochs)
            grid_pick, study_pick = (retrained_accuracy(trainer, best) for best in (grid, study))
            pick_gaps.append((grid_pick - study_pick) * 100)
            print(f"seed {seed}: grid best {grid['val_accuracy']:.2%} in {grid_epochs} epochs | "
                  f"study best {study['val_accuracy']:.2%} in {epochs} epochs "
                  f"({shares[-1]:.0%}) | {gaps[-1]:+.2f} points behind | picks re-trained: "
                  f"grid {_pick(grid)} {grid_pick:.2%}, study {_pick(study)} {study_pick:.2%}")
    print(f"mean over {len(gaps)} seeds: {statistics.mean(gaps):+.2f} points behind the grid's "
          f"best (worst seed {max(gaps):+.2f}, best seed {min(gaps):+.2f}) using "
          f"{statistics.mean(shares):.0%} of its epochs (target: <= 0.5 points with <= 40 %)")
    print(f"picks re-trained on {len(RETRAIN_SEEDS)} fresh seeds: the study's pick is "
          f"{statistics.mean(pick_gaps):+.2f} points behind the grid's on average")


def _pick(best: dict) -> str:
    return f"({best['placement']}, lr {best['lr']:.3g})"


if __name__ == "__main__":
    main()
