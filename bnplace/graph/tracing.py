"""Trace a model with torch.fx so that every chain layer stays one node.

:func:`trace` is the entry point the other graph passes (and ``bnplace.fold``) share. It returns a
:class:`Trace`: one or more :class:`TracedPart` (the whole model when it traces, otherwise the
largest submodules that do) plus the parts left untraced and why.

Two things differ from ``torch.fx.symbolic_trace``:

* :class:`ChainTracer` keeps every Linear/Conv/BatchNorm/Dropout/activation module *and every user
  subclass of one* as a leaf (fx would trace into a subclass defined outside ``torch.nn``), so a
  chain layer is always one ``call_module`` node.
* ``self.training`` is not baked in. fx would record ``F.dropout(x, p, self.training)`` with the
  constant the flag had while tracing, so the traced model would keep dropping out in ``eval()``.
  While tracing, every module's ``training`` attribute is a stand-in that turns into a
  ``get_attr('training')`` node when passed to a call, so the traced code reads ``self.training``
  like the original did. A stand-in used in control flow (``if self.training:``) marks the part
  :attr:`TracedPart.training_dependent`: its graph holds only the branch taken while tracing.
  The submodules of such a forward are traced as parts of their own, so only the calls the
  branching forward makes itself are held back. A forward that calls ``torch.utils.checkpoint``
  is held back the same way: fx traces through the checkpoint, and the copy would not recompute.

When the forward fails only because Python reads a shape (``for s in x.size()[1:]``) and example
inputs are given, the model is traced again with those shapes fixed (see
:mod:`bnplace.graph.concrete`); such a part says where in :attr:`TracedPart.concrete`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from bnplace.graph.buffers import kept_buffers, updated_in_graph
from bnplace.graph.frozen import is_frozen_batchnorm
from bnplace.graph.none_checks import savable_none_checks
from bnplace.graph.positional import positionally_used
from bnplace.placement import LAYER_NAMES, LayerKind


# fx would trace into a ScriptModule's compiled code and replace it by a plain module calling
# ``self.pre._c.forward``: it is kept whole, as it is, and named among the untraced parts.
SCRIPTED = "a TorchScript module (torch.jit.script): its compiled forward is kept as it is"
# fx refuses to trace into a torch.compile wrapper, and a copy of one still calls the original's
# compiled forward: it is kept whole too.
COMPILED = ("a torch.compile module: its compiled forward is kept as it is (rewrite the model "
            "before compiling it)")


def _kept_compiled(module: nn.Module) -> str | None:
    """Why a compiled submodule (TorchScript, torch.compile) is kept whole, or None."""
    if isinstance(module, torch.jit.ScriptModule):
        return SCRIPTED
    if _is_torch_compiled(module):
        return COMPILED
    return None


def _is_torch_compiled(module: nn.Module) -> bool:
    """A ``torch.compile`` wrapper; looked up only once dynamo is loaded (importing it is slow)."""
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    return eval_frame is not None and isinstance(module, eval_frame.OptimizedModule)


class TraceError(RuntimeError):
    """Nothing of the model could be traced; the message names the failing call and what to try."""


@functools.lru_cache(maxsize=None)
def module_types(kind: LayerKind) -> tuple[type[nn.Module], ...]:
    """The ``torch.nn`` classes a layer kind names in :data:`bnplace.placement.LAYER_NAMES`."""
    found = []
    for name in LAYER_NAMES[kind].torch_modules:
        cls = getattr(nn, name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            found.append(cls)
    return tuple(found)


@functools.lru_cache(maxsize=None)
def chain_module_types() -> tuple[type[nn.Module], ...]:
    """Every module class that plays a role in a chain (kept as a leaf while tracing)."""
    kinds = (LayerKind.LINEAR, LayerKind.ACTIVATION, LayerKind.DROPOUT, LayerKind.BATCHNORM)
    return tuple(cls for kind in kinds for cls in module_types(kind))


class _TrainingFlag:
    """Stands in for ``module.training`` while tracing (see the module docstring)."""

    __slots__ = ("value", "owner", "used_in_control_flow")

    def __init__(self, value: bool, owner: str) -> None:
        self.value = bool(value)
        self.owner = owner
        self.used_in_control_flow = False

    def __bool__(self) -> bool:
        self.used_in_control_flow = True
        return self.value

    def __eq__(self, other: object) -> bool:
        self.used_in_control_flow = True
        return self.value == (other.value if isinstance(other, _TrainingFlag) else other)

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return "self.training"


class ChainTracer(fx.Tracer):
    """An fx tracer that keeps chain layers (and their subclasses) as leaves.

    ``leaf_modules`` adds more leaves: module classes, or qualified module names. ``opaque`` holds
    qualified names that must stay leaves because their forward does not trace.
    """

    def __init__(self, leaf_modules: Iterable[type[nn.Module] | str] = (),
                 opaque: Iterable[str] = ()) -> None:
        super().__init__()
        leaf = list(leaf_modules)
        self._leaf_types = chain_module_types() + tuple(x for x in leaf if isinstance(x, type))
        self._leaf_names = {x for x in leaf if isinstance(x, str)} | set(opaque)
        self._stack: list[str] = []
        self.failed_in: str | None = None  # innermost traced module whose forward raised
        self._training_node: fx.Node | None = None
        self.flags: list[_TrainingFlag] = []
        self.baked: str | None = None  # why self.training had to be baked in, if it was
        self.fixed: list[str] = []  # where a real value stood in for a proxy (ConcreteTracer)
        self.compiled: dict[str, str] = {}  # compiled submodules met (kept whole), and why
        self.checkpointing: list[str] = []  # modules whose forward calls torch.utils.checkpoint
        self.updated_buffers: dict[str, str] = {}  # buffers a forward updates -> their owner

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        wrapped = _wrapper_problem(m, module_qualified_name)
        if wrapped is not None:  # fx would keep it whole (a torch.nn class), chains unseen
            raise TraceError(wrapped)
        compiled = _kept_compiled(m)
        if compiled is not None:
            self.compiled.setdefault(module_qualified_name, compiled)
            return True
        if module_qualified_name in self._leaf_names or isinstance(m, self._leaf_types) \
                or is_frozen_batchnorm(m):
            return True
        return super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward: Any, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        name = self.path_of_module(m)
        if self.is_leaf_module(m, name):
            return super().call_module(m, forward, args, kwargs)
        self._stack.append(name)
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:
                self.failed_in = name
            raise
        finally:
            self._stack.pop()

    def trace(self, root: nn.Module | Callable[..., Any],
              concrete_args: dict[str, Any] | None = None) -> fx.Graph:
        self.checkpointing = []
        with _noting_checkpoints(self), kept_buffers(root) as changed:
            graph = super().trace(root, concrete_args)
        self.updated_buffers = {**changed, **updated_in_graph(graph, root)}
        return graph

    def note_checkpoint(self) -> None:
        """Record that the forward being traced calls ``torch.utils.checkpoint``."""
        self.checkpointing.append(self._stack[-1] if self._stack else "")

    def held_back(self) -> dict[str, str]:
        """The modules (qualified names, '' = the root) whose forward a traced copy would change,
        and how: a branch on ``self.training`` keeps one branch, fx traces through
        ``torch.utils.checkpoint``, so the copy would no longer recompute in backward, and it
        misses buffer updates (see :mod:`bnplace.graph.buffers`)."""
        held = {f.owner: "branches on self.training, so a traced copy would keep only one branch"
                for f in self.flags if f.used_in_control_flow}
        for owner in self.checkpointing:
            held.setdefault(owner, "calls torch.utils.checkpoint, which a traced copy would "
                                   "drop (it would keep every activation for backward)")
        for owner in self.updated_buffers.values():
            held.setdefault(owner, str(self.buffer_update(owner)))
        return held

    def buffer_update(self, owner: str) -> str | None:
        """How the forward of ``owner`` updates a buffer of its own, if it does."""
        names = [b.rpartition(".")[2] for b, o in self.updated_buffers.items() if o == owner]
        return (f"updates its buffer `{names[0]}` in place, which a traced copy would not do "
                f"the same way") if names else None

    def create_arg(self, a: Any) -> Any:
        if isinstance(a, _TrainingFlag):
            if self._training_node is None:
                self._training_node = self.create_node("get_attr", "training", (), {})
            return self._training_node
        return super().create_arg(a)


# How torch.utils.checkpoint.checkpoint runs its function (reentrant, or not): names looked up in
# its module at every call, so they are seen however the model imported ``checkpoint``.
_CHECKPOINT_RUNNERS = ("CheckpointFunction", "_checkpoint_without_reentrant_generator")


class _NotedRunner:
    """A checkpoint runner that tells the tracer it was called, then runs as it would."""

    def __init__(self, runner: Any, tracer: ChainTracer) -> None:
        self.runner = runner
        self.tracer = tracer

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.tracer.note_checkpoint()
        return self.runner(*args, **kwargs)

    def apply(self, *args: Any, **kwargs: Any) -> Any:  # an autograd.Function's entry
        self.tracer.note_checkpoint()
        with warnings.catch_warnings():
            # the reentrant runner warns that the tracer's proxies do not require grad: true of
            # tracing, not of the user's model, so not theirs to see
            warnings.filterwarnings("ignore", "None of the inputs have requires_grad=True",
                                    UserWarning)
            return self.runner.apply(*args, **kwargs)


@contextlib.contextmanager
def _noting_checkpoints(tracer: ChainTracer) -> Any:
    """While ``tracer`` traces, a call to ``torch.utils.checkpoint`` is recorded: fx traces
    through it, and a traced copy would not checkpoint any more."""
    import torch.utils.checkpoint as checkpoint

    runners = {name: getattr(checkpoint, name) for name in _CHECKPOINT_RUNNERS
               if hasattr(checkpoint, name)}
    try:
        for name, runner in runners.items():
            setattr(checkpoint, name, _NotedRunner(runner, tracer))
        yield
    finally:
        for name, runner in runners.items():
            setattr(checkpoint, name, runner)


@dataclass
class TracedPart:
    """One traced module: the whole model (``prefix == ''``) or a submodule of it.

    ``graph`` refers to modules by their name inside ``module``; :meth:`qualified` turns such a
    name into the name inside the whole model.
    """

    prefix: str
    module: nn.Module
    graph: fx.Graph
    training_dependent: str | None = None  # why the graph does not train like the forward
    opaque: tuple[str, ...] = ()  # submodules (names inside ``module``) kept whole: no trace
    concrete: str | None = None  # where shapes were fixed from the example inputs (file:line)
    updates_buffers: str | None = None  # how its own forward updates a buffer, which a graph misses
    _graph_module: fx.GraphModule | None = field(default=None, repr=False)
    _modules: dict[str, nn.Module] | None = field(default=None, repr=False)

    @property
    def modules(self) -> dict[str, nn.Module]:
        """``dict(module.named_modules())``, computed once (the graph's module targets)."""
        if self._modules is None:
            self._modules = dict(self.module.named_modules())
        return self._modules

    def qualified(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def add_module(self, base: str, module: nn.Module) -> str:
        """Register ``module`` under a free name near ``base`` (a dotted path); returns its target.

        It goes into the GraphModule when that is built already, else into ``module``, so the
        graph built later (or now) calls it either way.
        """
        parent_name, _, attr = base.rpartition(".")
        holder = self._graph_module if self._graph_module is not None else self.module
        parent = holder.get_submodule(parent_name) if parent_name else holder
        name, i = attr, 1
        while hasattr(parent, name):
            name, i = f"{attr}{i}", i + 1
        parent.add_module(name, module)
        full = f"{parent_name}.{name}" if parent_name else name
        self.modules[full] = module
        return full

    @property
    def graph_module(self) -> fx.GraphModule:
        """A GraphModule of this part (built on first use; shares the part's submodules)."""
        if self._graph_module is None:
            self._graph_module = graph_module(self.module, self.graph)
        return self._graph_module


def graph_module(module: nn.Module, graph: fx.Graph) -> fx.GraphModule:
    """``fx.GraphModule(module, graph)`` named like ``module``'s class, in its modes: the plain
    containers fx creates on the way to a submodule (``backbone`` for ``backbone.0``) take the
    ``training`` flag of the module they stand for, not ``nn.Module``'s default ``True``."""
    gm = fx.GraphModule(module, graph, class_name=type(module).__name__)
    for name, sub in gm.named_modules():
        if type(sub) is nn.Module:
            sub.training = module.get_submodule(name).training
    return gm


@dataclass
class Trace:
    """The result of :func:`trace`: the traced parts, and the parts left as they were and why."""

    model: nn.Module
    parts: list[TracedPart]
    untraced: dict[str, str]  # qualified module name ('' = the model itself) -> why

    @property
    def complete(self) -> bool:
        """True when the whole model traced as one graph."""
        return len(self.parts) == 1 and self.parts[0].prefix == "" and not self.untraced

    @property
    def concrete(self) -> dict[str, str]:
        """The parts traced with shapes fixed from the example inputs, and where they were fixed."""
        return {p.prefix: p.concrete for p in self.parts if p.concrete}


def trace(model: nn.Module, *, leaf_modules: Iterable[type[nn.Module] | str] = (),
          concrete_args: Mapping[str, Any] | None = None, example_inputs: Any = None) -> Trace:
    """Trace ``model`` with :class:`ChainTracer`, falling back to its traceable parts.

    When a submodule's forward does not trace, it is kept whole (a leaf) and traced on its own,
    down to its children if need be; when the model's own forward does not trace, its children are
    traced one by one. ``Trace.untraced`` says which forwards were left and why. Raises
    :class:`TraceError` only when no part traces at all. ``concrete_args`` applies to the model's
    own forward. With ``example_inputs`` (a tensor or a tuple), a model that does not trace is
    traced again with the shapes its Python code reads fixed from them, and kept when that graph
    gives the model's outputs at their batch size and another (:mod:`bnplace.graph.concrete`).
    """
    wrapped = _wrapper_problem(model)
    if wrapped is not None:
        raise TraceError(wrapped)
    leaf = tuple(leaf_modules)
    parts: list[TracedPart] = []
    untraced: dict[str, str] = {}
    first_error: list[BaseException] = []
    concrete = {**_none_defaults(model), **(concrete_args or {})}
    inputs = None if example_inputs is None else _as_tuple(example_inputs)
    rejected = _trace_into(model, "", leaf, concrete or None, parts, untraced, first_error, inputs)
    if not parts:
        err = first_error[0] if first_error else None
        raise TraceError(_nothing_traces_message(model, err, rejected, inputs is not None))
    parts.sort(key=lambda p: p.prefix)
    return Trace(model, parts, untraced)


_DATA_PARALLEL = (nn.DataParallel, nn.parallel.DistributedDataParallel)


def _wrapper_problem(model: nn.Module, name: str = "") -> str | None:
    """Why ``model`` (the submodule ``name``, '' for the model itself) is a wrapper to unwrap
    first, or None.

    A ``torch.compile`` wrapper's forward does not trace, and a copy of it would not run the
    rewritten layers (a compiled submodule is kept whole instead: see :func:`_kept_compiled`). A
    ``DataParallel`` or ``DistributedDataParallel`` wrapper only runs its ``.module`` on several
    devices (fx cannot trace its scatter), and is built over the parameters it was given (DDP
    also registers them with its process group on every rank), so a rewritten model needs a
    wrapper of its own; fx would keep a wrapped submodule whole, its chains unseen.
    """
    if not name and _is_torch_compiled(model):
        return (f"{type(model._orig_mod).__name__} is compiled with torch.compile, whose "
                f"forward fx cannot trace: pass the model before compiling it "
                f"(`model._orig_mod`)")
    if isinstance(model, _DATA_PARALLEL):
        inner = type(model.module).__name__
        if not name:
            return (f"{type(model).__name__} only runs {inner} on several devices: pass "
                    f"`model.module`, and wrap the model bnplace returns again")
        return (f"`{name}` is a {type(model).__name__}, which only runs {inner} on several "
                f"devices: unwrap it first (`model.{name} = model.{name}.module`), and wrap "
                f"that part of the model bnplace returns again")
    return None


def _as_tuple(example_inputs: Any) -> tuple[Any, ...]:
    return tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) \
        else (example_inputs,)


def _none_defaults(model: nn.Module) -> dict[str, None]:
    """The forward's optional arguments that default to None (``mask=None``), fixed to None.

    A proxy is never None, so ``if mask is None:`` would silently trace the branch the usual call
    (without the argument) does not take; fixed, fx keeps the right branch and the traced copy
    refuses another value. ``concrete_args={"mask": torch.fx.PH}`` keeps it an input instead.
    """
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: None for p in parameters if p.default is None
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _trace_into(module: nn.Module, prefix: str, leaf: tuple[Any, ...],
                concrete_args: dict[str, Any] | None, parts: list[TracedPart],
                untraced: dict[str, str], first_error: list[BaseException],
                example_inputs: tuple[Any, ...] | None = None) -> str | None:
    """Trace ``module`` (or what of it traces) into ``parts``. Returns why tracing it with shapes
    fixed from ``example_inputs`` was rejected, if it was."""
    attempt = _attempt(module, lambda opaque: ChainTracer(leaf, opaque), concrete_args)
    rejected = None
    if attempt.errors and example_inputs is not None:
        attempt, rejected = _concrete_attempt(module, leaf, concrete_args, example_inputs,
                                              attempt)
    attempt = _with_branching_kept_whole(module, attempt, leaf, concrete_args)
    for name, err in attempt.errors.items():
        if not first_error:
            first_error.append(err)
        untraced[_join(prefix, name)] = _describe_error(err) + (f"; {rejected}" if rejected else "")
    if attempt.graph is None:
        _trace_children(module, prefix, leaf, parts, untraced, first_error)
        return rejected
    tracer = attempt.tracer
    dependent = tracer.baked or next(
        (f"the forward of `{_join(prefix, owner) or type(module).__name__}` {why}"
         for owner, why in tracer.held_back().items()), None)
    parts.append(TracedPart(prefix, module, attempt.graph, dependent, tuple(attempt.opaque),
                            ", ".join(tracer.fixed) or None, tracer.buffer_update("")))
    for name, why in tracer.compiled.items():
        untraced[_join(prefix, name)] = why
    for name in attempt.opaque:
        if name in attempt.errors:  # its forward does not trace: its children may
            _trace_children(module.get_submodule(name), _join(prefix, name), leaf, parts,
                            untraced, first_error)
        else:  # kept whole beside a forward that branches on self.training
            _trace_into(module.get_submodule(name), _join(prefix, name), leaf, None, parts,
                        untraced, first_error)
    return rejected


def _with_branching_kept_whole(module: nn.Module, attempt: _Attempt, leaf: tuple[Any, ...],
                               concrete_args: dict[str, Any] | None) -> _Attempt:
    """The attempt traced again with the forwards that branch on ``self.training`` separated
    from the rest, so a branch in one forward does not hold back the chains of every other.

    A submodule that branches is kept whole (then traced on its own, where the same applies);
    when ``module``'s own forward branches (torchvision's Inception returning aux logits only in
    training), its submodules are kept whole and traced on their own, and its graph holds only
    its own calls. A child its forward picks by position stays inside, so no rewrite moves it.
    """
    if attempt.graph is None or attempt.tracer.baked:
        return attempt
    owners = set(attempt.tracer.held_back())
    if "" in owners:
        by_position = positionally_used(module)
        kept = [name for name, child in module.named_children()
                if name not in by_position and _kept_compiled(child) is None
                and not _is_chain_leaf(child, leaf)]
    else:
        kept = sorted(o for o in owners if not any(o.startswith(f"{p}.") for p in owners))
    kept = [name for name in kept if name not in attempt.opaque]
    if not kept:
        return attempt
    with torch.random.fork_rng(devices=[]):  # a shape-concrete tracer runs the forward
        again = _attempt(module, attempt.make_tracer, concrete_args, kept)
    return again if again.graph is not None else attempt


def _trace_children(module: nn.Module, prefix: str, leaf: tuple[Any, ...],
                    parts: list[TracedPart], untraced: dict[str, str],
                    first_error: list[BaseException]) -> None:
    by_position = positionally_used(module)
    for name, child in module.named_children():
        wrapped = _wrapper_problem(child, _join(prefix, name))
        if wrapped is not None:
            raise TraceError(wrapped)
        if name in by_position:
            untraced[_join(prefix, name)] = (
                f"the forward of `{prefix or type(module).__name__}`, which does not trace, "
                f"indexes or iterates it, so changing its layers would change what that code picks")
        elif (why := _kept_compiled(child)) is not None:
            untraced[_join(prefix, name)] = why
        elif not _is_chain_leaf(child, leaf):
            _trace_into(child, _join(prefix, name), leaf, None, parts, untraced, first_error)


@dataclass
class _Attempt:
    """One way of tracing a module: its graph (None when its own forward failed), the submodules
    kept whole, and the error that made each of them (or the module itself, under '') fail."""

    tracer: ChainTracer
    graph: fx.Graph | None
    opaque: list[str]
    errors: dict[str, BaseException]
    make_tracer: Callable[[list[str]], ChainTracer]


def _attempt(module: nn.Module, make_tracer: Callable[[list[str]], ChainTracer],
             concrete_args: dict[str, Any] | None, kept: Iterable[str] = ()) -> _Attempt:
    """Trace ``module`` with the submodules named in ``kept`` whole, also keeping each submodule
    whose forward fails whole and trying again."""
    opaque: list[str] = list(kept)
    errors: dict[str, BaseException] = {}
    while True:
        tracer = make_tracer(opaque)
        try:
            graph = _trace_with_flags(tracer, module, concrete_args)
        except TraceError:  # bnplace's own refusal (a wrapped submodule), not the user code's
            raise
        except Exception as err:  # user code: anything can fail while tracing
            culprit = tracer.failed_in
            if culprit and culprit not in opaque:
                opaque.append(culprit)
                errors[culprit] = err
                continue
            errors[""] = err
            return _Attempt(tracer, None, opaque, errors, make_tracer)
        return _Attempt(tracer, graph, opaque, errors, make_tracer)


def _concrete_attempt(module: nn.Module, leaf: tuple[Any, ...],
                      concrete_args: dict[str, Any] | None, example_inputs: tuple[Any, ...],
                      plain: _Attempt) -> tuple[_Attempt, str | None]:
    """The attempt with shapes fixed from the example inputs when it traces more than ``plain``
    and gives the model's outputs; else ``plain``, and why the other was rejected if it was."""
    from bnplace.graph import concrete

    with concrete.rng_kept():
        try:
            shadow = concrete.ShadowRun(module, example_inputs, concrete_args)
        except TypeError as err:
            return plain, f"the example inputs do not fit its forward ({first_line(err)})"
        attempt = _attempt(module, lambda opaque: concrete.ConcreteTracer(leaf, opaque, shadow),
                           concrete_args)
        if attempt.graph is None:
            return plain, (f"with shapes fixed from the example inputs: "
                           f"{_describe_error(attempt.errors[''])}")
        if plain.graph is not None and not set(attempt.opaque) < set(plain.opaque):
            return plain, None
        reason = concrete.check_graph(module, attempt.graph, example_inputs)
    if reason is not None:
        return plain, f"traced with shapes fixed from the example inputs, {reason}"
    return attempt, None


# torch builtins with a bool ``train``/``training`` parameter: their argument parser rejects the
# stand-in flag before __torch_function__ runs, so they are wrapped while tracing.
_TRAINING_BUILTINS = ("dropout", "dropout_", "alpha_dropout", "alpha_dropout_", "feature_dropout",
                      "feature_dropout_", "feature_alpha_dropout", "feature_alpha_dropout_",
                      "batch_norm", "rrelu", "rrelu_")


def _flag_aware(builtin: Any) -> Any:
    @functools.wraps(builtin)
    def call(*args: Any, **kwargs: Any) -> Any:
        values = (*args, *kwargs.values())
        if any(isinstance(v, _TrainingFlag) for v in values):
            proxy = next((v for v in values if isinstance(v, fx.Proxy)), None)
            if proxy is not None:
                return proxy.tracer.create_proxy("call_function", builtin, args, kwargs)
            args = tuple(a.value if isinstance(a, _TrainingFlag) else a for a in args)
            kwargs = {k: v.value if isinstance(v, _TrainingFlag) else v for k, v in kwargs.items()}
        return builtin(*args, **kwargs)
    return call


def _trace_with_flags(tracer: ChainTracer, module: nn.Module,
                      concrete_args: dict[str, Any] | None) -> fx.Graph:
    saved = [(m, m.__dict__.get("training", True)) for m in module.modules()]
    builtins = {name: getattr(torch, name) for name in _TRAINING_BUILTINS if hasattr(torch, name)}
    try:
        for name, m in module.named_modules():
            flag = _TrainingFlag(m.__dict__.get("training", True), name)
            tracer.flags.append(flag)
            m.__dict__["training"] = flag
        for name, builtin in builtins.items():
            setattr(torch, name, _flag_aware(builtin))
        try:
            return _savable(tracer.trace(module, concrete_args))
        except TypeError as error:
            if "_TrainingFlag" not in str(error):
                raise
            err = error
    finally:
        for name, builtin in builtins.items():
            setattr(torch, name, builtin)
        for m, value in saved:
            m.__dict__["training"] = value
    # a torch builtin took self.training as a bool: trace with the plain flag, which fx bakes in
    tracer.baked = (f"`{type(module).__name__}` passes self.training to a torch builtin that "
                    f"fx records as a constant ({first_line(err)})")
    tracer.flags = []
    tracer.failed_in = None
    return _savable(tracer.trace(module, concrete_args))


def _savable(graph: fx.Graph) -> fx.Graph:
    """``graph`` in a form that ``torch.save`` and ``torch.load`` take (see :mod:`.none_checks`).

    Annotations that are strings (``from __future__ import annotations``) are dropped: fx cannot
    pickle a GraphModule whose code refers to one, so a rewritten model from such a file could not
    be saved.
    """
    for node in graph.nodes:
        if isinstance(node.type, str):
            node.type = None
    return savable_none_checks(graph)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _is_chain_leaf(module: nn.Module, leaf: tuple[Any, ...]) -> bool:
    leaf_types = chain_module_types() + tuple(x for x in leaf if isinstance(x, type))
    return isinstance(module, leaf_types) or not any(True for _ in module.children())


def _join(prefix: str, name: str) -> str:
    """The qualified name of ``name`` inside ``prefix``; '' (the module itself) is ``prefix``."""
    return f"{prefix}.{name}" if prefix and name else prefix or name


_TORCH_DIR = os.path.dirname(torch.__file__)
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_code_place(frames: Iterable[traceback.FrameSummary]) -> str | None:
    """``file.py:12 `code``` for the innermost frame that is user code (not torch, not bnplace).

    ``frames`` go from the outermost to the innermost, as ``traceback.extract_tb`` gives them.
    """
    user = [f for f in frames
            if not f.filename.startswith(_TORCH_DIR) and not f.filename.startswith(_OWN_DIR)]
    if not user:
        return None
    line = (user[-1].line or "").strip()
    place = f"{os.path.basename(user[-1].filename)}:{user[-1].lineno}"
    return f"{place} `{line}`" if line else place


def _describe_error(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    message = f"{type(err).__name__}: {text}" if text else type(err).__name__
    place = user_code_place(traceback.extract_tb(err.__traceback__))
    return f"{message} at {place}" if place else message


def _nothing_traces_message(model: nn.Module, err: BaseException | None, rejected: str | None,
                            had_examples: bool) -> str:
    what = f"{type(model).__name__}.forward"
    reason = _describe_error(err) if err is not None else "no submodule traces either"
    if rejected:
        reason += f"; {rejected}"
    examples = "" if had_examples else (
        ", or example_inputs=... when the failing code reads only shapes (`for s in x.shape`): "
        "it is then traced with those shapes fixed")
    return (f"cannot trace {what}: {reason}; nothing in the model traces. Try "
            f"leaf_modules=[...] to keep the failing submodule whole, or concrete_args={{...}} "
            f"to fix the argument its control flow depends on{examples}")
