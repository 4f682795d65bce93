"""The default study against an exhaustive grid: best accuracy found, and the epochs each spent.

The grid trains every placement at 8 learning rates (log-spaced over the default range) for the
full epoch budget; the default study is what ``bnplace tune --model examples/models.py:MLP``
runs (TPE after one trial per placement, median pruning within each placement). Target: within
0.5 points of the grid's best accuracy using at most 40 % of its epochs.

    python benchmarks/bench_tune.py
    python benchmarks/bench_tune.py --trials 16 --epochs 10 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import bnplace  # noqa: E402
from bnplace.tune.options import TuneOptions  # noqa: E402
from examples.models import MLP  # noqa: E402


def run(folder: Path, **options) -> tuple[float, int]:
    """Best validation accuracy and total epochs trained of one study."""
    result = bnplace.tune(MLP, output=folder, progress=False, **options)
    best = result.best["val_accuracy"] if result.best else 0.0
    return best, sum(trial["epochs"] for trial in result.trials)


def main() -> None:
    defaults = TuneOptions()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="default study's total trials")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--pruner", default=defaults.pruner)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}; MLP on digits, {args.epochs} epochs per trial")
    gaps, shares = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            grid_best, grid_epochs = run(Path(tmp, f"grid-{seed}"), sampler="grid", pruner="none",
                                         epochs=args.epochs, seed=seed, console=_quiet())
            best, epochs = run(Path(tmp, f"study-{seed}"), trials=args.trials, pruner=args.pruner,
                               epochs=args.epochs, seed=seed, console=_quiet())
            gap = (grid_best - best) * 100
            gaps.append(gap)
            shares.append(epochs / grid_epochs)
            print(f"seed {seed}: grid best {grid_best:.2%} in {grid_epochs} epochs | default study "
                  f"best {best:.2%} in {epochs} epochs = {epochs / grid_epochs:.0%} of the grid's, "
                  f"{gap:+.2f} points behind (target: <= 0.5 points with <= 40 %)")
    print(f"mean over {len(gaps)} seeds: {sum(gaps) / len(gaps):+.2f} points behind the grid, "
          f"{sum(shares) / len(shares):.0%} of its epochs")


def _quiet():
    from rich.console import Console

    return Console(quiet=True)


if __name__ == "__main__":
    main()
