"""bnplace: settle "where does BatchNorm go?" by rewriting and measuring, not by opinion.

The torch-based API (``find_chains``, ``rewrite``, ``drop_redundant_bias``, ``fold``, ``tune``...)
loads on first use, so ``import bnplace`` and the linter work without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from bnplace.placement import LayerKind, Placement

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "Chain": "bnplace.graph",
    "find_chains": "bnplace.graph",
    "rewrite": "bnplace.graph",
    "drop_redundant_bias": "bnplace.graph",
    "fold": "bnplace.graph",
    "fold_with_report": "bnplace.graph",
    "tune": "bnplace.tune",
    "TuneResult": "bnplace.tune",
}

__all__ = ["LayerKind", "Placement", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bnplace' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
