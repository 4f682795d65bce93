"""The torch.fx side of bnplace: trace a model, find its chains, rewrite their BatchNorm placement.

* :func:`trace` — fx-trace a model keeping chain layers whole, falling back to traceable parts
  (with example inputs, also a forward that reads shapes in Python: :mod:`.concrete`).
* :func:`find_chains` — the linear → activation → dropout chains, their BN and placement.
* :func:`rewrite` — a new model with every chain (or the ones named) at a placement.
* :func:`drop_redundant_bias` — a new model without the biases that feed straight into BN.
* :func:`fold` — an inference copy with BatchNorm merged into neighbouring linear layers.
"""

from bnplace.graph.bias import drop_redundant_bias
from bnplace.graph.chains import Chain, ChainList, ChainNodes, find_chains
from bnplace.graph.folding import FoldedBatchNorm, FoldReport, fold, fold_with_report
from bnplace.graph.rewriting import BnplaceWarning, rewrite
from bnplace.graph.shapes import ChannelLastBatchNorm
from bnplace.graph.tracing import ChainTracer, Trace, TracedPart, TraceError, trace

__all__ = [
    "BnplaceWarning",
    "Chain",
    "ChainList",
    "ChainNodes",
    "ChainTracer",
    "ChannelLastBatchNorm",
    "FoldReport",
    "FoldedBatchNorm",
    "Trace",
    "TraceError",
    "TracedPart",
    "drop_redundant_bias",
    "find_chains",
    "fold",
    "fold_with_report",
    "rewrite",
    "trace",
]
