"""Every rule's own valid and invalid examples, with exactly the lines its invalid ones mark."""

from __future__ import annotations

import pytest

from bnplace.lint.rules import RULES
from tests.lint.helpers import code_lines

EXAMPLES = [(code, kind, number, example)
            for code, rule in RULES.items()
            for kind, examples in (("valid", rule.valid), ("invalid", rule.invalid))
            for number, example in enumerate(examples)]


@pytest.mark.parametrize(("code", "kind", "number", "example"), EXAMPLES,
                         ids=[f"{c}-{k}-{n}" for c, k, n, _ in EXAMPLES])
def test_example(code: str, kind: str, number: int, example: str) -> None:
    marked = [(code, row) for row, line in enumerate(example.splitlines(), 1)
              if line.endswith(f"# <- {code}")]
    assert code_lines(example, select=(code,)) == marked
    assert bool(marked) == (kind == "invalid")


def test_every_rule_has_both_kinds_of_example() -> None:
    for rule in RULES.values():
        assert rule.valid and rule.invalid, rule.code
