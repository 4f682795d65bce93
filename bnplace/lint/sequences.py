"""Python source -> the neutral :class:`~bnplace.lint.layers.Description` the rules read.

One walk over each block of statements (the module, every function, every method) keeps two
tables, in statement order:

- *layer values*: what a name holds when it holds layers — one layer
  (``bn = BatchNormalization()``), a list built with ``[...]``, ``append``, ``+=``, ``extend``, a
  model grown with ``model.add(...)``, an ``nn.Sequential(...)``/``Sequential([...])``, the list a
  helper function returns; each entry of an ``nn.ModuleDict`` under its own name
  (``self.layers.fc`` holds the module that ``self.layers["fc"]`` and ``self.layers.fc`` read);
- *tensors*: what a name holds when it holds data — a chain of layers applied so far
  (``x = Dropout(.5)(x)``, ``x = self.bn(self.drop(x))``, ``x = F.relu(self.fc(x))``).

Sequences are the layer values (in the order the layers were added) and the data-flow paths that
end in a value nothing else consumes. Order comes from data flow, never from neighbouring lines:
two helper functions defined one after the other are no chain. ``if`` bodies are taken as run
(a guarded ``if self.dropout is not None:`` layer is in the path), ``elif``/``else`` bodies and
``match`` cases as alternatives to it, ``name := value`` as an assignment (also in a test), loop
bodies as run twice (a list grown in a loop repeats), except a ``for`` over literal strings,
which runs once per string with the name bound (``for name in ["fc", "bn"]:
x = self.layers[name](x)``), and statements below a ``return``/``raise``/``break``/``continue``
as never run. Each item of a literal tuple, list or dict is a value of its own
(``return self.bn(h), x``). Each place a name is
written reads every tensor the name may hold there (after an ``if`` or a loop, also what it held
before), so --fix knows a layer whose output something else reads too (``return out, h``). The
code is never imported or run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider, Scope

from bnplace.lint.bindings import Bindings
from bnplace.lint.bias_reads import reads_bias
from bnplace.lint.checkpoints import loads_weights
from bnplace.lint.constants import Constants
from bnplace.lint.layer_calls import argument, read_layer
from bnplace.lint.layers import Description, Layer, Location
from bnplace.lint.names import LayerClass, NameResolver, dotted_text, string_literal
from bnplace.lint.positional import find_positional
from bnplace.lint.reads import names_read
from bnplace.lint.scopes import Scopes
from bnplace.placement import LayerKind, activation_function, kind_of_torch_function

Layers = tuple[Layer, ...]
# An item of a literal mapping: its name (a literal string or None), its value, the item's node.
_Item = tuple[str | None, cst.BaseExpression, cst.CSTNode]

# Tensor methods that act as a layer (``x.relu()``, ``x.view(n, -1)``, ``x.softmax(-1)``).
_METHOD_KINDS = (LayerKind.ACTIVATION, LayerKind.RESHAPE, LayerKind.OUTPUT)
# ``self.name`` anywhere but as the target of a plain assignment: the module is read there.
_READ_SELF_ATTRIBUTE = re.compile(r"\b(self\.\w+)\b(?!\s*=[^=])")
# ``getattr(self, "bn2")``: the module is read there by its name.
_GETATTR_SELF = re.compile(r"\bgetattr\(\s*self\s*,\s*[\"'](\w+)[\"']")
# Modules read by a computed name or all at once (``getattr(self, f"bn{i}")``,
# ``self.children()``): any ``self.bn`` may be called.
_ANY_SELF_ATTRIBUTE = re.compile(
    r"\bgetattr\(\s*self\s*,\s*(?![\"']\w+[\"']\s*[,)])|\bself\.(?:children|modules|named_children|"
    r"named_modules|_modules)\b")
# A container written as a call (``nn.Sequential(``, ``Sequential([``), counted in the text.
_CONTAINER_CALL = re.compile(r"\bSequential\s*\(")
# Module methods that return the module itself (``nn.BatchNorm2d(5).to(device)``).
_SELF_RETURNING = frozenset({"to", "cuda", "cpu", "float", "double", "half", "bfloat16", "train",
                             "eval", "requires_grad_", "type"})
# Methods that run before the others so ``self.*`` modules are known when ``forward`` reads them.
_CONSTRUCTORS = ("__init__", "build", "setup")
# The type name of an ``nn.ModuleDict`` value: its entries are named, never a sequence.
_MODULE_DICT = "ModuleDict"


@dataclass(eq=False)
class _Node:
    """A tensor: the layer that produced it and the tensor that layer read (None: an input).
    ``reads`` counts the places that surely read it: each place a name surely holding it is
    written (``return out, h``, ``cache.append(h)``, ``self.bn(h)``) and each layer reading it
    where it is computed (``self.bn(self.drop(x))``). ``maybe_reads`` counts the others: a name
    that may hold it (after an ``if`` that may not rebind the name), or that other code may read
    (an attribute, a name a closure or an exception handler reads). A layer whose output is read
    twice cannot trade places with one of its readers."""

    layer: Layer
    parent: _Node | None
    reads: int = 0
    maybe_reads: int = 0


@dataclass
class _Frame:
    """What the names of one block hold, as the walk goes down its statements."""

    values: dict[str, Layers] = field(default_factory=dict)
    tensors: dict[str, _Node | None] = field(default_factory=dict)
    classes: dict[str, LayerClass] = field(default_factory=dict)  # norm_layer = nn.BatchNorm2d
    conditional: int = 0  # inside an ``if``, a conditional expression or a loop's second run
    guarded: int = 0  # inside an ``if`` or a conditional expression only
    returned: Layers | None = None
    loop_keys: dict[str, str] = field(default_factory=dict)  # for name in ["fc", "bn"]: ...
    # tensors a name may hold besides ``tensors[name]``: the walk takes an ``if`` as run and a
    # loop as run twice, but a read after it may see the value from before it
    also: dict[str, tuple[_Node, ...]] = field(default_factory=dict)
    handled: int = 0  # inside a ``try`` body with handlers: a handler may read what it binds
    # the names ``tensors`` holds a known tensor for, kept as they change: a module may bind
    # thousands of names to unknown values (a generated file), and finding the few known ones
    # among them for each statement would take time quadratic in the file's length
    known: set[str] = field(default_factory=set)

    def copy(self) -> _Frame:
        return _Frame(dict(self.values), dict(self.tensors), dict(self.classes), self.conditional,
                      self.guarded, self.returned, dict(self.loop_keys), dict(self.also),
                      self.handled, set(self.known))

    def restore(self, other: _Frame) -> None:
        self.values, self.tensors = dict(other.values), dict(other.tensors)
        self.classes, self.also = dict(other.classes), dict(other.also)
        self.known = set(other.known)

    def forget(self, name: str) -> None:
        """The name now holds something unknown."""
        for table in (self.values, self.tensors, self.classes, self.also):
            table.pop(name, None)
        self.known.discard(name)

    def rebind(self, name: str, tensor: _Node | None) -> None:
        """The name surely holds ``tensor`` now, and nothing it held before."""
        self.tensors[name] = tensor
        self.also.pop(name, None)
        if tensor is None:
            self.known.discard(name)
        else:
            self.known.add(name)

    def held(self, name: str) -> tuple[_Node, ...]:
        """Every tensor the name may hold here, the one it surely holds (if any) first."""
        tensor = self.tensors.get(name)
        return ((tensor,) if tensor is not None else ()) + self.also.get(name, ())

    def merge(self, other: _Frame) -> None:
        """The walk may have reached this point through ``other`` instead: a name may also hold
        what it holds there."""
        for name in {*other.tensors, *other.also}:
            held = self.held(name)
            added = tuple(tensor for tensor in other.held(name)
                          if not any(tensor is known for known in held))
            if added:
                self.also[name] = self.also.get(name, ()) + added

    def read_names(self) -> set[str]:
        """The names that hold, or may hold, a known tensor: a read of any other name counts for
        nothing."""
        return self.known | self.also.keys()


@dataclass(frozen=True)
class _Branch:
    """One alternative of an ``if``/``elif``/``else`` or a ``match``: its body, the test that
    runs before it (an ``elif``'s, a case's guard) and the names its pattern captures."""

    body: Sequence[cst.BaseStatement]
    test: cst.BaseExpression | None = None
    captured: tuple[str, ...] = ()


def describe(wrapper: MetadataWrapper, code: str) -> Description:
    """The layer sequences and unused BatchNorm layers of a parsed module; ``code`` is the source
    it was parsed from (what ``module.code`` would render again, walking the whole tree)."""
    return _Describer(wrapper, code).run()


class _Describer:
    def __init__(self, wrapper: MetadataWrapper, code: str) -> None:
        module = wrapper.module
        metadata = wrapper.resolve_many((PositionProvider, Scopes))
        self._positions = metadata[PositionProvider]
        self._scopes = metadata[Scopes]
        bindings = Bindings(module, code, self._scopes)
        self._names = NameResolver(module, code, self._scopes, bindings)
        self._constants = Constants(bindings)
        self._read_attributes = set(_READ_SELF_ATTRIBUTE.findall(code)) | {
            f"self.{name}" for name in _GETATTR_SELF.findall(code)}
        self._reads_any_attribute = _ANY_SELF_ATTRIBUTE.search(code) is not None
        self._written_containers = len(_CONTAINER_CALL.findall(code))
        self._seen_containers: set[int] = set()  # ids of the container calls read so far
        self._module = module
        self._loads_weights = loads_weights(module, code)
        self._reads_bias = reads_bias(module, code)
        self._functions = _functions_by_name(module)
        self._helper_results: dict[str, Layers | None] = {}
        self._read_from_other_scopes: dict[tuple[Scope, str], bool] = {}
        self._sequences: dict[Layers, None] = {}
        self._nodes: list[_Node] = []
        self._unused: list[Layer] = []
        self._discarded: list[Layer] = []
        self._attribute_batchnorms: list[tuple[str, Layer]] = []
        self._in_sequential_class = False  # ``super().__init__(conv, bn, act)`` builds one
        # where the layers each name has held were written, and the layers of the containers
        # read without a name: a name the code indexes pins them (``seq[1]``)
        self._held: dict[str, set[Location]] = {}
        self._unnamed: list[Layer] = []
        self._returning: str | None = None  # ``make()`` while the walk is in ``def make``
        self._by_name: set[Location] = set()  # ``add_module("bn", ...)``: its key is no position

    def run(self) -> Description:
        self._run_frame(self._module.body, _Frame())
        if self._written_containers > len(self._seen_containers):
            self._run_unwalked_containers()
        if not self._reads_any_attribute:
            self._unused += [layer for name, layer in self._attribute_batchnorms
                             if _owner(name) not in self._read_attributes]
        readers = Counter(id(node.parent) for node in self._nodes)
        for node in self._nodes:
            if id(node) not in readers:
                self._emit(_path(node, readers), lone=True)
        return Description(self._pinned(tuple(self._sequences)), tuple(dict.fromkeys(self._unused)),
                           tuple(dict.fromkeys(self._discarded)),
                           self._loads_weights, self._reads_bias)

    def _run_unwalked_containers(self) -> None:
        """A ``Sequential(...)`` that the statement walk does not reach is a sequence all the
        same: one in a comprehension, a lambda, a dict, another call's argument
        (``Wrapper(nn.Sequential(...))``) or a class attribute. Read outermost first, with no
        names known."""
        for call in _container_calls(self._module):
            if id(call) not in self._seen_containers and self._names.is_sequential(call.func):
                self._unnamed += self._called_layers(call, _Frame()) or ()

    def _pinned(self, sequences: tuple[Layers, ...]) -> tuple[Layers, ...]:
        """The sequences with the layers of containers that the code refers to by position
        (``seq[1]``, ``model.layers[2]``) made immovable: a swap would change what the position
        names. Looked for only where a fix could swap a Dropout and the BatchNorm right after
        it (BNP001's, the one fix that moves layers): the search walks the whole tree."""
        if not any(first.kind is LayerKind.DROPOUT and first.movable
                   and second.kind is LayerKind.BATCHNORM
                   for layers in sequences for first, second in pairwise(layers)):
            return sequences
        use = find_positional(self._module)
        regions = [self._location(node) for node in use.regions]
        pinned = {where for name, places in self._held.items() if use.pins(name)
                  for where in places}
        pinned.update(layer.location for layer in self._unnamed
                      if any(_contains(region, layer.location) for region in regions))
        if use.functional:  # a Keras functional model's layers, in data-flow order
            pinned.update(layer.location for layers in sequences for layer in layers
                          if layer.framework == "keras")
        if use.everything:  # a checkpoint's keys: every position, not a name add_module gives
            contained = [*(where for places in self._held.values() for where in places),
                         *(layer.location for layer in self._unnamed)]
            pinned.update(where for where in contained if where not in self._by_name)
        return tuple(tuple(replace(layer, movable=False) if layer.location in pinned else layer
                           for layer in layers) for layers in sequences)

    # blocks and statements

    def _run_frame(self, body: Sequence[cst.CSTNode], frame: _Frame) -> _Frame:
        self._run_block(body, frame)
        for layers in frame.values.values():
            self._emit(layers)
        if frame.returned:
            self._emit(frame.returned)
        return frame

    def _run_function(self, function: cst.FunctionDef, frame: _Frame) -> _Frame:
        """A function's body; what each of its ``return`` statements returns is held as
        ``name()``: ``make()[1]`` indexes it."""
        outer, self._returning = self._returning, f"{function.name.value}()"
        self._run_frame(function.body.body, frame)
        self._returning = outer
        return frame

    def _run_block(self, body: Sequence[cst.CSTNode], frame: _Frame) -> None:
        """The statements of a block in order, up to one that leaves it (``return``, ``raise``,
        ``break``, ``continue``): code after that never runs (a draft kept below a return)."""
        for statement in body:
            self._run_statement(statement, frame)
            if _leaves_block(statement):
                return

    def _run_statement(self, statement: cst.CSTNode, frame: _Frame) -> None:
        smalls = _small_statements(statement)
        if smalls is not None:
            for small in smalls:
                self._count_reads(small, frame)
                self._run_small(small, frame)
        elif isinstance(statement, cst.FunctionDef):
            self._run_function(statement, _Frame())
        elif isinstance(statement, cst.ClassDef):
            self._run_class(statement)
        elif isinstance(statement, cst.If):
            self._run_if(statement, frame)
        elif isinstance(statement, cst.Match):
            self._run_match(statement, frame)
        elif isinstance(statement, (cst.For, cst.While)):
            self._run_loop(statement, frame)
        elif isinstance(statement, cst.With):
            for item in statement.items:
                self._run_header(item.item, frame)
            self._run_block(statement.body.body, frame)
        elif isinstance(statement, (cst.Try, cst.TryStar)):
            self._run_try(statement, frame)

    def _run_try(self, statement: cst.Try | cst.TryStar, frame: _Frame) -> None:
        """The parts of a ``try`` in the order written. A handler may run after any statement of
        the body and read what it bound, and the code after the ``try`` may follow the body or
        any handler: a handler's bindings are not sure ones. The walk goes on from the body (an
        ``if`` is taken as run the same way); a handler's values are emitted where it ends."""
        before = frame.copy()
        frame.handled += 1 if statement.handlers else 0
        self._run_block(statement.body.body, frame)
        frame.handled -= 1 if statement.handlers else 0
        after_body = frame.copy()
        ends = []
        for handler in statement.handlers:
            frame.merge(before)
            frame.merge(after_body)
            if handler.type is not None:
                self._run_header(handler.type, frame)
            self._run_block(handler.body.body, frame)
            for layers in frame.values.values():
                self._emit(layers)
            ends.append(frame.copy())
        frame.restore(after_body)
        for state in ends:
            frame.merge(state)
        for part in (statement.orelse, statement.finalbody):
            if part is not None:
                self._run_block(part.body.body, frame)

    def _run_loop(self, statement: cst.For | cst.While, frame: _Frame) -> None:
        """A loop body as run twice, the second run showing what wraps around; a
        ``for name in ["fc", "bn"]:`` once per name, in order, with ``name`` bound, so
        ``self.layers[name]`` is that entry. --fix leaves the runs after the first: they share
        its lines. The loop may not run at all, or stop after any run: after it a name may hold
        what it held before it or after any run."""
        outer = dict(frame.loop_keys)
        if isinstance(statement, cst.For):
            self._run_header(statement.iter, frame)
        states = [frame.copy()]
        for run, bindings in enumerate(_literal_bindings(statement) or [{}, {}]):
            frame.loop_keys.update(bindings)
            later = 1 if run else 0
            frame.conditional += later
            if isinstance(statement, cst.While):
                self._run_header(statement.test, frame)
            else:
                for name in _target_names(statement.target):
                    frame.forget(name)  # ``for h in feats:``: an item nobody knows
                for name, layer in self._loop_items(statement, frame).items():
                    frame.values[name] = (layer,)
            self._run_block(statement.body.body, frame)
            frame.conditional -= later
            states.append(frame.copy())
        for state in states[:-1]:
            frame.merge(state)
        frame.loop_keys = outer

    def _loop_items(self, statement: cst.For, frame: _Frame) -> dict[str, Layer]:
        """The layer each loop name takes from a list of layers that one constructor call built
        (``for fc, bn in zip(self.fcs, self.bns):`` after ``self.fcs.append(nn.Linear(h, h))``
        in a loop): every item is that layer. Taken as guarded: ``zip`` stops at the shorter
        list, so some items may run without the layer paired with them here."""
        items = {}
        for name, iterable in _iterated(statement.target, statement.iter):
            layers = frame.values.get(self._key(iterable, frame) or "")
            if layers and layers[0].kind is not None \
                    and all(layer.definition == layers[0].definition for layer in layers):
                items[name] = replace(layers[0], guarded=True)
        return items

    def _run_if(self, statement: cst.If, frame: _Frame) -> None:
        self._run_header(statement.test, frame)  # the first test always runs
        self._run_branches(_if_branches(statement), frame, exhaustive=_has_else(statement))

    def _run_match(self, statement: cst.Match, frame: _Frame) -> None:
        """``match`` cases are alternatives, like ``if``/``elif``; a name a pattern captures
        (``case [a, b]:``, ``case _ as y:``) holds a part of the subject nobody knows."""
        self._run_header(statement.subject, frame)
        self._run_branches([_Branch(case.body.body, case.guard, _captured_names(case.pattern))
                            for case in statement.cases], frame, exhaustive=False)

    def _run_branches(self, branches: Sequence[_Branch], frame: _Frame, exhaustive: bool) -> None:
        """Alternative bodies, each from the state before them and guarded: the walk goes on
        from the first one's state (an ``if`` is taken as run), the others' values are emitted
        and their data-flow paths end where they end. After them a name may hold what any
        branch left in it, or (no ``else``) what it held before."""
        before = frame.copy()
        frame.conditional += 1
        frame.guarded += 1
        ends: list[_Frame] = []
        for branch in branches:
            frame.restore(before)
            for name in branch.captured:
                frame.forget(name)
            if branch.test is not None:
                self._run_header(branch.test, frame)
            self._run_block(branch.body, frame)
            if ends:
                for layers in frame.values.values():
                    self._emit(layers)
            ends.append(frame.copy())
        if ends:
            frame.restore(ends[0])
        for state in ends[1:] + ([] if exhaustive else [before]):
            frame.merge(state)
        frame.conditional -= 1
        frame.guarded -= 1

    def _run_header(self, test: cst.BaseExpression, frame: _Frame) -> None:
        """A compound statement's expression (a test, a ``for``'s iterable, a ``with`` item):
        its reads count, and each ``name := value`` in it (``if (y := self.fc(x)) is not
        None:``) binds its name like an assignment."""
        self._count_reads(test, frame)
        for named in _walruses(test):
            self._evaluate(named, frame)

    def _count_reads(self, node: cst.CSTNode, frame: _Frame) -> None:
        """Each place a statement reads a name counts as a read of every tensor the name may
        hold there, whether a layer reads it (``self.bn(h)``) or anything else does
        (``return out, h``, ``{"feat": h}``, ``print(h)``)."""
        for name in names_read(node, frame.read_names()):
            surely = frame.tensors.get(name)
            if surely is not None:
                surely.reads += 1
            for tensor in frame.also.get(name, ()):
                tensor.maybe_reads += 1

    def _run_class(self, statement: cst.ClassDef) -> None:
        for nested in statement.body.body:
            if isinstance(nested, cst.ClassDef):
                self._run_class(nested)
        methods = [s for s in statement.body.body if isinstance(s, cst.FunctionDef)]
        methods.sort(key=lambda method: method.name.value not in _CONSTRUCTORS)
        attributes: dict[str, Layers] = {}
        outer, self._in_sequential_class = self._in_sequential_class, any(
            self._names.is_sequential(base.value) for base in statement.bases)
        for method in methods:
            inherited = {key: _fixed_in_place(layers) for key, layers in attributes.items()}
            frame = self._run_function(method, _Frame(values=inherited))
            attributes.update((k, v) for k, v in frame.values.items() if k.startswith("self."))
        self._in_sequential_class = outer

    def _run_small(self, small: cst.BaseSmallStatement, frame: _Frame) -> None:
        if isinstance(small, cst.Assign):
            for target in small.targets:
                # every value is read before any name is bound: ``x, z = drop(x), bn(x)``
                evaluated = [(name, value, *self._evaluate(value, frame))
                             for name, value in _pairs(target.target, small.value)]
                for name, value, layers, tensor in evaluated:
                    self._bind(name, value, layers, tensor, frame, small)
        elif isinstance(small, cst.AnnAssign) and small.value is not None:
            self._assign(small.target, small.value, frame, small)
        elif isinstance(small, cst.AugAssign):
            self._augment(small, frame)
        elif isinstance(small, cst.Expr) and isinstance(small.value, cst.Tuple):
            for element in small.value.elements:  # ``self.add_module("bn", bn),``: a stray comma
                self._run_expression(element.value, frame)
        elif isinstance(small, cst.Expr):
            self._run_expression(small.value, frame)
        elif isinstance(small, cst.Return) and small.value is not None:
            frame.returned = self._layers_of(small.value, frame)
            if frame.returned is None:
                self._flow(small.value, frame)
            elif self._returning is not None:
                self._remember(self._returning, frame.returned)

    def _assign(self, target: cst.BaseExpression, value: cst.BaseExpression, frame: _Frame,
                statement: cst.CSTNode) -> None:
        self._bind(target, value, *self._evaluate(value, frame), frame, statement)

    def _evaluate(self, value: cst.BaseExpression, frame: _Frame
                  ) -> tuple[Layers | None, _Node | None]:
        """What an assigned value holds: layers, or else a tensor."""
        layers = self._layers_of(value, frame)
        return layers, self._flow(value, frame) if layers is None else None

    def _bind(self, target: cst.BaseExpression, value: cst.BaseExpression, layers: Layers | None,
              tensor: _Node | None, frame: _Frame, statement: cst.CSTNode) -> None:
        key = self._key(target, frame)
        if key is None:
            return
        self._emit(frame.values.pop(key, ()))  # a name built up and then rebound (a second model)
        frame.forget(key)
        if layers is None:
            frame.rebind(key, tensor)
            if tensor is not None and (frame.handled or self._read_elsewhere(target)):
                tensor.maybe_reads += 1
            layer_class = self._names.layer_class(value)
            if layer_class is not None:  # bound under an ``if``: the name may hold another class
                frame.classes[key] = replace(layer_class, replaceable=layer_class.replaceable
                                             or bool(frame.guarded))
            return
        self._hold(key, layers, frame)
        self._bind_entries(key, value, frame)
        if _is_one_batchnorm(layers, value):
            if isinstance(target, cst.Name) and not self._is_referenced(target, statement):
                self._unused.append(layers[0])
            elif key.startswith("self."):
                self._attribute_batchnorms.append((key, layers[0]))

    def _augment(self, statement: cst.AugAssign, frame: _Frame) -> None:
        """``layers += [...]`` grows a list (by a block nobody knows, for ``layers +=
        LinBnDrop(...)``); ``out += identity`` makes a new tensor (a residual join, not a
        layer)."""
        key = self._key(statement.target, frame)
        layers = self._layers_of(statement.value, frame)
        if isinstance(statement.operator, cst.AddAssign) \
                and (layers is not None or key in frame.values):
            self._extend(key, layers or (self._opaque(statement.value),), frame)
        elif key in frame.tensors:
            frame.rebind(key, self._chain((self._opaque(statement),), frame.tensors[key]))

    def _run_expression(self, value: cst.BaseExpression, frame: _Frame) -> None:
        """A statement of its own: ``model.add(...)``, ``layers.append(...)``,
        ``seq.add_module("bn", ...)``, an orphan layer."""
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.args:
            receiver, method = self._key(value.func.value, frame), value.func.attr.value
            if _is_module_dict(frame.values.get(receiver)):
                self._add_entries(receiver, value, frame)
                return
            builds_self = receiver == "self" and self._in_sequential_class
            if method == "add_module" and (receiver in frame.values or builds_self) \
                    and len(value.args) > 1:
                found = self._element(value.args[1].value, frame)
                if len(found) == 1:  # a lone layer sits at its whole call: a fix moves its name too
                    found = (replace(found[0], location=self._location(value)),)
                    self._by_name.add(found[0].location)
                self._extend(receiver, found, frame)
                return
            added = self._layers_at(value.args[0].value, frame)
            if method in ("append", "add", "extend") \
                    and (added is not None or receiver in frame.values):
                self._extend(receiver, added or (self._opaque(value.args[0].value),), frame)
                return
        layers = self._layers_of(value, frame)
        if layers is not None and _is_one_batchnorm(layers, value):
            self._unused.append(layers[0])
        elif layers is None:
            tensor = self._flow(value, frame)
            receiver = _in_place_receiver(value)
            if receiver is not None and self._key(receiver, frame) in frame.tensors:
                frame.rebind(self._key(receiver, frame), tensor)  # ``out.add_(x)``, ``x.relu_()``
            elif tensor is not None and tensor.layer.kind is LayerKind.BATCHNORM:
                self._discarded.append(tensor.layer)
                self._nodes.remove(tensor)  # no path ends in it: the data flow goes on without

    def _extend(self, key: str | None, layers: Layers | None, frame: _Frame) -> None:
        if key is not None and layers is not None:
            self._hold(key, frame.values.get(key, ()) + layers, frame)

    def _hold(self, key: str, layers: Layers, frame: _Frame) -> None:
        frame.values[key] = layers
        self._remember(key, layers)

    def _remember(self, key: str, layers: Layers) -> None:
        """Where the layers ``key`` holds are written: if the code indexes ``key``, a swap there
        would change what the index names."""
        self._held.setdefault(key, set()).update(layer.location for layer in layers)

    def _read_elsewhere(self, target: cst.BaseExpression) -> bool:
        """Whether code outside the walked statements may read what ``target`` holds: an
        attribute (``self.h``: other methods, the caller), a name read from another scope
        (a nested function, a lambda, a comprehension), at a time the walk does not know, or
        one the scope does not own (``global h``, ``nonlocal h``: its bindings are recorded
        in the outer scope, where any code may read it). Answered once per name and scope:
        every binding of the name asks the same question, and the answer looks at all of them
        (a name rebound on each line made it quadratic)."""
        scope = self._scopes.get(target) if isinstance(target, cst.Name) else None
        if scope is None:
            return True
        key = (scope, target.value)
        if key not in self._read_from_other_scopes:
            assignments = scope.assignments[target.value]
            self._read_from_other_scopes[key] = not assignments or any(
                self._scopes.get(access.node) is not scope
                for assignment in assignments
                for access in assignment.references)
        return self._read_from_other_scopes[key]

    def _is_referenced(self, target: cst.Name, statement: cst.CSTNode) -> bool:
        scope = self._scopes.get(statement)
        if scope is None:
            return True
        return any(assignment.references for assignment in scope.assignments[target.value]
                   if getattr(assignment, "node", None) is target)

    # layer values

    def _layers_of(self, node: cst.BaseExpression, frame: _Frame) -> Layers | None:
        """The layers an expression stands for, or None when it is not made of layers."""
        if isinstance(node, cst.Call):
            return self._called_layers(node, frame)
        if isinstance(node, (cst.List, cst.Tuple)):
            return self._elements(node.elements, frame)
        if isinstance(node, (cst.Name, cst.Attribute, cst.Subscript)):
            return frame.values.get(self._key(node, frame))
        if isinstance(node, cst.NamedExpr):  # ``(fc := nn.Linear(8, 8))``: fc holds it too
            layers = self._layers_of(node.value, frame)
            key = self._key(node.target, frame)
            if layers is not None and key is not None:
                frame.forget(key)
                self._hold(key, layers, frame)
            return layers
        if isinstance(node, cst.IfExp):  # ``nn.Dropout(p) if p else None``: the layer it may be
            frame.conditional += 1
            frame.guarded += 1
            layers = self._layers_of(node.body, frame) or self._layers_of(node.orelse, frame)
            frame.conditional -= 1
            frame.guarded -= 1
            return layers
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            left, right = self._layers_of(node.left, frame), self._layers_of(node.right, frame)
            if left is None and right is None:
                return None
            return (left or (self._opaque(node.left),)) + (right or (self._opaque(node.right),))
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Multiply):
            return self._repeated(node, frame)
        if isinstance(node, (cst.ListComp, cst.GeneratorExp)):
            return self._comprehended(node, frame)
        return None

    def _comprehended(self, node: cst.ListComp | cst.GeneratorExp, frame: _Frame
                      ) -> Layers | None:
        """A comprehension of layers: its element once per item, read as ``_repeated`` reads an
        unknown count (the copies after the first fixed in place). The element is a layer call
        (``[nn.Linear(w, w) for _ in range(n)]``, ``[nn.Sequential(...) for c in chans]``), or
        a name taking each layer of a written tuple in turn (``[m for a, b in zip(w, w[1:]) for
        m in (nn.Linear(a, b), nn.BatchNorm1d(b))]``: the tuple once per outer item). An ``if``
        clause may drop any of them, and a call may be made no times at all (``range(n)``): a
        neighbour outside need not meet it. Such layers, and the first one's pair with the
        layer before the comprehension, are reported, not fixed. None for any other
        comprehension."""
        clauses = [node.for_in]
        while clauses[-1].inner_for_in is not None:
            clauses.append(clauses[-1].inner_for_in)
        last = clauses[-1]
        if (isinstance(node.elt, cst.Name) and isinstance(last.target, cst.Name)
                and last.target.value == node.elt.value
                and isinstance(last.iter, (cst.List, cst.Tuple))):
            written, repeated = last.iter, len(clauses) > 1
        elif isinstance(node.elt, cst.Call):
            written, repeated = node.elt, True
        else:
            return None
        filtered = any(clause.ifs for clause in clauses)
        frame.conditional += filtered
        frame.guarded += filtered
        layers = self._layers_of(written, frame)
        frame.conditional -= filtered
        frame.guarded -= filtered
        if layers is None or not repeated:
            return layers
        if written is node.elt:  # a Sequential in it was read whole where it is written
            layers = tuple(replace(layer, movable=False, guarded=True) for layer in layers)
        return _repeats(layers)

    def _repeated(self, node: cst.BinaryOperation, frame: _Frame) -> Layers | None:
        """``[a, b] * 3`` (or ``n * layers``): the list again after itself, so the last layer of
        one copy feeds the first of the next. Two copies show every pair that more would; an
        unknown count is read as two, as a loop body is. The copies after the first share the
        written list's lines: --fix leaves them (swapping across the join would reorder the
        list)."""
        for items, count in ((node.left, node.right), (node.right, node.left)):
            if not isinstance(items, (cst.List, cst.Tuple, cst.Name)):
                continue
            layers = self._layers_of(items, frame)
            if layers is None:
                continue
            copies = self._constants.int_value(count)
            if copies is not None and copies < 2:
                return layers if copies == 1 else None
            return _repeats(layers)
        return None

    def _called_layers(self, call: cst.Call, frame: _Frame) -> Layers | None:
        builds_sequential = self._in_sequential_class and _is_super_init(call.func)
        if builds_sequential or self._names.is_sequential(call.func):
            self._seen_containers.add(id(call))
            layers = self._container(call, frame)
            if builds_sequential:  # ``self[0]`` names one of them
                self._remember("self", layers)
            self._emit(layers, lone=True)
            return layers
        if self._names.is_module_dict(call.func):
            where = self._location(call)
            return (Layer(None, _MODULE_DICT, where, where, framework="torch"),)
        if self._names.is_module_list(call.func):
            items = self._module_list(call, frame)
            if items is not None:
                return items
        name = dotted_text(call.func)
        layer_class = frame.classes.get(name) or self._names.layer_class(call.func)
        if layer_class is not None:
            where = self._location(call)
            return (read_layer(layer_class.arguments(call), layer_class.layer_type, where, where,
                               movable=not frame.conditional,
                               int_value=self._constants.int_value,
                               guarded=bool(frame.guarded) or layer_class.replaceable),)
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in _SELF_RETURNING:
            return self._layers_of(call.func.value, frame)
        if name in self._functions:
            return self._helper_layers(name)
        if name is not None and name.endswith("OrderedDict") and call.args:
            return self._named_elements(call, frame)
        return None

    def _module_list(self, call: cst.Call, frame: _Frame) -> Layers | None:
        """An empty ``nn.ModuleList()`` (``append`` fills it), or one built by a comprehension
        of one layer (``nn.ModuleList([nn.BatchNorm1d(h) for h in dims])``): that layer, once
        per item. None for any other (a literal list stays one opaque module)."""
        if not call.args:
            return ()
        built = call.args[0].value
        if len(call.args) > 1 or not isinstance(built, (cst.ListComp, cst.GeneratorExp)) \
                or not isinstance(built.elt, cst.Call) or self._names.is_sequential(built.elt.func):
            return None
        layers = self._called_layers(built.elt, frame)
        return layers if layers and len(layers) == 1 and layers[0].kind is not None else None

    def _container(self, call: cst.Call, frame: _Frame) -> Layers:
        """The layers of ``nn.Sequential(a, b, *rest)``, ``Sequential([a, b])`` or Keras'
        ``Sequential(layers=[a, b])``."""
        layers: Layers = ()
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value != "layers":
                continue
            value = arg.value
            if arg.star:
                layers += self._unpacked(value, frame)
            elif isinstance(value, (cst.List, cst.Tuple)):
                layers += self._layers_of(value, frame) or ()
            else:
                layers += self._element(value, frame)
        return layers

    def _elements(self, elements: Sequence[cst.CSTNode], frame: _Frame) -> Layers | None:
        layers: Layers = ()
        for element in elements:
            if isinstance(element, cst.StarredElement):
                layers += self._unpacked(element.value, frame)
            else:
                layers += self._element(element.value, frame)
        return layers if any(layer.kind is not None for layer in layers) else None

    def _unpacked(self, node: cst.BaseExpression, frame: _Frame) -> Layers:
        """What ``*node`` passes: its layers, or one unknown layer standing for what the linter
        cannot read (``nn.Sequential(nn.Dropout(), *blocks, nn.BatchNorm1d(8))``: the Dropout
        need not feed the BatchNorm)."""
        return self._layers_of(node, frame) or (self._opaque(node),)

    def _named_elements(self, node: cst.BaseExpression, frame: _Frame) -> Layers | None:
        """``OrderedDict([("fc", nn.Linear(...)), ...])`` (or a dict): the value of each item."""
        layers: Layers = ()
        for _, value, item in _named_items(node):
            found = self._element(value, frame)
            if len(found) == 1 and isinstance(item, cst.BaseExpression):
                # a lone layer sits at its whole pair: a fix moves its name too
                found = (replace(found[0], location=self._location(item)),)
                self._by_name.add(found[0].location)
            elif len(found) == 1:  # ``"fc": layer`` or ``fc=layer``: a fix would leave the name
                found = (replace(found[0], movable=False),)
            layers += found
        return layers if any(layer.kind is not None for layer in layers) else None

    def _bind_entries(self, key: str, value: cst.BaseExpression, frame: _Frame) -> None:
        """``self.layers = nn.ModuleDict({"fc": ...})``: each entry under its own name."""
        if isinstance(value, cst.Call) and self._names.is_module_dict(value.func):
            self._bind_items(key, _named_items(argument(value, 0, "modules")), frame)

    def _add_entries(self, receiver: str, call: cst.Call, frame: _Frame) -> None:
        """``layers.add_module("bn", m)`` and ``layers.update({...})`` on a ModuleDict: named
        entries, not a sequence (a ModuleDict's order is not its data flow)."""
        method, args = call.func.attr.value, [arg.value for arg in call.args]
        if method == "add_module" and len(args) == 2:
            self._bind_items(receiver, [(string_literal(args[0]), args[1], call)], frame)
        elif method == "update" and len(args) == 1:
            self._bind_items(receiver, _named_items(args[0]), frame)

    def _bind_items(self, key: str, items: list[_Item], frame: _Frame) -> None:
        """Each item with a literal name as the entry ``key.name`` (``self.layers.fc``), and the
        entries of a ModuleDict in it as ``key.name.inner``."""
        for name, value, _ in items:
            if name is not None:
                self._hold(f"{key}.{name}", self._element(value, frame), frame)
                self._bind_entries(f"{key}.{name}", value, frame)

    def _element(self, node: cst.BaseExpression, frame: _Frame) -> Layers:
        return self._layers_at(node, frame) or (self._opaque(node),)

    def _layers_at(self, node: cst.BaseExpression, frame: _Frame) -> Layers | None:
        """The layers an element of a list (or a ``model.add`` argument) stands for. A layer
        named there (``nn.Sequential(drop, bn)``) sits where it is named, as a called module
        does: a fix swaps the names, never the constructions (the name may be used again)."""
        layers = self._layers_of(node, frame)
        if layers is not None and isinstance(node, (cst.Name, cst.Attribute)):
            return self._at_call_site(layers, node, frame)
        return layers

    def _helper_layers(self, name: str) -> Layers | None:
        """The list a helper function returns (fast.ai's ``get_bn_layers``), read once."""
        if name not in self._helper_results:
            self._helper_results[name] = None  # a recursive helper reads as unknown
            frame = _Frame()
            self._run_block(self._functions[name].body.body, frame)
            self._helper_results[name] = _fixed_in_place(frame.returned)
        return self._helper_results[name]

    # data flow

    def _flow(self, node: cst.BaseExpression, frame: _Frame) -> _Node | None:
        """The tensor an expression computes, as a chain of layer applications."""
        if isinstance(node, (cst.Name, cst.Attribute)):
            return frame.tensors.get(dotted_text(node))
        if isinstance(node, cst.Call):
            return self._apply(node, frame)
        if isinstance(node, cst.BinaryOperation):  # ``self.bn(h) + h`` reads both operands
            joined = self._opaque(node)
            right = self._operand(node.right, frame)
            if right is not None:
                self._chain((joined,), right)
            return self._chain((joined,), self._operand(node.left, frame))
        if isinstance(node, cst.NamedExpr):  # ``(y := self.fc(x))``: y holds the tensor too
            tensor = self._flow(node.value, frame)
            self._bind(node.target, node.value, None, tensor, frame, node)
            return tensor
        if isinstance(node, cst.IfExp):  # ``self.drop(x) if self.training else x``: taken as run
            frame.conditional += 1
            frame.guarded += 1
            tensor = self._flow(node.body, frame)
            frame.conditional -= 1
            frame.guarded -= 1
            return tensor
        if isinstance(node, (cst.Tuple, cst.List, cst.Dict)):  # ``return self.bn(h), h``
            for element in node.elements:  # each item (``*rest``, ``**rest`` too) a value of its
                self._operand(element.value, frame)  # own, read once here
        return None

    def _apply(self, call: cst.Call, frame: _Frame) -> _Node | None:
        func = call.func
        positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
        source = positional[0] if positional else None
        tensor_method = isinstance(func, cst.Attribute) and self._is_tensor(func.value, frame)
        if tensor_method:
            source = func.value  # a method of a tensor (``x.relu()``) reads that tensor
        callee_key = self._key(func, frame)
        if isinstance(func, cst.Call):
            layers = self._layers_of(func, frame)
        elif callee_key in frame.values:
            layers = self._at_call_site(frame.values[callee_key], func, frame)
        else:
            layers = self._function_layer(call, tensor_method)
        if layers and len(call.args) > 1:  # ``Dropout(.5)(x, training=True)``: the arguments
            passed = self._arguments_besides(call, source)  # stay where they are if swapped
            layers = tuple(replace(layer, arguments=passed) for layer in layers)
        applied = layers or (self._opaque(call),)
        sources = [source] if source is not None else []
        if isinstance(source, (cst.List, cst.Tuple)):  # ``Add()([y, h])``: it reads every item
            sources = [element.value for element in source.elements]
        parents = [self._operand(node, frame) for node in sources]
        for other in parents[1:]:
            if other is not None:
                self._chain(applied, other)
        return self._chain(applied, parents[0] if parents else None)

    def _arguments_besides(self, call: cst.Call, source: cst.BaseExpression | None) -> str:
        """The text of what ``call`` passes besides its input ``source``, spacing aside."""
        code = self._module.code_for_node
        return ", ".join(f"{arg.star}{arg.keyword.value + '=' if arg.keyword else ''}"
                         f"{code(arg.value)}" for arg in call.args if arg.value is not source)

    def _operand(self, node: cst.BaseExpression, frame: _Frame) -> _Node | None:
        """The tensor an operation reads. One computed right there (``self.bn(self.drop(x))``)
        is read here; a name's reads are counted where the name is written."""
        tensor = self._flow(node, frame)
        if tensor is not None and not isinstance(node, (cst.Name, cst.Attribute)):
            tensor.reads += 1
        return tensor

    def _is_tensor(self, node: cst.BaseExpression, frame: _Frame) -> bool:
        """Whether an expression may hold data: a call's result or a plain variable (a
        parameter, a computed value), not ``self``, a layer or an imported module."""
        if isinstance(node, (cst.Call, cst.BinaryOperation)) or dotted_text(node) in frame.tensors:
            return True
        return (isinstance(node, cst.Name) and node.value not in ("self", "cls")
                and node.value not in frame.values and not self._names.is_imported(node))

    def _at_call_site(self, layers: Layers, func: cst.BaseExpression, frame: _Frame) -> Layers:
        """A module stored in a name and called (``self.bn(x)``) sits where it is called."""
        if len(layers) != 1:
            return layers
        return (replace(layers[0], location=self._location(func), movable=not frame.conditional,
                        guarded=layers[0].guarded or bool(frame.guarded)),)

    def _function_layer(self, call: cst.Call, tensor_method: bool) -> Layers | None:
        """``F.relu(x)``, ``torch.flatten(x, 1)``; or, when the call is a method of a tensor,
        ``x.relu()``, ``x.view(n, -1)``."""
        where = self._location(call)
        if not tensor_method:
            layer_type = self._names.layer_type(call.func)
            if layer_type is not None and layer_type.is_function:
                return (read_layer(call, layer_type, where, where, movable=False,
                                   int_value=self._constants.int_value),)
            return None
        method = call.func.attr.value
        kind = kind_of_torch_function(method)
        if kind not in _METHOD_KINDS:
            return None
        return (Layer(kind, method, where, where, framework="torch",
                      function=activation_function(method)),)

    def _chain(self, layers: Layers, source: _Node | None) -> _Node | None:
        node = source
        for layer in layers:
            node = _Node(layer, node)
            self._nodes.append(node)
        return node

    # helpers

    def _key(self, node: cst.BaseExpression, frame: _Frame) -> str | None:
        """The name a value is kept under: ``a.b`` for a name or attribute, and ``a.b.fc`` for
        ``a.b["fc"]`` (a ModuleDict entry, the module ``a.b.fc`` reads too) or for ``a.b[name]``
        in a loop over literal names."""
        if not isinstance(node, cst.Subscript):
            return dotted_text(node)
        head, index = self._key(node.value, frame), _index(node)
        name = (frame.loop_keys.get(index.value) if isinstance(index, cst.Name)
                else string_literal(index))
        return f"{head}.{name}" if head is not None and name is not None else None

    def _opaque(self, node: cst.CSTNode) -> Layer:
        where = self._location(node)
        name = dotted_text(node.func) if isinstance(node, cst.Call) else None
        return Layer(None, name or type(node).__name__, where, where)

    def _location(self, node: cst.CSTNode) -> Location:
        span = self._positions[node]
        return Location(span.start.line, span.start.column, span.end.line, span.end.column)

    def _emit(self, layers: Layers, lone: bool = False) -> None:
        """Record a sequence. A lone layer is kept only where it is used (``lone``: a
        Sequential, a data-flow path), so rules see it used without a BatchNorm after it."""
        if len(layers) >= 2 or (lone and layers):
            self._sequences[layers] = None


