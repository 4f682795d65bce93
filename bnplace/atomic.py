"""Write a file so that an interruption leaves the old version or the new one, never a mix.

The file is written to a hidden temporary file in its own folder (``.NAME.XXXX.partial.EXT``:
no name a reader looks for, and the extension that writers such as matplotlib choose their
format by), then moved over the old one with ``os.replace``, which is atomic within a folder.
The tuner's report and the CLI's ``--output`` files are written this way.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

Save = Callable[[Path], None]  # writes a file's content to the path given


def write_atomically(path: Path, save: Save) -> None:
    """Write ``path`` with ``save`` so that a reader never sees it half written."""
    os.replace(written_aside(path, save), path)


def written_aside(path: Path, save: Save) -> Path:
    """A temporary file next to ``path`` that ``save`` wrote; removed again when ``save`` fails
    or is interrupted."""
    # named, not made by mkstemp: the writer creates it with the usual permissions, not 0600
    aside = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}"
                           f".partial{path.suffix}")
    try:
        save(aside)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    return aside
