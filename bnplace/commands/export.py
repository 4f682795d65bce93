"""``bnplace export``: a trained checkpoint in, an inference model out (BatchNorm folded: --fold).

The checkpoint is read with ``torch.load(..., weights_only=True)``, so loading it runs no pickled
code. The output is the whole module (``torch.save(model)``): a folded model has a different
architecture from the class that built the checkpoint, so weights alone would not describe it.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from bnplace.commands.errors import InputError, reported_as_usage_errors
from bnplace.loading import load_model, parse_kwargs

# keys under which training scripts commonly nest the state_dict
_NESTED_STATE_KEYS = ("state_dict", "model_state_dict", "model")
_MAX_DETAIL = 300  # characters of load_state_dict's key lists kept in the one-line error


@click.command("export")
@click.option("--model", "spec", required=True, help="The model: 'pkg.mod:Net' or 'file.py:Net'.")
@click.option("--model-kwargs", default=None, help="JSON object of constructor arguments.")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path),
              help="A state_dict saved with torch.save (read with weights_only=True).")
@click.option("--fold", "do_fold", is_flag=True,
              help="Merge every foldable BatchNorm into a neighbouring Linear/Conv.")
@click.option("--output", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Where to save the eval-mode model (torch.save of the whole module).")
def export(spec: str, model_kwargs: str | None, checkpoint: Path, do_fold: bool,
           output: Path) -> None:
    """Load a checkpoint into a model, optionally fold its BatchNorm away, and save it.

    Load the result with ``torch.load(FILE, weights_only=False)`` (it is a pickled module).
    """
    import torch

    with reported_as_usage_errors():
        model = load_model(spec, parse_kwargs(model_kwargs))
    _load_into(model, _state_dict(checkpoint), checkpoint)
    model.eval()
    if do_fold:
        from bnplace.graph import fold_with_report

        model, report = fold_with_report(model)
        click.echo(f"Folded {len(report.folded)} BatchNorm layer"
                   f"{'s' * (len(report.folded) != 1)}, left {len(report.left)}.")
        for folded in report.folded:
            click.echo(f"  folded {folded.batchnorm} into {folded.direction} {folded.into}")
        for name, why in report.left.items():
            click.echo(f"  left {name}: {why}")
    try:
        torch.save(model, output)
    except OSError as err:
        raise InputError(f"cannot write {output}: {err.strerror or err}") from err
    click.echo(f"Saved the eval-mode model to {output}")


def _state_dict(path: Path) -> Mapping[str, Any]:
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"no such checkpoint: {path}") from None
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError, ValueError) as err:
        raise InputError(f"cannot read checkpoint {path} with weights_only=True: "
                         f"{_cause(err)}") from err
    if isinstance(loaded, Mapping):
        for key in _NESTED_STATE_KEYS:
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
    if not isinstance(loaded, Mapping) or not all(
            isinstance(value, torch.Tensor) for value in loaded.values()):
        raise InputError(f"{path} does not hold a state_dict (a mapping of names to tensors)")
    return loaded


def _cause(err: BaseException) -> str:
    """The informative line of a torch.load error (the weights-only unpickler's own reason)."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _load_into(model: Any, state: Mapping[str, Any], path: Path) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        detail = detail if len(detail) <= _MAX_DETAIL else detail[:_MAX_DETAIL] + "..."
        raise InputError(f"{path} does not fit the model: {detail}") from err
