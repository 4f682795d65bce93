"""The class scores in what a model returns: a tensor, or the part of a richer output that is one.

Models return more than logits: GoogLeNet and Inception ``(logits, aux)`` in training mode,
torchvision's segmentation models ``{"out": ...}``, Hugging Face models an output object with
``logits``. The tuner trains and scores on the logits and leaves the model as it is.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch

SCORE_KEYS = ("logits", "out")  # the dict keys looked up, in this order


def class_scores(output: Any) -> torch.Tensor:
    """The tensor of class scores in ``output``: the tensor itself; a dict's ``"logits"``, else
    its ``"out"``; an object's ``logits`` attribute (a named tuple's field too); a tuple's or
    list's first element. TypeError when none of these is a tensor."""
    if isinstance(output, torch.Tensor):  # the common case first: this runs every step
        return output
    if isinstance(output, Mapping):
        scores = next((output[key] for key in SCORE_KEYS if key in output), None)
    elif isinstance(getattr(output, "logits", None), torch.Tensor):
        scores = output.logits
    elif isinstance(output, (tuple, list)) and output:
        scores = output[0]
    else:
        scores = None
    if not isinstance(scores, torch.Tensor):
        raise TypeError(f"the model must return its class scores: a tensor, a tuple or list "
                        f"whose first element is one, a dict with 'logits' or 'out', or an "
                        f"object with a 'logits' attribute; got {_described(output)}")
    return scores


def _described(output: Any) -> str:
    if isinstance(output, Mapping):
        return f"a {type(output).__name__} with keys {sorted(map(str, output))}"
    if isinstance(output, (tuple, list)):
        first = type(output[0]).__name__ if output else "nothing"
        return f"a {type(output).__name__} whose first element is {first}"
    return type(output).__name__


def warn_if_probabilities(scores: torch.Tensor) -> None:
    """Warn when every row of ``scores`` is a probability distribution (a softmax last).

    Cross-entropy applies its own log-softmax: on probabilities its gradients shrink as the
    model grows sure, and training crawls, in every placement alike. Log-probabilities
    (``log_softmax`` last) are left alone: log-softmax leaves them as they are, so the loss is
    the one intended. The model is not changed, only warned about.
    """
    from bnplace.graph import BnplaceWarning

    scores = scores.detach().float()
    sums = scores.sum(dim=-1)
    if scores.shape[-1] > 1 and bool((scores >= 0).all()) and torch.allclose(
            sums, torch.ones_like(sums), atol=1e-4):
        warnings.warn("bnplace: the model returns probabilities (each row of its outputs sums "
                      "to 1: a softmax last?); the tuner trains with cross-entropy, which "
                      "expects unnormalized scores (logits) and trains badly on probabilities: "
                      "return the scores before the softmax, or log_softmax of them",
                      BnplaceWarning, stacklevel=2)
