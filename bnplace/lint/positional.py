"""Containers that the code refers to by position: --fix must not reorder their layers.

``bn = seq[1]``, ``model.layers[2].trainable = False``, ``model.pop()``, ``self.features[:4]``,
``enumerate(self.seq)``, ``getattr(self.seq, "1")``, ``self.seq._modules``, ``make()[1]``,
``sd["net.1.weight"]``: after a swap of two layers of ``seq`` these would name other layers.
Names are compared by their text over the whole file (a name indexed in one function pins a
container of that name in another; ``model.net[1]`` pins every ``*.net``): too cautious at
worst, never too bold. A name is also pinned where it reaches one that is: an alias
(``s = self.seq``, ``for s in [self.seq]:``), a copy, a class attribute read on ``self``, and an
argument given to a function of the file for a parameter it refers to by position
(``def init(s): s[1]...`` then ``init(self.seq)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import libcst as cst

from bnplace.lint.names import dotted_text, string_literal

# Views of a container that hold its layers in order (``model.layers``, ``seq._modules``).
_VIEW_ATTRIBUTES = frozenset({"layers", "_modules"})
_VIEW_METHODS = frozenset({"children", "named_children", "modules", "named_modules"})
# Functions that hand out a container's layers with their positions, or as an indexable copy.
_POSITIONAL_FUNCTIONS = frozenset({"enumerate", "zip", "list", "tuple", "iter", "next",
                                   "reversed", "islice"})
# Methods that take or give a layer by position (``model.pop()``, ``seq.insert(1, m)``).
_POSITIONAL_METHODS = frozenset({"pop", "insert", "index", "__getitem__", "__setitem__",
                                 "__delitem__"})
# Calls that reach a layer by its name, which is its position in a Sequential (``"1"``).
_BY_NAME_FUNCTIONS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
_BY_NAME_METHODS = frozenset({"get_submodule", "get_parameter", "get_buffer", "__getattr__",
                              "__setattr__", "__delattr__"})
# Methods whose keys or names are paths through the container, positions included ("1.weight").
_KEYED_METHODS = _BY_NAME_METHODS | {"state_dict", "named_parameters", "named_buffers",
                                     "named_modules", "named_children"}
# Calls whose result holds the layers of their first argument: a copy, or a dict by name.
_SAME_LAYERS = frozenset({"copy", "deepcopy", "dict", "OrderedDict"})
# Methods that add a module under a name (``self.add_module("head", m)`` binds ``self.head``).
_NAMING_METHODS = frozenset({"add_module", "register_module"})
# A dotted key that may hold positions: ``net.1.weight``, ``f"net.{i}.weight"``, ``"net.%d"``.
_KEY_PART = r"(?:[A-Za-z_]\w*|[0-9]+|\{\w*\}|%[dis])"
_KEY = re.compile(rf"{_KEY_PART}(?:\.{_KEY_PART})+")
# A layer's name that is a position: ``"1"``, ``"net.1"`` (``fuse_modules(seq, [["0", "1"]])``).
_POSITION = re.compile(r"(?:\w+\.)*[0-9]+(?:\.\w+)*")
# Loading a checkpoint: its keys name a Sequential's layers by position (``net.1.weight``).
_LOADS_BY_KEY = "load_state_dict"
# A Keras functional model: its ``layers`` are in data-flow order (``x = Dropout(.5)(x)``).
_FUNCTIONAL_MODEL = "Model"


@dataclass(frozen=True)
class PositionalUse:
    """What the code refers to by position. ``names``: containers by their text (``seq``,
    ``self.seq``, ``make()`` for what a function ``make`` returns); ``attributes``: attribute
    names (``net``: any ``x.net``); ``regions``: expressions whose containers are pinned though
    the statement walk reads them without a name (``self.blocks = nn.ModuleList([nn.Sequential(
    ...) for _ in range(3)])`` with ``self.blocks[0][1]``, a class attribute); ``everything``:
    every container whose layers are keyed by position (the file loads a checkpoint saved with
    the old keys: ``load_state_dict``); ``functional``: every Keras layer, a functional
    ``Model``'s layers being indexed (they are in data-flow order)."""

    names: frozenset[str]
    attributes: frozenset[str]
    regions: tuple[cst.CSTNode, ...]
    everything: bool
    functional: bool

    def pins(self, name: str) -> bool:
        """Whether the container held under ``name`` is referred to by position (``self.*``
        in ``names``: every attribute of ``self``)."""
        owner, dot, attribute = name.rpartition(".")
        return name in self.names or bool(dot) and (attribute in self.attributes
                                                    or f"{owner}.*" in self.names)


