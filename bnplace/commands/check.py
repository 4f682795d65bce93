"""``bnplace check``: the lint rules over a live model's traced graph, plus each BatchNorm's
measured variance shift on a few batches of data.

Findings are located by module name and printed in ``bnplace lint``'s formats. The variance
shift goes to stdout after the findings in text format, and to stderr with a machine format (so
stdout stays one JSON/SARIF document). Exit status: 0 clean, 1 findings or a shift over the
threshold, 2 usage error.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bnplace.commands.checkpoints import checkpointed_model, placement_option
from bnplace.commands.errors import reported_as_usage_errors
from bnplace.commands.inputs import input_shape_option
from bnplace.commands.lint import parse_codes
from bnplace.lint import output
from bnplace.lint.config import ConfigError
from bnplace.lint.runner import default_settings_of

if TYPE_CHECKING:
    from bnplace.tune.data import Dataset


@click.command("check")
@click.option("--model", "spec", required=True, help="The model: 'pkg.mod:Net' or 'file.py:Net'.")
@click.option("--model-kwargs", default=None, help="JSON object of constructor arguments.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="A state_dict to load first (weights_only=True); trained running statistics "
                   "make the running/eval ratio meaningful.")
@placement_option
@click.option("--data", default="digits", show_default=True, metavar="digits|synthetic|SPEC",
              help="The batches the variance shift is measured on (as for `bnplace tune`).")
@click.option("--batches", type=click.IntRange(min=1), default=4, show_default=True,
              help="How many batches to measure on.")
@click.option("--batch-size", type=click.IntRange(min=2), default=64, show_default=True,
              help="Samples per measured batch.")
@click.option("--threshold", type=click.FloatRange(min=1.0), default=1.1, show_default=True,
              help="Report a BatchNorm whose variance ratio is this factor away from 1.")
@click.option("--measure/--no-measure", default=True, show_default=True,
              help="Measure the variance shift (needs data) or only run the rules.")
@input_shape_option
@click.option("--select", help="Comma-separated rule codes or prefixes (as for `bnplace lint`).")
@click.option("--extend-select", help="Codes to check on top of the selection (e.g. BNP006).")
@click.option("--ignore", help="Comma-separated rule codes or prefixes not to report.")
@click.option("--output-format", type=click.Choice(output.FORMATS), default="text",
              show_default=True)
def check(spec: str, model_kwargs: str | None, checkpoint: Path | None, placement: str | None,
          data: str, batches: int,
          batch_size: int, threshold: float, measure: bool, input_shape: str | None,
          select: str | None,
          extend_select: str | None, ignore: str | None, output_format: str) -> None:
    """Run the BNP rules on a live model and measure each BatchNorm's variance shift."""
    from bnplace.graph import TraceError, trace
    from bnplace.graph.sequences import describe_model
    from bnplace.lint import run_rules

    with reported_as_usage_errors(ConfigError, TraceError):
        settings = default_settings_of(Path.cwd()).overridden(
            parse_codes(select), parse_codes(extend_select) or (), parse_codes(ignore) or ())
        model, example = checkpointed_model(spec, model_kwargs, placement, checkpoint,
                                            input_shape)
        model.eval()
        enabled = settings.enabled_for(Path(spec.rpartition(":")[0]))
        dataset = None
        if measure:  # loaded first: its example batch also traces a forward that reads shapes
            dataset = _measured_data(data, model)
        if example is None and dataset is not None:
            example = dataset.example
        traced = trace(model, example_inputs=example)
        findings = [replace(finding, path=spec)
                    for finding in run_rules(describe_model(traced), enabled)]
        table, shifted = _measured_shift(model, dataset, batches, batch_size, threshold) \
            if dataset is not None else ([], [])
    for name, why in traced.untraced.items():
        click.echo(f"note: the rules cannot see inside `{name or spec}`, whose forward does not "
                   f"trace: {why}", err=True)
    for name, where in traced.concrete.items():
        click.echo(f"note: `{name or spec}` was traced with shapes fixed from the data at {where}",
                   err=True)
    if output_format == "text":
        click.echo(output.text(findings, color=sys.stdout.isatty(),
                               fix_with="`bnplace lint --fix` on the model's source"))
    else:
        click.echo(output.MACHINE_FORMATS[output_format](findings))
    if table:
        click.echo("\n".join(table), err=output_format != "text")
    sys.exit(int(bool(findings) or bool(shifted)))


def _measured_data(data: str, model: object) -> Dataset:
    """The dataset to measure on; when it does not fit the model, the error says the rules run
    without it (a model of several inputs takes no --data at all)."""
    from bnplace.loading import SpecError
    from bnplace.tune.data import load_data

    try:
        return load_data(data, model)
    except SpecError as err:
        raise SpecError(f"{err}; or --no-measure to run the rules without data") from None


def _measured_shift(model: object, dataset: Dataset, batches: int, batch_size: int,
                    threshold: float) -> tuple[list[str], list[str]]:
    """Measure; the table to print and the names of the BNs over the threshold."""
    from bnplace.graph.variance import variance_shift

    inputs = [x for x, _ in itertools.islice(dataset.train.in_order(batch_size), batches)]
    shifts = variance_shift(model, inputs)
    shifted = [s.batchnorm for s in shifts if s.shift > threshold]
    return _table(shifts, shifted, dataset.name, len(inputs), threshold), shifted


def _table(shifts: Sequence, shifted: list[str], data: str, batches: int,
           threshold: float) -> list[str]:
    lines = ["", f"Variance shift on {batches} batch{'es' * (batches != 1)} of {data} "
             f"(train/eval: BN input variance in train mode over eval mode; running/eval: "
             f"running variance over eval-mode input variance; *: running statistics estimated "
             f"from the data, the BN was untrained):"]
    if not shifts:
        return lines + ["  no BatchNorm is called by the model"]
    width = max(len("batchnorm"), *(len(s.batchnorm) for s in shifts))
    lines.append(f"  {'batchnorm':<{width}}  {'train/eval':>10}  {'running/eval':>12}")
    for s in shifts:
        running = f"{s.running_eval:11.3f}{'*' if s.estimated else ' '}" \
            if s.running_eval is not None else f"{'-':>12}"
        mark = f"  shift x{s.shift:.2f} > {threshold:g}" if s.batchnorm in shifted else ""
        lines.append(f"  {s.batchnorm:<{width}}  {s.train_eval:10.3f}  {running}{mark}")
    summary = (f"{len(shifted)} BatchNorm layer{'s' * (len(shifted) != 1)} shifted beyond "
               f"x{threshold:g}." if shifted else f"No variance shift beyond x{threshold:g}.")
    return lines + [summary]
