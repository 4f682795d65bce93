"""BNP004 batchnorm-shape-mismatch: a BatchNorm whose dimensionality or width does not fit the
linear layer before it."""

from __future__ import annotations

from collections.abc import Iterator

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Description, Layer
from bnplace.lint.rules.rule import Rule, indices_of, neighbour, normalises_one_channel
from bnplace.placement import LayerKind

# Activations and dropout keep the shape; a reshape changes it, so it ends the walk.
_SHAPE_KEEPING = frozenset({LayerKind.ACTIVATION, LayerKind.DROPOUT})


def _mismatch(linear: Layer, bn: Layer) -> str | None:
    if normalises_one_channel(linear, bn):
        return None
    if linear.dims is not None and bn.dims is not None and linear.dims != bn.dims:
        return (f"{bn.type_name} expects {bn.dims}-d features but {linear.type_name} produces "
                f"{linear.dims}-d ones")
    if linear.width is not None and bn.width is not None and linear.width != bn.width:
        return (f"{bn.type_name} normalises {bn.width} features but {linear.type_name} produces "
                f"{linear.width}")
    return None


def check(description: Description) -> Iterator[Finding]:
    for layers in description.sequences:
        for i in indices_of(layers, LayerKind.BATCHNORM):
            j = neighbour(layers, i, -1, through=_SHAPE_KEEPING)
            if j is None or layers[j].kind is not LayerKind.LINEAR:
                continue
            problem = _mismatch(layers[j], layers[i])
            if problem:
                yield Finding("BNP004", problem, layers[i].location, (layers[i], layers[j]))


RULE = Rule(
    code="BNP004",
    name="batchnorm-shape-mismatch",
    summary="a BatchNorm does not fit the shape of the layer before it",
    what="Checks for `BatchNorm2d` after a `Linear`, `BatchNorm1d` after a `Conv2d`, and a "
         "`num_features` that differs from the previous linear layer's output width, when both "
         "are constants: numbers, names assigned a constant once (`HIDDEN = 128`, at module or "
         "class level or in the function; `self.HIDDEN` reads a class constant) and arithmetic "
         "of these (`16 * 5 * 5`). A parameter is no constant even with a default, as a caller "
         "may pass another value: `nn.Linear(64, hidden)` then `nn.BatchNorm1d(64)` is not "
         "reported. Activations and dropout in between are looked through. A `BatchNorm1d(1)` "
         "after a Linear of many units is not reported: it normalises the one channel of an "
         "`(N, 1, L)` input (`x.unsqueeze(1)`), the Linear acting on L.",
    why="BatchNorm normalises per channel and checks the input rank: the wrong variant fails at "
        "the first forward pass, a wrong width fails or, with lazy shapes, normalises the wrong "
        "axis. Catching it in the editor is cheaper than a crashed training job.",
    fix="Use the BatchNorm that matches the layer (`BatchNorm1d` after `Linear`/`Conv1d`, "
        "`BatchNorm2d` after `Conv2d`) with `num_features` equal to its output width.",
    valid=(
        "net = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU())\n",
        "net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.BatchNorm2d(8))\n",
        "net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.Flatten(), nn.BatchNorm1d(288))\n",
        "HIDDEN = 128\n"
        "net = nn.Sequential(nn.Linear(16 * 5 * 5, HIDDEN), nn.ReLU(), nn.BatchNorm1d(HIDDEN))\n",
    ),
    invalid=(
        "net = nn.Sequential(nn.Linear(64, 32),\n"
        "                    nn.BatchNorm2d(32))  # <- BNP004\n",
        "net = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(),\n"
        "                    nn.BatchNorm1d(8))  # <- BNP004\n",
        "net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(),\n"
        "                    nn.BatchNorm1d(64))  # <- BNP004\n",
        "HIDDEN = 128\n"
        "net = nn.Sequential(nn.Linear(16 * 5 * 5, HIDDEN), nn.ReLU(),\n"
        "                    nn.BatchNorm1d(2 * HIDDEN))  # <- BNP004\n",
    ),
    check=check,
)
