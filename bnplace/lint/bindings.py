"""The one value a name is bound to, read from the source through libcst's scope analysis
(``ScopeProvider``) and never run.

A name read in a function may be bound anywhere its scope reaches: ``HIDDEN = 128`` or
``NORM = partial(nn.BatchNorm2d, eps=1e-3)`` at the top of the module, ``norm_layer =
nn.BatchNorm2d`` at the top of a class (read as ``self.norm_layer`` or ``cls.norm_layer`` in a
method), or a parameter's default (``def __init__(self, norm_layer=nn.BatchNorm2d)``). Its value is
known only when the name has exactly one binding and that binding is a plain ``NAME = value``
statement at the top of a module, class or function body (or the parameter): a second binding, or
one inside an ``if``, a loop or a ``try``, makes the value unknowable.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping

import libcst as cst
from libcst.metadata import (Assignment, BaseAssignment, ClassScope, FunctionScope, GlobalScope,
                             Scope)


class Bindings:
    """The values the names of one module are bound to."""

    def __init__(self, module: cst.Module, code: str,
                 scopes: Mapping[cst.CSTNode, Scope | None]) -> None:
        """``code`` is the module's source."""
        self._module = module
        self._code = code
        self._scopes = scopes
        self._blocks: dict[cst.CSTNode, dict[cst.CSTNode, cst.BaseExpression]] = {}
        self._classes: list[cst.ClassDef] | None = None

    def assigned(self, node: cst.BaseExpression) -> cst.BaseExpression | None:
        """The value of the one ``NAME = value`` statement a name (or ``self.NAME``) reads."""
        if isinstance(node, cst.Name):
            scope = self._scopes.get(node)
            return None if scope is None else self._value(scope[node.value])
        if isinstance(node, cst.Attribute):
            return self._class_attribute(node)
        return None

    def default(self, node: cst.BaseExpression) -> cst.BaseExpression | None:
        """The default of the parameter a name reads, when nothing else binds the name. A caller
        may pass another value: what reads it must not take the default for certain."""
        scope = self._scopes.get(node) if isinstance(node, cst.Name) else None
        found = list(scope[node.value]) if scope is not None else []
        if len(found) == 1 and isinstance(found[0], Assignment) \
                and isinstance(found[0].node, cst.Param):
            return found[0].node.default
        return None

    def defined_class(self, node: cst.BaseExpression) -> cst.ClassDef | None:
        """The class statement a name reads, when that is its one binding."""
        scope = self._scopes.get(node) if isinstance(node, cst.Name) else None
        found = list(scope[node.value]) if scope is not None else []
        if len(found) == 1 and isinstance(found[0], Assignment) \
                and isinstance(found[0].node, cst.ClassDef):
            return found[0].node
        return None

    def _class_attribute(self, node: cst.Attribute) -> cst.BaseExpression | None:
        """``self.HIDDEN`` in a method: the class body's ``HIDDEN = 128``, unless the file
        assigns the attribute elsewhere too (``self.HIDDEN = hidden``, or a class overriding it)."""
        owner = node.value
        if not (isinstance(owner, cst.Name) and owner.value in ("self", "cls")):
            return None
        method = self._scopes.get(owner)
        name = node.attr.value
        if not (isinstance(method, FunctionScope) and isinstance(method.parent, ClassScope)):
            return None
        value = self._value(method.parent.assignments[name])
        if value is None:
            return None
        if re.search(rf"\.{re.escape(name)}\b\s*\S{{0,2}}=", self._code):
            return None  # ``self.HIDDEN = hidden`` (or ``+=``) somewhere: not the class's value
        return value if self._classes_assigning(name) == 1 else None  # a subclass may override

    def _classes_assigning(self, name: str) -> int:
        """How many class bodies in the file bind ``name`` at their top."""
        if self._classes is None:
            self._classes = _classes(self._module)
        return sum(1 for block in self._classes
                   if any(isinstance(target, cst.Name) and target.value == name
                          for target in self._values_in(block)))

    def _value(self, assignments: Collection[BaseAssignment]) -> cst.BaseExpression | None:
        """The value of the one ``NAME = value`` statement among a name's assignments."""
        found = list(assignments)
        if len(found) != 1 or not isinstance(found[0], Assignment):
            return None
        assignment = found[0]
        block = (self._module if isinstance(assignment.scope, GlobalScope)
                 else getattr(assignment.scope, "node", None))
        if not isinstance(block, (cst.Module, cst.ClassDef, cst.FunctionDef)):
            return None
        return self._values_in(block).get(assignment.node)

    def _values_in(self, block: cst.Module | cst.ClassDef | cst.FunctionDef
                   ) -> dict[cst.CSTNode, cst.BaseExpression]:
        if block not in self._blocks:
            self._blocks[block] = dict(_assigned_values(block))
        return self._blocks[block]


def _classes(module: cst.Module) -> list[cst.ClassDef]:
    """Every class in the module, nested ones too."""
    found: list[cst.ClassDef] = []

    class _Collector(cst.CSTVisitor):
        def visit_ClassDef(self, node: cst.ClassDef) -> None:
            found.append(node)

    module.visit(_Collector())
    return found


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
