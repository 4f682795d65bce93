"""Eval-mode latency of a model with BatchNorm, the same model folded, and the same architecture
without BatchNorm, measured side by side in one run at two batch sizes.

Target: folded within 3 % of the model without BN (the BN overhead gone at inference).
The no-BN architecture is ``bnplace.rewrite(model, "none")``: the same layers, BN removed.

    python benchmarks/bench_fold.py [--rounds 150] [--sample-ms 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bnplace import Placement, fold, rewrite  # noqa: E402
from examples import models  # noqa: E402

BATCH_SIZES = (1, 64)


def with_statistics(model: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """Run a few training-mode batches so the BN statistics are not the defaults."""
    model.train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(32, *shape) * 2 + 1)
    return model.eval()


CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "KerasQuestionMLP(hidden=256)": (lambda: models.KerasQuestionMLP(hidden=256), (1, 8, 8)),
    "Lesson3Head(hidden=256)": (lambda: models.Lesson3Head(hidden=256), (1, 8, 8)),
    "SmallCNN, BN before activation": (
        lambda: rewrite(models.SmallCNN(), Placement.BEFORE_ACTIVATION, drop_bias=False),
        (1, 8, 8)),
    "SmallCNN, as written (BN after act)": (models.SmallCNN, (1, 8, 8)),
}


def per_call_seconds(model: nn.Module, x: torch.Tensor, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        model(x)
    return (time.perf_counter() - start) / calls


def measure(variants: dict[str, nn.Module], x: torch.Tensor, rounds: int, sample_seconds: float
            ) -> dict[str, float]:
    """Per-call latency of each variant: the fastest of ``rounds`` samples (as timeit advises:
    slower samples measure other load on the machine, not the model). Variants alternate within
    every round; a sample times as many calls as fill ``sample_seconds`` for the model with BN."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        for model in variants.values():
            per_call_seconds(model, x, 50)  # warm-up: allocator, oneDNN kernel choice
        first = next(iter(variants.values()))
        calls = max(1, round(sample_seconds / per_call_seconds(first, x, 5)))
        for _ in range(rounds):
            for name, model in variants.items():
                samples[name].append(per_call_seconds(model, x, calls))
    return {name: min(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--sample-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 keeps timings steady on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':<38} {'batch':>5} {'with BN':>9} {'folded':>9} {'no BN':>9} "
          f"{'BN/noBN':>8} {'fold/noBN':>9}")
    for name, (build, shape) in CASES.items():
        model = with_statistics(build(), shape)
        variants = {"bn": model, "folded": fold(model),
                    "none": rewrite(model, Placement.NONE).eval()}
        for batch in BATCH_SIZES:
            x = torch.randn(batch, *shape)
            t = measure(variants, x, args.rounds, args.sample_ms / 1e3)
            print(f"{name:<38} {batch:>5} {t['bn'] * 1e6:>7.1f}us {t['folded'] * 1e6:>7.1f}us "
                  f"{t['none'] * 1e6:>7.1f}us {t['bn'] / t['none']:>8.3f} "
                  f"{t['folded'] / t['none']:>9.3f}")


if __name__ == "__main__":
    main()
