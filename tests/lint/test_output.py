"""Each output format: text, JSON in ruff's shape, SARIF 2.1.0, GitHub annotations."""

from __future__ import annotations

import json

import jsonschema
import pytest

from bnplace.lint import output
from bnplace.lint.config import Settings
from bnplace.lint.engine import lint_file
from bnplace.lint.files import SourceFile
from bnplace.lint.findings import Finding
from bnplace.lint.layers import Location
from tests.lint.helpers import FIXTURES

# The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json) that a log must satisfy:
# required properties, the version constant and the minimums of line and column numbers.
_MESSAGE = {"type": "object", "anyOf": [{"required": ["text"]}, {"required": ["id"]}]}
SARIF_REQUIRED = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"enum": ["2.1.0"]},
        "$schema": {"type": "string", "format": "uri"},
        "runs": {"type": "array", "items": {
            "type": "object",
            "required": ["tool"],
            "properties": {
                "tool": {"type": "object", "required": ["driver"], "properties": {
                    "driver": {"type": "object", "required": ["name"], "properties": {
                        "name": {"type": "string"},
                        "rules": {"type": "array", "items": {
                            "type": "object", "required": ["id"],
                            "properties": {"shortDescription": _MESSAGE,
                                           "fullDescription": _MESSAGE}}}}}}},
                "results": {"type": "array", "items": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "message": _MESSAGE,
                        "ruleId": {"type": "string"},
                        "level": {"enum": ["none", "note", "warning", "error"]},
                        "locations": {"type": "array", "items": {"type": "object", "properties": {
                            "physicalLocation": {
                                "type": "object",
                                "anyOf": [{"required": ["address"]},
                                          {"required": ["artifactLocation"]}],
                                "properties": {"region": {"type": "object", "properties": {
                                    "startLine": {"type": "integer", "minimum": 1},
                                    "startColumn": {"type": "integer", "minimum": 1},
                                    "endLine": {"type": "integer", "minimum": 1},
                                    "endColumn": {"type": "integer", "minimum": 1}}}}},
                        }}},
                    }}},
            }}},
    },
}


def _findings(name: str) -> list[Finding]:
    path = FIXTURES / name
    return lint_file(SourceFile.read(path), Settings().enabled_for(path)).findings


def test_text_lines_and_summary() -> None:
    report = output.text(_findings("keras_functional.py"))
    path = str(FIXTURES / "keras_functional.py")
    assert report.splitlines() == [
        f"{path}:6:5: BNP002 [*] Dense has a bias that the BatchNormalization after it subtracts "
        "away: pass use_bias=False",
        f"{path}:10:5: BNP001 [*] BatchNormalization is fed directly by Dropout: it learns "
        "statistics of dropped-out activations that differ at inference",
        f"{path}:22:15: BNP003 BatchNormalization is constructed but never added to a model or "
        "called: it normalises nothing",
        "Found 3 errors.",
        "[*] 2 fixable with the `--fix` option.",
    ]
    assert output.text([]) == "All checks passed!"
    assert output.text([], fixed=2) == "Found 2 errors (2 fixed, 0 remaining)."


def test_text_names_notebook_cells_and_colours_only_when_asked() -> None:
    findings = _findings("lesson3.ipynb")
    plain = output.text(findings)
    assert f"{FIXTURES / 'lesson3.ipynb'}:cell 3:7:9: BNP001" in plain
    assert "\x1b[" not in plain
    assert "\x1b[" in output.text(findings, color=True)


def test_statistics_count_per_code() -> None:
    report = output.text(_findings("torch_forward.py"), statistics=True)
    assert report.splitlines()[:3] == ["    2\tBNP001\t[*] batchnorm-after-dropout",
                                       "    2\tBNP004\t    batchnorm-shape-mismatch",
                                       "    1\tBNP003\t    unused-batchnorm"]


def test_json_has_ruffs_shape() -> None:
    items = json.loads(output.as_json(_findings("lesson3.ipynb") + _findings("broken.py")))
    assert items[0] == {
        "code": "BNP001",
        "message": items[0]["message"],
        "filename": str(FIXTURES / "lesson3.ipynb"),
        "location": {"row": 7, "column": 9},
        "end_location": {"row": 7, "column": 29},
        "fix": {"applicability": "safe", "message": "Move BatchNormalization in front of Dropout"},
        "cell": 3,
    }
    assert (items[2]["code"], items[2]["cell"], items[2]["fix"]) == ("BNP000", None, None)


def test_sarif_satisfies_the_required_fields_of_2_1_0() -> None:
    findings = _findings("torch_forward.py") + _findings("lesson3.ipynb")
    log = json.loads(output.as_sarif(findings))
    jsonschema.validate(log, SARIF_REQUIRED)
    results = log["runs"][0]["results"]
    regions = [r["properties"]["cellRegion"] if "properties" in r
               else r["locations"][0]["physicalLocation"]["region"] for r in results]
    assert [(r["ruleId"], region["startLine"]) for r, region in zip(results, regions)] == [
        (f.code, f.location.row) for f in findings]
    assert {rule["id"] for rule in log["runs"][0]["tool"]["driver"]["rules"]} >= {
        f.code for f in findings}


def test_sarif_schema_subset_rejects_a_broken_log() -> None:
    log = json.loads(output.as_sarif(_findings("torch_forward.py")))
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(log, SARIF_REQUIRED)


def test_github_annotations() -> None:
    lines = output.as_github(_findings("keras_sequential.py")).splitlines()
    path = FIXTURES / "keras_sequential.py"
    assert lines[0] == (f"::error title=bnplace (BNP002),file={path},line=8,col=9,endLine=8,"
                        f"endColumn=70::{path}:8:9: BNP002 Conv2D has a bias that the "
                        "BatchNormalization after it subtracts away: pass use_bias=False")
    assert len(lines) == 3


def test_module_locations_print_the_module_name() -> None:
    finding = Finding("BNP001", "msg", Location(module="features.3"), path="examples/models.py")
    assert output.text([finding]).splitlines()[0] == "examples/models.py:features.3: BNP001 msg"
    assert json.loads(output.as_json([finding]))[0]["module"] == "features.3"
    assert "line=" not in output.as_github([finding])
    sarif = json.loads(output.as_sarif([finding]))["runs"][0]["results"][0]
    assert sarif["locations"] == [{"logicalLocations": [{"fullyQualifiedName": "features.3"}]}]


def test_notebook_findings_in_github_and_sarif_name_the_cell_not_a_line_of_the_file() -> None:
    finding = _findings("lesson3.ipynb")[1]
    path = FIXTURES / "lesson3.ipynb"
    message = ("Dense has a bias that the BatchNormalization after it subtracts away: "
               "pass use_bias=False")
    assert output.as_github([finding]) == (f"::error title=bnplace (BNP002) in cell 5,file={path}"
                                           f"::{path}:cell 5:3:11: BNP002 {message}")
    result = json.loads(output.as_sarif([finding]))["runs"][0]["results"][0]
    assert result == {
        "ruleId": "BNP002", "level": "error", "message": {"text": f"cell 5:3:11: {message}"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": path.as_posix()}}}],
        "properties": {"cell": 5, "cellRegion": {"startLine": 3, "startColumn": 11,
                                                 "endLine": 3, "endColumn": 34}}}
