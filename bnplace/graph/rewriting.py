"""Rewrite every chain of a model to a BatchNorm placement.

Two ways, chosen per traced part:

* **In place** (the model keeps its class, its forward and its state_dict keys): when every
  chain to change in the part lies side by side in a plain ``nn.Sequential``, the Sequential's
  children are reordered; an inserted BN gets the key ``<linear key>_bn`` (``"0_bn"``), a moved BN
  keeps its key, a removed one is dropped.
* **Traced** (otherwise: functional layers, custom forwards): the part becomes an
  ``fx.GraphModule`` with the chain's nodes rewired. Its submodules keep their names (so the
  state_dict keys of existing layers stay) and it reads ``self.training`` where the original did
  (see :mod:`bnplace.graph.tracing`), so ``eval()`` still switches dropout off. A part whose
  forward branches on ``self.training`` is never replaced by a traced copy; its chains that would
  need one are skipped, with the reason.
"""

from __future__ import annotations

import inspect
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Union

from torch import fx, nn

from bnplace.graph.bias import biases_read, linear_batchnorm_pairs, move_bias_into_batchnorm
from bnplace.graph.channels import past_kept_channels
from bnplace.graph.copying import copy_module
from bnplace.graph.chains import Chain, ChainList, find_chains
from bnplace.graph.kinds import main_input, with_main_input
from bnplace.graph.shapes import batchnorm_for, output_shape, propagate_shapes
from bnplace.graph.tracing import TracedPart, graph_module, trace
from bnplace.graph.training import materialize_training_flag
from bnplace.placement import Placement

PlacementSpec = Union[Placement, str, Mapping[Union[str, Chain], Union[Placement, str]]]


_MODULE_HOOKS = ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks",
                 "_forward_hooks_with_kwargs", "_forward_hooks_always_called", "_backward_hooks",
                 "_backward_pre_hooks")


class BnplaceWarning(UserWarning):
    """Something bnplace left as it was (a skipped chain, an untraced part)."""


def rewrite(model: nn.Module, placement: PlacementSpec, example_inputs: Any = None,
            drop_bias: bool = True, *, leaf_modules: Iterable[type[nn.Module] | str] = (),
            concrete_args: Mapping[str, Any] | None = None) -> nn.Module:
    """A new model where every chain has ``placement`` (the input model is untouched).

    ``placement`` is a :class:`~bnplace.Placement` (or its CLI name) for every chain, or a dict
    from chain (its linear's name, or the :class:`Chain`) to placement; chains not in the dict
    stay as they are. A BN is inserted (kind and width from the linear's output, see
    :mod:`bnplace.graph.shapes`), moved with its parameters and statistics, or removed for
    ``none``. With ``drop_bias``, a linear layer feeding straight into BN loses its bias and the
    BN's running mean is shifted by it (outputs unchanged, see :func:`drop_redundant_bias`).
    Chains that cannot be rewritten safely stay as they are, with a :class:`BnplaceWarning`.
    ``example_inputs`` also let a forward that reads shapes in Python be traced (see
    :func:`~bnplace.graph.trace`); a part traced that way holds those shapes as constants, with a
    :class:`BnplaceWarning` saying where.
    """
    new = copy_module(model)
    traced = trace(new, leaf_modules=leaf_modules, concrete_args=concrete_args,
                   example_inputs=example_inputs)
    if example_inputs is not None:
        propagate_shapes(traced, example_inputs, real_fallback=True)
    chains = find_chains(new, traced=traced)
    if not chains:  # an LSTM, a transformer block: say so rather than claim a rewrite
        warnings.warn(f"bnplace: no chain in {type(model).__name__} (a Linear/Conv followed by "
                      f"an activation) to rewrite", BnplaceWarning, stacklevel=2)
    wanted = _wanted_placements(chains, placement)
    for what, parts in (
            ("left untraced (rewritten only inside their traceable parts)", traced.untraced),
            ("traced with shapes fixed from the example inputs (constants in the graph, which "
             "gave the model's outputs at their batch size and another)", traced.concrete)):
        if parts:
            listed = "; ".join(f"`{name or type(model).__name__}`: {why}"
                               for name, why in parts.items())
            warnings.warn(f"bnplace: {what}: {listed}", BnplaceWarning, stacklevel=2)

    todo: dict[str, list[tuple[Chain, Placement]]] = {}
    for chain in chains:
        target = wanted.get(chain.linear)
        if target is None or chain.placement_for(target) is chain.placement:
            continue
        if chain.skipped:
            warnings.warn(f"bnplace: chain `{chain.linear}` left at {chain.placement}: "
                          f"{chain.skipped}", BnplaceWarning, stacklevel=2)
            continue
        todo.setdefault(chain.part, []).append((chain, chain.placement_for(target)))

    # bias pairs are resolved to module objects now: module paths change when a part is replaced
    changed = {c.linear for jobs in todo.values() for c, _ in jobs}
    pairs = [(new.get_submodule(lin), new.get_submodule(bn))
             for lin, bn in linear_batchnorm_pairs(traced) if lin not in changed]
    keep_bias = {id(new.get_submodule(name)) for name in biases_read(traced)}

    result = new
    parts = {p.prefix: p for p in traced.parts}
    for prefix in sorted(todo, key=lambda p: -p.count(".") if p else 1):
        part, jobs = parts[prefix], todo[prefix]
        if all(c.container is not None for c, _ in jobs):
            by_container: dict[str, list[tuple[Chain, Placement]]] = {}
            for chain, target in jobs:
                by_container.setdefault(str(chain.container), []).append((chain, target))
            for container, group in by_container.items():
                pairs += _rewrite_in_sequential(new.get_submodule(container), part, group)
        else:
            removed: set[str] = set()
            reorder = False
            for chain, target in jobs:
                pairs += _rewrite_in_graph(part, chain, target, removed)
                reorder |= chain.nodes is not None and chain.nodes.batchnorm is not None \
                    and chain.nodes.batchnorm.op != "call_module"
            result = install_part(result, prefix, _finish_part(part, removed, reorder))

    if drop_bias:
        for linear, bn in pairs:
            if id(linear) not in keep_bias:
                move_bias_into_batchnorm(linear, bn)
    return result


