"""Containers that the code refers to by position: --fix must not reorder their layers.

``bn = seq[1]``, ``model.layers[2].trainable = False``, ``model.pop()``, ``self.features[:4]``,
``enumerate(self.seq)``, ``getattr(self.seq, "1")``, ``self.seq._modules``: after a swap of two
layers of ``seq`` these would name other layers. Names are compared by their text over the whole
file (a name indexed in one function pins a container of that name in another): too cautious at
worst, never too bold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from bnplace.lint.names import dotted_text, string_literal

# Views of a container that hold its layers in order (``model.layers``, ``seq._modules``).
_VIEW_ATTRIBUTES = frozenset({"layers", "_modules"})
_VIEW_METHODS = frozenset({"children", "named_children", "modules", "named_modules"})
# Builtins that hand out a container's layers with their positions, or as an indexable copy.
_POSITIONAL_BUILTINS = frozenset({"enumerate", "zip", "list", "tuple"})
# Methods that take or give a layer by position (``model.pop()``, ``seq.insert(1, m)``).
_POSITIONAL_METHODS = frozenset({"pop", "insert", "__getitem__", "__setitem__", "__delitem__"})


@dataclass(frozen=True)
class PositionalUse:
    """``names``: the names whose layers the code refers to by position (``seq``, ``self.seq``,
    ``model``); ``bindings``: the values assigned to those names, where a container may be built
    that the statement walk reads without a name (``self.blocks = nn.ModuleList([nn.Sequential(
    ...) for _ in range(3)])`` with ``self.blocks[0][1]``)."""

    names: frozenset[str]
    bindings: tuple[cst.CSTNode, ...]


def find_positional(module: cst.Module) -> PositionalUse:
    """The names ``module`` refers to by position, and what is assigned to them."""
    finder = _Finder()
    module.visit(finder)
    names = frozenset(finder.positional)
    return PositionalUse(names, tuple(node for name, node in finder.bindings if name in names))


class _Finder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.positional: set[str] = set()
        self.bindings: list[tuple[str, cst.CSTNode]] = []

    def _pin(self, node: cst.BaseExpression) -> None:
        self.positional.update(_container_names(node))

    def _bind(self, target: cst.BaseExpression, value: cst.CSTNode) -> None:
        name = dotted_text(target)
        if name is not None:
            self.bindings.append((name, value))

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if not _is_key_lookup(node):
            self._pin(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value == "_modules":  # its keys are the positions: "0", "1"...
            self._pin(node.value)

    def visit_Call(self, node: cst.Call) -> None:
        func, args = node.func, [arg.value for arg in node.args]
        if isinstance(func, cst.Name) and func.value in _POSITIONAL_BUILTINS:
            for arg in args:
                self._pin(arg)
        elif isinstance(func, cst.Name) and func.value == "getattr" and len(args) > 1 \
                and not _is_layer_name(args[1]):
            self._pin(args[0])
        elif isinstance(func, cst.Attribute):
            self._method_call(func, node.args)

    def _method_call(self, func: cst.Attribute, args: Sequence[cst.Arg]) -> None:
        """``model.pop()``, ``model.get_layer(index=2)``; ``self.add_module("head", m)`` binds
        ``self.head``."""
        method = func.attr.value
        if method in _POSITIONAL_METHODS or (method == "get_layer" and any(
                arg.keyword is not None and arg.keyword.value == "index" for arg in args)):
            self._pin(func.value)
        name = string_literal(args[0].value) if method == "add_module" and len(args) == 2 else None
        if name is not None:
            self._bind(cst.Attribute(func.value, cst.Name(name)), args[1].value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value)


def _container_names(node: cst.BaseExpression) -> list[str]:
    """The names a container expression goes by: ``model.layers`` is also ``model``, and
    ``seq.children()`` is ``seq``."""
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) \
            and node.func.attr.value in _VIEW_METHODS:
        node = node.func.value
    names = [dotted_text(node)]
    if isinstance(node, cst.Attribute) and node.attr.value in _VIEW_ATTRIBUTES:
        names.append(dotted_text(node.value))
    return [name for name in names if name is not None]


def _is_key_lookup(node: cst.Subscript) -> bool:
    """``layers["bn"]``: a ModuleDict entry by its name, not a position."""
    return (len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index)
            and _is_layer_name(node.slice[0].slice.value))


def _is_layer_name(node: cst.BaseExpression) -> bool:
    """A literal name that is no position: ``"bn"``, not ``"1"`` (a Sequential's second layer
    is named ``"1"``)."""
    name = string_literal(node)
    return name is not None and not name.isdigit()
