"""Every example runs as written (quick mode where it trains) and shows what its docs promise."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
# This checkout's bnplace (not an installed one), and one torch thread: on a busy 2-core machine
# OpenMP's spin-waits slow these tiny models a hundredfold.
ENV = {**os.environ, "OMP_NUM_THREADS": "1",
       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
FINDING = re.compile(
    r"^(?P<path>\S+?):(?:cell (?P<cell>\d+):)?(?P<row>\d+):\d+: (?P<code>BNP\d{3})", re.MULTILINE)


def run(*command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *command], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def run_example(name: str, *args: str) -> str:
    done = run(str(EXAMPLES / name), *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_lesson3_lints_and_fixes_a_copy_leaving_the_repo_file_alone() -> None:
    keras_model = EXAMPLES / "keras" / "lesson3_model.py"
    digest = hashlib.sha256(keras_model.read_bytes()).hexdigest()

    out = run_example("lesson3.py")

    findings = [(m["path"], m["code"], int(m["row"])) for m in FINDING.finditer(out)]
    assert findings == [("examples/keras/lesson3_model.py", "BNP001", 19),
                        ("examples/keras/lesson3_model.py", "BNP001", 22)]
    diff = [line for line in out.splitlines()
            if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
    assert diff == ["+        BatchNormalization(),", "+        Dense(4096, activation='relu'),",
                    "-        Dense(4096, activation='relu'),", "-        BatchNormalization(),"]
    assert "Fixed 2 of 2 findings in a copy; linting the copy again finds 0." in out
    assert hashlib.sha256(keras_model.read_bytes()).hexdigest() == digest


def test_readme_lint_example_is_what_the_commands_print() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = next(block for block in readme.split("```text\n")[1:]
                 if block.startswith("$ bnplace lint ")).split("```")[0]
    shown = re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]
    assert len(shown) == 2
    for example in shown:
        command, expected = example.split("\n", 1)
        # stderr merged into stdout as a terminal shows it (click flushes every line)
        done = subprocess.run([sys.executable, "-m", "bnplace", *shlex.split(command)[1:]],
                              cwd=REPO, env={**ENV, "NO_COLOR": "1"}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=60)
        assert done.returncode == 1, done.stdout
        assert [line.rstrip() for line in done.stdout.strip("\n").splitlines()] == \
            [line.rstrip() for line in expected.strip("\n").splitlines()], command


def test_lesson3_torch_rewrites_the_head_to_the_tuned_winner() -> None:
    out = run_example("lesson3_torch.py", "--quick")

    before, after = out.split("Chains after bnplace.rewrite")
    assert re.findall(r"(fc\d) -> .*: BN (bn\d) at ([\w-]+)", before) == [
        ("fc1", "bn1", "after-dropout"), ("fc2", "bn2", "after-dropout")]
    winner = re.search(r"^Winner: ([\w-]+) at lr", out, re.MULTILINE)
    assert winner is not None
    assert re.findall(r"(fc\d) -> .*: BN \S+ at ([\w-]+)", after) == [
        ("fc1", winner[1]), ("fc2", winner[1])]


def test_custom_data_tunes_through_the_api_and_its_printed_command_runs(tmp_path: Path) -> None:
    out = run_example("custom_data.py", "--quick")

    assert re.findall(r"^Study '([\w.-]+)'", out, re.MULTILINE) == ["MLP-wine", "MLP-wine_loaders"]
    command = shlex.split(out.rsplit("The same study from the shell:", 1)[1].strip())
    assert command[:2] == ["bnplace", "tune"]
    done = run("-m", "bnplace", *command[1:], "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert sorted(results["by_placement"]) == sorted(
        ["before-activation", "after-activation", "after-dropout", "none"])
    assert len(results["trials"]) == 4


def test_notebook_findings_name_cell_and_row_as_the_docs_show() -> None:
    done = run("-m", "bnplace", "lint", "examples/notebook.ipynb")

    assert done.returncode == 1, done.stderr
    assert [(m["code"], int(m["cell"]), int(m["row"])) for m in FINDING.finditer(done.stdout)] == [
        ("BNP001", 4, 5), ("BNP002", 4, 6), ("BNP002", 4, 9), ("BNP005", 4, 10)]
    shown = (REPO / "docs" / "index.md").read_text().split("```text\n")[-1].split("```")[0]
    assert shown == done.stdout


def test_notebook_is_nbformat_4_with_a_magic() -> None:
    notebook = json.loads((EXAMPLES / "notebook.ipynb").read_text())

    assert (notebook["nbformat"], notebook["nbformat_minor"]) == (4, 5)
    assert all({"cell_type", "metadata", "source", "id"} <= set(cell) for cell in notebook["cells"])
    code = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert any(source.startswith("%matplotlib inline") for source in code)
