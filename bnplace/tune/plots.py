"""The study's two pictures: accuracy against learning rate, and the winners' learning curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: works on servers and in CI without a display

import matplotlib.pyplot as plt  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402

from bnplace.placement import Placement  # noqa: E402
from bnplace.tune.storage import best_completed  # noqa: E402


def plot_accuracy_vs_lr(trials: list[FrozenTrial], placements: tuple[Placement, ...],
                        path: Path) -> None:
    """Final (completed) or last (pruned) validation accuracy of every trial against its lr."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for placement in placements:
        for state, marker in ((TrialState.COMPLETE, "o"), (TrialState.PRUNED, "x")):
            points = [(t.params["lr"], _last_accuracy(t)) for t in trials
                      if t.state == state and t.params.get("placement") == placement.value
                      and t.intermediate_values]
            if points:
                lrs, accuracies = zip(*points)
                label = placement.value + (" (pruned)" if state == TrialState.PRUNED else "")
                axes.scatter(lrs, accuracies, marker=marker, label=label,
                             color=_color(placements, placement))
    axes.set(xscale="log", xlabel="learning rate", ylabel="validation accuracy",
             title="Validation accuracy against learning rate, per placement")
    _save(figure, axes, path)


def plot_learning_curves(trials: list[FrozenTrial], placements: tuple[Placement, ...],
                         path: Path) -> None:
    """Validation accuracy per epoch of each placement's best completed trial."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for placement in placements:
        best = best_completed([t for t in trials if t.params.get("placement") == placement.value])
        if best is not None:
            epochs = sorted(best.intermediate_values)
            axes.plot([e + 1 for e in epochs], [best.intermediate_values[e] for e in epochs],
                      marker=".", color=_color(placements, placement),
                      label=f"{placement.value} (lr {best.params['lr']:.3g})")
    axes.set(xlabel="epoch", ylabel="validation accuracy",
             title="Learning curves of each placement's best trial")
    _save(figure, axes, path)


def _last_accuracy(trial: FrozenTrial) -> float:
    return trial.intermediate_values[max(trial.intermediate_values)]


def _color(placements: tuple[Placement, ...], placement: Placement) -> str:
    return f"C{list(Placement).index(placement)}"


def _save(figure: plt.Figure, axes: plt.Axes, path: Path) -> None:
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:  # a study where nothing completed has no curves
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
