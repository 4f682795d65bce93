"""``bnplace.tune``: train every placement of a model and report which placement and lr win."""

from __future__ import annotations

import functools
import inspect
import logging
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from rich.console import Console
from torch import nn

from bnplace.loading import load_object, model_factory
from bnplace.study_files import CHECKPOINTS, PLOTS, REPORT_FILES, RESULTS
from bnplace.tune.data import DataSource, Dataset, load_data
from bnplace.tune.files import StagedFiles
from bnplace.tune.options import TuneInputError, TuneOptions, options_from
from bnplace.tune.plots import plot_accuracy_vs_lr, plot_learning_curves
from bnplace.tune.report import LiveProgress, print_table, summarize, write_results
from bnplace.tune.sampling import make_sampler
from bnplace.tune.storage import best_completed, open_study, shown_url, storage_url
from bnplace.tune.study import Objective, Trainer, make_pruner, run_trials
from bnplace.tune.training import cpu_threads, default_threads, resolve_device
from bnplace.tune.variants import ModelFactory, require_chains
from bnplace.tune.winner import Checkpoints, stage_winner


@dataclass
class TuneResult:
    """The study's answer: the same content as ``results.json``, plus where everything lives."""

    best: dict[str, Any] | None
    by_placement: dict[str, dict[str, Any]]
    trials: list[dict[str, Any]]
    study_name: str
    storage: str
    output: Path
    files: list[Path]


def tune(model_fn: ModelFactory | str, data: DataSource = "digits", *,
         model_kwargs: dict[str, Any] | None = None, console: Console | None = None,
         **options: Any) -> TuneResult:
    """Tune BatchNorm placement × learning rate for the models ``model_fn`` builds.

    ``model_fn`` is a zero-argument callable returning a fresh ``nn.Module`` (or a
    ``module:Name`` spec); ``data`` is ``"digits"``, ``"synthetic"``, a spec or function
    returning ``(train, val)``, or such a pair. ``options`` are :class:`TuneOptions` fields
    (the CLI flags). Ctrl-C raises KeyboardInterrupt; finished trials stay in the storage.
    """
    settings = options_from(options, also_valid=("data", "model_kwargs", "console"))
    device = resolve_device(settings.device)
    build = (model_factory(model_fn, model_kwargs) if isinstance(model_fn, str)
             else _callable_factory(model_fn, model_kwargs))
    probe = _built(build)
    dataset = load_data(data, probe)
    require_chains(probe, dataset.example)
    name = settings.study_name or re.sub(r"[^\w.\-]+", "_",
                                         f"{_model_name(model_fn, probe)}-{dataset.name}")
    settings = replace(settings, study_name=name,
                       output=Path(settings.output or Path("bnplace-runs") / name))
    assert settings.output is not None
    _prepare_output(settings.output)
    console = console or Console()

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.ERROR)  # the progress bar and the report say it all
    try:
        study = open_study(settings, settings.output, name,
                           _study_settings(settings, model_fn, model_kwargs, probe, dataset),
                           make_pruner(settings))
        study.sampler = make_sampler(settings)
        trainer = Trainer(build, dataset.to(device), settings, device)
        checkpoints = Checkpoints(settings.output / CHECKPOINTS, name)
        threads = settings.threads or default_threads(probe, device)
        with cpu_threads(threads), LiveProgress(console, settings.progress) as progress:
            run_trials(study, Objective(trainer, checkpoints.save), settings, progress.update)
        return _report(study, settings, trainer, checkpoints, console)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _callable_factory(model_fn: ModelFactory, kwargs: dict[str, Any] | None) -> ModelFactory:
    """``model_fn`` with ``kwargs`` bound: a model instance is refused, since every trial must
    train a fresh model (calling an instance would run its forward)."""
    if isinstance(model_fn, nn.Module):
        raise TuneInputError(f"model_fn is a model instance ({type(model_fn).__name__}), not a "
                             "class or function: give its class, or a function that builds a "
                             "new model (every trial trains a fresh one)")
    if not callable(model_fn):
        raise TuneInputError(f"model_fn must be a class, a function or a 'module:Name' spec, "
                             f"got {type(model_fn).__name__}")
    return functools.partial(model_fn, **kwargs) if kwargs else model_fn


def _built(build: ModelFactory) -> nn.Module:
    """The first model, checked: the one every trial builds again."""
    model = build()
    if not isinstance(model, nn.Module):
        raise TuneInputError(f"model_fn returned {type(model).__name__}, not a torch.nn.Module")
    return model