def _if_branches(statement: cst.If) -> list[_Branch]:
    """The bodies of ``if``/``elif``.../``else``, each ``elif`` with its test."""
    branches = [_Branch(statement.body.body)]
    orelse = statement.orelse
    while isinstance(orelse, cst.If):
        branches.append(_Branch(orelse.body.body, orelse.test))
        orelse = orelse.orelse
    if orelse is not None:
        branches.append(_Branch(orelse.body.body))
    return branches


def _has_else(statement: cst.If) -> bool:
    """Whether an ``if``/``elif`` chain ends in an ``else``: one of its bodies surely runs."""
    orelse = statement.orelse
    while isinstance(orelse, cst.If):
        orelse = orelse.orelse
    return orelse is not None


def _leaves_block(statement: cst.CSTNode) -> bool:
    """Whether a statement surely leaves its block: a line with a ``return``, ``raise``,
    ``break`` or ``continue``."""
    return any(isinstance(small, (cst.Return, cst.Raise, cst.Break, cst.Continue))
               for small in _small_statements(statement) or ())


def _small_statements(statement: cst.CSTNode) -> Sequence[cst.BaseSmallStatement] | None:
    """The simple statements a line holds, or None for a compound statement. A body written
    on its header's line (``if bn: model.add(BatchNormalization())``, fastai's
    ``def forward(self, x): return self.bn(x)``) holds its simple statements directly."""
    if isinstance(statement, cst.SimpleStatementLine):
        return statement.body
    return (statement,) if isinstance(statement, cst.BaseSmallStatement) else None


