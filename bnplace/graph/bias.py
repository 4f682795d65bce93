"""Drop a linear layer's bias where BatchNorm follows it directly (the bias is redundant there).

BatchNorm subtracts the mean of its input, so a bias right before it cancels out in training.
Dropping it exactly also needs the BN's ``running_mean`` shifted by the bias, so eval-mode outputs
(and every later running-mean update) stay the same: ``(x + b) - m  ==  x - (m - b)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import fx, nn

from bnplace.graph.channels import past_kept_channels
from bnplace.graph.copying import copy_module
from bnplace.graph.kinds import main_input, module_kind, overrides_forward, value_users
from bnplace.graph.tracing import Trace, trace
from bnplace.placement import LayerKind


def linear_batchnorm_pairs(traced: Trace) -> list[tuple[str, str]]:
    """(linear, batchnorm) qualified module names where the linear feeds only that BN, directly
    or through what keeps its channels as they are (TCN's chomp: see :mod:`.channels`).

    Both must be called exactly once, so changing them changes nothing else, and the linear
    layer must compute as its torch class does (a subclass's own forward may use its bias
    differently) and have a bias no forward reads.
    """
    pairs = []
    read = biases_read(traced)
    for part in traced.parts:
        modules = part.modules
        calls = Counter(n.target for n in part.graph.nodes if n.op == "call_module")
        for node in part.graph.nodes:
            if node.op != "call_module" or calls[node.target] != 1:
                continue
            linear = modules[node.target]
            if module_kind(linear) is not LayerKind.LINEAR or overrides_forward(linear):
                continue
            user = _reader(node, modules)
            if (user is not None and user.op == "call_module" and calls[user.target] == 1
                    and module_kind(modules[user.target]) is LayerKind.BATCHNORM
                    and part.qualified(str(node.target)) not in read):
                pairs.append((part.qualified(str(node.target)), part.qualified(str(user.target))))
    return pairs


def _reader(linear: fx.Node, modules: dict[str, nn.Module]) -> fx.Node | None:
    """The one node reading ``linear``'s output past what keeps its channels, or None."""
    end = past_kept_channels(linear, modules)
    users = value_users(end)
    if len(users) != 1:
        return None
    user = users[0]
    return user if main_input(user) is end else None


def biases_read(traced: Trace) -> set[str]:
    """Qualified names of the layers whose bias a forward reads itself (``self.fc.bias``):
    dropping it would break that code."""
    return {part.qualified(str(node.target).removesuffix(".bias"))
            for part in traced.parts for node in part.graph.nodes
            if node.op == "get_attr" and str(node.target).endswith(".bias")}


def move_bias_into_batchnorm(linear: nn.Module, bn: nn.Module) -> bool:
    """Remove ``linear``'s bias and shift ``bn.running_mean`` by it; True when one was dropped.

    A bias that is no plain parameter of the layer stays: one a pruning or weight-norm hook
    computes from ``bias_orig`` on every call, or a parametrized one, is recomputed (and is no
    ``_parameters`` entry to remove). So does the bias of a layer with forward hooks: they see
    its output, which would change by the bias.
    """
    bias = linear._parameters.get("bias")
    if bias is None or isinstance(bias, nn.parameter.UninitializedTensorMixin) \
            or linear._forward_hooks:
        return False
    running_mean = getattr(bn, "running_mean", None)
    if isinstance(running_mean, nn.parameter.UninitializedTensorMixin):
        return False
    if isinstance(running_mean, torch.Tensor) and running_mean.shape != bias.shape:
        return False
    with torch.no_grad():
        if isinstance(running_mean, torch.Tensor):
            running_mean.sub_(bias.detach().to(running_mean.dtype))
    linear.register_parameter("bias", None)
    return True


def drop_redundant_bias(model: nn.Module, example_inputs: Any = None, *,
                        leaf_modules: Iterable[type[nn.Module] | str] = (),
                        concrete_args: Mapping[str, Any] | None = None) -> nn.Module:
    """A copy of ``model`` where every linear layer feeding straight into BN has no bias.

    Outputs are unchanged in train and eval mode; ``model`` itself is untouched.
    ``example_inputs`` let a forward that reads shapes in Python be traced (see
    :func:`~bnplace.graph.trace`).
    """
    new = copy_module(model)
    traced = trace(new, leaf_modules=leaf_modules, concrete_args=concrete_args,
                   example_inputs=example_inputs)
    for linear_name, bn_name in linear_batchnorm_pairs(traced):
        move_bias_into_batchnorm(new.get_submodule(linear_name), new.get_submodule(bn_name))
    return new
