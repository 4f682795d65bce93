"""Output shapes on fake tensors, and the BatchNorm that fits a linear layer's output.

The BN kind and width come from the output's rank and channel axis:

* Conv1d/2d/3d output ``(N, C, ...)``: ``BatchNorm1d/2d/3d(C)``.
* Linear output ``(N, C)``: ``BatchNorm1d(C)``.
* Linear output ``(N, L, C)`` or ``(N, H, W, C)`` (a Linear applied on channel-last input):
  :class:`ChannelLastBatchNorm` over the last axis; BatchNorm1d would normalize axis 1.

Without example inputs the rank of a Linear's output is unknown, so a Linear gets a
:class:`ChannelLastBatchNorm`: it is a ``BatchNorm1d`` (same parameters, buffers and state_dict
keys) that is right for every rank.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch import fx, nn

from bnplace.graph.buffers import kept_buffers
from bnplace.graph.copying import copy_module
from bnplace.graph.tracing import Trace


class ChannelLastBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the last axis of ``(N, C)``, ``(N, L, C)``, ``(N, H, W, C)``... inputs.

    A ``BatchNorm1d`` subclass: its statistics and affine parameters are per channel, exactly as
    a BatchNorm1d's, and folding it into the Linear before it works the same way.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - torch's name
        if input.dim() == 2:
            return super().forward(input)
        flat = input.reshape(-1, input.shape[-1])
        return super().forward(flat).reshape(input.shape)


def batchnorm_for(linear: nn.Module | None, function_name: str | None, width: int | None,
                  shape: tuple[int, ...] | None, like: torch.Tensor | None) -> nn.Module:
    """A fresh BatchNorm for the output of a linear layer (module, or functional by name)."""
    conv_rank = _conv_rank(linear, function_name)
    if shape is not None and len(shape) >= 2:
        width = shape[1] if conv_rank else shape[-1]
    if width is None:
        raise ValueError("cannot tell the width of the layer's output; pass example_inputs")
    device = dtype = None
    if like is not None and not _uninitialized(like):
        device, dtype = like.device, like.dtype
    if conv_rank:
        cls: type[nn.Module] = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[conv_rank]
    elif shape is not None and len(shape) == 2:
        cls = nn.BatchNorm1d
    else:
        cls = ChannelLastBatchNorm
    return _fresh(cls, width, device, dtype)


def _fresh(cls: type[nn.Module], width: int, device: Any, dtype: Any) -> nn.Module:
    """``cls(width)``; copying a cached fresh one is ~10x faster than BatchNorm's constructor."""
    key = (cls, width, device, dtype, torch.get_default_dtype())
    template = _TEMPLATES.get(key)
    if template is None:
        if len(_TEMPLATES) > 256:
            _TEMPLATES.clear()
        template = _TEMPLATES[key] = cls(width, device=device, dtype=dtype)
    return copy_module(template)


_TEMPLATES: dict[tuple[Any, ...], nn.Module] = {}


def _conv_rank(linear: nn.Module | None, function_name: str | None) -> int:
    if isinstance(linear, nn.modules.conv._ConvNd):
        return len(linear.kernel_size)
    if function_name and function_name.startswith("conv") and function_name[4:5].isdigit():
        return int(function_name[4])
    return 0


def _uninitialized(t: torch.Tensor) -> bool:
    return isinstance(t, nn.parameter.UninitializedTensorMixin)


