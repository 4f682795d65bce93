"""The rules run over a hand-built Description located by module names, as the graph side's
``bnplace check`` builds it from a traced model: no libcst, no source file."""

from __future__ import annotations

from bnplace.lint import DEFAULT_CODES, Description, Layer, Location, run_rules
from bnplace.placement import LayerKind


def _layer(kind: LayerKind, type_name: str, module: str, **fields) -> Layer:
    where = Location(module=module)
    return Layer(kind, type_name, where, where, framework="torch", **fields)


def test_rules_over_a_traced_chain_report_module_names() -> None:
    chain = (
        _layer(LayerKind.LINEAR, "Linear", "fc1", has_bias=True, width=128, dims=1),
        _layer(LayerKind.ACTIVATION, "ReLU", "relu1"),
        _layer(LayerKind.DROPOUT, "Dropout", "drop1"),
        _layer(LayerKind.BATCHNORM, "BatchNorm1d", "bn1", width=64, dims=1),
        _layer(LayerKind.LINEAR, "Linear", "out", has_bias=True, width=10, dims=1),
        _layer(LayerKind.BATCHNORM, "BatchNorm1d", "bn_out", width=10, dims=1),
        _layer(LayerKind.OUTPUT, "Softmax", "softmax"),
    )
    unused = (_layer(LayerKind.BATCHNORM, "BatchNorm1d", "spare_bn"),)
    findings = run_rules(Description((chain,), unused), lambda code: code in DEFAULT_CODES)
    assert sorted((f.code, f.location.module) for f in findings) == [
        ("BNP001", "bn1"), ("BNP002", "out"), ("BNP003", "spare_bn"), ("BNP004", "bn1"),
        ("BNP005", "bn_out")]


def test_a_sigmoid_ending_a_one_unit_head_is_an_output() -> None:
    def head(name: str) -> tuple[Layer, ...]:
        return (_layer(LayerKind.LINEAR, "Linear", f"{name}.fc", has_bias=False, width=1, dims=1),
                _layer(LayerKind.BATCHNORM, "BatchNorm1d", f"{name}.bn", width=1, dims=1),
                _layer(LayerKind.ACTIVATION, "Sigmoid", f"{name}.act", function="sigmoid"))

    hidden = head("hidden") + (_layer(LayerKind.LINEAR, "Linear", "out", width=1, dims=1),)
    findings = run_rules(Description((head("output"), hidden)), lambda code: code == "BNP005")
    assert [f.location.module for f in findings] == ["output.bn"]
