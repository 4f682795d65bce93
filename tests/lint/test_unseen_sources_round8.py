"""Round eight of sources the linter was not written against: notebooks and the styles of
higher-level libraries (fast.ai's one-line methods, keras-tuner's one-line ``if``s, TF 2
subclasses passing ``training=training``, blocks of a library added to a list of layers)."""

from __future__ import annotations

import pytest

from tests.lint.helpers import code_lines, fixed_at

_KERAS = "from keras.layers import Dense, Dropout, BatchNormalization\n"


@pytest.mark.parametrize("source, found", [
    # keras-tuner: the BatchNormalization a trial may add, on the ``if``'s own line
    (_KERAS + "def build(hp):\n    model = Sequential()\n    model.add(Dense(8))\n"
     "    model.add(Dropout(0.5))\n    if hp.Boolean('bn'): model.add(BatchNormalization())\n"
     "    return model\n", [("BNP001", 6)]),
    # a loop body on the ``for``'s line
    ("import torch.nn as nn\nlayers = []\n"
     "for _ in range(3): layers.append(nn.Dropout(0.2)); layers.append(nn.BatchNorm1d(8))\n"
     "net = nn.Sequential(*layers)\n", [("BNP001", 3)]),
], ids=["if", "for"])
def test_a_body_written_on_its_headers_line_is_read(source: str, found: list) -> None:
    assert code_lines(source) == found


def test_a_one_line_method_is_read_and_fixed() -> None:
    """fast.ai's style: ``def forward(self, x): return ...`` on one line."""
    source = ("import torch.nn as nn\nclass Block(nn.Module):\n"
              "    def __init__(self):\n        super().__init__()\n"
              "        self.conv, self.drop = nn.Conv2d(3, 8, 3), nn.Dropout(0.5)\n"
              "        self.bn = nn.BatchNorm2d(8)\n"
              "    def forward(self, x): return self.bn(self.drop(self.conv(x)))\n")
    assert code_lines(source) == [("BNP001", 7)]
    fixed = source.replace("self.bn(self.drop(", "self.drop(self.bn(").replace(
        "nn.Conv2d(3, 8, 3)", "nn.Conv2d(3, 8, 3, bias=False)")
    assert fixed_at(source) == (fixed, [])


def test_a_return_on_an_ifs_line_still_ends_the_block() -> None:
    source = ("import torch.nn as nn\ndef make(small):\n    if small: return nn.Linear(3, 4)\n"
              "    return nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(4))\n")
    assert code_lines(source) == [("BNP001", 4)]


_TRAINING = """import tensorflow as tf
class Head(tf.keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = tf.keras.layers.Dense(16, activation="relu")
        self.drop = tf.keras.layers.Dropout(0.4)
        self.bn = tf.keras.layers.BatchNormalization()
    def call(self, x, training=False):
        x = self.dense(x)
        x = self.drop(x, {drop})
        x = self.bn(x, {bn})
        return x
"""


def test_calls_passing_the_same_training_flag_are_swapped_keeping_it() -> None:
    """A swap of the callees leaves each call's arguments in place: right when both pass the
    same, as TF 2 subclasses do with ``training=training``."""
    source = _TRAINING.format(drop="training=training", bn="training=training")
    assert code_lines(source) == [("BNP001", 11)]
    fixed = source.replace("self.drop(x, training", "self.SWAP(x, training").replace(
        "self.bn(x, training", "self.drop(x, training").replace("self.SWAP", "self.bn")
    assert fixed_at(source) == (fixed, [])


@pytest.mark.parametrize("drop, bn", [("training=training", "training=False"),
                                      ("training=True", "")])
def test_calls_passing_different_arguments_are_reported_not_swapped(drop: str, bn: str) -> None:
    source = _TRAINING.format(drop=drop, bn=bn).replace("(x, )", "(x)")
    assert fixed_at(source) == (source, [("BNP001", 11)])


@pytest.mark.parametrize("added", ["layers += LinBnDrop(8, 8)", "layers.extend(make_block(8))"])
def test_a_block_of_another_library_added_to_a_list_sits_between_its_neighbours(
        added: str) -> None:
    """fast.ai's ``create_head``: ``layers += LinBnDrop(...)`` adds layers the linter cannot
    see; the Dropout before them does not feed the BatchNorm after them."""
    source = (f"import torch.nn as nn\nlayers = [nn.Linear(3, 8), nn.Dropout(0.5)]\n{added}\n"
              "layers.append(nn.BatchNorm1d(8))\nnet = nn.Sequential(*layers)\n")
    assert code_lines(source) == []
