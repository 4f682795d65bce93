"""Buffers a forward updates itself (a running average, a step counter), which a traced copy
would not update the same way.

fx records a call on a buffer only when one of its operands is a proxy; an update computed from
buffers and constants alone (``self.steps += 1``, ``self.avg.mul_(0.9)``) runs while tracing, on
the real buffer, and is missing from the graph. Nor does fx record ``torch.no_grad()``, so an
update it does record (``self.avg.add_(0.1 * h.mean(0))``) would join autograd's graph in the
traced copy, and a second backward would fail. Such a forward is held back like one that branches
on ``self.training``, and tracing puts back what it changed in the buffers.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator

import torch
from torch import fx, nn
from torch.nn.parameter import UninitializedTensorMixin

# operator.iadd and the like: what ``self.buf += x`` records when ``x`` is a proxy
_IN_PLACE_OPERATORS = frozenset((
    operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ifloordiv,
    operator.imod, operator.ipow, operator.imatmul, operator.iand, operator.ior, operator.ixor,
    operator.ilshift, operator.irshift))


def _owner(name: str) -> str:
    return name.rpartition(".")[0]


@contextlib.contextmanager
def kept_buffers(module: nn.Module) -> Iterator[dict[str, str]]:
    """While tracing ``module``: yields a dict that is filled, on exit, with the buffers that
    tracing changed (qualified name -> owning module's name), whose values are put back."""
    before = {name: (buf, buf._version, buf.detach().clone())
              for name, buf in module.named_buffers()
              if not isinstance(buf, UninitializedTensorMixin)}  # a lazy module's: no value yet
    changed: dict[str, str] = {}
    try:
        yield changed
    finally:
        now = dict(module.named_buffers())
        for name, (buf, version, value) in before.items():
            if now.get(name) is not buf or buf._version != version:
                changed[name] = _owner(name)
                with torch.no_grad():
                    buf.copy_(value)
                if now.get(name) is not buf:
                    _put_back(module, name, buf)


def _put_back(module: nn.Module, name: str, buf: torch.Tensor) -> None:
    owner, _, attr = name.rpartition(".")
    target = module.get_submodule(owner) if owner else module
    target._buffers[attr] = buf


def updated_in_graph(graph: fx.Graph, module: nn.Module) -> dict[str, str]:
    """The buffers that ``graph`` updates in place (qualified name -> owning module's name)."""
    buffers = {name for name, _ in module.named_buffers()}
    updated: dict[str, str] = {}
    for node in graph.nodes:
        if node.op not in ("call_method", "call_function") or not _in_place(node):
            continue
        target = node.args[0] if node.args else None
        if isinstance(target, fx.Node) and target.op == "get_attr" \
                and str(target.target) in buffers:
            updated[str(target.target)] = _owner(str(target.target))
    return updated


def _in_place(node: fx.Node) -> bool:
    if node.target in _IN_PLACE_OPERATORS:
        return True
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return name.endswith("_") and not name.endswith("__")
