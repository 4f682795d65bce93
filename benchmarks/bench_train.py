"""Steps per second of bnplace's training loop against a plain PyTorch loop with a DataLoader.

Same model (examples MLP rewritten to before-activation BN), same digits data, same optimizer,
batch size and per-epoch validation, in one run. bnplace keeps the data on the device as tensors
and batches by index permutation; the plain loop is the tutorial one, a shuffling DataLoader
over a TensorDataset. Target: >= 1.5x on CPU for digits-sized data; the GPU figure is printed
when CUDA is there.

    python benchmarks/bench_train.py
    python benchmarks/bench_train.py --epochs 20 --batch-size 128
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from bnplace import Placement, rewrite  # noqa: E402
from bnplace.tune.data import Dataset, load_data  # noqa: E402
from bnplace.tune.training import MOMENTUM, train  # noqa: E402
from examples.models import MLP  # noqa: E402

LR = 0.05


def plain_loop(model: nn.Module, data: Dataset, epochs: int, batch_size: int,
               device: torch.device) -> int:
    """The tutorial loop: DataLoaders over TensorDatasets, batches moved to the device each step."""
    train_loader = DataLoader(TensorDataset(data.train.inputs, data.train.targets),
                              batch_size=batch_size, shuffle=True)
    val_loader = DataLoader(TensorDataset(data.val.inputs, data.val.targets), batch_size=1024)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    steps = 0
    for _ in range(epochs):
        model.train()
        for inputs, targets in train_loader:
            inputs, targets = inputs.to(device), targets.to(device)
            loss = F.cross_entropy(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        model.eval()
        correct = 0
        with torch.no_grad():
            for inputs, targets in val_loader:
                correct += (model(inputs.to(device)).argmax(1) == targets.to(device)).sum().item()
    return steps


def bnplace_loop(model: nn.Module, data: Dataset, epochs: int, batch_size: int,
                 device: torch.device) -> int:
    train(model, data.to(device), epochs=epochs, lr=LR, batch_size=batch_size, device=device,
          seed=0)
    full_batches, rest = divmod(len(data.train), batch_size)
    return epochs * (full_batches + (rest > 1))


def steps_per_second(loop, data: Dataset, epochs: int, batch_size: int,
                     device: torch.device) -> float:
    torch.manual_seed(0)
    model = rewrite(MLP(), Placement.BEFORE_ACTIVATION, example_inputs=data.example).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    steps = loop(model, data, epochs, batch_size, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - started)


def best_of(repeat: int, *args) -> tuple[float, float]:
    """Best steps/s of each loop over ``repeat`` interleaved runs (the first one warms up)."""
    plain, ours = [], []
    for _ in range(repeat + 1):
        plain.append(steps_per_second(plain_loop, *args))
        ours.append(steps_per_second(bnplace_loop, *args))
    return max(plain[1:]), max(ours[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each loop; the best counts")
    args = parser.parse_args()

    data = load_data("digits", MLP())
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"machine: {platform.machine()} {platform.processor() or ''}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"digits: {len(data.train)} train / {len(data.val)} val, batch {args.batch_size}, "
          f"{args.epochs} epochs, MLP with before-activation BN, best of {args.repeat}")
    for device in devices:
        name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
        plain, ours = best_of(args.repeat, data, args.epochs, args.batch_size, device)
        print(f"{name}: plain DataLoader loop {plain:8.0f} steps/s | bnplace loop {ours:8.0f} "
              f"steps/s | ratio {ours / plain:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
