"""``--input-shape``: one input sample's shape, turned into example inputs for the graph pass.

Example inputs let shapes decide a new BatchNorm's kind, let fold check a Linear's output rank
under a BatchNorm1d, and let a forward that reads shapes in Python be traced (see
:func:`bnplace.graph.trace`).
"""

from __future__ import annotations

import math
from typing import Any

import click

from bnplace.loading import describe_error

_MAX_EXAMPLE_BYTES = 1 << 30  # an example batch is two samples; more is a mistyped shape

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
    size = 2 * math.prod(shape) * 4  # bytes of two float32 samples
    if size > _MAX_EXAMPLE_BYTES:
        raise ValueError(f"--input-shape {text} is too large: two samples of it take "
                         f"{size / (1 << 30):.1f} GiB")
    import torch

    return torch.randn(2, *shape)


def fitted_example(model: Any, example: Any, text: str) -> tuple[Any, str | None]:
    """``example`` if ``model`` runs on it, else token ids of its shape when the model embeds
    them (with a note saying so); a ValueError naming the model's error when it runs on neither.

    A wrong --input-shape would otherwise only lose the shapes it was given for (a warning deep
    in shape propagation), and an Embedding cannot take the random floats."""
    import torch
    from torch import nn

    from bnplace.graph.shapes import eval_mode

    sizes = [m.num_embeddings for m in model.modules()
             if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]
    candidates = [example] + ([torch.randint(0, min(sizes), example.shape)] if sizes else [])
    error: Exception | None = None
    for candidate in candidates:
        try:
            with eval_mode(model), torch.no_grad():
                model(candidate)
        except Exception as err:  # the user's model: any error means "not these inputs"
            error = error or err
            continue
        note = None if candidate is example else (
            f"--input-shape {text} is taken as token ids below {min(sizes)} (the model's "
            f"Embedding takes integers)")
        return candidate, note
    several = isinstance(error, TypeError) and "required positional argument" in str(error)
    hint = ("; --input-shape gives a model one input: leave it out for a model of several"
            if several else "")
    raise ValueError(f"the model does not run on two samples of --input-shape {text}: "
                     f"{describe_error(error)}{hint}")
