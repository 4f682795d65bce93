"""Nodes that keep every channel of a linear layer's output as it is: a chain, a bias drop and
a fold may look through them.

TCN's ``Chomp1d`` (``x[:, :, :-k].contiguous()``, Bai et al. 2018) cuts the padded steps off a
causal convolution's output. It keeps every channel, so a bias before it is still one constant
per channel, a per-channel scale commutes with it, and a BatchNorm placed after it (right
before the activation) normalizes the steps the rest of the model sees; one placed before it
would also count the steps it cuts.
"""

from __future__ import annotations

import operator

from torch import fx, nn

from bnplace.graph.kinds import call_name, is_identity, main_input

_ALL = slice(None)


def channels_first(linear: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Does ``linear`` (a chain's linear node) put its channels on axis 1, as a Conv does? A
    Linear puts them last, on an axis a slice cannot be told apart from without shapes."""
    if linear.op == "call_module":
        return isinstance(modules[str(linear.target)], nn.modules.conv._ConvNd)
    return call_name(linear) != "linear"


def keeps_channels(node: fx.Node, modules: dict[str, nn.Module], first: bool) -> bool:
    """``nn.Identity``, ``contiguous()``, and when the channels are on axis 1 (``first``) a slice
    of the axes after it (``x[:, :, :-k]``, ``x[..., :-k]``)."""
    if is_identity(node, modules):
        return True
    if node.op == "call_method" and node.target == "contiguous":
        return True
    return first and _slices_steps(node)


def past_kept_channels(linear: fx.Node, modules: dict[str, nn.Module]) -> fx.Node:
    """The last node reached from ``linear`` through nodes that keep its channels, each the one
    user of the one before (``linear`` itself when none follows)."""
    first = channels_first(linear, modules)
    node = linear
    while len(node.users) == 1:
        user = next(iter(node.users))
        if main_input(user) is not node or not keeps_channels(user, modules, first):
            break
        node = user
    return node


def _slices_steps(node: fx.Node) -> bool:
    if node.op != "call_function" or node.target is not operator.getitem or len(node.args) < 2:
        return False
    index = node.args[1]
    if not isinstance(index, tuple) or not all(isinstance(i, slice) for i in index[1:]):
        return False
    if index[0] is Ellipsis:  # on a batched Conv output the last axis is a spatial one
        return len(index) == 2
    return len(index) >= 2 and index[0] == _ALL and index[1] == _ALL
