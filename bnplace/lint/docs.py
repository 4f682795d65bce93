"""A rule's docs page in ruff's shape, rendered from the rule's own metadata: the single source
of ``docs/rules/CODE.md`` and of ``bnplace rule CODE``.

Regenerate the pages with ``python -m bnplace.lint.docs docs/rules``."""

from __future__ import annotations

import sys
from pathlib import Path

from bnplace.lint.rules import RULES, Rule


def _clean(example: str) -> str:
    """An example as shown to readers: without the test markers."""
    return "\n".join(line.split("  # <- ")[0] for line in example.rstrip("\n").splitlines())


def render(rule: Rule) -> str:
    """The markdown page for one rule."""
    status = "on by default" if rule.default else "off by default (opt-in)"
    fix = "; `--fix` can fix it" if rule.fixable else ""
    return (f"# {rule.name} ({rule.code})\n\n"
            f"{rule.summary[0].upper()}{rule.summary[1:]}. This rule is {status}{fix}.\n\n"
            f"## What it does\n{rule.what}\n\n"
            f"## Why is this bad?\n{rule.why}\n\n"
            f"## Example\n```python\n{_clean(rule.invalid[0])}\n```\n\n"
            f"Use instead:\n```python\n{_clean(rule.valid[0])}\n```\n\n"
            f"## Fix\n{rule.fix}\n")


def write_pages(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for code, rule in RULES.items():
        page = folder / f"{code}.md"
        page.write_text(render(rule), encoding="utf-8")
        written.append(page)
    return written


if __name__ == "__main__":
    for written_page in write_pages(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/rules")):
        print(written_page)
