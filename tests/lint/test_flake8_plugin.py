"""The flake8 plugin: BNP findings through flake8, with flake8's own noqa and selection."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
SOURCE = """\
model = Sequential([Dense(64), Dropout(0.5), Dense(8),
                    BatchNormalization()])
other = Sequential([Dropout(0.5),
                    BatchNormalization()])  # noqa: BNP001
"""


def _flake8(tmp_path: Path, *options: str) -> list[str]:
    path = tmp_path / "model.py"
    path.write_text(SOURCE)
    result = subprocess.run([sys.executable, "-m", "flake8", "--isolated", "--select", "BNP",
                             *options, str(path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode in (0, 1), result.stderr
    # "path:row:col: CODE message" -> "row:col CODE"
    return [" ".join(re.match(r".*?:(\d+:\d+): (BNP\d+) ", line).groups())
            for line in result.stdout.splitlines()]


def test_flake8_reports_bnp_codes_and_honours_noqa(tmp_path: Path) -> None:
    assert _flake8(tmp_path) == ["1:46 BNP002"]


def test_flake8_select_opts_in_to_bnp006(tmp_path: Path) -> None:
    assert _flake8(tmp_path, "--extend-select", "BNP006") == ["1:46 BNP002", "2:21 BNP006"]
