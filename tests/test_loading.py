"""Model specs: a file is imported under a name that its relative imports and pickles work with."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bnplace.loading import SpecError, load_model

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


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    """A user's model file: a class that needs arguments, one with a default, a config class."""
    path = tmp_path / "usermodels.py"
    path.write_text("from torch import nn\n\n"
                    "class Net(nn.Sequential):\n"
                    "    def __init__(self, hidden=8):\n"
                    "        super().__init__(nn.Linear(4, hidden), nn.ReLU(),\n"
                    "                         nn.Linear(hidden, 2))\n\n"
                    "class Config:\n    hidden = 8\n\n"
                    "class Sized(nn.Sequential):\n"
                    "    def __init__(self, in_features, num_classes, hidden=8):\n"
                    "        super().__init__(nn.Linear(in_features, num_classes))\n")
    return path


@pytest.mark.parametrize("name, kwargs, message", [
    ("Sized", {}, "needs in_features, num_classes: give them with --model-kwargs "
                  "'{\"in_features\": ..., \"num_classes\": ...}'"),
    ("Sized", {"in_features": 4}, "needs num_classes: give it with --model-kwargs "
                                  "'{\"in_features\": 4, \"num_classes\": ...}'"),
    ("Net", {"hiden": 16}, "takes no argument 'hiden'; it takes: hidden"),
    ("Net", {"hidden": "wide"}, "building 'SPEC' with {\"hidden\": \"wide\"} failed: TypeError"),
    ("Nett", {}, "has no attribute 'Nett'; did you mean 'Net'?"),
    ("Config", {}, "is the class Config, not a torch.nn.Module subclass"),
])
def test_arguments_that_do_not_fit_say_what_the_model_takes(models_file: Path, name: str,
                                                            kwargs: dict, message: str) -> None:
    spec = f"{models_file}:{name}"
    with pytest.raises(SpecError) as refused:
        load_model(spec, kwargs)
    assert message.replace("SPEC", spec) in str(refused.value)


@pytest.mark.parametrize("status", [0, 3])
@pytest.mark.parametrize("as_module", [False, True])
def test_a_script_that_exits_at_import_is_an_error_not_the_end_of_the_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, status: int, as_module: bool) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"train_script_{status}_{as_module}"
    (tmp_path / f"{name}.py").write_text(f"import sys\nfrom torch import nn\nNet = nn.Identity\n"
                                         f"sys.exit({status})\n")
    with pytest.raises(SpecError, match=f"called exit\\({status}\\): importing a file runs its "
                                        "top-level code, so put what it runs as a script under "
                                        "`if __name__ == \"__main__\":`"):
        load_model(f"{name}:Net" if as_module else f"{name}.py:Net")
    assert name not in sys.modules  # a fixed file is imported afresh
