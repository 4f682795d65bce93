"""Fixtures shared by the linter tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lint.helpers import FIXTURES


@pytest.fixture
def fixtures_copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture files."""
    target = tmp_path / "fixtures"
    target.mkdir()
    for path in FIXTURES.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target
