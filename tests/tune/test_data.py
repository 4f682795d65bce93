"""Data sources: built-in digits in the shape the model takes, and the user's (train, val)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import pytest
from sklearn.datasets import load_digits

from bnplace.loading import SpecError
from bnplace.tune import data as data_module
from bnplace.tune.data import LoaderBatches, TensorBatches, load_data
from examples.models import MLP, SmallCNN
from tests.tune.conftest import TokenBag, integer_pairs


def test_digits_are_vectors_for_an_mlp_and_images_for_a_cnn():
    assert load_data("digits", MLP()).example.shape == (2, 64)
    assert load_data("digits", SmallCNN()).example.shape == (2, 1, 8, 8)


def test_digits_split_is_fixed_and_stratified():
    first, second = load_data("digits", MLP()), load_data("digits", MLP())
    assert torch.equal(first.val.inputs, second.val.inputs)
    assert len(first.train) + len(first.val) == len(load_digits().target)
    per_class = torch.bincount(torch.as_tensor(load_digits().target))
    val_per_class = torch.bincount(first.val.targets)
    assert ((val_per_class - 0.2 * per_class).abs() <= 1).all()


def test_synthetic_data_has_the_digits_shape():
    data = load_data("synthetic", MLP())
    assert data.example.shape == (2, 64)
    assert set(data.train.targets.tolist()) == set(range(10))


def test_shuffled_batches_cover_the_set_once_and_skip_a_lone_last_sample():
    batches = TensorBatches(torch.arange(9.0).reshape(9, 1), torch.arange(9))
    seen = [b[1].tolist() for b in batches.shuffled(4, torch.Generator().manual_seed(0))]
    assert [len(b) for b in seen] == [4, 4]  # the ninth sample alone would break BatchNorm
    assert len(set(sum(seen, []))) == 8


def test_shuffled_batches_are_the_same_however_much_is_gathered_at_once(monkeypatch):
    batches = TensorBatches(torch.arange(50.0).reshape(25, 2), torch.arange(25))

    def epoch() -> list[tuple[list[float], list[int]]]:
        shuffled = batches.shuffled(4, torch.Generator().manual_seed(1))
        return [(x[:, 0].tolist(), y.tolist()) for x, y in shuffled]

    whole = epoch()
    monkeypatch.setattr(data_module, "SHUFFLE_CHUNK_BYTES", 1)  # a gather per batch
    assert epoch() == whole
    assert all(x == [2.0 * t for t in y] for x, y in whole)  # inputs stay with their targets
    assert len(whole) == 6 and len({t for _, y in whole for t in y}) == 24  # lone 25th skipped


def _pairs():
    x, y = torch.randn(40, 64), torch.randint(0, 10, (40,))
    return (x[:30], y[:30]), (x[30:], y[30:])


@pytest.mark.parametrize("wrap, kind", [
    (lambda pair: pair, TensorBatches),
    (lambda pair: TensorDataset(*pair), TensorBatches),
    (lambda pair: DataLoader(TensorDataset(*pair), batch_size=8), LoaderBatches),
])
def test_user_data_accepts_pairs_datasets_and_loaders(wrap, kind):
    train, val = _pairs()
    data = load_data(lambda: (wrap(train), wrap(val)), MLP())
    assert isinstance(data.train, kind) and len(data.train) == 30 and len(data.val) == 10
    assert torch.equal(data.example, train[0][:2])


def test_integer_token_ids_stay_integers_for_an_embedding_model():
    data = load_data(lambda: integer_pairs(50, 6), TokenBag())
    assert data.train.inputs.dtype == data.val.inputs.dtype == data.example.dtype == torch.int64


def test_integer_pixels_become_floats_for_a_model_that_takes_only_floats():
    data = load_data(lambda: integer_pairs(256, 64), MLP())
    assert data.train.inputs.dtype == data.val.inputs.dtype == data.example.dtype == torch.float32


def test_user_data_of_the_wrong_shape_is_a_one_line_error():
    with pytest.raises(SpecError, match="must return \\(train, val\\)"):
        load_data(lambda: torch.zeros(3), MLP())
    with pytest.raises(SpecError, match="accepts none of the data's input shapes.*--data module"):
        load_data("digits", nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(SpecError, match="accepts none of the data's input shapes: \\(64,\\)") as own:
        load_data(lambda: _pairs(), nn.Sequential(nn.Linear(3, 2)))
    assert "--data" not in str(own.value)  # the hint is for the built-in sets only


def test_regression_targets_are_refused_before_any_training():
    x = torch.randn(40, 64)
    with pytest.raises(SpecError, match="train targets must be class indices.*torch.float32"):
        load_data(lambda: ((x[:30], torch.randn(30)), (x[30:], torch.randn(10))), MLP())


def test_targets_beyond_the_models_outputs_are_refused():
    (train_x, train_y), val = _pairs()
    train_y[3] = 12
    with pytest.raises(SpecError, match="targets go up to class 12 but the model gives 10 outputs"):
        load_data(lambda: ((train_x, train_y), val), MLP())
    with pytest.raises(SpecError, match="targets go up to class 9 but the model gives 4 outputs"):
        load_data("digits", MLP(num_classes=4))


def test_a_model_that_returns_no_class_scores_is_refused():
    class TwoHeads(MLP):
        def forward(self, x):
            return super().forward(x), x

    with pytest.raises(SpecError, match="one row of class scores per sample, got tuple"):
        load_data("digits", TwoHeads())
