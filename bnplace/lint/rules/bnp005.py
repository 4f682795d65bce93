"""BNP005 batchnorm-on-output: a BatchNorm between the last linear layer and the output
softmax/sigmoid."""

from __future__ import annotations

from collections.abc import Iterator

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Description, Layer
from bnplace.lint.rules.rule import Rule, indices_of, neighbour
from bnplace.placement import LayerKind

# The layers a classifier ends with: one vector of logits per sample (a conv is a feature map).
_FULLY_CONNECTED = frozenset({"Linear", "LazyLinear", "Dense"})


def _is_output(layers: tuple[Layer, ...], index: int, linear: Layer) -> bool:
    """A softmax no linear layer reads later (attention weights feed one); or a sigmoid ending
    the sequence after a one-unit Linear/Dense, a binary classifier's head. A sigmoid anywhere
    else is a hidden activation or a gate (attention blocks end ``Conv2d(c, 1, 1),
    BatchNorm2d(1), Sigmoid()``), where a BatchNorm is fine."""
    layer = layers[index]
    if layer.kind is LayerKind.OUTPUT:
        return all(later.kind is not LayerKind.LINEAR for later in layers[index + 1:])
    return (layer.function == "sigmoid" and neighbour(layers, index, 1) is None
            and linear.width == 1 and linear.type_name in _FULLY_CONNECTED)


def check(description: Description) -> Iterator[Finding]:
    for layers in description.sequences:
        for i in indices_of(layers, LayerKind.BATCHNORM):
            before, after = neighbour(layers, i, -1), neighbour(layers, i, 1)
            if (before is None or after is None or layers[before].kind is not LayerKind.LINEAR
                    or layers[before].activation is not None
                    or not _is_output(layers, after, layers[before])):
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
         "output unit. A sigmoid anywhere else is a hidden activation or a gate (attention "
         "blocks end `Conv2d(c, 1, 1), BatchNorm2d(1), Sigmoid()`) and is not reported.",
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
