"""``bnplace export``: a trained checkpoint in, an inference model out (BatchNorm folded: --fold).

The checkpoint is read with ``torch.load(..., weights_only=True)`` (see
:mod:`bnplace.commands.checkpoints`), so loading it runs no pickled code. The output is the whole
module (``torch.save(model)``): a folded model has a different architecture from the class that
built the checkpoint, so weights alone would not describe it.
"""

from __future__ import annotations

from pathlib import Path

import click

from bnplace.commands.checkpoints import checkpointed_model, placement_option
from bnplace.commands.errors import reported_as_usage_errors
from bnplace.commands.inputs import input_shape_option
from bnplace.commands.saving import save_whole


@click.command("export")
@click.option("--model", "spec", required=True, help="The model: 'pkg.mod:Net' or 'file.py:Net'.")
@click.option("--model-kwargs", default=None, help="JSON object of constructor arguments.")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path),
              help="A state_dict saved with torch.save (read with weights_only=True).")
@placement_option
@click.option("--fold", "do_fold", is_flag=True,
              help="Merge every foldable BatchNorm into a neighbouring Linear/Conv.")
@input_shape_option
@click.option("--output", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Where to save the eval-mode model (torch.save of the whole module).")
def export(spec: str, model_kwargs: str | None, checkpoint: Path, placement: str | None,
           do_fold: bool, input_shape: str | None, output: Path) -> None:
    """Load a checkpoint into a model, optionally fold its BatchNorm away, and save it.

    Load the result with torch.load(FILE, weights_only=False): it is a pickled module. When
    --model is a file, do so from the folder you ran in (see docs/tune.md).
    """
    model, example = checkpointed_model(spec, model_kwargs, placement, checkpoint, input_shape)
    model.eval()
    if do_fold:
        from bnplace.graph import TraceError, fold_with_report

        with reported_as_usage_errors(TraceError):
            model, report = fold_with_report(model, example_inputs=example)
        click.echo(f"Folded {len(report.folded)} BatchNorm layer"
                   f"{'s' * (len(report.folded) != 1)}, left {len(report.left)}.")
        for folded in report.folded:
            copy = f" (a copy of {folded.copy_of})" if folded.copy_of else ""
            click.echo(f"  folded {folded.batchnorm} into {folded.direction} {folded.into}{copy}")
        for name, why in report.left.items():
            click.echo(f"  left {name}: {why}")
    save_whole(model, output)
    click.echo(f"Saved the eval-mode model to {output}")
