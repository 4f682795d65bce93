"""Lint and fix the fast.ai Lesson 3 mistake: BatchNormalization placed after Dropout.

``examples/keras/lesson3_model.py`` holds the notebook's Keras head as written. This script
lints it through bnplace's Python API (nothing is imported or run, so Keras need not be
installed), prints the findings and the diff ``--fix`` would apply, then fixes a temporary copy
and lints that copy again. The repository's file is never modified.

    python examples/lesson3.py

The same from the shell: ``bnplace lint examples/keras/lesson3_model.py`` (add ``--diff`` or
``--fix``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from bnplace.lint import output
from bnplace.lint.runner import default_settings_of, lint_paths

KERAS_MODEL = Path(__file__).resolve().parent / "keras" / "lesson3_model.py"


def main() -> int:
    """Returns the exit status: 0 when the fixed copy lints clean."""
    shown = Path(os.path.relpath(KERAS_MODEL))
    before = lint_paths([shown], default_settings_of)
    print("Findings:")
    print(output.text(before.findings))
    print("\nWhat --fix would change:")
    print("".join(lint_paths([shown], default_settings_of, diff=True).diffs))

    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / KERAS_MODEL.name
        shutil.copyfile(KERAS_MODEL, copy)
        fixed = lint_paths([copy], default_settings_of, fix=True)
        after = lint_paths([copy], default_settings_of)
    print(f"Fixed {fixed.fixed} of {len(before.findings)} findings in a copy; "
          f"linting the copy again finds {len(after.findings)}.")
    return 1 if after.findings else 0


if __name__ == "__main__":
    sys.exit(main())
