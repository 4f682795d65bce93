"""Which chain role an fx node plays: :mod:`bnplace.placement`'s name table resolved on torch."""

from __future__ import annotations

import functools
import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from bnplace.graph.frozen import is_frozen_batchnorm
from bnplace.graph.tracing import module_types
from bnplace.placement import LAYER_NAMES, LayerKind, activation_function

CHAIN_KINDS = (LayerKind.LINEAR, LayerKind.ACTIVATION, LayerKind.DROPOUT, LayerKind.BATCHNORM)


@functools.lru_cache(maxsize=None)
def function_kinds() -> dict[object, LayerKind]:
    """torch callables (``F.relu``, ``torch.relu``, ``torch._C._nn.gelu``...) -> their kind."""
    table: dict[object, LayerKind] = {}
    spaces = (F, torch, torch._C._nn, torch.special)
    for kind in CHAIN_KINDS:
        for name in LAYER_NAMES[kind].torch_functions:
            for space in spaces:
                fn = getattr(space, name, None)
                if callable(fn):
                    table.setdefault(fn, kind)
    return table


@functools.lru_cache(maxsize=None)
def method_kinds() -> dict[str, LayerKind]:
    """Tensor method names (``x.relu()``, ``x.sigmoid_()``...) -> their kind."""
    table: dict[str, LayerKind] = {}
    for kind in (LayerKind.ACTIVATION, LayerKind.DROPOUT):
        for name in LAYER_NAMES[kind].torch_functions:
            if hasattr(torch.Tensor, name):
                table[name] = kind
    return table


ADD_FUNCTIONS = (operator.add, operator.iadd, torch.add)
MUL_FUNCTIONS = (operator.mul, operator.imul, torch.mul)
ADD_METHODS = ("add", "add_")
MUL_METHODS = ("mul", "mul_")
# every elementwise arithmetic call (``2 * x``, ``(x + 1) / 2``, ``-x``, ``x.sub(1)``)
_ARITHMETIC_FUNCTIONS = (*ADD_FUNCTIONS, *MUL_FUNCTIONS, operator.sub, operator.isub,
                         operator.truediv, operator.itruediv, operator.neg, torch.sub, torch.div,
                         torch.true_divide, torch.neg)
_ARITHMETIC_METHODS = (*ADD_METHODS, *MUL_METHODS, "sub", "sub_", "div", "div_", "true_divide",
                       "true_divide_", "neg", "neg_")
_MAX_POOL_MODULES = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)
_MAX_POOL_FUNCTIONS = (F.max_pool1d, F.max_pool2d, F.max_pool3d, F.adaptive_max_pool1d,
                       F.adaptive_max_pool2d, F.adaptive_max_pool3d)
_AVG_POOL_MODULES = (nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd)
_ADAPTIVE_AVG_FUNCTIONS = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)
_AVG_POOL_FUNCTIONS = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)
# normalizations other than BatchNorm, which a chain never holds
_NORM_MODULES = tuple(getattr(nn, name) for name in ("LayerNorm", "GroupNorm", "RMSNorm",
                                                     "LocalResponseNorm") if hasattr(nn, name)
                      ) + (nn.modules.instancenorm._InstanceNorm,)
_NORM_FUNCTIONS = tuple(getattr(F, name) for name in ("layer_norm", "group_norm", "rms_norm",
                                                      "instance_norm", "local_response_norm")
                        if hasattr(F, name))


def module_kind(module: nn.Module) -> LayerKind | None:
    """The chain role of a module instance (subclasses included; a frozen BN is a BatchNorm)."""
    if is_frozen_batchnorm(module):
        return LayerKind.BATCHNORM
    for kind in (LayerKind.BATCHNORM, LayerKind.LINEAR, LayerKind.ACTIVATION, LayerKind.DROPOUT):
        if isinstance(module, module_types(kind)):
            return kind
    return None


