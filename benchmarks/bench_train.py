"""Steps per second of bnplace's training loop against a plain PyTorch loop with a DataLoader.

Same model (each example model rewritten to before-activation BN), same digits data, same
optimizer settings, batch size and per-epoch validation, in one run. bnplace keeps the data on
the device as tensors, batches by index permutation, updates through one fused SGD call and, on
CPUs other than Intel's, draws Dropout masks with ``uniform_`` (``bnplace/tune/dropout.py``
says why); the plain loop is the tutorial one, a shuffling DataLoader over a TensorDataset and
``torch.optim.SGD``. On CUDA all three loops train under the tuner's bf16 autocast (and
validate in float32, as it does), so the figures compare loops, not precisions. Target: >= 1.5x on CPU for digits-sized data; the GPU
figures are printed when CUDA is there.

A third loop bounds what any data handling can gain: bnplace's training steps on one fixed
batch, with no data handling at all. ``ceiling`` is its speed over the plain loop, and ``of
ceiling`` says how much of that bnplace's loop reaches: a model whose own step is slow leaves
little for a loop to win.

    python benchmarks/bench_train.py
    python benchmarks/bench_train.py --epochs 20 --batch-size 128 --models MLP SmallCNN
    python benchmarks/bench_train.py --devices cuda
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

import examples.models  # noqa: E402
from bnplace import Placement, rewrite  # noqa: E402
from bnplace.tune.data import Dataset, load_data  # noqa: E402
from bnplace.tune.dropout import bernoulli_is_slow, uniform_mask_dropout  # noqa: E402
from bnplace.tune.sgd import MomentumSGD  # noqa: E402
from bnplace.tune.training import MOMENTUM, mixed_precision, train  # noqa: E402

LR = 0.05
MODELS = ("MLP", "Lesson3Head", "KerasQuestionMLP", "SmallCNN")


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
            with mixed_precision(device):
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
    return epochs * _steps_per_epoch(len(data.train), batch_size)


def no_data_loop(model: nn.Module, data: Dataset, epochs: int, batch_size: int,
                 device: torch.device) -> int:
    """bnplace's step and validation on one fixed batch: only the model's own work is left."""
    data = data.to(device)
    inputs, targets = data.train.inputs[:batch_size], data.train.targets[:batch_size]
    optimizer = MomentumSGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    steps = epochs * _steps_per_epoch(len(data.train), batch_size)
    with uniform_mask_dropout(model, device):
        for epoch in range(epochs):
            model.train()
            for _ in range(steps // epochs):
                with mixed_precision(device):
                    loss = F.cross_entropy(model(inputs), targets)
                optimizer.step(loss)
            model.eval()
            with torch.inference_mode():
                (model(data.val.inputs).argmax(1) == data.val.targets).sum().item()
    return steps


def _steps_per_epoch(samples: int, batch_size: int) -> int:
    full_batches, rest = divmod(samples, batch_size)
    return full_batches + (rest > 1)  # bnplace skips a last batch of one sample


def steps_per_second(loop, model_class: type[nn.Module], data: Dataset, epochs: int,
                     batch_size: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = rewrite(model_class(), Placement.BEFORE_ACTIVATION,
                    example_inputs=data.example).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    steps = loop(model, data, epochs, batch_size, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - started)


def best_of(repeat: int, *args) -> list[float]:
    """Best steps/s of each loop over ``repeat`` interleaved runs (a first round warms up)."""
    loops = (plain_loop, bnplace_loop, no_data_loop)
    runs: list[list[float]] = [[] for _ in loops]
    for _ in range(repeat + 1):
        for loop, measured in zip(loops, runs):
            measured.append(steps_per_second(loop, *args))
    return [max(measured[1:]) for measured in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each loop; the best counts")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"], choices=("cpu", "cuda"),
                        help="where to measure; cuda is skipped when there is none")
    args = parser.parse_args()

    devices = [torch.device(name) for name in args.devices
               if name == "cpu" or torch.cuda.is_available()]
    print(f"machine: {platform.machine()} {platform.processor() or ''}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, CPU dropout "
          f"masks from {'uniform_' if bernoulli_is_slow() else 'bernoulli_'}")
    print(f"digits, batch {args.batch_size}, {args.epochs} epochs, before-activation BN, "
          f"best of {args.repeat}; steps/s (target: bnplace >= 1.5x plain)")
    for device in devices:
        name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
        for model_name in args.models:
            model_class = getattr(examples.models, model_name)
            data = load_data("digits", model_class())
            plain, ours, ceiling = best_of(args.repeat, model_class, data, args.epochs,
                                           args.batch_size, device)
            print(f"{name} {model_name:<16} plain {plain:6.0f} | bnplace {ours:6.0f} = "
                  f"{ours / plain:.2f}x | no data handling {ceiling:6.0f} = ceiling "
                  f"{ceiling / plain:.2f}x | bnplace at {(ours - plain) / (ceiling - plain):.0%} "
                  f"of ceiling")


if __name__ == "__main__":
    main()
