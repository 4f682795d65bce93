"""Findings as text (``path:line:col: CODE message``), JSON (ruff's shape), SARIF 2.1.0 or GitHub
workflow annotations. Formatters read findings only, so they serve any front end; a finding
located by module name (a traced model) prints the name where a file finding prints line:col."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from bnplace import __version__
from bnplace.lint.findings import Finding
from bnplace.lint.rules import RULES

INFORMATION_URI = "https://github.com/bnplace/bnplace"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def where(finding: Finding) -> str:
    """``line:col``, ``cell N:line:col`` for a notebook, or the module name."""
    location = str(finding.location)
    return f"cell {finding.cell}:{location}" if finding.cell is not None else location


def text(findings: Sequence[Finding], fixed: int = 0, statistics: bool = False,
         color: bool = False, fix_with: str = "the `--fix` option", unlinted: int = 0) -> str:
    """One line per finding (or per code with ``statistics``), then a summary line that says
    how many are fixable ``fix_with`` and how many files could not be linted."""
    def style(value: str, **styles) -> str:
        return click.style(value, **styles) if color else value

    lines = []
    if statistics:
        counts = Counter(finding.code for finding in findings)
        fixable = {finding.code for finding in findings if finding.fix_title}
        for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            mark = "[*]" if code in fixable else "   "
            code_text = style(code, fg="red", bold=True)
            lines.append(f"{count:5d}\t{code_text}\t{mark} {RULES[code].name}")
    else:
        for finding in findings:
            mark = " [*]" if finding.fix_title else ""
            lines.append(f"{style(finding.path, bold=True)}:{where(finding)}: "
                         f"{style(finding.code, fg='red', bold=True)}{mark} {finding.message}")
    lines.append(_summary(findings, fixed, fix_with, unlinted))
    return "\n".join(lines)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _summary(findings: Sequence[Finding], fixed: int, fix_with: str, unlinted: int) -> str:
    """Ruff's summary line; "All checks passed!" only when every file was linted."""
    if not (findings or fixed or unlinted):
        return "All checks passed!"
    count = _plural(len(findings) + fixed, "error")
    if fixed:
        count += f" ({fixed} fixed, {len(findings)} remaining)"
    if unlinted:
        count += f"; {_plural(unlinted, 'file')} could not be linted"
    fixable = 0 if fixed else sum(1 for finding in findings if finding.fix_title)
    hint = f"\n[*] {fixable} fixable with {fix_with}." if fixable else ""
    return f"Found {count}.{hint}"


def _row_column(row: int, column: int, finding: Finding) -> dict:
    if finding.location.module is not None:
        return {"row": None, "column": None}
    return {"row": row, "column": column + 1}


def as_json(findings: Sequence[Finding]) -> str:
    """A JSON array in ruff's shape; ``cell`` is the notebook cell (rows counted within it)."""
    items = []
    for finding in findings:
        location = finding.location
        item = {
            "code": finding.code,
            "message": finding.message,
            "filename": finding.path,
            "location": _row_column(location.row, location.column, finding),
            "end_location": _row_column(location.end_row, location.end_column, finding),
            "fix": {"applicability": "safe", "message": finding.fix_title}
            if finding.fix_title else None,
            "cell": finding.cell,
        }
        if location.module is not None:
            item["module"] = location.module
        items.append(item)
    return json.dumps(items, indent=2)


def _sarif_rule(code: str) -> dict:
    rule = RULES[code]
    return {"id": code, "name": rule.name, "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": rule.what}, "help": {"text": rule.fix},
            "helpUri": f"{INFORMATION_URI}/blob/main/docs/rules/{code}.md",
            "defaultConfiguration": {"level": "error"}}


def _sarif_result(finding: Finding) -> dict:
    """A SARIF result. A notebook cell's rows are no lines of the .ipynb file, so a notebook
    finding points at the file alone, names the cell in its message (as the text format does)
    and keeps the rows within the cell in ``properties``."""
    location = finding.location
    region = {"startLine": location.row, "startColumn": location.column + 1,
              "endLine": location.end_row, "endColumn": location.end_column + 1}
    result = {"ruleId": finding.code, "level": "error", "message": {"text": finding.message}}
    artifact = {"artifactLocation": {"uri": Path(finding.path).as_posix()}}
    if location.module is not None:
        place = {"logicalLocations": [{"fullyQualifiedName": location.module}]}
    elif finding.cell is None:
        place = {"physicalLocation": {**artifact, "region": region}}
    else:
        place = {"physicalLocation": artifact}
        result["message"] = {"text": f"{where(finding)}: {finding.message}"}
        result["properties"] = {"cell": finding.cell, "cellRegion": region}
    result["locations"] = [place]
    return result


def as_sarif(findings: Sequence[Finding]) -> str:
    """A SARIF 2.1.0 log for code scanning."""
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "bnplace", "version": __version__,
                                "informationUri": INFORMATION_URI,
                                "rules": [_sarif_rule(code) for code in RULES]}},
            "results": [_sarif_result(finding) for finding in findings],
        }],
    }
    return json.dumps(log, indent=2)


def _escape(value: str, property_value: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if property_value else value


def as_github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands: one ``::error`` annotation per finding. A notebook
    finding annotates the file as a whole (its rows count within a cell, not the .ipynb's lines)
    and names the cell in its title; ruff gives such findings a stand-in line instead."""
    lines = []
    for finding in findings:
        location = finding.location
        cell = f" in cell {finding.cell}" if finding.cell is not None else ""
        properties = {"title": f"bnplace ({finding.code}){cell}", "file": finding.path}
        if location.module is None and finding.cell is None:
            properties.update(line=location.row, col=location.column + 1,
                              endLine=location.end_row, endColumn=location.end_column + 1)
        joined = ",".join(f"{key}={_escape(str(value), True)}" for key, value in properties.items())
        message = f"{finding.path}:{where(finding)}: {finding.code} {finding.message}"
        lines.append(f"::error {joined}::{_escape(message)}")
    return "\n".join(lines)


MACHINE_FORMATS: dict[str, Callable[[Sequence[Finding]], str]] = {
    "json": as_json, "sarif": as_sarif, "github": as_github}
FORMATS = ("text", *MACHINE_FORMATS)
