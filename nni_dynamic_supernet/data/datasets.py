"""Dataset splits and deterministic loaders for supernet training and subnet evaluation.

:func:`build_splits` turns every supported dataset into the same train/val/test splits
(:mod:`.splits`): the embedded ``digits_hard`` benchmarks here, CIFAR and image folders in
:mod:`.image_files`. :func:`make_loader` batches a split in an order that depends only on a seed.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from ..errors import ConfigError
from .digits_hard import DIGITS_HARD_NUM_CLASSES, load_digits_hard
from .digits_v2 import load_digits_v2
from .image_files import build_cifar, build_image_folder
from .splits import DataSplits, IndexedDataset, apply_train_subset, check_split, infer_targets

__all__ = [
    "KNOWN_DATASETS",
    "IndexedDataset",
    "DataSplits",
    "build_splits",
    "make_loader",
    "relabel_splits",
]

KNOWN_DATASETS: tuple[str, ...] = ("digits_hard", "digits_hard_v2", "cifar10", "cifar100", "image_folder")
"""Names accepted by :func:`build_splits` (config field ``data.name``)."""


def _validate_args(name: str, val_fraction: float, train_subset: int | None) -> None:
    if name not in KNOWN_DATASETS:
        raise ConfigError("data.name", name, f"use one of: {', '.join(KNOWN_DATASETS)}")
    if not isinstance(val_fraction, (int, float)) or not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError("data.val_fraction", val_fraction, "use a number strictly between 0 and 1, e.g. 0.1")
    if train_subset is not None and (
        isinstance(train_subset, bool) or not isinstance(train_subset, (int, np.integer)) or train_subset < 1
    ):
        raise ConfigError("data.train_subset", train_subset, "use a positive integer, or null for the whole train split")


def _build_digits_hard(train_subset: int | None, split_seed: int, name: str = "digits_hard") -> DataSplits:
    arrays = load_digits_v2() if name == "digits_hard_v2" else load_digits_hard()
    x_train, y_train = arrays["train"]
    subset = apply_train_subset(y_train.numpy(), train_subset, split_seed)
    if subset is not None:
        index = torch.from_numpy(subset)
        x_train, y_train = x_train[index], y_train[index]
        check_split("train", y_train.numpy(), name, "data.train_subset", train_subset)
    x_val, y_val = arrays["val"]
    x_test, y_test = arrays["test"]
    return DataSplits(
        train=IndexedDataset(TensorDataset(x_train, y_train)),
        val=IndexedDataset(TensorDataset(x_val, y_val)),
        test=IndexedDataset(TensorDataset(x_test, y_test)),
        num_classes=DIGITS_HARD_NUM_CLASSES,
        input_shape=tuple(x_train.shape[1:]),
        name=name,
        classes=tuple(str(c) for c in range(DIGITS_HARD_NUM_CLASSES)),
    )


def build_splits(
    name: str,
    root: str | None = None,
    download: bool = False,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    train_subset: int | None = None,
    augment: bool = False,
) -> DataSplits:
    """Build the train/val/test splits of a dataset, deterministically.

    Parameters
    ----------
    name
        One of :data:`KNOWN_DATASETS`:

        * ``digits_hard``: the embedded benchmark (no files, no network). Its splits are fixed
          by the recipe, so ``root``, ``download`` and ``val_fraction`` are ignored.
        * ``digits_hard_v2``: the embedded benchmark v2 (:mod:`.digits_v2`), the same way.
        * ``cifar10`` / ``cifar100``: torchvision's files under ``root``. Val is a
          class-stratified ``val_fraction`` of the torchvision train set, train is the rest,
          test is the torchvision test set. Normalized with NAS-Bench-201's CIFAR mean/std.
        * ``image_folder``: ``root/train/<class>/<image>``, optionally ``root/val`` and
          ``root/test`` with the same classes. Without ``val/``, val is a stratified split of
          train; without ``test/``, test is val. Images are converted to RGB, resized to the
          size of the first training image and normalized with ImageNet mean/std.
    root
        Directory of the data (``data.root``). Required for everything but ``digits_hard``.
    download
        Download CIFAR into ``root`` if it is not there (``data.download``).
    val_fraction
        Fraction of each class's training examples held out as val, in ``(0, 1)``.
    split_seed
        Seed of the NumPy ``RandomState`` that picks the val split and the train subset.
    train_subset
        If given, keep only this many training examples, a class-proportional (stratified)
        deterministic subset, for quick runs.
    augment
        Random crop (padding 1/8 of the side, 4 px on CIFAR) and horizontal flip on train
        only. Ignored for ``digits_hard``, whose recipe has no augmentation.

    Returns
    -------
    DataSplits
        The three splits, each yielding ``(image, label, index)``.

    Raises
    ------
    ConfigError
        Unknown name, missing or unreadable data, a failed download, a bad fraction or
        subset size, or a split with no examples or fewer than 2 classes.
    """
    _validate_args(name, val_fraction, train_subset)
    if name in ("digits_hard", "digits_hard_v2"):
        return _build_digits_hard(train_subset, split_seed, name)
    if name in ("cifar10", "cifar100"):
        return build_cifar(name, root, download, float(val_fraction), split_seed, train_subset, augment)
    return build_image_folder(root, download, float(val_fraction), split_seed, train_subset, augment)


class _RelabelledDataset(Dataset):
    """A dataset whose label ``y`` is replaced by ``mapping[y]`` (a different label set on the same images)."""

    def __init__(self, base: Dataset, mapping: torch.Tensor) -> None:
        self.base = base
        self.mapping = mapping
        targets = infer_targets(base)
        self.targets = None if targets is None else mapping[torch.as_tensor(np.asarray(targets), dtype=torch.int64)]

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        item = self.base[index]
        return item[0], int(self.mapping[int(item[1])])


def relabel_splits(splits: DataSplits, label_map: Sequence[int], field_name: str = "data.label_map") -> DataSplits:
    """A view of ``splits`` with class ``c`` relabelled ``label_map[c]`` in every split.

    It gives the embedded benchmark a second task on the same images (digit parity,
    digit mod 5, ...), which is what supernet transfer is demonstrated on when no
    second dataset is available offline.

    Raises
    ------
    ConfigError
        When ``label_map`` does not have one entry per class or leaves a new label unused.
    """
    mapping = [int(v) for v in label_map]
    if len(mapping) != splits.num_classes:
        raise ConfigError(field_name, list(label_map),
                          f"needs one entry per class of {splits.name} ({splits.num_classes}), got {len(mapping)}")
    num_classes = max(mapping) + 1
    if sorted(set(mapping)) != list(range(num_classes)):
        raise ConfigError(field_name, list(label_map), f"must use every label 0 .. {num_classes - 1}")
    table = torch.as_tensor(mapping, dtype=torch.int64)

    def view(split: IndexedDataset) -> IndexedDataset:
        return IndexedDataset(_RelabelledDataset(split.dataset, table))

    names = []
    for new in range(num_classes):
        olds = [splits.classes[c] if c < len(splits.classes) else str(c) for c, m in enumerate(mapping) if m == new]
        names.append("+".join(olds))
    return DataSplits(train=view(splits.train), val=view(splits.val), test=view(splits.test), num_classes=num_classes,
                      input_shape=splits.input_shape, name=splits.name, classes=tuple(names))


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int,
    drop_last: bool,
    sampler: Sampler | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Create a DataLoader whose batch order depends only on ``seed``.

    The loader owns a ``torch.Generator`` seeded with ``seed``: shuffling and the seeds of
    worker processes (hence random augmentation in workers) come from it, so two loaders
    built with the same arguments yield the same batches, epoch after epoch.

    Parameters
    ----------
    dataset
        Usually a split from :func:`build_splits`.
    batch_size
        Examples per batch (at least 1).
    shuffle
        Reshuffle every epoch. Ignored when ``sampler`` is given: the sampler decides order.
    seed
        Seed of the loader's generator.
    drop_last
        Drop the last incomplete batch (training usually does, evaluation should not).
    sampler
        Custom sampler, e.g. for importance sampling. It should draw from its own seeded
        generator; this loader's generator is not passed to it.
    num_workers
        Worker processes; with more than 0 they are kept alive between epochs.
    pin_memory
        Page-locked batches, so the copy to a GPU (``non_blocking``) overlaps computation.

    Returns
    -------
    torch.utils.data.DataLoader
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError("batch_size", batch_size, "use a positive integer")
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise ConfigError("num_workers", num_workers, "use 0 (load in the main process) or a positive integer")
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=int(batch_size),
        shuffle=bool(shuffle) and sampler is None,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=int(num_workers),
        generator=generator,
        persistent_workers=num_workers > 0,
        pin_memory=bool(pin_memory),
    )