def _wanted_placements(chains: ChainList, placement: PlacementSpec) -> dict[str, Placement]:
    if isinstance(placement, Mapping):
        known = {c.linear for c in chains}
        wanted = {}
        for key, value in placement.items():
            name = key.linear if isinstance(key, Chain) else str(key)
            if name not in known:
                listed = ", ".join(sorted(known)) or "none found"
                raise ValueError(f"no chain starts at {name!r}; chains: {listed}")
            wanted[name] = Placement.parse(value)
        return wanted
    target = Placement.parse(placement)
    return {c.linear: target for c in chains}


def _new_batchnorm(part: TracedPart, chain: Chain) -> nn.Module:
    """A fresh BN for the chain's linear output, in that layer's mode: a BN inserted into an
    eval-mode model (or a frozen eval-mode backbone) must not normalise with batch statistics,
    nor move its running statistics, while the model around it infers."""
    assert chain.nodes is not None
    node = chain.nodes.linear
    if node.op == "call_module":
        linear = part.module.get_submodule(str(node.target))
        width = getattr(linear, "out_features", None) or getattr(linear, "out_channels", None)
        weight = getattr(linear, "weight", None)
        bn = batchnorm_for(linear, None, width, output_shape(node), weight)
        return bn.train(linear.training)
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    tensor = None
    if isinstance(weight, fx.Node) and weight.op == "get_attr":
        tensor = _fetch(part.module, str(weight.target))
    width = int(tensor.shape[0]) if tensor is not None and tensor.dim() > 0 else None
    name = getattr(node.target, "__name__", "")
    bn = batchnorm_for(None, name, width, output_shape(node), tensor)
    return bn.train(part.module.training)


def _fetch(module: nn.Module, target: str) -> Any:
    obj: Any = module
    for atom in target.split("."):
        obj = getattr(obj, atom)
    return obj


