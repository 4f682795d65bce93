"""Round twelve of sources the linter was not written against: Keras/TF functional outputs
(``tf.nn.softmax(x)``), comprehensions of layer calls and unread ``*args`` in a Sequential,
weight-init code that reads ``m.bias``; then whole files in the styles of timm, fast.ai,
torchvision, Keras Applications, Lightning, DCGAN and tabular/audio code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lint.helpers import code_positions, fixed_at

_TORCH = "import torch.nn as nn\n\n"
_KERAS = "import tensorflow as tf\nimport keras\nfrom keras import layers, ops\n\n"
_WHOLE = Path(__file__).parent / "round12_sources"


@pytest.mark.parametrize("output", ["tf.nn.softmax(x)", "tf.nn.log_softmax(x)",
                                    "keras.activations.softmax(x)",
                                    "tf.keras.activations.softmax(x)", "ops.softmax(x)"])
def test_a_keras_or_tf_softmax_function_is_the_output(output: str) -> None:
    source = (_KERAS + "inputs = keras.Input(shape=(784,))\n"
              "x = layers.Dense(10, use_bias=False)(inputs)\n"
              "x = layers.BatchNormalization()(x)\n"
              f"outputs = {output}\n")
    assert code_positions(source) == [("BNP005", 7, 4)]


def test_a_tf_sigmoid_ends_a_binary_classifier_and_tf_relu_is_an_activation() -> None:
    source = (_KERAS + "inputs = keras.Input(shape=(32,))\n"
              "h = layers.Dense(64)(inputs)\n"
              "h = tf.nn.relu(h)\n"
              "h = layers.BatchNormalization()(h)\n"
              "x = layers.Dense(1, use_bias=False)(h)\n"
              "x = layers.BatchNormalization()(x)\n"
              "out = tf.sigmoid(x)\n")
    assert code_positions(source) == [("BNP005", 10, 4)]


def test_a_comprehension_of_layer_calls_feeds_the_layer_after_it() -> None:
    """The last Linear the comprehension builds feeds the BatchNorm: reported; not fixed, since
    ``range(n)`` may build none and the other copies feed a Linear."""
    source = (_TORCH + "def mlp(w, n):\n"
              "    return nn.Sequential(*[nn.Linear(w, w) for _ in range(n)], nn.BatchNorm1d(w))\n")
    assert code_positions(source) == [("BNP002", 4, 27)]
    assert fixed_at(source) == (source, [("BNP002", 4)])


def test_a_dropout_ending_each_comprehended_block_feeds_the_batchnorm_after_them() -> None:
    source = (_TORCH + "def mlp(w, n):\n"
              "    return nn.Sequential(\n"
              "        *[nn.Sequential(nn.Linear(w, w, bias=False), nn.ReLU(), nn.Dropout())\n"
              "          for _ in range(n)],\n"
              "        nn.BatchNorm1d(w))\n")
    assert code_positions(source) == [("BNP001", 7, 8)]
    assert fixed_at(source) == (source, [("BNP001", 7)])


def test_pairs_inside_a_comprehended_sequential_are_still_fixed() -> None:
    source = (_TORCH + "def mlp(w, n):\n"
              "    return nn.Sequential(*[nn.Sequential(nn.Linear(w, w), nn.BatchNorm1d(w))\n"
              "                           for _ in range(n)])\n")
    assert code_positions(source) == [("BNP002", 4, 41)]
    assert fixed_at(source) == (source.replace("nn.Linear(w, w)", "nn.Linear(w, w, bias=False)"),
                                [])


@pytest.mark.parametrize("unpacked", ["*blocks", "*[make(w) for _ in range(n)]",
                                      "*(nn.ReLU() for _ in range(n))"])
def test_layers_unpacked_from_what_is_not_read_stand_between_their_neighbours(
        unpacked: str) -> None:
    """``nn.Sequential(nn.Dropout(), *blocks, nn.BatchNorm1d(8))``: the Dropout need not feed
    the BatchNorm, and swapping them across the blocks would change the model."""
    source = (_TORCH + "def net(blocks, make, w, n):\n"
              f"    a = nn.Sequential(nn.Dropout(), {unpacked}, nn.BatchNorm1d(8))\n"
              f"    b = nn.Sequential(nn.Linear(4, 8), {unpacked}, nn.BatchNorm1d(8))\n"
              "    return a, b\n")
    assert code_positions(source) == []


def test_a_file_that_reads_a_layers_bias_keeps_it() -> None:
    """``nn.init.zeros_(m.bias)`` over all modules would meet ``None`` after ``bias=False``."""
    source = (_TORCH + "class Net(nn.Module):\n"
              "    def __init__(self):\n"
              "        super().__init__()\n"
              "        self.fc = nn.Linear(16, 8)\n"
              "        self.bn = nn.BatchNorm1d(8)\n"
              "        for m in self.modules():\n"
              "            if isinstance(m, nn.Linear):\n"
              "                nn.init.zeros_(m.bias)\n"
              "    def forward(self, x):\n"
              "        return self.bn(self.fc(x))\n")
    assert code_positions(source) == [("BNP002", 6, 18)]
    assert fixed_at(source) == (source, [("BNP002", 6)])
    guarded = source.replace("                nn.init.zeros_(m.bias)\n",
                             "                if m.bias is not None:\n"
                             "                    nn.init.zeros_(m.bias)\n")
    assert fixed_at(guarded)[1] == []


_EXPECTED = {
    "timm_resnet.py": [("BNP002", 109, 12)],
    "fastai_layers.py": [],
    "mobilenet.py": [],
    "keras_resnet.py": [("BNP002", 11, 19), ("BNP002", 44, 8)],
    "lit.py": [("BNP002", 14, 18), ("BNP001", 22, 12)],
    "dcgan.py": [("BNP002", 32, 12), ("BNP004", 54, 12)],
    "tabular.py": [("BNP001", 31, 16)],
    "audio.py": [("BNP002", 9, 21), ("BNP002", 12, 21), ("BNP004", 27, 19)],
    "aliases.py": [("BNP002", 10, 12), ("BNP001", 11, 76), ("BNP002", 13, 50), ("BNP005", 13, 78)],
    "script_main.py": [("BNP003", 19, 18), ("BNP002", 29, 24), ("BNP003", 31, 9)],
    "configs.py": [("BNP002", 35, 49)],
}


@pytest.mark.parametrize("name", sorted(_EXPECTED))
def test_whole_files(name: str) -> None:
    found = code_positions((_WHOLE / name).read_text())
    assert sorted(found, key=lambda f: (f[1], f[2])) == _EXPECTED[name]
