"""BNP001 batchnorm-after-dropout: a BatchNorm fed directly by a Dropout."""

from __future__ import annotations

from collections.abc import Iterator

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Description
from bnplace.lint.rules.rule import Rule, indices_of, neighbour
from bnplace.placement import LayerKind


def check(description: Description) -> Iterator[Finding]:
    for layers in description.sequences:
        for i in indices_of(layers, LayerKind.BATCHNORM):
            j = neighbour(layers, i, -1)
            if j is None or layers[j].kind is not LayerKind.DROPOUT:
                continue
            bn, dropout = layers[i], layers[j]
            # the swap gives the Dropout's statement the BatchNorm's output: only right where
            # the BatchNorm is the one place that reads the Dropout's output, and not across a
            # gap (the BN opens a comprehension that may make no items)
            read_elsewhere = dropout.shared_output or dropout.maybe_shared_output
            swappable = (j == i - 1 and bn.movable and dropout.movable and not read_elsewhere
                         and not bn.after_gap
                         and bn.arguments == dropout.arguments)
            fix = f"Move {bn.type_name} in front of {dropout.type_name}" if swappable else None
            yield Finding("BNP001", f"{bn.type_name} is fed directly by {dropout.type_name}: it "
                          "learns statistics of dropped-out activations that differ at inference",
                          bn.location, (bn, dropout), fix)


RULE = Rule(
    code="BNP001",
    name="batchnorm-after-dropout",
    summary="a BatchNorm is fed directly by a Dropout",
    what="Checks for a BatchNorm layer whose input comes straight from a Dropout layer (layers "
         "that only reshape, such as Flatten, are looked through).",
    why="Dropout scales the surviving activations by 1/(1-p) while training and does nothing at "
        "inference, so the variance a BatchNorm sees in training is not the variance it meets at "
        "test time: its running statistics are wrong exactly when they are used. Li et al. 2019, "
        "\"Understanding the Disharmony between Dropout and Batch Normalization by Variance "
        "Shift\", measure the damage. The pattern is famous from the fast.ai Lesson 3 notebook "
        "(`get_bn_layers`: `Dropout(p), BatchNormalization()`); Ioffe & Szegedy 2015 place BN "
        "right after the linear layer instead.",
    fix="Put the BatchNorm in front of the Dropout (or straight after the linear layer). "
        "`--fix` swaps the two layers when they sit next to each other and nothing but the "
        "BatchNorm reads the Dropout's output (`return out, h` would return the other "
        "layer's output after the swap), where both calls pass the same other arguments "
        "(`self.drop(x, training=training)`: a swap of the callees leaves them in place), "
        "and not where the file refers to the container's "
        "layers by position (`seq[1]`, `model.layers[2]`, `model.pop()`, `enumerate(seq)`): "
        "the position would name the other layer. A swap in an `nn.Sequential` renames its "
        "`state_dict` keys (`seq.1.weight` becomes `seq.0.weight`), so a checkpoint saved "
        "before the fix no longer loads by key (rename its keys to load it); a file that loads "
        "one (`load_state_dict`) keeps such containers as written.",
    valid=(
        "layers = [Dense(4096, activation='relu'), BatchNormalization(), Dropout(p)]\n",
        "x = Dropout(0.5)(x)\nx = Dense(64)(x)\nx = BatchNormalization()(x)\n",
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.drop = nn.Dropout(0.5)\n"
        "        self.bn = nn.BatchNorm1d(64)\n"
        "    def forward(self, x):\n"
        "        return self.drop(self.bn(x))\n",
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.layers = nn.ModuleDict()\n"
        "        self.layers[\"drop\"], self.layers[\"bn\"] = nn.Dropout(0.5), nn.BatchNorm1d(8)\n"
        "    def forward(self, x):\n"
        "        return self.layers.drop(self.layers.bn(x))\n",
    ),
    invalid=(
        "layers = [Dense(4096, activation='relu'), Dropout(p),\n"
        "          BatchNormalization()]  # <- BNP001\n",
        "x = Dropout(0.5)(x)\nx = BatchNormalization()(x)  # <- BNP001\n",
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.drop = nn.Dropout(0.5)\n"
        "        self.bn = nn.BatchNorm1d(64)\n"
        "    def forward(self, x):\n"
        "        if self.drop is not None:\n"
        "            x = self.drop(x)\n"
        "        return self.bn(x)  # <- BNP001\n",
        "net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(),\n"
        "                    nn.BatchNorm1d(32))  # <- BNP001\n",
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.layers = nn.ModuleDict({\"drop\": nn.Dropout(0.5),\n"
        "                                     \"bn\": nn.BatchNorm1d(64)})\n"
        "    def forward(self, x):\n"
        "        for name in [\"drop\", \"bn\"]:\n"
        "            x = self.layers[name](x)  # <- BNP001\n"
        "        return self.layers.bn(self.layers.drop(x))  # <- BNP001\n",
    ),
    check=check,
    fixable=True,
)
