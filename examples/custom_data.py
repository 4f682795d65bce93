"""Tune BatchNorm placement on your own data: a function that returns ``(train, val)``.

Each of ``train`` and ``val`` may be an ``(inputs, targets)`` pair of tensors (or arrays), a
``TensorDataset`` or a ``DataLoader`` (its batches are used as they come). Here the data is
scikit-learn's bundled wine set (13 features, 3 classes), standardized and split; the model is
examples/models.py's MLP sized to it.

    python examples/custom_data.py            # Python API, then prints the same study as a command
    python examples/custom_data.py --quick    # one short trial per placement

From the shell, name the function with ``--data path.py:function``::

    bnplace tune --model examples/models.py:MLP \\
        --model-kwargs '{"in_features": 13, "num_classes": 3}' \\
        --data examples/custom_data.py:wine
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import tempfile
from pathlib import Path

import torch
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch.utils.data import DataLoader, TensorDataset

import bnplace

Pair = tuple[torch.Tensor, torch.Tensor]
FEATURES, CLASSES = 13, 3


def wine() -> tuple[Pair, Pair]:
    """(train, val) as (inputs, targets) tensor pairs, the scaler fitted on train only."""
    inputs, targets = load_wine(return_X_y=True)
    train_x, val_x, train_y, val_y = train_test_split(inputs, targets, test_size=0.25,
                                                      stratify=targets, random_state=0)
    scaler = StandardScaler().fit(train_x)
    return ((torch.tensor(scaler.transform(train_x), dtype=torch.float32), torch.tensor(train_y)),
            (torch.tensor(scaler.transform(val_x), dtype=torch.float32), torch.tensor(val_y)))


def wine_loaders() -> tuple[DataLoader, DataLoader]:
    """The same split as DataLoaders: their batches are used as they come (size, order, drops)."""
    train, val = wine()
    return (DataLoader(TensorDataset(*train), batch_size=32, shuffle=True, drop_last=True),
            DataLoader(TensorDataset(*val), batch_size=256))


def main(argv: list[str] | None = None) -> None:
    # examples/models.py, found because the script's folder is on sys.path; imported here, not at
    # the top, so that `--data examples/custom_data.py:wine` loads this file from anywhere.
    from models import MLP

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short trial per placement")
    args = parser.parse_args(argv)
    budget = {"trials": 4, "epochs": 1} if args.quick else {"trials": 20, "epochs": 20}
    model_kwargs = {"in_features": FEATURES, "num_classes": CLASSES}

    for data in (wine, wine_loaders):
        print(f"bnplace.tune(MLP, {data.__name__}, ...):")
        with tempfile.TemporaryDirectory() as output:
            result = bnplace.tune(functools.partial(MLP, **model_kwargs), data, output=output,
                                  progress=not args.quick, **budget)
        assert result.best is not None, "no trial finished"

    here = Path(os.path.relpath(__file__))
    command = ["bnplace", "tune", "--model", f"{here.with_name('models.py')}:MLP",
               "--model-kwargs", json.dumps(model_kwargs), "--data", f"{here}:wine",
               *(f"--{name}={value}" for name, value in budget.items())]
    print("\nThe same study from the shell:\n  " + shlex.join(command))


if __name__ == "__main__":
    main()
