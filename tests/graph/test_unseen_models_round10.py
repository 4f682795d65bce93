"""Round ten: gaps a previous round found, closed.

* torchvision's and Detectron2's ``FrozenBatchNorm2d`` (a plain module computing
  ``x * scale + shift`` from buffers) between a Conv and its ReLU: fx traced into its arithmetic,
  so no chain was listed and ``fold`` passed it over without a word. It is now a BatchNorm whose
  chain is listed and left (with the reason), and ``fold`` merges it into the Conv;
* ``F.batch_norm`` over a module's own ``weight``/``bias``: ``rewrite(..., "none")`` removed the
  call but left its parameters on the model, unused (no gradient: DDP with
  ``find_unused_parameters=False`` fails); ``fold`` did not list it in ``report.left``;
* LeViT's ``Linear_BN`` (``bn(l(x).flatten(0, 1)).reshape_as(x)``) is now folded exactly;
* a parametrized model saved with ``--output`` got torch's error cut off after "See:"; fold
  said a BN after ``F.conv2d`` was "fed by `conv2d` (F.conv2d), not a Linear/Conv".
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch import nn

from bnplace import Placement
from bnplace.cli import main
from bnplace.graph import find_chains, fold_with_report, rewrite
from bnplace.graph.rewriting import BnplaceWarning
from tests.graph.helpers import trained_statistics
from tests.graph.test_unseen_models_round9 import LeViTMlp


class FrozenBatchNorm2d(nn.Module):
    """torchvision.ops.misc.FrozenBatchNorm2d, as torchvision writes it."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):  # noqa: ANN001 - torch's signature
        num_batches_tracked_key = prefix + "num_batches_tracked"
        if num_batches_tracked_key in state_dict:
            del state_dict[num_batches_tracked_key]
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.reshape(1, -1, 1, 1)
        b = self.bias.reshape(1, -1, 1, 1)
        rv = self.running_var.reshape(1, -1, 1, 1)
        rm = self.running_mean.reshape(1, -1, 1, 1)
        scale = w * (rv + self.eps).rsqrt()
        bias = b - rm * scale
        return x * scale + bias


class FrozenStem(nn.Module):
    """A detection backbone's ResNet stem and first block, with frozen BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = FrozenBatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.block = nn.Sequential(nn.Conv2d(8, 8, 1), FrozenBatchNorm2d(8), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(F.max_pool2d(self.relu(self.bn1(self.conv1(x))), 2))


def _frozen_stem() -> FrozenStem:
    torch.manual_seed(0)
    model = FrozenStem()
    for bn in (model.bn1, model.block[1]):
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return model.eval()


FROZEN_REASON = ("`{}` is a FrozenBatchNorm2d: its statistics and affine are fixed buffers, "
                 "fitted to the values at this place of a pretrained backbone, so bnplace neither "
                 "moves nor removes it")


def test_a_frozen_batchnorm_chain_is_listed_and_left() -> None:
    model = _frozen_stem()
    assert [(c.linear, c.activation, c.batchnorm, c.placement, c.skipped)
            for c in find_chains(model)] == [
        ("conv1", "relu", "bn1", Placement.BEFORE_ACTIVATION, FROZEN_REASON.format("bn1")),
        ("block.0", "block.2", "block.1", Placement.BEFORE_ACTIVATION,
         FROZEN_REASON.format("block.1"))]
    x = torch.randn(2, 3, 8, 8)
    with pytest.warns(BnplaceWarning) as caught:
        new = rewrite(model, Placement.NONE)
    assert [str(w.message) for w in caught] == [
        f"bnplace: chain `{name}` left at before-activation: {FROZEN_REASON.format(bn)}"
        for name, bn in (("conv1", "bn1"), ("block.0", "block.1"))]
    torch.testing.assert_close(new(x), model(x), rtol=1e-5, atol=1e-6)
    # drop_bias moves block.0's bias into the frozen BN's running mean: the same outputs
    assert "block.0.bias" not in new.state_dict()


def test_a_frozen_batchnorm_folds_into_its_conv_exactly() -> None:
    model = _frozen_stem()
    x = torch.randn(2, 3, 8, 8)
    folded, report = fold_with_report(model)
    assert [(f.batchnorm, f.into, f.direction) for f in report.folded] == [
        ("bn1", "conv1", "preceding"), ("block.1", "block.0", "preceding")]
    assert report.left == {}
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-6)
    # a checkpoint of a model trained with nn.BatchNorm2d loads into the frozen one first
    state = {k: v for k, v in model.state_dict().items()}
    state["bn1.num_batches_tracked"] = torch.tensor(7)
    _frozen_stem().load_state_dict(state)


class FunctionalBN(nn.Module):
    """A Linear normalised by ``F.batch_norm`` over the module's own parameters and buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.weight = nn.Parameter(torch.ones(8))
        self.bias = nn.Parameter(torch.zeros(8))
        self.register_buffer("running_mean", torch.zeros(8))
        self.register_buffer("running_var", torch.ones(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training, 0.1, 1e-5)
        return F.relu(x)


def test_removing_a_functional_batchnorm_removes_its_parameters() -> None:
    model = FunctionalBN()
    x = torch.randn(5, 4)
    for example in (None, x):
        plain = rewrite(model, Placement.NONE, example)
        assert [name for name, _ in plain.named_parameters()] == ["fc.weight", "fc.bias"]
        assert [name for name, _ in plain.named_buffers()] == []
        assert torch.equal(plain(x), F.relu(model.fc(x)))
    moved = rewrite(model, Placement.AFTER_ACTIVATION, x)
    assert sorted(name for name, _ in moved.named_parameters()) == [
        "bias", "fc.bias", "fc.weight", "weight"]


def test_fold_lists_a_functional_batchnorm_and_says_why_a_functional_conv_takes_none() -> None:
    class FunctionalConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 3, 3, 3))
            self.bn = nn.BatchNorm2d(8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(self.bn(F.conv2d(x, self.w)))

    assert fold_with_report(FunctionalBN())[1].left == {
        "batch_norm": "it is a functional F.batch_norm call, whose statistics and affine are "
                      "arguments; fold merges BatchNorm modules only"}
    assert fold_with_report(FunctionalConv())[1].left == {
        "bn": "it is fed by functional `conv2d` (F.conv2d), whose weight is an argument of the "
              "call, not a Linear/Conv module's parameter that fold can rewrite; it is followed "
              "by `relu` (F.relu), which it cannot pass"}


def test_levit_linear_bn_folds_across_its_leading_flatten() -> None:
    x = torch.randn(3, 5, 16)
    model = trained_statistics(LeViTMlp(), x)
    for example in (None, x):
        folded, report = fold_with_report(model, example)
        assert [(f.batchnorm, f.into, f.direction) for f in report.folded] == [
            ("mlp.0.bn", "mlp.0.c", "preceding"), ("mlp.2.bn", "mlp.2.c", "preceding")]
        assert report.left == {}
        torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-6)


