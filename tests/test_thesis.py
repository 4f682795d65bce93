"""The thesis reproduction runs end to end in quick mode and writes its report and plot."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "examples" / "thesis" / "reproduce.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("thesis_reproduce", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_quick_run_reports_every_setting_and_placement(tmp_path: Path) -> None:
    thesis = _load_script()
    assert thesis.main(["--quick", "--output", str(tmp_path)]) == 0

    report = (tmp_path / "results.md").read_text()
    rows = re.findall(r"^\| (MLP|CNN) \| (\d [^|]+?) \|", report, flags=re.M)
    settings = [s.name for s in thesis.SETTINGS] + ["7 batch 32", "7 batch 1024"]
    assert sorted(set(rows)) == sorted({(m, s) for m in ("MLP", "CNN") for s in settings})
    grid = re.findall(r"^\| (\d [^|]+) \| (before-activation|after-activation|after-dropout|none) \|",
                      report, flags=re.M)
    assert len(grid) == 8  # both grid settings × the four placements
    assert (tmp_path / "thesis_curves.png").stat().st_size > 0


def test_bn_variant_differs_from_vanilla_only_by_batchnorm() -> None:
    thesis = _load_script()
    from torch import nn

    vanilla = thesis.build("MLP", thesis.SETTINGS[0], with_bn=False, seed=0)
    with_bn = thesis.build("MLP", thesis.SETTINGS[0], with_bn=True, seed=0)
    kinds = lambda model: [type(m).__name__ for m in model.modules()  # noqa: E731
                           if not isinstance(m, (nn.Sequential, type(model)))]
    assert [k for k in kinds(with_bn) if "BatchNorm" not in k] == kinds(vanilla)
    assert sum("BatchNorm" in k for k in kinds(with_bn)) == 2
