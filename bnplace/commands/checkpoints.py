"""Read a training checkpoint safely: ``torch.load(..., weights_only=True)``, a state_dict (also
one nested under a common key, or in a wrapper's layout: see
:mod:`bnplace.commands.state_layouts`), loaded strictly; every problem is a one-line InputError."""

from __future__ import annotations

import errno
import json
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from bnplace.commands.errors import InputError, reported_as_usage_errors
from bnplace.commands.inputs import example_input, fitted_example
from bnplace.commands.state_layouts import fitted_layout, mismatch
from bnplace.loading import load_model, parse_kwargs
from bnplace.placement import Placement
from bnplace.study_files import RESULTS, WINNER_STATE_DICT

# keys under which training scripts commonly nest the state_dict
_NESTED_STATE_KEYS = ("state_dict", "model_state_dict", "model")
_UNSAFE_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global")
# what torch.load says of a file cut short (zip or legacy format)
_TRUNCATED = ("failed finding central directory", "unexpected EOF")


def _state_dict(path: Path) -> Mapping[str, Any]:
    import torch

    if path.suffix == ".safetensors":
        raise InputError(f"{path} is a safetensors file; --checkpoint reads torch.save files: "
                         f"convert it with torch.save(safetensors.torch.load_file(FILE), "
                         f"'state.pt')")
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
        held = (f"a dict with keys {', '.join(map(repr, list(loaded)[:8]))}, none of "
                f"{', '.join(map(repr, _NESTED_STATE_KEYS))} holding one"
                if isinstance(loaded, Mapping) else f"a {type(loaded).__name__}")
        raise InputError(f"{path} does not hold a state_dict (a mapping of names to tensors): "
                         f"it holds {held}")
    return loaded


def _cause(err: BaseException) -> str:
    """The informative line of a torch.load error (the weights-only unpickler's own reason)."""
    text = str(err)
    unsafe = _UNSAFE_GLOBAL.search(text)
    if unsafe:
        return (f"it pickles a `{unsafe.group(1)}` object, which only weights_only=False would "
                f"import (a whole model saved with torch.save(model)?): save its state_dict() "
                f"instead")
    cut_short = isinstance(err, EOFError) or (isinstance(err, OSError)
                                              and err.errno == errno.EINVAL)
    if cut_short or any(sign in text for sign in _TRUNCATED):
        return "the file is truncated or corrupt"
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def load_checkpoint(model: Any, path: Path, placement: str | None = None) -> None:
    """Load the state_dict saved at ``path`` into ``model`` (strict, after undoing a wrapper's
    key prefix or pruning, with a note); InputError when it does not fit or is not a
    state_dict."""
    expected = model.state_dict()
    state, notes = fitted_layout(_state_dict(path), expected)
    for note in notes:
        click.echo(f"note: {path}: {note}", err=True)
    problem = mismatch(state, expected)
    rewritten = f" rewritten to {placement}" if placement else ""
    if problem is not None:
        hint = "" if placement or state.keys() == expected.keys() else (
            " (a tuner's winner_state_dict.pt needs the --placement it was tuned with)")
        raise InputError(f"{path} does not fit the model{rewritten}: {problem}{hint}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # what the key and shape check cannot see (a custom loader hook)
        raise InputError(f"{path} does not fit the model{rewritten}: "
                         f"{' '.join(str(err).split())}") from err


placement_option = click.option(
    "--placement", type=click.Choice([p.value for p in Placement]), default=None,
    help="Rewrite the model to this placement before loading the checkpoint: the tuner's "
         "winner_state_dict.pt belongs to the rewritten model (its placement is in results.json).")


def checkpointed_model(spec: str, model_kwargs: str | None, placement: str | None,
                       checkpoint: Path | None, input_shape: str | None = None
                       ) -> tuple[Any, Any]:
    """The model a checkpoint belongs to, and example inputs of ``input_shape`` it runs on (None
    without one): built from the spec, rewritten to ``placement`` first (as the tuner did, on
    the example inputs), then loaded with the checkpoint's weights when one is given."""
    if checkpoint is not None:
        _check_tuned_placement(checkpoint, placement)
    with reported_as_usage_errors(ValueError):
        example = example_input(input_shape)
    with reported_as_usage_errors():
        model = load_model(spec, parse_kwargs(model_kwargs))
    if example is not None:
        with reported_as_usage_errors(ValueError):
            example, note = fitted_example(model, example, input_shape)
        if note:
            click.echo(f"note: {note}", err=True)
    if placement is not None:
        from bnplace.graph import TraceError, rewrite

        with reported_as_usage_errors(TraceError), warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always")
            model = rewrite(model, placement, example_inputs=example)
        for note in notes:  # skipped chains, shapes fixed by tracing: a CLI note, not a warning
            click.echo(f"note: {str(note.message).removeprefix('bnplace: ')}", err=True)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, placement)
    return model, example


def _check_tuned_placement(checkpoint: Path, placement: str | None) -> None:
    """Refuse a study's winner_state_dict.pt given without the placement its results.json names.

    The winner's weights belong to the model rewritten to that placement; where another layout
    has the same keys and shapes (after-activation and after-dropout move a BN, not its
    weights), they would load without an error into a model that computes something else.
    """
    results = checkpoint.parent / RESULTS
    if checkpoint.name != WINNER_STATE_DICT or not results.is_file():
        return
    try:
        tuned = json.loads(results.read_text())["best"]["placement"]
    except (OSError, ValueError, KeyError, TypeError):  # not a study's results.json after all
        return
    if placement != tuned:
        given = f"--placement {placement}" if placement else "no --placement"
        raise InputError(f"{checkpoint} is a study's winner, rewritten to {tuned} (so says "
                         f"{results}), but {given} was given: pass --placement {tuned}")
