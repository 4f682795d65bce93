"""Fold BatchNorm away for inference, whatever its placement.

An eval-mode BN is a per-channel affine map (see :mod:`bnplace.graph.affine`), so it can be merged
into a neighbouring linear layer and disappear:

* into the **preceding** Linear/Conv when it reads that layer's output directly (before-activation
  placement);
* into the **following** Linear/Conv otherwise (after an activation or a dropout), looking through
  what commutes with a per-channel affine map at inference: dropout (the identity in eval mode),
  flatten, average pooling, and max pooling when every BN scale is positive.

A BN is left where folding would not be exact, with the reason: its output or the layer's output
has other users, a following Conv pads with zeros (the zeros would not have gone through the BN),
a reshape whose channel layout is unknown... A layer called at several places, or sharing a weight,
is not changed: the call next to the BN goes to a private copy with the BN merged in.

A folded BN is deleted from its ``nn.Sequential`` (the model keeps its class), or, when a custom
forward calls it, the traced part holding it becomes an ``fx.GraphModule`` without the call.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.nn.utils import parametrize

from bnplace.graph.affine import (batchnorm_affine, merge_into_following, merge_into_preceding,
                                  output_channels)
from bnplace.graph.channels import channels_first, keeps_channels
from bnplace.graph.kinds import (call_name, describe, is_average_pool, is_identity, is_max_pool,
                                 main_input, node_kind, overrides_forward, value_users)
from bnplace.graph.copying import copy_module
from bnplace.graph.frozen import CLASS_PREFIX, is_frozen_batchnorm
from bnplace.graph.rewriting import finish_graph_module, install_part
from bnplace.graph.shapes import ChannelLastBatchNorm, output_shape, propagate_shapes
from bnplace.graph.tracing import TracedPart, trace
from bnplace.placement import LayerKind

_BatchNorm = nn.modules.batchnorm._BatchNorm
_SCRIPTED_BATCHNORMS = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm")


@dataclass(frozen=True)
class FoldedBatchNorm:
    """One BN merged away: its name, the layer it went into, and whether that layer came before
    it (``preceding``) or after it (``following``). ``copy_of`` names the original when the BN went
    into a private copy of a layer that is called at several places or shares its weights."""

    batchnorm: str
    into: str
    direction: str
    copy_of: str | None = None


@dataclass
class FoldReport:
    """What :func:`fold_with_report` did with each BatchNorm module of the model."""

    folded: list[FoldedBatchNorm] = field(default_factory=list)
    left: dict[str, str] = field(default_factory=dict)  # BN name -> why it stays


def fold(model: nn.Module, example_inputs: Any = None, *,
         leaf_modules: Iterable[type[nn.Module] | str] = (),
         concrete_args: Mapping[str, Any] | None = None) -> nn.Module:
    """An eval-mode copy of ``model`` with every foldable BatchNorm merged into a linear layer.

    Outputs equal ``model.eval()``'s to rounding. ``example_inputs`` (optional) lets shapes be
    checked: a Linear's output rank under a ``BatchNorm1d``, the channel layout of a ``view``;
    and a forward that reads shapes in Python be traced (see :func:`~bnplace.graph.trace`).
    Without them a Linear feeding or fed by ``BatchNorm1d`` is taken to work on ``(N, C)``.
    :func:`fold_with_report` also says which BNs were left and why.
    """
    return fold_with_report(model, example_inputs, leaf_modules=leaf_modules,
                            concrete_args=concrete_args)[0]


def fold_with_report(model: nn.Module, example_inputs: Any = None, *,
                     leaf_modules: Iterable[type[nn.Module] | str] = (),
                     concrete_args: Mapping[str, Any] | None = None
                     ) -> tuple[nn.Module, FoldReport]:
    """:func:`fold`, plus the report of what was folded into what and what was left, and why."""
    new = copy_module(model).eval()
    traced = trace(new, leaf_modules=leaf_modules, concrete_args=concrete_args,
                   example_inputs=example_inputs)
    if example_inputs is not None:
        propagate_shapes(traced, example_inputs)
    folder = _Folder(new, traced.parts)
    needs_graph = [part for part in traced.parts if folder.fold_part(part)]
    result = new
    for part in sorted(needs_graph, key=lambda p: -p.prefix.count(".") if p.prefix else 1):
        gm = part.graph_module
        _drop_string_annotations(gm.graph)
        finish_graph_module(gm)
        result = install_part(result, part.prefix, gm)
    folder.report_unseen(traced.untraced)
    return result.eval(), folder.report


class _Folder:
    """Folds the BNs of traced parts one at a time, in graph order, on the current weights."""

    def __init__(self, model: nn.Module, parts: list[TracedPart]) -> None:
        self.model = model
        self.report = FoldReport()
        self.names = {id(m): name for name, m in model.named_modules()}
        self.calls: Counter[int] = Counter()
        for part in parts:
            for node in part.graph.nodes:
                if node.op == "call_module":
                    self.calls[id(part.module.get_submodule(str(node.target)))] += 1
        owners: Counter[int] = Counter()
        for m in model.modules():
            for p in m.parameters(recurse=False):
                owners[id(p)] += 1
        self.shared = {id(m) for m in model.modules()
                       if any(owners[id(p)] > 1 for p in m.parameters(recurse=False))}
        self.retargeted: set[str] = set()  # parts where a call now goes to a private copy

    def fold_part(self, part: TracedPart) -> bool:
        """Fold what can be folded in ``part``. True when its graph must replace its forward."""
        modules = dict(part.module.named_modules())
        needs_graph = False
        for node in list(part.graph.nodes):
            if node.op != "call_module" and node_kind(node, modules) is LayerKind.BATCHNORM:
                self.report.left[part.qualified(node.name)] = (
                    f"it is a functional {describe(node, modules)} call, whose statistics and "
                    f"affine are arguments; fold merges BatchNorm modules only")
            if node.op != "call_module" or not _is_batchnorm(modules[str(node.target)]):
                continue
            bn = modules[str(node.target)]
            name = self.names[id(bn)]
            reason = self._batchnorm_problem(bn) or self._part_problem(part)
            folded = None if reason else self._fold(part, node, bn, modules)
            if isinstance(folded, FoldedBatchNorm):
                self.report.folded.append(folded)
                node.replace_all_uses_with(main_input(node))
                part.graph.erase_node(node)
                needs_graph |= not _remove_from_sequential(part.module, str(node.target))
            else:
                self.report.left[name] = reason or folded
        return needs_graph or part.prefix in self.retargeted

    def report_unseen(self, untraced: Mapping[str, str]) -> None:
        """Every BN module neither folded nor left yet was never called in a traced graph:
        it sits in (or is) an untraced part, scripted ones included, or is never called."""
        done = {f.batchnorm for f in self.report.folded} | set(self.report.left)
        for name, m in self.model.named_modules():
            if (_is_batchnorm(m) or _is_scripted_batchnorm(m)) and name not in done:
                owner = max((u for u in untraced
                             if not u or name == u or name.startswith(f"{u}.")),
                            key=len, default=None)
                self.report.left[name] = (
                    "not called by the model's forward" if owner is None
                    else f"it is not traced: {untraced[owner]}" if owner == name
                    else f"inside `{owner or type(self.model).__name__}`, whose forward does not "
                         f"trace ({untraced[owner]})")

    def _part_problem(self, part: TracedPart) -> str | None:
        """Why no graph may replace the forward that calls the BN (one updating its buffers)."""
        if part.updates_buffers is None:
            return None
        return (f"inside `{part.prefix or type(self.model).__name__}`, whose forward "
                f"{part.updates_buffers}")

    def _batchnorm_problem(self, bn: nn.Module) -> str | None:
        if not getattr(bn, "track_running_stats", True) or bn.running_var is None:
            return "it normalises with batch statistics at inference (track_running_stats=False)"
        if isinstance(bn.running_var, nn.parameter.UninitializedBuffer):
            return "it is a lazy BatchNorm that has not seen an input yet"
        if self.calls[id(bn)] > 1:
            return f"it is called at {self.calls[id(bn)]} places"
        if _hooked(bn):  # a feature-extraction hook on it would never fire again
            return "it has forward hooks, which would stop firing once it is merged away"
        if type(bn).forward not in (_BatchNorm.forward, nn.SyncBatchNorm.forward,
                                    ChannelLastBatchNorm.forward) and not is_frozen_batchnorm(bn):
            return f"{type(bn).__name__} overrides forward, so its map is unknown"
        return None

    def _fold(self, part: TracedPart, node: fx.Node, bn: nn.Module,
              modules: dict[str, nn.Module]) -> FoldedBatchNorm | str:
        """Merge the BN into its preceding or following layer; the reason when neither is exact."""
        name = self.names[id(bn)]
        scale, shift = batchnorm_affine(bn)
        source = main_input(node)
        linear, reader = _preceding(part, node, modules)
        if linear is not None:
            problem = self._preceding_problem(part, linear, reader, bn, output_shape(source),
                                              modules)
            if problem is None:
                layer, copy_of = self._own_layer(part, linear, modules)
                merge_into_preceding(layer, scale, shift)
                return FoldedBatchNorm(name, self.names[id(layer)], "preceding", copy_of)
            before = problem
        elif node_kind(source, modules) is LayerKind.LINEAR:
            before = f"it is fed by {_functional(part, source, modules)}"
        else:
            before = f"it is fed by {_label(part, source, modules)}, not a Linear/Conv"
        path = _following(part, node, bool((scale > 0).all()), modules)
        if isinstance(path, str):
            return f"{before}; {path}"
        layer = modules[str(path.layer.target)]
        layer_name = self.names[id(layer)]
        problem = self._layer_problem(layer) or _following_problem(layer, layer_name, bn, path,
                                                                   source)
        if problem:
            return f"{before}; {problem}"
        repeat = _features_per_channel(layer, bn, path) if path.flattened else 1
        layer, copy_of = self._own_layer(part, path.layer, modules)
        merge_into_following(layer, scale, shift, repeat)
        return FoldedBatchNorm(name, self.names[id(layer)], "following", copy_of)

    def _own_layer(self, part: TracedPart, node: fx.Node, modules: dict[str, nn.Module]
                   ) -> tuple[nn.Module, str | None]:
        """The layer ``node`` calls, made private to this call first when it is called elsewhere
        too or shares a parameter: the call then goes to a copy (and the part becomes a graph).
        Returns the layer to merge into and the original's name when it is a copy."""
        layer = modules[str(node.target)]
        if self.calls[id(layer)] == 1 and id(layer) not in self.shared:
            return layer, None
        original = self.names[id(layer)]
        private = copy_module(layer)
        target = part.add_module(f"{str(node.target).replace('.', '_')}_folded", private)
        modules[target] = private
        node.target = target
        self.calls[id(layer)] -= 1
        self.calls[id(private)] = 1
        self.names[id(private)] = part.qualified(target)
        self.retargeted.add(part.prefix)
        return private, original

    def _layer_problem(self, layer: nn.Module) -> str | None:
        name = self.names[id(layer)]
        if not isinstance(layer, (nn.Linear, nn.modules.conv._ConvNd)) or \
                isinstance(layer.weight, nn.parameter.UninitializedParameter):
            return f"`{name}` ({type(layer).__name__}) has no initialized weight to merge into"
        if overrides_forward(layer):
            return f"`{name}` ({type(layer).__name__}) overrides forward, so its map is unknown"
        if parametrize.is_parametrized(layer) or _hooked(layer):
            return (f"`{name}` computes its weight (a parametrization or weight norm) or has "
                    f"forward hooks")
        return None

    def _preceding_problem(self, part: TracedPart, source: fx.Node, node: fx.Node, bn: nn.Module,
                           shape: tuple[int, ...] | None, modules: dict[str, nn.Module]
                           ) -> str | None:
        """Why ``bn``, reading values of ``shape`` that ``node`` computes from the output of
        ``source``, cannot merge into that layer; None when it can."""
        layer = modules[str(source.target)]
        others = [u for u in value_users(source) if u is not node]
        if others:
            return f"the output of `{self.names[id(layer)]}` also goes to " + ", ".join(
                _label(part, u, modules) for u in others)
        problem = self._layer_problem(layer)
        if problem:
            return problem
        width = output_channels(layer)
        if width != _channels(bn):
            return f"`{self.names[id(layer)]}` has {width} outputs, the BN {_channels(bn)}"
        if not _channel_axes_match(layer, bn, shape):
            return f"the BN does not normalise the output axis of `{self.names[id(layer)]}`"
        return None


