"""Reproduce the experiments of "The Effect of Batch Normalization on Deep Convolutional Neural
Networks" (Schilling) at CPU scale, on scikit-learn's bundled digits, with bnplace.

Every setting trains an MLP and a small CNN, vanilla against BatchNorm before the activation, with
several seeds. The BN variant is not written by hand: it is ``bnplace.rewrite(vanilla,
"before-activation")`` of the very same vanilla model, so the two differ only in BN.

    python examples/thesis/reproduce.py            # the full run behind docs/results.md
    python examples/thesis/reproduce.py --quick    # a smoke run in seconds (what CI runs)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

import bnplace
from bnplace.tune.data import Dataset, load_data
from bnplace.tune.training import train

TARGET_ACCURACY = 0.90  # "epochs to reach a target" counts epochs until validation accuracy ≥ this
BATCH_SIZES = (32, 64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class Setting:
    """One row of the thesis' experiment table."""

    name: str
    activation: str = "relu"
    init: str = "kaiming"
    lr: float = 0.01
    weight_decay: float = 0.0
    dropout: float = 0.0
    batch_size: int = 64
    thesis_says: str = ""


SETTINGS = (
    Setting("1 baseline", thesis_says="both train; BN faster"),
    Setting("2 sigmoid + Xavier", activation="sigmoid", init="xavier",
            thesis_says="vanilla stuck at chance, BN converges"),
    Setting("3 lr 0.1", lr=0.1, thesis_says="vanilla stuck, BN trains faster"),
    Setting("4 N(0,1) weights", init="normal",
            thesis_says="vanilla stuck, BN learns but worse than a good init"),
    Setting("5 L2 5e-4", weight_decay=5e-4, thesis_says="both better, BN ahead"),
    Setting("6 dropout 0.5", dropout=0.5, thesis_says="a draw"),
)


