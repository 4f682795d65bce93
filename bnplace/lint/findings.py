"""A finding: what a rule reports, free of libcst and of files so any front end can use it.

``location`` is a source span for code read from files, or a module name for a traced model.
``path`` and ``cell`` are filled in by the file front end (``cell`` only for notebooks, with the
location's rows counted within that cell). ``layers`` are the layers the finding is about, which
is what a fixer needs; ``fix_title`` says what ``--fix`` would do, None when nothing would.
``mentions`` are the places the message names as ``(at ROW:COL)``: the file front end counts
their rows within a notebook's cells too.
"""

from __future__ import annotations

from dataclasses import dataclass

from bnplace.lint.layers import Layer, Location


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    location: Location
    layers: tuple[Layer, ...] = ()
    fix_title: str | None = None
    path: str = ""
    cell: int | None = None
    mentions: tuple[Location, ...] = ()

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.location.row, self.location.column,
                self.location.module or "", self.code)
