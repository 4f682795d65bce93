"""``bnplace export``: checkpoint in, folded eval-mode model out; one-line errors, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from bnplace.cli import main
from examples import models
from tests.graph.helpers import batchnorm_count

REPO = Path(__file__).resolve().parents[1]


def checkpoint(tmp_path: Path, name: str) -> tuple[torch.nn.Module, Path]:
    """A model of ``examples.models`` with trained BN statistics, and its saved state_dict."""
    torch.manual_seed(0)
    model = getattr(models, name)().train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 1, 8, 8) * 3 + 1)
    path = tmp_path / f"{name}.pt"
    torch.save(model.state_dict(), path)
    return model.eval(), path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["export", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("name, folded, left", [("Lesson3Head", 2, 0), ("SmallCNN", 1, 2)])
def test_export_folds_and_saves_an_equivalent_model(tmp_path: Path, name: str, folded: int,
                                                    left: int) -> None:
    model, path = checkpoint(tmp_path, name)
    out = tmp_path / "folded.pt"
    code, output = run("--model", f"examples.models:{name}", "--checkpoint", str(path),
                       "--fold", "--output", str(out))
    assert code == 0, output
    lines = output.splitlines()
    layers = "layer" if folded == 1 else "layers"
    assert lines[0] == f"Folded {folded} BatchNorm {layers}, left {left}."
    assert sum(line.startswith("  left ") for line in lines) == left
    assert lines[-1] == f"Saved the eval-mode model to {out}"
    saved = torch.load(out, weights_only=False)
    assert batchnorm_count(saved) == left and not saved.training
    x = torch.randn(8, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(saved(x), model(x), rtol=1e-5, atol=1e-5)


def test_export_without_fold_keeps_batchnorm(tmp_path: Path) -> None:
    model, path = checkpoint(tmp_path, "KerasQuestionMLP")
    out = tmp_path / "model.pt"
    code, output = run("--model", "examples.models:KerasQuestionMLP", "--model-kwargs",
                       '{"hidden": 64}', "--checkpoint", str(path), "--output", str(out))
    assert code == 0 and output.splitlines() == [f"Saved the eval-mode model to {out}"]
    saved = torch.load(out, weights_only=False)
    assert batchnorm_count(saved) == 2
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(saved(x), model(x))


def test_nested_state_dict_is_accepted(tmp_path: Path) -> None:
    model, path = checkpoint(tmp_path, "Lesson3Head")
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, path)
    code, output = run("--model", "examples.models:Lesson3Head", "--checkpoint", str(path),
                       "--fold", "--output", str(tmp_path / "out.pt"))
    assert code == 0, output


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    _, path = checkpoint(tmp_path, "SmallCNN")
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": models.MLP()}, pickled)  # a whole module: refused by weights_only
    out = str(tmp_path / "out.pt")
    cases = {
        ("examples.models:Nope", str(path)): "has no attribute 'Nope'",
        ("examples.models:SmallCNN", str(tmp_path / "missing.pt")): "no such checkpoint",
        ("examples.models:SmallCNN", str(garbage)): "with weights_only=True",
        ("examples.models:SmallCNN", str(pickled)): "with weights_only=True",
        ("examples.models:MLP", str(path)): "does not fit the model: missing ",
    }
    for (spec, ckpt), expected in cases.items():
        code, output = run("--model", spec, "--checkpoint", ckpt, "--output", out)
        assert code == 2, output
        assert len(output.strip().splitlines()) == 1 and output.startswith("Error: ")
        assert expected in output
    assert not Path(out).exists()


def test_placement_loads_a_checkpoint_of_the_rewritten_model(tmp_path: Path) -> None:
    """The tuner saves the winner's state_dict of the *rewritten* model (biases dropped, BN moved):
    --placement rewrites the spec's model the same way before loading it."""
    import bnplace

    torch.manual_seed(0)
    tuned = bnplace.rewrite(models.Lesson3Head(), "before-activation").train()
    with torch.no_grad():
        tuned(torch.randn(32, 64) * 2 + 1)
    path = tmp_path / "winner_state_dict.pt"
    torch.save(tuned.state_dict(), path)
    out = tmp_path / "folded.pt"
    spec = "examples.models:Lesson3Head"

    code, output = run("--model", spec, "--checkpoint", str(path), "--output", str(out))
    assert code == 2 and "does not fit the model" in output

    code, output = run("--model", spec, "--checkpoint", str(path), "--placement",
                       "before-activation", "--fold", "--output", str(out))
    assert code == 0, output
    assert output.splitlines()[0] == "Folded 2 BatchNorm layers, left 0."
    x = torch.randn(8, 64)
    with torch.no_grad():
        torch.testing.assert_close(torch.load(out, weights_only=False)(x), tuned.eval()(x),
                                   rtol=1e-5, atol=1e-5)


