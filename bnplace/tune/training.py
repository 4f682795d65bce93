"""One trial's training run: SGD with momentum, validation accuracy and seconds per epoch.

The loop stays small on purpose: the tuner compares placements, so every variant must train
the same way, and the per-step overhead is what the training benchmark measures.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from bnplace.tune.data import Batches, Dataset
from bnplace.tune.dropout import uniform_mask_dropout
from bnplace.tune.outputs import class_scores
from bnplace.tune.sgd import MomentumSGD

MOMENTUM = 0.9
EVAL_BATCH_SIZE = 1024


class DeviceError(ValueError):
    """The requested device does not exist, or cannot be used, on this machine."""


@dataclass
class TrainingRun:
    """What a run produced, epoch by epoch; ``diverged`` names the epoch whose loss was not finite."""

    val_accuracy: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    diverged: int | None = None


def resolve_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU. Any other device must compute a tiny tensor now:
    torch names devices this machine lacks (mps, cuda without a GPU, meta), and one of those
    would otherwise fail every trial."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use one of: {_usable_devices()}") from None
    try:
        (torch.ones(2, device=device) + 1).sum().item()
    except Exception:  # each backend fails its own way (AssertionError, NotImplementedError...)
        raise DeviceError(f"device {name!r} cannot be used on this machine; use one of: "
                          f"{_usable_devices()}") from None
    return device


def _usable_devices() -> str:
    cuda = [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    mps = ["mps"] if torch.backends.mps.is_available() else []
    return ", ".join(["auto", "cpu", *(["cuda", *cuda] if cuda else []), *mps])


SMALL_MODEL_PARAMETERS = 1_000_000


def default_threads(model: nn.Module, device: torch.device) -> int | None:
    """One CPU thread for a small model, else None (torch's own default).

    A small model's matrices gain nothing from intra-op threads, and idle torch threads spin:
    on a busy machine, or with several workers on one, two threads ran an epoch 70× slower.
    """
    small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
    return 1 if device.type == "cpu" and small else None


@contextlib.contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """Train with ``count`` intra-op threads (None: leave torch's setting), then restore it."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train(model: nn.Module, data: Dataset, *, epochs: int, lr: float, batch_size: int,
          device: torch.device, seed: int, weight_decay: float = 0.0, nesterov: bool = False,
          on_epoch: Callable[[TrainingRun], None] | None = None,
          run: TrainingRun | None = None) -> TrainingRun:
    """Train ``model`` (already on ``device``, with ``data`` there too) and validate every epoch.

    ``on_epoch(run)`` sees the record after each epoch and may raise (Optuna's TrialPruned) to
    stop early; pass ``run`` in to keep what was measured when that happens. A loss that becomes
    NaN or infinite ends the run with ``diverged`` set.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = MomentumSGD(model.parameters(), lr=lr, momentum=MOMENTUM,
                            weight_decay=weight_decay, nesterov=nesterov)
    run = run if run is not None else TrainingRun()
    with uniform_mask_dropout(model, device):
        for epoch in range(epochs):
            started = time.perf_counter()
            loss_sum = _train_epoch(model, data.train, optimizer, batch_size, generator, device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            run.epoch_seconds.append(time.perf_counter() - started)
            if not math.isfinite(loss_sum):
                run.diverged = epoch
                return run
            run.val_accuracy.append(accuracy(model, data.val, device))
            if on_epoch is not None:
                on_epoch(run)
    return run


def _train_epoch(model: nn.Module, batches: Batches, optimizer: MomentumSGD,
                 batch_size: int, generator: torch.Generator, device: torch.device) -> float:
    model.train()
    loss_sum = torch.zeros((), device=device)
    for inputs, targets in batches.shuffled(batch_size, generator):
        with mixed_precision(device):
            loss = F.cross_entropy(class_scores(model(inputs)), targets)
        optimizer.step(loss)
        loss_sum += loss.detach()
    return loss_sum.item()  # one host sync per epoch


def mixed_precision(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast for training on CUDA; nothing elsewhere (CPU bf16 is slower than fp32 on
    most CPUs)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def accuracy(model: nn.Module, batches: Batches, device: torch.device) -> float:
    """Fraction of the samples ``batches`` yields that the model classifies correctly, in eval
    mode (counted as they come: a DataLoader may yield fewer than its dataset holds).

    In full precision, also on CUDA: the saved winner is a float32 model, and under bf16 its
    reported accuracy differed from what that model scores (one digit in 360 flipped)."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    samples = 0
    with torch.inference_mode(), _without_tf32_convolutions():
        for inputs, targets in batches.in_order(EVAL_BATCH_SIZE):
            correct += (class_scores(model(inputs)).argmax(dim=1) == targets).sum()
            samples += len(targets)
    return correct.item() / samples


@contextlib.contextmanager
def _without_tf32_convolutions() -> Iterator[None]:
    """cuDNN convolutions in float32 proper: torch lets them round inputs to TF32 by default."""
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous
