"""Shape-concrete tracing: trace a forward that fx cannot, because Python reads a shape in it.

``for s in x.size()[1:]``, ``if x.dim() == 4:``, ``int(x.size(1))`` need a plain value where fx
has only a proxy. :class:`ConcreteTracer` runs every node on the example inputs as it is recorded
(:class:`ShadowRun`, on a private eval-mode copy, so no statistic moves) and hands Python the
real value there, but only a value computed from shapes alone (sizes, ranks) or the length of a
tuple; a branch on tensor data still fails. Those values become constants in the graph; the
batch size stays symbolic unless the forward reads it. :func:`check_graph` accepts the graph only
when it gives the model's own outputs on the example inputs and on a batch of another size, since
a fixed value may depend on the batch size.
"""

from __future__ import annotations

import contextlib
import inspect
import operator
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import fx, nn
from torch.fx._symbolic_trace import PHBase, _maybe_revert_all_patches
from torch.utils import _pytree as pytree

from bnplace.graph.copying import copy_module
from bnplace.graph.tracing import ChainTracer, first_line, user_code_place

# tensor attributes and methods that read only the shape, never the values (nor the dtype or
# device: a branch on those, fixed in the graph, would be wrong after .half() or .cuda())
_SHAPE_ATTRIBUTES = frozenset(("shape", "ndim"))
_SHAPE_METHODS = frozenset(("size", "dim", "ndimension", "numel", "nelement"))


class ShadowRun:
    """The real value of each node of the graph being traced, computed on the example inputs.

    ``from_shapes`` holds the nodes whose value is not a tensor and was computed from shapes only.
    """

    def __init__(self, module: nn.Module, inputs: tuple[Any, ...],
                 concrete_args: Mapping[str, Any] | None = None) -> None:
        self.module = module  # where fx puts the tensor constants it meets while tracing
        self.copy = copy_module(module).eval()
        bound = inspect.signature(module.forward).bind(*_cloned(inputs))
        bound.apply_defaults()
        fixed = {k: v for k, v in (concrete_args or {}).items() if not isinstance(v, PHBase)}
        self.arguments = {**bound.arguments, **fixed}
        self.values: dict[fx.Node, Any] = {}
        self.from_shapes: set[fx.Node] = set()

    def clear(self) -> None:
        self.values.clear()
        self.from_shapes.clear()

    def record(self, node: fx.Node) -> None:
        # fx patches module calls and attribute reads while tracing; the real run needs them back
        with torch.no_grad(), _maybe_revert_all_patches():
            value = self._run(node)
        self.values[node] = value
        if not isinstance(value, torch.Tensor) and (_reads_shape(node) or (
                node.op in ("call_function", "call_method") and node.all_input_nodes
                and all(n in self.from_shapes for n in node.all_input_nodes))):
            self.from_shapes.add(node)

    def _run(self, node: fx.Node) -> Any:
        args, kwargs = fx.node.map_arg((node.args, node.kwargs), self.values.__getitem__)
        if node.op == "placeholder":  # fx names a concrete argument's placeholder `name_1`
            name = str(node.target).lstrip("*")
            return self.arguments.get(name, self.arguments.get(name.rpartition("_")[0], *args))
        if node.op == "get_attr":
            fetch = operator.attrgetter(str(node.target))
            try:
                return fetch(self.copy)
            except AttributeError:  # a tensor constant fx added to the module while tracing
                return fetch(self.module)
        if node.op == "call_module":
            return self.copy.get_submodule(str(node.target))(*args, **kwargs)
        if node.op == "call_method":
            return getattr(args[0], str(node.target))(*args[1:], **kwargs)
        return node.target(*args, **kwargs)  # type: ignore[operator]


