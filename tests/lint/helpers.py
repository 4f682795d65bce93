"""Helpers shared by the linter tests."""

from __future__ import annotations

from pathlib import Path

from bnplace.lint.config import Settings
from bnplace.lint.engine import lint_code, lint_file
from bnplace.lint.files import SourceFile
from bnplace.lint.rules import DEFAULT_CODES

FIXTURES = Path(__file__).parent / "fixtures"


def code_lines(source: str, select: tuple[str, ...] = DEFAULT_CODES) -> list[tuple[str, int]]:
    """The (code, line) list the linter reports for a source."""
    return [(code, row) for code, row, _ in code_positions(source, select)]


def code_positions(source: str, select: tuple[str, ...] = DEFAULT_CODES
                   ) -> list[tuple[str, int, int]]:
    """The (code, line, column) list the linter reports for a source (columns from 0)."""
    enabled = Settings(select=select).enabled_for(Path("snippet.py"))
    return [(finding.code, finding.location.row, finding.location.column)
            for finding in lint_code(source, enabled)]


def module_source(init: list[str], forward: list[str]) -> str:
    """A small ``nn.Module`` named Net: ``init`` lines after ``super().__init__()`` (line 4 on),
    then ``forward(self, x)`` with the ``forward`` lines."""
    body = [f"        {line}\n" for line in init]
    steps = [f"        {line}\n" for line in forward]
    return ("class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            + "".join(body) + "    def forward(self, x):\n" + "".join(steps))


def fixed_at(source: str) -> tuple[str, list[tuple[str, int]]]:
    """The text ``--fix`` leaves of a source, and the (code, line) list it still reports."""
    path = Path("model.py")
    result = lint_file(SourceFile(path, source), Settings().enabled_for(path), fix=True)
    return result.text, [(finding.code, finding.location.row) for finding in result.findings]