def _rewrite_in_sequential(seq: nn.Module, part: TracedPart, jobs: list[tuple[Chain, Placement]]
                           ) -> list[tuple[nn.Module, nn.Module]]:
    """Reorder the children of one nn.Sequential for its chains, in one pass.

    Returns the (linear, BN) pairs that now sit side by side (for ``drop_bias``).
    """
    modules = dict(seq._modules)
    keys = list(modules)
    index = {k: i for i, k in enumerate(keys)}
    spans: dict[int, tuple[int, list[str]]] = {}  # first position -> (last position, new order)
    pairs = []
    for chain, target in jobs:
        assert chain.nodes is not None
        key = {role: str(n.target).rpartition(".")[2] if n is not None else None
               for role, n in vars(chain.nodes).items()}
        members = [k for k in key.values() if k]
        positions = [index[k] for k in members]
        if key["batchnorm"] is not None:
            bn_key = key["batchnorm"]
        else:
            bn_key = _unique(f"{key['linear']}_bn", modules)
            if target is not Placement.NONE:
                modules[bn_key] = _new_batchnorm(part, chain)
        order = [key["linear"]]
        if target is Placement.BEFORE_ACTIVATION:
            order.append(bn_key)
            pairs.append((modules[key["linear"]], modules[bn_key]))
        order.append(key["activation"])
        if target is Placement.AFTER_ACTIVATION:
            order.append(bn_key)
        if key["dropout"]:
            order.append(key["dropout"])
        if target is Placement.AFTER_DROPOUT:
            order.append(bn_key)
        spans[min(positions)] = (max(positions), order)
    items = []
    i = 0
    while i < len(keys):
        if i in spans:
            last, order = spans[i]
            items += [(k, modules[k]) for k in order]
            i = last + 1
        else:
            items.append((keys[i], modules[keys[i]]))
            i += 1
    seq._modules = OrderedDict(items)
    return pairs  # type: ignore[return-value]


def _rewrite_in_graph(part: TracedPart, chain: Chain, target: Placement, removed: set[str]
                      ) -> list[tuple[nn.Module, nn.Module]]:
    """Rewire the chain's nodes in the part's graph. Returns the (linear, BN) bias pairs."""
    assert chain.nodes is not None
    graph = part.graph
    linear, act, drop, old = (chain.nodes.linear, chain.nodes.activation, chain.nodes.dropout,
                              chain.nodes.batchnorm)
    dropout_first = chain.nodes.dropout_first
    moved = None
    if old is not None:
        moved = (old.op, old.target, old.args, dict(old.kwargs))  # erasing clears a node's args
        _take_out(old)
        if old.op == "call_module":
            removed.add(str(old.target))
        graph.erase_node(old)
    if drop is not None and dropout_first:  # every placement puts it after the activation
        _take_out(drop)
        drop.args, drop.kwargs = with_main_input(drop.args, drop.kwargs, act)
        act.append(drop)
        act.replace_all_uses_with(drop, delete_user_cb=lambda user: user is not drop)
    if target is Placement.NONE:
        return []
    # before the activation means after what keeps the linear's channels (TCN's chomp), so the
    # BN's statistics cover the values the activation sees
    anchor = {Placement.BEFORE_ACTIVATION: past_kept_channels(linear, part.modules),
              Placement.AFTER_ACTIVATION: act, Placement.AFTER_DROPOUT: drop or act}[target]
    with graph.inserting_after(anchor):
        if moved is not None:
            op, target_name, args, kwargs = moved
            args, kwargs = with_main_input(args, kwargs, anchor)
            bn_node = graph.create_node(op, target_name, args, kwargs)
            removed.discard(str(target_name))
        else:
            base = f"{linear.target}_bn" if linear.op == "call_module" else f"{linear.name}_bn"
            name = part.add_module(base, _new_batchnorm(part, chain))
            bn_node = graph.call_module(name, (anchor,))
    anchor.replace_all_uses_with(bn_node, delete_user_cb=lambda user: user is not bn_node)
    if target is Placement.BEFORE_ACTIVATION and linear.op == "call_module" \
            and bn_node.op == "call_module":
        return [(part.modules[str(linear.target)], part.modules[str(bn_node.target)])]
    return []


def _take_out(node: fx.Node) -> None:
    """Let the users of a one-input layer ``node`` read its input instead."""
    source = main_input(node)
    assert isinstance(source, fx.Node)
    node.replace_all_uses_with(source)


