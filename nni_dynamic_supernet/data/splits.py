"""The three splits every dataset is turned into, and the deterministic, stratified splitting behind them.

* **train** trains the supernet;
* **val** scores subnets during search (BN recalibration uses train batches);
* **test** is held out for ground truth.

Splits are built deterministically (NumPy ``RandomState(split_seed)``) and stratified by class, so
two runs with the same config see exactly the same examples, which rank comparisons depend on.
Every example is returned with its position in the split (:class:`IndexedDataset`) because
importance sampling keeps per-example statistics.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from ..errors import ConfigError

__all__ = ["IndexedDataset", "DataSplits", "TransformedSubset", "stratified_split", "stratified_subset",
           "check_split", "apply_train_subset", "splits_from_bases", "one_line"]


class IndexedDataset(Dataset):
    """Wrap a dataset of ``(x, y)`` pairs so that it yields ``(x, y, index)``.

    Importance sampling and per-example loss tracking need to know which example each batch
    row is; ``index`` is the position in the wrapped dataset (``0 .. len - 1``).

    Parameters
    ----------
    dataset
        Any map-style dataset whose items are ``(x, y)`` (further fields are dropped).
    targets
        Labels of all examples in order, if known; otherwise they are taken from
        ``dataset.targets`` or, for a :class:`~torch.utils.data.TensorDataset`, its second
        tensor. Left as ``None`` when neither exists.

    Attributes
    ----------
    dataset
        The wrapped dataset.
    targets
        int64 tensor of labels (length ``len(self)``), or ``None`` if unknown.
    """

    def __init__(self, dataset: Dataset, targets: Sequence[int] | torch.Tensor | None = None) -> None:
        self.dataset = dataset
        if targets is None:
            targets = infer_targets(dataset)
        self.targets: torch.Tensor | None = (
            None if targets is None else torch.as_tensor(np.asarray(targets), dtype=torch.int64)
        )
        if self.targets is not None and len(self.targets) != len(dataset):  # type: ignore[arg-type]
            raise ValueError(
                f"targets has {len(self.targets)} entries but the dataset has {len(dataset)}"  # type: ignore[arg-type]
            )

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        # Extra fields (an index of an already indexed dataset seen through a Subset) are dropped:
        # the index that matters is the position in *this* dataset.
        item = self.dataset[index]
        return item[0], item[1], index


def infer_targets(dataset: Dataset) -> Any:
    """The labels of dataset without reading its examples (targets, or a TensorDataset's second tensor), or None."""
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return targets
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        return dataset.tensors[1]
    return None


class TransformedSubset(Dataset):
    """Selected examples of a base dataset, with a transform of their own.

    Train and val come from the same base dataset but need different transforms
    (augmentation on train only); sharing the base avoids loading the data twice.
    """

    def __init__(self, base: Dataset, indices: np.ndarray, transform: Callable | None, targets: np.ndarray) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = transform
        self.targets = np.asarray(targets, dtype=np.int64)[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        x, y = self.base[int(self.indices[index])]
        if self.transform is not None:
            x = self.transform(x)
        return x, y


@dataclass
class DataSplits:
    """The train/val/test splits of one dataset, with what a model needs to know about it.

    Attributes
    ----------
    train
        Supernet training examples.
    val
        Examples that subnets are scored on during search.
    test
        Held-out examples (ground truth).
    num_classes
        Number of classes; labels are ``0 .. num_classes - 1``.
    input_shape
        ``(channels, height, width)`` of one input image.
    name
        Dataset name as given to :func:`build_splits`.
    classes
        Class names in label order, when the dataset has them.
    """

    train: IndexedDataset
    val: IndexedDataset
    test: IndexedDataset
    num_classes: int
    input_shape: tuple[int, int, int]
    name: str
    classes: tuple[str, ...] = field(default=())


def one_line(exc: BaseException) -> str:
    """exc as one line: its type and its message with whitespace collapsed."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held-out) with ``fraction`` of every class held out.

    Every class with at least two examples keeps at least one and holds out at least one, so
    small folders still get a usable val split.
    """
    rng = np.random.RandomState(seed)
    held: list[np.ndarray] = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n = len(members)
        k = 0 if n < 2 else min(n - 1, max(1, int(round(fraction * n))))
        held.append(rng.permutation(members)[:k])
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept_idx = np.setdiff1d(np.arange(len(labels)), held_idx)
    return kept_idx.astype(np.int64), held_idx.astype(np.int64)


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Positions of a class-proportional subset of ``size`` examples (largest-remainder rounding)."""
    classes, counts = np.unique(labels, return_counts=True)
    quota = size * counts / counts.sum()
    take = np.floor(quota).astype(np.int64)
    # Stable sort on the remainders so that ties go to the lower class label, deterministically.
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: size - int(take.sum())]] += 1
    rng = np.random.RandomState(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def check_split(split: str, labels: np.ndarray, name: str, field_name: str, value: Any) -> None:
    """Refuse a split with no example, or a training split with fewer than two classes, naming the field."""
    if len(labels) == 0:
        raise ConfigError(
            field_name, value, f"the {split} split of {name} has 0 examples; provide more images per class"
        )
    if split == "train" and len(np.unique(labels)) < 2:
        raise ConfigError(
            field_name,
            value,
            f"the train split of {name} has fewer than 2 classes; a classifier needs at least 2",
        )


def apply_train_subset(
    labels: np.ndarray, train_subset: int | None, split_seed: int
) -> np.ndarray | None:
    """Positions of the class-proportional data.train_subset of a training split, or None for all of it."""
    if train_subset is None:
        return None
    if train_subset > len(labels):
        raise ConfigError(
            "data.train_subset",
            train_subset,
            f"use at most {len(labels)} (the size of the train split), or null for all of it",
        )
    return stratified_subset(labels, int(train_subset), split_seed)


def splits_from_bases(
    name: str,
    train_base: Any,
    val_base: Any | None,
    test_base: Any | None,
    train_tf: Callable,
    eval_tf: Callable,
    val_fraction: float,
    split_seed: int,
    train_subset: int | None,
    input_shape: tuple[int, int, int],
    classes: tuple[str, ...],
    field_name: str,
    value: Any,
) -> DataSplits:
    """Train / val / test of file-based datasets: val split off train (stratified) when absent, test falling back to val."""
    num_classes = len(classes)
    if num_classes < 2:
        raise ConfigError(field_name, value, f"{name} has {num_classes} class(es); a classifier needs at least 2")
    train_labels = np.asarray(train_base.targets, dtype=np.int64)
    check_split("train", train_labels, name, field_name, value)
    if val_base is None:
        train_idx, val_idx = stratified_split(train_labels, val_fraction, split_seed)
        val = TransformedSubset(train_base, val_idx, eval_tf, train_labels)
    else:
        train_idx = np.arange(len(train_labels), dtype=np.int64)
        val_labels = np.asarray(val_base.targets, dtype=np.int64)
        val = TransformedSubset(val_base, np.arange(len(val_labels)), eval_tf, val_labels)
    subset = apply_train_subset(train_labels[train_idx], train_subset, split_seed)
    if subset is not None:
        train_idx = train_idx[subset]
    train = TransformedSubset(train_base, train_idx, train_tf, train_labels)
    check_split("train", train.targets, name, "data.train_subset" if subset is not None else field_name,
                 train_subset if subset is not None else value)
    check_split("val", val.targets, name, field_name, value)
    if test_base is None:
        test = val  # documented fallback for image folders without a test/ directory
    else:
        test_labels = np.asarray(test_base.targets, dtype=np.int64)
        test = TransformedSubset(test_base, np.arange(len(test_labels)), eval_tf, test_labels)
    check_split("test", test.targets, name, field_name, value)
    return DataSplits(
        train=IndexedDataset(train, train.targets),
        val=IndexedDataset(val, val.targets),
        test=IndexedDataset(test, test.targets),
        num_classes=num_classes,
        input_shape=input_shape,
        name=name,
        classes=classes,
    )
