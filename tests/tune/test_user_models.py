"""Models written for something else than the tuner: richer outputs, probabilities, a forward
that fails in training. Each is tuned, warned about or refused in words its author understands."""

from __future__ import annotations

import io
import warnings
from collections import namedtuple
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from rich.console import Console
from torch import nn

import bnplace
from bnplace.graph import BnplaceWarning
from bnplace.loading import SpecError
from bnplace.tune.data import load_data
from bnplace.tune.outputs import class_scores

Outputs = namedtuple("Outputs", "aux logits")  # named logits win over the first element


@dataclass
class ModelOutput:
    """An output object with ``logits``, as a Hugging Face model returns (not a dict here)."""

    loss: torch.Tensor | None
    logits: torch.Tensor


class Trunk(nn.Module):
    """One Linear → ReLU chain and two heads; subclasses return the heads in their own way."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.act = nn.Linear(64, 16), nn.ReLU()
        self.head, self.aux = nn.Linear(16, 10), nn.Linear(16, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x.flatten(1)))


class TupleNet(Trunk):
    """``(logits, aux)``, as GoogLeNet and Inception return in training mode."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.head(h), self.aux(h)


class SegmentationStyleNet(Trunk):
    """``{"out": ..., "aux": ...}``, as torchvision's segmentation models return."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(x)
        return {"aux": self.aux(h), "out": self.head(h)}


class NamedTupleNet(Trunk):
    def forward(self, x: torch.Tensor) -> Outputs:
        h = self.features(x)
        return Outputs(self.aux(h), self.head(h))


class SoftmaxNet(Trunk):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.head(self.features(x)), dim=1)


class LogSoftmaxNet(Trunk):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.head(self.features(x)), dim=1)


class FailsInTraining(nn.Module):
    """Runs in eval mode (the checks before training pass), raises in training mode; its body
    traces, so its chain is rewritten and every trial fails alike."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            raise RuntimeError("dropout schedule not set")
        return self.body(x)


def test_the_class_scores_are_found_in_tuples_dicts_and_output_objects():
    logits, aux = torch.randn(2, 10), torch.randn(2, 10)
    assert class_scores((logits, aux)) is logits
    assert class_scores([logits, aux]) is logits
    assert class_scores(Outputs(aux, logits)) is logits
    assert class_scores(ModelOutput(None, logits)) is logits
    assert class_scores({"aux": aux, "out": logits}) is logits
    assert class_scores({"out": aux, "logits": logits}) is logits


@pytest.mark.parametrize("output, described", [
    ({"scores": torch.zeros(2, 10)}, "a dict with keys ['scores']"),
    (("text", torch.zeros(2, 10)), "a tuple whose first element is str"),
    (None, "NoneType"),
])
def test_an_output_with_no_class_scores_is_refused_naming_what_it_was(output, described):
    class Odd(Trunk):
        def forward(self, x: torch.Tensor) -> object:
            self.features(x)
            return output

    with pytest.raises(SpecError) as refused:
        load_data("digits", Odd())
    assert str(refused.value) == ("the model must return its class scores: a tensor, a tuple or "
                                  "list whose first element is one, a dict with 'logits' or "
                                  "'out', or an object with a 'logits' attribute; got "
                                  f"{described}")


@pytest.mark.parametrize("model_fn, exported", [(TupleNet, True), (SegmentationStyleNet, True),
                                                (NamedTupleNet, False)])
def test_a_model_returning_more_than_logits_is_tuned_on_its_logits(tmp_path, model_fn, exported):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = bnplace.tune(model_fn, trials=2, epochs=1, output=tmp_path, progress=False,
                              placements="after-activation,none")

    assert [t["state"] for t in result.trials] == ["COMPLETE"] * 2
    assert result.best["val_accuracy"] > 0.5  # trained on the head, not on the untrained aux
    winner = torch.load(tmp_path / "winner.pt", weights_only=False).eval()
    data = load_data("digits", model_fn())
    with torch.no_grad():
        output = winner(data.val.inputs)
    assert type(output) is type(model_fn()(data.example))  # the model's outputs, as they were
    hits = (class_scores(output).argmax(1) == data.val.targets).float().mean().item()
    assert hits == pytest.approx(result.best["val_accuracy"])
    assert (tmp_path / "winner.pt2").exists() == exported
    not_written = [str(w.message) for w in caught if "winner.pt2 not written" in str(w.message)]
    assert bool(not_written) != exported  # torch.export cannot save a namedtuple of the user's


def test_a_model_returning_probabilities_is_warned_about_and_left_as_it_is():
    with pytest.warns(BnplaceWarning, match="the model returns probabilities .*return the scores "
                                            "before the softmax"):
        data = load_data("digits", SoftmaxNet())
    assert data.example.shape == (2, 64)


@pytest.mark.parametrize("model_fn", [LogSoftmaxNet, TupleNet])
def test_log_probabilities_and_logits_get_no_warning(model_fn):
    # cross-entropy's log-softmax leaves log-probabilities as they are: the loss is the intended one
    with warnings.catch_warnings():
        warnings.simplefilter("error", BnplaceWarning)
        load_data("digits", model_fn())


def test_when_no_trial_completes_the_console_says_why(tmp_path):
    console = Console(file=io.StringIO(), width=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BnplaceWarning)  # its forward is left untraced
        result = bnplace.tune(FailsInTraining, trials=2, epochs=1, output=tmp_path,
                              progress=False, console=console, placements="none")

    assert result.best is None
    assert ("No trial completed: RuntimeError: dropout schedule not set (2 trials); every "
            "trial's reason is in results.json.") in console.file.getvalue().splitlines()
