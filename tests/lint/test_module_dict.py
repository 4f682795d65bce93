"""``nn.ModuleDict`` entries called by key in ``forward`` give the findings of plain ``self.*``
modules; the order a ModuleDict is written in is never taken for data flow."""

from __future__ import annotations

import pytest

from tests.lint.helpers import code_positions, module_source

ENTRIES = [("fc", "nn.Linear(64, 32)"), ("act", "nn.ReLU()"), ("drop", "nn.Dropout(0.5)"),
           ("bn", "nn.BatchNorm1d(32)")]
LITERAL = "{" + ", ".join(f'"{name}": {layer}' for name, layer in ENTRIES) + "}"
PAIRS = "[" + ", ".join(f'("{name}", {layer})' for name, layer in ENTRIES) + "]"
KEYWORDS = ", ".join(f"{name}={layer}" for name, layer in ENTRIES)

# Ways to build the same ModuleDict in __init__.
BUILT = {
    "dict literal": [f"self.layers = nn.ModuleDict({LITERAL})"],
    "list of pairs": [f"self.layers = nn.ModuleDict({PAIRS})"],
    "OrderedDict of pairs": [f"self.layers = nn.ModuleDict(OrderedDict({PAIRS}))"],
    "dict(...) keywords": [f"self.layers = nn.ModuleDict(dict({KEYWORDS}))"],
    "modules= keyword": [f"self.layers = nn.ModuleDict(modules={LITERAL})"],
    "item assignments": ["self.layers = nn.ModuleDict()",
                         *(f'self.layers["{name}"] = {layer}' for name, layer in ENTRIES)],
    "add_module": ["self.layers = nn.ModuleDict()",
                   *(f'self.layers.add_module("{name}", {layer})' for name, layer in ENTRIES)],
    "update": ["self.layers = nn.ModuleDict()", f"self.layers.update({LITERAL})"],
}

# Ways to call fc -> act -> drop -> bn in forward: (lines, offset of the BN's line, its column).
CALLED = {
    "nested keys": (['return self.layers["bn"](self.layers["drop"](self.layers["act"]('
                     'self.layers["fc"](x))))'], 0, 15),
    "attributes": (["return self.layers.bn(self.layers.drop(self.layers.act(self.layers.fc(x))))"],
                   0, 15),
    "statements": (['x = self.layers["fc"](x)', 'x = self.layers["act"](x)',
                    'x = self.layers["drop"](x)', 'return self.layers["bn"](x)'], 3, 15),
    "loop over literal keys": (['for name in ["fc", "act", "drop", "bn"]:',
                                "    x = self.layers[name](x)", "return x"], 1, 16),
}

IMPORTS = "from collections import OrderedDict\n\nimport torch.nn as nn\n\n"


def _source(init: list[str], forward: list[str]) -> str:
    return IMPORTS + module_source(init, forward)


def _first_forward_row(init: list[str]) -> int:
    """The row of forward's first line: after the imports, the class head and ``def forward``."""
    return IMPORTS.count("\n") + 3 + len(init) + 2


@pytest.mark.parametrize("built", sorted(BUILT))
@pytest.mark.parametrize("called", sorted(CALLED))
def test_bn_after_dropout_through_a_module_dict(built: str, called: str) -> None:
    init, (forward, offset, column) = BUILT[built], CALLED[called]
    row = _first_forward_row(init) + offset
    assert code_positions(_source(init, forward)) == [("BNP001", row, column)]


def test_the_same_findings_as_attributes() -> None:
    attributes = [f"self.{name} = {layer}" for name, layer in ENTRIES]
    forward = ["return self.bn(self.drop(self.act(self.fc(x))))"]
    row = _first_forward_row(attributes)
    assert code_positions(_source(attributes, forward)) == [("BNP001", row, 15)]


@pytest.mark.parametrize("built", sorted(BUILT))
def test_a_biased_linear_feeding_bn_is_found_where_it_is_constructed(built: str) -> None:
    init = BUILT[built]
    source = _source(init, ['return self.layers["bn"](self.layers["fc"](x))'])
    row = next(row for row, line in enumerate(source.splitlines(), 1) if "nn.Linear" in line)
    column = source.splitlines()[row - 1].index("nn.Linear")
    assert code_positions(source) == [("BNP002", row, column)]


def test_module_dicts_inside_module_dicts() -> None:
    init = ['self.stages = nn.ModuleDict({"s1": nn.ModuleDict({"drop": nn.Dropout(0.5),',
            '                                                  "bn": nn.BatchNorm1d(8)})})']
    forward = ['return self.stages["s1"]["bn"](self.stages.s1.drop(x))']
    assert code_positions(_source(init, forward)) == [("BNP001", _first_forward_row(init), 15)]


def test_a_local_module_dict_in_a_function() -> None:
    source = ("import torch.nn as nn\n\n"
              "def run(x):\n"
              '    ops = nn.ModuleDict({"drop": nn.Dropout(0.5), "bn": nn.BatchNorm1d(8)})\n'
              '    return ops["bn"](ops["drop"](x))\n')
    assert code_positions(source) == [("BNP001", 5, 11)]


CLEAN = {
    "written in another order than called": (
        ['self.layers = nn.ModuleDict({"drop": nn.Dropout(0.5), "bn": nn.BatchNorm1d(32),',
         '                             "fc": nn.Linear(64, 32, bias=False)})'],
        ['return self.layers["drop"](self.layers["bn"](self.layers["fc"](x)))']),
    "added in another order than called": (
        ["self.layers = nn.ModuleDict()", 'self.layers.add_module("drop", nn.Dropout(0.5))',
         'self.layers.add_module("bn", nn.BatchNorm1d(32))'],
        ['return self.layers.drop(self.layers.bn(x))']),
    "an entry picked at run time": (
        ['self.norms = nn.ModuleDict({"drop": nn.Dropout(0.5), "bn": nn.BatchNorm1d(32)})'],
        ["x = self.norms[self.kind](x)", 'return self.norms["bn"](x)']),
    "a loop over names not written in the loop": (
        ['self.layers = nn.ModuleDict({"drop": nn.Dropout(0.5), "bn": nn.BatchNorm1d(32)})',
         'self.order = ["drop", "bn"]'],
        ["for name in self.order:", "    x = self.layers[name](x)", "return x"]),
    "heads read side by side": (
        ['self.heads = nn.ModuleDict({"drop": nn.Dropout(0.5), "bn": nn.BatchNorm1d(32)})'],
        ["return {name: head(x) for name, head in self.heads.items()}"]),
    "a BatchNorm entry never called": (
        ['self.layers = nn.ModuleDict({"fc": nn.Linear(64, 32), "bn": nn.BatchNorm1d(32)})',
         'self.layers["spare"] = nn.BatchNorm1d(32)'],
        ['return self.layers["fc"](x)']),
    "a module kept in another module": (
        ["self.block = nn.Module()", "self.block.bn = nn.BatchNorm1d(8)"],
        ["return self.block.bn(x)"]),
}


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_no_finding(name: str) -> None:
    assert code_positions(_source(*CLEAN[name])) == []


def test_a_sequential_of_an_ordered_dict_literal_is_a_sequence() -> None:
    source = ('net = nn.Sequential(OrderedDict({"drop": nn.Dropout(0.5),\n'
              '                                 "bn": nn.BatchNorm1d(8)}))\n')
    assert code_positions(IMPORTS + source) == [("BNP001", 6, 39)]