def find_positional(module: cst.Module) -> PositionalUse:
    """What ``module`` refers to by position."""
    finder = _Finder()
    module.visit(finder)
    return finder.result()


@dataclass(frozen=True)
class _Function:
    """A function of the file (or a class, by its ``__init__``) as its callers see it: its
    positional parameters (a method's without ``self``), keyword-only ones, ``*args`` and
    ``**kwargs``."""

    positional: tuple[str, ...]
    keyword_only: tuple[str, ...]
    star: str | None
    extra: str | None
    bound: bool  # a method: called on its class (``Net.init(net, s)``), a call also gives self

    @classmethod
    def of(cls, params: cst.Parameters, bound: bool) -> _Function:
        positional = [param.name.value for param in (*params.posonly_params, *params.params)]
        star = params.star_arg.name.value if isinstance(params.star_arg, cst.Param) else None
        extra = params.star_kwarg.name.value if params.star_kwarg is not None else None
        return cls(tuple(positional[1:] if bound else positional),
                   tuple(param.name.value for param in params.kwonly_params), star, extra, bound)

    def arguments_for(self, call: cst.Call, pinned: Callable[[str], bool], on_class: bool
                      ) -> Iterator[cst.BaseExpression]:
        """The arguments of ``call`` given for a parameter the function refers to by position
        (any argument, where ``*args`` or ``**kwargs`` hide which parameter it is);
        ``on_class``: the call is ``Net.init(...)``, its first argument is ``self``."""
        named = (*self.positional, *self.keyword_only)
        offset = -1 if self.bound and on_class else 0
        for index, arg in enumerate(call.args):
            if arg.star:
                hit = any(pinned(name) for name in (*named, self.star, self.extra)
                          if name is not None)
            elif arg.keyword is not None:
                keyword = arg.keyword.value
                hit = pinned(keyword) if keyword in named else (self.extra is not None
                                                                and pinned(self.extra))
            else:
                hit = self._positional_pinned(index + offset, pinned)
            if hit:
                yield arg.value

    def _positional_pinned(self, index: int, pinned: Callable[[str], bool]) -> bool:
        if index < 0:  # ``net`` in ``Net.init(net, s)``: ``self``
            return False
        if index < len(self.positional):
            return pinned(self.positional[index])
        return self.star is not None and pinned(self.star)