class ThesisMLP(nn.Module):
    """64 → 128 → 128 → 10, each hidden layer Linear → activation (→ Dropout)."""

    def __init__(self, activation: Callable[[], nn.Module], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for width_in, width_out in ((64, 128), (128, 128)):
            layers += [nn.Linear(width_in, width_out), activation()]
            layers += [nn.Dropout(dropout)] if dropout else []
        self.net = nn.Sequential(*layers, nn.Linear(128, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ThesisCNN(nn.Module):
    """Two 3×3 conv layers and a max-pool on 1×8×8 images, then a hidden dense layer."""

    def __init__(self, activation: Callable[[], nn.Module], dropout: float) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), activation(),
            nn.Conv2d(16, 32, 3, padding=1), activation(),
            nn.MaxPool2d(2),
        )
        head: list[nn.Module] = [nn.Flatten(), nn.Linear(32 * 4 * 4, 64), activation()]
        head += [nn.Dropout(dropout)] if dropout else []
        self.head = nn.Sequential(*head, nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}
MODELS = {"MLP": ThesisMLP, "CNN": ThesisCNN}


def initialise(model: nn.Module, scheme: str) -> None:
    """The thesis' weight initialisations: Kaiming (ReLU), Xavier (sigmoid), or plain N(0, 1)."""
    for layer in model.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            if scheme == "kaiming":
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            elif scheme == "xavier":
                nn.init.xavier_normal_(layer.weight)
            else:
                nn.init.normal_(layer.weight, 0.0, 1.0)
            nn.init.zeros_(layer.bias)


def build(model_name: str, setting: Setting, with_bn: bool, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = MODELS[model_name](ACTIVATIONS[setting.activation], setting.dropout)
    initialise(model, setting.init)
    return bnplace.rewrite(model, "before-activation") if with_bn else model


@dataclass
class Outcome:
    """Per seed: final and best validation accuracy, epochs to the target, seconds per epoch."""

    final: list[float] = field(default_factory=list)
    best: list[float] = field(default_factory=list)
    to_target: list[int | None] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    curves: list[list[float]] = field(default_factory=list)
    diverged: int = 0

    def add(self, accuracies: list[float], seconds: list[float], diverged: bool) -> None:
        self.diverged += diverged
        self.final.append(accuracies[-1])
        self.best.append(max(accuracies))
        reached = [i + 1 for i, a in enumerate(accuracies) if a >= TARGET_ACCURACY]
        self.to_target.append(reached[0] if reached else None)
        self.epoch_seconds.append(statistics.median(seconds) if seconds else float("nan"))
        self.curves.append(accuracies)

    def epochs_to_target(self) -> str:
        reached = [e for e in self.to_target if e is not None]
        if not reached:
            return f"never (0/{len(self.to_target)})"
        return f"{statistics.mean(reached):.1f} ({len(reached)}/{len(self.to_target)})"

    def ms_per_epoch(self) -> str:
        return f"{statistics.median(self.epoch_seconds) * 1000:.0f}"


def comparison_row(model_name: str, setting: Setting, outcome: dict[str, Outcome]) -> list[str]:
    """One table row: the setting, vanilla against BN side by side, and what the thesis found."""
    vanilla, with_bn = outcome["vanilla"], outcome["BN"]
    diverged = f"{vanilla.diverged} / {with_bn.diverged}"
    return [model_name, setting.name,
            _mean_sd(vanilla.final), _mean_sd(with_bn.final),
            _mean_sd(vanilla.best), _mean_sd(with_bn.best),
            vanilla.epochs_to_target(), with_bn.epochs_to_target(),
            diverged, setting.thesis_says]


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def run_setting(model_name: str, setting: Setting, data: Dataset, epochs: int,
                seeds: int) -> dict[str, Outcome]:
    outcomes = {"vanilla": Outcome(), "BN": Outcome()}
    for variant, with_bn in (("vanilla", False), ("BN", True)):
        for seed in range(seeds):
            model = build(model_name, setting, with_bn, seed)
            run = train(model, data, epochs=epochs, lr=setting.lr, batch_size=setting.batch_size,
                        device=torch.device("cpu"), seed=seed, weight_decay=setting.weight_decay,
                        nesterov=True)
            # a diverged run (loss NaN) stops early; its remaining epochs count as accuracy 0
            accuracies = run.val_accuracy + [0.0] * (epochs - len(run.val_accuracy))
            outcomes[variant].add(accuracies, run.epoch_seconds, run.diverged is not None)
    return outcomes


def placement_grid(setting: Setting, epochs: int, output: Path, quick: bool) -> dict:
    """The placement question itself: ``bnplace tune --sampler grid`` on the MLP under ``setting``."""
    def model_fn() -> nn.Module:
        return build("MLP", replace(setting, dropout=0.25), with_bn=False, seed=0)

    quick_budget = {"trials": 4} if quick else {}  # the first ladder rung of each placement
    result = bnplace.tune(model_fn, "digits", sampler="grid", epochs=epochs, lr_min=1e-3,
                          lr_max=1.0, pruner="none", **quick_budget,
                          device="cpu", output=output / f"grid-{setting.name.split()[0]}",
                          study_name=f"thesis-grid-{setting.name.split()[0]}", progress=False)
    return result.by_placement


def batch_size_settings(sizes: tuple[int, ...]) -> list[Setting]:
    return [replace(SETTINGS[0], name=f"7 batch {size}", batch_size=size,
                    thesis_says="BN ahead at every size") for size in sizes]


def markdown_table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def plot_curves(results: dict[tuple[str, str], dict[str, Outcome]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = [s.name for s in SETTINGS[:4]]
    figure, axes = plt.subplots(2, len(settings), figsize=(4 * len(settings), 6), sharey=True)
    for row, model_name in enumerate(MODELS):
        for column, setting in enumerate(settings):
            axis = axes[row][column]
            for variant, outcome in results[(model_name, setting)].items():
                curve = [statistics.mean(epoch) for epoch in zip(*outcome.curves)]
                axis.plot(range(1, len(curve) + 1), curve, label=variant)
            axis.set_title(f"{model_name}: {setting}", fontsize=9)
            axis.set_xlabel("epoch")
            axis.axhline(TARGET_ACCURACY, color="grey", linewidth=0.5, linestyle=":")
        axes[row][0].set_ylabel("validation accuracy")
    axes[0][0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, 1 epoch, a 4-trial grid: a smoke run in seconds")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=Path("bnplace-runs/thesis"),
                        help="folder for results.md, the plot and the tuner's grid studies")
    args = parser.parse_args(argv)
    epochs, seeds = (1, 1) if args.quick else (args.epochs, args.seeds)
    args.output.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    results: dict[tuple[str, str], dict[str, Outcome]] = {}
    rows = []
    settings = list(SETTINGS) + batch_size_settings(BATCH_SIZES[::5] if args.quick else BATCH_SIZES)
    for model_name in MODELS:
        data = load_data("digits", build(model_name, SETTINGS[0], False, 0)).to(torch.device("cpu"))
        for setting in settings:
            outcome = run_setting(model_name, setting, data, epochs, seeds)
            results[(model_name, setting.name)] = outcome
            rows.append(comparison_row(model_name, setting, outcome))
            print(f"{model_name:4} {setting.name:22} best accuracy: vanilla {rows[-1][4]:>12}, "
                  f"BN {rows[-1][5]:>12}", flush=True)

    grids = {s.name: placement_grid(s, epochs, args.output, args.quick) for s in SETTINGS[:2]}
    elapsed = time.perf_counter() - started
    report = render(rows, grids, results, epochs, seeds, elapsed, args)
    (args.output / "results.md").write_text(report)
    plot_curves(results, args.output / "thesis_curves.png")
    print(f"wrote {args.output / 'results.md'} and {args.output / 'thesis_curves.png'} "
          f"in {elapsed:.0f} s")
    return 0


def render(rows: list[list[str]], grids: dict[str, dict], results: dict, epochs: int, seeds: int,
           elapsed: float, args: argparse.Namespace) -> str:
    command = "python examples/thesis/reproduce.py " + " ".join(sys.argv[1:])
    overhead = []
    for model_name in MODELS:
        baseline = results[(model_name, SETTINGS[0].name)]
        vanilla = statistics.median(baseline["vanilla"].epoch_seconds)
        with_bn = statistics.median(baseline["BN"].epoch_seconds)
        overhead.append([model_name, baseline["vanilla"].ms_per_epoch(),
                         baseline["BN"].ms_per_epoch(), f"{100 * (with_bn / vanilla - 1):+.0f} %"])
    grid_rows = [[setting, placement, f"{100 * (info['best_val_accuracy'] or 0):.1f}",
                  f"{info['lr']:.3g}" if info.get("lr") else "-"]
                 for setting, by_placement in grids.items()
                 for placement, info in by_placement.items()]
    return "\n\n".join([
        "## Measured",
        f"`{command.strip()}` — {epochs} epochs, {seeds} seed(s) per cell, digits (1,437 train / "
        f"360 validation), on {platform.processor() or platform.machine()} "
        f"({torch.get_num_threads()} threads), {elapsed / 60:.1f} min in all. Accuracies are "
        f"validation accuracy in %, mean ± sd over seeds; \"to {TARGET_ACCURACY:.0%}\" is the mean "
        "epoch count of the seeds that reached it (how many did).",
        markdown_table(rows, ["model", "setting", "final: vanilla", "final: BN", "best: vanilla",
                              "best: BN", f"epochs to {TARGET_ACCURACY:.0%}: vanilla",
                              f"epochs to {TARGET_ACCURACY:.0%}: BN", "diverged (v / BN)",
                              "the thesis says"]),
        "### 8. Seconds per epoch (setting 1)",
        markdown_table(overhead, ["model", "vanilla ms/epoch", "BN ms/epoch", "BN overhead"]),
        "### The placement question: `bnplace tune --sampler grid` on the MLP",
        markdown_table(grid_rows, ["setting", "placement", "best acc", "at lr"]),
        "![learning curves](thesis_curves.png)",
    ]) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
