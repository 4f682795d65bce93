"""Training data for the tuner: built-in digits and synthetic sets, or the user's own.

Small datasets are kept as tensors on the training device and batched by indexing with a
random permutation: far less per-step overhead than a DataLoader collating single samples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, Dataset as TorchDataset

from bnplace.graph.shapes import eval_mode
from bnplace.loading import SpecError, describe_error, load_object
from bnplace.tune.data_checks import check_classes, check_finite_inputs, warn_about_class_coverage

SPLIT_SEED = 0  # the train/val split never changes between runs, workers or seeds
VAL_FRACTION = 0.2
PARTS = ("inputs", "targets")  # what a (train, val) part pairs, in order
ON_DEVICE_LIMIT_BYTES = 1 << 30  # larger tensor sets stay in host memory and move per batch
SHUFFLE_CHUNK_BYTES = 64 << 20  # the most a shuffled epoch copies at once

Batch = tuple[torch.Tensor, torch.Tensor]
DataSource = Union[str, Callable[[], Any], tuple[Any, Any]]


class TensorBatches:
    """A labelled tensor set batched by index permutation."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor,
                 device: torch.device | None = None) -> None:
        if len(inputs) != len(targets):
            raise SpecError(f"{len(inputs)} inputs but {len(targets)} targets")
        self.inputs, self.targets = inputs, targets
        self.device = device or inputs.device

    def __len__(self) -> int:
        return len(self.inputs)

    def to(self, device: torch.device) -> TensorBatches:
        """The same set for training on ``device`` (copied there when small enough)."""
        size = self.inputs.nbytes + self.targets.nbytes
        home = device if size <= ON_DEVICE_LIMIT_BYTES else torch.device("cpu")
        return TensorBatches(self.inputs.to(home), self.targets.to(home), device)

    def with_float_inputs(self) -> TensorBatches:
        return TensorBatches(self.inputs.float(), self.targets, self.device)

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Random batches covering the set once; a last batch of one sample is skipped (BN needs two).

        The samples are gathered in shuffled order a chunk of many batches at a time, and each
        batch is a slice of that: one gather per chunk costs less than two per batch.
        """
        order = torch.randperm(len(self), generator=generator).to(self.inputs.device)
        sample_bytes = (self.inputs.nbytes + self.targets.nbytes) // max(len(self), 1) or 1
        batches_per_chunk = max(SHUFFLE_CHUNK_BYTES // (sample_bytes * batch_size), 1)
        for chunk in order.split(batches_per_chunk * batch_size):
            inputs, targets = self.inputs[chunk], self.targets[chunk]
            for batch in zip(inputs.split(batch_size), targets.split(batch_size)):
                if len(batch[0]) > 1:
                    yield self._moved(*batch)

    def in_order(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(self), batch_size):
            yield self._moved(self.inputs[start:start + batch_size],
                              self.targets[start:start + batch_size])

    def _moved(self, inputs: torch.Tensor, targets: torch.Tensor) -> Batch:
        return inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)


class LoaderBatches:
    """The user's own DataLoader: its batches, order and batch size are kept as they are.

    Its length is never asked for: with ``drop_last``, a sampler or an IterableDataset, the
    dataset's length is not the number of samples the loader yields.
    """

    def __init__(self, loader: DataLoader, device: torch.device = torch.device("cpu"),
                 float_inputs: bool = False) -> None:
        self.loader, self.device, self.float_inputs = loader, device, float_inputs

    def to(self, device: torch.device) -> LoaderBatches:
        return LoaderBatches(self.loader, device, self.float_inputs)

    def with_float_inputs(self) -> LoaderBatches:
        return LoaderBatches(self.loader, self.device, float_inputs=True)

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """The loader's batches; one of a single sample is skipped, as for tensor data."""
        return (batch for batch in self.in_order(batch_size) if len(batch[0]) > 1)

    def in_order(self, batch_size: int) -> Iterator[Batch]:
        """The loader's batches on the device; targets as class indices (whole floats too).
        Inputs are cut from any autograd graph, as tensor data is (see ``_tensor``)."""
        for inputs, targets in self.loader:
            inputs = inputs.detach().to(self.device, non_blocking=True)
            yield (inputs.float() if self.float_inputs else inputs,
                   _one_per_sample(targets).to(self.device, non_blocking=True).long())


