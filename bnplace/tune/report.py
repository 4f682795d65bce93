"""What a study found: ``results.json``, the console table and the live progress line."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bnplace.placement import Placement
from bnplace.tune.storage import EPOCH_SECONDS, EPOCHS, WORKER, best_completed, is_counted, reason_of

BASELINE = Placement.NONE.value


def summarize(trials: list[FrozenTrial], placements: tuple[Placement, ...]) -> dict[str, Any]:
    """The results.json document: ``best``, ``by_placement`` and every trial."""
    best = best_completed(trials)
    return {
        "best": None if best is None else {
            "placement": best.params["placement"], "lr": best.params["lr"],
            **_searched_weight_decay(best), "val_accuracy": best.value, "trial": best.number},
        "by_placement": _by_placement(trials, placements),
        "trials": [_trial_record(t) for t in trials
                   if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)],
    }


def _by_placement(trials: list[FrozenTrial], placements: tuple[Placement, ...]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for placement in placements:
        mine = [t for t in trials if is_counted(t) and t.params.get("placement") == placement.value]
        best = best_completed(mine)
        seconds = [t.user_attrs[EPOCH_SECONDS] for t in mine if EPOCH_SECONDS in t.user_attrs]
        table[placement.value] = {
            "best_val_accuracy": None if best is None else best.value,
            "lr": None if best is None else best.params["lr"],
            **({} if best is None else _searched_weight_decay(best)),
            "trial": None if best is None else best.number,
            "trials": len(mine),
            "epoch_seconds": statistics.median(seconds) if seconds else None,
        }
    baseline = table.get(BASELINE, {}).get("epoch_seconds")
    for row in table.values():
        seconds = row["epoch_seconds"]
        row["overhead_vs_none"] = (seconds / baseline - 1) if baseline and seconds else None
    return table


def _searched_weight_decay(trial: FrozenTrial) -> dict[str, float]:
    """``{"weight_decay": ...}`` when the study searched it (--weight-decay): without it, the
    winner could not be trained again from what the report names."""
    return {"weight_decay": trial.params["weight_decay"]} if "weight_decay" in trial.params else {}


def _trial_record(trial: FrozenTrial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state.name,
        "params": trial.params,
        "value": trial.value,
        "reason": reason_of(trial),
        "epochs": trial.user_attrs.get(EPOCHS, 0),
        "epoch_seconds": trial.user_attrs.get(EPOCH_SECONDS),
        "worker": trial.user_attrs.get(WORKER),
    }


def write_results(summary: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n")


def print_table(console: Console, summary: dict[str, Any], total: int) -> None:
    """Per placement: best accuracy, its lr, seconds per epoch, overhead against `none`; the
    winner; and a note when the study holds more trials than the ``total`` asked for now."""
    table = Table(title="BatchNorm placement: best validation accuracy per placement")
    for column in ("placement", "best val acc", "at lr", "trials", "s/epoch", "vs none"):
        table.add_column(column, justify="left" if column == "placement" else "right")
    best = summary["best"]
    for placement, row in summary["by_placement"].items():
        style = "bold green" if best and placement == best["placement"] else None
        table.add_row(placement, _percent(row["best_val_accuracy"]), _number(row["lr"], ".3g"),
                      str(row["trials"]), _number(row["epoch_seconds"], ".4f"),
                      _signed_percent(row["overhead_vs_none"]), style=style)
    console.print(table)
    held = sum(row["trials"] for row in summary["by_placement"].values())
    if held > total:  # resumed with a lower --trials: the table is not of the trials asked for
        console.print(f"[bold yellow]More trials than asked for[/]: the study already held {held} "
                      f"trials (--trials {total}), so none was run; the table covers all {held}.")
    timed_out = held < total  # run_trials stops short of --trials only when --timeout runs out
    if timed_out and not summary["trials"]:
        console.print("[bold red]No trial finished[/]: --timeout ran out before the first trial "
                      "did; give a larger --timeout (each trial trains every epoch).")
        return
    untried = [name for name, row in summary["by_placement"].items() if row["trials"] == 0]
    if untried:  # the winner beat only the placements tried
        console.print(f"[bold yellow]Not tried[/]: {', '.join(untried)}; the study ended before "
                      f"reaching them (raise {'--timeout' if timed_out else '--trials'} to "
                      "compare every placement).")
    if best is None:
        console.print(f"[bold red]No trial completed[/]: {_common_reasons(summary['trials'])}"
                      "every trial's reason is in results.json.", markup=True, highlight=False)
    else:
        decay = f", weight decay {best['weight_decay']:.3g}" if "weight_decay" in best else ""
        console.print(f"Winner: [bold green]{best['placement']}[/] at lr {best['lr']:.3g}{decay} "
                      f"— {best['val_accuracy']:.2%} validation accuracy (trial {best['trial']}).")


def _common_reasons(trials: list[dict[str, Any]], shown: int = 3) -> str:
    """The commonest reasons trials gave, with counts: when none completed, a model that fails
    alike in every trial (a forward that raises in training mode) says why at once."""
    counts = Counter(t["reason"] for t in trials if t["reason"])
    listed = [f"{escape(reason)} ({count} trial{'s' * (count > 1)})"
              for reason, count in counts.most_common(shown)]
    return "".join(f"{line}; " for line in listed)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def _signed_percent(value: float | None) -> str:
    return "—" if value is None else f"{value:+.0%}"


def _number(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


class LiveProgress:
    """A progress bar of counted trials with the best result so far (silent when disabled)."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self._progress = Progress(TextColumn("tuning"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.fields[best]}"),
                                  console=console, disable=not enabled)
        self._task = self._progress.add_task("tuning", total=None, best="")

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, trials: list[FrozenTrial], total: int) -> None:
        done = sum(is_counted(t) for t in trials)
        best = best_completed(trials)
        text = "" if best is None else (f"best {best.value:.2%} ({best.params['placement']}, "
                                        f"lr {best.params['lr']:.3g})")
        self._progress.update(self._task, completed=min(done, total), total=total, best=text)
