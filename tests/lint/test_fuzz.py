"""Random mutations of real files (deleted lines, swapped lines, truncation) and random notebooks
never crash the linter or its fixer."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnplace.lint.config import Settings
from bnplace.lint.engine import lint_file
from bnplace.lint.files import SourceFile
from bnplace.lint.notebook import Notebook
from tests.lint.helpers import FIXTURES

SOURCES = sorted(path for path in FIXTURES.glob("*.py"))
ENABLED = Settings(select=("BNP",)).enabled_for(Path("fuzz.py"))


@st.composite
def mutated_sources(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(SOURCES)).read_text(encoding="utf-8").splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        mutation = draw(st.sampled_from(("delete", "swap", "truncate", "duplicate")))
        if mutation == "delete":
            del lines[i]
        elif mutation == "swap":
            lines[i], lines[j] = lines[j], lines[i]
        elif mutation == "duplicate":
            lines.insert(j, lines[i])
        else:
            text = "".join(lines)
            lines = text[:draw(st.integers(0, len(text)))].splitlines(keepends=True)
    return "".join(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sources())
def test_mutated_files_never_crash_lint_or_fix(source: str) -> None:
    result = lint_file(SourceFile(Path("fuzz.py"), source), ENABLED, fix=True)
    assert all(finding.code.startswith("BNP") for finding in result.findings)
    if result.text != source:  # a fix only ever happens on code that parses, and keeps it parsing
        assert not [f for f in result.findings if f.code == "BNP000"]


NOTEBOOK_LINES = [*(FIXTURES / "keras_functional.py").read_text().splitlines(),
                  "%matplotlib inline", "!pip install keras", "files = !ls", "len?", "%%time",
                  "%%bash", "    %time f()", ""]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from(NOTEBOOK_LINES), max_size=8), max_size=5),
       st.booleans())
def test_random_notebooks_round_trip_and_never_crash(cells: list[list[str]], as_list: bool) -> None:
    document = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                           "source": [line + "\n" for line in lines] if as_list
                           else "\n".join(lines)} for lines in cells],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    text = json.dumps(document, indent=1) + "\n"
    source = SourceFile(Path("fuzz.ipynb"), text, Notebook.parse(text))
    assert json.loads(source.rendered(source.code)) == document
    result = lint_file(source, ENABLED, fix=True)
    assert len(json.loads(result.text)["cells"]) == len(cells)
    assert all(f.cell is None or 1 <= f.cell <= len(cells) for f in result.findings)