Batches = Union[TensorBatches, LoaderBatches]


@dataclass
class Dataset:
    """A train/val pair plus a two-sample input batch for tracing the model."""

    name: str
    train: Batches
    val: Batches
    example: torch.Tensor

    def to(self, device: torch.device) -> Dataset:
        return Dataset(self.name, self.train.to(device), self.val.to(device), self.example)

    def shape(self) -> dict[str, Any]:
        """Sizes and input shape: what tells apart two datasets of one name (two ``(train, val)``
        pairs, a data function edited) without reading them whole."""
        return {"train": _size(self.train), "val": _size(self.val),
                "inputs": list(self.example.shape[1:]),
                "dtype": str(self.example.dtype).removeprefix("torch.")}


def _size(batches: Batches) -> int | None:
    """The samples a tensor set holds, or a DataLoader's dataset (None when it has no length)."""
    if isinstance(batches, TensorBatches):
        return len(batches)
    try:
        return len(batches.loader.dataset)  # type: ignore[arg-type]
    except TypeError:  # an IterableDataset
        return None


def load_data(source: DataSource, model: nn.Module) -> Dataset:
    """Build the dataset ``source`` names: ``digits``, ``synthetic``, a SPEC, a function or a pair.

    Built-in sets are offered as vectors and as 1×8×8 images; the first shape the model accepts wins.
    """
    if source == "digits":
        return _fitted("digits", *_digits(), model)
    if source == "synthetic":
        return _fitted("synthetic", *_synthetic(), model)
    if isinstance(source, str):
        if ":" not in source:  # a misspelt built-in set, most likely
            raise SpecError(f"unknown data {source!r}: use digits|synthetic, or a SPEC such as "
                            "'mydata.py:load' naming a function that returns (train, val)")
        return _user_data(_spec_name(source), load_object(source), model)
    return _user_data(getattr(source, "__name__", "data"), source, model)


def _spec_name(spec: str) -> str:
    """``path/to/mydata.py:load`` -> ``mydata.load``: short enough for a study name."""
    module, _, attr = spec.rpartition(":")
    return f"{Path(module).stem if module.endswith('.py') else module.rsplit('.', 1)[-1]}.{attr}"


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    inputs, targets = load_digits(return_X_y=True)
    return inputs / 16.0, targets


def _synthetic() -> tuple[np.ndarray, np.ndarray]:
    """A digits-sized problem (64 features, 10 classes) generated in code."""
    from sklearn.datasets import make_classification

    return make_classification(n_samples=2000, n_features=64, n_informative=32, n_redundant=8,
                               n_classes=10, n_clusters_per_class=1, random_state=SPLIT_SEED)


def _fitted(name: str, inputs: np.ndarray, targets: np.ndarray, model: nn.Module) -> Dataset:
    from sklearn.model_selection import train_test_split

    x = torch.as_tensor(inputs, dtype=torch.float32)
    y = torch.as_tensor(targets, dtype=torch.long)
    x, output = _accepted_layout(
        model, [x, x.reshape(len(x), 1, 8, 8)],
        what=f"the {name} data's layouts, vectors (64,) and 1×8×8 images",
        hint=f": the {name} data cannot fit this model; for other inputs (3 channels, 28×28 "
             "images, ...) give your own with --data module.py:function")
    train_x, val_x, train_y, val_y = train_test_split(
        x, y, test_size=VAL_FRACTION, stratify=y, random_state=SPLIT_SEED)
    check_classes(output, train_y, val_y)
    return Dataset(name, TensorBatches(train_x, train_y), TensorBatches(val_x, val_y), x[:2])


