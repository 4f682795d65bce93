"""A layer constructor call (``Dense(64, activation='relu')``, ``nn.Linear(64, 10, bias=False)``)
read into a neutral :class:`~bnplace.lint.layers.Layer`: bias, width, dimensionality, activation.

Bias switches and activations are read when written as literals, widths when they are constants
(:mod:`bnplace.lint.constants`); anything else leaves the field unknown (None).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import libcst as cst

from bnplace.lint.layers import Layer, Location
from bnplace.lint.names import LayerType, dotted_text, string_literal
from bnplace.placement import (KERAS_IDENTITY_ACTIVATIONS, LayerKind, activation_function,
                               kind_of_keras_activation)

# Where the output width sits: (position, keyword) for each constructor family.
_TORCH_WIDTH = {"Linear": (1, "out_features"), "LazyLinear": (0, "out_features"),
                "Conv": (1, "out_channels"), "LazyConv": (0, "out_channels"),
                "ConvTranspose": (1, "out_channels"), "LazyConvTranspose": (0, "out_channels"),
                "BatchNorm": (0, "num_features"), "SyncBatchNorm": (0, "num_features")}
_KERAS_WIDTH = {"Dense": (0, "units"), "Conv": (0, "filters"), "SeparableConv": (0, "filters"),
                "Convolution": (0, "filters"), "SeparableConvolution": (0, "filters"),
                "ConvTranspose": (0, "filters"), "ConvolutionTranspose": (0, "filters")}
# Where the bias switch sits when passed by position (``nn.Linear(64, 10, False)``,
# ``Dense(64, 'relu', False)``); a Keras conv's positional order changed between versions, so
# only its keywords are read.
_TORCH_BIAS_POSITION = {"Linear": 2, "LazyLinear": 1, "Conv": 7, "LazyConv": 6,
                        "ConvTranspose": 7, "LazyConvTranspose": 6}
_KERAS_ACTIVATION_POSITION = {"Dense": 1}
_KERAS_BIAS_POSITION = {"Dense": 2}
# The earliest position any Keras version gives a conv's activation (DepthwiseConv2D's, and
# Conv2D's before ``groups`` came in ahead of it): a positional argument from here on may be it
# or the bias switch after it.
_KERAS_UNORDERED_FROM = 6

# The earliest position any Keras conv takes ``data_format`` at (``Conv2D``'s fifth argument; a
# transposed conv's sixth, after ``output_padding``).
_KERAS_DATA_FORMAT_FROM = 4

# What a width argument is worth: an int when it is a constant, None when unknown.
IntValue = Callable[[cst.BaseExpression | None], int | None]


def bias_parameter(framework: str, name: str) -> tuple[int | None, str]:
    """(position, keyword) of a linear layer's bias switch."""
    if framework == "keras":
        return _KERAS_BIAS_POSITION.get(_family(name)), "use_bias"
    return _TORCH_BIAS_POSITION.get(_family(name)), "bias"


def argument(call: cst.Call, position: int | None, keyword: str) -> cst.BaseExpression | None:
    """The expression passed for a parameter, by keyword or by position (positions after a
    ``*args`` are unknown)."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = []
    for arg in call.args:
        if arg.star == "*":
            break
        if arg.keyword is None and not arg.star:
            positional.append(arg)
    if position is not None and position < len(positional):
        return positional[position].value
    return None


def may_be_unpacked(call: cst.Call, position: int | None) -> bool:
    """Whether ``**kwargs`` (or ``*args``, for a parameter that has a position) may pass a
    parameter the call does not spell out."""
    return any(arg.star == "**" or (arg.star == "*" and position is not None)
               for arg in call.args)


def _has_bias(call: cst.Call, framework: str, name: str) -> bool | None:
    """True when the bias is on (the default), False when switched off (``False``, ``None``,
    ``0``: the constructors test its truth), None when computed or maybe unpacked."""
    position, keyword = bias_parameter(framework, name)
    node = argument(call, position, keyword)
    if node is None:
        return None if may_be_unpacked(call, position) else True
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return node.value == "True"
    if isinstance(node, cst.Integer):
        return bool(node.evaluated_value)
    return None


def _family(name: str) -> str:
    """``Conv2d`` -> ``Conv``, ``LazyBatchNorm1d`` -> ``LazyBatchNorm``, ``Dense`` -> ``Dense``,
    ``ConvTranspose2d`` and Keras' ``Conv2DTranspose`` -> ``ConvTranspose``."""
    return re.sub(r"\d[dD](Transpose)?$", r"\1", name)


def _dims(name: str) -> int | None:
    if name in ("Linear", "LazyLinear"):
        return 1
    match = re.search(r"(\d)[dD](Transpose)?$", name)
    return int(match.group(1)) if match else None


def _keras_activation_name(node: cst.BaseExpression | None) -> str | None:
    """The activation an ``activation=`` argument names: a string, or a function such as
    ``tf.nn.relu``."""
    if isinstance(node, cst.SimpleString):
        return str(node.evaluated_value)
    text = dotted_text(node) if node is not None else None
    return None if text is None or text == "None" else text.rsplit(".", 1)[-1]


