"""The fast.ai Lesson 3 head in PyTorch: find its chains, tune its BatchNorm placement, rewrite it.

``Lesson3Head`` (examples/models.py) keeps the notebook's mistake: Linear → ReLU → Dropout → BN.
bnplace finds the two chains, trains every placement × learning rate on the bundled digits data
(an Optuna study), prints the table and the winner, and rewrites a fresh model to the winner.

    python examples/lesson3_torch.py            # 20 trials of 10 epochs (about a minute on CPU)
    python examples/lesson3_torch.py --quick    # one trial per placement, 1 epoch

The same from the shell:
``bnplace tune --model examples/models.py:Lesson3Head`` and
``bnplace rewrite --model examples/models.py:Lesson3Head --placement before-activation``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

import bnplace
from bnplace import Placement
from models import Lesson3Head  # examples/models.py: the script's folder is on sys.path

EXAMPLE_INPUT = torch.randn(2, 64)  # a batch of two flattened 8x8 digits


def print_chains(title: str, model: torch.nn.Module) -> None:
    print(title)
    for chain in bnplace.find_chains(model, example_inputs=EXAMPLE_INPUT):
        print(f"  {chain.linear} -> {chain.activation} -> {chain.dropout or '-'}: "
              f"BN {chain.batchnorm or '-'} at {chain.placement.value}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short trial per placement")
    parser.add_argument("--output", type=Path,
                        help="folder for the study and its files [default: a new temporary one]")
    args = parser.parse_args(argv)

    print_chains("Chains of Lesson3Head as written:", Lesson3Head())
    budget = {"trials": 4, "epochs": 1} if args.quick else {"trials": 20, "epochs": 10}
    with tempfile.TemporaryDirectory() as scratch:
        result = bnplace.tune(Lesson3Head, "digits", output=args.output or Path(scratch),
                              progress=not args.quick, **budget)
    assert result.best is not None, "no trial finished"
    winner = Placement(result.best["placement"])

    print_chains(f"\nChains after bnplace.rewrite(model, Placement.{winner.name}):",
                 bnplace.rewrite(Lesson3Head(), winner, example_inputs=EXAMPLE_INPUT))


if __name__ == "__main__":
    main()
