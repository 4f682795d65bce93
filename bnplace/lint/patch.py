"""The unified diff ``--diff`` prints: one that ``patch`` and ``git apply`` can apply.

``difflib`` splits nothing itself, and ``str.splitlines`` ends a line at a form feed (and at
``\\x1c``, ``\\u2028``...), which Python does not: a line cut there has no line end, and its
diff line runs into the next one. A last line without a line end needs git's
``\\ No newline at end of file`` marker for the same reason.
"""

from __future__ import annotations

import difflib

from bnplace.lint.verbatim import lines

_NO_NEWLINE = "\n\\ No newline at end of file\n"


def unified_diff(before: str, after: str, name: str) -> str:
    """The diff that turns ``before`` into ``after``, both called ``name``."""
    return "".join(line if line.endswith(("\n", "\r")) else line + _NO_NEWLINE
                   for line in difflib.unified_diff(lines(before), lines(after), name, name))
