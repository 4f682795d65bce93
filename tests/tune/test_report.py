"""The report's files: an interrupted report leaves the folder's earlier report whole."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch

import bnplace
from bnplace.graph import BnplaceWarning
from bnplace.tune import api, files as files_module
from bnplace.atomic import write_atomically
from bnplace.tune.files import StagedFiles
from examples.models import MLP
from tests.tune.conftest import tiny_mlp


def narrow_mlp() -> MLP:
    return MLP(hidden=(8,))


def is_narrow(state_dict: Path) -> bool:
    """Whether the saved weights are those of a model with 8 hidden units."""
    return any(tensor.shape == (8, 64) for tensor in torch.load(state_dict).values())


def contents(folder: Path) -> dict[str, bytes]:
    """Every file directly in ``folder`` (the report, the study), hidden ones too."""
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def report_files(folder: Path) -> dict[str, bytes]:
    return {name: data for name, data in contents(folder).items() if name != "study.db"}


def test_ctrl_c_during_the_report_leaves_the_earlier_report_whole_and_a_rerun_completes_it(
        tmp_path, monkeypatch):
    bnplace.tune(tiny_mlp, trials=1, epochs=1, study_name="wide", output=tmp_path,
                 progress=False)
    before = report_files(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(api, "plot_learning_curves", interrupted)
        with pytest.raises(KeyboardInterrupt):
            bnplace.tune(narrow_mlp, trials=1, epochs=1, study_name="narrow", output=tmp_path,
                         progress=False)
    assert report_files(tmp_path) == before  # no new file beside old ones, no leftover

    result = bnplace.tune(narrow_mlp, trials=1, epochs=1, study_name="narrow", output=tmp_path,
                          progress=False)
    assert json.loads((tmp_path / "results.json").read_text())["best"] == result.best
    assert torch.load(tmp_path / "winner_state_dict.pt").keys() == \
        torch.load(tmp_path / "winner.pt", weights_only=False).state_dict().keys()
    assert is_narrow(tmp_path / "winner_state_dict.pt")
    assert sorted(report_files(tmp_path)) == sorted(before)


def test_results_json_is_put_in_place_after_the_winner_it_names(tmp_path, monkeypatch):
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(files_module.os, "replace",
                        lambda source, target: (replaced.append(Path(target).name),
                                                real_replace(source, target)))
    result = bnplace.tune(tiny_mlp, trials=1, epochs=1, output=tmp_path, progress=False)

    report = [name for name in replaced if not name.startswith("trial-")]  # checkpoints aside
    assert report[-1] == "results.json"
    assert set(report) == {path.name for path in result.files}


def test_a_model_that_cannot_be_pickled_leaves_no_older_winner_pt_and_says_why(tmp_path):
    bnplace.tune(tiny_mlp, trials=1, epochs=1, study_name="wide", output=tmp_path,
                 progress=False)

    class Local(MLP):  # a class defined in a function cannot be pickled
        pass

    with pytest.warns(BnplaceWarning, match="winner.pt not written: AttributeError: Can't "
                                            "pickle local object"):
        result = bnplace.tune(lambda: Local(hidden=(8,)), trials=1, epochs=1,
                              study_name="local", output=tmp_path, progress=False)
    assert not (tmp_path / "winner.pt").exists()
    assert tmp_path / "winner.pt" not in result.files
    assert is_narrow(tmp_path / "winner_state_dict.pt")


def test_ctrl_c_while_the_files_are_put_in_place_waits_until_all_are(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / name).write_text("old")
    real_replace = os.replace

    def replace_then_ctrl_c(source, target):
        real_replace(source, target)
        signal.raise_signal(signal.SIGINT)

    with StagedFiles(tmp_path) as staged:
        for name in ("a", "b"):
            staged.write(name, lambda path: path.write_text("new"))
        monkeypatch.setattr(files_module.os, "replace", replace_then_ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            staged.commit()

    assert contents(tmp_path) == {"a": b"new", "b": b"new"}


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "winner.pt"
    target.write_text("old")

    def half_written(path):
        path.write_text("ne")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, half_written)
    assert contents(tmp_path) == {"winner.pt": b"old"}


def test_a_file_written_aside_gets_the_permissions_of_one_written_in_place(tmp_path):
    (tmp_path / "plain").write_text("x")
    write_atomically(tmp_path / "aside", lambda path: path.write_text("x"))
    assert (tmp_path / "aside").stat().st_mode == (tmp_path / "plain").stat().st_mode
