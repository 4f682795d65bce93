"""``bnplace tune`` on the command line: a study from a data SPEC, and one-line input errors."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from click.testing import CliRunner

from bnplace.cli import main
from tests.tune.conftest import REPO, TINY_KWARGS, TINY_MODEL


def invoke(*args: str):
    return CliRunner().invoke(main, ["tune", *args])


def test_data_spec_trains_on_the_users_function(tmp_path):
    data_file = tmp_path / "mydata.py"
    data_file.write_text(textwrap.dedent("""
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        def load():
            generator = torch.Generator().manual_seed(0)
            x = torch.randn(200, 64, generator=generator)
            y = (x[:, 0] > 0).long()  # learnable: the sign of the first feature
            return DataLoader(TensorDataset(x[:160], y[:160]), batch_size=32), (x[160:], y[160:])
    """))
    out = tmp_path / "run"
    result = invoke("--model", TINY_MODEL, "--model-kwargs", TINY_KWARGS, "--data",
                    f"{data_file}:load", "--trials", "4", "--epochs", "3", "--output", str(out))

    assert result.exit_code == 0, result.output
    assert "Winner:" in result.output
    document = json.loads((out / "results.json").read_text())
    assert document["best"]["val_accuracy"] > 0.6  # 40 val samples, two classes
    assert {t["state"] for t in document["trials"]} <= {"COMPLETE", "PRUNED"}


@pytest.mark.parametrize("args, message", [
    (["--model", "no_such_module:Net"], "cannot import module 'no_such_module'"),
    (["--model", TINY_MODEL, "--placements", "before,none"], "unknown placement 'before'"),
    (["--model", TINY_MODEL, "--lr-min", "1", "--lr-max", "0.1"], "need 0 < lr-min < lr-max"),
    (["--model", TINY_MODEL, "--trials", "0"], "trials must be at least 1"),
    (["--model", TINY_MODEL, "--model-kwargs", "{"], "--model-kwargs is not valid JSON"),
    (["--model", TINY_MODEL, "--data", "missing.py:load"], "no such file: missing.py"),
    (["--model", TINY_MODEL, "--storage", "nosuchdb://x"], "cannot open storage 'nosuchdb://x'"),
    (["--model", TINY_MODEL, "--study-name", "a b"], "study name 'a b'"),
    (["--model", TINY_MODEL, "--device", "tpu"], "unknown device 'tpu'"),
    (["--model", TINY_MODEL, "--data", "digit"], "unknown data 'digit': use digits|synthetic"),
    (["--model", TINY_MODEL, "--storage", "sqlite:////no_such_folder/study.db"],
     "OperationalError: (sqlite3.OperationalError) unable to open database file (the folder "
     "/no_such_folder does not exist)"),
    (["--model", TINY_MODEL, "--seed", "-1"], "seed must be from 0 to 4294967295, got -1"),
])
def test_bad_input_is_a_one_line_error_with_exit_2(tmp_path, args, message):
    result = invoke(*args, "--output", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and message in result.output
    assert result.output.count("\n") == 1


def test_model_without_a_chain_is_a_one_line_error(tmp_path):
    model_file = tmp_path / "linear.py"
    model_file.write_text("from torch import nn\n\ndef Net():\n"
                          "    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n")
    result = invoke("--model", f"{model_file}:Net", "--output", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output == "Error: Sequential has no linear → activation chain to place " \
                            "BatchNorm in; nothing to tune\n"



def test_a_model_instance_asks_for_its_class_or_a_function(tmp_path):
    model_file = tmp_path / "instance.py"
    model_file.write_text("from torch import nn\n\n"
                          "net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), "
                          "nn.Linear(16, 10))\n")
    result = invoke("--model", f"{model_file}:net", "--output", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output == (f"Error: '{model_file}:net' is a model instance (Sequential), not a "
                             "class or function: give its class, or a function that builds a "
                             "new model\n")


def test_a_model_whose_chains_are_all_skipped_says_why(tmp_path):
    model_file = tmp_path / "noisy.py"
    model_file.write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc, self.act, self.out = nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)

            def forward(self, x):
                h = self.act(self.fc(x))
                if self.training:
                    h = h + 0.1 * torch.randn_like(h)
                return self.out(h)
    """))
    result = invoke("--model", f"{model_file}:Net", "--output", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output == ("Error: Net: every linear → activation chain is skipped, so there "
                             "is nothing to tune: the forward of `Net` branches on self.training, "
                             "so a traced copy would keep only one branch\n")


def test_untraceable_model_is_a_one_line_error_naming_the_failing_line(tmp_path):
    model_file = tmp_path / "branchy.py"
    model_file.write_text("from torch import nn\n\nclass Net(nn.Module):\n"
                          "    def forward(self, x):\n"
                          "        if x.sum() > 0:\n"
                          "            return x\n"
                          "        return -x\n")
    result = invoke("--model", f"{model_file}:Net", "--output", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.startswith("Error: cannot trace Net.forward")
    assert "branchy.py:5 `if x.sum() > 0:`" in result.output
    assert result.output.endswith("(leaf_modules= and concrete_args= are arguments of the Python "
                                  "API: bnplace.rewrite(), bnplace.find_chains(); no command-line "
                                  "option takes them; rewrite, check and export take --input-shape "
                                  "for example inputs)\n")
    assert len(result.output.splitlines()) == 1


@pytest.mark.filterwarnings("ignore:bnplace. traced with shapes fixed")
def test_model_that_reads_shapes_is_tuned(tmp_path):
    # the tutorial LeNet's forward on 8x8 digits: traced with the data's example batch
    result = invoke("--model", "tests/graph/test_concrete_tracing.py:DigitsNet", "--trials", "2",
                    "--epochs", "1", "--output", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "Winner:" in result.output


def test_help_explains_every_option():
    result = invoke("--help")
    for option in ("--model", "--model-kwargs", "--data", "--trials", "--epochs", "--batch-size",
                   "--placements", "--lr-min", "--lr-max", "--sampler", "--pruner", "--storage",
                   "--study-name", "--device", "--seed", "--timeout", "--output"):
        assert option in result.output
    assert "runs only the" in result.output  # --trials is the study's total


@pytest.mark.parametrize("command", ["tune", "check"])
def test_a_dataloader_of_dicts_is_a_one_line_error(tmp_path, command):
    data_file = tmp_path / "dictdata.py"
    data_file.write_text(textwrap.dedent("""
        import torch
        from torch.utils.data import DataLoader

        def load():
            rows = [{"x": torch.randn(64), "y": i % 10} for i in range(40)]
            return DataLoader(rows[:30], batch_size=8), DataLoader(rows[30:], batch_size=8)
    """))
    args = ["--output", str(tmp_path / "out")] if command == "tune" else []
    result = CliRunner().invoke(main, [command, "--model", TINY_MODEL, "--data",
                                       f"{data_file}:load", *args])
    assert result.exit_code == 2, result.output
    no_data = "; or --no-measure to run the rules without data" if command == "check" else ""
    assert result.output == ("Error: the train DataLoader must yield (inputs, targets) pairs of "
                             f"tensors, got a dict with keys ['x', 'y']{no_data}\n")


def test_other_model_kwargs_or_another_file_are_refused_not_joined(tmp_path):
    out = str(tmp_path / "out")
    first = invoke("--model", TINY_MODEL, "--model-kwargs", TINY_KWARGS, "--trials", "1",
                   "--epochs", "1", "--output", out)
    assert first.exit_code == 0, first.output
    results = (tmp_path / "out" / "results.json").read_text()

    wider = invoke("--model", TINY_MODEL, "--model-kwargs", '{"hidden": [8]}', "--trials", "2",
                   "--epochs", "1", "--output", out)
    assert wider.exit_code == 2
    assert wider.output.startswith("Error: study 'MLP-digits' was started with other settings "
                                   "(model_kwargs {'hidden': [16]} -> {'hidden': [8]}, ")
    assert wider.output.endswith("; run it with the same ones, or choose another --study-name "
                                 "or --output\n")
    assert wider.output.count("\n") == 1

    copy = tmp_path / "other" / "models.py"  # the same class name in another file
    copy.parent.mkdir()
    copy.write_text((REPO / "examples" / "models.py").read_text())
    other = invoke("--model", f"{copy}:MLP", "--model-kwargs", TINY_KWARGS, "--trials", "2",
                   "--epochs", "1", "--output", out)
    assert other.exit_code == 2
    assert f"(model 'examples/models.py:MLP' -> '{copy}:MLP')" in other.output
    assert (tmp_path / "out" / "results.json").read_text() == results  # nothing was trained


def test_a_batch_size_of_one_is_refused_before_training(tmp_path):
    result = invoke("--model", TINY_MODEL, "--batch-size", "1", "--output", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "Error: Invalid value for '--batch-size': 1 is not in the range x>=2." in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("device", [
    pytest.param("mps", marks=pytest.mark.skipif(torch.backends.mps.is_available(),
                                                 reason="this machine has MPS")),
    "meta",  # torch makes tensors there, but computes nothing
])
def test_a_device_torch_cannot_use_here_is_a_one_line_error(tmp_path, device):
    result = invoke("--model", TINY_MODEL, "--device", device, "--output", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: device {device!r} cannot be used on this machine; "
                                    "use one of: auto, cpu")
    assert result.output.count("\n") == 1


def test_an_output_folder_under_a_file_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("")
    result = invoke("--model", TINY_MODEL, "--output", str(tmp_path / "file" / "out"))
    assert result.exit_code == 2
    assert result.output == (f"Error: cannot write to the output folder {tmp_path}/file/out: "
                             "Not a directory\n")


@pytest.mark.parametrize("name, make", [("results.json", "mkdir"), ("winner.pt", "mkdir"),
                                        ("checkpoints", "touch")])
def test_a_report_file_name_taken_in_the_output_folder_is_refused_before_training(
        tmp_path, name, make):
    getattr(tmp_path / name, make)()
    result = invoke("--model", TINY_MODEL, "--model-kwargs", TINY_KWARGS, "--trials", "1",
                    "--epochs", "1", "--output", str(tmp_path))
    assert result.exit_code == 2
    assert result.output == (f"Error: cannot write {tmp_path / name}: something of that name is "
                             "in the way (move it, or choose another --output)\n")
    assert not (tmp_path / "study.db").exists()


def test_a_study_where_no_trial_completed_exits_1(tmp_path):
    result = invoke("--model", TINY_MODEL, "--model-kwargs", TINY_KWARGS, "--lr-min", "1e37",
                    "--lr-max", "1e38", "--placements", "none", "--trials", "2", "--epochs", "1",
                    "--output", str(tmp_path))
    assert result.exit_code == 1, result.output
    unwrapped = " ".join(result.output.split())
    assert ("No trial completed: diverged: the loss became NaN or infinite in epoch 1 "
            "(2 trials); every trial's reason is in results.json.") in unwrapped
    states = [t["state"] for t in json.loads((tmp_path / "results.json").read_text())["trials"]]
    assert states == ["PRUNED", "PRUNED"]  # diverged


def test_python_m_bnplace_cli_runs_the_command_line():
    done = subprocess.run([sys.executable, "-m", "bnplace.cli", "tune", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("Usage: bnplace tune [OPTIONS]")


def test_two_factory_functions_get_their_own_default_study_and_folder(tmp_path, monkeypatch):
    (tmp_path / "umodels.py").write_text(textwrap.dedent("""
        from torch import nn

        def make_net():
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

        def make_wide():
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    """))
    monkeypatch.chdir(tmp_path)
    for factory in ("make_net", "make_wide"):
        result = invoke("--model", f"umodels.py:{factory}", "--trials", "1", "--epochs", "1")
        assert result.exit_code == 0, result.output
    runs = tmp_path / "bnplace-runs"
    assert sorted(path.name for path in runs.iterdir()) == ["make_net-digits", "make_wide-digits"]
    assert all((runs / name / "results.json").is_file() for name in ("make_net-digits",
                                                                     "make_wide-digits"))


def test_a_class_spec_names_the_default_study_after_the_class(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("--model", f"{REPO / TINY_MODEL}", "--model-kwargs", TINY_KWARGS,
                    "--trials", "1", "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert [path.name for path in (tmp_path / "bnplace-runs").iterdir()] == ["MLP-digits"]
