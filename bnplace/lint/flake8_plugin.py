"""The BNP rules as a flake8 plugin (entry point ``BNP`` in pyproject.toml), for projects that
live in flake8: flake8's own ``# noqa``, ``select``/``ignore`` and per-file-ignores apply.

Default rules are always reported; an opt-in rule (BNP006) is reported when flake8's ``select``
or ``extend-select`` names it in full. Syntax errors are flake8's own E999, so BNP000 is not
reported here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

from bnplace import __version__
from bnplace.lint.engine import lint_code
from bnplace.lint.rules import RULES


class BnplacePlugin:
    name = "bnplace"
    version = __version__
    opted_in: frozenset[str] = frozenset()

    def __init__(self, tree: ast.AST, lines: list[str]) -> None:
        self.lines = lines  # flake8 hands us the parsed tree too; libcst reads the text

    @classmethod
    def parse_options(cls, options: Any) -> None:
        named = [*(getattr(options, "select", None) or ()),
                 *(getattr(options, "extend_select", None) or ())]
        cls.opted_in = frozenset(code for code in named if code in RULES)

    def _enabled(self, code: str) -> bool:
        return code != "BNP000" and (RULES[code].default or code in self.opted_in)

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        for finding in lint_code("".join(self.lines), self._enabled):
            message = f"{finding.code} {finding.message}"
            yield finding.location.row, finding.location.column, message, type(self)
