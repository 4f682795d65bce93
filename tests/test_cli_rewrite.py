"""`bnplace rewrite`: the chain table, the rewritten model, --output, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bnplace.cli import main

MODELS = "examples/models.py"
LENET = "tests/graph/test_concrete_tracing.py:Net"  # the tutorial LeNet: it reads shapes


def run(*args: str):
    return CliRunner().invoke(main, ["rewrite", *args], catch_exceptions=False)


def test_table_and_rewritten_model() -> None:
    result = run("--model", f"{MODELS}:Lesson3Head", "--placement", "before-activation")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2 chains in Lesson3Head" in out
    for text in ("fc1 (Linear)", "relu1 (ReLU)", "drop1 (Dropout)", "bn1 (BatchNorm1d)",
                 "after-dropout", "Rewritten to before-activation"):
        assert text in out
    # the rewritten forward: bn1 now right after fc1
    assert out.index("self.fc1(") < out.index("self.bn1(") < out.index("self.relu1(")


def test_module_spec_kwargs_and_input_shape() -> None:
    result = run("--model", "examples.models:MLP", "--model-kwargs", '{"hidden": [32, 16, 8]}',
                 "--placement", "after-activation", "--input-shape", "1,8,8")
    assert result.exit_code == 0, result.output
    assert "3 chains in MLP" in result.output
    assert result.output.count("BatchNorm1d(") == 3


def test_skipped_chain_is_shown(tmp_path: Path) -> None:
    source = tmp_path / "shared.py"
    source.write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Shared(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(4, 4)\n"
        "    def forward(self, x):\n"
        "        return torch.relu(self.fc(torch.relu(self.fc(x))))\n")
    result = run("--model", f"{source}:Shared", "--placement", "before-activation")
    assert result.exit_code == 0, result.output
    assert "called at 2 places" in result.output
    assert "note:" in result.output


def test_output_saves_a_loadable_model(tmp_path: Path) -> None:
    for name in ("FunctionalMLP", "MLP", "SmallCNN"):
        target = tmp_path / f"{name}.pt"
        result = run("--model", f"{MODELS}:{name}", "--placement", "before-activation",
                     "--output", str(target))
        assert result.exit_code == 0, result.output
        model = torch.load(target, weights_only=False)
        model.eval()
        x = torch.randn(3, 1, 8, 8)
        assert model(x).shape == (3, 10)
        assert torch.equal(model(x), model(x))  # dropout off in eval


def test_help_says_how_to_load() -> None:
    result = CliRunner().invoke(main, ["rewrite", "--help"])
    assert result.exit_code == 0
    assert "torch.load(FILE, weights_only=False)" in " ".join(result.output.split())


@pytest.mark.parametrize("args, message", [
    (["--model", "nope.module:Net", "--placement", "none"], "cannot import module 'nope.module'"),
    (["--model", f"{MODELS}:Missing", "--placement", "none"], "has no attribute 'Missing'"),
    (["--model", "no/such/file.py:Net", "--placement", "none"], "no such file"),
    (["--model", f"{MODELS}:MLP", "--placement", "sideways"], "unknown placement 'sideways'"),
    (["--model", f"{MODELS}:MLP", "--placement", "none", "--model-kwargs", "{"],
     "--model-kwargs is not valid JSON"),
    (["--model", f"{MODELS}:MLP", "--placement", "none", "--model-kwargs", '{"bogus": 1}'],
     "takes no argument 'bogus'"),
    (["--model", f"{MODELS}:MLP", "--placement", "none", "--input-shape", "a,b"],
     "--input-shape must be integers"),
    (["--model", f"{MODELS}:MLP", "--placement", "none", "--input-shape", "3,x,8"],
     "--input-shape must be integers"),
])
def test_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["rewrite", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert "Traceback" not in result.output


def test_untraceable_model_is_one_line_exit_2(tmp_path: Path) -> None:
    source = tmp_path / "loop.py"
    source.write_text(
        "from torch import nn\n\n"
        "class Loop(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(4, 4)\n"
        "        self.act = nn.ReLU()\n"
        "    def forward(self, x):\n"
        "        while x.norm() > 1:\n"
        "            x = x / 2\n"
        "        return self.act(self.fc(x))\n")
    result = CliRunner().invoke(main, ["rewrite", "--model", f"{source}:Loop",
                                       "--placement", "none"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot trace Loop.forward" in lines[0]
    assert "while x.norm() > 1" in lines[0] and "leaf_modules" in lines[0]


def test_a_wrapped_model_is_told_to_pass_its_module_without_an_input_shape_hint(
        tmp_path: Path) -> None:
    source = tmp_path / "wrapped.py"
    source.write_text("from torch import nn\n\n"
                      "def wrapped():\n"
                      "    return nn.DataParallel(nn.Sequential(nn.Linear(4, 4), nn.ReLU()))\n")
    result = CliRunner().invoke(main, ["rewrite", "--model", f"{source}:wrapped",
                                       "--placement", "none"])
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())
    assert line.startswith("Error: DataParallel only runs Sequential on several devices: pass "
                           "`model.module`")
    assert "--input-shape" not in line   # example inputs would not help


def test_model_that_reads_shapes_traces_with_input_shape(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["rewrite", "--model", LENET, "--placement", "none"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "for s in size:" in lines[0] and "--input-shape" in lines[0]
    target = tmp_path / "lenet.pt"
    result = run("--model", LENET, "--placement", "before-activation", "--input-shape", "1,32,32",
                 "--output", str(target))
    assert result.exit_code == 0, result.output
    assert "4 chains in Net" in result.output
    assert "shapes fixed from the example inputs" in " ".join(result.output.split())
    model = torch.load(target, weights_only=False).eval()
    assert model(torch.randn(3, 1, 32, 32)).shape == (3, 10)
