"""A model wrapped in DataParallel or DistributedDataParallel is a one-line TraceError in every
pass, saying to pass ``model.module``: the wrapper only runs that module on several devices and
holds the parameters it was built with, so a rewritten model needs a wrapper of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import nn

from bnplace import Placement
from bnplace.graph import TraceError, drop_redundant_bias, find_chains, fold, rewrite


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.bn = nn.BatchNorm1d(8)
        self.out = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.bn(self.fc(x))))


PASSES: dict[str, Callable[[nn.Module], Any]] = {
    "find_chains": find_chains,
    "rewrite": lambda m: rewrite(m, Placement.AFTER_ACTIVATION),
    "drop_redundant_bias": drop_redundant_bias,
    "fold": fold,
}


@pytest.mark.parametrize("run", PASSES.values(), ids=PASSES)
def test_a_data_parallel_model_is_refused_with_what_to_pass(run: Callable[[nn.Module], Any]
                                                            ) -> None:
    model = nn.DataParallel(Net())
    with pytest.raises(TraceError) as caught:
        run(model)
    assert str(caught.value) == ("DataParallel only runs Net on several devices: pass "
                                 "`model.module`, and wrap the model bnplace returns again")


def test_the_wrapped_module_rewritten_and_wrapped_again_runs() -> None:
    model = nn.DataParallel(Net())
    new = nn.DataParallel(rewrite(model.module, Placement.AFTER_ACTIVATION))
    assert [c.placement for c in find_chains(new.module)] == [Placement.AFTER_ACTIVATION]
    assert new(torch.randn(4, 4)).shape == (4, 2)


@pytest.fixture
def process_group(tmp_path: Path) -> Iterator[None]:
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("needs torch.distributed and no process group already running")
    try:
        dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                                world_size=1)
    except RuntimeError as err:  # gloo finds no network interface (an unresolvable hostname)
        pytest.skip(f"a one-process gloo group cannot start here: {err}")
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_a_distributed_data_parallel_model_is_refused_too(process_group: None) -> None:
    model = nn.parallel.DistributedDataParallel(Net())
    with pytest.raises(TraceError, match="^DistributedDataParallel only runs Net on several "
                                         "devices: pass `model.module`"):
        rewrite(model, Placement.AFTER_ACTIVATION)
