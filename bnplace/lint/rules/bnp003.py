"""BNP003 unused-batchnorm: a BatchNorm constructed and never added to a model or called."""

from __future__ import annotations

from collections.abc import Iterator

from bnplace.lint.findings import Finding
from bnplace.lint.layers import Description
from bnplace.lint.rules.rule import Rule


def check(description: Description) -> Iterator[Finding]:
    for bn in description.unused:
        yield Finding("BNP003", f"{bn.type_name} is constructed but never added to a model or "
                      "called: it normalises nothing", bn.location, (bn,))
    for bn in description.discarded:
        yield Finding("BNP003", f"{bn.type_name} is called but its output is thrown away: the "
                      "next layer reads the unnormalised input", bn.location, (bn,))


RULE = Rule(
    code="BNP003",
    name="unused-batchnorm",
    summary="a BatchNorm is constructed and never used",
    what="Checks for a BatchNorm layer that is built and thrown away: a bare expression statement, "
         "a variable that is never read again, a `self.bn` module that `forward` never calls, or "
         "a call whose output is dropped (`self.bn(x)` or `BatchNormalization()(x)` as a "
         "statement of its own).",
    why="Constructing a layer does not put it in the model. The StackOverflow question \"Where do "
        "I call the BatchNormalization function in Keras?\" shows the mistake: "
        "`BatchNormalization(axis=-1, ...)` on a line of its own, so the model trains without it "
        "and nobody notices.",
    fix="Add the layer to the model (`model.add(BatchNormalization())`, an element of the "
        "`Sequential` list, a call in `forward`) or delete it.",
    valid=(
        "model.add(BatchNormalization(axis=-1, momentum=0.99, epsilon=0.001))\n",
        "nl1 = BatchNormalization()\ninsert_layer(model, nl1, 5)\n",
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.bn2 = nn.BatchNorm1d(10)\n"
        "    def forward(self, x):\n"
        "        return getattr(self, \"bn2\")(x)\n",
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.norms = nn.ModuleDict()\n"
        "        self.norms[\"bn\"] = nn.BatchNorm1d(10)\n"
        "    def forward(self, x):\n"
        "        return self.norms[\"bn\"](x)\n",
    ),
    invalid=(
        "BatchNormalization(axis=-1, momentum=0.99, epsilon=0.001)  # <- BNP003\n",
        "def build(model):\n    bn = BatchNormalization()  # <- BNP003\n    return model\n",
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(64, 10)\n"
        "        self.bn = nn.BatchNorm1d(10)  # <- BNP003\n"
        "    def forward(self, x):\n"
        "        return self.fc(x)\n",
    ),
    check=check,
)
