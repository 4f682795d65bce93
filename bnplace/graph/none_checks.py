"""The check fx adds for an argument fixed to None while tracing, in a form ``torch.load`` survives.

fx guards an argument traced as ``None`` (``mask=None``, see :func:`bnplace.graph.trace`) with a
call to its own ``torch.fx._symbolic_trace._assert_is_none``. Loading such a GraphModule with
``torch.load`` re-traces its code, and fx then registers that function under its dotted name in
its table of wrapped functions, where no module holds it: every later fx trace in the process
(any bnplace call, on any model) fails with ``KeyError: 'torch.fx._symbolic_trace._assert_is_none'``.
The same check as a plain function of this module, wrapped with ``torch.fx.wrap``, is saved and
loaded like any user-wrapped function.
"""

from __future__ import annotations

import torch.fx
from torch import fx

_FX_NONE_CHECK = getattr(torch.fx._symbolic_trace, "_assert_is_none", None)


def argument_is_none(value: object, message: str) -> None:
    """Refuse a value for an argument that the traced copy holds fixed to None."""
    if value is not None:
        raise AssertionError(message)


torch.fx.wrap("argument_is_none")


def savable_none_checks(graph: fx.Graph) -> fx.Graph:
    """``graph`` with fx's None checks calling :func:`argument_is_none` instead."""
    for node in graph.nodes:
        if node.op == "call_function" and node.target is _FX_NONE_CHECK:
            node.target = argument_is_none
            node.meta["is_wrapped"] = True  # so its code registers it with fx.wrap on loading
    return graph
