"""``bnplace check`` and ``bnplace export`` on checkpoints and inputs as users have them: a
wrapper's key prefix, a pruned model, a whole pickled model, a truncated file, a wrong or huge
--input-shape, token ids, a missing output folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from bnplace.cli import main
from bnplace.graph.variance import variance_shift

SPEC = "tests.test_cli_unseen:Net"


class Net(nn.Module):
    """A BN before an activation, one after, one after a dropout: every placement present."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(16, 8), nn.BatchNorm1d(8)
        self.fc2, self.bn2 = nn.Linear(8, 8), nn.BatchNorm1d(8)
        self.drop, self.bn3, self.out = nn.Dropout(0.2), nn.BatchNorm1d(8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.fc1(x)))
        x = self.bn2(F.relu(self.fc2(x)))
        return self.out(self.bn3(self.drop(x)))


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.bn, self.out = nn.Embedding(50, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.bn(self.emb(ids).mean(1))))


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.bn = nn.Linear(16, 4), nn.Linear(2, 4), nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.a(x) + self.b(y)))


def trained() -> Net:
    torch.manual_seed(0)
    model = Net().train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(32, 16) * 2 + 1)
    return model.eval()


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def export(path: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return invoke("export", "--model", SPEC, "--checkpoint", str(path), "--fold",
                  "--output", str(out), *extra)


def assert_exports(model: nn.Module, out: Path) -> None:
    x = torch.randn(8, 16)
    with torch.no_grad():
        torch.testing.assert_close(torch.load(out, weights_only=False)(x), model(x),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prefix, saved_from", [
    ("module.", "saved from DataParallel/DistributedDataParallel"),
    ("_orig_mod.", "saved from a torch.compile model"),
    ("model.", "saved from a wrapper holding the model as `model`, such as a Lightning module")])
def test_a_wrappers_key_prefix_is_stripped_with_a_note(tmp_path: Path, prefix: str,
                                                       saved_from: str) -> None:
    model = trained()
    path, out = tmp_path / "ckpt.pt", tmp_path / "folded.pt"
    torch.save({"epoch": 9, "state_dict": {prefix + k: v for k, v in model.state_dict().items()}},
               path)
    code, stdout, stderr = export(path, out)
    assert code == 0, stderr
    assert stderr.splitlines() == [
        f"note: {path}: every key starts with `{prefix}` ({saved_from}): loaded without it"]
    assert stdout.splitlines()[0] == "Folded 2 BatchNorm layers, left 1."
    assert_exports(model, out)


def test_a_model_whose_own_keys_carry_the_prefix_loads_them_as_they_are(tmp_path: Path) -> None:
    model = nn.Sequential()
    model.model = nn.Linear(4, 2)  # keys `model.weight`, `model.bias` are the model's own
    path = tmp_path / "ckpt.pt"
    torch.save(model.state_dict(), path)
    from bnplace.commands.checkpoints import load_checkpoint

    fresh = nn.Sequential()
    fresh.model = nn.Linear(4, 2)
    load_checkpoint(fresh, path)
    assert torch.equal(fresh.model.weight, model.model.weight)


def test_a_pruned_models_weight_is_rebuilt_from_orig_and_mask(tmp_path: Path) -> None:
    from torch.nn.utils import prune

    model = trained()
    prune.l1_unstructured(model.fc2, "weight", amount=0.5)
    path, out = tmp_path / "pruned.pt", tmp_path / "folded.pt"
    torch.save(model.state_dict(), path)
    code, _, stderr = export(path, out)
    assert code == 0, stderr
    assert stderr.splitlines() == [
        f"note: {path}: 1 key (`fc2.weight`) rebuilt as `_orig * _mask` (saved from a model "
        f"pruned with torch.nn.utils.prune)"]
    assert_exports(model, out)


def test_checkpoint_for_another_model_names_the_keys_and_shapes(tmp_path: Path) -> None:
    state = trained().state_dict()
    state["fc1.weight"] = torch.zeros(8, 20)
    del state["out.bias"]
    state["head.weight"] = torch.zeros(3)
    path = tmp_path / "other.pt"
    torch.save(state, path)
    code, _, stderr = export(path, tmp_path / "out.pt")
    assert code == 2
    assert stderr.splitlines() == [
        f"Error: {path} does not fit the model: fc1.weight is (8, 20) in the checkpoint, (8, 16) "
        f"in the model; missing 1 key (`out.bias`); unexpected 1 key (`head.weight`) (a tuner's "
        f"winner_state_dict.pt needs the --placement it was tuned with)"]


