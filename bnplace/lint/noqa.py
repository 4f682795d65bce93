"""``# noqa`` and ``# noqa: BNP001,BNP002`` comments on the reported line."""

from __future__ import annotations

import re

from bnplace.lint.findings import Finding

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?",
                   re.IGNORECASE)


def is_suppressed(finding: Finding, lines: list[str]) -> bool:
    """Whether the finding's line carries a bare ``# noqa`` or a ``# noqa:`` naming its code."""
    row = finding.location.row
    if not 1 <= row <= len(lines):
        return False
    for match in _NOQA.finditer(lines[row - 1]):
        codes = match.group("codes")
        if codes is None or finding.code in re.split(r"[,\s]+", codes.upper()):
            return True
    return False
