"""Which files to lint: paths given on the command line, folders walked recursively for ``.py``
and ``.ipynb`` files, skipping version control, virtual environments, build folders and
``exclude`` patterns; and each file read as Python source (a notebook through its code cells)."""

from __future__ import annotations

import io
import os
import tokenize
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bnplace.lint.notebook import Notebook

SUFFIXES = (".py", ".ipynb")
_BOM = "\ufeff"
SKIPPED_FOLDERS = frozenset({
    ".git", ".hg", ".svn", ".bzr", "__pycache__", ".venv", "venv", ".env", ".tox", ".nox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis", ".ipynb_checkpoints",
    ".eggs", "build", "dist", "node_modules", "site-packages", "__pypackages__",
})


def discover(paths: Iterable[Path], is_excluded: Callable[[Path], bool]) -> Iterator[Path]:
    """The files to lint, in a stable order. A file named explicitly is always linted; a missing
    path raises FileNotFoundError."""
    for path in paths:
        if path.is_dir():
            yield from _walk(path, is_excluded)
        elif path.exists():
            yield path
        else:
            raise FileNotFoundError(f"{path}: no such file or directory")


def _walk(folder: Path, is_excluded: Callable[[Path], bool]) -> Iterator[Path]:
    for root, folders, names in os.walk(folder):
        here = Path(root)
        folders[:] = sorted(name for name in folders
                            if not _skipped_folder(here / name, is_excluded))
        for name in sorted(names):
            path = here / name
            if path.suffix in SUFFIXES and not is_excluded(path):
                yield path


def _skipped_folder(path: Path, is_excluded: Callable[[Path], bool]) -> bool:
    return (path.name in SKIPPED_FOLDERS or path.name.endswith(".egg-info")
            or (path / "pyvenv.cfg").exists() or is_excluded(path))


@dataclass
class SourceFile:
    """A file as the linter sees it: its Python code, the way back to the file, and the encoding
    to write it back in."""

    path: Path
    text: str
    notebook: Notebook | None = None
    encoding: str = "utf-8"

    @classmethod
    def read(cls, path: Path) -> SourceFile:
        """Read a file (CRLF line ends kept as they are); raises OSError, UnicodeDecodeError,
        SyntaxError (a bad coding declaration) or NotebookError."""
        data = path.read_bytes()
        if path.suffix == ".ipynb":  # notebook JSON is UTF-8 whatever its cells declare
            text = data.decode("utf-8")
            return cls(path, text, Notebook.parse(text))
        encoding = _python_encoding(data)
        return cls(path, data.decode(encoding), encoding=encoding)

    @property
    def code(self) -> str:
        return self.notebook.code if self.notebook else self.text.removeprefix(_BOM)

    def rendered(self, code: str) -> str:
        """The file text that holds ``code`` (for a notebook, its JSON; a byte-order mark kept)."""
        if self.notebook:
            return self.notebook.with_code(code)
        return _BOM + code if self.text.startswith(_BOM) else code


def _python_encoding(data: bytes) -> str:
    """The encoding Python reads a source file in: its PEP 263 coding declaration, else UTF-8.
    A byte-order mark is decoded as a character (not stripped), so that it is written back."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return "utf-8" if encoding == "utf-8-sig" else encoding
