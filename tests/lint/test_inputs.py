"""Files as they come: source encodings, malformed and non-Python notebooks, files too deep to
parse, and the summary when a file cannot be linted."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bnplace.cli import main

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
