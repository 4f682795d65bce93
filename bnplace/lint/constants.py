"""Integers written with names and arithmetic (``HIDDEN = 128``, then ``nn.Linear(64, HIDDEN)``,
``nn.Linear(16 * 5 * 5, 120)``), read from the source and never run.

A name stands for a constant when libcst's scope analysis (``ScopeProvider``) finds exactly one
assignment to it where it is read, and that assignment is a plain ``NAME = value`` statement at
the top of a module, class or function body whose value is a constant in turn. ``self.NAME`` and
``cls.NAME`` in a method read such a class-level constant, unless the file assigns the attribute
somewhere. A parameter is never a constant, even with a default: a caller may pass another value.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Iterator, Mapping

import libcst as cst
from libcst.metadata import (Assignment, BaseAssignment, ClassScope, FunctionScope, GlobalScope,
                             Scope)

# A constant defined through more names than this is left unknown (and so is a cycle).
_MAX_DEPTH = 16
# Widths are small; anything past this is no width (and ``2 ** 10 ** 9`` is never computed).
_LIMIT = 2 ** 63
_OPERATORS: dict[type, Callable[[int, int], int]] = {
    cst.Add: operator.add, cst.Subtract: operator.sub, cst.Multiply: operator.mul,
    cst.FloorDivide: operator.floordiv, cst.Modulo: operator.mod, cst.Power: operator.pow}


class Constants:
    """The integer values of one module's constant expressions."""

    def __init__(self, module: cst.Module, scopes: Mapping[cst.CSTNode, Scope | None]) -> None:
        self._module = module
        self._scopes = scopes
        self._blocks: dict[cst.CSTNode, dict[cst.CSTNode, cst.BaseExpression]] = {}

    def int_value(self, node: cst.BaseExpression | None, depth: int = 0) -> int | None:
        """The value of an integer expression, or None when it is not a constant."""
        if node is None or depth > _MAX_DEPTH:
            return None
        if isinstance(node, cst.Integer):
            return int(node.evaluated_value)
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
            value = self.int_value(node.expression, depth)
            return None if value is None else -value
        if isinstance(node, cst.BinaryOperation):
            return self._arithmetic(node, depth)
        if isinstance(node, cst.Name):
            scope = self._scopes.get(node)
            return None if scope is None else self._assigned(scope[node.value], depth)
        if isinstance(node, cst.Attribute):
            return self._class_constant(node, depth)
        return None

    def _arithmetic(self, node: cst.BinaryOperation, depth: int) -> int | None:
        apply = _OPERATORS.get(type(node.operator))
        left, right = self.int_value(node.left, depth), self.int_value(node.right, depth)
        if apply is None or left is None or right is None:
            return None
        if (isinstance(node.operator, cst.Power) and not 0 <= right <= 64
                or isinstance(node.operator, (cst.FloorDivide, cst.Modulo)) and right == 0):
            return None
        value = apply(left, right)
        return value if abs(value) < _LIMIT else None

    def _class_constant(self, node: cst.Attribute, depth: int) -> int | None:
        """``self.HIDDEN`` in a method: the class body's ``HIDDEN = 128``."""
        owner = node.value
        if not (isinstance(owner, cst.Name) and owner.value in ("self", "cls")):
            return None
        method = self._scopes.get(owner)
        name = node.attr.value
        if not (isinstance(method, FunctionScope) and isinstance(method.parent, ClassScope)):
            return None
        if re.search(rf"\.{re.escape(name)}\b\s*\S{{0,2}}=", self._module.code):
            return None  # ``self.HIDDEN = hidden`` (or ``+=``) somewhere: not the class's value
        return self._assigned(method.parent.assignments[name], depth)

    def _assigned(self, assignments: Collection[BaseAssignment], depth: int) -> int | None:
        """The value of the one ``NAME = value`` statement among a name's assignments."""
        found = list(assignments)
        if len(found) != 1 or not isinstance(found[0], Assignment):
            return None
        assignment = found[0]
        block = (self._module if isinstance(assignment.scope, GlobalScope)
                 else getattr(assignment.scope, "node", None))
        if not isinstance(block, (cst.Module, cst.ClassDef, cst.FunctionDef)):
            return None
        if block not in self._blocks:
            self._blocks[block] = dict(_assigned_values(block))
        return self.int_value(self._blocks[block].get(assignment.node), depth + 1)


def _assigned_values(block: cst.Module | cst.ClassDef | cst.FunctionDef
                     ) -> Iterator[tuple[cst.CSTNode, cst.BaseExpression]]:
    """(target name, value) for each ``NAME = value`` statement at the top of a body."""
    body = block.body if isinstance(block, cst.Module) else block.body.body
    for statement in body:
        smalls = statement.body if isinstance(statement, cst.SimpleStatementLine) else (statement,)
        for small in smalls:
            if isinstance(small, cst.Assign):
                yield from ((target.target, small.value) for target in small.targets
                            if isinstance(target.target, cst.Name))
            elif (isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name)
                  and small.value is not None):
                yield small.target, small.value
