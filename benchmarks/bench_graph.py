"""Time bnplace's graph pass (find chains + rewrite, its own trace included) against
``torch.fx.symbolic_trace`` of the same model, in the same run.

Target: the whole pass costs at most 2x the trace alone, and grows linearly with depth.

    python benchmarks/bench_graph.py            # 200 and 400 chains
    python benchmarks/bench_graph.py --depths 100 200 400 --repeat 5
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch import fx, nn  # noqa: E402

from bnplace import Placement  # noqa: E402
from bnplace.graph import find_chains, rewrite  # noqa: E402


class Block(nn.Module):
    """A custom-forward block: a chain the rewrite must handle in the graph."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.fc(x)))


def deep_sequential(chains: int, width: int = 16) -> nn.Module:
    """Linear → ReLU → Dropout chains in one nn.Sequential (rewritten in place)."""
    layers: list[nn.Module] = []
    for _ in range(chains):
        layers += [nn.Linear(width, width), nn.ReLU(), nn.Dropout(0.1)]
    return nn.Sequential(*layers)


def deep_custom(chains: int, width: int = 16) -> nn.Module:
    """The same chains inside custom-forward blocks (rewritten as a traced GraphModule)."""
    return nn.Sequential(*[Block(width) for _ in range(chains)])


def best_of(fn, repeat: int) -> float:
    """The best of ``repeat`` runs, with the garbage collector off while timing (as timeit)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return min(times)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"torch {torch.__version__}, {platform.system()} {platform.release()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[200, 400])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    print(f"machine: {machine()}")
    print(f"{'model':<12} {'chains':>6} {'fx trace':>10} {'find+rewrite':>13} {'ratio':>6}"
          f" {'per chain':>10}")
    results = {}
    for name, build in (("sequential", deep_sequential), ("custom", deep_custom)):
        for depth in args.depths:
            model = build(depth)
            assert len(find_chains(model)) == depth
            trace_s = best_of(lambda: fx.symbolic_trace(model), args.repeat)

            # rewrite() is the whole pass: copy, trace, find the chains, rewrite every one
            pass_s = best_of(lambda: rewrite(model, Placement.BEFORE_ACTIVATION), args.repeat)
            results[(name, depth)] = pass_s
            print(f"{name:<12} {depth:>6} {trace_s * 1e3:>8.1f}ms {pass_s * 1e3:>11.1f}ms "
                  f"{pass_s / trace_s:>5.2f}x {pass_s / depth * 1e6:>8.0f}us")
    if len(args.depths) >= 2:
        lo, hi = min(args.depths), max(args.depths)
        for name in ("sequential", "custom"):
            growth = results[(name, hi)] / results[(name, lo)]
            print(f"{name}: {hi / lo:.1f}x the depth costs {growth:.2f}x the time "
                  f"(linear: {hi / lo:.1f}x)")


if __name__ == "__main__":
    main()
