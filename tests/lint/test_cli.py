"""``bnplace lint``, ``rules``, ``rule``: exit codes, --fix and --diff round trips."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import libcst
import pytest
from click.testing import CliRunner

from bnplace.cli import main
from bnplace.lint import runner
from bnplace.lint.docs import render
from bnplace.lint.rules import RULES
from tests.lint.helpers import FIXTURES

DOCS = Path(__file__).parents[2] / "docs" / "rules"


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_exit_status_zero_one_two(tmp_path: Path) -> None:
    clean = tmp_path / "clean.py"
    clean.write_text("model.add(Dense(64, use_bias=False))\nmodel.add(BatchNormalization())\n")
    assert _run("lint", str(clean)) == (0, "All checks passed!\n")
    assert _run("lint", str(FIXTURES / "keras_sequential.py"))[0] == 1
    assert _run("lint", "--exit-zero", str(FIXTURES / "keras_sequential.py"))[0] == 0
    code, text = _run("lint", str(tmp_path / "missing.py"))
    assert code == 2 and "no such file" in text
    assert _run("lint", "--select", "NOPE1", str(clean))[0] == 2


def test_syntax_error_is_a_finding_and_other_files_are_still_linted() -> None:
    code, text = _run("lint", "--output-format", "json", str(FIXTURES / "broken.py"),
                      str(FIXTURES / "keras_sequential.py"))
    assert code == 1
    assert [(item["code"], Path(item["filename"]).name) for item in json.loads(text)] == [
        ("BNP000", "broken.py"), ("BNP002", "keras_sequential.py"),
        ("BNP001", "keras_sequential.py"), ("BNP005", "keras_sequential.py")]


def test_select_and_ignore_options() -> None:
    path = str(FIXTURES / "torch_forward.py")
    code, text = _run("lint", "--select", "BNP004,BNP003", "--ignore", "BNP003",
                      "--output-format", "json", path)
    assert [(i["code"], i["location"]["row"]) for i in json.loads(text)] == [
        ("BNP004", 47), ("BNP004", 55)]


def test_folders_are_walked_skipping_venvs_and_build_folders(fixtures_copy: Path) -> None:
    for folder in (".git", "build", ".venv", "env_with_cfg"):
        (fixtures_copy / folder).mkdir()
        (fixtures_copy / folder / "bad.py").write_text("BatchNormalization()\n")
    (fixtures_copy / "env_with_cfg" / "pyvenv.cfg").write_text("home = /usr\n")
    code, text = _run("lint", "--output-format", "json", str(fixtures_copy))
    names = {Path(item["filename"]).name for item in json.loads(text)}
    assert names == {"broken.py", "keras_functional.py", "keras_sequential.py", "lesson3.ipynb",
                     "torch_builders.py", "torch_forward.py", "torchvision_style.py"}


def _codes_and_lines(text: str) -> list[tuple[str, str, int]]:
    return [(Path(i["filename"]).name, i["code"], i["location"]["row"]) for i in json.loads(text)]


def test_fix_rewrites_in_place_and_the_result_lints_clean_for_what_was_fixed(
        fixtures_copy: Path) -> None:
    code, text = _run("lint", "--fix", str(fixtures_copy))
    assert code == 1 and "(10 fixed, 8 remaining)" in text
    _, after = _run("lint", "--output-format", "json", str(fixtures_copy))
    remaining = _codes_and_lines(after)
    assert not [item for item in json.loads(after) if item["fix"]]
    assert ("torch_forward.py", "BNP001", 38) in remaining  # behind an `if`: reported, not moved
    for path in fixtures_copy.glob("*.py"):
        if path.name != "broken.py":
            libcst.parse_module(path.read_text())
    fixed = (fixtures_copy / "torch_forward.py").read_text()
    assert "x = self.drop1(self.bn1(F.relu(self.fc1(x))))" in fixed
    assert (fixtures_copy / "clean_models.py").read_text() == \
        (FIXTURES / "clean_models.py").read_text()


def test_diff_changes_nothing_and_applies_to_the_same_result_as_fix(
        fixtures_copy: Path, tmp_path: Path) -> None:
    target = fixtures_copy / "keras_sequential.py"
    original = target.read_text()
    code, diff = _run("lint", "--diff", str(target))
    assert code == 1 and target.read_text() == original
    assert "+        layers.BatchNormalization(),  # the Lesson 3 habit\n" in diff
    patch = tmp_path / "fix.patch"
    patch.write_text(diff.replace("Would fix 2 errors.\n", ""))
    subprocess.run(["patch", "-s", str(target), str(patch)], check=True)
    patched = target.read_text()
    target.write_text(original)
    _run("lint", "--fix", str(target))
    assert patched == target.read_text() != original


def test_jobs_give_the_same_report_as_one_process(fixtures_copy: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_PARALLEL_THRESHOLD", 0)  # use the pool even for a few files
    one = _run("lint", "--jobs", "1", "--output-format", "json", str(fixtures_copy))
    two = _run("lint", "--jobs", "2", "--output-format", "json", str(fixtures_copy))
    assert one == two and len(json.loads(one[1])) == 18


def test_rules_lists_every_rule_with_its_state() -> None:
    code, text = _run("rules")
    assert code == 0
    assert [line.split()[:3] for line in text.splitlines()] == [
        [rule.code, rule.name, "default" if rule.default else "opt-in"] for rule in RULES.values()]


@pytest.mark.parametrize("code", sorted(RULES))
def test_rule_prints_its_docs_page_which_is_in_sync(code: str) -> None:
    exit_code, text = _run("rule", code.lower())
    assert exit_code == 0 and text == render(RULES[code]) + "\n"
    assert (DOCS / f"{code}.md").read_text() == render(RULES[code])
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Fix"):
        assert section in text


def test_unknown_rule_is_a_usage_error() -> None:
    assert _run("rule", "BNP999")[0] == 2
