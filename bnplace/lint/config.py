"""``[tool.bnplace]`` in the nearest pyproject.toml: select, ignore, extend-select, exclude,
per-file-ignores (the names and meaning ruff uses); command-line options override it."""

from __future__ import annotations

import fnmatch
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bnplace.lint.rules import DEFAULT_CODES, RULES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_KEYS = ("select", "ignore", "extend-select", "exclude", "per-file-ignores")


class ConfigError(ValueError):
    """A configuration or option the linter cannot use (exit status 2)."""


@dataclass(frozen=True)
class Settings:
    """Which rules run on which files. ``root`` anchors the relative glob patterns."""

    root: Path = field(default_factory=Path.cwd)
    select: tuple[str, ...] = DEFAULT_CODES
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def enabled_for(self, path: Path) -> Callable[[str], bool]:
        """The predicate "is this code reported for this file"."""
        ignored = self.ignore + tuple(code for pattern, codes in self.per_file_ignores
                                      if self._matches(path, pattern) for code in codes)
        selected = self.select + self.extend_select

        def enabled(code: str) -> bool:
            if _selects(ignored, code):
                return False
            return code == "BNP000" or _selects(selected, code)
        return enabled

    def is_excluded(self, path: Path) -> bool:
        return any(self._matches(path, pattern) for pattern in self.exclude)

    def _matches(self, path: Path, pattern: str) -> bool:
        try:
            relative = path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            relative = path.as_posix()
        pattern = pattern.rstrip("/")
        return (fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(path.name, pattern)
                or fnmatch.fnmatch(relative, f"{pattern}/*"))

    def overridden(self, select: tuple[str, ...] | None, extend_select: tuple[str, ...],
                   ignore: tuple[str, ...]) -> Settings:
        """These settings with the command line's --select/--extend-select/--ignore applied."""
        for code in (*(select or ()), *extend_select, *ignore):
            _check_selector(code, "command line")
        return replace(self, select=self.select if select is None else select,
                       extend_select=self.extend_select + extend_select,
                       ignore=self.ignore + ignore)


def _selects(selectors: tuple[str, ...], code: str) -> bool:
    return any(selector == "ALL" or code.startswith(selector) for selector in selectors)


def _check_selector(selector: str, where: str) -> None:
    if selector != "ALL" and not any(code.startswith(selector) for code in RULES):
        raise ConfigError(f"unknown rule selector {selector!r} in {where}")


def _codes(table: dict, key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: '{key}' must be a list of strings")
    if key != "exclude":
        for selector in value:
            _check_selector(selector, where)
    return tuple(value)


def settings_from_table(table: dict, root: Path, where: str) -> Settings:
    """Settings from a ``[tool.bnplace]`` table (``where`` names it in error messages)."""
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}")
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise ConfigError(f"{where}: 'per-file-ignores' must be a table")
    return Settings(
        root=root,
        select=_codes(table, "select", where) if "select" in table else DEFAULT_CODES,
        extend_select=_codes(table, "extend-select", where),
        ignore=_codes(table, "ignore", where),
        exclude=_codes(table, "exclude", where),
        per_file_ignores=tuple((pattern, _codes(per_file, pattern, where)) for pattern in per_file),
    )


@functools.lru_cache(maxsize=None)
def settings_for_directory(directory: Path) -> Settings:
    """The settings of the nearest pyproject.toml with a ``[tool.bnplace]`` table above
    ``directory``; the defaults (rooted at the current directory) when there is none."""
    for folder in (directory, *directory.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                document = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
                raise ConfigError(f"{candidate}: {err}") from err
            table = document.get("tool", {}).get("bnplace")
            if table is not None:
                return settings_from_table(table, folder, str(candidate))
    return Settings()