def _finish_part(part: TracedPart, removed: set[str], reorder: bool) -> fx.GraphModule:
    """The part's GraphModule after its graph was edited (built once, or recompiled)."""
    if reorder:  # a moved functional BN may use values defined after its new place
        from torch.fx.passes.tools_common import legalize_graph
        gm = part.graph_module
        legalize_graph(gm)  # builds a new graph
        part.graph = gm.graph
    materialize_training_flag(part.graph, part.add_module)
    unread = set()
    for node in list(part.graph.nodes):  # attributes a removed functional BN read
        if node.op == "get_attr" and not node.users:
            unread.add(str(node.target))
            part.graph.erase_node(node)
    called = {n.target for n in part.graph.nodes if n.op == "call_module"}
    gone = [t for t in removed if t not in called]
    gm = part._graph_module
    if gm is None:
        # built once, here: it copies only the modules the graph calls (removed BNs drop out)
        part._graph_module = gm = graph_module(part.module, part.graph)
        return gm
    for target in gone:
        gm.delete_submodule(target)
    _drop_unread_tensors(gm, unread)
    gm.recompile()
    return gm


def _drop_unread_tensors(gm: fx.GraphModule, targets: set[str]) -> None:
    """Delete the parameters and buffers at ``targets`` that the graph no longer reads, as a
    GraphModule built afresh would not copy them: the ``weight`` and ``bias`` of a removed
    ``F.batch_norm`` over a module's own tensors would get no gradient, which DDP (with
    ``find_unused_parameters=False``) and optimizers do not expect. Those of a module the graph
    still calls stay."""
    read = {str(n.target) for n in gm.graph.nodes if n.op == "get_attr"}
    called = [str(n.target) for n in gm.graph.nodes if n.op == "call_module"]
    for target in targets - read:
        owner_name, _, attr = target.rpartition(".")
        if any(f"{target}.".startswith(f"{c}.") for c in called):
            continue
        owner = gm.get_submodule(owner_name)
        if attr in owner._parameters or attr in owner._buffers:
            delattr(owner, attr)


def finish_graph_module(gm: fx.GraphModule) -> fx.GraphModule:
    """Make ``gm`` consistent after its graph was edited: order, unused submodules, code.

    Calls that read ``self.training`` become module calls, so ``torch.save`` keeps them working
    (see :mod:`bnplace.graph.training`).
    """
    try:
        gm.graph.lint()
    except RuntimeError:
        from torch.fx.passes.tools_common import legalize_graph
        legalize_graph(gm)

    def add(base: str, module: nn.Module) -> str:
        name, i = base, 1
        while hasattr(gm, name):
            name, i = f"{base}_{i}", i + 1
        gm.add_submodule(name, module)
        return name

    materialize_training_flag(gm.graph, add)
    used: set[str] = set()
    for node in gm.graph.nodes:
        if node.op in ("call_module", "get_attr"):
            atoms = str(node.target).split(".")
            used.update(".".join(atoms[:i]) for i in range(1, len(atoms) + 1))
            if node.op == "call_module":
                used.update(f"{node.target}.{name}" for name, _ in
                            gm.get_submodule(str(node.target)).named_modules() if name)
    unused = [name for name, _ in gm.named_modules() if name and name not in used]
    for name in unused:
        parent = name.rpartition(".")[0]
        if not parent or parent in used:  # a deleted parent takes its children along
            gm.delete_submodule(name)
    gm.recompile()
    return gm


def install_part(model: nn.Module, prefix: str, gm: nn.Module) -> nn.Module:
    """Put ``gm`` where the traced part ``prefix`` was; returns the (possibly new) root."""
    if not prefix:
        _warn_fixed_arguments(model, gm)
        for hooks in _MODULE_HOOKS:  # the model's own hooks keep firing on its traced copy
            getattr(gm, hooks).update(getattr(model, hooks))
        return gm
    parent_name, _, attr = prefix.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, gm)
    return model


def _warn_fixed_arguments(model: nn.Module, gm: nn.Module) -> None:
    """Say which of the forward's arguments the traced copy no longer takes (``mask=None`` is
    fixed while tracing, see :func:`~bnplace.graph.tracing.trace`): a caller passing one fails."""
    if not isinstance(gm, fx.GraphModule):
        return
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return
    kept = {str(n.target).lstrip("*") for n in gm.graph.nodes if n.op == "placeholder"}
    fixed = [f"{p.name}={p.default!r}" for p in parameters
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in kept]
    if fixed:
        warnings.warn(f"bnplace: the traced {type(model).__name__} no longer takes "
                      f"{', '.join(fixed)}: fixed while tracing. Pass concrete_args="
                      f"{{'{fixed[0].partition('=')[0]}': torch.fx.PH}} to keep it an input",
                      BnplaceWarning, stacklevel=4)


def _unique(base: str, taken: Mapping[str, Any]) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}{i}", i + 1
    return name
