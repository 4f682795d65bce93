"""What a rule is, and the neighbour walks the sequence rules share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Description, Layer
from bnplace.placement import LayerKind

LOOKED_THROUGH = frozenset({LayerKind.RESHAPE})
# The layers that act on the last axis only: one vector of units per sample (a conv is a map).
FULLY_CONNECTED = frozenset({"Linear", "LazyLinear", "Dense"})


@dataclass(frozen=True)
class Rule:
    """One rule: its check, the text of its docs page, and its examples.

    ``valid[0]`` is the fixed form of ``invalid[0]``: the docs page shows that pair.
    """

    code: str
    name: str
    summary: str
    what: str
    why: str
    fix: str
    valid: tuple[str, ...]
    invalid: tuple[str, ...]
    check: Callable[[Description], Iterable[Finding]] | None
    default: bool = True
    fixable: bool = False


def neighbour(layers: tuple[Layer, ...], index: int, step: int,
              through: frozenset[LayerKind] = LOOKED_THROUGH) -> int | None:
    """The index of the nearest layer before (step -1) or after (step 1) whose kind is not in
    ``through``; opaque layers (kind None) are never looked through."""
    index += step
    while 0 <= index < len(layers):
        if layers[index].kind is None or layers[index].kind not in through:
            return index
        index += step
    return None


def indices_of(layers: tuple[Layer, ...], kind: LayerKind) -> Iterable[int]:
    return (i for i, layer in enumerate(layers) if layer.kind is kind)


def normalises_one_channel(linear: Layer, bn: Layer) -> bool:
    """Whether a one-feature BatchNorm1d follows a Linear of many units: the ``(N, 1, L)`` layout
    (``x.unsqueeze(1)``), the Linear acting on L, the BN on the single channel. No one sizes a
    BN of 128 features as 1 by mistake; and one mean over the channel leaves the Linear's
    per-unit bias in place."""
    return (linear.type_name in FULLY_CONNECTED and bn.dims == 1 and bn.width == 1
            and linear.width is not None and linear.width > 1)
