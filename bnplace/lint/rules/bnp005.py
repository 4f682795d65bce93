"""BNP005 batchnorm-on-output: a BatchNorm between the last linear layer and the output
softmax/sigmoid."""

from __future__ import annotations

from collections.abc import Iterator

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Description, Layer, Location
from bnplace.lint.rules.rule import (FULLY_CONNECTED, LOOKED_THROUGH, Rule, indices_of,
                                     neighbour)
from bnplace.placement import LayerKind

_ON_LOGITS = LOOKED_THROUGH | {LayerKind.DROPOUT}


def _is_output(layers: tuple[Layer, ...], index: int, linear: Layer,
               read_on: frozenset[Location]) -> bool:
    """A softmax no linear layer reads later (attention weights feed one); or a sigmoid ending
    the sequence after a one-unit Linear/Dense, a binary classifier's head, and ending every
    other path it is on. A sigmoid anywhere else is a hidden activation or a gate (attention
    blocks end ``Conv2d(c, 1, 1), BatchNorm2d(1), Sigmoid()``; G-ODIN divides the logits by
    ``Sequential(Linear(d, 1), BatchNorm1d(1), Sigmoid())``), where a BatchNorm is fine."""
    layer = layers[index]
    if layer.kind is LayerKind.OUTPUT:
        return all(later.kind is not LayerKind.LINEAR for later in layers[index + 1:])
    return (layer.function == "sigmoid" and neighbour(layers, index, 1) is None
            and layer.definition not in read_on
            and linear.width == 1 and linear.type_name in FULLY_CONNECTED)


def _sigmoids_read_on(description: Description) -> frozenset[Location]:
    """Where the sigmoids are built whose output some path goes on to read (``logits /
    self.g(x)`` after the ``Sequential`` that ends with one): a sigmoid's own sequence ending
    with it does not make it the model's output."""
    return frozenset(layers[i].definition for layers in description.sequences
                     for i, layer in enumerate(layers)
                     if layer.function == "sigmoid" and neighbour(layers, i, 1) is not None)


def check(description: Description) -> Iterator[Finding]:
    read_on = _sigmoids_read_on(description)
    for layers in description.sequences:
        for i in indices_of(layers, LayerKind.BATCHNORM):
            # a Dropout on the logits (``F.dropout`` then the BN) leaves them logits
            before = neighbour(layers, i, -1, through=_ON_LOGITS)
            after = neighbour(layers, i, 1, through=_ON_LOGITS)
            if (before is None or after is None or layers[before].kind is not LayerKind.LINEAR
                    or layers[before].activation is not None
                    or not _is_output(layers, after, layers[before], read_on)):
                continue
            yield Finding("BNP005", f"{layers[i].type_name} normalises the logits of the output "
                          f"layer right before {layers[after].type_name}", layers[i].location,
                          (layers[i],))


RULE = Rule(
    code="BNP005",
    name="batchnorm-on-output",
    summary="a BatchNorm sits between the last linear layer and the output softmax or sigmoid",
    what="Checks for a BatchNorm between the output layer (the last linear layer) and the "
         "softmax that turns its logits into probabilities (`nn.Softmax`, `nn.LogSoftmax`, "
         "`F.softmax`, `torch.log_softmax`, `x.softmax(-1)`, Keras `Activation('softmax')`), or "
         "the sigmoid of a binary classifier: a sigmoid (`nn.Sigmoid`, `torch.sigmoid`, Keras "
         "`Activation('sigmoid')`) that ends the model right after a `Linear`/`Dense` with one "
         "output unit, and that no other code computes on (G-ODIN divides its logits by "
         "`Sequential(Linear(d, 1), BatchNorm1d(1), Sigmoid())`). A sigmoid anywhere else is a "
         "hidden activation or a gate (attention blocks end `Conv2d(c, 1, 1), BatchNorm2d(1), "
         "Sigmoid()`) and is not reported. A Dropout on either side of the BatchNorm "
         "(`Linear`, `F.dropout`, `BatchNorm1d`, `log_softmax`) is looked through: what it "
         "drops are still the logits.",
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
        "mlp = nn.Sequential(nn.Linear(784, 100), nn.BatchNorm1d(100), nn.Sigmoid(),\n"
        "                    nn.Linear(100, 1), nn.Sigmoid())\n",
        "gate = nn.Sequential(nn.Conv2d(64, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())\n",
    ),
    invalid=(
        "model.add(Dense(2))\nmodel.add(BatchNormalization())  # <- BNP005\n"
        "model.add(Activation('softmax'))\n",
        "head = nn.Sequential(nn.Linear(64, 10, bias=False), nn.BatchNorm1d(10),  # <- BNP005\n"
        "                     nn.Softmax(dim=1))\n",
        "model.add(Dense(1))\nmodel.add(BatchNormalization())  # <- BNP005\n"
        "model.add(Activation('sigmoid'))\n",
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(64, 1, bias=False)\n"
        "        self.bn = nn.BatchNorm1d(1)\n"
        "    def forward(self, x):\n"
        "        return torch.sigmoid(self.bn(self.fc(x)))  # <- BNP005\n",
    ),
    check=check,
)