def _accepted_layout(model: nn.Module, candidates: list[torch.Tensor], hint: str = "",
                     what: str = "the data's input shapes") -> tuple[torch.Tensor, Any]:
    """The first candidate layout (vectors, images, dtypes) the model runs on, and its output."""
    errors = []
    for candidate in candidates:
        try:
            with eval_mode(model), torch.no_grad():
                return candidate, model(candidate[:2])
        except Exception as err:  # the user's model: any error means "not this shape"
            errors.append(f"{tuple(candidate.shape[1:])}: {describe_error(err)}")
    raise SpecError(f"the model accepts none of {what}: " + "; ".join(errors) + hint)


def _user_data(name: str, function: Any, model: nn.Module) -> Dataset:
    if not callable(function):
        pair = function
    else:
        try:
            pair = function()
        except Exception as err:
            raise SpecError(f"data function {name!r} failed: {type(err).__name__}: {err}") from err
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise SpecError(f"data {name!r} must return (train, val), got {_described_return(pair)}")
    train, val = (_batches(part, label) for part, label in zip(pair, ("train", "val")))
    (train_x, train_y), (val_x, val_y) = _sample(train, "train"), _sample(val, "val")
    if len(train_x) < 2:
        source = "has" if isinstance(train, TensorBatches) else "gives batches of"
        raise SpecError(f"the train data {source} {len(train_x)} sample: training needs batches "
                        "of at least 2 (BatchNorm)")
    train, example, output = _taken_by(model, train, train_x, "the data's input shapes")
    val, _, _ = _taken_by(model, val, val_x, "the validation inputs' shapes")
    check_classes(output, train_y, val_y)
    for batches, inputs, label in ((train, train_x, "train"), (val, val_x, "val")):
        check_finite_inputs(model, inputs, example.dtype, label,
                            whole=isinstance(batches, TensorBatches))
    if isinstance(train, TensorBatches) and isinstance(val, TensorBatches):  # whole, not a batch
        warn_about_class_coverage(train_y, val_y)
    return Dataset(name, train, val, example)


def _described_return(value: Any) -> str:
    """What a data function returned instead of (train, val): four parts are most likely
    train_test_split's X_train, X_val, y_train, y_val, which pair nothing."""
    if not isinstance(value, (tuple, list)):
        return type(value).__name__
    split = (": train_test_split's X_train, X_val, y_train, y_val? return "
             "((X_train, y_train), (X_val, y_val))" if len(value) == 4 else "")
    return f"a {type(value).__name__} of {len(value)}{split}"


def _taken_by(model: nn.Module, batches: Batches, inputs: torch.Tensor,
              what: str) -> tuple[Batches, torch.Tensor, Any]:
    """``batches`` with inputs the model runs on, a two-sample example of them and its output.

    Inputs stay as they are when the model takes them (token ids for an embedding), else they
    become float32, the dtype of a model's parameters: integer pixels, and numpy's float64.
    """
    example = inputs[:2]
    candidates = [example] if example.dtype == torch.float32 else [example, example.float()]
    accepted, output = _accepted_layout(model, candidates, what=what)
    return (batches if accepted is example else batches.with_float_inputs()), accepted, output


def _batches(part: Any, label: str) -> Batches:
    if isinstance(part, DataLoader):
        return LoaderBatches(part)
    if isinstance(part, TensorDataset):
        part = part.tensors
    if isinstance(part, (tuple, list)) and len(part) == 2:
        inputs, targets = (_tensor(t, f"{label} {what}") for t, what in zip(part, PARTS))
        return TensorBatches(inputs, _class_indices(targets, label))  # inputs may be token ids
    raise SpecError(f"{label} data must be an (inputs, targets) pair, a TensorDataset or a "
                    f"DataLoader, got {type(part).__name__}{_part_hint(part)}")


def _part_hint(part: Any) -> str:
    """What to do with a part of the data given in a form the tuner does not read."""
    if isinstance(part, Iterator):
        return ": an iterator is read once, and every epoch reads the data again"
    if isinstance(part, TorchDataset):  # a Dataset class of the user's own: samples, no batches
        return (": wrap it in a DataLoader (DataLoader(dataset, batch_size=64, shuffle=True) "
                "for the train set)")
    return ""


