"""The linter neither needs nor imports torch (nor the code it reads)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.lint.helpers import FIXTURES

ROOT = Path(__file__).parents[2]

BLOCKED = """
import sys
sys.modules['torch'] = None  # any `import torch` now raises ImportError
sys.argv = ['bnplace', 'lint', '--output-format', 'json', {path!r}]
from bnplace.cli import main
try:
    main()
finally:
    assert 'torch' not in [name.split('.')[0] for name, module in sys.modules.items() if module]
"""


def test_lint_runs_with_torch_blocked() -> None:
    path = str(FIXTURES / "torch_forward.py")
    result = subprocess.run([sys.executable, "-c", BLOCKED.format(path=path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert '"code": "BNP001"' in result.stdout


def test_linted_code_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = tmp_path / "evil.py"
    source.write_text(f"open({str(marker)!r}, 'w').close()\nBatchNormalization()\n")
    result = subprocess.run([sys.executable, "-m", "bnplace", "lint", str(source)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and not marker.exists()