def _is_batchnorm(module: nn.Module) -> bool:
    """A BatchNorm module, or a frozen one (torchvision's ``FrozenBatchNorm2d``: the same map)."""
    return isinstance(module, _BatchNorm) or is_frozen_batchnorm(module)


def _is_scripted_batchnorm(module: nn.Module) -> bool:
    """A BatchNorm compiled by ``torch.jit.script``: no ``_BatchNorm`` instance any more, only
    its original class name tells; it is never folded, only reported."""
    return (isinstance(module, torch.jit.RecursiveScriptModule)
            and (module.original_name in _SCRIPTED_BATCHNORMS
                 or module.original_name.startswith(CLASS_PREFIX)))


def _channels(bn: nn.Module) -> int:
    """How many channels a BN normalises (a frozen one has no ``num_features``)."""
    return bn.running_var.shape[0]


def _hooked(module: nn.Module) -> bool:
    """Whether forward hooks (or pre-hooks: pruning, old-style weight norm) run around
    ``module``: merging changes what they see, or removes the module they are on."""
    return bool(module._forward_pre_hooks or module._forward_hooks)


def _preceding(part: TracedPart, node: fx.Node, modules: dict[str, nn.Module]
               ) -> tuple[fx.Node | None, fx.Node]:
    """The Linear/Conv module call a BN reads, directly or through what is the identity on its
    channels at inference (a dropout, TCN's chomp: see :mod:`.channels`), and the node that reads
    it; ``(None, node)`` when there is none."""
    path = []
    reader, source = node, main_input(node)
    while isinstance(source, fx.Node) and node_kind(source, modules) is not LayerKind.LINEAR:
        if value_users(source) != [reader] or not _passes(part, source, modules, None):
            return None, node
        path.append(source)
        reader, source = source, main_input(source)
    if not isinstance(source, fx.Node) or source.op != "call_module" or not all(
            _passes(part, n, modules, channels_first(source, modules)) for n in path):
        return None, node
    return source, reader


