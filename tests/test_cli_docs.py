"""docs/cli.md is the commands' own help: regenerated, it must not change."""

from __future__ import annotations

import click

from bnplace.cli import COMMANDS, main as bnplace_group
from scripts.gen_cli_docs import PAGE, render


def test_cli_page_is_up_to_date() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), \
        "docs/cli.md is stale: run python -m scripts.gen_cli_docs"


def test_every_command_and_option_has_its_section() -> None:
    page = render()
    context = click.Context(bnplace_group, info_name="bnplace")
    for name in COMMANDS:
        section = page.split(f"## `bnplace {name}`\n", 1)[1].split("\n## ", 1)[0]
        command = bnplace_group.get_command(context, name)
        for option in command.params:
            for flag in [*option.opts, *option.secondary_opts]:
                if flag.startswith("-"):
                    assert flag in section, f"bnplace {name}: {flag} missing from docs/cli.md"
