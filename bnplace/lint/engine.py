"""One source through the linter: pre-filter, parse (BNP000 when it fails), describe, run the
rules, honour ``# noqa``; and the fix loop (fix, lint again, until nothing more is fixed)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

import libcst as cst
from libcst.metadata import MetadataWrapper

from bnplace.lint.files import SourceFile
from bnplace.lint.findings import Finding
from bnplace.lint.fixes import apply_fixes
from bnplace.lint.layers import Location
from bnplace.lint.noqa import is_suppressed
from bnplace.lint.rules import run_rules
from bnplace.lint.sequences import describe
from bnplace.placement import LAYER_NAMES, LayerKind

_MAX_FIX_ROUNDS = 10
# A source that names no BatchNorm cannot break any rule: skip it without parsing.
_BATCHNORM_NAMES = LAYER_NAMES[LayerKind.BATCHNORM]
_MENTIONS_BATCHNORM = re.compile("|".join(map(re.escape, sorted({
    *_BATCHNORM_NAMES.torch_modules, *_BATCHNORM_NAMES.torch_functions,
    *_BATCHNORM_NAMES.keras_layers}))))


def lint_code(code: str, enabled: Callable[[str], bool]) -> list[Finding]:
    """The findings for one Python source (rows and columns in ``code``)."""
    if not _MENTIONS_BATCHNORM.search(code):
        return []
    try:
        module = cst.parse_module(code)
    except cst.ParserSyntaxError as err:
        if not enabled("BNP000"):
            return []
        where = Location(err.raw_line, err.raw_column, err.raw_line, err.raw_column)
        return [Finding("BNP000", f"SyntaxError: {err.message}", where)]
    findings = run_rules(describe(MetadataWrapper(module, unsafe_skip_copy=True)), enabled)
    lines = code.splitlines()
    return [finding for finding in findings if not is_suppressed(finding, lines)]


def lint_file(source: SourceFile, enabled: Callable[[str], bool], fix: bool = False
              ) -> tuple[list[Finding], str]:
    """The findings left in a file and its code after fixing (the same code unless ``fix``)."""
    code = source.code
    findings = lint_code(code, enabled)
    for _ in range(_MAX_FIX_ROUNDS if fix else 0):
        fixable = [finding for finding in findings if finding.fix_title]
        fixed = apply_fixes(code, fixable) if fixable else code
        if fixed == code:
            break
        code, findings = fixed, lint_code(fixed, enabled)
    return [_placed(finding, source) for finding in findings], code


def _placed(finding: Finding, source: SourceFile) -> Finding:
    """The finding with its file, and for a notebook its cell and the rows within that cell."""
    finding = replace(finding, path=str(source.path))
    if source.notebook is None:
        return finding
    location = finding.location
    cell, row = source.notebook.cell_of(location.row)
    end_row = row + location.end_row - location.row
    return replace(finding, cell=cell,
                   location=replace(location, row=row, end_row=end_row))
