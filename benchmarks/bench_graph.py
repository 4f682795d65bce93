"""Time bnplace's graph pass against ``torch.fx.symbolic_trace`` of the same model, in one run.

The pass is ``bnplace.rewrite(model, 'before-activation')``: copy the model, trace it, find every
chain, insert a BatchNorm in each. Target: at most 2x the trace alone (the pass's own trace
included), growing linearly with depth.

    python benchmarks/bench_graph.py            # 200 and 400 chains
    python benchmarks/bench_graph.py --depths 100 200 400 --repeat 9
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
    """A custom-forward block: its chain is rewritten in the traced graph."""

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
    """The same chains inside custom-forward blocks (the result is a GraphModule)."""
    return nn.Sequential(*[Block(width) for _ in range(chains)])


def timed(fn) -> float:
    """One run, with the garbage collector off while timing (as timeit does)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        gc.enable()


def best_pair(baseline, candidate, repeat: int) -> tuple[float, float]:
    """The best time of each; their runs interleave, so load on the machine hits both alike."""
    base, cand = [], []
    for _ in range(repeat):
        base.append(timed(baseline))
        cand.append(timed(candidate))
    return min(base), min(cand)


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
    parser.add_argument("--depths", type=int, nargs="+", default=[200, 400],
                        help="numbers of chains (at least two for the growth line)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per timing; the best counts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    print(f"machine: {machine()}")
    print("pass = bnplace.rewrite(model, 'before-activation'), its own copy and trace included")
    print(f"{'model':<11} {'chains':>6} {'fx trace':>10} {'pass':>10} {'ratio':>6} {'per chain':>10}")
    ratios: dict[tuple[str, int], float] = {}
    passes: dict[tuple[str, int], float] = {}
    for name, build in (("sequential", deep_sequential), ("custom", deep_custom)):
        for depth in args.depths:
            model = build(depth)
            assert len(find_chains(model)) == depth
            trace_s, pass_s = best_pair(lambda: fx.symbolic_trace(model),
                                        lambda: rewrite(model, Placement.BEFORE_ACTIVATION),
                                        args.repeat)
            ratios[(name, depth)] = pass_s / trace_s
            passes[(name, depth)] = pass_s
            print(f"{name:<11} {depth:>6} {trace_s * 1e3:>8.1f}ms {pass_s * 1e3:>8.1f}ms "
                  f"{pass_s / trace_s:>5.2f}x {pass_s / depth * 1e6:>8.0f}us")
    if len(args.depths) >= 2:
        lo, hi = min(args.depths), max(args.depths)
        for name in ("sequential", "custom"):
            growth = passes[(name, hi)] / passes[(name, lo)]
            trace_growth = growth * ratios[(name, lo)] / ratios[(name, hi)]
            print(f"{name}: {hi / lo:.1f}x the chains cost the pass {growth:.2f}x the time, "
                  f"the fx trace {trace_growth:.2f}x (linear would be {hi / lo:.1f}x)")
    print(f"worst ratio: {max(ratios.values()):.2f}x the trace alone (target: at most 2x)")


if __name__ == "__main__":
    main()
