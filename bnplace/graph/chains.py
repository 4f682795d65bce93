"""Find linear → activation → dropout chains (and the BatchNorm in each) in a traced model."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import fx, nn

from bnplace.graph.channels import channels_first, keeps_channels
from bnplace.graph.frozen import is_frozen_batchnorm
from bnplace.graph.gated import self_gated
from bnplace.graph.kinds import (activation_of, call_name, describe, is_add, is_arithmetic,
                                 is_identity, is_mul, is_normalization, is_pooling, is_reshape,
                                 main_input, node_kind, rearranges, value_users)
from bnplace.graph.positional import positionally_used
from bnplace.graph.tracing import Trace, TracedPart, trace
from bnplace.placement import LayerKind, Placement


@dataclass(frozen=True)
class ChainNodes:
    """The fx nodes of a chain, in the graph of its :class:`~bnplace.graph.tracing.TracedPart`."""

    linear: fx.Node
    activation: fx.Node
    dropout: fx.Node | None
    batchnorm: fx.Node | None

    @property
    def dropout_first(self) -> bool:
        """Does the dropout come before the activation (PointNet's ``relu(bn(dropout(fc(x))))``)?
        Every placement puts it after the activation, so a rewrite moves it there."""
        node = main_input(self.activation)
        while isinstance(node, fx.Node) and node is not self.linear:
            if node is self.dropout:
                return True
            node = main_input(node)
        return False


@dataclass(frozen=True)
class Chain:
    """A linear → activation → (dropout) chain and where its BatchNorm sits.

    ``linear``, ``activation``, ``dropout`` and ``batchnorm`` are qualified module names for module
    layers (``features.0``) and fx node names for functional ones (``relu_1``; prefixed with the
    part's name when the chain lies in a separately traced submodule). ``skipped`` is None, or why
    the chain cannot be rewritten safely. ``part`` names the traced part that holds the chain and
    ``nodes`` its fx nodes there; ``container`` is the qualified name of the ``nn.Sequential``
    holding every layer of the chain side by side, when there is one (rewritten in place).
    ``shape`` is the linear layer's output shape when example inputs were given.
    """

    linear: str
    activation: str
    dropout: str | None
    batchnorm: str | None
    placement: Placement
    skipped: str | None = None
    part: str = field(default="", repr=False)
    nodes: ChainNodes | None = field(default=None, repr=False, compare=False)
    container: str | None = field(default=None, repr=False)
    shape: tuple[int, ...] | None = field(default=None, repr=False)

    def placement_for(self, wanted: Placement) -> Placement:
        """The placement this chain ends up with when ``wanted`` is asked for.

        Without a dropout, "after dropout" is the same place as "after activation".
        """
        if wanted is Placement.AFTER_DROPOUT and self.dropout is None:
            return Placement.AFTER_ACTIVATION
        return wanted


class ChainList(list):
    """The chains of a model (a list), plus ``untraced``: the parts left untraced, and why.

    ``trace`` is the :class:`~bnplace.graph.tracing.Trace` the chains were found in; ``concrete``
    its parts traced with shapes fixed from the example inputs, and where.
    """

    untraced: dict[str, str]
    trace: Trace | None

    def __init__(self, chains: Iterable[Chain] = (), untraced: Mapping[str, str] | None = None,
                 traced: Trace | None = None) -> None:
        super().__init__(chains)
        self.untraced = dict(untraced or {})
        self.trace = traced

    @property
    def concrete(self) -> dict[str, str]:
        return self.trace.concrete if self.trace is not None else {}

    def by_linear(self) -> dict[str, Chain]:
        return {c.linear: c for c in self}


def find_chains(model: nn.Module, example_inputs: Any = None, *,
                traced: Trace | None = None,
                leaf_modules: Iterable[type[nn.Module] | str] = (),
                concrete_args: Mapping[str, Any] | None = None) -> ChainList:
    """Find every linear → activation → (dropout) chain of ``model`` and its BatchNorm placement.

    ``example_inputs`` (a tensor or a tuple of them) fills in :attr:`Chain.shape` by shape
    propagation on fake tensors (no statistic moves), and let a forward that reads shapes in Python
    be traced (see :func:`trace`). Pass ``traced`` to reuse a :func:`trace`.
    """
    if traced is None:
        traced = trace(model, leaf_modules=leaf_modules, concrete_args=concrete_args,
                       example_inputs=example_inputs)
    if example_inputs is not None:
        from bnplace.graph.shapes import propagate_shapes
        propagate_shapes(traced, example_inputs)
    chains: list[Chain] = []
    for part in traced.parts:
        chains.extend(chains_in_part(part))
    return ChainList(chains, traced.untraced, traced)


def chains_in_part(part: TracedPart) -> list[Chain]:
    """The chains in one traced part, in graph order."""
    modules = part.modules
    calls = Counter(n.target for n in part.graph.nodes if n.op == "call_module")
    kinds = {n: node_kind(n, modules) for n in part.graph.nodes}
    found = []
    positions_of: dict[str, dict[str, int]] = {}  # Sequential name -> child key -> position
    seen: set[str] = set()  # a linear module called at several places is one (skipped) chain
    for node in part.graph.nodes:
        if kinds[node] is LayerKind.LINEAR:
            chain = _walk(part, node, kinds, modules, calls, positions_of)
            if chain is not None and chain.linear not in seen:
                seen.add(chain.linear)
                found.append(chain)
    return found


def _walk(part: TracedPart, linear: fx.Node, kinds: dict[fx.Node, LayerKind | None],
          modules: dict[str, nn.Module], calls: Counter,
          positions_of: dict[str, dict[str, int]]) -> Chain | None:
    act = drop = bn = None
    met = [linear]  # the members, in graph order
    skipped: str | None = None
    first = channels_first(linear, modules)
    cur = linear  # the node reached (an nn.Identity, or a slice before the activation, is passed)
    while True:
        users = value_users(cur)
        nxt = self_gated(cur, modules) if act is None else None
        if nxt is not None:
            kind: LayerKind | None = LayerKind.ACTIVATION
        else:
            follow = [u for u in users if main_input(u) is cur and (
                _continues(u, kinds, act, drop, bn) or is_identity(u, modules)
                or (act is None and (keeps_channels(u, modules, first)
                                     or rearranges(u, modules))))]
            if not follow:
                if act is None and len(users) == 1:
                    blocked = _blocked(part, cur, users[0], kinds, modules)
                    if blocked is not None:
                        act, why = blocked
                        met.append(act)
                        skipped = skipped or why
                break
            if len(users) > 1:
                skipped = skipped or _other_users(part, cur, users)
            nxt = follow[0]
            kind = kinds[nxt]
            if kind is None and rearranges(nxt, modules):
                skipped = skipped or (
                    f"`{_name(part, nxt)}` ({describe(nxt, modules)}) between "
                    f"`{_name(part, linear)}` and the activation moves the axes of its output; "
                    f"bnplace does not place a BatchNorm across it")
        if kind is LayerKind.BATCHNORM:
            bn = nxt
        elif kind is LayerKind.ACTIVATION:
            act = nxt
        elif kind is LayerKind.DROPOUT:
            drop = nxt
        if kind is not None:
            met.append(nxt)
        cur = nxt
    if act is None:
        return None
    members = [n for n in (linear, act, drop, bn) if n is not None]
    skipped = (skipped or _frozen(part, bn, modules) or _shared_member(part, members, kinds, calls)
               or _trailing_batchnorm(part, cur, bn, modules, kinds)
               or _output_squashing(part, cur, act, modules)
               or _gate(part, cur, act, modules))
    container = _container(part, members, modules, positions_of)
    if skipped is None and part.training_dependent and container is None:
        skipped = part.training_dependent
    shape = None
    meta = linear.meta.get("tensor_meta")
    if meta is not None and hasattr(meta, "shape"):
        shape = tuple(meta.shape)
    return Chain(
        linear=_name(part, linear), activation=_name(part, act),
        dropout=_name(part, drop) if drop is not None else None,
        batchnorm=_name(part, bn) if bn is not None else None,
        placement=_placement(met, act, drop, bn), skipped=skipped, part=part.prefix,
        nodes=ChainNodes(linear, act, drop, bn),
        container=container, shape=shape,
    )


def _placement(met: list[fx.Node], act: fx.Node, drop: fx.Node | None,
               bn: fx.Node | None) -> Placement:
    """Where the BN sits: after the dropout when it follows it (also before the activation, as in
    PointNet's ``relu(bn(dropout(fc(x))))``: it normalizes dropped-out values, the variance
    shift), else after the activation when it follows that, else before the activation."""
    if bn is None:
        return Placement.NONE
    before = met[:met.index(bn)]
    if drop is not None and drop in before:
        return Placement.AFTER_DROPOUT
    if act in before:
        return Placement.AFTER_ACTIVATION
    return Placement.BEFORE_ACTIVATION


def _frozen(part: TracedPart, bn: fx.Node | None, modules: dict[str, nn.Module]) -> str | None:
    """Why a chain whose BN is frozen (torchvision's ``FrozenBatchNorm2d``, see :mod:`.frozen`)
    stays: its statistics were fixed for the backbone's pretrained weights, where it is."""
    if bn is None or bn.op != "call_module" or not is_frozen_batchnorm(modules[str(bn.target)]):
        return None
    return (f"`{_name(part, bn)}` is a {describe(bn, modules)}: its statistics and affine are "
            f"fixed buffers, fitted to the values at this place of a pretrained backbone, so "
            f"bnplace neither moves nor removes it")


def _shared_member(part: TracedPart, members: list[fx.Node],
                   kinds: dict[fx.Node, LayerKind | None], calls: Counter) -> str | None:
    """Why a linear or BN module called elsewhere too stops the chain (its bias or statistics
    would change for the other call); a shared activation or dropout (torchvision's one
    ``self.relu``) is only called, never changed, so it does not."""
    for n in members:
        if n.op == "call_module" and calls[n.target] > 1 \
                and kinds[n] in (LayerKind.LINEAR, LayerKind.BATCHNORM):
            return f"`{part.qualified(str(n.target))}` is called at {calls[n.target]} places"
    return None


def _trailing_batchnorm(part: TracedPart, end: fx.Node, bn: fx.Node | None,
                        modules: dict[str, nn.Module],
                        kinds: dict[fx.Node, LayerKind | None]) -> str | None:
    """Why a BatchNorm right after the chain, or after pooling that follows it (the Keras
    Conv → ReLU → MaxPool → BN idiom), stops the chain: a rewrite would add a second BN or leave
    one behind."""
    node = end
    while len(node.users) == 1:
        user = next(iter(node.users))
        if main_input(user) is not node:
            return None
        if kinds[user] is LayerKind.BATCHNORM:
            if bn is not None:
                return (f"a second BatchNorm `{_name(part, user)}` follows "
                        f"`{_name(part, node)}` (the chain holds one)")
            return (f"its BatchNorm `{_name(part, user)}` comes after `{_name(part, node)}`, "
                    f"which is not a chain layer")
        if not (is_pooling(user, modules) or kinds[user] is LayerKind.DROPOUT
                or is_identity(user, modules)):
            return None
        node = user
    return None


SQUASHING_OUTPUTS = ("sigmoid", "tanh", "hardsigmoid", "hardtanh")


def _output_squashing(part: TracedPart, end: fx.Node, act: fx.Node,
                      modules: dict[str, nn.Module]) -> str | None:
    """Why a chain whose sigmoid or tanh is the output (a binary classifier, a GAN generator's
    image, DCGAN's discriminator returning ``output.view(-1, 1).squeeze(1)``, a TD3 actor's
    ``max_action * tanh(...)``) is left: a BN there would sit on the output layer (BNP005)."""
    if activation_of(act, modules) not in SQUASHING_OUTPUTS:
        return None
    if _only_output(end, modules):
        return f"it is the output layer (`{_name(part, act)}` gives the model's output)"
    return None


def _only_output(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Does every use of ``node`` reach the model's output, through reshapes and arithmetic with
    constants only?"""
    return bool(node.users) and all(
        user.op == "output" or (_passes_on(user, node, modules) and _only_output(user, modules))
        for user in node.users)


def _passes_on(user: fx.Node, node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Does ``user`` only reshape ``node``, or shift and scale it by constants (``2 * x``,
    ``(x + 1) / 2``, ``x * self.action_scale``)? Arithmetic with another computed tensor makes
    something new (a gate's product, a residual sum)."""
    if is_reshape(user, modules):
        return main_input(user) is node
    return is_arithmetic(user) and not any(_computed(a) for a in _operands(user, node))


def _operands(user: fx.Node, node: fx.Node) -> list[Any]:
    """The arguments of ``user`` other than ``node``."""
    return [a for a in (*user.args, *user.kwargs.values()) if a is not node]


def _computed(value: Any) -> bool:
    """Is ``value`` a tensor computed in the graph (not a constant, a parameter or a buffer)?"""
    return isinstance(value, fx.Node) and value.op != "get_attr"


BROADCASTS = ("expand", "expand_as")


def _gate(part: TracedPart, end: fx.Node, act: fx.Node,
          modules: dict[str, nn.Module]) -> str | None:
    """Why a chain whose squashing activation (``SQUASHING_OUTPUTS``) scales another tensor is
    left: it is a gate (squeeze-and-excitation's ``x * sigmoid(fc2(s))``, CBAM, GLU's
    ``a * sigmoid(b)``), whose values in (0, 1) say how much of that tensor passes; a BN before it
    would re-centre what the gate means, and no published architecture puts one there.

    Only the chain that ends in the gate is left. The chain before it in an SE block
    (``fc1 → ReLU`` on the pooled tensor) is an ordinary hidden layer of the excitation MLP and is
    rewritten like any other (timm's ``SEModule`` takes a ``norm_layer`` right there).
    """
    if activation_of(act, modules) not in SQUASHING_OUTPUTS:
        return None
    product = _gated_product(end, modules)
    if product is None:
        return None
    return (f"`{_name(part, act)}` is a gate: its output scales another tensor in "
            f"`{_name(part, product)}`")


def _gated_product(node: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The multiplication in which ``node``'s value (through reshapes and ``expand``) scales
    another computed tensor; a product with a constant or a parameter is no gate."""
    for user in node.users:
        if is_mul(user):
            if any(_computed(a) for a in _operands(user, node)):
                return user
        elif main_input(user) is node and (is_reshape(user, modules) or (
                user.op != "call_module" and call_name(user) in BROADCASTS)):
            found = _gated_product(user, modules)
            if found is not None:
                return found
    return None


def _continues(node: fx.Node, kinds: dict[fx.Node, LayerKind | None], act: Any, drop: Any,
               bn: Any) -> bool:
    kind = kinds[node]
    if kind is LayerKind.BATCHNORM:
        return bn is None
    if kind is LayerKind.ACTIVATION:
        return act is None
    if kind is LayerKind.DROPOUT:  # also before the activation (see ChainNodes.dropout_first)
        return drop is None
    return False


def _blocked(part: TracedPart, cur: fx.Node, user: fx.Node,
             kinds: dict[fx.Node, LayerKind | None],
             modules: dict[str, nn.Module]) -> tuple[fx.Node, str] | None:
    """The activation that ``cur`` reaches through ``user``, which a chain cannot hold, and why:
    a residual join, or another normalization. Such a chain is listed, and skipped."""
    join = _residual_join(user, kinds, modules)
    if join is not None:
        return join, (f"`{_name(part, user)}` sums the output of `{_name(part, cur)}` with "
                      f"another branch before the activation")
    if is_normalization(user, modules) and main_input(user) is cur:
        after = _through_identities(user, modules)
        if after is not None and kinds[after] is LayerKind.ACTIVATION:
            return after, (f"`{_name(part, user)}` ({describe(user, modules)}) normalizes the "
                           f"output of `{_name(part, cur)}` before the activation; a BatchNorm "
                           f"would be a second normalization")
    return None


def _through_identities(node: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The only user of ``node``, past any ``nn.Identity``; None where it has several."""
    while len(node.users) == 1:
        node = next(iter(node.users))
        if not is_identity(node, modules):
            return node
    return None


def _residual_join(user: fx.Node, kinds: dict[fx.Node, LayerKind | None],
                   modules: dict[str, nn.Module]) -> fx.Node | None:
    """The activation after ``user`` when ``user`` adds ``cur`` to other values: one residual
    add (ResNet's ``relu(bn(conv(x)) + x)``) or a sum of branches, through ``nn.Identity``
    (RepVGG's ``relu(se(dense + 1x1 + identity))``)."""
    if not is_add(user):
        return None
    node = user
    while len(node.users) == 1:
        after = next(iter(node.users))
        if kinds[after] is LayerKind.ACTIVATION:
            return after
        if not (is_add(after) or (is_identity(after, modules) and main_input(after) is node)):
            return None
        node = after
    return None


def _other_users(part: TracedPart, cur: fx.Node, users: list[fx.Node]) -> str:
    names = ", ".join(f"`{_name(part, u)}`" for u in users[:4])
    more = "" if len(users) <= 4 else f" and {len(users) - 4} more"
    if any(_inplace(u) and not u.users for u in users):
        return (f"the output of `{_name(part, cur)}` is changed in place and also used elsewhere "
                f"({names}{more})")
    return (f"the output of `{_name(part, cur)}` has {len(users)} users ({names}{more}); "
            f"moving BatchNorm here would change what the others see")


def _inplace(node: fx.Node) -> bool:
    name = str(node.target) if node.op == "call_method" else getattr(node.target, "__name__", "")
    return node.kwargs.get("inplace") is True or name.endswith("_")


def _name(part: TracedPart, node: fx.Node) -> str:
    if node.op == "call_module":
        return part.qualified(str(node.target))
    return part.qualified(node.name)


def _container(part: TracedPart, members: list[fx.Node], modules: dict[str, nn.Module],
               positions_of: dict[str, dict[str, int]]) -> str | None:
    """The qualified name of the plain nn.Sequential holding all members side by side, if any."""
    if any(n.op != "call_module" for n in members):
        return None
    parents = {str(n.target).rpartition(".")[0] for n in members}
    if len(parents) != 1:
        return None
    parent_name = parents.pop()
    parent = modules.get(parent_name)
    if type(parent).forward is not nn.Sequential.forward or not isinstance(parent, nn.Sequential):
        return None
    if parent_name:  # in place, the owner's own forward runs: it must not pick layers by position
        owner_name, _, attr = parent_name.rpartition(".")
        if attr in positionally_used(modules[owner_name]):
            return None
    index = positions_of.get(parent_name)
    if index is None:
        index = positions_of[parent_name] = _single_positions(parent)
    try:
        positions = sorted(index[str(n.target).rpartition(".")[2]] for n in members)
    except KeyError:
        return None
    if positions[-1] - positions[0] != len(positions) - 1:
        return None
    return part.qualified(parent_name) if parent_name else (part.prefix or "")


def _single_positions(seq: nn.Sequential) -> dict[str, int]:
    """Child key -> position, for the children that sit at one position only.

    One module object at two positions (``act = nn.ReLU()`` passed twice to ``nn.Sequential``)
    is named after the first by fx, whichever call a node stands for: its position says nothing
    about where the chain lies, so a chain holding it is not rewritten in place.
    """
    count = Counter(id(m) for m in seq._modules.values())
    return {key: i for i, (key, m) in enumerate(seq._modules.items()) if count[id(m)] == 1}