def _passes(part: TracedPart, node: fx.Node, modules: dict[str, nn.Module],
            first: bool | None) -> bool:
    """Is ``node`` the identity on the channels of a layer output at inference? ``first``: are
    they on axis 1 (a Conv's) or last (a Linear's); None while not known, for either.

    On a Linear's output a flatten of the leading axes (LeViT's ``bn(l(x).flatten(0, 1))``)
    keeps each channel whole too: into a BN over ``(N, C)`` (checked against the recorded shape
    when there is one), ``flatten(0, e)`` leaves the last axis alone."""
    if node_kind(node, modules) is LayerKind.DROPOUT:
        return _dropout_problem(part, node, modules) is None
    axes = _flatten_axes(node)
    if axes is not None and not first:
        start, end = axes
        return start == 0 and isinstance(end, int) and (end >= 0 or end == -2)
    return keeps_channels(node, modules, first is not False)


@dataclass(frozen=True)
class _Path:
    """Where a BN's output goes: the linear layer that reads it, and whether it was flattened on
    the way (each channel then becomes ``spatial`` consecutive features; None when unknown)."""

    layer: fx.Node
    flattened: bool = False
    spatial: int | None = None


def _following(part: TracedPart, node: fx.Node, positive: bool,
               modules: dict[str, nn.Module]) -> _Path | str:
    """The path from a BN to the linear layer reading its output through ops that commute with a
    per-channel affine map; or why there is none."""
    cur, flattened, spatial = node, False, None
    while True:
        users = value_users(cur)
        if not users:
            return "its output is not used"
        if len(users) > 1:
            return f"the output of {_label(part, cur, modules)} has {len(users)} users"
        nxt = users[0]
        if nxt.op == "output":
            return "no layer follows it in the traced forward"
        if main_input(nxt) is not cur:
            return f"its output is an extra argument of {_label(part, nxt, modules)}"
        kind = node_kind(nxt, modules)
        if kind is LayerKind.LINEAR:
            if nxt.op != "call_module":
                return f"it is followed by {_functional(part, nxt, modules)}"
            return _Path(nxt, flattened, spatial)
        problem = None
        if kind is LayerKind.DROPOUT:
            problem = _dropout_problem(part, nxt, modules)
        elif _is_flatten(nxt, modules) and not flattened:
            flattened, spatial = True, _spatial_size(cur)
        elif is_average_pool(nxt, modules) and not flattened:
            problem = _average_pool_problem(part, nxt, modules)
        elif is_max_pool(nxt, modules) and not flattened:
            if not positive:
                problem = (f"{_label(part, nxt, modules)} only commutes with a BN whose scales "
                           f"are all positive")
        elif not is_identity(nxt, modules):
            problem = f"it is followed by {_label(part, nxt, modules)}, which it cannot pass"
        if problem:
            return problem
        cur = nxt


