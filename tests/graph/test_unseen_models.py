"""Models in the style of published code the graph pass had not met before (MobileNet,
EfficientNet, Inception, DCGAN, models with frozen parts or TorchScript pieces): each is rewritten
exactly, or left with a reason, never silently changed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bnplace import Placement
from bnplace.graph import BnplaceWarning, find_chains, rewrite
from tests.graph.helpers import outputs

_BatchNorm = nn.modules.batchnorm._BatchNorm


class FrozenBackbone(nn.Module):
    """Fine-tuning: a pretrained backbone kept in eval mode under a training head."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.mid = nn.Linear(16, 16)
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu6(self.mid(self.backbone(x))))


def test_an_inserted_batchnorm_takes_the_mode_of_its_layer() -> None:
    model = FrozenBackbone()
    model.backbone.eval()
    new = rewrite(model, Placement.BEFORE_ACTIVATION)
    assert [(name, m.training) for name, m in new.named_modules()
            if isinstance(m, _BatchNorm)] == [("backbone.0_bn", False), ("mid_bn", True)]

    model.eval()  # an eval-mode model: the traced rewrite of a functional chain
    new = rewrite(model, Placement.AFTER_ACTIVATION)
    assert {m.training for m in new.modules()} == {False}
    x = torch.randn(1, 8)  # one sample: a BN left in training mode would raise
    before = [m.running_mean.clone() for m in new.modules() if isinstance(m, _BatchNorm)]
    assert new(x).shape == (1, 2)
    after = [m.running_mean for m in new.modules() if isinstance(m, _BatchNorm)]
    assert all(torch.equal(a, b) for a, b in zip(before, after)) and len(after) == 2


class DCGANDiscriminator(nn.Module):
    """The PyTorch DCGAN example's discriminator: the sigmoid's output is reshaped on its way
    out."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(3, 8, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(8, 16, 4, 2, 1, bias=False), nn.BatchNorm2d(16),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(16, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1, 1).squeeze(1)


def test_a_sigmoid_reshaped_into_the_output_is_the_output_layer() -> None:
    model = DCGANDiscriminator()
    chains = find_chains(model)
    assert [(c.linear, c.placement, c.skipped) for c in chains] == [
        ("main.0", Placement.NONE, None),
        ("main.2", Placement.BEFORE_ACTIVATION, None),
        ("main.5", Placement.NONE, "it is the output layer (`main.6` gives the model's output)")]
    with pytest.warns(BnplaceWarning, match="chain `main.5` left at none: it is the output layer"):
        new = rewrite(model, Placement.AFTER_ACTIVATION)
    assert [type(m).__name__ for m in new.main] == [
        "Conv2d", "LeakyReLU", "BatchNorm2d", "Conv2d", "LeakyReLU", "BatchNorm2d", "Conv2d",
        "Sigmoid"]


class ScriptedStem(nn.Module):
    """A model that compiled one block with torch.jit.script (for speed, or from a hub)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.jit.script(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5)))
        self.fc = nn.Linear(16, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.fc(self.stem(x))))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_a_torchscript_submodule_is_kept_compiled_and_named() -> None:
    model = ScriptedStem().eval()
    x = torch.randn(4, 8)
    chains = find_chains(model)
    assert [c.linear for c in chains] == ["fc"]
    assert chains.untraced == {"stem": "a TorchScript module (torch.jit.script): its compiled "
                                       "forward is kept as it is"}
    with pytest.warns(BnplaceWarning, match="left untraced .*`stem`: a TorchScript module"):
        new = rewrite(model, Placement.NONE)
    assert isinstance(new.stem, torch.jit.ScriptModule) and new.stem.code == model.stem.code
    torch.testing.assert_close(new(x), model(x), rtol=0, atol=0)
    new.train()  # the compiled dropout still follows the mode
    assert not torch.equal(new(x), new(x))


class LSTMClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.fc = nn.Linear(16, 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embedding(tokens))
        return self.fc(out[:, -1])


def test_a_model_without_chains_says_so() -> None:
    model = LSTMClassifier().eval()
    tokens = torch.randint(0, 20, (4, 6))
    assert find_chains(model, example_inputs=tokens) == []
    with pytest.warns(BnplaceWarning, match=r"^bnplace: no chain in LSTMClassifier \(a "
                                            r"Linear/Conv followed by an activation\) to rewrite$"):
        new = rewrite(model, Placement.BEFORE_ACTIVATION, example_inputs=tokens)
    torch.testing.assert_close(new(tokens), model(tokens), rtol=0, atol=0)


class BasicConv2d(nn.Module):
    """torchvision's Inception building block."""

    def __init__(self, cin: int, cout: int, **kwargs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class AuxHead(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.conv0 = BasicConv2d(cin, 4, kernel_size=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.conv0(x), 1), 1))


class InceptionWithAux(nn.Module):
    """Returns auxiliary logits in training only, as torchvision's Inception3 and GoogLeNet."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = BasicConv2d(3, 8, kernel_size=3, stride=2)
        self.mixed = BasicConv2d(8, 8, kernel_size=1)
        self.aux = AuxHead(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.mixed(self.stem(x))
        aux = self.aux(x) if self.training else None
        x = self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
        return (x, aux) if self.training else x


def test_a_forward_branching_on_training_holds_back_only_its_own_chains() -> None:
    x = torch.randn(4, 3, 9, 9)
    model = InceptionWithAux()
    chains = find_chains(model)
    assert [(c.linear, c.activation, c.batchnorm, c.placement, c.skipped) for c in chains] == [
        ("aux.conv0.conv", "aux.relu", "aux.conv0.bn", Placement.BEFORE_ACTIVATION, None),
        ("mixed.conv", "mixed.relu", "mixed.bn", Placement.BEFORE_ACTIVATION, None),
        ("stem.conv", "stem.relu", "stem.bn", Placement.BEFORE_ACTIVATION, None)]
    new = rewrite(model, Placement.AFTER_ACTIVATION)
    assert type(new) is InceptionWithAux  # its own forward, with both branches, stays
    assert [c.placement for c in find_chains(new)] == [Placement.AFTER_ACTIVATION] * 3
    logits, aux = new.train()(x)
    (logits.sum() + aux.sum()).backward()
    assert new.eval()(x).shape == (4, 3)

    same = rewrite(model, Placement.BEFORE_ACTIVATION)
    for train in (True, False):
        torch.testing.assert_close(outputs(same, x, train), outputs(model, x, train))


class BlockAppliedTwice(nn.Module):
    """One block applied twice (weight sharing across depth, as in recurrent refinement)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(8, 16)
        self.block = nn.Sequential(nn.Linear(16, 16), nn.ReLU())
        self.out = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.block(self.block(self.inp(x))))


def test_a_block_called_twice_is_one_skipped_chain() -> None:
    chains = find_chains(BlockAppliedTwice())
    assert [(c.linear, c.skipped) for c in chains] == [
        ("block.0", "`block.0` is called at 2 places")]
    with pytest.warns(BnplaceWarning) as caught:
        rewrite(BlockAppliedTwice(), Placement.BEFORE_ACTIVATION)
    assert [str(w.message) for w in caught] == [
        "bnplace: chain `block.0` left at none: `block.0` is called at 2 places"]