def _tensor(values: Any, what: str) -> torch.Tensor:
    """``values`` as a tensor, cut from any autograd graph: features a pretrained network computed
    outside ``torch.no_grad()`` would fail every trial's second backward through that graph.
    Values no tensor holds (class names as text, ragged rows) are a one-line error."""
    try:
        return torch.as_tensor(values).detach()
    except (TypeError, ValueError, RuntimeError) as err:
        text = next((v for v in np.asarray(values, dtype=object).flat
                     if isinstance(v, (str, bytes))), None)
        if text is not None:
            raise SpecError(f"the {what} hold text ({text!r}, ...), not numbers: turn class names "
                            "into class indices 0..K-1 first (sklearn's LabelEncoder, or "
                            "numpy.unique(y, return_inverse=True)[1])") from None
        raise SpecError(f"the {what} cannot become a tensor: {describe_error(err)}") from None


def _described_items(items: Any) -> str:
    """What a batch that is not an (inputs, targets) pair of tensors holds: a tuple of numpy
    arrays (a collate_fn of its own) or of three tensors (an index too) is a tuple all the same."""
    if not isinstance(items, (tuple, list)):
        return f"a {type(items).__name__}"
    return (f"a {type(items).__name__} of {len(items)}: "
            f"({', '.join(type(item).__name__ for item in items)})")


def _one_per_sample(targets: torch.Tensor) -> torch.Tensor:
    """Labels of shape (N, 1) (a DataFrame column as ``df[["label"]].values``) as shape (N,),
    and one-hot rows (Keras' ``to_categorical``) as the index of their 1: cross-entropy wants
    one index per sample, and accuracy would compare each prediction with every label instead."""
    if targets.dim() == 2 and targets.shape[1] == 1:
        return targets.squeeze(1)
    if targets.dim() == 2 and _one_hot(targets):
        return targets.argmax(dim=1)
    return targets


def _one_hot(targets: torch.Tensor) -> bool:
    """Whether every row is zeros but for a single 1 (soft or multi-label rows are not)."""
    return bool(((targets == 0) | (targets == 1)).all() and (targets.sum(dim=1) == 1).all())


def _class_indices(targets: torch.Tensor, label: str) -> torch.Tensor:
    """``targets`` as class indices; the tuner trains classifiers (cross-entropy, accuracy)."""
    targets = _one_per_sample(targets)
    whole = not targets.is_floating_point() or bool((targets == targets.round()).all())
    if targets.dim() != 1 or not whole or bool((targets < 0).any()):
        raise SpecError(f"{label} targets must be class indices (one non-negative integer per "
                        f"sample, shape (N,) or (N, 1)) or one-hot rows, got {targets.dtype} of "
                        f"shape {tuple(targets.shape)}: the tuner trains classifiers with "
                        "cross-entropy")
    return targets.long()


def _sample(batches: Batches, label: str) -> Batch:
    """What the checks before training see: a tensor set whole, a DataLoader's first batch."""
    if isinstance(batches, TensorBatches):
        inputs, targets = batches.inputs, batches.targets
    else:
        try:
            batch = next(iter(batches.loader), None)
        except Exception as err:  # the user's dataset code
            raise SpecError(f"reading the {label} DataLoader failed: {describe_error(err)}") \
                from err
        if batch is None:
            raise SpecError(f"the {label} data is empty")
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2
                and all(isinstance(part, torch.Tensor) for part in batch)):
            got = (f"a dict with keys {sorted(map(str, batch))}" if isinstance(batch, dict)
                   else _described_items(batch))
            raise SpecError(f"the {label} DataLoader must yield (inputs, targets) pairs of "
                            f"tensors, got {got}")
        inputs, targets = batch[0], _class_indices(batch[1], label)
    if not len(inputs):
        raise SpecError(f"the {label} data is empty")
    return inputs, targets
