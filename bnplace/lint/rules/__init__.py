"""The rules. Each module holds one rule: its code, its docs text and its own valid and invalid
examples (Fixit's habit); the tests run every example.

A rule's ``check`` reads a :class:`~bnplace.lint.layers.Description` and yields
:class:`~bnplace.lint.findings.Finding` objects. It never sees libcst, files or torch, so the same
rules run over sequences read from source and over chains traced from a model.
In an invalid example, each line where a finding is expected ends with ``# <- CODE``.
"""

from __future__ import annotations

from collections.abc import Callable

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Description
from bnplace.lint.rules import bnp000, bnp001, bnp002, bnp003, bnp004, bnp005, bnp006
from bnplace.lint.rules.rule import Rule

RULES: dict[str, Rule] = {module.RULE.code: module.RULE for module in
                          (bnp000, bnp001, bnp002, bnp003, bnp004, bnp005, bnp006)}
DEFAULT_CODES: tuple[str, ...] = tuple(code for code, rule in RULES.items() if rule.default)


def run_rules(description: Description, enabled: Callable[[str], bool]) -> list[Finding]:
    """The findings of every enabled rule, each (code, location) once, in source order."""
    found: dict[tuple, Finding] = {}
    for rule in RULES.values():
        if rule.check is None or not enabled(rule.code):
            continue
        for finding in rule.check(description):
            found.setdefault((finding.code, finding.location), finding)
    return sorted(found.values(), key=lambda finding: finding.sort_key)


__all__ = ["DEFAULT_CODES", "RULES", "Rule", "run_rules"]