def as_tuple(example_inputs: Any) -> tuple[Any, ...]:
    if isinstance(example_inputs, (tuple, list)):
        return tuple(example_inputs)
    return (example_inputs,)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Everything in eval mode (so no BN statistic or counter moves), and each module's own mode
    restored afterwards: ``model.train()`` would also wake a submodule the user froze in eval."""
    saved = [(m, m.training) for m in model.modules()]
    try:
        for m, _ in saved:
            m.training = False
        yield
    finally:
        for m, value in saved:
            m.training = value


@contextlib.contextmanager
def _plain_tensors_kept(model: nn.Module) -> Iterator[None]:
    """Tensors the modules hold as plain attributes (not parameters or buffers) as they were,
    afterwards. Hooks such as the old-style ``nn.utils.spectral_norm`` and ``weight_norm`` set
    ``module.weight`` on every call: a fake run would leave a FakeTensor on the user's model (or
    the rewritten one), which cannot be copied or saved."""
    from torch._subclasses.fake_tensor import FakeTensor

    saved = [(m, {k: v for k, v in vars(m).items() if isinstance(v, torch.Tensor)})
             for m in model.modules()]
    try:
        yield
    finally:
        for m, tensors in saved:
            for key, value in list(vars(m).items()):
                if key in tensors:
                    m.__dict__[key] = tensors[key]
                elif isinstance(value, FakeTensor):  # cached by a hook during the fake run
                    del m.__dict__[key]


def propagate_shapes(traced: Trace, example_inputs: Any, real_fallback: bool = False) -> None:
    """Record ``node.meta['tensor_meta']`` on every traced part's nodes, on fake tensors.

    Runs in eval mode on fake tensors, so no running statistic moves and nothing is computed.
    With ``real_fallback`` (for a model that is a private copy), a part that fake tensors cannot
    run (an uninitialized lazy module, a data-dependent op) runs on the real inputs instead, in
    eval mode without gradients. Parts that still fail are left without shapes (with a warning).
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    inputs = as_tuple(example_inputs)
    if _has_uninitialized_lazy(traced.model):
        # fake tensors would initialize lazy parameters with fakes: only a private copy may run
        if real_fallback:
            with eval_mode(traced.model), torch.no_grad():
                traced.model(*inputs)  # materializes the lazy modules of the copy
        else:
            warnings.warn("bnplace: no shapes: the model has uninitialized lazy modules; run it "
                          "once first", stacklevel=3)
            return
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    fake_inputs = tuple(fake_mode.from_tensor(t) if isinstance(t, torch.Tensor) else t
                        for t in inputs)
    for part in traced.parts:  # built outside eval mode: a GraphModule copies its root's flag
        part.graph_module
    with eval_mode(traced.model), _plain_tensors_kept(traced.model), \
            kept_buffers(traced.model), torch.no_grad():
        if len(traced.parts) == 1 and traced.parts[0].prefix == "":
            part_inputs = {"": (fake_inputs, {})}
        else:
            part_inputs = _capture_part_inputs(traced, fake_inputs, fake_mode,
                                               inputs if real_fallback else None)
        for part in traced.parts:
            args = part_inputs.get(part.prefix)
            if args is None:
                continue
            try:
                with fake_mode:
                    _ShapeRecorder(part.graph_module).run(*_positional(part.graph, args))
                continue
            except Exception as err:  # user code under fake tensors: report, go on without shapes
                error: Exception = err
            if real_fallback and part.prefix == "":
                try:
                    _ShapeRecorder(part.graph_module).run(*_positional(part.graph, (inputs, {})))
                    continue
                except Exception as err:
                    error = err
            warnings.warn(f"bnplace: no shapes for `{part.prefix or 'model'}`: "
                          f"{type(error).__name__}: {_first_line(error)}", stacklevel=3)


def _has_uninitialized_lazy(model: nn.Module) -> bool:
    from torch.nn.modules.lazy import LazyModuleMixin

    return any(isinstance(m, LazyModuleMixin) and m.has_uninitialized_params()
               for m in model.modules())


def _capture_part_inputs(traced: Trace, fake_inputs: tuple[Any, ...], fake_mode: Any,
                         real_inputs: tuple[Any, ...] | None) -> dict[str, tuple[Any, ...]]:
    """Run the whole model on fake inputs, recording what each traced part is called with.

    When fake tensors cannot run it and ``real_inputs`` are given, run it on those instead.
    """
    captured: dict[str, tuple[Any, ...]] = {}
    handles = []

    def hook_for(prefix: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            captured.setdefault(prefix, (args, kwargs))  # type: ignore[arg-type]
        return hook

    for part in traced.parts:
        handles.append(part.module.register_forward_pre_hook(hook_for(part.prefix),
                                                             with_kwargs=True))
    try:
        try:
            with fake_mode:
                traced.model(*fake_inputs)
        except Exception:
            if real_inputs is None:
                raise
            captured.clear()
            traced.model(*real_inputs)
    except Exception as err:
        warnings.warn(f"bnplace: could not run the model to find shapes: "
                      f"{type(err).__name__}: {_first_line(err)}", stacklevel=4)
    finally:
        for h in handles:
            h.remove()
    return captured  # type: ignore[return-value]


def _positional(graph: fx.Graph, captured: tuple[tuple[Any, ...], dict[str, Any]]
                ) -> tuple[Any, ...]:
    args, kwargs = captured
    values = list(args)
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    for node in placeholders[len(values):]:
        if node.target in kwargs:
            values.append(kwargs[node.target])
        elif node.args:
            values.append(node.args[0])
        else:
            break
    return tuple(values)


class TensorMeta(NamedTuple):
    """What shape propagation records in ``node.meta['tensor_meta']``."""

    shape: tuple[int, ...]
    dtype: torch.dtype


class _ShapeRecorder(fx.Interpreter):
    """Runs a graph, recording each tensor result's shape (kept for the nodes that ran when a
    later node fails)."""

    def run_node(self, n: fx.Node) -> Any:
        result = super().run_node(n)
        if isinstance(result, torch.Tensor):
            n.meta["tensor_meta"] = TensorMeta(tuple(result.shape), result.dtype)
        return result


def output_shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(shape) if shape is not None else None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