def _model_name(model_fn: ModelFactory | str, probe: nn.Module) -> str:
    """What a default study name calls the model: a named function's own name, since two
    factories returning ``nn.Sequential`` would otherwise share one study and folder; else (a
    class, a lambda, a partial) the class of the model it builds."""
    target = load_object(model_fn) if isinstance(model_fn, str) else model_fn
    if inspect.isfunction(target) and target.__name__ != "<lambda>":
        return target.__name__
    return type(probe).__name__


def _prepare_output(folder: Path) -> None:
    """Create the output folder, and check what the study writes there can be written: found
    only after training, a bad --output would throw the whole study's report away."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        raise TuneInputError(f"cannot write to the output folder {folder}: "
                             f"{err.strerror or err}") from None
    in_the_way = [folder / name for name in REPORT_FILES if (folder / name).is_dir()]
    if (folder / CHECKPOINTS).exists() and not (folder / CHECKPOINTS).is_dir():
        in_the_way.append(folder / CHECKPOINTS)
    if in_the_way:
        raise TuneInputError(f"cannot write {in_the_way[0]}: something of that name is in the "
                             "way (move it, or choose another --output)")


def _study_settings(options: TuneOptions, model_fn: ModelFactory | str,
                    model_kwargs: dict[str, Any] | None, probe: nn.Module,
                    data: Dataset) -> dict[str, Any]:
    """What defines a study: a re-run with other values must not silently join it (trials of
    two models mixed, and the winner's weights not fitting the model built at the end).

    The model is recorded as its spec, as given (the same on every machine sharing a study), or
    a callable's qualified name, with its kwargs and its number of parameters (which a lambda's
    name does not tell apart); the data as its name, sizes and input shape (a ``(train, val)``
    pair has no name).
    """
    model = model_fn if isinstance(model_fn, str) else _callable_name(model_fn)
    return {"model": model, "model_kwargs": model_kwargs or {},
            "parameters": sum(p.numel() for p in probe.parameters()), "data": data.name,
            "data_shape": data.shape(),
            "placements": [p.value for p in options.placements],
            "lr_min": options.lr_min, "lr_max": options.lr_max, "epochs": options.epochs,
            "batch_size": options.batch_size, "weight_decay": options.weight_decay,
            "sampler": options.sampler, "seed": options.seed}


def _callable_name(model_fn: ModelFactory) -> str:
    """``module:qualname``; a ``functools.partial`` as its function and the arguments it binds
    (``partial(Net, p=0.1)`` and ``partial(Net, p=0.5)`` build different models), their reprs
    without memory addresses, which change from run to run."""
    if isinstance(model_fn, functools.partial):
        bound = [*map(repr, model_fn.args), *(f"{k}={v!r}" for k, v in model_fn.keywords.items())]
        arguments = re.sub(r" at 0x[0-9a-fA-F]+", "", ", ".join(bound))
        return f"{_callable_name(model_fn.func)}({arguments})"
    return (f"{getattr(model_fn, '__module__', '?')}:"
            f"{getattr(model_fn, '__qualname__', type(model_fn).__qualname__)}")


def _report(study: optuna.Study, options: TuneOptions, trainer: Trainer,
            checkpoints: Checkpoints, console: Console) -> TuneResult:
    assert options.output is not None and options.study_name is not None
    trials = study.get_trials(deepcopy=False)
    summary = summarize(trials, options.placements)
    files = _write_report_files(trials, summary, options, trainer, checkpoints)
    print_table(console, summary, options.total_trials)
    where = shown_url(storage_url(options, options.output))
    console.print(f"Study {options.study_name!r} in {where}; files in {options.output}/")
    return TuneResult(summary["best"], summary["by_placement"], summary["trials"],
                      options.study_name, storage_url(options, options.output),
                      options.output, files)


def _write_report_files(trials: list[FrozenTrial], summary: dict[str, Any], options: TuneOptions,
                        trainer: Trainer, checkpoints: Checkpoints) -> list[Path]:
    """Write the winner, the plots and results.json, the file naming the winner, last: Ctrl-C
    or an error on the way leaves the folder's earlier report whole; the paths written."""
    assert options.output is not None
    with StagedFiles(options.output) as files:
        stage_winner(best_completed(trials), trainer, checkpoints, files)
        for name, plot in zip(PLOTS, (plot_accuracy_vs_lr, plot_learning_curves)):
            files.write(name, functools.partial(plot, trials, options.placements))
        files.write(RESULTS, functools.partial(write_results, summary))
        return files.commit()