class _Finder(cst.CSTVisitor):
    def __init__(self) -> None:
        self.pinned: set[str] = set()
        self.key_owners: set[str] = set()  # ``net`` for ``"net.1.weight"``
        self.root_key = False  # a key such as ``"1.weight"``: a position in a keyed container
        self.keyed: set[str] = set()  # ``seq`` for ``seq.state_dict()``
        self.regions: dict[int, cst.CSTNode] = {}
        self.everything = False
        self.bindings: list[tuple[str, cst.BaseExpression]] = []
        self.functions: dict[str, list[_Function]] = {}
        self.calls: list[tuple[str, cst.Call]] = []
        self.methods: set[int] = set()  # ids of the functions defined in a class body
        self.classes: set[str] = set()
        self.returning: list[str] = []  # ``make()`` inside ``def make``
        self.unpacked_calls: list[tuple[cst.Tuple | cst.List, cst.Call]] = []  # a, b = make()

    def result(self) -> PositionalUse:
        """The pinned names, with those that reach them (aliases, arguments for pinned
        parameters) until nothing more is added."""
        for target, call in self.unpacked_calls:
            self._unpack(target, call)
        names = self.pinned | self.key_owners | (self.keyed if self.root_key else set())
        while names:
            use = self._use(names)
            reached = [value for name, value in self.bindings if use.pins(name)]
            reached += [arg for callee, call in self.calls
                        for function in self.functions.get(callee, ())
                        for arg in function.arguments_for(call, use.pins, self._on_class(call))]
            added = {name for node in reached for name in self._reach(node)}
            if added <= names:
                break
            names = names | added
        use = self._use(names)
        functional = f"{_FUNCTIONAL_MODEL}()" in names or any(
            isinstance(value, cst.Call) and _callee_name(value.func) == _FUNCTIONAL_MODEL
            and use.pins(name) for name, value in self.bindings)
        return replace(use, functional=functional)

    def _on_class(self, call: cst.Call) -> bool:
        return isinstance(call.func, cst.Attribute) and isinstance(call.func.value, cst.Name) \
            and call.func.value.value in self.classes

    def _use(self, names: set[str]) -> PositionalUse:
        attributes = {name.rpartition(".")[2] for name in names if "." in name}
        return PositionalUse(frozenset(names), frozenset(attributes | self.key_owners),
                             tuple(self.regions.values()), self.everything, functional=False)

    def _reach(self, node: cst.BaseExpression) -> list[str]:
        """The names of the container ``node`` is; a call's result is also a region."""
        if isinstance(node, cst.Call) and not _is_view(node):
            self.regions[id(node)] = node
        return _container_names(node)

    def _pin(self, node: cst.BaseExpression) -> None:
        self.pinned.update(self._reach(node))

    def _bind(self, target: cst.BaseExpression, value: cst.BaseExpression) -> None:
        name = dotted_text(target)
        if name is not None:
            self.bindings.append((name, value))

    def _define(self, name: str, function: _Function) -> None:
        self.functions.setdefault(name, []).append(function)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        """Methods, the class as a call to its ``__init__``, and class attributes as
        ``Class.head`` (which a pinned ``self.head`` reaches: same attribute name)."""
        self.classes.add(node.name.value)
        for statement in node.body.body:
            if isinstance(statement, cst.FunctionDef):
                self.methods.add(id(statement))
                if statement.name.value == "__init__":
                    self._define(node.name.value, _Function.of(statement.params, bound=True))
            elif isinstance(statement, cst.SimpleStatementLine):
                for target, value in _assignments(statement):
                    if isinstance(target, cst.Name):
                        self._bind(cst.Attribute(node.name, target), value)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        static = any(dotted_text(decorator.decorator) == "staticmethod"
                     for decorator in node.decorators)
        bound = id(node) in self.methods and not static
        self._define(node.name.value, _Function.of(node.params, bound))
        self.returning.append(f"{node.name.value}()")

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.returning.pop()

    def visit_Return(self, node: cst.Return) -> None:
        if node.value is not None and self.returning:
            self.bindings.append((self.returning[-1], node.value))

    def visit_For(self, node: cst.For) -> None:
        self._bind(node.target, node.iter)  # ``for s in [self.seq]:``: ``s`` is one of them

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._bind(node.target, node.iter)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if _key_of(node) is None:
            self._pin(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value == "_modules":  # its keys are the positions: "0", "1"...
            self._pin(node.value)
        elif node.attr.value == _LOADS_BY_KEY:
            self.everything = True

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if "b" not in node.prefix.lower():
            self._key(node.raw_value)

    def visit_FormattedString(self, node: cst.FormattedString) -> None:
        self._key("".join(part.value if isinstance(part, cst.FormattedStringText) else "{}"
                          for part in node.parts))

    def _key(self, text: str) -> None:
        """``"net.1.weight"`` names the second layer of any ``net``, ``f"net.{i}.weight"`` some
        layer of it; ``"1.weight"`` that of a container whose keys the file reads
        (``seq.state_dict()``)."""
        if _KEY.fullmatch(text) is None:
            return
        parts = text.split(".")
        if not any(_is_identifier(part) for part in parts):
            return  # "1.5", "2.0.1": a number or a version
        owner = None  # the nearest name before a position is the container it indexes
        for part in parts:
            if _is_identifier(part):
                owner = part
            elif owner is not None:
                self.key_owners.add(owner)
            elif part.isdigit():
                self.root_key = True

    def visit_Call(self, node: cst.Call) -> None:
        func, args = node.func, [arg.value for arg in node.args]
        callee = _callee_name(func)
        if callee is not None:
            self.calls.append((callee, node))
        if any(_names_position(arg) for arg in args):  # ``fuse_modules(seq, [["0", "1"]])``
            for arg in (*args, *([func.value] if isinstance(func, cst.Attribute) else [])):
                self._pin(arg)
        if callee in _POSITIONAL_FUNCTIONS:
            for arg in args:
                self._pin(arg)
        elif callee in _BY_NAME_FUNCTIONS and len(args) > 1:
            name = string_literal(args[1])
            if not _is_layer_name(args[1]):
                self._pin(args[0])
            elif callee == "setattr" and name is not None and len(args) > 2:
                self._bind(cst.Attribute(args[0], cst.Name(name)), args[2])
        elif isinstance(func, cst.Attribute):
            self._method_call(func, node.args)

    def _method_call(self, func: cst.Attribute, args: Sequence[cst.Arg]) -> None:
        """``model.pop()``, ``model.get_layer(index=2)``, ``net.get_submodule("1")``;
        ``self.add_module("head", m)`` binds ``self.head``."""
        method = func.attr.value
        if method in _POSITIONAL_METHODS or (method == "get_layer" and any(
                arg.keyword is not None and arg.keyword.value == "index" for arg in args)) or (
                method in _BY_NAME_METHODS and not (args and _is_layer_name(args[0].value))):
            self._pin(func.value)
        if method in _KEYED_METHODS:
            self.keyed.update(_container_names(func.value))
        name = string_literal(args[0].value) if method in _NAMING_METHODS and len(args) == 2 \
            else None
        if name is not None:
            self._bind(cst.Attribute(func.value, cst.Name(name)), args[1].value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind(target.target, node.value)
            if isinstance(target.target, cst.Name) and isinstance(node.value, cst.Lambda):
                self._define(target.target.value, _Function.of(node.value.params, bound=False))
            if isinstance(target.target, (cst.Tuple, cst.List)) and isinstance(node.value,
                                                                             cst.Call):
                self.unpacked_calls.append((target.target, node.value))  # once all is seen
            elif isinstance(target.target, (cst.Tuple, cst.List)) \
                    and not isinstance(node.value, (cst.Tuple, cst.List)):
                self._pin(node.value)  # ``drop, bn = seq``: unpacked by position

    def _unpack(self, target: cst.Tuple | cst.List, call: cst.Call) -> None:
        """``model, base = build()`` where every ``return`` of ``build`` is a tuple of as many
        values (``return Model(inp, out), base``) binds each name to its value; any other call
        may return a container whose layers the names take by position."""
        returned = [value for name, value in self.bindings
                    if name == f"{_callee_name(call.func)}()"]
        if not returned or not all(_same_shape(value, target) for value in returned):
            self._pin(call)
            return
        for value in returned:
            for name, element in zip(target.elements, value.elements):
                self._bind(name.value, element.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value)


def _container_names(node: cst.BaseExpression) -> list[str]:
    """The names a container expression goes by: ``model.layers`` is also ``model``,
    ``seq.children()`` and ``copy.deepcopy(seq)`` are ``seq``, ``getattr(self, "seq")`` is
    ``self.seq`` (``getattr(self, name)`` is ``self.*``), ``self.heads["a"]`` is
    ``self.heads.a`` (a ModuleDict entry) and also ``self.heads``, ``[a, b]`` and ``{"k": a}``
    are ``a`` and ``b``, and ``make()`` is ``make()`` (what a function ``make`` returns)."""
    if _is_view(node):
        return _container_names(node.func.value)
    if isinstance(node, cst.Call):
        return _called_names(node)
    if isinstance(node, (cst.ListComp, cst.GeneratorExp, cst.SetComp)):
        return _container_names(node.for_in.iter)  # ``[m for m in seq]``: in its order
    if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
        return [name for element in node.elements for name in _container_names(element.value)]
    if isinstance(node, cst.Dict):
        return [name for element in node.elements if isinstance(element, cst.DictElement)
                for name in _container_names(element.value)]
    if isinstance(node, cst.Subscript):
        key = _key_of(node)
        owners = _container_names(node.value)
        return [f"{owner}.{key}" for owner in owners if key is not None] + owners
    if isinstance(node, cst.Attribute):
        owners = _container_names(node.value)
        names = [f"{owner}.{node.attr.value}" for owner in owners]
        return names + owners if node.attr.value in _VIEW_ATTRIBUTES else names
    return [node.value] if isinstance(node, cst.Name) else []


def _called_names(call: cst.Call) -> list[str]:
    """The names of the container a call returns (see ``_container_names``)."""
    callee = _callee_name(call.func)
    args = [arg.value for arg in call.args]
    if callee == "getattr" and len(args) > 1:  # any attribute, for a computed name
        attribute = string_literal(args[1]) or "*"
        return [f"{owner}.{attribute}" for owner in _container_names(args[0])]
    if callee in _SAME_LAYERS and args:
        return _container_names(args[0])
    return [] if callee is None else [f"{callee}()"]


def _same_shape(value: cst.BaseExpression, target: cst.Tuple | cst.List) -> bool:
    """``Model(inp, out), base`` for ``model, base``: a tuple or list of as many values, with
    no starred part on either side."""
    return (isinstance(value, (cst.Tuple, cst.List))
            and len(value.elements) == len(target.elements)
            and not any(isinstance(element, cst.StarredElement)
                        for element in (*value.elements, *target.elements)))


def _callee_name(func: cst.BaseExpression) -> str | None:
    """``make`` for ``make(...)``, ``self.make(...)`` and ``Net().make(...)``."""
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else None


def _assignments(line: cst.SimpleStatementLine
                 ) -> Iterator[tuple[cst.BaseExpression, cst.BaseExpression]]:
    """(target, value) for each assignment on a line: ``head = nn.Sequential(...)``."""
    for small in line.body:
        if isinstance(small, cst.Assign):
            yield from ((target.target, small.value) for target in small.targets)
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            yield small.target, small.value


def _is_identifier(part: str) -> bool:
    """A part of a dotted key that is a name (``net``), not a position (``1``, ``{}``)."""
    return part[0].isalpha() or part[0] == "_"


def _is_view(node: cst.BaseExpression) -> bool:
    """``seq.children()``: the container's layers, in order."""
    return (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in _VIEW_METHODS)


def _names_position(node: cst.BaseExpression) -> bool:
    """A literal layer name that is a position (``"1"``, ``"net.1"``), or a list or tuple
    holding one."""
    if isinstance(node, (cst.List, cst.Tuple)):
        return any(_names_position(element.value) for element in node.elements)
    return (isinstance(node, cst.SimpleString) and "b" not in node.prefix.lower()
            and _POSITION.fullmatch(node.raw_value) is not None)


def _key_of(node: cst.Subscript) -> str | None:
    """``"bn"`` in ``layers["bn"]``: a ModuleDict entry by its name, not a position."""
    if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index) \
            and _is_layer_name(node.slice[0].slice.value):
        return string_literal(node.slice[0].slice.value)
    return None


def _is_layer_name(node: cst.BaseExpression) -> bool:
    """A literal name that is no position: ``"bn"``, not ``"1"`` (a Sequential's second layer
    is named ``"1"``) nor ``"net.1"``."""
    name = string_literal(node)
    return name is not None and not any(part.isdigit() for part in name.split("."))
