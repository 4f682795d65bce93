"""One source through the linter: pre-filter, parse (BNP000 when it fails), describe, run the
rules, honour ``# noqa``; and the fix loop (fix, lint again, until nothing more is fixed)."""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import libcst as cst
from libcst.metadata import MetadataWrapper

from bnplace.lint.deep_stack import on_deep_stack
from bnplace.lint.files import SourceFile
from bnplace.lint.findings import Finding
from bnplace.lint.fixes import apply_fixes
from bnplace.lint.layers import Location
from bnplace.lint.names import OTHER_TORCH_BATCHNORMS
from bnplace.lint.noqa import comments, is_suppressed, mentions_noqa
from bnplace.lint.rules import run_rules
from bnplace.lint.sequences import describe
from bnplace.lint.verbatim import normalised
from bnplace.placement import LAYER_NAMES, LayerKind

_MAX_FIX_ROUNDS = 10
_BATCHNORM_NAMES = LAYER_NAMES[LayerKind.BATCHNORM]
_MENTIONS_BATCHNORM = re.compile("|".join(map(re.escape, sorted({
    *_BATCHNORM_NAMES.torch_modules, *_BATCHNORM_NAMES.torch_functions,
    *_BATCHNORM_NAMES.keras_layers,
    *(dotted.rpartition(".")[2] for dotted in OTHER_TORCH_BATCHNORMS)}))))


def mentions_batchnorm(code: str) -> bool:
    """The text pre-filter: every rule but BNP000 needs a BatchNorm, so a source naming none is
    only syntax-checked by Python's own (much faster) parser, never parsed by libcst."""
    return _MENTIONS_BATCHNORM.search(code) is not None


@on_deep_stack
def lint_code(code: str, enabled: Callable[[str], bool]) -> list[Finding]:
    """The findings for one Python source (rows and columns in ``code``, whatever its line
    ends: libcst reads it with ``\n`` ones)."""
    code = normalised(code)
    if not mentions_batchnorm(code):
        error = _python_syntax_error(code) if enabled("BNP000") else None
        return [error] if error else []
    try:
        module = cst.parse_module(code)
    except cst.ParserSyntaxError as err:
        return [_syntax_error(code, err)] if enabled("BNP000") else []
    findings = run_rules(describe(MetadataWrapper(module, unsafe_skip_copy=True), code), enabled)
    noqa = comments(code) if findings and mentions_noqa(code) else {}
    return [finding for finding in findings if not is_suppressed(finding, noqa)]


def _notebook_syntax_errors(source: SourceFile, enabled: Callable[[str], bool]
                            ) -> list[Finding]:
    """BNP000 for each notebook cell that was set aside because it does not parse."""
    if source.notebook is None or not enabled("BNP000"):
        return []
    return [_syntax_finding(*error) for error in source.notebook.syntax_errors]


def _syntax_error(code: str, err: cst.ParserSyntaxError) -> Finding:
    """BNP000 with Python's own wording and line when it has one (``'(' was never closed``)."""
    return _python_syntax_error(code) or _syntax_finding(
        err.raw_line, err.raw_column, err.message.splitlines()[0])


def _python_syntax_error(code: str) -> Finding | None:
    """BNP000 from Python's own parser, or None when the code parses."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like are not ours to report
            ast.parse(code)
    except SyntaxError as err:
        return _syntax_finding(err.lineno or 1, max((err.offset or 1) - 1, 0), err.msg)
    except ValueError as err:  # a NUL byte
        return _syntax_finding(1, 0, str(err))
    return None


def _syntax_finding(row: int, column: int, message: str) -> Finding:
    return Finding("BNP000", f"SyntaxError: {message}", Location(row, column, row, column))


@dataclass(frozen=True)
class FileResult:
    """What linting one file gave: the findings left, the file text after fixing, how many fixed."""

    findings: list[Finding]
    text: str
    fixed: int = 0


@on_deep_stack
def lint_file(source: SourceFile, enabled: Callable[[str], bool], fix: bool = False) -> FileResult:
    """Lint one file; with ``fix``, rewrite its code until no fixable finding is left."""
    code = source.code
    broken_cells = _notebook_syntax_errors(source, enabled)
    findings = broken_cells + lint_code(code, enabled)
    first_count = len(findings)
    for _ in range(_MAX_FIX_ROUNDS if fix else 0):
        fixable = [finding for finding in findings if finding.fix_title]
        fixed = apply_fixes(code, fixable) if fixable else code
        if fixed == code:
            break
        code, findings = fixed, broken_cells + lint_code(fixed, enabled)
    text = source.rendered(code) if code != source.code else source.text
    return FileResult([_placed(finding, source) for finding in findings], text,
                      max(first_count - len(findings), 0))


def _placed(finding: Finding, source: SourceFile) -> Finding:
    """The finding with its file, and for a notebook its cell and the rows within that cell,
    also for the places its message names (``(at cell 2:7:9)``, not a row of the joined code)."""
    finding = replace(finding, path=str(source.path))
    notebook = source.notebook
    if notebook is None:
        return finding
    location = finding.location
    cell, row = notebook.cell_of(location.row)
    end_row = row + location.end_row - location.row
    message = finding.message
    for mentioned in finding.mentions:
        mentioned_cell, mentioned_row = notebook.cell_of(mentioned.row)
        message = message.replace(f"(at {mentioned})", f"(at cell {mentioned_cell}:"
                                  f"{mentioned_row}:{mentioned.column + 1})")
    return replace(finding, cell=cell, message=message,
                   location=replace(location, row=row, end_row=end_row))
