"""The trials' optimizer: SGD with momentum, one fused update per step and nothing else.

``torch.optim.SGD(fused=True)`` spends more time in its per-step bookkeeping (step hooks,
state lookups, regrouping the parameters, ``zero_grad``) than in its fused kernel: about a
tenth of a small model's whole step on CPU. The tuner owns its loop and needs none of that, so
it calls torch's functional ``sgd`` with the same fused kernel: the update is the same, bit for
bit.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.optim.sgd import sgd


class MomentumSGD:
    """SGD with momentum over the parameters that require gradients.

    Like ``torch.optim.SGD``, a parameter without a gradient in a step is left alone, and a
    parameter's momentum starts from its first gradient.
    """

    def __init__(self, parameters: Iterable[torch.nn.Parameter], *, lr: float, momentum: float,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        self.parameters = [p for p in parameters if p.requires_grad]
        self.momentum_buffers: list[torch.Tensor | None] = [None] * len(self.parameters)
        self.settings = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                             nesterov=nesterov, dampening=0.0, maximize=False)

    def step(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` into fresh gradients and update the parameters once."""
        for parameter in self.parameters:
            parameter.grad = None
        loss.backward()
        with_gradient = [i for i, p in enumerate(self.parameters) if p.grad is not None]
        # the fused kernel starts all of a call's buffers at once or none: parameters seen
        # for the first time go in a call of their own
        starting = [i for i in with_gradient if self.momentum_buffers[i] is None]
        going = [i for i in with_gradient if self.momentum_buffers[i] is not None]
        for indices in (starting, going):
            if indices:
                self._update(indices)

    @torch.no_grad()
    def _update(self, indices: list[int]) -> None:
        parameters = [self.parameters[i] for i in indices]
        buffers = [self.momentum_buffers[i] for i in indices]
        sgd(parameters, [p.grad for p in parameters], buffers, fused=True, **self.settings)
        for i, buffer in zip(indices, buffers):  # sgd fills a starting call's buffers in place
            self.momentum_buffers[i] = buffer
