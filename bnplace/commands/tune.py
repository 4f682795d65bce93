"""``bnplace tune``: the command-line face of :func:`bnplace.tune`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bnplace.commands.errors import reported_as_usage_errors
from bnplace.loading import parse_kwargs
from bnplace.placement import Placement
from bnplace.tune.options import DEFAULT_TRIALS, MIN_BATCH_SIZE, PRUNERS, SAMPLERS, TuneOptions

_DEFAULTS = TuneOptions()
INTERRUPTED_EXIT = 130
NO_TRIAL_COMPLETED_EXIT = 1


@click.command()
@click.option("--model", "model_spec", required=True, metavar="SPEC",
              help="The model: 'package.module:Net' or 'path/to/file.py:Net' (a class or a function "
                   "returning an nn.Module); a fresh one is built for every trial.")
@click.option("--model-kwargs", metavar="JSON", help="Keyword arguments for the model, as a JSON object.")
@click.option("--data", default="digits", show_default=True, metavar="digits|synthetic|SPEC",
              help="digits: scikit-learn's handwritten digits (vectors or 1x8x8 images, whichever the "
                   "model takes); synthetic: a generated 64-feature, 10-class set; SPEC: your function "
                   "returning (train, val) as (inputs, targets) pairs, TensorDatasets or DataLoaders.")
@click.option("--trials", type=int, metavar="N",
              help=f"The study's total number of trials; re-running the same command runs only the "
                   f"missing ones. [default: {DEFAULT_TRIALS}; --sampler grid: the whole grid, at "
                   f"most]")
@click.option("--epochs", type=int, default=_DEFAULTS.epochs, show_default=True,
              help="Training epochs per trial.")
@click.option("--batch-size", type=click.IntRange(min=MIN_BATCH_SIZE),
              default=_DEFAULTS.batch_size, show_default=True,
              help="Training batch size (a DataLoader from --data keeps its own).")
@click.option("--placements", default=",".join(p.value for p in Placement), show_default=True,
              metavar="a,b,...",
              help="The BatchNorm placements to compare, comma-separated, in any order.")
@click.option("--lr-min", type=float, default=_DEFAULTS.lr_min, show_default=True,
              help="Smallest learning rate tried (SGD with momentum 0.9).")
@click.option("--lr-max", type=float, default=_DEFAULTS.lr_max, show_default=True,
              help="Largest learning rate tried.")
@click.option("--weight-decay/--no-weight-decay", default=False, show_default=True,
              help="Also search weight decay, log-uniform in [1e-6, 1e-2].")
@click.option("--sampler", type=click.Choice(SAMPLERS), default=_DEFAULTS.sampler, show_default=True,
              help="tpe: one trial per placement, then Bayesian search; grid: every placement x 8 "
                   "learning rates; random: uniform sampling.")
@click.option("--pruner", type=click.Choice(PRUNERS), default=_DEFAULTS.pruner, show_default=True,
              help="Stop weak trials early, comparing each only with trials of the same placement.")
@click.option("--storage", metavar="URL",
              help="An Optuna storage URL (sqlite:///f.db, postgresql://user@host/db) shared by every "
                   "worker of the study. [default: a SQLite file in the output folder]")
@click.option("--study-name", metavar="NAME",
              help="The study to create, resume or join. [default: <model>-<data>, <model> being "
                   "the class --model names, or the function: Lesson3Head-digits, "
                   "make_net-digits]")
@click.option("--device", default=_DEFAULTS.device, show_default=True, metavar="auto|cpu|cuda",
              help="Where to train: auto takes CUDA when available (training under bf16 "
                   "autocast, validation in float32).")
@click.option("--seed", type=int, default=_DEFAULTS.seed, show_default=True,
              help="Base seed: trial N trains with seed+N, so results repeat.")
@click.option("--threads", type=click.IntRange(min=1), metavar="N",
              help="CPU threads for training. [default: 1 for models under 1M parameters, which "
                   "gain nothing from more and then share a machine well; torch's own otherwise]")
@click.option("--timeout", type=float, metavar="SECONDS",
              help="Start no new trial after this many seconds.")
@click.option("--heartbeat", type=int, default=_DEFAULTS.heartbeat, show_default=True,
              metavar="SECONDS", help="Seconds between a worker's heartbeats; a trial silent for "
                                      "twice as long is failed as interrupted and run again.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for results.json, the winner's model and the plots. "
                   "[default: ./bnplace-runs/<study-name>]")
def tune(model_spec: str, model_kwargs: str | None, data: str, placements: str,
         **options: object) -> None:
    """Train every BatchNorm placement of a model and report which placement and lr win.

    Each trial rewrites the model to one placement (before-activation, after-activation,
    after-dropout or none), trains it and reports validation accuracy per epoch to an Optuna
    study. At the end: a table per placement (best accuracy, its lr, seconds per epoch, overhead
    against none), the winner, and in --output: results.json, the winning model (winner.pt,
    winner.pt2 for torch.export.load, winner_state_dict.pt) and two plots.
    """
    from bnplace.graph import TraceError
    from bnplace.tune import TuneInputError, tune as run_tune
    from bnplace.tune.training import DeviceError
    from bnplace.tune.variants import NoChainError

    with reported_as_usage_errors(TuneInputError, DeviceError, NoChainError, TraceError):
        kwargs = parse_kwargs(model_kwargs)
        try:
            result = run_tune(model_spec, data, model_kwargs=kwargs, placements=placements,
                              **options)
        except KeyboardInterrupt:
            click.echo("\nInterrupted: the finished trials are kept in the study. Run the same "
                       "command again to finish it.", err=True)
            sys.exit(INTERRUPTED_EXIT)
    if result.best is None:  # the report says "No trial completed" and results.json why
        sys.exit(NO_TRIAL_COMPLETED_EXIT)
