"""A traced model as the linter's neutral :class:`~bnplace.lint.layers.Description`.

The lint rules read ordered layer sequences; here each sequence is one path through a traced
graph's data flow (every node's main input is its predecessor), so models built in loops or from
configs, which the source linter cannot see, get the same findings. Layers are located by module
name (``features.3``) or, for functional calls, by fx node name (``relu_1``).
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import fx, nn
from torch.nn.modules.lazy import LazyModuleMixin

from bnplace.graph.kinds import (activation_of, call_name, describe, main_input, module_kind,
                                 node_kind)
from bnplace.graph.tracing import Trace, TracedPart
from bnplace.lint.layers import Description, Layer, Location
from bnplace.placement import (LayerKind, activation_function, kind_of_torch_function,
                               kind_of_torch_module)

_CALLS = ("call_module", "call_function", "call_method")
_METADATA = ("size", "dim", "ndimension", "numel", "getattr", "len")


def describe_model(traced: Trace) -> Description:
    """The layer sequences of every traced part, and the BatchNorm modules no graph calls."""
    sequences: list[tuple[Layer, ...]] = []
    called: set[int] = set()
    for part in traced.parts:
        modules = dict(part.module.named_modules())
        layers = {node: _layer(part, node, modules) for node in part.graph.nodes
                  if node.op in _CALLS and call_name(node) not in _METADATA}
        called.update(id(modules[str(n.target)]) for n in layers if n.op == "call_module")
        sequences.extend(_paths(layers))
    unused = tuple(
        _module_layer(name, module) for name, module in traced.model.named_modules()
        if module_kind(module) is LayerKind.BATCHNORM and id(module) not in called
        and any(_inside(name, part.prefix) for part in traced.parts)
        and not any(_inside(name, untraced) for untraced in traced.untraced if untraced))
    return Description(tuple(sequences), unused)


def _inside(name: str, prefix: str) -> bool:
    """Is module ``name`` the module ``prefix`` or inside it (everything is inside ``''``)?"""
    return not prefix or name == prefix or name.startswith(f"{prefix}.")


def _paths(layers: dict[fx.Node, Layer]) -> Iterator[tuple[Layer, ...]]:
    """Every path from a layer with no layer feeding it to a layer whose output no layer reads."""
    children: dict[fx.Node, list[fx.Node]] = {node: [] for node in layers}
    roots = []
    for node in layers:
        source = main_input(node)
        if isinstance(source, fx.Node) and source in layers:
            children[source].append(node)
        else:
            roots.append(node)
    stack = [(root, (layers[root],)) for root in reversed(roots)]
    while stack:
        node, path = stack.pop()
        if not children[node]:
            yield path
        for child in reversed(children[node]):
            stack.append((child, path + (layers[child],)))


def _kind(node: fx.Node, modules: dict[str, nn.Module]) -> LayerKind | None:
    """The chain role (subclasses included), else what the name table says (reshape, output)."""
    kind = node_kind(node, modules)
    if kind is not None:
        return kind
    if node.op == "call_module":
        return next((kind_of_torch_module(cls.__name__) for cls in
                     type(modules[str(node.target)]).__mro__
                     if kind_of_torch_module(cls.__name__) is not None), None)
    return kind_of_torch_function(call_name(node))


def _layer(part: TracedPart, node: fx.Node, modules: dict[str, nn.Module]) -> Layer:
    if node.op == "call_module":
        return _module_layer(part.qualified(str(node.target)), modules[str(node.target)],
                             _kind(node, modules))
    where = Location(module=part.qualified(node.name))
    return Layer(_kind(node, modules), describe(node, modules), where, where, framework="torch",
                 function=activation_of(node, modules))


def _module_layer(name: str, module: nn.Module, kind: LayerKind | None = None) -> Layer:
    """A module as a Layer: its bias, output width (``num_features`` for BN) and dimensionality."""
    kind = kind or module_kind(module)
    where = Location(module=name)
    width = next((getattr(module, attr) for attr in _width_attributes(module)
                  if isinstance(getattr(module, attr, None), int)), None)
    bias = getattr(module, "bias", None) is not None if kind is LayerKind.LINEAR else None
    name = type(module).__name__
    return Layer(kind, name, where, where, framework="torch", has_bias=bias, width=width,
                 dims=_dims(module), function=activation_function(name))


def _width_attributes(module: nn.Module) -> tuple[str, ...]:
    """Where a module keeps its output width; a lazy BN not yet called holds 0 there, not a width."""
    if isinstance(module, LazyModuleMixin) and module.has_uninitialized_params():
        return ("out_features", "out_channels")
    return ("out_features", "out_channels", "num_features")


def _dims(module: nn.Module) -> int | None:
    """1 for Linear/Conv1d/BatchNorm1d, 2 for Conv2d/BatchNorm2d... (from torch's own class)."""
    if isinstance(module, nn.Linear):
        return 1
    kernel = getattr(module, "kernel_size", None)
    if isinstance(kernel, tuple):
        return len(kernel)
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn") and cls.__name__[-2:] in ("1d", "2d", "3d"):
            return int(cls.__name__[-2])
    return None
