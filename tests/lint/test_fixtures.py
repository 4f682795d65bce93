"""Exact findings for realistic Keras and PyTorch files in several styles."""

from __future__ import annotations

import pytest

from tests.lint.helpers import FIXTURES, code_lines

ALL_RULES = ("BNP",)

EXPECTED = {
    "keras_sequential.py": [("BNP002", 8), ("BNP001", 15), ("BNP005", 17)],
    "keras_functional.py": [("BNP002", 6), ("BNP001", 10), ("BNP006", 20), ("BNP003", 22)],
    "torch_forward.py": [("BNP001", 20), ("BNP003", 32), ("BNP001", 38), ("BNP004", 47),
                         ("BNP004", 55)],
    "torch_builders.py": [("BNP001", 12), ("BNP002", 17), ("BNP001", 26)],
    "torchvision_style.py": [("BNP002", 12)],  # VGG-BN's conv keeps a bias; ResNet's does not
    "clean_models.py": [],
    "broken.py": [("BNP000", 3)],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_findings(name: str) -> None:
    source = (FIXTURES / name).read_text(encoding="utf-8")
    assert code_lines(source, select=ALL_RULES) == EXPECTED[name]


def test_a_broken_file_naming_no_batchnorm_is_still_a_syntax_finding() -> None:
    source = "import torch\n\n\ndef train(model:\n    return model\n"
    assert code_lines(source, select=ALL_RULES) == [("BNP000", 4)]
    assert code_lines("import torch\nx = 1\n", select=ALL_RULES) == []
