"""``bnplace lint``, ``bnplace rules`` and ``bnplace rule CODE``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from bnplace.commands.errors import InputError, reported_as_usage_errors
from bnplace.lint import output
from bnplace.lint.config import ConfigError
from bnplace.lint.docs import render
from bnplace.lint.rules import RULES
from bnplace.lint.runner import default_settings_of, lint_paths


def parse_codes(value: str | None) -> tuple[str, ...] | None:
    """The codes of a comma-separated ``--select``-style option; None when it was not given."""
    if value is None:
        return None
    return tuple(code.strip().upper() for code in value.split(",") if code.strip())


@click.command("lint")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--select", help="Comma-separated rule codes or prefixes to check (replaces the "
              "configured selection). Default: BNP001-BNP005.")
@click.option("--extend-select", help="Codes to check on top of the selection (e.g. BNP006).")
@click.option("--ignore", help="Comma-separated rule codes or prefixes not to report.")
@click.option("--output-format", type=click.Choice(output.FORMATS), default="text",
              show_default=True)
@click.option("--fix", is_flag=True, help="Rewrite the files in place to fix what can be fixed.")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff; change nothing.")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--statistics", is_flag=True, help="Count the findings per rule instead of listing.")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes; 0 uses every core for large inputs.")
def lint(paths: tuple[Path, ...], select: str | None, extend_select: str | None,
         ignore: str | None, output_format: str, fix: bool, diff: bool, exit_zero: bool,
         statistics: bool, jobs: int) -> None:
    """Flag BatchNorm placement mistakes in PyTorch/Keras source files and notebooks.

    Exit status: 0 no findings, 1 findings, 2 usage error or unreadable path.
    """
    with reported_as_usage_errors(ConfigError, FileNotFoundError):
        overrides = (parse_codes(select), parse_codes(extend_select) or (), parse_codes(ignore) or ())
        default_settings_of(Path.cwd()).overridden(*overrides)  # reject bad codes up front
        report = lint_paths(list(paths) or [Path(".")],
                            lambda folder: default_settings_of(folder).overridden(*overrides),
                            fix=fix, diff=diff, jobs=jobs)
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    if diff:
        click.echo("".join(report.diffs), nl=False)
        click.echo(f"Would fix {report.fixed} error{'s' * (report.fixed != 1)}.", err=True)
        sys.exit(2 if report.errors else int(bool(report.diffs) and not exit_zero))
    if output_format == "text":
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        click.echo(output.text(report.findings, report.fixed, statistics, color=color,
                               unlinted=len(report.errors)))
    else:
        click.echo(output.MACHINE_FORMATS[output_format](report.findings))
    if report.errors:
        sys.exit(2)
    sys.exit(int(bool(report.findings) and not exit_zero))


@click.command("rules")
def rules() -> None:
    """List the rules: code, name, default state, fixability and summary."""
    for code, rule in RULES.items():
        flags = ("default" if rule.default else "opt-in ") + (" fix" if rule.fixable else "    ")
        click.echo(f"{code}  {rule.name:<26} {flags}  {rule.summary}")


@click.command("rule")
@click.argument("code")
def rule(code: str) -> None:
    """Explain one rule: what it does, why (with its source), an example and the fix."""
    found = RULES.get(code.upper())
    if found is None:
        raise InputError(f"unknown rule {code!r}; `bnplace rules` lists them")
    click.echo(render(found))
