"""Model specs: a file is imported under a name that its relative imports and pickles work with."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bnplace.loading import load_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def package_outside_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``userpkg/nets.py`` importing ``from .layers import block``, out of the working folder."""
    monkeypatch.chdir(REPO)
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text("from torch import nn\n\n"
                                       "def block(i, o):\n    return [nn.Linear(i, o), nn.ReLU()]\n")
    (package / "nets.py").write_text("from torch import nn\nfrom .layers import block\n\n"
                                     "class Net(nn.Sequential):\n    def __init__(self):\n"
                                     "        super().__init__(*block(8, 4), nn.Linear(4, 2))\n")
    yield package / "nets.py"
    for name in [name for name in sys.modules if name.split(".")[0] == "userpkg"]:
        del sys.modules[name]


def test_a_file_inside_a_package_keeps_its_relative_imports(
        package_outside_the_working_folder: Path) -> None:
    model = load_model(f"{package_outside_the_working_folder}:Net")
    assert type(model).__module__ == "userpkg.nets"  # what torch.load of a saved winner imports