def overrides_forward(module: nn.Module) -> bool:
    """True when ``module``'s class computes its output its own way (timm's ``Conv2dSame`` pads,
    ``StdConv2d`` standardizes its weight): merging a bias or a BN into its weight is then not
    known to be exact."""
    cls = type(module)
    base = next(c for c in cls.__mro__ if c.__module__.startswith("torch.nn."))
    return any(getattr(cls, name, None) is not getattr(base, name, None)
               for name in ("forward", "_conv_forward"))


def node_kind(node: fx.Node, modules: dict[str, nn.Module]) -> LayerKind | None:
    """The chain role of an fx node, or None."""
    if node.op == "call_module":
        module = modules.get(node.target)  # type: ignore[arg-type]
        return module_kind(module) if module is not None else None
    if clamp_activation(node) is not None:
        return LayerKind.ACTIVATION
    if node.op == "call_function":
        try:
            return function_kinds().get(node.target)
        except TypeError:  # unhashable target
            return None
    if node.op == "call_method":
        return method_kinds().get(node.target)  # type: ignore[arg-type]
    return None


_CLAMPS_FROM_BELOW = ("clamp", "clamp_", "clip", "clip_", "clamp_min", "clamp_min_")


def clamp_activation(node: fx.Node) -> str | None:
    """``relu`` for a clamp at 0 from below (``x.clamp(min=0)``, the ReLU of the PyTorch
    tutorial's ``TwoLayerNet``), ``relu6`` for one to ``[0, 6]``; None for any other clamp, which
    bounds a value (SAC's ``log_std.clamp(-20, 2)``) rather than activates it."""
    if node.op not in ("call_function", "call_method") \
            or call_name(node) not in _CLAMPS_FROM_BELOW:
        return None
    if node.op == "call_function" and getattr(torch, call_name(node), None) is not node.target:
        return None
    bounds = (*node.args[1:], None, None)
    low = node.kwargs.get("min", bounds[0])
    high = None if call_name(node).startswith("clamp_min") else node.kwargs.get("max", bounds[1])
    if not isinstance(low, (int, float)) or low != 0:
        return None
    if high is None:
        return "relu"
    return "relu6" if isinstance(high, (int, float)) and high == 6 else None


def call_name(node: fx.Node) -> str:
    """The name a call node calls: a method name, or a function's ``__name__`` (``relu``)."""
    if node.op == "call_method":
        return str(node.target)
    return getattr(node.target, "__name__", str(node.target))


def activation_of(node: fx.Node, modules: dict[str, nn.Module]) -> str | None:
    """What an activation node applies, as its key in ``placement.ACTIVATIONS`` (``sigmoid`` for
    ``nn.Sigmoid()``, ``torch.sigmoid``, ``x.sigmoid_()``); None for anything else."""
    if node.op == "call_module":
        module = modules.get(str(node.target))
        return activation_function(type(module).__name__) if module is not None else None
    return activation_function(call_name(node)) or clamp_activation(node)


def main_input(node: fx.Node) -> object:
    """The tensor a layer node transforms: its first argument (or ``input=``)."""
    if node.args:
        return node.args[0]
    return node.kwargs.get("input", node.kwargs.get("self"))


_METADATA_ATTRIBUTES = ("shape", "ndim", "dtype", "device")
_METADATA_METHODS = ("size", "dim", "ndimension", "numel")
_SHAPE_TEMPLATES = ("view_as", "reshape_as", "expand_as", "type_as")


def _reads_shape_only(user: fx.Node, node: fx.Node) -> bool:
    """Does ``user`` read only ``node``'s shape or type (``x.shape``, ``x.size(0)``, LeViT's
    ``bn(x.flatten(0, 1)).reshape_as(x)``)? A BatchNorm moved or merged next to ``node`` keeps
    both, so such a use is no other user of its values."""
    if user.op == "call_function" and user.target is getattr:
        return user.args[1] in _METADATA_ATTRIBUTES
    if user.op != "call_method":
        return False
    if user.target in _METADATA_METHODS:
        return True
    return user.target in _SHAPE_TEMPLATES and main_input(user) is not node


