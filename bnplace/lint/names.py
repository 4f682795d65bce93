"""Which layer a callee names, resolved through the file's imports.

libcst's scope analysis (``ScopeProvider``, asked per callee as ``QualifiedNameProvider`` would, but
only for the callees the linter looks at) turns ``nn.Linear`` (after ``import torch.nn as nn``) into
``torch.nn.Linear`` and ``BN`` (after ``from torch.nn import BatchNorm1d as BN``) into
``torch.nn.BatchNorm1d``. What it cannot see is filled in here: names from ``from keras.layers
import *``, and names with no import at all (snippets, notebooks importing through ``from utils
import *``), which are looked up in the name table as they are written.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

import libcst as cst
from libcst.metadata import QualifiedName, QualifiedNameSource, Scope

from bnplace.lint.bindings import Bindings
from bnplace.placement import (LayerKind, kind_of_keras_activation, kind_of_keras_layer,
                               kind_of_torch_function, kind_of_torch_module)

# How unimported prefixes are usually meant (a snippet that says ``nn.Linear`` means torch.nn).
_CONVENTIONAL_ALIASES = {"torch": "torch", "nn": "torch.nn", "F": "torch.nn.functional",
                         "tf": "tensorflow", "layers": "keras.layers"}
# ``functools.partial`` as written after ``import functools`` or ``from functools import partial``.
_PARTIAL = frozenset({"functools.partial", "partial"})
# Batch norms of other torch libraries, by full dotted name. PyG's ``BatchNorm`` is
# ``torch.nn.BatchNorm1d`` over the nodes of a batch of graphs: the same running statistics, so
# the same mistakes. Its other norms (``LayerNorm``, ``GraphNorm``, ``InstanceNorm``, ``PairNorm``)
# are not batch norms, and ``HeteroBatchNorm`` is left unread.
OTHER_TORCH_BATCHNORMS = frozenset({"torch_geometric.nn.BatchNorm",
                                    "torch_geometric.nn.norm.BatchNorm",
                                    "torch_geometric.nn.norm.batch_norm.BatchNorm"})
# A class named through more names than this (``A = B``, ``B = partial(A)``...) is left unknown.
_MAX_DEPTH = 16
# TensorFlow's own namespaces of functions on tensors (``tf.nn.softmax``, ``tf.math.tanh``,
# ``tf.sigmoid``); Keras' are any lowercase name of a Keras package (``keras.activations.relu``,
# ``keras.ops.softmax``).
_TF_FUNCTION_PACKAGES = (["tensorflow"], ["tensorflow", "nn"], ["tensorflow", "math"])


@dataclass(frozen=True)
class LayerType:
    """A library layer named by a callee: ``framework`` is "torch" or "keras"."""

    framework: str
    name: str
    kind: LayerKind | None
    is_function: bool = False  # a torch function (``F.relu``) applied to a tensor directly


@dataclass(frozen=True)
class LayerClass:
    """What a name bound to a layer class holds (``norm_layer = nn.BatchNorm2d``), or to a
    ``functools.partial`` of one with the keyword arguments it presets
    (``partial(nn.Conv2d, bias=False)``): calling the name builds that layer."""

    layer_type: LayerType
    preset: tuple[cst.Arg, ...] = ()
    replaceable: bool = False  # a parameter's default: a caller may pass another class

    def arguments(self, call: cst.Call) -> cst.Call:
        """The call with the preset keywords after its own: the call's keywords win, as they
        do in ``partial``."""
        return call.with_changes(args=(*call.args, *self.preset)) if self.preset else call


def dotted_text(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, None for anything else."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted_text(node.value)
        return None if head is None else f"{head}.{node.attr.value}"
    return None


def string_literal(node: cst.BaseExpression | None) -> str | None:
    """The text of a plain string literal."""
    if isinstance(node, cst.SimpleString) and isinstance(node.evaluated_value, str):
        return node.evaluated_value
    return None


def _is_keras(package: list[str]) -> bool:
    return "keras" in package


def _is_class(name: str) -> bool:
    return name[:1].isupper()


def _is_torch(package: list[str]) -> bool:
    return bool(package) and package[0] == "torch"


def _library(dotted: str) -> str | None:
    """Which library's layers a dotted name may be: "torch", "keras" or None (another). A name
    imported from two libraries (one in a ``try``, one in its ``except``) may be either, and the
    other's layers may not work the same (``paddle.nn.Linear`` has no ``bias``): it is unknown."""
    package = dotted.split(".")[:-1]
    if _is_torch(package) or dotted in OTHER_TORCH_BATCHNORMS:
        return "torch"
    return "keras" if _is_keras(package) else None


