"""Data sources: built-in digits in the shape the model takes, and the user's (train, val)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import pytest
from sklearn.datasets import load_digits

import bnplace
from bnplace.graph import BnplaceWarning
from bnplace.loading import SpecError
from bnplace.tune import data as data_module
from bnplace.tune.data import LoaderBatches, TensorBatches, load_data
from bnplace.tune.training import accuracy
from examples.models import MLP, Lesson3Head, SmallCNN
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
    x, y = torch.randn(40, 64), torch.arange(40) % 10  # every class in train and val
    return (x[:30], y[:30]), (x[30:], y[30:])


@pytest.mark.parametrize("wrap, kind", [
    (lambda pair: pair, TensorBatches),
    (lambda pair: TensorDataset(*pair), TensorBatches),
    (lambda pair: DataLoader(TensorDataset(*pair), batch_size=8), LoaderBatches),
])
def test_user_data_accepts_pairs_datasets_and_loaders(wrap, kind):
    train, val = _pairs()
    data = load_data(lambda: (wrap(train), wrap(val)), MLP())
    assert isinstance(data.train, kind) and isinstance(data.val, kind)
    assert [sum(len(y) for _, y in part.in_order(8)) for part in (data.train, data.val)] == [30, 10]
    assert torch.equal(data.example, train[0][:2])


def test_integer_token_ids_stay_integers_for_an_embedding_model():
    data = load_data(lambda: integer_pairs(50, 6), TokenBag())
    assert data.train.inputs.dtype == data.val.inputs.dtype == data.example.dtype == torch.int64


def test_integer_pixels_become_floats_for_a_model_that_takes_only_floats():
    data = load_data(lambda: integer_pairs(256, 64), MLP())
    assert data.train.inputs.dtype == data.val.inputs.dtype == data.example.dtype == torch.float32


@pytest.mark.parametrize("wrap", [
    lambda pair: tuple(t.numpy() for t in pair),   # numpy arrays: float64 unless told otherwise
    lambda pair: DataLoader(TensorDataset(*pair), batch_size=8),
])
def test_float64_inputs_become_float32_for_a_float32_model(wrap):
    train, val = ((x.double(), y) for x, y in _pairs())
    data = load_data(lambda: (wrap(train), wrap(val)), MLP())
    assert data.example.dtype == torch.float32
    for part in (data.train, data.val):
        assert {x.dtype for x, _ in part.in_order(8)} == {torch.float32}
    assert 0 <= accuracy(MLP(), data.val, torch.device("cpu")) <= 1


def test_user_data_of_the_wrong_shape_is_a_one_line_error():
    with pytest.raises(SpecError, match="must return \\(train, val\\)"):
        load_data(lambda: torch.zeros(3), MLP())
    with pytest.raises(SpecError, match="accepts none of the digits data's layouts.*--data module"):
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


def test_a_binary_classifier_with_one_logit_is_told_to_give_two_outputs():
    x, y = torch.randn(40, 64), torch.arange(40) % 2
    with pytest.raises(SpecError) as refused:
        load_data(lambda: ((x[:30], y[:30]), (x[30:], y[30:])), MLP(num_classes=1))
    assert str(refused.value) == (
        "targets go up to class 1 but the model gives 1 output per sample: a binary classifier "
        "needs 2 outputs, one score per class (the tuner trains with cross-entropy, not with one "
        "logit and BCE)")


def test_a_model_that_returns_no_class_scores_is_refused():
    class OneScore(MLP):
        def forward(self, x):
            return super().forward(x).sum(dim=1)

    with pytest.raises(SpecError, match="one row of class scores per sample, got \\(2,\\)"):
        load_data("digits", OneScore())


class DictRows(Dataset):
    """Samples as {"x": ..., "y": ...}: a DataLoader of it yields dicts."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[index], "y": self.y[index]}


