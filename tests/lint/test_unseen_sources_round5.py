"""Round 5 of sources written the way people publish them (Keras helpers that pass the
activation on, inference scripts that load a checkpoint, transfer-learning builders that return
the model and its backbone, notebooks): the exact findings, and what ``--fix`` leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bnplace.lint.config import Settings
from bnplace.lint.engine import lint_file
from bnplace.lint.files import SourceFile
from bnplace.lint.notebook import Notebook
from bnplace.lint.rules import DEFAULT_CODES
from tests.lint.helpers import code_lines, fixed_at

# A Dense/Conv whose activation the linter cannot name may apply one: its bias is not redundant.
ACTIVATION_NOT_READ = {
    "a parameter passed on": (
        "def dense_block(x, units, activation='relu'):\n"
        "    x = layers.Dense(units, activation=activation)(x)\n"
        "    return layers.BatchNormalization()(x)\n"),
    "a layer object": (
        "model = Sequential()\n"
        "model.add(Dense(64, activation=LeakyReLU(0.2)))\n"
        "model.add(BatchNormalization())\n"),
    "a string the linter does not know": (
        "model = Sequential([Conv2D(8, 3, activation='softsign'), BatchNormalization()])\n"),
}


@pytest.mark.parametrize("name", sorted(ACTIVATION_NOT_READ))
def test_an_activation_the_linter_cannot_name_keeps_the_bias(name: str) -> None:
    assert code_lines(ACTIVATION_NOT_READ[name]) == []


@pytest.mark.parametrize("activation", ["None", "'linear'", "keras.activations.linear"])
def test_an_activation_that_does_nothing_leaves_the_bias_redundant(activation: str) -> None:
    source = (f"model = Sequential([Dense(64, activation={activation}),\n"
              "                    BatchNormalization()])\n")
    assert code_lines(source) == [("BNP002", 1)]


# Saved weights loaded into the file's models hold every bias: taking one away would make them
# no longer load (torch: "Unexpected key(s) in state_dict"; Keras: a weight count mismatch).
LOADS_WEIGHTS = {
    "torch load_state_dict": (
        "net = nn.Sequential(nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU())\n"
        "net.load_state_dict(torch.load('net.pt'))\n", "BNP002", 1),
    "keras load_weights": (
        "model = Sequential()\n"
        "model.add(Dense(32))\n"
        "model.add(BatchNormalization())\n"
        "model.load_weights('weights.h5')\n", "BNP002", 2),
    "lightning load_from_checkpoint": (
        "class Net(LightningModule):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(16, 8)\n"
        "        self.bn = nn.BatchNorm1d(8)\n"
        "    def forward(self, x):\n"
        "        return self.bn(self.fc(x))\n"
        "net = Net.load_from_checkpoint('last.ckpt')\n", "BNP002", 4),
}


def test_a_loader_named_only_in_a_comment_or_a_string_does_not_stop_the_fix() -> None:
    source = ("net = nn.Sequential(nn.Linear(16, 8), nn.BatchNorm1d(8))\n"
              "# net.load_state_dict(torch.load('net.pt'))\n"
              "hint = 'call net.load_state_dict to resume'\n")
    assert fixed_at(source) == (source.replace("nn.Linear(16, 8)", "nn.Linear(16, 8, bias=False)"),
                                [])


def test_a_builder_that_returns_the_model_and_its_backbone_is_fixed() -> None:
    # ``model, base = build()`` takes the returned tuple apart: no layer of the model by position.
    source = ("def build(n):\n"
              "    base = EfficientNetB0(include_top=False)\n"
              "    x = GlobalAveragePooling2D()(base.output)\n"
              "    x = Dropout(0.5)(x)\n"
              "    x = BatchNormalization()(x)\n"
              "    return Model(base.input, Dense(n, activation='softmax')(x)), base\n"
              "model, base = build(3)\n"
              "for layer in base.layers[-20:]:\n"
              "    layer.trainable = True\n")
    swapped = (source.replace("Dropout(0.5)(x)", "@")
               .replace("BatchNormalization()(x)", "Dropout(0.5)(x)")
               .replace("@", "BatchNormalization()(x)"))
    assert fixed_at(source) == (swapped, [])


UNPACKED_BY_POSITION = {
    "the returned value is a container": (
        "def make():\n"
        "    return nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(8))\n"
        "drop, bn = make()\n", "BNP001", 2),
    "the model is returned and then indexed": (
        "def build():\n"
        "    model = Sequential([Dense(8), Dropout(0.5), BatchNormalization()])\n"
        "    return model, 3\n"
        "model, n = build()\n"
        "model.layers[1].trainable = False\n", "BNP001", 2),
}


KEPT_AS_WRITTEN = {**LOADS_WEIGHTS, **UNPACKED_BY_POSITION}


@pytest.mark.parametrize("name", sorted(KEPT_AS_WRITTEN))
def test_reported_and_kept_as_written(name: str) -> None:
    """A file that loads saved weights keeps its biases; a container taken by position after
    unpacking keeps its order."""
    source, code, line = KEPT_AS_WRITTEN[name]
    assert fixed_at(source) == (source, [(code, line)])


def test_a_notebook_message_names_the_cell_of_the_dropout() -> None:
    cells = ["import keras\nfrom keras.layers import Dense, Dropout, BatchNormalization",
             "model = keras.Sequential()\nmodel.add(Dense(64, activation='relu'))\n"
             "model.add(Dropout(0.5))\nmodel.add(Dense(32, activation='relu'))\n"
             "model.add(BatchNormalization())"]
    text = json.dumps({"cells": [{"cell_type": "code", "source": cell} for cell in cells],
                       "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    path = Path("model.ipynb")
    enabled = Settings(select=(*DEFAULT_CODES, "BNP006")).enabled_for(path)
    [finding] = lint_file(SourceFile(path, text, Notebook.parse(text)), enabled).findings
    assert (finding.code, finding.cell, finding.location.row) == ("BNP006", 2, 5)
    assert finding.message.startswith(
        "BatchNormalization is downstream of Dropout (at cell 2:3:11) through linear layers")
