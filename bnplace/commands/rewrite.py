"""``bnplace rewrite``: show a model's chains and rewrite them to one BatchNorm placement."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import click

from bnplace.commands.errors import InputError, for_the_command_line, reported_as_usage_errors
from bnplace.commands.inputs import example_input, input_shape_option
from bnplace.commands.saving import save_whole
from bnplace.loading import describe_error, load_model, parse_kwargs
from bnplace.placement import Placement

PLACEMENTS = ", ".join(p.value for p in Placement)


@click.command("rewrite", context_settings={"help_option_names": ["-h", "--help"]},
               short_help="Show a model's chains and rewrite them to one BatchNorm placement.")
@click.option("--model", "spec", required=True, metavar="SPEC",
              help="The model: 'package.module:Class' or 'path/to/file.py:Class' (a class or a "
                   "function returning an nn.Module).")
@click.option("--placement", "placement_name", required=True, metavar="NAME",
              help=f"Where BatchNorm goes in every chain: {PLACEMENTS}.")
@click.option("--model-kwargs", metavar="JSON", default=None,
              help="Constructor arguments as a JSON object, e.g. '{\"hidden\": 128}'.")
@input_shape_option
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE",
              help="Save the rewritten model with torch.save. Load it with "
                   "torch.load(FILE, weights_only=False): a torch.fx GraphModule when the whole "
                   "model traces (needs only torch and bnplace), else the model object itself "
                   "(its class must be importable where you load it).")
def rewrite(spec: str, placement_name: str, model_kwargs: str | None, input_shape: str | None,
            output: Path | None) -> None:
    """Show the linear → activation → dropout chains of a model, then rewrite every chain so
    its BatchNorm sits at one placement (inserting, moving or removing BN).

    \b
    Example:
      bnplace rewrite --model examples/models.py:Lesson3Head --placement before-activation
    """
    from rich.console import Console

    with reported_as_usage_errors(ValueError):
        placement = Placement.parse(placement_name)
        example = example_input(input_shape)
        model = load_model(spec, parse_kwargs(model_kwargs))

    import bnplace.graph as graph

    console = Console(highlight=False, width=None if _is_terminal() else 120)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            chains = graph.find_chains(model, example_inputs=example)
            new = graph.rewrite(model, placement, example_inputs=example)
        except graph.TraceError as err:
            # only where the graph pass suggests example inputs (not for a wrapped model)
            hint = (" (here: --input-shape gives example inputs)"
                    if "example_inputs" in str(err) else "")
            raise InputError(for_the_command_line(f"{err}{hint}")) from None
        except Exception as err:  # the user's model failed under tracing: one line, not a trace
            raise InputError(f"rewriting {spec!r} failed: {describe_error(err)}") from None

    console.print(_chain_table(chains, type(model).__name__))
    for name, why in chains.untraced.items():
        console.print(f"[yellow]left untraced:[/] `{name or type(model).__name__}`: {why}")
    shown = set()
    for item in caught:
        text = str(item.message)
        if text.startswith("bnplace: left untraced") or text in shown:
            continue
        shown.add(text)
        console.print(f"[yellow]note:[/] {text.removeprefix('bnplace: ')}")
    console.print()
    console.print(f"[bold]Rewritten to {placement}:[/]")
    click.echo(str(new).rstrip())
    if output is not None:
        saved = _save(new, output, example)
        console.print(f"saved {saved} to {output}")


def _is_terminal() -> bool:
    import sys

    return sys.stdout.isatty()


def _chain_table(chains: Any, model_name: str) -> Any:
    from rich.table import Table

    from bnplace.graph.kinds import describe

    table = Table(title=f"{len(chains)} chain{'s' if len(chains) != 1 else ''} in {model_name}",
                  title_justify="left")
    for column in ("linear", "activation", "dropout", "batchnorm", "placement", "skipped"):
        table.add_column(column, overflow="fold")
    parts = {p.prefix: p for p in chains.trace.parts} if chains.trace is not None else {}
    for chain in chains:
        part = parts.get(chain.part)
        modules = part.modules if part is not None else {}

        def label(name: str | None, node: Any) -> str:
            if name is None:
                return "-"
            return f"{name} ({describe(node, modules)})" if node is not None else name

        nodes = chain.nodes
        table.add_row(
            label(chain.linear, nodes.linear if nodes else None),
            label(chain.activation, nodes.activation if nodes else None),
            label(chain.dropout, nodes.dropout if nodes else None),
            label(chain.batchnorm, nodes.batchnorm if nodes else None),
            str(chain.placement),
            chain.skipped or "-",
        )
    return table


def _save(model: Any, path: Path, example: Any) -> str:
    """torch.save a self-contained GraphModule when the whole model traces, else the model."""
    from torch import fx

    from bnplace.graph import trace

    saved: Any = model
    if not isinstance(model, fx.GraphModule):
        try:
            traced = trace(model, example_inputs=example)
        except Exception:
            traced = None
        if traced is not None and traced.complete and not traced.parts[0].training_dependent:
            from bnplace.graph.rewriting import _finish_part

            saved = _finish_part(traced.parts[0], set(), False)
    save_whole(saved, path)
    return "a torch.fx GraphModule" if isinstance(saved, fx.GraphModule) else "the model"