def value_users(node: fx.Node) -> list[fx.Node]:
    """The users of ``node`` that read its values, not only its shape."""
    return [u for u in node.users if not _reads_shape_only(u, node)]


def with_main_input(args: tuple, kwargs: dict, value: fx.Node) -> tuple[tuple, dict]:
    """A layer call's args and kwargs with its main input replaced by ``value``."""
    if args:
        return (value, *args[1:]), dict(kwargs)
    kwargs = dict(kwargs)
    kwargs["input" if "input" in kwargs else "self"] = value
    return (), kwargs


def is_add(node: fx.Node) -> bool:
    if node.op == "call_function":
        return node.target in ADD_FUNCTIONS
    return node.op == "call_method" and node.target in ADD_METHODS


def is_mul(node: fx.Node) -> bool:
    if node.op == "call_function":
        return node.target in MUL_FUNCTIONS
    return node.op == "call_method" and node.target in MUL_METHODS


def is_arithmetic(node: fx.Node) -> bool:
    """An elementwise add, subtract, multiply, divide or negate, as an operator, a torch function
    or a Tensor method."""
    if node.op == "call_function":
        return node.target in _ARITHMETIC_FUNCTIONS
    return node.op == "call_method" and node.target in _ARITHMETIC_METHODS


def describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """A short label for a node: ``Linear``, ``F.relu``, ``Tensor.relu_``..."""
    if node.op == "call_module":
        module = modules.get(node.target)  # type: ignore[arg-type]
        return type(module).__name__ if module is not None else str(node.target)
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    name = getattr(target, "__name__", str(target))
    if getattr(F, name, None) is target:
        return f"F.{name}"
    if getattr(torch, name, None) is target:
        return f"torch.{name}"
    return name


def is_reshape(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """A node that only rearranges values (``x.view(-1)``, ``squeeze``, ``nn.Flatten``...), as
    the name table's RESHAPE kind spells them."""
    names = LAYER_NAMES[LayerKind.RESHAPE]
    if node.op == "call_module":
        return type(modules[str(node.target)]).__name__ in names.torch_modules
    return node.op in ("call_function", "call_method") and call_name(node) in names.torch_functions


_AXIS_MOVES = ("transpose", "transpose_", "t", "swapaxes", "movedim", "moveaxis")


def rearranges(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """A reshape (:func:`is_reshape`) or a transpose: values stay, axes move. Not nn.Identity."""
    if is_identity(node, modules):
        return False
    return is_reshape(node, modules) or (node.op in ("call_function", "call_method")
                                         and call_name(node) in _AXIS_MOVES)


def is_identity(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    return node.op == "call_module" and isinstance(modules[str(node.target)], nn.Identity)


def is_normalization(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """A LayerNorm, GroupNorm, InstanceNorm, RMSNorm or LocalResponseNorm, module or function."""
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], _NORM_MODULES)
    return node.op == "call_function" and node.target in _NORM_FUNCTIONS


def is_average_pool(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """An average-pooling module, or an adaptive one called functionally (no padding options)."""
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], _AVG_POOL_MODULES)
    return node.op == "call_function" and node.target in _ADAPTIVE_AVG_FUNCTIONS


def is_max_pool(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """A max-pooling module or function that returns only the pooled values."""
    if node.op == "call_module":
        m = modules[str(node.target)]
        return isinstance(m, _MAX_POOL_MODULES) and not m.return_indices
    if node.op == "call_function" and node.target in _MAX_POOL_FUNCTIONS:
        return_indices = node.args[6] if len(node.args) > 6 else node.kwargs.get("return_indices")
        return not return_indices
    return False


def is_pooling(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """Any max or average pooling, functional ``F.avg_pool*d`` included."""
    return (is_max_pool(node, modules) or is_average_pool(node, modules)
            or (node.op == "call_function" and node.target in _AVG_POOL_FUNCTIONS))
