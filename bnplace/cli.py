"""The ``bnplace`` command line: a click group whose subcommands load only when they run.

Lazy loading keeps ``bnplace lint`` free of torch (fast start, works where torch is absent).
"""

from __future__ import annotations

import importlib

import click

from bnplace import __version__

# subcommand name -> "module:attribute" of its click command
COMMANDS: dict[str, str] = {
    "check": "bnplace.commands.check:check",
    "export": "bnplace.commands.export:export",
    "lint": "bnplace.commands.lint:lint",
    "rewrite": "bnplace.commands.rewrite:rewrite",
    "rule": "bnplace.commands.lint:rule",
    "rules": "bnplace.commands.lint:rules",
    "tune": "bnplace.commands.tune:tune",
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when that subcommand is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bnplace")
def main() -> None:
    """Where does BatchNorm go? Rewrite, measure and lint BatchNorm placement.

    \b
    bnplace tune    train every placement on your model and pick the best
    bnplace rewrite show the chains of a model and rewrite them to a placement
    bnplace lint    flag placement mistakes in PyTorch/Keras source and notebooks
    bnplace check   the lint rules on a live model, plus its measured variance shift
    bnplace export  save a checkpoint as an inference model, BatchNorm folded away
    """


if __name__ == "__main__":  # `python -m bnplace.cli`, as well as `python -m bnplace`
    main(prog_name="bnplace")