class NameResolver:
    """Resolves callees of one module to library layer types."""

    def __init__(self, module: cst.Module, code: str,
                 scopes: Mapping[cst.CSTNode, Scope | None], bindings: Bindings) -> None:
        """``code`` is the module's source."""
        self._scopes = scopes
        self._bindings = bindings
        self._star_modules = _star_imported_modules(module)
        self.default_framework = "torch" if re.search(r"^\s*(import|from)\s+torch\b", code,
                                                      re.MULTILINE) else "keras"
        # callees are asked about several times (a Sequential? a ModuleDict? a layer class?)
        self._dotted_by_node: dict[cst.BaseExpression, str | None] = {}

    def _qualified_names(self, node: cst.BaseExpression) -> Collection[QualifiedName]:
        scope = self._scopes.get(node)
        return scope.get_qualified_names_for(node) if scope is not None else ()

    def dotted(self, node: cst.BaseExpression) -> str | None:
        """The full dotted name a callee refers to, or None when it is defined in this file.

        Only a name is looked up: libcst also qualifies a call by its callee, but the callee
        ``Dropout(0.5)`` in ``Dropout(0.5)(x)`` is a layer instance, not the class."""
        if node not in self._dotted_by_node:
            self._dotted_by_node[node] = self._resolve(node)
        return self._dotted_by_node[node]

    def _resolve(self, node: cst.BaseExpression) -> str | None:
        text = dotted_text(node)
        if text is None:
            return None
        qualified = self._qualified_names(node)
        imported = sorted(q.name for q in qualified if q.source is QualifiedNameSource.IMPORT)
        if imported:  # several: ``try: import torch.nn as nn`` / ``except: import paddle.nn as nn``
            return imported[0] if len(set(map(_library, imported))) == 1 else None
        if qualified:
            return None  # a local class/function or a builtin: not a library layer
        head, _, rest = text.partition(".")
        if not rest:
            return f"{self._star_modules[0]}.{text}" if self._star_modules else text
        if head in _CONVENTIONAL_ALIASES:
            return f"{_CONVENTIONAL_ALIASES[head]}.{rest}"
        return text

    def is_imported(self, node: cst.BaseExpression) -> bool:
        """Whether a name refers to an imported module or object (``F``, ``np``), not a local."""
        qualified = self._qualified_names(node)
        if qualified:
            return any(q.source is QualifiedNameSource.IMPORT for q in qualified)
        text = dotted_text(node)
        return text is not None and text.partition(".")[0] in _CONVENTIONAL_ALIASES

    def layer_type(self, node: cst.BaseExpression) -> LayerType | None:
        """The layer type a callee names; ``kind`` None for a library layer with no chain role."""
        dotted = self.dotted(node)
        if dotted is None:
            return None
        *package, name = dotted.split(".")
        if dotted in OTHER_TORCH_BATCHNORMS:
            return LayerType("torch", name, LayerKind.BATCHNORM)
        if _is_torch(package):
            if "functional" in package or package == ["torch"]:
                kind = kind_of_torch_function(name)
                return LayerType("torch", name, kind, is_function=True) if kind else None
            return LayerType("torch", name, kind_of_torch_module(name)) if _is_class(name) else None
        if _is_keras(package) or package in _TF_FUNCTION_PACKAGES:
            return self._keras_layer_type(package, name)
        if package:
            return None
        return self._bare_layer_type(name)

    @staticmethod
    def _keras_layer_type(package: list[str], name: str) -> LayerType | None:
        """A Keras layer class, or a Keras or TensorFlow function applied to a tensor."""
        if _is_class(name):
            return LayerType("keras", name, kind_of_keras_layer(name)) if _is_keras(package) \
                else None
        kind = kind_of_keras_activation(name)  # a function is spelled as its activation= string
        return LayerType("keras", name, kind, is_function=True) if kind else None

    def layer_class(self, node: cst.BaseExpression, depth: int = 0) -> LayerClass | None:
        """The layer class a value names: ``nn.BatchNorm2d``, ``functools.partial`` of one
        with keyword arguments only (a preset positional argument would shift the call's), or a
        name of this file bound once to one of these (``NORM = partial(nn.BatchNorm2d)`` at the
        top of the module, ``self.norm_layer``, a parameter's default)."""
        if depth > _MAX_DEPTH:
            return None
        if isinstance(node, cst.Call) and self.dotted(node.func) in _PARTIAL and node.args:
            first, *preset = node.args
            if first.keyword is not None or first.star or any(arg.keyword is None
                                                              for arg in preset):
                return None
            found = self.layer_class(first.value, depth + 1)
            return None if found is None else replace(found, preset=(*preset, *found.preset))
        if dotted_text(node) is None:
            return None
        if self.dotted(node) is None:
            return self._bound_class(node, depth)
        layer_type = self.layer_type(node)
        if layer_type is None or layer_type.is_function:
            return None
        return LayerClass(layer_type)

    def _bound_class(self, node: cst.BaseExpression, depth: int) -> LayerClass | None:
        """The layer class a name of this file is bound to, once."""
        defined = self._bindings.defined_class(node)
        if defined is not None:
            return self._batchnorm_subclass(defined, depth)
        assigned = self._bindings.assigned(node)
        if assigned is not None:
            return self.layer_class(assigned, depth + 1)
        default = self._bindings.default(node)
        found = None if default is None else self.layer_class(default, depth + 1)
        return None if found is None else replace(found, replaceable=True)

    def _batchnorm_subclass(self, defined: cst.ClassDef, depth: int) -> LayerClass | None:
        """A class of this file with one base, a BatchNorm (``class ParallelBatchNorm1d(
        nn.BatchNorm1d)``), is a BatchNorm under its own name: whatever it adds, it normalises
        with batch statistics. A subclass of another layer stays unknown: it may change what
        its arguments mean (a conv's bias)."""
        bases = [base.value for base in defined.bases if base.keyword is None]
        found = self.layer_class(bases[0], depth + 1) if len(bases) == 1 else None
        if found is None or found.layer_type.kind is not LayerKind.BATCHNORM:
            return None
        own = replace(found.layer_type, name=defined.name.value)
        return LayerClass(own, replaceable=found.replaceable)

    def is_sequential(self, node: cst.BaseExpression) -> bool:
        """``nn.Sequential``, ``keras.Sequential``, ``keras.models.Sequential``, ``Sequential``."""
        return self._names_container(node, "Sequential", keras=True)

    def is_module_dict(self, node: cst.BaseExpression) -> bool:
        """``nn.ModuleDict``, ``torch.nn.ModuleDict``, ``ModuleDict``."""
        return self._names_container(node, "ModuleDict", keras=False)

    def is_module_list(self, node: cst.BaseExpression) -> bool:
        """``nn.ModuleList``, ``torch.nn.ModuleList``, ``ModuleList``."""
        return self._names_container(node, "ModuleList", keras=False)

    def _names_container(self, node: cst.BaseExpression, name: str, keras: bool) -> bool:
        """Whether a callee is the library container class ``name`` (a bare name counts)."""
        dotted = self.dotted(node)
        if dotted is None:
            return False
        *package, last = dotted.split(".")
        return last == name and (not package or _is_torch(package)
                                 or (keras and _is_keras(package)))

    def _bare_layer_type(self, name: str) -> LayerType | None:
        keras_kind, torch_kind = kind_of_keras_layer(name), kind_of_torch_module(name)
        if keras_kind and torch_kind:
            framework = self.default_framework
        elif keras_kind or torch_kind:
            framework = "keras" if keras_kind else "torch"
        else:
            return None
        return LayerType(framework, name, keras_kind if framework == "keras" else torch_kind)


def _star_imported_modules(module: cst.Module) -> list[str]:
    """Keras/torch modules imported with ``from M import *`` at the top level."""
    found = []
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.ImportFrom) and isinstance(small.names, cst.ImportStar):
                name = dotted_text(small.module) if small.module else None
                package = name.split(".") if name else []
                if _is_keras(package) or _is_torch(package):
                    found.append(name)
    return found