class Stream(IterableDataset):
    """(input, target) samples with no len()."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __iter__(self):
        return iter(zip(self.x, self.y))


def _loaders(train, val, **kwargs):
    return tuple(DataLoader(TensorDataset(*part), batch_size=8, **kwargs) for part in (train, val))


def _fractional(pair):
    return pair[0], pair[1].float() + 0.5


def _narrow(pair):
    return pair[0][:, :32], pair[1]


@pytest.mark.parametrize("make, message", [
    (lambda train, val: (DataLoader(DictRows(*train), batch_size=8), val),
     "the train DataLoader must yield (inputs, targets) pairs of tensors, got a dict with keys "
     "['x', 'y']"),
    (lambda train, val: _loaders(train, (val[0], torch.full_like(val[1], 12))),
     "targets go up to class 12 but the model gives 10 outputs per sample"),
    (lambda train, val: _loaders(_fractional(train), val), "train targets must be class indices"),
    (lambda train, val: ((train[0], torch.full((30, 10), 0.1)), val),  # soft labels: no index
     "train targets must be class indices (one non-negative integer per sample, shape (N,) or "
     "(N, 1)) or one-hot rows, got torch.float32 of shape (30, 10)"),
    (lambda train, val: (train, (iter([val]))),
     "val data must be an (inputs, targets) pair, a TensorDataset or a DataLoader, got "
     "list_iterator: an iterator is read once, and every epoch reads the data again"),
    (lambda train, val: _loaders(train, (val[0][:0], val[1][:0])), "the val data is empty"),
    (lambda train, val: (train, (val[0][:0], val[1][:0])), "the val data is empty"),
    (lambda train, val: _loaders(train, _narrow(val)),
     "the model accepts none of the validation inputs' shapes: (32,): RuntimeError"),
    (lambda train, val: (train, _narrow(val)),
     "the model accepts none of the validation inputs' shapes: (32,): RuntimeError"),
    (lambda train, val: (DataLoader(TensorDataset(*train), batch_size=1), val),
     "the train data gives batches of 1 sample: training needs batches of at least 2"),
    (lambda train, val: ((train[0][:1], train[1][:1]), val),
     "the train data has 1 sample: training needs batches of at least 2"),
])
def test_bad_user_data_is_refused_before_any_training(make, message):
    train, val = _pairs()
    with pytest.raises(SpecError) as refused:
        load_data(lambda: make(train, val), MLP())
    assert message in str(refused.value)


def test_a_misspelt_built_in_set_names_the_built_in_ones():
    with pytest.raises(SpecError, match="unknown data 'digit': use digits\\|synthetic"):
        load_data("digit", MLP())


@pytest.mark.parametrize("loader_kwargs", [{"batch_size": 64, "drop_last": True},
                                           {"batch_size": 50, "sampler": list(range(40, 100))}])
def test_accuracy_counts_the_samples_a_loader_yields_not_its_dataset(loader_kwargs):
    targets = torch.arange(100) % 10
    loader = DataLoader(TensorDataset(F.one_hot(targets, 10).float(), targets), **loader_kwargs)
    assert accuracy(nn.Identity(), LoaderBatches(loader), torch.device("cpu")) == 1.0


def test_a_loader_of_an_iterable_dataset_with_float_class_labels_is_used_as_it_is():
    (x, y), (val_x, val_y) = _pairs()
    data = load_data(lambda: (DataLoader(Stream(x, y.float()), batch_size=8),
                              DataLoader(Stream(val_x, val_y.float()), batch_size=8)), MLP())
    batches = list(data.train.shuffled(8, torch.Generator()))
    assert [len(targets) for _, targets in batches] == [8, 8, 8, 6]
    assert all(targets.dtype == torch.int64 for _, targets in batches)
    assert 0 <= accuracy(MLP(), data.val, torch.device("cpu")) <= 1


def test_a_loaders_lone_last_sample_is_skipped_in_training_like_tensor_data():
    x, y = torch.randn(33, 64), torch.randint(0, 10, (33,))
    batches = LoaderBatches(DataLoader(TensorDataset(x, y), batch_size=16))
    assert [len(t) for _, t in batches.shuffled(16, torch.Generator())] == [16, 16]
    assert [len(t) for _, t in batches.in_order(16)] == [16, 16, 1]  # evaluation sees all


@pytest.mark.filterwarnings("ignore:bnplace. the model returns probabilities")  # the Identity
@pytest.mark.parametrize("wrap", [lambda pair: pair,
                                  lambda pair: DataLoader(TensorDataset(*pair), batch_size=16)])
@pytest.mark.parametrize("layout", [
    lambda targets: torch.from_numpy(targets.numpy()[:, None]),  # df[["label"]].values: (40, 1)
    lambda targets: torch.from_numpy(np.eye(10, dtype=np.float32)[targets.numpy()]),  # one-hot
])
def test_labels_of_shape_n_by_1_or_one_hot_are_class_indices_in_training_and_evaluation(
        wrap, layout):
    targets = torch.arange(40) % 10
    labels = layout(targets)
    inputs = F.one_hot(targets, 10).float()
    data = load_data(lambda: (wrap((inputs, labels)), wrap((inputs, labels))), nn.Identity())

    batches = data.train.shuffled(16, torch.Generator())
    assert [tuple(batch.shape) for _, batch in batches] == [(16,), (16,), (8,)]
    assert accuracy(nn.Identity(), data.val, torch.device("cpu")) == 1.0


def test_a_study_trains_on_a_loader_of_labels_of_shape_n_by_1(tmp_path):
    (x, y), (val_x, val_y) = _pairs()
    result = bnplace.tune(lambda: MLP(hidden=(16,)), lambda: _loaders((x, y[:, None]),
                                                                      (val_x, val_y[:, None])),
                          trials=1, epochs=1, output=tmp_path, progress=False)
    assert [trial["state"] for trial in result.trials] == ["COMPLETE"]


def _nan_in_train(train, val):
    train[0][7, 3] = float("nan")
    return train, val


def _inf_in_val_loader(train, val):
    val[0][2, 0] = float("inf")
    return _loaders(train, val)


@pytest.mark.parametrize("make, message", [
    (_nan_in_train, "the train inputs hold NaN or infinite values (1 of 30 samples, the first at "
                    "index 7) and the model's scores for them are not finite: the loss would be "
                    "NaN in every trial"),
    (_inf_in_val_loader, "the val inputs hold NaN or infinite values (1 of 8 samples of its first "
                         "batch, the first at index 2)"),
])
def test_inputs_holding_nan_are_refused_before_training_not_reported_as_diverged(make, message):
    with pytest.raises(SpecError) as refused:
        load_data(lambda: make(*_pairs()), MLP())
    assert message in str(refused.value)


def test_a_model_that_handles_nan_inputs_itself_is_given_them():
    class NanToZero(MLP):
        def forward(self, x):
            return super().forward(torch.nan_to_num(x))

    train, val = _nan_in_train(*_pairs())
    assert torch.isnan(load_data(lambda: (train, val), NanToZero()).train.inputs).any()


def test_labels_counted_from_1_are_told_to_count_from_0():
    x, y = torch.randn(40, 64), torch.arange(40) % 10 + 1
    with pytest.raises(SpecError) as refused:
        load_data(lambda: ((x[:30], y[:30]), (x[30:], y[30:])), MLP())
    assert str(refused.value) == (
        "targets go up to class 10 but the model gives 10 outputs per sample: the labels run "
        "from 1 to 10, but class indices count from 0 (0 to 9): subtract 1 from the targets")


def test_validation_classes_never_trained_on_are_warned_about():
    x, y = torch.randn(40, 64), torch.arange(40) // 4  # sorted by class, split unshuffled
    with pytest.warns(BnplaceWarning) as caught:
        load_data(lambda: ((x[:30], y[:30]), (x[30:], y[30:])), MLP())
    assert [str(w.message) for w in caught] == [
        "bnplace: the validation data holds 2 classes the train data never shows (8, 9; 8 of 10 "
        "samples): no model can learn them, so every trial gets those samples wrong; were the "
        "samples split before they were shuffled?"]


def test_a_train_set_of_one_class_is_warned_about():
    x, y = torch.randn(40, 64), torch.zeros(40, dtype=torch.long)
    with pytest.warns(BnplaceWarning) as caught:
        load_data(lambda: ((x[:30], y[:30]), (x[30:], y[30:])), MLP())
    assert [str(w.message) for w in caught] == [
        "bnplace: the train data holds one class only (0): every model learns to predict it, so "
        "accuracy cannot tell placements apart"]


def test_trying_the_data_on_the_model_leaves_each_module_in_its_own_mode():
    """A BN the user froze in eval mode inside a training model stays frozen: trying the data's
    layouts runs the model in eval mode, then gives each module back its own mode."""
    model = Lesson3Head().train()
    model.bn1.eval()
    load_data("digits", model)
    assert model.training and not model.bn1.training
