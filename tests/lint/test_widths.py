"""BNP004 compares widths written as constants: names assigned a number once, class constants,
arithmetic. A parameter is no constant, default or not, and nothing unknown is ever reported."""

from __future__ import annotations

import pytest

from tests.lint.helpers import code_lines, code_positions

BNP004 = ("BNP004",)

HEADER = "import torch.nn as nn\n\nHIDDEN = 128\nWIDE: int = HIDDEN * 2\nFLAT = 16 * 5 * 5\n"
MISMATCHED = {
    "a module constant": "nn.Linear(64, HIDDEN), nn.BatchNorm1d(64)",
    "a constant made of a constant": "nn.Linear(64, WIDE), nn.BatchNorm1d(HIDDEN)",
    "arithmetic on both sides": "nn.Linear(FLAT, 2 * HIDDEN), nn.BatchNorm1d(HIDDEN + 1)",
    "a literal against a constant": "nn.Linear(16 * 5 * 5, 120), nn.BatchNorm1d(FLAT)",
    "powers, floor division and modulo": "nn.Linear(64, 2 ** 7), nn.BatchNorm1d(HIDDEN // 2 % 50)",
    "a keyword argument": "nn.Linear(64, out_features=HIDDEN), nn.BatchNorm1d(num_features=-WIDE)",
}
MATCHED = {
    "a module constant": "nn.Linear(64, HIDDEN), nn.BatchNorm1d(HIDDEN)",
    "equal values spelled differently": "nn.Linear(64, WIDE), nn.BatchNorm1d(2 * HIDDEN)",
    "arithmetic": "nn.Linear(FLAT, 120), nn.ReLU(), nn.BatchNorm1d(40 * 3)",
    "a conv width through a constant": "nn.Conv2d(3, HIDDEN, 3), nn.BatchNorm2d(128)",
}


@pytest.mark.parametrize("name", sorted(MISMATCHED))
def test_mismatched_constant_widths(name: str) -> None:
    source = f"{HEADER}net = nn.Sequential({MISMATCHED[name]})\n"
    column = source.splitlines()[-1].index("nn.BatchNorm1d")
    assert code_positions(source, BNP004) == [("BNP004", 6, column)]


@pytest.mark.parametrize("name", sorted(MATCHED))
def test_matching_constant_widths(name: str) -> None:
    assert code_lines(f"{HEADER}net = nn.Sequential({MATCHED[name]})\n", BNP004) == []


def test_the_message_names_both_widths() -> None:
    from bnplace.lint.engine import lint_code

    source = f"{HEADER}net = nn.Sequential(nn.Linear(64, WIDE), nn.BatchNorm1d(HIDDEN))\n"
    [finding] = lint_code(source, lambda code: code == "BNP004")
    assert finding.message == "BatchNorm1d normalises 128 features but Linear produces 256"


def _module(init: list[str], signature: str = "self", body: str = "") -> str:
    lines = "".join(f"        {line}\n" for line in init)
    return (f"import torch.nn as nn\n\nclass Net(nn.Module):\n{body}"
            f"    def __init__({signature}):\n        super().__init__()\n{lines}"
            "    def forward(self, x):\n        return self.bn(self.fc(x))\n")


def test_class_constants_through_self_and_cls() -> None:
    body = ("    HIDDEN = 128\n"
            "    @classmethod\n"
            "    def head(cls):\n"
            "        return nn.Sequential(nn.Linear(64, cls.HIDDEN), nn.BatchNorm1d(64))\n")
    source = _module(["self.fc = nn.Linear(64, self.HIDDEN, bias=False)",
                      "self.bn = nn.BatchNorm1d(64)"], body=body)
    assert code_lines(source, BNP004) == [("BNP004", 7), ("BNP004", 13)]
    matched = source.replace("nn.BatchNorm1d(64))", "nn.BatchNorm1d(cls.HIDDEN))").replace(
        "nn.BatchNorm1d(64)", "nn.BatchNorm1d(self.HIDDEN)")
    assert "(64)" not in matched and code_lines(matched, BNP004) == []


def test_a_function_local_constant() -> None:
    source = _module(["width = 32", "self.fc = nn.Linear(64, width, bias=False)",
                      "self.bn = nn.BatchNorm1d(width * 2)"])
    assert code_lines(source, BNP004) == [("BNP004", 10)]  # the BN, where forward calls it


NEVER_REPORTED = {
    "the same parameter on both sides": (["self.fc = nn.Linear(64, hidden, bias=False)",
                                          "self.bn = nn.BatchNorm1d(hidden)"], ""),
    "a parameter against its own default": (["self.fc = nn.Linear(64, hidden, bias=False)",
                                             "self.bn = nn.BatchNorm1d(128)"], ""),
    "a parameter against another number (a caller may pass it)": (
        ["self.fc = nn.Linear(64, hidden, bias=False)", "self.bn = nn.BatchNorm1d(64)"], ""),
    "two parameters with different defaults": (
        ["self.fc = nn.Linear(64, hidden, bias=False)", "self.bn = nn.BatchNorm1d(other)"], ""),
    "a class constant the instance overrides": (
        ["self.WIDTH = hidden", "self.fc = nn.Linear(64, self.WIDTH, bias=False)",
         "self.bn = nn.BatchNorm1d(32)"], "    WIDTH = 32\n"),
    "a name assigned twice": (["width = 32", "if hidden > 64:", "    width = 64",
                               "self.fc = nn.Linear(64, width, bias=False)",
                               "self.bn = nn.BatchNorm1d(32)"], ""),
    "a name assigned in a loop": (["for width in (32, 64):", "    pass",
                                   "self.fc = nn.Linear(64, width, bias=False)",
                                   "self.bn = nn.BatchNorm1d(16)"], ""),
    "a name defined in terms of itself": (["self.fc = nn.Linear(64, LOOP, bias=False)",
                                           "self.bn = nn.BatchNorm1d(16)"], ""),
    "a power too large to compute": (["self.fc = nn.Linear(64, 2 ** 10 ** 9, bias=False)",
                                      "self.bn = nn.BatchNorm1d(16)"], ""),
    "a division by zero": (["self.fc = nn.Linear(64, 128 // (HALF - HALF), bias=False)",
                            "self.bn = nn.BatchNorm1d(16)"], ""),
    "true division": (["self.fc = nn.Linear(64, 128 / 2, bias=False)",
                       "self.bn = nn.BatchNorm1d(16)"], ""),
}


@pytest.mark.parametrize("name", sorted(NEVER_REPORTED))
def test_widths_that_are_not_constants_are_never_compared(name: str) -> None:
    init, body = NEVER_REPORTED[name]
    source = ("LOOP = LOOP + 1\nHALF = 64\n"
              + _module(init, signature="self, hidden=128, other=64", body=body))
    assert code_lines(source, BNP004) == []


def test_a_module_constant_rebound_elsewhere_is_not_a_constant() -> None:
    source = ("import torch.nn as nn\nfrom config import DEPTH\n\nWIDTH = 32\n\n"
              "def widen():\n    global WIDTH\n    WIDTH = 64\n\n"
              "net = nn.Sequential(nn.Linear(8, WIDTH, bias=False), nn.BatchNorm1d(16))\n"
              "deep = nn.Sequential(nn.Linear(8, DEPTH, bias=False), nn.BatchNorm1d(16))\n")
    assert code_lines(source, BNP004) == []
