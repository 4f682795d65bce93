"""Round ten of sources the linter was not written against: files as editors leave them (no
newline at the end, a form feed between sections, a string pasted from a web page holding
``\\u2028``), Keras and PyTorch models built the ways tutorials and Lightning code build them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bnplace.lint.config import Settings
from bnplace.lint.engine import lint_file
from bnplace.lint.files import SourceFile
from bnplace.lint.runner import lint_paths
from tests.lint.helpers import code_lines, fixed_at

_TORCH = "import torch.nn as nn\n"
_NET = "net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))"
_FIXED = "net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.BatchNorm1d(2))"


@pytest.mark.parametrize("source", [
    _TORCH + _NET,                                  # the editor left no newline at the end
    _TORCH + "\x0c\nclass A:\n    pass\n" + _NET + "\n",  # a form feed between sections
], ids=["no-final-newline", "form-feed"])
def test_the_diff_applies_with_patch(source: str, tmp_path: Path) -> None:
    """``str.splitlines`` cut the form feed off as a line without a line end (the diff's context
    line ``\x0c`` ran into the next), and a last line without one ran into the next diff line:
    ``patch`` refused that diff. Each line of the file is one line of the diff."""
    target = tmp_path / "model.py"
    target.write_bytes(source.encode())
    diff = lint_paths([target], lambda folder: Settings(), diff=True).diffs[0]
    assert diff.endswith("\n") and ("\x0c" not in source or "\n \x0c\n" in diff)
    patch = tmp_path / "fix.patch"
    patch.write_bytes(diff.encode())
    subprocess.run(["patch", "-s", str(target), str(patch)], check=True)
    assert target.read_bytes() == source.replace(_NET, _FIXED).encode()


def test_a_notebook_string_holding_a_line_separator_is_no_syntax_error(tmp_path: Path) -> None:
    """Python ends a line only at ``\\r`` and ``\\n``: splitting a cell at ``\\u2028`` (as
    ``str.splitlines`` does) cut its string literal in two, a BNP000 and no other finding."""
    lines = [_TORCH, "label = 'a\u2028b'\n", _NET + "\n"]
    document = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                           "execution_count": None, "source": lines}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "pasted.ipynb"
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False), encoding="utf-8")
    source = SourceFile.read(path)
    found = lint_file(source, Settings().enabled_for(path)).findings
    assert [(f.code, f.cell, f.location.row) for f in found] == [("BNP002", 1, 3)]
    fixed = json.loads(lint_file(source, Settings().enabled_for(path), fix=True).text)
    assert fixed["cells"][0]["source"] == lines[:2] + [_FIXED + "\n"]


_KERAS = "from tensorflow.keras import layers\n"


@pytest.mark.parametrize("conv", [
    'layers.Conv2D(32, 3, 1, "same", "channels_last", (1, 1), 1, "relu")',
    'layers.Conv2D(32, 3, 1, "same", None, (1, 1), 1, None, False)',
    'layers.DepthwiseConv2D(3, 1, "same", 1, None, (1, 1), "relu")',
    "layers.Conv2D(32, 3, *conv_args)",
])
def test_a_keras_conv_given_its_activation_or_bias_by_position_is_not_reported(conv: str) -> None:
    """A Keras conv's positional order is not read, so its activation and bias switch were
    taken for absent: BNP002 was reported, and ``--fix`` added ``use_bias=False`` beside a
    positional ``False`` (``TypeError: got multiple values for argument 'use_bias'``)."""
    source = _KERAS + f"block = [{conv}, layers.BatchNormalization()]\n"
    assert fixed_at(source) == (source, [])


def test_a_keras_conv_with_a_few_positional_arguments_is_still_reported() -> None:
    source = _KERAS + 'block = [layers.Conv2D(32, 3, 1, "same"), layers.BatchNormalization()]\n'
    assert code_lines(source) == [("BNP002", 2)]
    assert fixed_at(source)[0] == source.replace('"same"', '"same", use_bias=False')


def test_a_try_body_is_the_path_the_walk_goes_on_from() -> None:
    """A handler that binds the name again (``except RuntimeError: x = self.fc(x)``) hid the
    body's ``Dropout`` from the BatchNorm after the ``try``: the walk went on from the last
    handler, as if the body always raised. Reported, not fixed: ``x`` may hold the handler's."""
    source = ("import torch.nn as nn\nclass Net(nn.Module):\n    def __init__(self):\n"
              "        super().__init__()\n        self.fc = nn.Linear(8, 8)\n"
              "        self.drop = nn.Dropout()\n        self.bn = nn.BatchNorm1d(8)\n"
              "    def forward(self, x):\n        try:\n            x = self.drop(self.fc(x))\n"
              "        except RuntimeError:\n            x = self.fc(x)\n"
              "        return self.bn(x)\n")
    assert fixed_at(source) == (source, [("BNP001", 13)])
