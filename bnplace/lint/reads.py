"""The places where a statement reads names that hold tensors (``h`` in ``return out, h``,
``self.h`` in ``self.attn(out, self.h)``), for the statement-order read counts of
:mod:`bnplace.lint.sequences`.

One visitor class serves every statement: the walk runs once per statement of every walked
block, and building a class per call cost more than the walk of a short statement.
"""

from __future__ import annotations

from collections.abc import Collection

import libcst as cst

from bnplace.lint.names import dotted_text


def names_read(node: cst.CSTNode, names: Collection[str]) -> list[str]:
    """Each place where ``node`` reads one of ``names`` (``h`` or ``self.h``), once per place.
    A name it binds (an assignment's or a comprehension's target, a walrus's name) is no read;
    one it changes in place (``h += 1``, ``h[0] = 0``, ``h.data = y``) is. With no names to look
    for the statement is not walked."""
    if not names:
        return []
    collector = _ReadCollector(names)
    node.visit(collector)
    return collector.found


class _ReadCollector(cst.CSTVisitor):
    def __init__(self, names: Collection[str]) -> None:
        super().__init__()
        self.names = names
        self.found: list[str] = []

    def visit_Name(self, node: cst.Name) -> bool:
        if node.value in self.names:
            self.found.append(node.value)
        return False

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        name = dotted_text(node)
        if name in self.names:
            self.found.append(name)
        else:
            node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)  # not the keyword's name
        return False

    def visit_AssignTarget(self, node: cst.AssignTarget) -> bool:
        self._visit_target(node.target)
        return False

    def visit_AnnAssign(self, node: cst.AnnAssign) -> bool:
        self._visit_target(node.target)
        if node.value is not None:
            node.value.visit(self)
        return False

    def visit_NamedExpr(self, node: cst.NamedExpr) -> bool:
        node.value.visit(self)
        return False

    def visit_CompFor(self, node: cst.CompFor) -> bool:
        node.iter.visit(self)
        for test in node.ifs:
            test.visit(self)
        if node.inner_for_in is not None:
            node.inner_for_in.visit(self)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        node.body.visit(self)
        return False

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False

    def visit_Global(self, node: cst.Global) -> bool:
        return False

    def visit_Nonlocal(self, node: cst.Nonlocal) -> bool:
        return False

    def _visit_target(self, target: cst.BaseExpression) -> None:
        """Visit what an assignment target reads: nothing for a name it binds, the object of an
        attribute or item it sets (``h`` in ``h[0] = 0``, ``self`` in ``self.cache = h``)."""
        if isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._visit_target(element.value)
        elif isinstance(target, cst.StarredElement):
            self._visit_target(target.value)
        elif isinstance(target, cst.Attribute):
            target.value.visit(self)
        elif isinstance(target, cst.Subscript):
            target.value.visit(self)
            for element in target.slice:
                element.visit(self)
