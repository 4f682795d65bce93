"""Notebooks: code cells only, IPython magics parse, findings name the cell, fixes keep the JSON."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from bnplace.lint.config import Settings
from bnplace.lint.engine import lint_file
from bnplace.lint.files import SourceFile
from bnplace.lint.notebook import Notebook
from tests.lint.helpers import FIXTURES

NOTEBOOK = FIXTURES / "lesson3.ipynb"


def _lint(path: Path, fix: bool = False):
    return lint_file(SourceFile.read(path), Settings().enabled_for(path), fix=fix)


def test_findings_name_the_cell_and_count_rows_within_it() -> None:
    found = [(f.code, f.cell, f.location.row, f.location.column) for f in _lint(NOTEBOOK).findings]
    # cell 3: BatchNormalization() on its 7th line; cell 5 (after %%time): Dense on its 3rd line.
    assert found == [("BNP001", 3, 7, 8), ("BNP002", 5, 3, 10)]


def test_magics_become_placeholders_that_parse_and_come_back() -> None:
    source = {"cells": [{"cell_type": "code", "source": "%matplotlib inline\n!pip install x\n"
                         "files = !ls\nlen?\n?os.path\n??len\nimport os"},
                        {"cell_type": "code", "source": "%%bash\necho hi\n"}]}
    notebook = Notebook.parse(json.dumps(source))
    assert "%" not in notebook.code and "!" not in notebook.code
    ast.parse(notebook.code)  # help lines too (`len?`, `?os.path`)
    restored = json.loads(notebook.with_code(notebook.code))
    assert restored == source


def test_fix_keeps_outputs_metadata_and_other_cells(fixtures_copy: Path) -> None:
    path = fixtures_copy / "lesson3.ipynb"
    before = json.loads(path.read_text())
    result = _lint(path, fix=True)
    after = json.loads(result.text)
    assert result.findings == [] and result.fixed == 2
    assert after["metadata"] == before["metadata"]
    for old, new in zip(before["cells"], after["cells"]):
        assert {k: v for k, v in old.items() if k != "source"} == \
               {k: v for k, v in new.items() if k != "source"}
    moved = "BatchNormalization(),\n        Dropout(p)"
    assert "".join(after["cells"][2]["source"]).count(moved) == 1
    assert "".join(after["cells"][4]["source"]).startswith("%%time\n")
    assert "Dense(64, input_dim=14, use_bias=False)" in "".join(after["cells"][4]["source"])
    assert after["cells"][0] == before["cells"][0]


def test_a_cell_that_does_not_parse_is_reported_and_the_others_still_linted(tmp_path) -> None:
    cells = ["from keras.layers import Dense, Dropout, BatchNormalization",
             "def half_written(:\n    pass",
             "x = Dropout(0.5)(x)\nx = BatchNormalization()(x)"]
    path = tmp_path / "draft.ipynb"
    document = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": c}
                          for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(document))
    result = _lint(path, fix=True)
    assert [(f.code, f.cell, f.location.row) for f in result.findings] == [("BNP000", 2, 1)]
    fixed = json.loads(result.text)["cells"]
    assert fixed[1]["source"] == cells[1]  # kept as written
    assert fixed[2]["source"] == "x = BatchNormalization()(x)\nx = Dropout(0.5)(x)"


def test_module_dicts_constants_and_sigmoid_heads_in_cells(tmp_path: Path) -> None:
    cells = ["%matplotlib inline\nimport torch\nimport torch.nn as nn\nHIDDEN = 32",
             "class Net(nn.Module):\n"
             "    def __init__(self):\n"
             "        super().__init__()\n"
             '        self.layers = nn.ModuleDict({"drop": nn.Dropout(0.5),\n'
             '                                     "bn": nn.BatchNorm1d(HIDDEN)})\n'
             "        self.fc = nn.Linear(HIDDEN, 1, bias=False)\n"
             "        self.out_bn = nn.BatchNorm1d(2 * HIDDEN)\n"
             "    def forward(self, x):\n"
             '        x = self.layers["bn"](self.layers["drop"](x))\n'
             "        return torch.sigmoid(self.out_bn(self.fc(x)))"]
    path = tmp_path / "head.ipynb"
    document = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "source": c}
                          for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(document))
    found = [(f.code, f.cell, f.location.row, f.location.column) for f in _lint(path).findings]
    assert found == [("BNP001", 2, 9, 12), ("BNP004", 2, 10, 29), ("BNP005", 2, 10, 29)]
    result = _lint(path, fix=True)
    assert [f.code for f in result.findings] == ["BNP004", "BNP005"] and result.fixed == 1
    fixed = json.loads(result.text)["cells"][1]["source"]
    assert 'x = self.layers["drop"](self.layers["bn"](x))' in fixed


def test_fix_keeps_each_cells_line_endings(tmp_path: Path) -> None:
    lines = ["import torch.nn as nn", "net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))"]
    crlf_list = [line + "\r\n" for line in lines]
    crlf_text = "\r\n".join(lines) + "\r\n"
    lf_text = "\n".join(lines)
    path = tmp_path / "crlf.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": source}
                                          for source in (crlf_list, crlf_text, lf_text)],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    result = _lint(path, fix=True)
    assert result.fixed == 3
    fixed = [cell["source"] for cell in json.loads(result.text)["cells"]]
    biased = "nn.Linear(3, 4)"
    assert fixed == [[line.replace(biased, "nn.Linear(3, 4, bias=False)") for line in crlf_list],
                     crlf_text.replace(biased, "nn.Linear(3, 4, bias=False)"),
                     lf_text.replace(biased, "nn.Linear(3, 4, bias=False)")]


def test_fix_writes_the_json_back_as_it_was_written(tmp_path: Path) -> None:
    """Colab's 2-space indent, json.dump's escaped non-ASCII text, CRLF, no final newline: a
    fix changes the fixed cell's line and nothing else."""
    document = {"nbformat": 4, "nbformat_minor": 0, "metadata": {"colab": {"name": "Modèl"}},
                "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Modèl — MNIST"]},
                          {"cell_type": "code", "metadata": {}, "outputs": [],
                           "source": ["model.add(Dense(64))\n", "model.add(BatchNormalization())"]}]}
    for indent, ensure_ascii, newline, final in ((2, True, "\n", ""), (1, False, "\r\n", "\n"),
                                                 (None, False, "\n", "")):
        path = tmp_path / "colab.ipynb"
        text = json.dumps(document, indent=indent, ensure_ascii=ensure_ascii) + final
        path.write_bytes(text.replace("\n", newline).encode())
        result = _lint(path, fix=True)
        assert (result.fixed, result.findings) == (1, [])
        assert result.text == text.replace("Dense(64)", "Dense(64, use_bias=False)").replace(
            "\n", newline)
