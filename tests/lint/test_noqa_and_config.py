"""``# noqa`` comments and ``[tool.bnplace]`` settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnplace.lint.config import ConfigError, settings_for_directory
from bnplace.lint.runner import lint_paths
from tests.lint.helpers import code_lines

MODEL = """\
model = Sequential()
model.add(Dense(64)){noqa_dense}
model.add(Dropout(0.5))
model.add(BatchNormalization()){noqa_bn}
"""


@pytest.mark.parametrize(("noqa_dense", "noqa_bn", "expected"), [
    ("", "", [("BNP001", 4)]),
    ("", "  # noqa", []),
    ("", "  # noqa: BNP001", []),
    ("", "  # noqa: BNP002, BNP001", []),
    ("", "  # noqa: BNP002", [("BNP001", 4)]),
    ("  # NOQA:BNP001", "", [("BNP001", 4)]),
])
def test_noqa_on_the_reported_line(noqa_dense: str, noqa_bn: str, expected: list) -> None:
    assert code_lines(MODEL.format(noqa_dense=noqa_dense, noqa_bn=noqa_bn)) == expected


def test_only_a_comment_carries_noqa_not_a_string() -> None:
    source = ('import torch.nn as nn\n'
              's = "# noqa"; a = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))\n'
              'b = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))  # noqa\n'
              'c = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))  # type: ignore  # noqa\n'
              'd = """\n# noqa"""; e = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))\n'
              'f = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))  # "# noqa: BNP001"\n')
    assert code_lines(source) == [("BNP002", 2), ("BNP002", 6), ("BNP002", 7)]
    assert code_lines(source.replace("\n", "\r")) == code_lines(source)  # old Mac line ends


MODULE_DICT = """\
import torch
from torch import nn

WIDTH = 8


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleDict({{"drop": nn.Dropout(0.5), "bn": nn.BatchNorm1d(WIDTH)}})
        self.fc = nn.Linear(WIDTH, 1, bias=False)
        self.out_bn = nn.BatchNorm1d(WIDTH // 4)

    def forward(self, x):
        for name in ["drop", "bn"]:
            x = self.layers[name](x){noqa_loop}
        return torch.sigmoid(self.out_bn(self.fc(x))){noqa_out}
"""


@pytest.mark.parametrize(("noqa_loop", "noqa_out", "expected"), [
    ("", "", [("BNP001", 16), ("BNP004", 17), ("BNP005", 17)]),
    ("  # noqa: BNP001", "", [("BNP004", 17), ("BNP005", 17)]),
    ("", "  # noqa: BNP005", [("BNP001", 16), ("BNP004", 17)]),
    ("  # noqa", "  # noqa: BNP004,BNP005", []),
])
def test_noqa_for_module_dicts_constants_and_sigmoid_heads(noqa_loop: str, noqa_out: str,
                                                           expected: list) -> None:
    source = MODULE_DICT.format(noqa_loop=noqa_loop, noqa_out=noqa_out)
    assert code_lines(source) == expected


def _project(tmp_path: Path, table: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname = 'x'\n\n[tool.bnplace]\n{table}\n")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "keras_model.py").write_text(
        "model.add(Dense(64))\nmodel.add(Dropout(0.5))\nmodel.add(BatchNormalization())\n"
        "model.add(Dense(8))\nmodel.add(BatchNormalization())\n")
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "old.py").write_text("BatchNormalization()\n")
    return tmp_path


def _found(root: Path) -> list[tuple[str, str, int]]:
    settings_for_directory.cache_clear()
    report = lint_paths([root], lambda folder: settings_for_directory(folder.resolve()))
    return [(Path(f.path).name, f.code, f.location.row) for f in report.findings]


def test_no_table_means_default_rules(tmp_path: Path) -> None:
    root = _project(tmp_path, "")
    assert _found(root) == [("old.py", "BNP003", 1), ("keras_model.py", "BNP001", 3),
                            ("keras_model.py", "BNP002", 4)]


def test_select_ignore_extend_select(tmp_path: Path) -> None:
    root = _project(tmp_path, 'select = ["BNP00"]\nignore = ["BNP003"]\nextend-select = ["BNP006"]')
    assert _found(root) == [("keras_model.py", "BNP001", 3), ("keras_model.py", "BNP002", 4)]


def test_exclude_and_per_file_ignores(tmp_path: Path) -> None:
    root = _project(tmp_path, 'exclude = ["legacy"]\n'
                              '[tool.bnplace.per-file-ignores]\n"models/*.py" = ["BNP002"]')
    assert _found(root) == [("keras_model.py", "BNP001", 3)]


def test_opt_in_rule_through_extend_select(tmp_path: Path) -> None:
    root = _project(tmp_path, 'select = ["BNP006"]')
    (root / "models" / "keras_model.py").write_text(
        "m = Sequential([Dropout(0.5), Dense(8), BatchNormalization()])\n")
    assert _found(root) == [("keras_model.py", "BNP006", 1)]


@pytest.mark.parametrize("table", ['select = ["XYZ1"]', 'unknown = 1', 'ignore = "BNP001"'])
def test_bad_configuration_is_an_error(tmp_path: Path, table: str) -> None:
    root = _project(tmp_path, table)
    settings_for_directory.cache_clear()
    with pytest.raises(ConfigError):
        settings_for_directory(root)
