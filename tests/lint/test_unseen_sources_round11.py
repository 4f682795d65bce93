"""Round eleven of sources the linter was not written against: MLPs flattened from a
comprehension, dropout on the logits, comments beside swapped layers, Keras ``axis=`` and
time-series ``BatchNorm1d(seq_len)``; then model files in the styles of timm, torchvision,
fast.ai and Keras subclassed models."""

from __future__ import annotations

from tests.lint.helpers import code_positions, fixed_at

_TORCH = "import torch.nn as nn\nimport torch.nn.functional as F\n\n"
_KERAS = "from tensorflow import keras\nfrom tensorflow.keras import layers\n\n"


def test_a_comprehension_flattening_tuples_of_layers_is_read() -> None:
    """Each ``(Linear, BatchNorm1d, ReLU)`` tuple in turn: the Linear's bias is redundant."""
    source = (_TORCH + "widths = [16, 32, 8]\n"
              "net = nn.Sequential(*[m for a, b in zip(widths, widths[1:])\n"
              "                      for m in (nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU())])\n")
    assert code_positions(source) == [("BNP002", 6, 32)]
    assert fixed_at(source) == (source.replace("nn.Linear(a, b)", "nn.Linear(a, b, bias=False)"),
                                [])


def test_a_flattened_dropout_then_batchnorm_is_swapped_within_the_tuple() -> None:
    source = (_TORCH + "net = nn.Sequential(*[m for _ in range(3) for m in (\n"
              "    nn.Linear(8, 8, bias=False), nn.ReLU(), nn.Dropout(), nn.BatchNorm1d(8))])\n")
    assert code_positions(source) == [("BNP001", 5, 58)]
    assert fixed_at(source)[0] == source.replace("nn.Dropout(), nn.BatchNorm1d(8)",
                                                 "nn.BatchNorm1d(8), nn.Dropout()")


def test_a_filtered_comprehension_is_reported_not_fixed() -> None:
    source = (_TORCH + "def mlp(w, bn):\n"
              "    layers = [m for a, b in zip(w, w[1:])\n"
              "              for m in (nn.Linear(a, b), nn.BatchNorm1d(b) if bn else None)"
              " if m is not None]\n"
              "    return nn.Sequential(*layers)\n")
    assert code_positions(source) == [("BNP002", 6, 24)]
    assert fixed_at(source) == (source, [("BNP002", 6)])


def test_batchnorm_on_dropped_out_logits_is_also_on_the_output() -> None:
    """``Linear -> F.dropout -> BN -> log_softmax``: the BN still normalises the logits."""
    source = (_TORCH + "class Net(nn.Module):\n    def __init__(self):\n"
              "        super().__init__()\n"
              "        self.fc = nn.Linear(16, 10, bias=False)\n"
              "        self.bn = nn.BatchNorm1d(10)\n"
              "    def forward(self, x):\n"
              "        x = self.fc(x)\n"
              "        x = F.dropout(x, 0.5, self.training)\n"
              "        x = self.bn(x)\n"
              "        return F.log_softmax(x, dim=1)\n")
    assert code_positions(source) == [("BNP001", 12, 12), ("BNP005", 12, 12)]


def test_a_swap_takes_each_layers_end_of_line_comment_with_it() -> None:
    source = (_TORCH + "net = nn.Sequential(\n"
              "    nn.Linear(4, 8, bias=False),\n"
              "    nn.ReLU(),\n"
              "    nn.Dropout(),  # regularise\n"
              "    nn.BatchNorm1d(8)  # normalise\n"
              ")\n")
    assert code_positions(source) == [("BNP001", 8, 4)]
    assert fixed_at(source) == (source.replace(
        "    nn.Dropout(),  # regularise\n    nn.BatchNorm1d(8)  # normalise\n",
        "    nn.BatchNorm1d(8),  # normalise\n    nn.Dropout()  # regularise\n"), [])


def test_a_comment_on_a_row_of_several_layers_stays() -> None:
    source = (_TORCH + "net = nn.Sequential(\n"
              "    nn.Linear(4, 8, bias=False), nn.ReLU(),\n"
              "    nn.Dropout(),\n"
              "    nn.BatchNorm1d(8), nn.Linear(8, 2),  # head\n"
              ")\n")
    assert fixed_at(source) == (source.replace(
        "    nn.Dropout(),\n    nn.BatchNorm1d(8),", "    nn.BatchNorm1d(8),\n    nn.Dropout(),"),
        [])


def test_keras_batchnorm_over_another_axis_keeps_the_bias() -> None:
    """``axis=1`` after a channels-last conv (or a Dense) normalises rows, not units; the
    default axis after a channels-first conv the same."""
    source = (_KERAS + "a = keras.Sequential([layers.Conv2D(32, 3), layers.BatchNormalization(axis=1)])\n"
              "b = keras.Sequential([layers.Dense(32), layers.BatchNormalization(axis=1)])\n"
              "c = keras.Sequential([layers.Conv2D(32, 3, data_format='channels_first'),\n"
              "                      layers.BatchNormalization()])\n")
    assert fixed_at(source) == (source, [])


def test_keras_batchnorm_over_the_units_axis_is_still_reported() -> None:
    source = (_KERAS + "AXIS = 3\n"
              "a = keras.Sequential([layers.Conv2D(32, 3), layers.BatchNormalization(AXIS)])\n"
              "b = keras.Sequential([layers.Conv2D(32, 3, data_format='channels_first'),\n"
              "                      layers.BatchNormalization(axis=1)])\n"
              "bn_axis = 3 if keras.backend.image_data_format() == 'channels_last' else 1\n"
              "c = keras.Sequential([layers.Conv2D(32, 3), layers.BatchNormalization(axis=bn_axis)])\n"
              "d = keras.Sequential([layers.Dense(32), layers.BatchNormalization(axis=-1)])\n")
    assert code_positions(source) == [("BNP002", 5, 22), ("BNP002", 6, 22), ("BNP002", 9, 22),
                                      ("BNP002", 10, 22)]


def test_a_sequence_length_batchnorm_after_a_linear_keeps_the_bias() -> None:
    """``Linear`` on ``(N, L, d)`` then ``BatchNorm1d(L)``: one mean per position; only the
    width mismatch is reported."""
    source = (_TORCH + "SEQ_LEN = 50\n\nclass Encoder(nn.Module):\n"
              "    def __init__(self):\n        super().__init__()\n"
              "        self.proj = nn.Linear(16, 64)\n"
              "        self.bn = nn.BatchNorm1d(SEQ_LEN)\n"
              "    def forward(self, x):\n"
              "        return F.relu(self.bn(self.proj(x)))\n")
    assert code_positions(source) == [("BNP004", 12, 22)]
    assert fixed_at(source)[0] == source


def test_a_named_pair_takes_its_comment_with_it() -> None:
    source = ("from collections import OrderedDict\n" + _TORCH + "seq = nn.Sequential(OrderedDict([\n"
              "    ('fc', nn.Linear(8, 8, bias=False)),  # lin\n"
              "    ('drop', nn.Dropout(0.2)),  # drop\n"
              "    ('bn', nn.BatchNorm1d(8)),  # bn\n"
              "]))\n")
    assert code_positions(source) == [("BNP001", 8, 5)]
    assert fixed_at(source) == (source.replace(
        "    ('drop', nn.Dropout(0.2)),  # drop\n    ('bn', nn.BatchNorm1d(8)),  # bn\n",
        "    ('bn', nn.BatchNorm1d(8)),  # bn\n    ('drop', nn.Dropout(0.2)),  # drop\n"), [])
