"""Datasets read from files: CIFAR-10/100 through torchvision, and image folders.

torchvision loads only when one of these datasets is built; the embedded ``digits_hard``
benchmark needs none of it.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from .image_errors import CheckedImageLoader
from .splits import DataSplits, one_line, splits_from_bases

__all__ = ["build_cifar", "build_image_folder"]

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
                f"{folder}/ there is incomplete or corrupted ({one_line(exc)}); pass data.root pointing to "
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
            f"downloading {name} into {root} failed ({one_line(exc)}); place the extracted {folder}/ "
            "under data.root yourself and set data.download: false",
        ) from exc
    try:
        return cls(root, train=train, download=False)
    except (RuntimeError, OSError, KeyError, ValueError, EOFError) as exc:
        raise ConfigError(
            "data.root",
            root,
            f"{folder}/ is unreadable after downloading ({one_line(exc)}); delete it and retry",
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


def build_cifar(
    name: str,
    root: str | None,
    download: bool,
    val_fraction: float,
    split_seed: int,
    train_subset: int | None,
    augment: bool,
) -> DataSplits:
    """CIFAR-10/100 from torchvision's files under root (downloaded when asked), split like every dataset."""
    train_base = _load_cifar(name, root, download, train=True)
    test_base = _load_cifar(name, root, False, train=False)
    mean, std = _CIFAR_STATS[name]
    train_tf, eval_tf = _image_transforms(mean, std, (32, 32), augment, resize=False)
    return splits_from_bases(
        name, train_base, None, test_base, train_tf, eval_tf, val_fraction, split_seed, train_subset,
        input_shape=(3, 32, 32), classes=tuple(train_base.classes), field_name="data.root", value=root,
    )


def _image_folder(path: str, root: str) -> Any:
    import torchvision

    try:
        # A corrupt image is one line naming the file, when it is first read (also in a DataLoader worker).
        return torchvision.datasets.ImageFolder(path, loader=CheckedImageLoader(root))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise ConfigError(
            "data.root",
            root,
            f"{path} must hold one folder per class with images in it ({one_line(exc)})",
        ) from exc


def build_image_folder(
    root: str | None,
    download: bool,
    val_fraction: float,
    split_seed: int,
    train_subset: int | None,
    augment: bool,
) -> DataSplits:
    """An image folder (root/train/<class>/<image>, optional val/ and test/), resized to its first image."""
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
    return splits_from_bases(
        "image_folder", train_base, others.get("val"), others.get("test"), train_tf, eval_tf,
        val_fraction, split_seed, train_subset, input_shape=(3, height, width),
        classes=tuple(train_base.classes), field_name="data.root", value=root,
    )
