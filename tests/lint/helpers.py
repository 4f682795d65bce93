"""Helpers shared by the linter tests."""

from __future__ import annotations

from pathlib import Path

from bnplace.lint.config import Settings
from bnplace.lint.engine import lint_code
from bnplace.lint.rules import DEFAULT_CODES

FIXTURES = Path(__file__).parent / "fixtures"


def code_lines(source: str, select: tuple[str, ...] = DEFAULT_CODES) -> list[tuple[str, int]]:
    """The (code, line) list the linter reports for a source."""
    enabled = Settings(select=select).enabled_for(Path("snippet.py"))
    return [(finding.code, finding.location.row) for finding in lint_code(source, enabled)]
