"""Which chain role an fx node plays: :mod:`bnplace.placement`'s name table resolved on torch."""

from __future__ import annotations

import functools
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from bnplace.graph.tracing import module_types
from bnplace.placement import LAYER_NAMES, LayerKind

CHAIN_KINDS = (LayerKind.LINEAR, LayerKind.ACTIVATION, LayerKind.DROPOUT, LayerKind.BATCHNORM)


@functools.lru_cache(maxsize=None)
def function_kinds() -> dict[object, LayerKind]:
    """torch callables (``F.relu``, ``torch.relu``, ``torch._C._nn.gelu``...) -> their kind."""
    table: dict[object, LayerKind] = {}
    spaces = (F, torch, torch._C._nn, torch.special)
    for kind in CHAIN_KINDS:
        for name in LAYER_NAMES[kind].torch_functions:
            for space in spaces:
                fn = getattr(space, name, None)
                if callable(fn):
                    table.setdefault(fn, kind)
    return table


@functools.lru_cache(maxsize=None)
def method_kinds() -> dict[str, LayerKind]:
    """Tensor method names (``x.relu()``, ``x.sigmoid_()``...) -> their kind."""
    table: dict[str, LayerKind] = {}
    for kind in (LayerKind.ACTIVATION, LayerKind.DROPOUT):
        for name in LAYER_NAMES[kind].torch_functions:
            if hasattr(torch.Tensor, name):
                table[name] = kind
    return table


ADD_FUNCTIONS = (operator.add, operator.iadd, torch.add)
ADD_METHODS = ("add", "add_")


def module_kind(module: nn.Module) -> LayerKind | None:
    """The chain role of a module instance (subclasses included)."""
    for kind in (LayerKind.BATCHNORM, LayerKind.LINEAR, LayerKind.ACTIVATION, LayerKind.DROPOUT):
        if isinstance(module, module_types(kind)):
            return kind
    return None


def node_kind(node: fx.Node, modules: dict[str, nn.Module]) -> LayerKind | None:
    """The chain role of an fx node, or None."""
    if node.op == "call_module":
        module = modules.get(node.target)  # type: ignore[arg-type]
        return module_kind(module) if module is not None else None
    if node.op == "call_function":
        try:
            return function_kinds().get(node.target)
        except TypeError:  # unhashable target
            return None
    if node.op == "call_method":
        return method_kinds().get(node.target)  # type: ignore[arg-type]
    return None


def main_input(node: fx.Node) -> object:
    """The tensor a layer node transforms: its first argument (or ``input=``)."""
    if node.args:
        return node.args[0]
    return node.kwargs.get("input", node.kwargs.get("self"))


def with_main_input(args: tuple, kwargs: dict, value: fx.Node) -> tuple[tuple, dict]:
    """A layer call's args and kwargs with its main input replaced by ``value``."""
    if args:
        return (value, *args[1:]), dict(kwargs)
    kwargs = dict(kwargs)
    kwargs["input" if "input" in kwargs else "self"] = value
    return (), kwargs


def is_add(node: fx.Node) -> bool:
    if node.op == "call_function":
        return node.target in ADD_FUNCTIONS
    return node.op == "call_method" and node.target in ADD_METHODS


def describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """A short label for a node: ``Linear``, ``F.relu``, ``Tensor.relu_``..."""
    if node.op == "call_module":
        module = modules.get(node.target)  # type: ignore[arg-type]
        return type(module).__name__ if module is not None else str(node.target)
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    name = getattr(target, "__name__", str(target))
    if getattr(F, name, None) is target:
        return f"F.{name}"
    if getattr(torch, name, None) is target:
        return f"torch.{name}"
    return name
