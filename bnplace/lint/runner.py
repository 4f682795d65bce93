"""Lint many paths: find the files, pick each file's settings, lint them (over several processes
when asked), and collect findings, fixes, diffs and unreadable files."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bnplace.lint.config import Settings, settings_for_directory
from bnplace.lint.deep_stack import on_deep_stack
from bnplace.lint.engine import lint_file
from bnplace.lint.files import SourceFile, discover
from bnplace.lint.findings import Finding
from bnplace.lint.notebook import NotebookError
from bnplace.lint.patch import unified_diff

# Below this many files, starting worker processes costs more than it saves.
_PARALLEL_THRESHOLD = 64


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fixed: int = 0
    files: int = 0


@dataclass(frozen=True)
class _Task:
    path: Path
    settings: Settings
    fix: bool
    write: bool


@dataclass(frozen=True)
class _Outcome:
    findings: list[Finding]
    diff: str = ""
    error: str = ""
    fixed: int = 0


def lint_paths(paths: Sequence[Path], settings_of: Callable[[Path], Settings], fix: bool = False,
               diff: bool = False, jobs: int = 1) -> Report:
    """Lint files and folders. ``settings_of(folder)`` gives the settings that apply in a folder;
    ``fix`` rewrites files in place, ``diff`` only computes the fixes' diffs; ``jobs`` 0 means
    one process per core. Raises FileNotFoundError for a path that does not exist."""
    files = list(discover(paths, lambda path: settings_of(path.parent).is_excluded(path)))
    tasks = [_Task(path, settings_of(path.parent), fix or diff, fix and not diff) for path in files]
    workers = (os.cpu_count() or 1) if jobs == 0 else jobs
    if workers > 1 and len(tasks) >= _PARALLEL_THRESHOLD:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(_run, tasks, chunksize=max(1, len(tasks) // (workers * 8))))
    else:
        outcomes = [_run(task) for task in tasks]
    report = Report(files=len(tasks))
    for outcome in outcomes:
        report.findings += outcome.findings
        report.fixed += outcome.fixed
        report.diffs += [outcome.diff] if outcome.diff else []
        report.errors += [outcome.error] if outcome.error else []
    report.findings.sort(key=lambda finding: finding.sort_key)
    return report


def default_settings_of(folder: Path) -> Settings:
    return settings_for_directory(folder.resolve())


@on_deep_stack  # a notebook's cells are parsed as it is read
def _run(task: _Task) -> _Outcome:
    try:
        source = SourceFile.read(task.path)
        result = lint_file(source, task.settings.enabled_for(task.path), fix=task.fix)
    except (OSError, UnicodeDecodeError, SyntaxError, NotebookError) as err:
        return _Outcome([], error=f"{task.path}: cannot lint: {err}")
    except RecursionError:
        return _Outcome([], error=f"{task.path}: cannot lint: nested too deeply to parse")
    if result.text == source.text:
        return _Outcome(result.findings)
    if task.write:
        try:
            task.path.write_bytes(result.text.encode(source.encoding))
        except OSError as err:  # a read-only file: its findings are all still there
            unfixed = lint_file(source, task.settings.enabled_for(task.path)).findings
            return _Outcome(unfixed, error=f"{task.path}: cannot write the fixes: {err}")
        return _Outcome(result.findings, fixed=result.fixed)
    name = str(task.path)
    diff = unified_diff(source.text, result.text, name)
    return _Outcome(result.findings, diff=diff, fixed=result.fixed)