def _reads_shape(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in _SHAPE_METHODS
    return node.op == "call_function" and node.target is getattr \
        and node.args[1] in _SHAPE_ATTRIBUTES


class ConcreteTracer(ChainTracer):
    """A :class:`ChainTracer` that knows each proxy's real value (see the module docstring).

    ``fixed`` lists where a real value stood in for a proxy, as ``file.py:12 `code```.
    """

    def __init__(self, leaf_modules: Iterable[type[nn.Module] | str], opaque: Iterable[str],
                 shadow: ShadowRun) -> None:
        super().__init__(leaf_modules, opaque)
        self.shadow = shadow

    def trace(self, root: Any, concrete_args: dict[str, Any] | None = None) -> fx.Graph:
        self.fixed = []
        self.shadow.clear()
        graph = super().trace(root, concrete_args)
        for node in reversed(graph.nodes):  # the shape reads that only fed now-fixed values
            if node in self.shadow.from_shapes and not node.users:
                graph.erase_node(node)
        # an unpickled GraphModule re-traces its code with this class; that code reads no shape
        graph._tracer_cls = ChainTracer
        return graph

    def create_node(self, kind: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                    name: str | None = None, type_expr: Any | None = None) -> fx.Node:
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        if kind != "output":
            self.shadow.record(node)
        return node

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _ConcreteProxy(node, self)

    def to_bool(self, obj: fx.Proxy) -> bool:
        return self.concrete(obj, bool)

    def iter(self, obj: fx.Proxy) -> Iterator[Any]:
        if obj.node in self.shadow.from_shapes:
            return iter(self.concrete(obj, tuple))
        count = self.concrete(obj, len)  # a tuple (or a tensor's rows): the items stay symbolic
        return (obj[i] for i in range(count))

    def keys(self, obj: fx.Proxy) -> Any:
        value = self.shadow.values.get(obj.node)
        return list(value) if isinstance(value, Mapping) else super().keys(obj)

    def concrete(self, proxy: fx.Proxy, convert: Callable[[Any], Any]) -> Any:
        """``convert`` of the proxy's real value, when that value may be fixed in the graph."""
        node = proxy.node
        value = self.shadow.values[node]
        structure = convert is len and isinstance(value, (torch.Tensor, Sequence))
        if node not in self.shadow.from_shapes and not structure:
            raise fx.proxy.TraceError(f"a value computed from tensor data (node `{node.name}`), "
                                      f"not only from shapes, cannot be fixed from the example "
                                      f"inputs")
        place = user_code_place(traceback.extract_stack())
        if place and place not in self.fixed:
            self.fixed.append(place)
        return convert(value)


class _ConcreteProxy(fx.Proxy):
    """A proxy that Python may turn into an int, a float, a length or an index: its real value."""

    def __getattr__(self, k: str) -> fx.Proxy:
        return _ConcreteAttribute(self, k)

    def __len__(self) -> int:
        return self.tracer.concrete(self, len)  # type: ignore[attr-defined]

    def __int__(self) -> int:
        return self.tracer.concrete(self, int)  # type: ignore[attr-defined]

    def __float__(self) -> float:
        return self.tracer.concrete(self, float)  # type: ignore[attr-defined]

    def __index__(self) -> int:
        return self.tracer.concrete(self, operator.index)  # type: ignore[attr-defined]


class _ConcreteAttribute(fx.proxy.Attribute, _ConcreteProxy):
    """``proxy.shape`` and the like, so that ``len(x.shape)`` works too."""


@contextlib.contextmanager
def rng_kept() -> Iterator[None]:
    """The global CPU random state is the same afterwards (a forward may draw random numbers)."""
    with torch.random.fork_rng(devices=[]):
        yield


def check_graph(module: nn.Module, graph: fx.Graph, inputs: tuple[Any, ...]) -> str | None:
    """None when ``graph`` gives ``module``'s eval-mode outputs on ``inputs`` and on a batch of
    another size built from them (``2n + 1`` samples); else why not."""
    model = copy_module(module).eval()
    traced = fx.GraphModule(model, graph).eval()
    try:
        _assert_reproduces(traced, _seeded(model, inputs), inputs)
    except Exception as err:  # the user's model: anything can fail
        return f"the graph does not reproduce the model's output ({first_line(err)})"
    other = _other_batch(inputs)
    try:
        expected = _seeded(model, other)
    except Exception as err:
        return (f"the model itself fails on a batch of {_batch_size(other)} ({first_line(err)}), "
                f"so the fixed shapes cannot be checked at another batch size")
    try:
        _assert_reproduces(traced, expected, other)
    except Exception as err:
        return (f"the fixed shapes depend on the batch size: on {_batch_size(other)} samples "
                f"instead of {_batch_size(inputs)} the graph does not reproduce the model's "
                f"output ({first_line(err)})")
    return None


def _assert_reproduces(traced: fx.GraphModule, expected: Any, inputs: tuple[Any, ...]) -> None:
    # .forward: calling the GraphModule itself would print its failing line to stderr
    torch.testing.assert_close(_seeded(traced.forward, inputs), expected, rtol=1e-5, atol=1e-6)


def _seeded(forward: Callable[..., Any], inputs: tuple[Any, ...]) -> Any:
    torch.manual_seed(0)
    with torch.no_grad():
        return forward(*_cloned(inputs))


def _cloned(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """Fresh copies of the tensors: a forward that works in place must not change the inputs."""
    return pytree.tree_map_only(torch.Tensor, torch.clone, inputs)


def _other_batch(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """The batch twice plus its first sample: ``2n + 1`` samples, odd and not a multiple of n."""
    return pytree.tree_map_only(
        torch.Tensor, lambda t: torch.cat([t, t, t[:1]]) if t.dim() else t, inputs)


def _batch_size(inputs: tuple[Any, ...]) -> int | None:
    return next((t.shape[0] for t in pytree.tree_leaves(inputs)
                 if isinstance(t, torch.Tensor) and t.dim()), None)
