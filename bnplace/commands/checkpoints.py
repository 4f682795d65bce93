"""Read a training checkpoint safely: ``torch.load(..., weights_only=True)``, a state_dict (also
one nested under a common key), loaded strictly; every problem is a one-line InputError."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from bnplace.commands.errors import InputError, reported_as_usage_errors
from bnplace.loading import load_model, parse_kwargs
from bnplace.placement import Placement

# keys under which training scripts commonly nest the state_dict
_NESTED_STATE_KEYS = ("state_dict", "model_state_dict", "model")
_MAX_DETAIL = 300  # characters of load_state_dict's key lists kept in the one-line error


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


def load_checkpoint(model: Any, path: Path) -> None:
    """Load the state_dict saved at ``path`` into ``model`` (strict); InputError when it does not
    fit or is not a state_dict."""
    state = _state_dict(path)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        detail = detail if len(detail) <= _MAX_DETAIL else detail[:_MAX_DETAIL] + "..."
        raise InputError(f"{path} does not fit the model: {detail}") from err


placement_option = click.option(
    "--placement", type=click.Choice([p.value for p in Placement]), default=None,
    help="Rewrite the model to this placement before loading the checkpoint: the tuner's "
         "winner_state_dict.pt belongs to the rewritten model (its placement is in results.json).")


def checkpointed_model(spec: str, model_kwargs: str | None, placement: str | None,
                       checkpoint: Path | None, example: Any = None) -> Any:
    """The model a checkpoint belongs to: built from the spec, rewritten to ``placement`` first
    (as the tuner did, on ``example`` inputs when given), then loaded with the checkpoint's
    weights when one is given."""
    with reported_as_usage_errors():
        model = load_model(spec, parse_kwargs(model_kwargs))
    if placement is not None:
        from bnplace.graph import TraceError, rewrite

        with reported_as_usage_errors(TraceError), warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always")
            model = rewrite(model, placement, example_inputs=example)
        for note in notes:  # skipped chains, shapes fixed by tracing: a CLI note, not a warning
            click.echo(f"note: {str(note.message).removeprefix('bnplace: ')}", err=True)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    return model
