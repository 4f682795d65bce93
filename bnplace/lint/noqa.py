"""``# noqa`` and ``# noqa: BNP001,BNP002`` comments on the reported line."""

from __future__ import annotations

import io
import re
import tokenize

from bnplace.lint.findings import Finding

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[,\s]+[A-Z]+[0-9]+)*))?",
                   re.IGNORECASE)
_NOQA_WORD = re.compile("noqa", re.IGNORECASE)


def mentions_noqa(code: str) -> bool:
    """Whether ``noqa`` is written anywhere: only then can a comment silence a finding, and only
    then is the source worth tokenizing for its comments."""
    return _NOQA_WORD.search(code) is not None


def comments(code: str) -> dict[int, str]:
    """The comment on each row of code that parses: tokenize's COMMENT tokens, so that a
    ``# noqa`` inside a string is not taken for one. Rows count ``\\r`` line ends as libcst does."""
    tokens = tokenize.generate_tokens(io.StringIO(code, newline=None).readline)
    return {token.start[0]: token.string for token in tokens if token.type == tokenize.COMMENT}


def is_suppressed(finding: Finding, comments_by_row: dict[int, str]) -> bool:
    """Whether the comment on the finding's line is a bare ``# noqa`` or a ``# noqa:`` naming
    its code."""
    for match in _NOQA.finditer(comments_by_row.get(finding.location.row, "")):
        codes = match.group("codes")
        if codes is None or finding.code in re.split(r"[,\s]+", codes.upper()):
            return True
    return False
