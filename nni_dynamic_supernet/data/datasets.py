"""Dataset splits and deterministic loaders for supernet training and subnet evaluation.

Every supported dataset is turned into the same three splits:

* **train** trains the supernet;
* **val** scores subnets during search (BN recalibration uses train batches);
* **test** is held out for ground truth.

Splits are built deterministically (NumPy ``RandomState(split_seed)``) and stratified by class, so
two runs with the same config see exactly the same examples, which rank comparisons depend on.
Every example is returned with its position in the split (:class:`IndexedDataset`) because
importance sampling keeps per-example statistics.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from ..errors import ConfigError

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

# NAS-Bench-201's normalization constants, so that CIFAR numbers are comparable with its tables.
_CIFAR_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": (
        tuple(v / 255 for v in (125.3, 123.0, 113.9)),
        tuple(v / 255 for v in (63.0, 62.1, 66.7)),
    ),
    "cifar100": (
        tuple(v / 255 for v in (129.3, 124.1, 112.4)),
        tuple(v / 255 for v in (68.2, 65.4, 70.4)),
    ),
}
# An image folder can hold anything; ImageNet statistics are the conventional default.
_IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


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
            targets = _infer_targets(dataset)
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


def _infer_targets(dataset: Dataset) -> Any:
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return targets
    if isinstance(dataset, TensorDataset) and len(dataset.tensors) >= 2:
        return dataset.tensors[1]
    return None


class _TransformedSubset(Dataset):
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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
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


def _stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
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


def _check_split(split: str, labels: np.ndarray, name: str, field_name: str, value: Any) -> None:
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


def _validate_args(name: str, val_fraction: float, train_subset: int | None) -> None:
    if name not in KNOWN_DATASETS:
        raise ConfigError("data.name", name, f"use one of: {', '.join(KNOWN_DATASETS)}")
    if not isinstance(val_fraction, (int, float)) or not 0.0 < float(val_fraction) < 1.0:
        raise ConfigError("data.val_fraction", val_fraction, "use a number strictly between 0 and 1, e.g. 0.1")
    if train_subset is not None and (
        isinstance(train_subset, bool) or not isinstance(train_subset, (int, np.integer)) or train_subset < 1
    ):
        raise ConfigError("data.train_subset", train_subset, "use a positive integer, or null for the whole train split")


def _apply_train_subset(
    labels: np.ndarray, train_subset: int | None, split_seed: int
) -> np.ndarray | None:
    if train_subset is None:
        return None
    if train_subset > len(labels):
        raise ConfigError(
            "data.train_subset",
            train_subset,
            f"use at most {len(labels)} (the size of the train split), or null for all of it",
        )
    return _stratified_subset(labels, int(train_subset), split_seed)


def _build_digits_hard(train_subset: int | None, split_seed: int, name: str = "digits_hard") -> DataSplits:
    from .digits_hard import DIGITS_HARD_NUM_CLASSES, load_digits_hard
    from .digits_v2 import load_digits_v2

    arrays = load_digits_v2() if name == "digits_hard_v2" else load_digits_hard()
    x_train, y_train = arrays["train"]
    subset = _apply_train_subset(y_train.numpy(), train_subset, split_seed)
    if subset is not None:
        index = torch.from_numpy(subset)
        x_train, y_train = x_train[index], y_train[index]
        _check_split("train", y_train.numpy(), name, "data.train_subset", train_subset)
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


def _load_cifar(name: str, root: str | None, download: bool, train: bool) -> Any:
    import torchvision
    import torchvision.datasets.utils

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    folder = cls.base_folder
    if root is None:
        raise ConfigError(
            "data.root",
            None,
            f"pass data.root: the directory that holds {folder}/ (or will receive it with data.download: true)",
        )
    root = os.path.expanduser(str(root))
    if not download and not os.path.isdir(os.path.join(root, folder)):
        raise ConfigError(
            "data.root",
            root,
            f"no {folder}/ directory there; pass data.root pointing to the directory that contains it, "
            "or set data.download: true",
        )
    try:
        return cls(root, train=train, download=False)
    except (RuntimeError, OSError, KeyError, ValueError, EOFError) as exc:
        if not download:
            raise ConfigError(
                "data.root",
                root,
                f"{folder}/ there is incomplete or corrupted ({_one_line(exc)}); pass data.root pointing to "
                "a complete copy, or set data.download: true",
            ) from exc
    # Called directly, not through ``download=True``, so that a failed download (no network)
    # is told apart from files that are present but unreadable.
    try:
        torchvision.datasets.utils.download_and_extract_archive(cls.url, root, filename=cls.filename, md5=cls.tgz_md5)
    except Exception as exc:  # any failure here means the same thing to the user: no data
        raise ConfigError(
            "data.download",
            True,
            f"downloading {name} into {root} failed ({_one_line(exc)}); place the extracted {folder}/ "
            "under data.root yourself and set data.download: false",
        ) from exc
    try:
        return cls(root, train=train, download=False)
    except (RuntimeError, OSError, KeyError, ValueError, EOFError) as exc:
        raise ConfigError(
            "data.root",
            root,
            f"{folder}/ is unreadable after downloading ({_one_line(exc)}); delete it and retry",
        ) from exc


def _image_transforms(
    mean: Sequence[float], std: Sequence[float], size: tuple[int, int], augment: bool, resize: bool
) -> tuple[Callable, Callable]:
    from torchvision import transforms

    base: list[Callable] = [transforms.Resize(size)] if resize else []
    tail: list[Callable] = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    eval_transform = transforms.Compose(base + tail)
    if not augment:
        return eval_transform, eval_transform
    # Padding of 1/8 of the side is the usual CIFAR recipe (4 px on 32 px).
    pad = max(1, min(size) // 8)
    train_transform = transforms.Compose(
        base + [transforms.RandomCrop(size, padding=pad), transforms.RandomHorizontalFlip()] + tail
    )
    return train_transform, eval_transform


def _build_cifar(
    name: str,
    root: str | None,
    download: bool,
    val_fraction: float,
    split_seed: int,
    train_subset: int | None,
    augment: bool,
) -> DataSplits:
    train_base = _load_cifar(name, root, download, train=True)
    test_base = _load_cifar(name, root, False, train=False)
    mean, std = _CIFAR_STATS[name]
    train_tf, eval_tf = _image_transforms(mean, std, (32, 32), augment, resize=False)
    return _splits_from_bases(
        name, train_base, None, test_base, train_tf, eval_tf, val_fraction, split_seed, train_subset,
        input_shape=(3, 32, 32), classes=tuple(train_base.classes), field_name="data.root", value=root,
    )


def _splits_from_bases(
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
    num_classes = len(classes)
    if num_classes < 2:
        raise ConfigError(field_name, value, f"{name} has {num_classes} class(es); a classifier needs at least 2")
    train_labels = np.asarray(train_base.targets, dtype=np.int64)
    _check_split("train", train_labels, name, field_name, value)
    if val_base is None:
        train_idx, val_idx = _stratified_split(train_labels, val_fraction, split_seed)
        val = _TransformedSubset(train_base, val_idx, eval_tf, train_labels)
    else:
        train_idx = np.arange(len(train_labels), dtype=np.int64)
        val_labels = np.asarray(val_base.targets, dtype=np.int64)
        val = _TransformedSubset(val_base, np.arange(len(val_labels)), eval_tf, val_labels)
    subset = _apply_train_subset(train_labels[train_idx], train_subset, split_seed)
    if subset is not None:
        train_idx = train_idx[subset]
    train = _TransformedSubset(train_base, train_idx, train_tf, train_labels)
    _check_split("train", train.targets, name, "data.train_subset" if subset is not None else field_name,
                 train_subset if subset is not None else value)
    _check_split("val", val.targets, name, field_name, value)
    if test_base is None:
        test = val  # documented fallback for image folders without a test/ directory
    else:
        test_labels = np.asarray(test_base.targets, dtype=np.int64)
        test = _TransformedSubset(test_base, np.arange(len(test_labels)), eval_tf, test_labels)
    _check_split("test", test.targets, name, field_name, value)
    return DataSplits(
        train=IndexedDataset(train, train.targets),
        val=IndexedDataset(val, val.targets),
        test=IndexedDataset(test, test.targets),
        num_classes=num_classes,
        input_shape=input_shape,
        name=name,
        classes=classes,
    )


def _image_folder(path: str, root: str) -> Any:
    import torchvision

    from .image_files import CheckedImageLoader
    try:
        # A corrupt image is one line naming the file, when it is first read (also in a DataLoader worker).
        return torchvision.datasets.ImageFolder(path, loader=CheckedImageLoader(root))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise ConfigError(
            "data.root",
            root,
            f"{path} must hold one folder per class with images in it ({_one_line(exc)})",
        ) from exc


def _build_image_folder(
    root: str | None,
    download: bool,
    val_fraction: float,
    split_seed: int,
    train_subset: int | None,
    augment: bool,
) -> DataSplits:
    if download:
        raise ConfigError(
            "data.download", True, "image_folder data cannot be downloaded; set data.download: false"
        )
    if root is None:
        raise ConfigError(
            "data.root", None, "pass data.root: a directory with train/<class>/<image> (and optionally val/, test/)"
        )
    root = os.path.expanduser(str(root))
    train_dir = os.path.join(root, "train")
    if not os.path.isdir(train_dir):
        raise ConfigError(
            "data.root",
            root,
            "expected a train/ subdirectory with one folder per class (val/ and test/ are optional); "
            "pass data.root pointing to it",
        )
    train_base = _image_folder(train_dir, root)
    others: dict[str, Any] = {}
    for split in ("val", "test"):
        split_dir = os.path.join(root, split)
        if os.path.isdir(split_dir):
            others[split] = _image_folder(split_dir, root)
            if others[split].classes != train_base.classes:
                raise ConfigError(
                    "data.root",
                    root,
                    f"{split}/ has classes {others[split].classes} but train/ has {train_base.classes}; "
                    "use the same class folders in every split",
                )
    # Images may differ in size; everything is resized to the first training image's size so
    # that the supernet has a single input shape.
    first_path = train_base.samples[0][0]
    width, height = train_base.loader(first_path).size
    train_tf, eval_tf = _image_transforms(*_IMAGENET_STATS, (height, width), augment, resize=True)
    return _splits_from_bases(
        "image_folder", train_base, others.get("val"), others.get("test"), train_tf, eval_tf,
        val_fraction, split_seed, train_subset, input_shape=(3, height, width),
        classes=tuple(train_base.classes), field_name="data.root", value=root,
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
        return _build_cifar(name, root, download, float(val_fraction), split_seed, train_subset, augment)
    return _build_image_folder(root, download, float(val_fraction), split_seed, train_subset, augment)


class _RelabelledDataset(Dataset):
    """A dataset whose label ``y`` is replaced by ``mapping[y]`` (a different label set on the same images)."""

    def __init__(self, base: Dataset, mapping: torch.Tensor) -> None:
        self.base = base
        self.mapping = mapping
        targets = _infer_targets(base)
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
