"""Files as they come: source encodings, malformed and non-Python notebooks, files too deep to
parse, and the summary when a file cannot be linted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bnplace.cli import main
from bnplace.lint import deep_stack

BIASED = "net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))\n"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["lint", *args])
    return result.exit_code, result.stdout, result.stderr


def _json(*paths: Path) -> tuple[int, list[tuple[str, str, int]], str]:
    code, out, err = _run("--output-format", "json", *map(str, paths))
    return code, [(Path(i["filename"]).name, i["code"], i["location"]["row"])
                  for i in json.loads(out)], err


def test_a_pep_263_declaration_is_read_and_fixed_in_its_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin1.py"
    source = f"# -*- coding: latin-1 -*-\n# Auteur: François\nimport torch.nn as nn\n{BIASED}"
    path.write_bytes(source.encode("latin-1"))
    assert _json(path) == (1, [("latin1.py", "BNP002", 4)], "")
    assert _run("--fix", str(path))[0] == 0
    assert path.read_bytes() == source.replace("4), nn", "4, bias=False), nn").encode("latin-1")


def _notebook(path: Path, cells: object, **fields: object) -> Path:
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5, **fields}))
    return path


def test_a_malformed_notebook_is_one_error_line_and_the_other_files_are_still_linted(
        tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(f"import torch.nn as nn\n{BIASED}")
    bad_line = _notebook(tmp_path / "a.ipynb", [{"cell_type": "code", "source": ["x = 1\n", 5]}])
    no_cells = _notebook(tmp_path / "b.ipynb", None)
    code, found, err = _json(bad_line, no_cells, good)
    assert (code, found) == (2, [("good.py", "BNP002", 2)])
    assert err.splitlines() == [
        f"error: {bad_line}: cannot lint: cell 1: 'source' is not a string or a list of strings",
        f"error: {no_cells}: cannot lint: not a notebook: 'cells' is not a list"]


def test_an_nbformat_3_notebook_says_how_to_convert_it(tmp_path: Path) -> None:
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps({"metadata": {}, "nbformat": 3, "nbformat_minor": 0,
                                "worksheets": [{"cells": []}]}))
    code, _, err = _run(str(path))
    assert (code, err) == (2, f"error: {path}: cannot lint: nbformat 3 notebooks are not "
                              "supported; convert it with `jupyter nbconvert --to notebook "
                              "--inplace`\n")


def test_notebooks_in_other_languages_are_skipped_like_ruff_does(tmp_path: Path) -> None:
    cell = [{"cell_type": "code", "source": "model = Chain(Dense(10 => 5), BatchNorm(5))"}]
    julia = _notebook(tmp_path / "julia.ipynb", cell,
                      metadata={"language_info": {"name": "julia"},
                                "kernelspec": {"language": "python"}})
    r_lang = _notebook(tmp_path / "r.ipynb", cell, metadata={"kernelspec": {"language": "R"}})
    python = _notebook(tmp_path / "py.ipynb", cell, metadata={"language_info": {"name": "python"}})
    before = julia.read_text()
    assert _json(julia, r_lang, python) == (1, [("py.ipynb", "BNP000", 1)], "")
    assert _run("--fix", str(julia), str(r_lang)) == (0, "All checks passed!\n", "")
    assert julia.read_text() == before


def test_the_summary_never_says_all_passed_when_a_file_could_not_be_linted(
        tmp_path: Path) -> None:
    broken = _notebook(tmp_path / "broken.ipynb", None)
    good = tmp_path / "good.py"
    good.write_text(f"import torch.nn as nn\n{BIASED}")
    assert _run(str(broken))[:2] == (2, "Found 0 errors; 1 file could not be linted.\n")
    assert _run(str(broken), str(good))[1].splitlines()[-2:] == [
        "Found 1 error; 1 file could not be linted.", "[*] 1 fixable with the `--fix` option."]
    assert _run("--fix", str(broken), str(good))[:2] == (
        2, "Found 1 error (1 fixed, 0 remaining); 1 file could not be linted.\n")


def test_a_deep_expression_is_linted_and_one_too_deep_is_one_error_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "deep.py"
    terms = " + ".join(['"a"'] * 500)  # libcst needs ~2,500 frames; Python allows 1,000
    path.write_text(f"import torch.nn as nn\n{BIASED}DATA = {terms}\n")
    limit = sys.getrecursionlimit()
    assert _json(path) == (1, [("deep.py", "BNP002", 2)], "")
    monkeypatch.setattr(deep_stack, "RECURSION_LIMIT", 0)  # as if the file were deeper still
    assert _run(str(path)) == (2, "Found 0 errors; 1 file could not be linted.\n",
                               f"error: {path}: cannot lint: nested too deeply to parse\n")
    assert sys.getrecursionlimit() == limit


def test_a_file_deep_enough_to_overflow_the_native_parser_is_linted_and_fixed(
        tmp_path: Path) -> None:
    """libcst's native parser overflowed the C stack (a segfault: the whole run died) near 1,300
    nested calls on an 8 MiB main-thread stack; a 1 MiB stack makes 300 enough to show it."""
    resource = pytest.importorskip("resource")
    deep = tmp_path / "deep.py"
    deep.write_text(f"import torch.nn as nn\n{BIASED}y = {'f(' * 300}1{')' * 300}\n")
    good = tmp_path / "good.py"
    good.write_text(f"import torch.nn as nn\n{BIASED}")

    def lint(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bnplace.cli", "lint", *args, str(tmp_path)],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                filter(None, [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH")]))},
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_STACK, (2**20, 2**20)))

    run = lint("--output-format", "json")
    assert (run.returncode, run.stderr) == (1, "")
    assert [(Path(i["filename"]).name, i["code"], i["location"]["row"])
            for i in json.loads(run.stdout)] == [("deep.py", "BNP002", 2), ("good.py", "BNP002", 2)]
    assert lint("--fix").returncode == 0
    assert deep.read_text().splitlines()[1] == BIASED.replace("4), nn", "4, bias=False), nn").strip()
