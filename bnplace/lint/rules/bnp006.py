"""BNP006 dropout-before-batchnorm: a Dropout upstream of a BatchNorm through linear layers."""

from __future__ import annotations

from collections.abc import Iterator

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Description
from bnplace.lint.rules.rule import Rule, indices_of, neighbour
from bnplace.placement import LayerKind

_PASSED = frozenset({LayerKind.RESHAPE, LayerKind.ACTIVATION, LayerKind.LINEAR})


def check(description: Description) -> Iterator[Finding]:
    for layers in description.sequences:
        for i in indices_of(layers, LayerKind.BATCHNORM):
            j = neighbour(layers, i, -1, through=_PASSED)
            if j is None or layers[j].kind is not LayerKind.DROPOUT:
                continue
            if not any(layer.kind is LayerKind.LINEAR for layer in layers[j + 1:i]):
                continue  # a Dropout feeding the BN directly is BNP001's
            bn, dropout = layers[i], layers[j]
            yield Finding("BNP006", f"{bn.type_name} is downstream of {dropout.type_name} (at "
                          f"{dropout.location}) through linear layers: its statistics shift "
                          "between training and inference", bn.location, (bn, dropout),
                          mentions=(dropout.location,))


RULE = Rule(
    code="BNP006",
    name="dropout-before-batchnorm",
    summary="a Dropout sits upstream of a BatchNorm, through linear layers",
    what="Checks for a Dropout whose output reaches a BatchNorm through linear layers and "
         "activations only (`Dropout -> Dense -> BatchNormalization`). A Dropout feeding the "
         "BatchNorm directly is BNP001. Off by default: enable it with `--select BNP006` or "
         "`extend-select`.",
    why="Li et al. 2019, \"Understanding the Disharmony between Dropout and Batch Normalization "
        "by Variance Shift\", show the variance shift of dropout survives a linear layer: the BN "
        "downstream still learns training-time statistics that do not hold at inference. The "
        "effect is smaller than BNP001's and some architectures accept it, hence opt-in.",
    fix="Move the Dropout after the last BatchNorm of the block (before the output layer), or use "
        "a variance-stable dropout.",
    valid=(
        "model = Sequential([Dense(64), BatchNormalization(), Activation('relu'), Dense(10),\n"
        "                    Dropout(0.5)])\n",
    ),
    invalid=(
        "model = Sequential([Dense(64), Dropout(0.5), Dense(64),\n"
        "                    BatchNormalization()])  # <- BNP006\n",
    ),
    check=check,
    default=False,
)
