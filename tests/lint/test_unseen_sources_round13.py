"""Round thirteen of sources the linter was not written against: the edges of a comprehension or
a repeated list that may make no items (``*[m for a, b in zip(w, w[1:]) for m in (...)]``,
``*[...] * n``), whose pairs with a layer outside are reported, not fixed, while pairs inside
stay fixed."""

from __future__ import annotations

from tests.lint.helpers import code_positions, fixed_at

_TORCH = "import torch.nn as nn\n\n"
_PAIRS = "*[m for a, b in zip(w, w[1:]) for m in ({})]"


def test_a_dropout_before_a_comprehension_opening_with_a_batchnorm_is_not_swapped() -> None:
    source = (_TORCH + "net = nn.Sequential(nn.Dropout(0.1), "
              + _PAIRS.format("nn.BatchNorm1d(a), nn.Linear(a, b), nn.ReLU()") + ")\n")
    assert code_positions(source) == [("BNP001", 3, 77)]
    assert fixed_at(source) == (source, [("BNP001", 3)])


def test_a_linear_before_a_comprehension_opening_with_a_batchnorm_keeps_its_bias() -> None:
    source = (_TORCH + "net = nn.Sequential(\n"
              "    nn.Linear(8, 8),\n"
              "    " + _PAIRS.format("nn.BatchNorm1d(a), nn.Linear(a, b), nn.ReLU()") + ",\n"
              ")\n")
    assert code_positions(source) == [("BNP002", 4, 4)]
    assert fixed_at(source) == (source, [("BNP002", 4)])


def test_pairs_inside_the_comprehension_are_still_fixed() -> None:
    source = (_TORCH + "net = nn.Sequential(\n"
              "    nn.Linear(8, 8),\n"
              "    " + _PAIRS.format("nn.BatchNorm1d(a), nn.Dropout(0.1), nn.BatchNorm1d(a), "
                                     "nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()") + ",\n"
              ")\n")
    fixed = source.replace("nn.Dropout(0.1), nn.BatchNorm1d(a), nn.Linear(a, b),",
                           "nn.BatchNorm1d(a), nn.Dropout(0.1), nn.Linear(a, b, bias=False),")
    assert fixed_at(source) == (fixed, [("BNP002", 4)])


def test_a_dropout_before_a_list_repeated_an_unknown_count_is_not_swapped() -> None:
    source = (_TORCH + "def make(n):\n"
              "    return nn.Sequential(nn.Dropout(0.1), *[nn.BatchNorm1d(8), nn.ReLU()] * n)\n")
    assert code_positions(source) == [("BNP001", 4, 44)]
    assert fixed_at(source) == (source, [("BNP001", 4)])


def test_a_dropout_before_a_list_repeated_twice_is_not_swapped_into_it() -> None:
    source = _TORCH + "net = nn.Sequential(nn.Dropout(0.1), *[nn.BatchNorm1d(8), nn.ReLU()] * 2)\n"
    assert fixed_at(source) == (source, [("BNP001", 3)])
