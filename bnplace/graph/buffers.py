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
    tracing changed (qualified name -> owning module's name), whose values are put back.

    Only the buffers of modules from outside torch are copied first: torch's own modules (a
    BatchNorm's running statistics, most of a model's buffers) are leaves that tracing does not
    run, so copying them would only slow every trace. A forward that changes one of those anyway
    is still noticed, by the buffer's version counter, though its value is not put back.
    """
    before = []  # (owner name, owner, buffer name, buffer, its version, a copy or None)
    for owner_name, owner in module.named_modules():
        ours = not type(owner).__module__.startswith("torch.")
        for attr, buf in owner._buffers.items():
            if buf is not None and not isinstance(buf, UninitializedTensorMixin):
                before.append((owner_name, owner, attr, buf, buf._version,
                               buf.detach().clone() if ours else None))
    changed: dict[str, str] = {}
    try:
        yield changed
    finally:
        for owner_name, owner, attr, buf, version, value in before:
            # a TorchScript module's ``_buffers`` is a mapping without ``get``
            replaced = attr not in owner._buffers or owner._buffers[attr] is not buf
            if not replaced and buf._version == version:
                continue
            changed[f"{owner_name}.{attr}" if owner_name else attr] = owner_name
            if value is not None:
                with torch.no_grad():
                    buf.copy_(value)
            if replaced:
                owner._buffers[attr] = buf


def updated_in_graph(graph: fx.Graph, module: nn.Module) -> dict[str, str]:
    """The buffers that ``graph`` updates in place (qualified name -> owning module's name)."""
    updated: dict[str, str] = {}
    for node in graph.nodes:
        if node.op not in ("call_method", "call_function") or not _in_place(node):
            continue
        target = node.args[0] if node.args else None
        if isinstance(target, fx.Node) and target.op == "get_attr" \
                and _is_buffer(module, str(target.target)):
            updated[str(target.target)] = _owner(str(target.target))
    return updated


def _is_buffer(module: nn.Module, name: str) -> bool:
    try:
        module.get_buffer(name)
    except AttributeError:
        return False
    return True


def _in_place(node: fx.Node) -> bool:
    if node.target in _IN_PLACE_OPERATORS:
        return True
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return name.endswith("_") and not name.endswith("__")
