"""A faster ``copy.deepcopy`` for module trees.

``copy.deepcopy`` of an ``nn.Module`` walks a dozen bookkeeping dicts per module (hooks, sets...)
through the generic pickle protocol, which costs more than tracing the model. This walks the
module tree directly: parameters and buffers are deep-copied (shared ones stay shared), empty
bookkeeping dicts are recreated, immutable attributes are kept, and everything else goes through
``copy.deepcopy`` with the same memo. A module class with its own copy or pickle protocol is
handed to ``copy.deepcopy`` whole.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, TypeVar

import torch
from torch import fx, nn
from torch.nn.parameter import UninitializedTensorMixin

M = TypeVar("M", bound=nn.Module)

_IMMUTABLE_TYPES = frozenset((type(None), bool, int, float, complex, str, bytes, torch.dtype,
                              torch.device))
_EMPTY_OK = frozenset((dict, OrderedDict, set, list))
_PROTOCOL = ("__deepcopy__", "__reduce__", "__reduce_ex__", "__getstate__", "__setstate__")
_plain_classes: dict[type, bool] = {}


def copy_module(module: M) -> M:
    """An independent copy of ``module``, equivalent to ``copy.deepcopy(module)``."""
    return _copy(module, {})


def _computed(value: Any) -> bool:
    """Whether ``value`` is a tensor attribute computed in the last forward (the old-style
    ``spectral_norm`` and ``weight_norm`` hooks set ``module.weight`` from ``weight_orig`` on
    every call): ``copy.deepcopy`` refuses such a non-leaf tensor, and the hook computes it again
    on the next call, so a detached copy stands in for it."""
    return isinstance(value, torch.Tensor) and not value.is_leaf


def _detached(value: torch.Tensor) -> torch.Tensor:
    return value.detach().clone(memory_format=torch.preserve_format)


def _computed_attributes(module: nn.Module) -> dict[int, Any]:
    """A deepcopy memo of detached copies of the computed tensor attributes below ``module``."""
    return {id(value): _detached(value) for m in module.modules() for value in vars(m).values()
            if _computed(value)}


def _plain(cls: type) -> bool:
    """True when no class between ``cls`` and nn.Module customises copying or pickling."""
    known = _plain_classes.get(cls)
    if known is None:
        known = True
        for klass in cls.__mro__:
            if klass is nn.Module:
                break
            if any(name in vars(klass) for name in _PROTOCOL):
                known = False
                break
        _plain_classes[cls] = known
    return known


def _copy(module: Any, memo: dict[int, Any]) -> Any:
    key = id(module)
    if key in memo:
        return memo[key]
    cls = type(module)
    if not _plain(cls):
        memo.update(_computed_attributes(module))
        with torch.no_grad():  # a TorchScript module's copy clones in autograd's graph otherwise
            new = copy.deepcopy(module, memo)
        _requires_grad_as(new, module)
        if isinstance(module, fx.GraphModule) and type(new) is not cls:
            new.__class__.__name__ = cls.__name__  # its own class; deepcopy loses the name
        return new
    new = cls.__new__(cls)
    memo[key] = new
    state = module.__dict__.copy()
    state.pop("_compiled_call_impl", None)  # as nn.Module.__getstate__ does
    for name, value in state.items():
        kind = type(value)
        if kind in _IMMUTABLE_TYPES:
            continue
        if name == "_modules":
            state[name] = _copy_dict(value, memo, modules=True)
        elif name == "_parameters" or name == "_buffers":
            state[name] = _copy_dict(value, memo, modules=False)
        elif kind in _EMPTY_OK and not value:
            state[name] = kind()
        elif _computed(value):
            state[name] = _detached(value)
        else:
            state[name] = copy.deepcopy(value, memo)
    new.__dict__.update(state)
    return new


def _requires_grad_as(new: nn.Module, module: nn.Module) -> None:
    """Give ``new``'s parameters ``module``'s ``requires_grad``. A TorchScript module's deepcopy
    clones its parameters without marking them leaves: copied under ``no_grad`` they are leaves
    (else the copy would not train: no ``.grad``, and an optimizer refuses them), but do not
    require grad until told to."""
    for copied, original in zip(new.parameters(), module.parameters()):
        if copied.requires_grad != original.requires_grad:
            copied.requires_grad_(original.requires_grad)


def _copy_dict(values: dict[str, Any], memo: dict[int, Any], modules: bool) -> dict[str, Any]:
    out = type(values)()
    for name, value in values.items():
        if value is None:
            out[name] = None
        elif modules:
            out[name] = _copy(value, memo)
        else:
            out[name] = _copy_tensor(value, memo)
    return out


def _copy_tensor(value: Any, memo: dict[int, Any]) -> Any:
    """deepcopy of a plain dense tensor or Parameter without autograd state: clone it."""
    key = id(value)
    if key in memo:
        return memo[key]
    cls = type(value)
    if (cls is nn.Parameter or cls is torch.Tensor) and value.grad is None \
            and value.layout is torch.strided and not value.is_quantized \
            and value.device.type != "meta" and not getattr(value, "__dict__", None) \
            and (cls is nn.Parameter or value.is_leaf):
        data = value.detach().clone(memory_format=torch.preserve_format)
        new = nn.Parameter(data, value.requires_grad) if cls is nn.Parameter else data
        if cls is torch.Tensor and value.requires_grad:
            new.requires_grad_(True)
        memo[key] = new
        return new
    if isinstance(value, UninitializedTensorMixin):  # a lazy module's: nothing to copy yet
        new = cls(requires_grad=value.requires_grad, device=value.device, dtype=value.dtype)
    else:
        new = copy.deepcopy(value, memo)
    memo[key] = new
    return new
