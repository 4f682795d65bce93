"""Activations written out as ``x * g(x)``: Swish (``x * torch.sigmoid(x)``), MobileNetV3's
``h_swish`` (``x * F.relu6(x + 3) / 6``), Mish (``x * torch.tanh(F.softplus(x))``).

Published code defines these as small modules (EfficientNet-PyTorch's ``Swish``, the MobileNetV3
reimplementations' ``h_swish``) that fx traces into. Their input then has two users, the gate
``g(x)`` and the product, so a chain walk would see no activation at all (or take the gate's
sigmoid for one). :func:`self_gated` finds the product, which is then the chain's activation.
"""

from __future__ import annotations

from torch import fx, nn

from bnplace.graph.kinds import activation_of, call_name, is_arithmetic, is_mul, node_kind
from bnplace.placement import LayerKind

_CLAMPS = ("hardtanh", "hardtanh_", "clamp", "clamp_", "clip")
# what makes g(x) a gate in the published forms: a sigmoid, a hard one written out with a clamp
# (``relu6(x + 3) / 6``), or Mish's ``tanh(softplus(x))``; ``x * tanh(x)`` is no known activation
_GATES = ("sigmoid", "hardsigmoid", "relu6", "softplus")


def self_gated(node: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The node giving ``x * g(x)`` (with any constant scaling after it) for ``x = node``, when
    ``g`` is elementwise and every use of ``node`` lies inside; else None."""
    for product in node.users:
        if not is_mul(product) or node not in product.args[:2]:
            continue
        gate = [a for a in product.args[:2] if a is not node]
        if len(gate) != 1 or not isinstance(gate[0], fx.Node):
            continue
        first = _gate_start(gate[0], node, product, modules)
        if first is not None and set(node.users) == {product, first}:
            return _scaled(product)
    return None


def _gate_start(gate: fx.Node, x: fx.Node, product: fx.Node,
                modules: dict[str, nn.Module]) -> fx.Node | None:
    """The first node of ``g``: walking back from ``gate`` through elementwise nodes that each
    feed only the next one, the node that reads ``x``, when one of them gates (``_GATES``)."""
    cur, after, gates = gate, product, False
    while set(cur.users) == {after} and _elementwise(cur, modules):
        gates = gates or activation_of(cur, modules) in _GATES or _clamps(cur)
        source = _tensor_argument(cur)
        if source is x:
            return cur if gates else None
        if source is None:
            return None
        cur, after = source, cur
    return None


def _elementwise(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    return node_kind(node, modules) is LayerKind.ACTIVATION or is_arithmetic(node) \
        or _clamps(node)


def _clamps(node: fx.Node) -> bool:
    return node.op in ("call_function", "call_method") and call_name(node) in _CLAMPS


def _tensor_argument(node: fx.Node) -> fx.Node | None:
    """The one computed tensor ``node`` reads (``x`` in ``x + 3``, ``3 + x``), or None."""
    tensors = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, fx.Node)]
    return tensors[0] if len(tensors) == 1 else None


def _scaled(product: fx.Node) -> fx.Node:
    """``product``, or the last of the arithmetic with constants that follows it (``... / 6``)."""
    cur = product
    while len(cur.users) == 1:
        user = next(iter(cur.users))
        if not is_arithmetic(user) or _tensor_argument(user) is not cur:
            break
        cur = user
    return cur
