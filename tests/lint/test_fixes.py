"""``--fix`` output, exactly: what moves, what gains ``bias=False``, what is left as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnplace.lint.config import Settings
from bnplace.lint.engine import lint_file
from bnplace.lint.files import SourceFile
from tests.lint.helpers import FIXTURES, fixed_at, module_source

CASES = {
    "keras list, a comment goes with its layer": (
        "model = Sequential([\n"
        "    Dense(64, activation='relu'),\n"
        "    Dropout(0.5),\n"
        "    BatchNormalization(momentum=0.9),  # lesson 3\n"
        "])\n",
        "model = Sequential([\n"
        "    Dense(64, activation='relu'),\n"
        "    BatchNormalization(momentum=0.9),  # lesson 3\n"
        "    Dropout(0.5),\n"
        "])\n"),
    "functional api": (
        "x = Dense(64, use_bias=False)(x)\nx = Dropout(0.5)(x)\nx = BatchNormalization()(x)\n",
        "x = Dense(64, use_bias=False)(x)\nx = BatchNormalization()(x)\nx = Dropout(0.5)(x)\n"),
    "torch bias, trailing comma and explicit True": (
        "net = nn.Sequential(\n"
        "    nn.Linear(\n"
        "        64,\n"
        "        32,\n"
        "    ),\n"
        "    nn.BatchNorm1d(32),\n"
        "    nn.Conv2d(3, 8, 3, bias=True),  # keep me\n"
        "    nn.BatchNorm2d(8),\n"
        ")\n",
        "net = nn.Sequential(\n"
        "    nn.Linear(\n"
        "        64,\n"
        "        32,\n"
        "        bias=False,\n"
        "    ),\n"
        "    nn.BatchNorm1d(32),\n"
        "    nn.Conv2d(3, 8, 3, bias=False),  # keep me\n"
        "    nn.BatchNorm2d(8),\n"
        ")\n"),
    "a bias passed by position is switched off where it is": (
        "net = nn.Sequential(nn.Linear(64, 32, True), nn.BatchNorm1d(32))\n"
        "m = Sequential([Dense(8, None, True), BatchNormalization()])\n",
        "net = nn.Sequential(nn.Linear(64, 32, False), nn.BatchNorm1d(32))\n"
        "m = Sequential([Dense(8, None, False), BatchNormalization()])\n"),
    "two dropouts in a row need two rounds": (
        "m = Sequential([Dense(8, activation='relu'), Dropout(0.2), Dropout(0.2), "
        "BatchNormalization()])\n",
        "m = Sequential([Dense(8, activation='relu'), BatchNormalization(), Dropout(0.2), "
        "Dropout(0.2)])\n"),
    "module dict entries called by key trade places": (
        module_source(['self.layers = nn.ModuleDict({"drop": nn.Dropout(0.5),',
                       '                             "bn": nn.BatchNorm1d(8)})'],
                      ['return self.layers["bn"](self.layers["drop"](x))']),
        module_source(['self.layers = nn.ModuleDict({"drop": nn.Dropout(0.5),',
                       '                             "bn": nn.BatchNorm1d(8)})'],
                      ['return self.layers["drop"](self.layers["bn"](x))'])),
    "module dict entries called as attributes trade places": (
        module_source(["self.layers = nn.ModuleDict()",
                       'self.layers["drop"] = nn.Dropout(0.5)',
                       'self.layers["bn"] = nn.BatchNorm1d(8)'],
                      ["x = self.layers.drop(x)", "return self.layers.bn(x)"]),
        module_source(["self.layers = nn.ModuleDict()",
                       'self.layers["drop"] = nn.Dropout(0.5)',
                       'self.layers["bn"] = nn.BatchNorm1d(8)'],
                      ["x = self.layers.bn(x)", "return self.layers.drop(x)"])),
    "a module dict entry's bias": (
        module_source(['self.layers = nn.ModuleDict({"fc": nn.Linear(64, 8), '
                       '"bn": nn.BatchNorm1d(8)})'],
                      ['return self.layers["bn"](self.layers["fc"](x))']),
        module_source(['self.layers = nn.ModuleDict({"fc": nn.Linear(64, 8, bias=False), '
                       '"bn": nn.BatchNorm1d(8)})'],
                      ['return self.layers["bn"](self.layers["fc"](x))'])),
    "a pair inside a loop over literal names is fixed in the body": (
        "layers = []\n"
        "for name in ['a', 'b']:\n"
        "    layers += [Dense(8, activation='relu', name=name), Dropout(0.5),\n"
        "               BatchNormalization()]\n",
        "layers = []\n"
        "for name in ['a', 'b']:\n"
        "    layers += [Dense(8, activation='relu', name=name), BatchNormalization(),\n"
        "               Dropout(0.5)]\n"),
    "a layer named in a list trades places where it is named, not where it is built": (
        "d = nn.Dropout(0.5)\n"
        "net = nn.Sequential(d, nn.BatchNorm1d(8), nn.Linear(8, 8, bias=False), d)\n"
        "drop, bn = Dropout(0.5), BatchNormalization()\n"
        "model.add(drop)\nmodel.add(bn)\nother = Sequential([drop, Dense(2, activation='relu')])\n",
        "d = nn.Dropout(0.5)\n"
        "net = nn.Sequential(nn.BatchNorm1d(8), d, nn.Linear(8, 8, bias=False), d)\n"
        "drop, bn = Dropout(0.5), BatchNormalization()\n"
        "model.add(bn)\nmodel.add(drop)\nother = Sequential([drop, Dense(2, activation='relu')])\n"),
    "byte-order mark and CRLF line ends are kept": (
        "\ufeffm = Sequential([Dropout(0.5),\r\n    BatchNormalization()])\r\n",
        "\ufeffm = Sequential([BatchNormalization(),\r\n    Dropout(0.5)])\r\n"),
}

DROP_AND_BN = ["self.drop = nn.Dropout(0.5)", "self.bn = nn.BatchNorm1d(8)"]
UNFIXABLE = {
    "guarded dropout": module_source(DROP_AND_BN, ["if self.drop is not None:",
                                                   "    x = self.drop(x)", "return self.bn(x)"]),
    "dropout in a conditional expression": module_source(
        DROP_AND_BN, ["x = self.drop(x) if self.training else x", "return self.bn(x)"]),
    "functional dropout": module_source(
        DROP_AND_BN[1:], ["return self.bn(F.dropout(x, 0.5, self.training))"]),
    "dropout output read twice": (
        "x = Dropout(0.5)(inputs)\ny = BatchNormalization()(x)\nz = Dense(8)(x)\n"),
    "flatten between": "m = Sequential([Dropout(0.5), Flatten(), BatchNormalization()])\n",
    "module dict called in a loop over its keys": module_source(
        ['self.layers = nn.ModuleDict({"drop": nn.Dropout(0.5), "bn": nn.BatchNorm1d(8)})'],
        ['for name in ["drop", "bn"]:', "    x = self.layers[name](x)", "return x"]),
    "a sequential of a dict names its layers": (
        'net = nn.Sequential(OrderedDict({"drop": nn.Dropout(0.5), "bn": nn.BatchNorm1d(8)}))\n'),
}


def _fixed(source: str) -> tuple[str, list[str]]:
    path = Path("model.py")
    result = lint_file(SourceFile(path, source), Settings().enabled_for(path), fix=True)
    return result.text, [finding.code for finding in result.findings]


@pytest.mark.parametrize("name", sorted(CASES))
def test_fix_output(name: str) -> None:
    source, expected = CASES[name]
    assert _fixed(source) == (expected, [])


@pytest.mark.parametrize("name", sorted(UNFIXABLE))
def test_unsafe_moves_are_reported_not_made(name: str) -> None:
    source = "import torch.nn.functional as F\n" + UNFIXABLE[name]
    assert _fixed(source) == (source, ["BNP001"])


def test_a_layer_also_used_without_a_batchnorm_keeps_its_bias() -> None:
    source = (FIXTURES / "torchvision_style.py").read_text()
    assert _fixed(source) == (source, ["BNP002"])


def test_layers_written_in_another_function_are_not_swapped_across_it() -> None:
    source = ("def head():\n    return [Dense(8, activation='relu'), Dropout(0.5)]\n\n"
              "model = Sequential(head() + [BatchNormalization()])\n"
              "other = Sequential(head() + [Dense(2, activation='softmax')])\n")
    assert _fixed(source) == (source, ["BNP001"])
    forward = module_source(["self.block = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))",
                             "self.bn = nn.BatchNorm1d(8)"], ["return self.bn(self.block(x))"])
    assert _fixed(forward) == (forward, ["BNP001"])


def test_pairs_across_a_loop_boundary_are_reported_not_moved() -> None:
    source = ("model = Sequential()\n"
              "for width in (64, 32):\n"
              "    model.add(Dense(width, activation='relu'))\n"
              "    model.add(Dropout(0.5))\n"
              "model.add(BatchNormalization())\n"
              "layers = []\n"
              "for width in (64, 32):\n"
              "    layers += [BatchNormalization(), Dense(width, activation='relu'), Dropout(0.5)]\n")
    assert _fixed(source) == (source, ["BNP001", "BNP001"])


# forward() lines (from line 8) where code other than the BatchNorm reads the Dropout's output
# after the swap would have made it the BatchNorm's: the finding stays, the code too.
DROPOUT_AND_BN = [*DROP_AND_BN, "self.fc = nn.Linear(8, 8, bias=False)"]
DROPOUT_OUTPUT_READ_ELSEWHERE = {
    "returned": (["h = self.drop(x)", "out = self.bn(h)", "return out, h"], 9),
    "kept on self": (["h = self.drop(x)", "out = self.bn(h)", "self.cache = h", "return out"], 9),
    "appended": (["outputs = []", "h = self.drop(x)", "out = self.bn(h)", "outputs.append(h)",
                  "return out"], 10),
    "in a dict": (["h = self.drop(x)", "out = self.bn(h)", 'return {"feat": h, "out": out}'], 9),
    "a keyword argument": (["h = self.drop(x)", "out = self.bn(h)",
                            "return torch.cat(tensors=(out, h))"], 9),
    "a second argument": (["h = self.drop(x)", "out = self.bn(h)", "return self.fc(out, h)"], 9),
    "in an if": (["h = self.drop(x)", "out = self.bn(h)", "if self.training:",
                  "    self.cache = h", "return out"], 9),
    "in a for": (["h = self.drop(x)", "out = self.bn(h)", "for i in range(2):",
                  "    self.cache = h", "return out"], 9),
    "in a with": (["h = self.drop(x)", "out = self.bn(h)", "with torch.no_grad():",
                   "    self.cache = h", "return out"], 9),
    "before the batchnorm": (["h = self.drop(x)", "self.cache = h", "out = self.bn(h)",
                              "return out"], 10),
    "rebound only in a branch": (["h = self.drop(x)", "out = self.bn(h)", "if self.training:",
                                  "    h = self.fc(out)", "return out, h"], 9),
    "in a loop, before the next run binds it": (["h = x", "for _ in range(2):",
                                                 "    self.cache = h", "    h = self.drop(x)",
                                                 "    out = self.bn(h)", "return out"], 12),
    "by a lambda": (["h = self.drop(x)", "hook = lambda: h", "out = self.bn(h)",
                     "return out, hook()"], 10),
    "by a nested function": (["def hook():", "    return h", "h = self.drop(x)",
                              "out = self.bn(h)", "return out, hook()"], 11),
    "changed in place": (["h = self.drop(x)", "out = self.bn(h)", "h[0] = 0", "return out"], 9),
    "in an exception handler": (["h = self.drop(x)", "try:", "    out = self.bn(h)",
                                 "    h = self.fc(out)", "except ValueError:", "    return h",
                                 "return out"], 10),
    "bound with a walrus": (["out = self.bn(h := self.drop(x))", "return out, h"], 8),
    "an attribute": (["self.h = self.drop(x)", "return self.bn(self.h)"], 9),
    "a global": (["global h", "h = self.drop(x)", "out = self.bn(h)", "return out"], 10),
}


@pytest.mark.parametrize("name", sorted(DROPOUT_OUTPUT_READ_ELSEWHERE))
def test_a_dropout_output_read_elsewhere_is_reported_not_moved(name: str) -> None:
    forward, line = DROPOUT_OUTPUT_READ_ELSEWHERE[name]
    source = module_source(DROPOUT_AND_BN, forward)
    assert fixed_at(source) == (source, [("BNP001", line)])


def test_a_keras_dropout_output_also_given_to_the_model_is_not_moved() -> None:
    source = ("inp = Input((8,))\nh = Dropout(.5)(inp)\ny = BatchNormalization()(h)\n"
              "m = Model(inp, [y, h])\n"
              "def build():\n    inp = Input((8,))\n    h = Dropout(.5)(inp)\n"
              "    y = BatchNormalization()(h)\n    return Model(inputs=inp, outputs=[y, h])\n")
    assert fixed_at(source) == (source, [("BNP001", 3), ("BNP001", 8)])


@pytest.mark.parametrize(("forward", "fixed"), [
    (["x = self.drop(x)", "x = self.bn(x)", "x = self.fc(x)", "return x"],
     ["x = self.bn(x)", "x = self.drop(x)", "x = self.fc(x)", "return x"]),
    (["h = self.drop(x)", "out = self.bn(h)", "h = self.fc(out)", "return out, h"],
     ["h = self.bn(x)", "out = self.drop(h)", "h = self.fc(out)", "return out, h"]),
    (["h = self.drop(x)", "out = self.bn(h)", "if self.training:", "    h = self.fc(out)",
      "else:", "    h = out", "return out, h"],
     ["h = self.bn(x)", "out = self.drop(h)", "if self.training:", "    h = self.fc(out)",
      "else:", "    h = out", "return out, h"]),
    (["y = self.bn(self.drop(x))", "return y, self.fc(y)"],
     ["y = self.drop(self.bn(x))", "return y, self.fc(y)"]),
])
def test_a_dropout_output_surely_rebound_before_another_read_is_moved(
        forward: list[str], fixed: list[str]) -> None:
    """A later read of the name that the Dropout's statement bound is no second reader once
    a statement that surely runs has bound the name again; reads of the BatchNorm's output
    are meant to see the new order."""
    assert fixed_at(module_source(DROPOUT_AND_BN, forward)) == (
        module_source(DROPOUT_AND_BN, fixed), [])


LINEAR_AND_BN = ["self.fc = nn.Linear(8, 8)", "self.bn = nn.BatchNorm1d(8)",
                 "self.head = nn.Linear(8, 2)"]


def test_a_linear_output_also_returned_keeps_its_bias() -> None:
    source = module_source(LINEAR_AND_BN, ["h = self.fc(x)", "out = self.bn(h)",
                                           "return out, h"])
    assert fixed_at(source) == (source, [])


@pytest.mark.parametrize("forward", [
    ["h = self.fc(x)", "out = self.bn(h)", "if self.training:", "    h = self.head(out)",
     "return out, h"],
    ["self.h = self.fc(x)", "return self.bn(self.h)"],
])
def test_a_linear_output_other_code_may_read_is_reported_not_fixed(forward: list[str]) -> None:
    source = module_source(LINEAR_AND_BN, forward)
    assert fixed_at(source) == (source, [("BNP002", 4)])