def test_unreadable_checkpoints_say_why_on_one_line(tmp_path: Path) -> None:
    whole, cut = tmp_path / "whole.pt", tmp_path / "cut.pt"
    torch.save(trained(), whole)
    torch.save(trained().state_dict(), cut)
    cut.write_bytes(cut.read_bytes()[:-100])
    nested = tmp_path / "nested.pt"
    torch.save({"net": trained().state_dict(), "epoch": 3}, nested)
    reasons = {
        whole: f"cannot read checkpoint {whole} with weights_only=True: it pickles a "
               f"`{Net.__module__}.Net` object, which only weights_only=False would import (a "
               f"whole model saved with torch.save(model)?): save its state_dict() instead",
        cut: f"cannot read checkpoint {cut} with weights_only=True: the file is truncated or "
             f"corrupt",
        nested: f"{nested} does not hold a state_dict (a mapping of names to tensors): it holds "
                f"a dict with keys 'net', 'epoch', none of 'state_dict', 'model_state_dict', "
                f"'model' holding one",
    }
    for path, reason in reasons.items():
        code, _, stderr = export(path, tmp_path / "out.pt")
        assert (code, stderr.splitlines()) == (2, [f"Error: {reason}"])


def test_output_goes_into_a_new_folder_and_a_failed_save_keeps_the_old_file(
        tmp_path: Path) -> None:
    model = trained()
    path = tmp_path / "state.pt"
    torch.save(model.state_dict(), path)
    out = tmp_path / "deploy" / "v1" / "model.pt"
    code, stdout, stderr = export(path, out)
    assert code == 0, stderr
    assert stdout.splitlines()[-1] == f"Saved the eval-mode model to {out}"
    assert_exports(model, out)

    class Local(Net):  # defined in a function: pickling the module fails
        pass

    from bnplace.commands.saving import save_whole
    from bnplace.commands.errors import InputError

    with pytest.raises(InputError, match="^cannot save to .*: AttributeError: Can't pickle local"):
        save_whole(Local(), out)
    assert_exports(model, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.pt"]


@pytest.mark.parametrize("spec, shape, error", [
    (SPEC, "1,28,28", "the model does not run on two samples of --input-shape 1,28,28: "
                      "RuntimeError: mat1 and mat2 shapes cannot be multiplied (56x28 and 16x8)"),
    ("tests.test_cli_unseen:TwoInputs", "16",
     "the model does not run on two samples of --input-shape 16: TypeError: TwoInputs.forward() "
     "missing 1 required positional argument: 'y'; --input-shape gives a model one input: "
     "leave it out for a model of several"),
    (SPEC, "100000,100000", "--input-shape 100000,100000 is too large: two samples of it take "
                            "74.5 GiB"),
])
def test_an_input_shape_the_model_cannot_take_is_a_one_line_error(spec: str, shape: str,
                                                                  error: str) -> None:
    code, _, stderr = invoke("check", "--model", spec, "--no-measure", "--input-shape", shape)
    assert (code, stderr.splitlines()) == (2, [f"Error: {error}"])


def test_an_embedding_model_gets_token_ids_of_the_input_shape() -> None:
    code, stdout, stderr = invoke("check", "--model", "tests.test_cli_unseen:Tokens",
                                  "--no-measure", "--input-shape", "12")
    assert (code, stdout.splitlines()) == (0, ["All checks passed!"])
    assert stderr.splitlines() == [
        "note: --input-shape 12 is taken as token ids below 50 (the model's Embedding takes "
        "integers)"]


def test_data_that_does_not_fit_points_at_no_measure() -> None:
    code, _, stderr = invoke("check", "--model", "tests.test_cli_unseen:TwoInputs")
    assert code == 2
    assert stderr.rstrip().endswith("; or --no-measure to run the rules without data")
    code, stdout, _ = invoke("check", "--model", "tests.test_cli_unseen:TwoInputs",
                             "--no-measure")
    assert (code, stdout.splitlines()) == (0, ["All checks passed!"])


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_variance_shift_of_dropout_before_batchnorm_is_one_over_keep(p: float) -> None:
    """Zero-mean inputs: inverted dropout scales E[x^2] by 1/(1-p) in train mode only."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Dropout(p), nn.BatchNorm1d(64))
    shift, = variance_shift(model, [torch.randn(512, 64) for _ in range(4)])
    assert shift.train_eval == pytest.approx(1 / (1 - p), rel=0.01)
    assert shift.running_eval == pytest.approx(1 / (1 - p), rel=0.02)