def _following_problem(layer: nn.Module, name: str, bn: nn.Module, path: _Path,
                       bn_input: fx.Node) -> str | None:
    """Why merging into the following ``layer`` would not be exact, or None."""
    channel_last = isinstance(bn, ChannelLastBatchNorm)
    if isinstance(layer, nn.modules.conv._ConvTransposeNd):
        return (f"`{name}` is a transposed convolution: where its strides overlap or its padding "
                f"crops, outputs sum different numbers of inputs, so the BN's shift is no one "
                f"bias")
    if isinstance(layer, nn.modules.conv._ConvNd):
        if path.flattened or channel_last:
            return f"`{name}` does not read the BN's channels on its channel axis"
        if layer.in_channels != _channels(bn):
            return f"`{name}` reads {layer.in_channels} channels, the BN has {_channels(bn)}"
        if _pads_with_zeros(layer):
            return (f"`{name}` pads with zeros, which never went through the BN (padding=0 or "
                    f"a padding_mode other than 'zeros' would fold)")
        return None
    if path.flattened:
        if channel_last:
            return f"`{name}` reads a flatten of channel-last BN output"
        repeat = _features_per_channel(layer, bn, path)
        if repeat is None:
            return (f"`{name}` reads {layer.in_features} features, which are not the BN's "
                    f"{_channels(bn)} channels flattened")
        return None
    if layer.in_features != _channels(bn):
        return f"`{name}` reads {layer.in_features} features, the BN has {_channels(bn)}"
    shape = output_shape(bn_input)
    if not channel_last and shape is not None and len(shape) != 2:
        return f"`{name}` reads the last axis of a {len(shape)}-d output, not the BN's channels"
    return None


