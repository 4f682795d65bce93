"""Turn a traced graph's ``self.training`` reads into modules, so they survive ``torch.save``.

:func:`~bnplace.graph.tracing.trace` records ``F.dropout(x, p, self.training)`` with a
``get_attr('training')`` node, which is right in memory. But pickling a GraphModule re-traces its
code, and that bakes the flag in as a constant: a saved-and-loaded model would keep dropping out
in ``eval()``. So before a rewritten part becomes a GraphModule, every call that takes the flag
becomes a module call: functional dropouts become ``nn.Dropout`` (``Dropout1d``...) modules, any
other call a :class:`TrainingFlagCall` that passes its own ``self.training``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

# function -> (module class, in place by default)
_DROPOUTS: dict[Any, tuple[type[nn.Module], bool]] = {
    F.dropout: (nn.Dropout, False),
    F.dropout1d: (nn.Dropout1d, False),
    F.dropout2d: (nn.Dropout2d, False),
    F.dropout3d: (nn.Dropout3d, False),
    F.alpha_dropout: (nn.AlphaDropout, False),
    F.feature_alpha_dropout: (nn.FeatureAlphaDropout, False),
    torch.dropout: (nn.Dropout, False),
    torch.dropout_: (nn.Dropout, True),
    torch.alpha_dropout: (nn.AlphaDropout, False),
    torch.alpha_dropout_: (nn.AlphaDropout, True),
}


class _Slot:
    """Where a call's n-th tensor input goes (pickles by value)."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __getstate__(self) -> int:
        return self.index

    def __setstate__(self, index: int) -> None:
        self.index = index


class _Training:
    """Where ``self.training`` goes."""

    def __reduce__(self) -> str:
        return "TRAINING"


TRAINING = _Training()


class TrainingFlagCall(nn.Module):
    """Calls ``fn`` with this module's ``training`` flag where the traced code passed its own."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
                 ) -> None:
        super().__init__()
        self.fn = fn
        self.call_args = args
        self.call_kwargs = kwargs

    def forward(self, *values: Any) -> Any:
        def fill(a: Any) -> Any:
            if a is TRAINING:
                return self.training
            if isinstance(a, _Slot):
                return values[a.index]
            if isinstance(a, (tuple, list)):
                return type(a)(fill(x) for x in a)
            if isinstance(a, dict):
                return {k: fill(v) for k, v in a.items()}
            return a

        return self.fn(*fill(self.call_args), **fill(self.call_kwargs))

    def extra_repr(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))


def materialize_training_flag(graph: fx.Graph, add_module: Callable[[str, nn.Module], str]
                              ) -> bool:
    """Replace every use of the ``get_attr('training')`` node by a module call.

    ``add_module(base_name, module)`` registers a module and returns its target. Returns True
    when the graph changed.
    """
    flags = [n for n in graph.nodes if n.op == "get_attr" and n.target == "training"]
    changed = False
    for flag in flags:
        for user in list(flag.users):
            if user.op not in ("call_function", "call_method"):
                continue  # a module called with the flag: left reading self.training
            with graph.inserting_before(user):
                replacement = _as_module_call(graph, user, flag, add_module)
            user.replace_all_uses_with(replacement)
            graph.erase_node(user)
            changed = True
        if not flag.users:
            graph.erase_node(flag)
    return changed


def _as_module_call(graph: fx.Graph, node: fx.Node, flag: fx.Node,
                    add_module: Callable[[str, nn.Module], str]) -> fx.Node:
    dropout = _DROPOUTS.get(node.target) if node.op == "call_function" else None
    if dropout is not None:
        module_cls, inplace_default = dropout
        bound = _dropout_arguments(node)
        if bound is not None and bound["training"] is flag and not isinstance(bound["p"], fx.Node):
            module = module_cls(p=bound["p"], inplace=bool(bound["inplace"] or inplace_default))
            target = add_module(node.name, module)
            return graph.call_module(target, (bound["input"],))
    inputs: list[fx.Node] = []

    def template(a: Any) -> Any:
        if a is flag:
            return TRAINING
        if isinstance(a, fx.Node):
            inputs.append(a)
            return _Slot(len(inputs) - 1)
        if isinstance(a, (tuple, list)):
            return type(a)(template(x) for x in a)
        if isinstance(a, dict):
            return {k: template(v) for k, v in a.items()}
        return a

    if node.op == "call_function":
        fn = node.target
        args = template(node.args)
    else:
        fn = getattr(torch.Tensor, str(node.target))
        args = template(node.args)
    kwargs = template(dict(node.kwargs))
    target = add_module(node.name, TrainingFlagCall(fn, args, kwargs))  # type: ignore[arg-type]
    return graph.call_module(target, tuple(inputs))


def _dropout_arguments(node: fx.Node) -> dict[str, Any] | None:
    names = ("input", "p", "training", "inplace")
    defaults = {"p": 0.5, "training": True, "inplace": False}
    if len(node.args) > len(names):
        return None
    bound = dict(defaults)
    bound.update(zip(names, node.args))
    for key, value in node.kwargs.items():
        if key == "train":
            key = "training"
        if key not in names:
            return None
        bound[key] = value
    return bound if "input" in bound else None
