"""Write output files so an interruption leaves the old version or the new one, never a mix.

Each file is written to a hidden temporary file in its own folder (``.NAME.XXXX.partial.EXT``:
no name the tuner reads, no glob it lists, and the extension that writers such as matplotlib
choose their format by), then moved over the old one with ``os.replace``, which is atomic
within a folder. A set of files (the study's report) is first written aside whole, then put in
place in the order it was written, with Ctrl-C held back for those few renames.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

Save = Callable[[Path], None]  # writes a file's content to the path given


def write_atomically(path: Path, save: Save) -> None:
    """Write ``path`` with ``save`` so that a reader never sees it half written."""
    os.replace(_written_aside(path, save), path)


def _written_aside(path: Path, save: Save) -> Path:
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


class StagedFiles:
    """New versions of files in one folder, put in place together by :meth:`commit`.

    Used as a context manager: leaving the block without committing (an error, Ctrl-C) removes
    what was written aside, and the folder keeps its old files.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._staged: dict[str, Path | None] = {}  # name -> its new content, None to remove it

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def write(self, name: str, save: Save) -> None:
        """Write the new ``name`` aside; ``save``'s error propagates and nothing is staged."""
        self._forget(name)
        self._staged[name] = _written_aside(self.folder / name, save)

    def remove(self, name: str) -> None:
        """Have :meth:`commit` delete ``name``: the new set has no such file."""
        self._forget(name)
        self._staged[name] = None

    def commit(self) -> list[Path]:
        """Move the new files into place in the order they were staged (the file that describes
        the others last); the paths written."""
        written = []
        with _interrupts_deferred():
            for name, aside in self._staged.items():
                if aside is None:
                    (self.folder / name).unlink(missing_ok=True)
                else:
                    os.replace(aside, self.folder / name)
                    written.append(self.folder / name)
            self._staged.clear()
        return written

    def discard(self) -> None:
        for name in list(self._staged):
            self._forget(name)

    def _forget(self, name: str) -> None:
        aside = self._staged.pop(name, None)
        if aside is not None:
            aside.unlink(missing_ok=True)


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C back until the block ends, then deliver it: a handful of renames, which a
    KeyboardInterrupt between two of them would leave half old, half new."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is None):
        yield  # handlers are set in the main thread only, and one not set from Python stays
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            signal.raise_signal(signal.SIGINT)  # to the handler the block found, as if it came now
