"""Fit a checkpoint's keys to a model: the layouts training scripts commonly save a state_dict in,
and a one-line account of what still does not fit.

A wrapper adds a prefix to every key (``module.`` from DataParallel/DDP, ``_orig_mod.`` from
torch.compile, ``model.`` from a Lightning module holding the model as ``self.model``), and
``torch.nn.utils.prune`` replaces ``weight`` by ``weight_orig`` and ``weight_mask``. Each is
undone only where it makes the keys fit better, and each is reported as a note: a checkpoint is
never read two ways silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WRAPPER_PREFIXES = {
    "module.": "saved from DataParallel/DistributedDataParallel",
    "_orig_mod.": "saved from a torch.compile model",
    "model.": "saved from a wrapper holding the model as `model`, such as a Lightning module",
}
_PRUNED_SUFFIXES = ("_orig", "_mask")
_LISTED_KEYS = 4  # keys named in a mismatch message; the rest are counted


def fitted_layout(state: Mapping[str, Any], expected: Mapping[str, Any]
                  ) -> tuple[dict[str, Any], list[str]]:
    """``state`` with wrapper prefixes stripped and pruned weights rebuilt where that makes its
    keys fit ``expected`` (the model's state_dict) better, and a note for each change."""
    state, notes = dict(state), []
    while True:
        prefix = _common_wrapper_prefix(state)
        stripped = {key.removeprefix(prefix): value for key, value in state.items()} \
            if prefix else None
        if stripped is None or _overlap(stripped, expected) <= _overlap(state, expected):
            break
        notes.append(f"every key starts with `{prefix}` ({WRAPPER_PREFIXES[prefix]}): "
                     f"loaded without it")
        state = stripped
    pruned = [name for name in expected if name not in state
              and all(name + suffix in state for suffix in _PRUNED_SUFFIXES)]
    for name in pruned:
        state[name] = state.pop(name + "_orig") * state.pop(name + "_mask")
    if pruned:
        notes.append(f"{_listed(pruned)} rebuilt as `_orig * _mask` (saved from a model pruned "
                     f"with torch.nn.utils.prune)")
    return state, notes


def mismatch(state: Mapping[str, Any], expected: Mapping[str, Any]) -> str | None:
    """Why ``state`` does not load strictly into a model with state_dict ``expected``: the keys
    whose shapes differ (with both shapes), then the keys missing and unexpected; None if it fits."""
    resized = [f"{key} is {_shape(state[key])} in the checkpoint, {_shape(expected[key])} in "
               f"the model" for key in expected
               if key in state and not _uninitialized(expected[key])
               and _shape(state[key]) != _shape(expected[key])]
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    parts = resized[:_LISTED_KEYS] + ([f"and {len(resized) - _LISTED_KEYS} more shapes differ"]
                                      if len(resized) > _LISTED_KEYS else [])
    if missing:
        parts.append(f"missing {_listed(missing)}")
    if unexpected:
        parts.append(f"unexpected {_listed(unexpected)}")
    return "; ".join(parts) or None


def _common_wrapper_prefix(state: Mapping[str, Any]) -> str | None:
    return next((prefix for prefix in WRAPPER_PREFIXES
                 if state and all(key.startswith(prefix) for key in state)), None)


def _overlap(state: Mapping[str, Any], expected: Mapping[str, Any]) -> int:
    return sum(key in expected for key in state)


def _listed(keys: list[str]) -> str:
    named = ", ".join(f"`{key}`" for key in keys[:_LISTED_KEYS])
    more = f" and {len(keys) - _LISTED_KEYS} more" if len(keys) > _LISTED_KEYS else ""
    return f"{len(keys)} key{'s' * (len(keys) != 1)} ({named}{more})"


def _shape(tensor: Any) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _uninitialized(tensor: Any) -> bool:
    """A lazy module's parameter before its first call: any shape loads into it."""
    from torch.nn.parameter import is_lazy

    return is_lazy(tensor)
