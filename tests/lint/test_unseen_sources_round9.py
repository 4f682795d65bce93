"""Round nine of sources the linter was not written against: research code (alpha-zero style
nets on ``(N, 1, L)`` inputs, G-ODIN's learned divisor, VAE decoders that unflatten a Linear's
output into feature maps), checked against the shape and output rules."""

from __future__ import annotations

import pytest

from tests.lint.helpers import code_lines, fixed_at

_TORCH = "import torch\nimport torch.nn as nn\n"


@pytest.mark.parametrize("width", ["128", "5 * 5"])
def test_a_one_channel_batchnorm_after_a_linear_reads_an_n_1_l_input(width: str) -> None:
    """``x.unsqueeze(1)`` then ``Linear(L, L), BatchNorm1d(1)``: the BN normalises the one
    channel, not the Linear's units, so neither the widths nor the bias are at fault."""
    source = (_TORCH + "class Policy(nn.Module):\n    def __init__(self):\n"
              "        super().__init__()\n"
              f"        self.body = nn.Sequential(nn.Linear({width}, {width}), nn.BatchNorm1d(1),"
              " nn.ReLU())\n"
              "    def forward(self, x):\n"
              "        return self.body(torch.flatten(x, start_dim=1).unsqueeze(1))\n")
    assert fixed_at(source) == (source, [])


def test_a_mismatched_batchnorm_of_more_channels_is_still_reported() -> None:
    """Only as BNP004: on an ``(N, 64, d)`` input ``BatchNorm1d(64)`` normalises each of the
    64 positions, and the Linear's per-unit bias is no constant there (round 11)."""
    source = _TORCH + "net = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(64), nn.ReLU())\n"
    assert code_lines(source) == [("BNP004", 3)]


def test_a_linear_unflattened_into_feature_maps_keeps_its_bias() -> None:
    """The bias of ``Linear(z, 6 * 7 * 7)`` differs across each 7 x 7 map: ``BatchNorm2d(6)``
    takes away only each channel's mean of it."""
    source = (_TORCH + "decoder = nn.Sequential(nn.Linear(16, 6 * 7 * 7), nn.Unflatten(1, (6, 7, 7)),"
              "\n                        nn.BatchNorm2d(6), nn.ReLU())\n")
    assert fixed_at(source) == (source, [])


_GATE = (_TORCH + "class Scaled(nn.Module):\n    def __init__(self, d, k):\n"
         "        super().__init__()\n        self.fc = nn.Linear(d, k)\n"
         "        self.g = nn.Sequential(nn.Linear(d, 1), nn.BatchNorm1d(1), nn.Sigmoid())\n"
         "    def forward(self, x):\n        return {use}\n")


def test_a_sigmoid_whose_output_is_computed_on_is_no_output_layer() -> None:
    """G-ODIN divides the logits by ``g(x)``: the BatchNorm before that sigmoid is by design."""
    assert code_lines(_GATE.format(use="self.fc(x) / self.g(x)"), ("BNP005",)) == []


def test_a_sigmoid_head_returned_as_the_output_is_still_reported() -> None:
    assert code_lines(_GATE.format(use="self.g(x).squeeze(-1)"), ("BNP005",)) == [("BNP005", 7)]
