"""``bnplace check``: lint rules over a traced model, and the measured variance shift."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from bnplace.cli import main
from bnplace.graph import trace
from bnplace.graph.sequences import describe_model
from bnplace.graph.variance import variance_shift
from bnplace.lint import run_rules


class LoopNet(nn.Module):
    """Built in a loop from a config, as the source linter cannot follow: Lesson 3's
    Dropout → BN twice, a BN on the logits before softmax, and a BN never called."""

    def __init__(self, width: int = 64, blocks: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(blocks):
            layers += [nn.Linear(width, width), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(width)]
        layers += [nn.Linear(width, 10), nn.BatchNorm1d(10), nn.Softmax(dim=1)]
        self.net = nn.Sequential(*layers)
        self.spare = nn.BatchNorm1d(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class OneChain(nn.Module):
    """Linear → ReLU → Dropout(0.5) with BN after the dropout, or before the activation."""

    def __init__(self, after_dropout: bool = True) -> None:
        super().__init__()
        self.after_dropout = after_dropout
        self.fc, self.bn = nn.Linear(64, 32, bias=False), nn.BatchNorm1d(32)
        self.out = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.after_dropout:
            x = self.bn(F.dropout(F.relu(self.fc(x)), 0.5, self.training))
        else:
            x = F.dropout(F.relu(self.bn(self.fc(x))), 0.5, self.training)
        return self.out(x)


def check(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", *args])
    return result.exit_code, result.stdout, result.stderr


def found(model: nn.Module) -> list[tuple[str, str]]:
    findings = run_rules(describe_model(trace(model)), lambda code: True)
    return [(f.code, str(f.location)) for f in findings]


def test_rules_see_layers_built_in_a_loop() -> None:
    code, out, _ = check("--model", "tests.test_check:LoopNet", "--no-measure",
                         "--output-format", "json")
    assert code == 1
    assert [(item["code"], item["module"]) for item in json.loads(out)] == [
        ("BNP001", "net.3"), ("BNP001", "net.7"), ("BNP002", "net.8"), ("BNP005", "net.9"),
        ("BNP003", "spare")]


def test_functional_layers_and_shape_mismatch_are_found() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(1, 8, 3), nn.BatchNorm1d(8)
            self.fc, self.bn2 = nn.Linear(8, 4), nn.BatchNorm1d(5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.bn(torch.relu(self.conv(x)))
            x = F.dropout(x.mean((2, 3)), 0.2, self.training)
            return self.bn2(self.fc(x))

    # the BN after a dropout, a linear layer between: BNP006 (opt-in) too; fc's bias is no
    # BNP002, as bn2's 5 features are not fc's 4 outputs (BNP004 says so)
    assert found(Net()) == [("BNP004", "bn"), ("BNP004", "bn2"), ("BNP006", "bn2")]


def test_lazy_batchnorm_not_yet_called_has_no_width_to_mismatch() -> None:
    class Lazy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.bn = nn.LazyLinear(32, bias=False), nn.LazyBatchNorm1d()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.bn(self.fc(x)))

    assert found(Lazy()) == []


def test_a_binary_classifiers_sigmoid_is_an_output_and_an_attention_gate_is_not() -> None:
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.bn = nn.Linear(64, 1, bias=False), nn.BatchNorm1d(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.bn(self.fc(x))).squeeze(1)

    gate = nn.Sequential(nn.Conv2d(8, 1, 1, bias=False), nn.BatchNorm2d(1), nn.Sigmoid())
    assert found(Head()) == [("BNP005", "bn")]
    assert found(nn.Sequential(nn.Linear(8, 1, bias=False), nn.BatchNorm1d(1),
                               nn.Sigmoid())) == [("BNP005", "1")]
    assert found(gate) == []


def test_variance_shift_after_dropout_and_none_before_activation() -> None:
    torch.manual_seed(0)
    batches = [torch.randn(64, 64) for _ in range(3)]
    after = variance_shift(OneChain(after_dropout=True), batches)
    before = variance_shift(OneChain(after_dropout=False), batches)
    assert [s.batchnorm for s in after] == ["bn"] and after[0].estimated
    # Dropout(0.5) doubles E[x^2] of what survives: a shift far above 1
    assert after[0].train_eval > 1.5 and after[0].running_eval > 1.5
    assert before[0].train_eval == pytest.approx(1.0, abs=1e-9)
    assert before[0].running_eval == pytest.approx(1.0, abs=1e-3)
    assert before[0].shift < 1.01


def test_measuring_changes_nothing() -> None:
    model = OneChain().train()
    with torch.no_grad():
        model(torch.randn(32, 64) + 2)  # trained running statistics
    state = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [torch.randn(16, 64)]
    rng = torch.get_rng_state()
    shifts = variance_shift(model, batches)
    assert not shifts[0].estimated
    assert model.training
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_check_prints_the_shifted_layers() -> None:
    code, out, _ = check("--model", "tests.test_check:OneChain", "--batches", "2")
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == ("tests.test_check:OneChain:bn: BNP001 BatchNorm1d is fed directly by "
                        "F.dropout: it learns statistics of dropped-out activations that differ "
                        "at inference")
    row = next(line for line in lines if line.lstrip().startswith("bn "))
    assert "shift x" in row and "> 1.1" in row
    assert lines[-1] == "1 BatchNorm layer shifted beyond x1.1."


def test_check_clean_model_exits_zero_and_machine_output_stays_parseable() -> None:
    code, out, err = check("--model", "tests.test_check:OneChain", "--model-kwargs",
                           '{"after_dropout": false}', "--data", "synthetic",
                           "--output-format", "sarif")
    assert code == 0
    assert json.loads(out)["runs"][0]["results"] == []
    assert err.splitlines()[-1] == "No variance shift beyond x1.1."


def test_fixable_findings_point_at_the_source_fix() -> None:
    code, out, _ = check("--model", "tests.test_check:LoopNet", "--no-measure")
    assert code == 1
    assert out.splitlines()[-1].endswith("fixable with `bnplace lint --fix` on the model's source.")


def test_bad_model_is_a_one_line_error() -> None:
    code, out, err = check("--model", "tests.test_check:Missing")
    assert code == 2 and err.strip().splitlines() == [
        "Error: 'tests.test_check' has no attribute 'Missing'"]


class Untraceable(nn.Module):
    """A block whose forward branches on data (fx cannot trace it) next to a traceable one."""

    def __init__(self) -> None:
        super().__init__()
        self.block = Branchy()
        self.head = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(x))


class Branchy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) if x.sum() > 0 else -self.fc(x)


def test_untraced_parts_are_named_and_the_rest_is_checked() -> None:
    code, out, err = check("--model", "tests.test_check:Untraceable", "--no-measure")
    assert code == 1
    assert out.splitlines()[0].startswith("tests.test_check:Untraceable:head.3: BNP001 ")
    assert err.startswith("note: the rules cannot see inside `block`, whose forward does not trace")


def test_checkpoint_statistics_are_used_as_they_are(tmp_path) -> None:
    model = OneChain(after_dropout=False).train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(64, 64))
    path = tmp_path / "trained.pt"
    torch.save(model.state_dict(), path)
    code, out, _ = check("--model", "tests.test_check:OneChain", "--model-kwargs",
                         '{"after_dropout": false}', "--checkpoint", str(path), "--data",
                         "synthetic", "--threshold", "100")
    row = next(line for line in out.splitlines() if line.lstrip().startswith("bn "))
    assert code == 0 and "*" not in row  # measured against the checkpoint's running variance


def test_model_that_reads_shapes_is_traced_with_the_data() -> None:
    model = "tests.graph.test_concrete_tracing:DigitsNet"  # the tutorial LeNet's forward
    code, out, err = check("--model", model, "--batches", "1")
    assert code == 0, err
    assert f"note: `{model}` was traced with shapes fixed from the data at " in err
    code, _, err = check("--model", model, "--no-measure")
    assert code == 2 and "for s in size:" in err and "take --input-shape for example inputs" in err
    code, _, err = check("--model", model, "--no-measure", "--input-shape", "1,8,8")
    assert code == 0, err
    assert f"note: `{model}` was traced with shapes fixed from the data at " in err