def test_a_flatten_into_a_batchnorm_over_the_wrong_axis_is_left() -> None:
    class Tokens(nn.Module):  # (B, H, W, C) -> (B*H, W, C): BatchNorm1d normalises W, not C
        def __init__(self) -> None:
            super().__init__()
            self.l = nn.Linear(4, 4)
            self.bn = nn.BatchNorm1d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.relu(self.bn(self.l(x).flatten(0, 1)))

    x = torch.randn(2, 3, 4, 4)
    model = trained_statistics(Tokens(), x)
    assert fold_with_report(model, x)[1].left == {
        "bn": "the BN does not normalise the output axis of `l`; it is followed by `relu` "
              "(F.relu), which it cannot pass"}


def test_saving_a_parametrized_model_says_what_to_do(tmp_path: Path) -> None:
    source = tmp_path / "param.py"
    source.write_text(
        "from torch import nn\n"
        "from torch.nn.utils import parametrize\n\n"
        "class Twice(nn.Module):\n"
        "    def forward(self, w):\n"
        "        return 2 * w\n\n"
        "class Net(nn.Sequential):\n"
        "    def __init__(self):\n"
        "        super().__init__(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n"
        "        parametrize.register_parametrization(self[0], 'weight', Twice())\n")
    target = tmp_path / "out.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CliRunner().invoke(main, ["rewrite", "--model", f"{source}:Net", "--placement",
                                           "before-activation", "--output", str(target)])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: cannot save to {target}: `0.weight` is parametrized "
        f"(torch.nn.utils.parametrize), which torch.save refuses: call "
        f"parametrize.remove_parametrizations on `0` for 'weight' first (it keeps the current "
        f"value), or save the model's state_dict()")
    assert not target.exists()


class ScriptedBody(nn.Module):
    """A stem traced by fx and a body compiled with ``torch.jit.script``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.SiLU())
        self.body = torch.jit.script(nn.Sequential(nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8),
                                                   nn.ReLU()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.stem(x))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_example_inputs_work_beside_a_scripted_submodule() -> None:
    # kept_buffers read a TorchScript module's _buffers with .get, which it lacks
    x = torch.randn(2, 3, 6, 6)
    model = trained_statistics(ScriptedBody(), x)
    chains = find_chains(model, x)
    assert [(c.linear, c.batchnorm, c.placement) for c in chains] == [
        ("stem.0", "stem.1", Placement.BEFORE_ACTIVATION)]
    assert chains.untraced == {
        "body": "a TorchScript module (torch.jit.script): its compiled forward is kept as it is"}
    with pytest.warns(BnplaceWarning):
        moved = rewrite(model, Placement.AFTER_ACTIVATION, x)
    assert [(c.linear, c.placement) for c in find_chains(moved, x)] == [
        ("stem.0", Placement.AFTER_ACTIVATION)]
