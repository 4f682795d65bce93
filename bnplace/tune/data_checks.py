"""The user's data, checked before any training: what would fail every trial alike is one error
up front, and what would make the accuracies meaningless is a warning, not a silent table."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from bnplace.graph.shapes import eval_mode
from bnplace.loading import SpecError
from bnplace.tune.outputs import class_scores, warn_if_probabilities

LISTED_CLASSES = 5  # the most classes a message names


def check_classes(output: Any, *targets: torch.Tensor) -> None:
    """The model must score classes, and every target name one, or each trial would fail alike."""
    try:
        scores = class_scores(output)
    except TypeError as err:
        raise SpecError(str(err)) from None
    if scores.dim() != 2:
        raise SpecError(f"the model must return one row of class scores per sample, got "
                        f"{tuple(scores.shape)}: the tuner trains classifiers with cross-entropy")
    warn_if_probabilities(scores)
    classes = scores.shape[1]
    highest = max((int(part.max()) for part in targets if len(part)), default=-1)
    if highest >= classes:
        raise SpecError(f"targets go up to class {highest} but the model gives {classes} "
                        f"output{'s' * (classes != 1)} per sample"
                        f"{_hint(targets, classes, highest)}")


def _hint(targets: tuple[torch.Tensor, ...], classes: int, highest: int) -> str:
    """The likely cause of targets beyond the model's outputs, when there is one."""
    if classes == 1:
        return (": a binary classifier needs 2 outputs, one score per class (the tuner trains "
                "with cross-entropy, not with one logit and BCE)")
    lowest = min(int(part.min()) for part in targets if len(part))
    if lowest >= 1 and highest == classes:  # labels counted from 1, as R and many CSVs do
        return (f": the labels run from {lowest} to {highest}, but class indices count from 0 "
                f"(0 to {classes - 1}): subtract 1 from the targets")
    return ""


def check_finite_inputs(model: nn.Module, inputs: torch.Tensor, dtype: torch.dtype, label: str,
                        whole: bool = True) -> None:
    """Refuse inputs holding NaN or infinity that the model's scores carry on: the loss would be
    NaN in every trial (each reported as diverged, as if the learning rate were to blame).

    A model that handles them itself (``torch.nan_to_num``, masking) gives finite scores, and
    is left to do so. ``whole`` is False when ``inputs`` is a DataLoader's first batch.
    """
    if not inputs.is_floating_point() or bool(torch.isfinite(inputs.sum())):
        return  # one sum finds any NaN or infinity (an overflowing sum is looked at closer)
    bad = ~torch.isfinite(inputs.reshape(len(inputs), -1)).all(dim=1)
    if not bad.any():
        return
    with eval_mode(model), torch.no_grad():
        scores = class_scores(model(inputs[bad][:2].to(dtype)))
    if bool(torch.isfinite(scores).all()):
        return
    scope = "" if whole else " of its first batch"
    harm = ("the loss would be NaN in every trial" if label == "train" else
            "no prediction for them means anything, yet accuracy would count them")
    raise SpecError(f"the {label} inputs hold NaN or infinite values ({int(bad.sum())} of "
                    f"{len(inputs)} samples{scope}, the first at index "
                    f"{int(bad.nonzero()[0])}) and the model's scores for them are not finite: "
                    f"{harm}; replace or drop them, or have the model handle them "
                    "(torch.nan_to_num)")


def warn_about_class_coverage(train_targets: torch.Tensor, val_targets: torch.Tensor) -> None:
    """Warn when accuracy cannot compare placements: a train set of one class (every model
    predicts it), or validation classes training never shows (every model gets them wrong;
    samples sorted by class and split before shuffling, most often)."""
    from bnplace.graph import BnplaceWarning

    seen = set(train_targets.unique().tolist())
    if len(seen) == 1:
        warnings.warn(f"bnplace: the train data holds one class only ({next(iter(seen))}): every "
                      "model learns to predict it, so accuracy cannot tell placements apart",
                      BnplaceWarning, stacklevel=2)
    unseen = sorted(set(val_targets.unique().tolist()) - seen)
    if unseen:
        samples = int(torch.isin(val_targets, torch.tensor(unseen)).sum())
        listed = ", ".join(map(str, unseen[:LISTED_CLASSES])) + (
            ", ..." if len(unseen) > LISTED_CLASSES else "")
        warnings.warn(f"bnplace: the validation data holds {len(unseen)} class"
                      f"{'es' * (len(unseen) > 1)} the train data never shows ({listed}; "
                      f"{samples} of {len(val_targets)} samples): no model can learn "
                      f"{'them' if len(unseen) > 1 else 'it'}, so every trial gets those "
                      "samples wrong; were the samples split before they were shuffled?",
                      BnplaceWarning, stacklevel=2)
