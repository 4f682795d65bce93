"""Save a whole module for ``bnplace rewrite --output`` and ``bnplace export --output``.

The file is written next to its destination and moved over it only when complete, so a model
that cannot be pickled (a class defined inside a function) leaves neither a half-written file
nor a broken copy of an earlier export. A missing folder is created, as a training script's
checkpoint folder would be.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from bnplace.atomic import write_atomically
from bnplace.commands.errors import InputError
from bnplace.loading import describe_error


def save_whole(obj: Any, path: Path) -> None:
    """``torch.save(obj, path)``, all or nothing; InputError naming ``path`` when it fails."""
    import torch

    parametrized = _parametrized(obj)
    if parametrized is not None:
        module, tensor = parametrized
        owner = f"`{module}`" if module else "the model itself"
        raise InputError(
            f"cannot save to {path}: `{f'{module}.' if module else ''}{tensor}` is parametrized "
            f"(torch.nn.utils.parametrize), which torch.save refuses: call "
            f"parametrize.remove_parametrizations on {owner} for {tensor!r} first (it keeps the "
            f"current value), or save the model's state_dict()")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, functools.partial(torch.save, obj))
    except Exception as err:  # an unwritable place, or a module that cannot be pickled
        raise InputError(f"cannot save to {path}: {_reason(err)}") from None


def _parametrized(obj: Any) -> tuple[str, str] | None:
    """The first parametrized tensor of ``obj`` (module name, tensor name): torch.save pickles
    none, and its error is cut off at a line break, after "See:"."""
    from torch import nn
    from torch.nn.utils import parametrize

    if not isinstance(obj, nn.Module):
        return None
    for name, m in obj.named_modules():
        if parametrize.is_parametrized(m):
            return name, next(iter(m.parametrizations))
    return None


def _reason(err: Exception) -> str:
    """The OS's reason when there is one: torch.save reports a file it cannot open as a
    RuntimeError ``[enforce fail at inline_container.cc:...] . open file failed with strerror:
    Permission denied``."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    _, found, strerror = str(err).partition("strerror: ")
    return strerror.strip() if found else describe_error(err)
