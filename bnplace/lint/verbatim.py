"""A fixed file is the file as written, with only the lines a fix changed replaced.

libcst cannot be trusted with the text around a fix: it rejects a file whose line ends are mixed
(``\\r\\n`` and ``\\n``, as files edited on two systems have), drops the last ``\\r`` of an old
Mac file, a form feed that starts a line, and whitespace-only lines that end a file inside a
block. So libcst reads a copy with ``\\n`` line ends only, and its output of the fixed module is
compared line by line with its output of the unfixed one: the lines they share are taken from the
file as written, byte for byte, and a changed line gets the line end of the line it replaces.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

_LINE_END = re.compile(r"\r\n?")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def normalised(code: str) -> str:
    """``code`` with every line end a ``\\n``; rows and columns stay where they were."""
    return _LINE_END.sub("\n", code) if "\r" in code else code


def merged(written: str, before: str, after: str) -> str:
    """``written`` with the lines that differ between ``before`` (libcst's output of the
    normalised ``written``) and ``after`` (its output once fixed) replaced by ``after``'s."""
    if before == after:
        return written
    written_lines, before_lines, after_lines = lines(written), lines(before), lines(after)
    source_of = _source_lines(written_lines, before_lines)
    parts: list[str] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, before_lines, after_lines).get_opcodes():
        if tag == "equal":
            parts += [written_lines[source_of[i]] if source_of[i] is not None else after_lines[j]
                      for i, j in zip(range(i1, i2), range(j1, j2))]
            continue
        ending = _line_end(written_lines, source_of, i1)
        parts += [_with_line_end(line, ending) for line in after_lines[j1:j2]]
    last = max((k for k in source_of if k is not None), default=-1)
    return "".join(parts + written_lines[last + 1:])  # what libcst dropped at the end


def lines(text: str) -> list[str]:
    """The lines of ``text``, each with its line end (``\\r\\n``, ``\\r`` or ``\\n``); unlike
    ``str.splitlines`` a form feed does not end a line."""
    return _LINE.findall(text)


def _source_lines(written: list[str], before: list[str]) -> list[int | None]:
    """For each line libcst wrote back, the line of the file it was read from (None: none).
    libcst keeps the lines in their places (it drops characters within a line, and lines only
    at the end), so this is the same row unless the two disagree on what is in between."""
    plain = [normalised(line) for line in written]
    if plain[:len(before)] == before:
        return list(range(len(before)))
    source_of: list[int | None] = [None] * len(before)
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, before, plain, autojunk=False).get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            source_of[i1:i2] = range(j1, j2)
    return source_of


def _line_end(written: list[str], source_of: list[int | None], row: int) -> str:
    """The line end of the written line that libcst's line ``row`` was read from, or of the
    nearest line above that has one (``\n`` when none has)."""
    for before_row in range(min(row, len(source_of) - 1), -1, -1):
        source = source_of[before_row]
        line = "" if source is None else written[source]
        if ending := line[len(line.rstrip("\r\n")):]:
            return ending
    return "\n"


def _with_line_end(line: str, ending: str) -> str:
    return line[:-1] + ending if line.endswith("\n") else line
