"""The saved winner loads with a plain ``torch.load`` when the model came from a file path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.tune.conftest import REPO, WORKER_ENV, run_cli

LOAD_AND_COMPARE = """
import sys, torch
folder = sys.argv[1]
model = torch.load(folder + "/winner.pt", weights_only=False)
program = torch.export.load(folder + "/winner.pt2").module()
x = torch.randn(5, 64)
with torch.no_grad():
    torch.testing.assert_close(model(x), program(x))
print(type(model).__module__)
"""


def test_winner_of_a_model_file_loads_from_the_folder_the_study_ran_in(tmp_path: Path) -> None:
    done = run_cli("--trials", "1", "--epochs", "1", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr

    # a new process, as a user's script or notebook started in the repository root would be
    loaded = subprocess.run([sys.executable, "-c", LOAD_AND_COMPARE, str(tmp_path)], cwd=REPO,
                            env=WORKER_ENV, capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "examples.models"