def _target_names(target: cst.BaseAssignTargetExpression) -> list[str]:
    """The names a ``for`` target binds: ``h`` in ``for h in feats:``, ``a`` and ``b`` in
    ``for a, (b, _) in pairs:``."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [name for element in target.elements for name in _target_names(element.value)]
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []


def _iterated(target: cst.BaseAssignTargetExpression, iterable: cst.BaseExpression
              ) -> list[tuple[str, cst.BaseExpression]]:
    """Each loop name with what it iterates over: ``fc`` with ``self.fcs`` in ``for fc in
    self.fcs:``, ``for i, fc in enumerate(self.fcs):`` or ``for fc, bn in zip(self.fcs,
    self.bns):``."""
    if isinstance(target, cst.Name):
        return [(target.value, iterable)]
    name = dotted_text(iterable.func) if isinstance(iterable, cst.Call) else None
    if name not in ("zip", "enumerate") or not isinstance(target, (cst.Tuple, cst.List)):
        return []
    args = [arg.value for arg in iterable.args if arg.keyword is None and not arg.star]
    if len(args) != len(iterable.args):
        return []
    names = [element.value for element in target.elements]
    if name == "enumerate":
        names = names[1:] if len(names) == 2 and len(args) == 1 else []
    elif len(names) != len(args):
        return []
    return [(named.value, arg) for named, arg in zip(names, args) if isinstance(named, cst.Name)]


def _walruses(node: cst.BaseExpression) -> list[cst.NamedExpr]:
    """The outermost ``name := value`` expressions in an expression, outside lambdas and
    comprehensions (which bind per element, when they run at all)."""
    found: list[cst.NamedExpr] = []

    class _Collector(cst.CSTVisitor):
        def visit_NamedExpr(self, node: cst.NamedExpr) -> bool:
            found.append(node)
            return False

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

        def visit_ListComp(self, node: cst.ListComp) -> bool:
            return False

        def visit_SetComp(self, node: cst.SetComp) -> bool:
            return False

        def visit_DictComp(self, node: cst.DictComp) -> bool:
            return False

        def visit_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
            return False

    node.visit(_Collector())
    return found


def _captured_names(pattern: cst.MatchPattern) -> tuple[str, ...]:
    """The names a ``case`` pattern binds: ``y`` in ``case [y, *rest]:`` or ``case _ as y:``."""
    found: list[str] = []

    class _Collector(cst.CSTVisitor):
        def visit_MatchAs(self, node: cst.MatchAs) -> None:
            if node.name is not None:
                found.append(node.name.value)

        def visit_MatchStar(self, node: cst.MatchStar) -> None:
            if node.name is not None:
                found.append(node.name.value)

        def visit_MatchMapping(self, node: cst.MatchMapping) -> None:
            if node.rest is not None:
                found.append(node.rest.value)

    pattern.visit(_Collector())
    return tuple(found)


def _is_super_init(func: cst.BaseExpression) -> bool:
    """``super().__init__``."""
    return (isinstance(func, cst.Attribute) and func.attr.value == "__init__"
            and isinstance(func.value, cst.Call) and dotted_text(func.value.func) == "super")


def _fixed_in_place(layers: Layers | None) -> Layers | None:
    """Layers written in another function: a fix here must not swap them with local code."""
    return None if layers is None else tuple(replace(layer, movable=False) for layer in layers)


def _repeats(layers: Layers) -> Layers:
    """Layers written once and made several times: two copies, the second fixed in place, the
    first opening after a gap (a swap with the layer before would move it into the repeat,
    and a repeat may make no items)."""
    opened = (replace(layers[0], after_gap=True),) + layers[1:] if layers else layers
    return opened + _fixed_in_place(layers)


def _in_place_receiver(value: cst.BaseExpression) -> cst.BaseExpression | None:
    """``out`` for a statement ``out.add_(x)`` or ``x.relu_()``: a tensor changed in place."""
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) \
            and value.func.attr.value.endswith("_") and not value.func.attr.value.startswith("_"):
        return value.func.value
    return None


def _pairs(target: cst.BaseExpression, value: cst.BaseExpression
           ) -> list[tuple[cst.BaseExpression, cst.BaseExpression]]:
    """``a, b = x, y`` as ``a = x`` and ``b = y``; any other assignment as it is."""
    if (isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, (cst.Tuple, cst.List))
            and len(target.elements) == len(value.elements)
            and not any(isinstance(e, cst.StarredElement) for e in (*target.elements,
                                                                     *value.elements))):
        return [(t.value, v.value) for t, v in zip(target.elements, value.elements)]
    return [(target, value)]


def _path(node: _Node, readers: Counter[int]) -> Layers:
    """The layers from the input to ``node``, each marked where its output is read in several
    places (``readers``: the layers reading it), surely or on some runs."""
    layers = []
    current: _Node | None = node
    while current is not None:
        layer = current.layer
        reads = max(readers[id(current)], current.reads)
        if reads > 1:
            layer = replace(layer, shared_output=True)
        elif reads + current.maybe_reads > 1:
            layer = replace(layer, maybe_shared_output=True)
        layers.append(layer)
        current = current.parent
    return tuple(reversed(layers))


def _contains(outer: Location, inner: Location) -> bool:
    return ((outer.row, outer.column) <= (inner.row, inner.column)
            and (inner.end_row, inner.end_column) <= (outer.end_row, outer.end_column))


def _owner(name: str) -> str:
    """``self.layers`` for ``self.layers.bn``: a module kept in another (a ModuleDict entry,
    ``self.block.bn``) is read wherever its owner is."""
    return ".".join(name.split(".")[:2])


def _is_module_dict(layers: Layers | None) -> bool:
    return (layers is not None and len(layers) == 1 and layers[0].kind is None
            and layers[0].type_name == _MODULE_DICT)


def _index(node: cst.Subscript) -> cst.BaseExpression | None:
    """``"fc"`` in ``layers["fc"]``; None for a slice or several indices."""
    if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
        return node.slice[0].slice.value
    return None


def _literal_bindings(statement: cst.For | cst.While) -> list[dict[str, str]] | None:
    """What each run of ``for name in ["fc", "bn"]:`` binds (``{"name": "fc"}``, then
    ``{"name": "bn"}``); None for any other loop."""
    if not (isinstance(statement, cst.For) and isinstance(statement.target, cst.Name)
            and isinstance(statement.iter, (cst.List, cst.Tuple)) and statement.iter.elements):
        return None
    keys = [string_literal(element.value) for element in statement.iter.elements]
    if None in keys:
        return None
    return [{statement.target.value: key} for key in keys if key is not None]


def _named_items(node: cst.BaseExpression | None) -> list[_Item]:
    """(name, value, item) for each item of a literal mapping: ``[("fc", m), ...]``,
    ``{"fc": m}``, ``dict(fc=m)`` or an ``OrderedDict`` of any of these. The name is None where
    it is not a literal string; other items (``**rest``) are left out."""
    if isinstance(node, (cst.List, cst.Tuple)):
        return [(string_literal(pair.elements[0].value), pair.elements[1].value, pair)
                for pair in (element.value for element in node.elements)
                if isinstance(pair, (cst.Tuple, cst.List)) and len(pair.elements) == 2]
    if isinstance(node, cst.Dict):
        return [(string_literal(element.key), element.value, element) for element in node.elements
                if isinstance(element, cst.DictElement)]
    name = dotted_text(node.func) if isinstance(node, cst.Call) else None
    if name is None or not (name == "dict" or name.endswith("OrderedDict")):
        return []
    items = [item for arg in node.args if arg.keyword is None and not arg.star
             for item in _named_items(arg.value)]
    return items + [(arg.keyword.value, arg.value, arg) for arg in node.args
                    if arg.keyword is not None]


def _is_one_batchnorm(layers: Layers, value: cst.BaseExpression) -> bool:
    return (isinstance(value, cst.Call) and len(layers) == 1
            and layers[0].kind is LayerKind.BATCHNORM)


def _functions_by_name(module: cst.Module) -> dict[str, cst.FunctionDef]:
    """Module-level functions, the ones a call by bare name can reach."""
    return {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}


def _container_calls(module: cst.Module) -> list[cst.Call]:
    """Every call written ``...Sequential(...)`` in the module, outermost first."""
    found: list[cst.Call] = []

    class _Collector(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            name = dotted_text(node.func)
            if name is not None and name.rpartition(".")[2] == "Sequential":
                found.append(node)

    module.visit(_Collector())
    return found
