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
from typing import Any

import torch
from torch import fx, nn

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
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Everything in eval mode (so no BN statistic or counter moves), restored afterwards."""
    saved = [(m, m.training) for m in model.modules()]
    try:
        for m, _ in saved:
            m.training = False
        yield
    finally:
        for m, value in saved:
            m.training = value


def propagate_shapes(traced: Trace, example_inputs: Any) -> None:
    """Record ``node.meta['tensor_meta']`` on every traced part's nodes, on fake tensors.

    Runs in eval mode on fake tensors, so no running statistic moves and nothing is computed.
    Parts that cannot be propagated are left without shapes (with a warning).
    """
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.passes.shape_prop import ShapeProp

    inputs = as_tuple(example_inputs)
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    fake_inputs = tuple(fake_mode.from_tensor(t) if isinstance(t, torch.Tensor) else t
                        for t in inputs)
    with _eval_mode(traced.model), torch.no_grad():
        if len(traced.parts) == 1 and traced.parts[0].prefix == "":
            part_inputs = {"": (fake_inputs, {})}
        else:
            part_inputs = _capture_part_inputs(traced, fake_inputs, fake_mode)
        for part in traced.parts:
            args = part_inputs.get(part.prefix)
            if args is None:
                continue
            try:
                with fake_mode:
                    ShapeProp(part.graph_module).propagate(*_positional(part.graph, args))
            except Exception as err:  # user code under fake tensors: report, go on without shapes
                warnings.warn(f"bnplace: no shapes for `{part.prefix or 'model'}`: "
                              f"{type(err).__name__}: {err}", stacklevel=3)


def _capture_part_inputs(traced: Trace, fake_inputs: tuple[Any, ...], fake_mode: Any
                         ) -> dict[str, tuple[Any, ...]]:
    """Run the whole model on fake inputs, recording what each traced part is called with."""
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
        with fake_mode:
            traced.model(*fake_inputs)
    except Exception as err:
        warnings.warn(f"bnplace: could not run the model on fake inputs to find shapes: "
                      f"{type(err).__name__}: {err}", stacklevel=4)
    finally:
        for h in handles:
            h.remove()
    return captured  # type: ignore[return-value]


def _positional(graph: fx.Graph, captured: tuple[tuple[Any, ...], dict[str, Any]]) -> tuple[Any, ...]:
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


def output_shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    shape = getattr(meta, "shape", None)
    return tuple(shape) if shape is not None else None
