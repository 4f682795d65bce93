"""Integers written with names and arithmetic (``HIDDEN = 128``, then ``nn.Linear(64, HIDDEN)``,
``nn.Linear(16 * 5 * 5, 120)``), read from the source and never run.

A name stands for a constant when it is bound to one value (:mod:`bnplace.lint.bindings`: one
``NAME = value`` statement, or ``self.NAME``/``cls.NAME`` read from the class body) that is a
constant in turn. A parameter is never a constant, even with a default: a caller may pass another
value.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import libcst as cst

from bnplace.lint.bindings import Bindings

# A constant defined through more names than this is left unknown (and so is a cycle).
_MAX_DEPTH = 16
# Widths are small; anything past this is no width (and ``2 ** 10 ** 9`` is never computed).
_LIMIT = 2 ** 63
_OPERATORS: dict[type, Callable[[int, int], int]] = {
    cst.Add: operator.add, cst.Subtract: operator.sub, cst.Multiply: operator.mul,
    cst.FloorDivide: operator.floordiv, cst.Modulo: operator.mod, cst.Power: operator.pow}


class Constants:
    """The integer values of one module's constant expressions."""

    def __init__(self, bindings: Bindings) -> None:
        self._bindings = bindings

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
        if isinstance(node, (cst.Name, cst.Attribute)):
            return self.int_value(self._bindings.assigned(node), depth + 1)
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