def _features_per_channel(layer: nn.Linear, bn: nn.Module, path: _Path) -> int | None:
    """How many consecutive input features of ``layer`` each BN channel became by flattening."""
    if path.spatial is not None:
        fits = layer.in_features == _channels(bn) * path.spatial
        return path.spatial if fits else None
    if layer.in_features % _channels(bn):
        return None
    return layer.in_features // _channels(bn)


def _channel_axes_match(layer: nn.Module, bn: nn.Module, shape: tuple[int, ...] | None) -> bool:
    """Does the BN normalise the axis that holds ``layer``'s outputs?"""
    if isinstance(layer, nn.modules.conv._ConvNd):
        return not isinstance(bn, ChannelLastBatchNorm)
    return isinstance(bn, ChannelLastBatchNorm) or shape is None or len(shape) == 2


def _pads_with_zeros(conv: nn.modules.conv._ConvNd) -> bool:
    if conv.padding_mode != "zeros":
        return False
    if isinstance(conv.padding, str):
        return conv.padding == "same" and any(k > 1 for k in conv.kernel_size)
    return any(p > 0 for p in conv.padding)


def _dropout_problem(part: TracedPart, node: fx.Node,
                     modules: dict[str, nn.Module]) -> str | None:
    """None when the dropout is the identity in eval mode (a module, ``training=self.training``)."""
    if node.op == "call_module":
        return None
    training = node.kwargs.get("training", node.kwargs.get("train"))
    if training is None and len(node.args) > 2:
        training = node.args[2]
    if training is False or (isinstance(training, fx.Node) and training.op == "get_attr"
                             and str(training.target).endswith("training")):
        return None
    return (f"{_label(part, node, modules)} drops out in eval mode too (its training argument "
            f"is not self.training)")