LOAD_EXPORTED = """
import sys, torch
from bnplace.loading import load_object
if len(sys.argv) > 3:
    load_object(sys.argv[3])  # registers a file that no import finds under its stable name
model = torch.load(sys.argv[1], weights_only=False)
torch.save(model(torch.load(sys.argv[2])), sys.argv[2])
"""


def exported_output_in_a_new_process(exported: Path, x: torch.Tensor, *spec: str) -> torch.Tensor:
    """What ``torch.load(exported)`` computes on ``x`` in a new Python started in the repo root."""
    inputs = exported.with_name("x.pt")
    torch.save(x, inputs)
    done = subprocess.run([sys.executable, "-c", LOAD_EXPORTED, str(exported), str(inputs), *spec],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return torch.load(inputs)


def test_export_of_a_model_file_loads_in_a_new_process(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    model, path = checkpoint(tmp_path, "SmallCNN")
    out = tmp_path / "folded.pt"
    code, output = run("--model", "examples/models.py:SmallCNN", "--checkpoint", str(path),
                       "--fold", "--output", str(out))
    assert code == 0, output
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(exported_output_in_a_new_process(out, x), model(x),
                                   rtol=1e-5, atol=1e-5)


def test_export_of_a_file_outside_the_working_folder_loads_after_load_object(
        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    source = tmp_path / "net.py"
    source.write_text("from torch import nn\n\nclass Net(nn.Sequential):\n"
                      "    def __init__(self):\n"
                      "        super().__init__(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))\n")
    spec = f"{source}:Net"
    torch.manual_seed(0)
    weights = tmp_path / "net_state.pt"
    from bnplace.loading import load_model

    model = load_model(spec).eval()
    torch.save(model.state_dict(), weights)
    out = tmp_path / "net.pt"
    code, output = run("--model", spec, "--checkpoint", str(weights), "--output", str(out))
    assert code == 0, output
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.equal(exported_output_in_a_new_process(out, x, spec), model(x))


def test_input_shape_exports_a_model_that_reads_shapes(tmp_path: Path) -> None:
    """The tutorial LeNet only traces with example inputs: the tuner's winner of it is exported
    with --input-shape, rewritten and folded exactly."""
    from bnplace import rewrite
    from bnplace.graph import BnplaceWarning
    from tests.graph.test_concrete_tracing import Net

    torch.manual_seed(0)
    x = torch.randn(4, 1, 32, 32)
    with pytest.warns(BnplaceWarning, match="shapes fixed"):
        trained = rewrite(Net(), "before-activation", example_inputs=x).train()
    with torch.no_grad():
        for _ in range(3):
            trained(x * 2 + 1)
    path = tmp_path / "winner_state_dict.pt"
    torch.save(trained.state_dict(), path)
    out = tmp_path / "folded.pt"
    args = ("--model", "tests.graph.test_concrete_tracing:Net", "--checkpoint", str(path),
            "--placement", "before-activation", "--fold", "--output", str(out))
    code, output = run(*args)
    assert code == 2 and "take --input-shape for example inputs" in output
    code, output = run(*args, "--input-shape", "1,32,32")
    assert code == 0, output
    assert "note: traced with shapes fixed from the example inputs" in output
    folded = torch.load(out, weights_only=False)
    assert batchnorm_count(folded) == 0
    torch.testing.assert_close(folded(x), trained.eval()(x))


def test_a_study_winner_needs_the_placement_its_results_name(tmp_path: Path) -> None:
    """After-activation and after-dropout move Lesson3Head's BNs, not their weights: its winner's
    state_dict would load into the unrewritten model without an error, and compute something
    else. The results.json beside it names the placement, so a missing or other one is refused."""
    import json

    import bnplace

    tuned = bnplace.rewrite(models.Lesson3Head(), "after-activation")
    path = tmp_path / "winner_state_dict.pt"
    torch.save(tuned.state_dict(), path)
    (tmp_path / "results.json").write_text(json.dumps({"best": {"placement": "after-activation"}}))
    out = str(tmp_path / "model.pt")
    spec = "examples.models:Lesson3Head"
    for given in ((), ("--placement", "after-dropout")):
        code, output = run("--model", spec, "--checkpoint", str(path), *given, "--output", out)
        assert code == 2 and output.strip().endswith(
            "was given: pass --placement after-activation"), output
    code, output = run("--model", spec, "--checkpoint", str(path), "--placement",
                       "after-activation", "--output", out)
    assert code == 0, output


def test_export_of_a_checkpoint_does_not_import_the_tuner(tmp_path: Path) -> None:
    """A study's file names come from bnplace.study_files: optuna's import is most of a second."""
    _, path = checkpoint(tmp_path, "Lesson3Head")
    script = ("import sys; from bnplace.cli import main; "
              f"main(['export', '--model', 'examples/models.py:Lesson3Head', '--checkpoint', "
              f"{str(path)!r}, '--output', {str(tmp_path / 'out.pt')!r}], standalone_mode=False); "
              "print(sorted(m for m in sys.modules if m.startswith(('optuna', 'bnplace.tune'))))")
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