def _keras_activation(node: cst.BaseExpression | None) -> LayerKind | None:
    """What ``activation=`` means: an activation, an output, or nothing (none given, ``None``,
    ``'linear'``). One the linter cannot name (a parameter, ``LeakyReLU(0.2)``, a string it does
    not know) may be any activation, so the layer counts as having one: its bias may matter."""
    if node is None or isinstance(node, cst.Name) and node.value == "None":
        return None
    name = _keras_activation_name(node)
    if name in KERAS_IDENTITY_ACTIVATIONS:
        return None
    return (kind_of_keras_activation(name) if name is not None else None) or LayerKind.ACTIVATION


def _keras_activation_layer(call: cst.Call) -> tuple[LayerKind, str | None]:
    """The kind and function of ``Activation(...)``: ``Activation('relu')`` is an activation,
    ``Activation('softmax')`` an output, ``Activation('linear')`` a no-op that chains look
    through."""
    name = _keras_activation_name(argument(call, 0, "activation"))
    if name is None:
        return LayerKind.ACTIVATION, None
    if name in KERAS_IDENTITY_ACTIVATIONS:
        return LayerKind.RESHAPE, None
    return kind_of_keras_activation(name) or LayerKind.ACTIVATION, activation_function(name)


def _torch_fields(call: cst.Call, name: str, kind: LayerKind | None, int_value: IntValue
                  ) -> dict:
    width = _TORCH_WIDTH.get(_family(name))
    fields = {"dims": _dims(name.replace("Lazy", "")),
              "width": int_value(argument(call, *width)) if width else None}
    if kind is LayerKind.LINEAR:
        fields["has_bias"] = _has_bias(call, "torch", name)
    return fields


def _keras_fields(call: cst.Call, name: str, int_value: IntValue) -> dict:
    width = _KERAS_WIDTH.get(_family(name))
    activation = argument(call, _KERAS_ACTIVATION_POSITION.get(_family(name)), "activation")
    return {"width": int_value(argument(call, *width)) if width else None,
            "axes": _keras_unit_axes(call, name),
            "has_bias": (None if _maybe_positional(call, name, "use_bias")
                         else _has_bias(call, "keras", name)),
            "activation": (LayerKind.ACTIVATION if _maybe_positional(call, name, "activation")
                           else _keras_activation(activation))}


def _keras_unit_axes(call: cst.Call, name: str) -> frozenset[int] | None:
    """The axis a Keras linear layer's units lie on, in both spellings for a conv (its rank is
    known): the last (``channels_last``, also the default: the usual ``image_data_format``) or
    the second (``channels_first``). A ``Dense`` acts on the last axis of any rank. None when
    ``data_format`` is computed or may be passed by position or ``**kwargs``."""
    dims = _dims(name)
    if dims is None:
        return frozenset({-1})
    node = argument(call, None, "data_format")
    positional = [arg for arg in call.args if arg.keyword is None]
    if node is None and (any(arg.star for arg in call.args)
                         or len(positional) > _KERAS_DATA_FORMAT_FROM):
        return None
    is_none = node is None or isinstance(node, cst.Name) and node.value == "None"
    layout = "channels_last" if is_none else string_literal(node)
    if layout == "channels_last":
        return frozenset({-1, dims + 1})
    return frozenset({1, -(dims + 1)}) if layout == "channels_first" else None


def _keras_batchnorm_axes(call: cst.Call, int_value: IntValue) -> frozenset[int] | None:
    """The axis a ``BatchNormalization`` normalises: ``axis=`` (the first argument), the last by
    default; None when it is computed, a list, or may be unpacked."""
    node = argument(call, 0, "axis")
    if node is None:
        return None if may_be_unpacked(call, 0) else frozenset({-1})
    axis = int_value(node)
    return None if axis is None else frozenset({axis})


def _maybe_positional(call: cst.Call, name: str, keyword: str) -> bool:
    """Whether a Keras layer whose positional order is not read (a conv's) may pass ``keyword``
    by position: not by keyword, and with as many positional arguments as come before it in
    some version (``Conv2D(32, 3, 1, "same", None, (1, 1), 1, "relu")``), or a ``*args``."""
    if _family(name) in _KERAS_BIAS_POSITION or argument(call, None, keyword) is not None:
        return False
    positional = [arg for arg in call.args if arg.keyword is None and arg.star != "**"]
    return any(arg.star == "*" for arg in positional) or len(positional) > _KERAS_UNORDERED_FROM


def read_layer(call: cst.Call, layer_type: LayerType, location: Location, definition: Location,
               movable: bool, int_value: IntValue, guarded: bool = False) -> Layer:
    """The neutral Layer for a constructor call whose callee resolved to ``layer_type``;
    ``int_value`` reads its width arguments."""
    name, kind = layer_type.name, layer_type.kind
    function = activation_function(name) if kind is LayerKind.ACTIVATION else None
    if layer_type.framework == "keras" and name == "Activation":
        kind, function = _keras_activation_layer(call)
    if layer_type.is_function:  # F.relu(x) and friends carry nothing the rules read
        fields = {}
    elif layer_type.framework == "torch":
        fields = _torch_fields(call, name, kind, int_value)
    elif kind is LayerKind.LINEAR:
        fields = _keras_fields(call, name, int_value)
    else:
        fields = {"axes": _keras_batchnorm_axes(call, int_value)} if kind is LayerKind.BATCHNORM \
            else {}
    return Layer(kind=kind, type_name=name, location=location, definition=definition,
                 framework=layer_type.framework, movable=movable, function=function,
                 guarded=guarded, **fields)
