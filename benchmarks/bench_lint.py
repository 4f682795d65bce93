"""Benchmark ``bnplace lint`` on a generated corpus of realistic model files.

Prints files/s for the linter in one process and over every core, and the ratio against the
floor for any libcst linter: ``libcst.parse_module`` of the same files with no rule run, timed in
the same run. Files that name no BatchNorm are skipped by the linter's text pre-filter before
parsing; the corpus mixes them in as real projects do (data loading, training loops, utilities).

    python benchmarks/bench_lint.py [--files 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import libcst

from bnplace.lint.engine import mentions_batchnorm
from bnplace.lint.runner import default_settings_of, lint_paths

KERAS_IMPORTS = ("from keras.models import Sequential\nfrom keras.layers import *\n",
                 "import tensorflow as tf\nfrom tensorflow.keras import layers\n",
                 "from keras.layers.core import Dense, Dropout, Activation\n"
                 "from keras.layers.normalization import BatchNormalization\n")


def _keras_block(rng: random.Random, prefix: str) -> list[str]:
    width = rng.choice((64, 128, 256, 512))
    block = [f"{prefix}Dense({width})", f"{prefix}BatchNormalization()",
             f"{prefix}Activation('{rng.choice(('relu', 'tanh', 'elu'))}')",
             f"{prefix}Dropout({rng.choice((0.2, 0.3, 0.5))})"]
    if rng.random() < 0.3:  # the Lesson 3 order
        block[1], block[3] = block[3], block[1]
    if rng.random() < 0.5:
        block[0] = f"{prefix}Dense({width}, use_bias=False)"
    return block


def keras_sequential(rng: random.Random) -> str:
    imports = rng.choice(KERAS_IMPORTS)
    prefix = "layers." if "tensorflow" in imports else ""
    layers = [item for _ in range(rng.randint(1, 4)) for item in _keras_block(rng, prefix)]
    layers.append(f"{prefix}Dense({rng.choice((2, 10, 100))}, activation='softmax')")
    if rng.random() < 0.5:
        body = "".join(f"    model.add({layer})\n" for layer in layers)
        model = f"    model = Sequential()\n{body}"
    else:
        items = "".join(f"        {layer},\n" for layer in layers)
        model = f"    model = Sequential([\n{items}    ])\n"
    return (f'"""Model {rng.randint(0, 10**6)}."""\n{imports}\n\n'
            f"def build_model(input_dim={rng.randint(8, 784)}):\n{model}"
            "    model.compile(loss='categorical_crossentropy', optimizer='adam')\n"
            "    return model\n")


def keras_functional(rng: random.Random) -> str:
    lines = ["from keras.layers import *", "from keras.models import Model", "",
             f"inputs = Input(shape=({rng.randint(8, 512)},))", "x = inputs"]
    for _ in range(rng.randint(2, 6)):
        block = _keras_block(rng, "")
        lines += [f"x = {layer}(x)" for layer in block]
    lines += ["outputs = Dense(10, activation='softmax')(x)", "model = Model(inputs, outputs)"]
    return "\n".join(lines) + "\n"


def torch_module(rng: random.Random) -> str:
    hidden = rng.choice((64, 128, 256))
    drop_first = rng.random() < 0.3
    forward = ("self.bn1(self.drop(F.relu(self.fc1(x))))" if drop_first
               else "self.drop(F.relu(self.bn1(self.fc1(x))))")
    return f'''"""A classifier head."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Head{rng.randint(0, 999)}(nn.Module):
    def __init__(self, in_features={rng.randint(16, 2048)}, classes=10, p=0.5):
        super().__init__()
        self.fc1 = nn.Linear(in_features, {hidden}{", bias=False" if rng.random() < 0.5 else ""})
        self.bn1 = nn.BatchNorm1d({hidden})
        self.drop = nn.Dropout(p)
        self.fc2 = nn.Linear({hidden}, classes)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = {forward}
        return self.fc2(x)
'''


def torch_builder(rng: random.Random) -> str:
    return f'''from torch import nn


def make_mlp(sizes, p={rng.choice((0.1, 0.25, 0.5))}):
    layers = [nn.Flatten()]
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        layers.append(nn.Linear(fan_in, fan_out))
        layers += [nn.BatchNorm1d(fan_out), nn.ReLU()]
        layers.append(nn.Dropout(p))
    return nn.Sequential(*layers)


def make_cnn(channels={rng.choice((16, 32, 64))}):
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(channels),
        nn.MaxPool2d(2), nn.Conv2d(channels, 2 * channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(2 * channels), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )
'''


def training_script(rng: random.Random) -> str:
    """A file with no layer in it: data loading and a training loop (the pre-filter skips it)."""
    return f'''"""Training loop {rng.randint(0, 10**6)}."""
import argparse

import numpy as np


def batches(x, y, size={rng.choice((32, 64, 128))}):
    order = np.random.permutation(len(x))
    for start in range(0, len(x), size):
        index = order[start:start + size]
        yield x[index], y[index]


def train(model, optimizer, loss_fn, data, epochs={rng.randint(1, 50)}):
    history = []
    for epoch in range(epochs):
        total = 0.0
        for xb, yb in batches(*data):
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += float(loss)
        history.append(total)
        print(f"epoch {{epoch}}: {{total:.4f}}")
    return history


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    print(parser.parse_args())
'''


GENERATORS = ((keras_sequential, 3), (keras_functional, 2), (torch_module, 3), (torch_builder, 2),
              (training_script, 3))


def make_corpus(folder: Path, count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    generators = [g for g, weight in GENERATORS for _ in range(weight)]
    paths = []
    for number in range(count):
        generator = rng.choice(generators)
        package = folder / f"project{number % 40:02d}"
        package.mkdir(exist_ok=True)
        path = package / f"{generator.__name__}_{number:05d}.py"
        path.write_text(generator(rng), encoding="utf-8")
        paths.append(path)
    return paths


def _timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_corpus(folder, args.files, args.seed)
        sources = [path.read_text(encoding="utf-8") for path in paths]
        parse_s, _ = _timed(lambda: [libcst.parse_module(source) for source in sources])
        one_s, report = _timed(lambda: lint_paths([folder], default_settings_of, jobs=1))
        all_s, report_all = _timed(lambda: lint_paths([folder], default_settings_of, jobs=cores))
    assert [f.code for f in report.findings] == [f.code for f in report_all.findings]
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{cores} cores, Python {platform.python_version()}")
    parsed = sum(1 for source in sources if mentions_batchnorm(source))
    print(f"corpus: {len(paths)} files, {sum(map(len, sources)) / 1e6:.1f} MB, "
          f"{parsed} parsed by the linter (the rest name no BatchNorm), "
          f"{len(report.findings)} findings")
    print(f"libcst.parse_module only (1 process): {len(paths) / parse_s:8.0f} files/s  (baseline)")
    print(f"bnplace lint, 1 process:              {len(paths) / one_s:8.0f} files/s  "
          f"{one_s / parse_s:.2f}x the parse-only time")
    print(f"bnplace lint, {cores} processes:            {len(paths) / all_s:8.0f} files/s  "
          f"{all_s / parse_s:.2f}x the parse-only time, "
          f"speed-up over 1 process {one_s / all_s:.2f}x")


if __name__ == "__main__":
    main()
