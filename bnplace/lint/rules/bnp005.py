"""BNP005 batchnorm-on-output: a BatchNorm between the last linear layer and the output
softmax/sigmoid."""

from __future__ import annotations

from collections.abc import Iterator

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Description
from bnplace.lint.rules.rule import Rule, indices_of, neighbour
from bnplace.placement import LayerKind


def check(description: Description) -> Iterator[Finding]:
    for layers in description.sequences:
        for i in indices_of(layers, LayerKind.BATCHNORM):
            before, after = neighbour(layers, i, -1), neighbour(layers, i, 1)
            if (before is None or after is None or layers[before].kind is not LayerKind.LINEAR
                    or layers[before].activation is not None
                    or layers[after].kind is not LayerKind.OUTPUT):
                continue
            yield Finding("BNP005", f"{layers[i].type_name} normalises the logits of the output "
                          f"layer right before {layers[after].type_name}", layers[i].location,
                          (layers[i],))


RULE = Rule(
    code="BNP005",
    name="batchnorm-on-output",
    summary="a BatchNorm sits between the last linear layer and the output softmax",
    what="Checks for a BatchNorm between the output layer (the last linear layer) and the "
         "softmax that turns its logits into probabilities.",
    why="BatchNorm forces each logit to zero mean and unit variance over the batch, so the "
        "network can no longer express how confident it is or which classes are a priori likely; "
        "the batch composition leaks into every prediction. Ioffe & Szegedy 2015 normalise the "
        "inputs of hidden nonlinearities, not the output. The StackOverflow model in \"Where do I "
        "call the BatchNormalization function in Keras?\" ends `Dense(2), BatchNormalization(), "
        "Activation('softmax')`.",
    fix="Remove the BatchNorm before the output activation.",
    valid=(
        "model.add(Dense(2))\nmodel.add(Activation('softmax'))\n",
        "model.add(Dense(64))\nmodel.add(BatchNormalization())\nmodel.add(Activation('relu'))\n",
    ),
    invalid=(
        "model.add(Dense(2))\nmodel.add(BatchNormalization())  # <- BNP005\n"
        "model.add(Activation('softmax'))\n",
        "head = nn.Sequential(nn.Linear(64, 10, bias=False), nn.BatchNorm1d(10),  # <- BNP005\n"
        "                     nn.Softmax(dim=1))\n",
    ),
    check=check,
)
