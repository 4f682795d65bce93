"""Write the study's report files so an interruption leaves the old set or the new one, never
a mix: each file is first written aside whole (:func:`bnplace.atomic.written_aside`), then all
are put in place in the order they were written, with Ctrl-C held back for those few renames.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from bnplace.atomic import Save, written_aside

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
        self._staged[name] = written_aside(self.folder / name, save)

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
