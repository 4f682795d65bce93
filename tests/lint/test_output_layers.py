"""BNP005: a BatchNorm on the logits, before the softmax in any spelling or before a binary
classifier's sigmoid; never before a sigmoid that is a hidden activation or a gate."""

from __future__ import annotations

import pytest

from tests.lint.helpers import code_positions, module_source

BNP005 = ("BNP005",)
TORCH = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"


def _forward_source(width: str, output: str) -> str:
    """A module ``fc`` (Linear(64, width)) -> ``bn`` -> ``output`` (an expression of ``h``);
    the BN is called on line 12, column 12."""
    return TORCH + module_source(
        [f"self.fc = nn.Linear(64, {width}, bias=False)", f"self.bn = nn.BatchNorm1d({width})",
         "self.softmax, self.log_softmax = nn.Softmax(dim=1), nn.LogSoftmax(dim=1)",
         "self.sigmoid = nn.Sigmoid()"],
        ["h = self.bn(self.fc(x))", f"return {output}"])


SOFTMAX = ["self.softmax(h)", "self.log_softmax(h)", "F.softmax(h, dim=1)",
           "F.log_softmax(h, dim=-1)", "torch.softmax(h, 1)", "torch.log_softmax(h, dim=1)",
           "h.softmax(-1)", "h.log_softmax(dim=1)", "torch.nn.functional.softmax(h, dim=1)"]
SIGMOID = ["self.sigmoid(h)", "torch.sigmoid(h)", "F.sigmoid(h)", "h.sigmoid()",
           "torch.sigmoid(h).squeeze(1)", "torch.sigmoid(h).view(-1)"]


@pytest.mark.parametrize("output", SOFTMAX)
def test_softmax_in_every_spelling(output: str) -> None:
    assert code_positions(_forward_source("10", output), BNP005) == [("BNP005", 12, 12)]


@pytest.mark.parametrize("output", SIGMOID)
def test_sigmoid_of_a_binary_classifier(output: str) -> None:
    assert code_positions(_forward_source("1", output), BNP005) == [("BNP005", 12, 12)]


@pytest.mark.parametrize("output", SIGMOID)
def test_sigmoid_over_several_units_is_not_taken_for_an_output(output: str) -> None:
    # multi-label heads look like hidden sigmoid blocks; only the one-unit head is certain
    assert code_positions(_forward_source("10", output), BNP005) == []
    assert code_positions(_forward_source("width", output), BNP005) == []


def test_one_unit_through_a_constant() -> None:
    source = "OUTPUTS = 1\n" + _forward_source("OUTPUTS", "torch.sigmoid(h)")
    assert code_positions(source, BNP005) == [("BNP005", 13, 12)]


KERAS = {
    "Activation('sigmoid')":
        "model.add(Dense(1))\nmodel.add(BatchNormalization())\nmodel.add(Activation('sigmoid'))\n",
    "Activation(tf.nn.sigmoid)":
        "model.add(Dense(1, use_bias=False))\nmodel.add(BatchNormalization())\n"
        "model.add(Activation(tf.nn.sigmoid))\n",
    "functional API":
        "x = Dense(units=1)(x)\nx = BatchNormalization()(x)\nout = Activation('sigmoid')(x)\n"
        "model = Model(inputs, out)\n",
    "Softmax layer":
        "model = Sequential([Dense(10), BatchNormalization(), Softmax()])\n",
}


@pytest.mark.parametrize("name", sorted(KERAS))
def test_keras_output_layers(name: str) -> None:
    source = KERAS[name]
    row = next(row for row, line in enumerate(source.splitlines(), 1)
               if "BatchNormalization" in line)
    column = source.splitlines()[row - 1].index("BatchNormalization")
    assert code_positions(source, BNP005) == [("BNP005", row, column)]


CLEAN = {
    "a hidden sigmoid block (Ioffe & Szegedy's MNIST net)":
        "mlp = nn.Sequential(nn.Linear(784, 100), nn.BatchNorm1d(100), nn.Sigmoid(),\n"
        "                    nn.Linear(100, 1), nn.Sigmoid())\n",
    "a helper returning a hidden sigmoid block":
        "def block(n_in, n_out):\n"
        "    return nn.Sequential(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.Sigmoid())\n",
    "an attention gate (Attention U-Net's psi)":
        "psi = nn.Sequential(nn.Conv2d(64, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())\n",
    "a 1-d attention gate":
        "psi = nn.Sequential(nn.Conv1d(64, 1, 1), nn.BatchNorm1d(1), nn.Sigmoid())\n",
    "a gate multiplied into the features":
        "class Gate(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc, self.bn = nn.Linear(64, 1), nn.BatchNorm1d(1)\n"
        "    def forward(self, x):\n"
        "        return torch.sigmoid(self.bn(self.fc(x))) * x\n",
    "a BN before the output layer's own sigmoid":
        "model.add(Dense(64))\nmodel.add(BatchNormalization())\nmodel.add(Activation('relu'))\n"
        "model.add(Dense(1, activation='sigmoid'))\n",
    "a BN before an activation before the sigmoid":
        "net = nn.Sequential(nn.Linear(64, 1), nn.BatchNorm1d(1), nn.ReLU(), nn.Sigmoid())\n",
    "hard sigmoid is an activation":
        "net = nn.Sequential(nn.Linear(64, 1), nn.BatchNorm1d(1), nn.Hardsigmoid())\n",
}


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_no_finding(name: str) -> None:
    assert code_positions(TORCH + CLEAN[name], BNP005) == []
