"""``--input-shape``: one input sample's shape, turned into example inputs for the graph pass.

Example inputs let shapes decide a new BatchNorm's kind, let fold check a Linear's output rank
under a BatchNorm1d, and let a forward that reads shapes in Python be traced (see
:func:`bnplace.graph.trace`).
"""

from __future__ import annotations

from typing import Any

import click

input_shape_option = click.option(
    "--input-shape", metavar="C,H,W", default=None,
    help="The shape of one input sample, without the batch axis (e.g. 1,28,28). Gives BatchNorm "
         "its kind from the real output shapes (a Linear on (N, L, C) input gets a BatchNorm "
         "over the last axis, and fold checks which axis a BatchNorm1d normalises); shapes are "
         "found on fake tensors. A forward that reads shapes in Python (`for s in "
         "x.size()[1:]`) is traced with them fixed: it runs on random inputs of this shape, and "
         "the graph is kept when it gives the model's outputs.")


def example_input(text: str | None) -> Any:
    """A random batch of two samples of the ``--input-shape`` (BatchNorm needs more than one);
    None without one. A shape that is not positive integers is a ValueError."""
    if not text:
        return None
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise ValueError(f"--input-shape must be integers separated by commas, e.g. 1,28,28; "
                         f"got {text!r}") from None
    if not shape or any(size <= 0 for size in shape):
        raise ValueError(f"--input-shape needs positive sizes, e.g. 1,28,28; got {text!r}")
    import torch

    return torch.randn(2, *shape)