def _is_flatten(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """A flatten of everything after the batch axis (``nn.Flatten()``, ``torch.flatten(x, 1)``,
    ``x.flatten(1)``), or a view/reshape that the recorded shapes show to be one."""
    if node.op == "call_module":
        m = modules[str(node.target)]
        return isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1
    axes = _flatten_axes(node)
    if axes is not None:
        return axes == (1, -1)
    if call_name(node) in ("view", "reshape"):
        before, after = output_shape(main_input(node)), output_shape(node)
        return (before is not None and after is not None and len(before) > 2
                and after == (before[0], math.prod(before[1:])))
    return False


def _flatten_axes(node: fx.Node) -> tuple[Any, Any] | None:
    """``(start_dim, end_dim)`` of a ``torch.flatten``/``Tensor.flatten`` call; None otherwise."""
    if not (node.op == "call_method" and node.target == "flatten"
            or node.op == "call_function" and node.target is torch.flatten):
        return None
    start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
    end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
    return start, end


def _spatial_size(before: fx.Node) -> int | None:
    """How many positions each channel of ``before``'s output has (None without shapes)."""
    shape = output_shape(before)
    return math.prod(shape[2:]) if shape is not None else None


def _average_pool_problem(part: TracedPart, node: fx.Node,
                          modules: dict[str, nn.Module]) -> str | None:
    """Averages commute with ``scale * x + shift`` unless padded zeros or a custom divisor enter."""
    m = modules.get(str(node.target)) if node.op == "call_module" else None
    if not isinstance(m, nn.modules.pooling._AvgPoolNd):
        return None
    padded = any(p > 0 for p in _as_tuple(m.padding)) and m.count_include_pad
    if padded or getattr(m, "divisor_override", None):
        return (f"{_label(part, node, modules)} averages in padded zeros or divides by a fixed "
                f"count")
    return None


def _as_tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _drop_string_annotations(graph: fx.Graph) -> None:
    """Forget annotations fx kept as strings (``from __future__ import annotations``): a
    GraphModule whose code names them cannot be pickled by ``torch.save``."""
    for node in graph.nodes:
        if isinstance(node.type, str):
            node.type = None


def _remove_from_sequential(root: nn.Module, target: str) -> bool:
    """Delete the module at ``target`` from its parent when that is a plain ``nn.Sequential``."""
    parent_name, _, key = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    if not isinstance(parent, nn.Sequential) or type(parent).forward is not nn.Sequential.forward:
        return False
    delattr(parent, key)
    return True


def _functional(part: TracedPart, node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """Why a functional ``F.conv2d``/``F.linear`` takes no BN: its weight is only an argument."""
    return (f"functional {_label(part, node, modules)}, whose weight is an argument of the call, "
            f"not a Linear/Conv module's parameter that fold can rewrite")


def _label(part: TracedPart, node: Any, modules: dict[str, nn.Module]) -> str:
    if not isinstance(node, fx.Node):
        return repr(node)
    if node.op == "call_module":
        return f"`{part.qualified(str(node.target))}` ({describe(node, modules)})"
    if node.op == "placeholder":
        return f"the input `{node.name}`"
    return f"`{part.qualified(node.name)}` ({describe(node, modules)})"
