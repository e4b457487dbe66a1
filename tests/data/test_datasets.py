"""Splits, loaders and user errors of nni_dynamic_supernet.data.datasets (all offline)."""
from __future__ import annotations

import os
import pickle
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from nni_dynamic_supernet.data import (
    KNOWN_DATASETS,
    DataSplits,
    IndexedDataset,
    build_splits,
    make_loader,
)
from nni_dynamic_supernet.errors import ConfigError


# ---------------------------------------------------------------------------------------------
# fixtures


def _pixels(labels: list[int], offset: int) -> np.ndarray:
    # Each image is filled with a distinct value so that tests can tell examples apart.
    values = (np.arange(len(labels)) + offset) % 256
    return np.repeat(values[:, None], 3072, axis=1).astype(np.uint8)


def _dump(path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.fixture
def no_md5(monkeypatch):
    """Accept fake CIFAR files: torchvision checks md5 sums of the real ones."""
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    # _load_meta calls the module-level check_integrity directly, not _check_integrity.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


@pytest.fixture
def cifar10_root(tmp_path, no_md5):
    """A fake CIFAR-10: 5 train batches of 2 images per class (100 total), test of 20."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for b in range(1, 6):
        labels = [c for c in range(10) for _ in range(2)]
        _dump(folder / f"data_batch_{b}", {"data": _pixels(labels, 20 * (b - 1)), "labels": labels})
    test_labels = list(range(10)) * 2
    _dump(folder / "test_batch", {"data": _pixels(test_labels, 200), "labels": test_labels})
    _dump(folder / "batches.meta", {"label_names": [f"class{c}" for c in range(10)]})
    return str(tmp_path)


@pytest.fixture
def cifar100_root(tmp_path, no_md5):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    labels = [c for c in range(100) for _ in range(3)]
    _dump(folder / "train", {"data": _pixels(labels, 0), "fine_labels": labels, "coarse_labels": labels})
    test_labels = list(range(100))
    _dump(folder / "test", {"data": _pixels(test_labels, 0), "fine_labels": test_labels})
    _dump(folder / "meta", {"fine_label_names": [f"c{c}" for c in range(100)]})
    return str(tmp_path)


def _write_folder(root, split: str, per_class: dict[str, int], size=(6, 5)) -> None:
    for cls, n in per_class.items():
        d = os.path.join(root, split, cls)
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            Image.new("RGB", size, color=(i * 10, 0, 0)).save(os.path.join(d, f"{i}.png"))


def _collect(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*[(x, y) for x, y, _ in (dataset[i] for i in range(len(dataset)))])
    return torch.stack([torch.as_tensor(x) for x in xs]), torch.as_tensor(ys)


# ---------------------------------------------------------------------------------------------
# IndexedDataset


def test_indexed_dataset_returns_position():
    base = torch.utils.data.TensorDataset(torch.arange(5.0) * 10, torch.tensor([1, 0, 1, 0, 1]))
    ds = IndexedDataset(base)
    assert len(ds) == 5
    for i in range(5):
        x, y, index = ds[i]
        assert index == i and x.item() == 10 * i and y.item() == base[i][1].item()
    assert ds.targets.tolist() == [1, 0, 1, 0, 1]


def test_indexed_dataset_batches_carry_indices():
    base = torch.utils.data.TensorDataset(torch.arange(8.0), torch.zeros(8, dtype=torch.int64))
    loader = make_loader(IndexedDataset(base), batch_size=3, shuffle=True, seed=1, drop_last=False)
    for x, _, index in loader:
        assert torch.equal(x, index.float())


def test_indexed_dataset_without_targets():
    class Pairs(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return i, 0

    assert IndexedDataset(Pairs()).targets is None
    assert IndexedDataset(Pairs(), targets=[0, 1]).targets.tolist() == [0, 1]


# ---------------------------------------------------------------------------------------------
# digits_hard


def test_digits_hard_splits():
    splits = build_splits("digits_hard")
    assert isinstance(splits, DataSplits)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (700, 400, 2091)
    assert splits.num_classes == 10 and splits.input_shape == (3, 8, 8) and splits.name == "digits_hard"
    x, y, index = splits.val[3]
    assert x.shape == (3, 8, 8) and x.dtype == torch.float32 and index == 3
    assert splits.train.targets.bincount().tolist() == [70] * 10


def test_digits_hard_train_subset_is_stratified_and_deterministic():
    a = build_splits("digits_hard", train_subset=105)
    b = build_splits("digits_hard", train_subset=105)
    assert len(a.train) == 105
    counts = a.train.targets.bincount(minlength=10)
    assert counts.max() - counts.min() <= 1
    assert torch.equal(_collect(a.train)[0], _collect(b.train)[0])
    assert len(a.val) == 400


# ---------------------------------------------------------------------------------------------
# CIFAR (fake local files)


def test_cifar10_splits_are_stratified(cifar10_root):
    splits = build_splits("cifar10", root=cifar10_root, val_fraction=0.2, split_seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (80, 20, 20)
    assert splits.num_classes == 10 and splits.input_shape == (3, 32, 32) and splits.name == "cifar10"
    assert splits.classes[0] == "class0"
    assert splits.train.targets.bincount().tolist() == [8] * 10
    assert splits.val.targets.bincount().tolist() == [2] * 10
    train_idx = splits.train.dataset.indices
    val_idx = splits.val.dataset.indices
    assert set(train_idx).isdisjoint(val_idx) and len(set(train_idx) | set(val_idx)) == 100
    x, y, index = splits.val[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and index == 0
    assert y == splits.val.targets[0].item()
    # Undo normalization: the pixel value of the fake image is its position in the train set.
    mean = torch.tensor([125.3, 123.0, 113.9]) / 255
    std = torch.tensor([63.0, 62.1, 66.7]) / 255
    raw = (x * std[:, None, None] + mean[:, None, None]) * 255
    assert torch.allclose(raw, torch.full_like(raw, float(val_idx[0])), atol=1e-3)


def test_cifar10_splits_are_deterministic(cifar10_root):
    a = build_splits("cifar10", root=cifar10_root, val_fraction=0.2, split_seed=3)
    b = build_splits("cifar10", root=cifar10_root, val_fraction=0.2, split_seed=3)
    c = build_splits("cifar10", root=cifar10_root, val_fraction=0.2, split_seed=4)
    assert np.array_equal(a.val.dataset.indices, b.val.dataset.indices)
    assert np.array_equal(a.train.dataset.indices, b.train.dataset.indices)
    assert not np.array_equal(a.val.dataset.indices, c.val.dataset.indices)


def test_cifar10_train_subset_and_augment(cifar10_root):
    splits = build_splits("cifar10", root=cifar10_root, val_fraction=0.2, train_subset=30, augment=True)
    assert len(splits.train) == 30 and splits.train.targets.bincount().tolist() == [3] * 10
    assert set(splits.train.dataset.indices) <= set(
        build_splits("cifar10", root=cifar10_root, val_fraction=0.2).train.dataset.indices
    )
    assert splits.train[0][0].shape == (3, 32, 32)
    # Augmentation is for train only.
    assert torch.equal(splits.val[0][0], splits.val[0][0])


def test_cifar100(cifar100_root):
    splits = build_splits("cifar100", root=cifar100_root, val_fraction=0.34)
    assert splits.num_classes == 100
    assert (len(splits.train), len(splits.val), len(splits.test)) == (200, 100, 100)
    assert splits.val.targets.bincount().tolist() == [1] * 100


def test_cifar_missing_root(tmp_path):
    with pytest.raises(ConfigError) as err:
        build_splits("cifar10", root=None)
    assert err.value.field == "data.root" and "data.root" in str(err.value)
    with pytest.raises(ConfigError) as err:
        build_splits("cifar10", root=str(tmp_path / "nowhere"))
    message = str(err.value)
    assert message.startswith("data.root=") and "data.download: true" in message and "\n" not in message


def test_cifar_corrupted_files(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(ConfigError) as err:
        build_splits("cifar10", root=str(tmp_path))
    assert err.value.field == "data.root" and "\n" not in str(err.value)


def test_cifar_download_failure(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure\nin name resolution")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", offline)
    with pytest.raises(ConfigError) as err:
        build_splits("cifar10", root=str(tmp_path), download=True)
    assert err.value.field == "data.download"
    assert "data.download" in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# image_folder


def test_image_folder_split_from_train(tmp_path):
    _write_folder(tmp_path, "train", {"cat": 5, "dog": 5, "emu": 10})
    # One odd-sized image: everything is resized to the first image's size.
    Image.new("L", (9, 9)).save(tmp_path / "train" / "emu" / "odd.png")
    splits = build_splits("image_folder", root=str(tmp_path), val_fraction=0.2)
    assert splits.classes == ("cat", "dog", "emu") and splits.num_classes == 3
    assert splits.input_shape == (3, 5, 6)
    assert splits.val.targets.bincount().tolist() == [1, 1, 2]
    assert len(splits.train) + len(splits.val) == 21
    assert splits.test is not None and len(splits.test) == len(splits.val)
    x, y, index = splits.train[len(splits.train) - 1]
    assert x.shape == (3, 5, 6) and index == len(splits.train) - 1
    again = build_splits("image_folder", root=str(tmp_path), val_fraction=0.2)
    assert np.array_equal(again.val.dataset.indices, splits.val.dataset.indices)


def test_image_folder_with_val_and_test(tmp_path):
    _write_folder(tmp_path, "train", {"a": 4, "b": 4})
    _write_folder(tmp_path, "val", {"a": 2, "b": 1})
    _write_folder(tmp_path, "test", {"a": 3, "b": 3})
    splits = build_splits("image_folder", root=str(tmp_path), augment=True)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (8, 3, 6)
    assert splits.train[0][0].shape == (3, 5, 6)


def test_image_folder_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        build_splits("image_folder", root=str(tmp_path))
    assert err.value.field == "data.root" and "train/" in str(err.value)
    with pytest.raises(ConfigError) as err:
        build_splits("image_folder", root=None)
    assert err.value.field == "data.root"
    _write_folder(tmp_path, "train", {"only": 3})
    with pytest.raises(ConfigError) as err:
        build_splits("image_folder", root=str(tmp_path))
    assert "at least 2" in str(err.value)
    _write_folder(tmp_path, "train", {"other": 3})
    _write_folder(tmp_path, "val", {"only": 1, "third": 1})
    with pytest.raises(ConfigError) as err:
        build_splits("image_folder", root=str(tmp_path))
    assert "same class folders" in str(err.value)
    with pytest.raises(ConfigError) as err:
        build_splits("image_folder", root=str(tmp_path), download=True)
    assert err.value.field == "data.download"


# ---------------------------------------------------------------------------------------------
# argument errors


def test_unknown_name_lists_known_names():
    with pytest.raises(ConfigError) as err:
        build_splits("mnist")
    message = str(err.value)
    assert err.value.field == "data.name" and "'mnist'" in message and "\n" not in message
    for name in KNOWN_DATASETS:
        assert name in message


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"val_fraction": 0.0}, "data.val_fraction"),
        ({"val_fraction": 1.5}, "data.val_fraction"),
        ({"train_subset": 0}, "data.train_subset"),
        ({"train_subset": 701}, "data.train_subset"),
    ],
)
def test_bad_arguments(kwargs, field):
    with pytest.raises(ConfigError) as err:
        build_splits("digits_hard", **kwargs)
    assert err.value.field == field


# ---------------------------------------------------------------------------------------------
# make_loader


def _order(loader) -> list[int]:
    return [int(i) for batch in loader for i in batch[2]]


def test_make_loader_is_deterministic():
    ds = IndexedDataset(torch.utils.data.TensorDataset(torch.zeros(50, 2), torch.zeros(50, dtype=torch.int64)))
    a = make_loader(ds, batch_size=8, shuffle=True, seed=7, drop_last=True)
    b = make_loader(ds, batch_size=8, shuffle=True, seed=7, drop_last=True)
    c = make_loader(ds, batch_size=8, shuffle=True, seed=8, drop_last=True)
    first, second = _order(a), _order(a)
    assert first == _order(b) and second == _order(b)  # same sequence of epochs
    assert first != second  # reshuffled every epoch
    assert first != _order(c)
    assert len(first) == 48 and len(set(first)) == 48
    assert _order(make_loader(ds, batch_size=8, shuffle=False, seed=7, drop_last=False)) == list(range(50))


def test_make_loader_sampler_and_workers():
    ds = IndexedDataset(torch.utils.data.TensorDataset(torch.zeros(6, 1), torch.zeros(6, dtype=torch.int64)))
    loader = make_loader(ds, batch_size=2, shuffle=True, seed=0, drop_last=False, sampler=[5, 4, 3, 2, 1, 0])
    assert _order(loader) == [5, 4, 3, 2, 1, 0]
    assert make_loader(ds, batch_size=2, shuffle=False, seed=0, drop_last=False, num_workers=1).persistent_workers
    with pytest.raises(ConfigError):
        make_loader(ds, batch_size=0, shuffle=False, seed=0, drop_last=False)


# ---------------------------------------------------------------------------------------------- label views
def test_relabel_splits_is_a_view_with_new_classes():
    from nni_dynamic_supernet.data import relabel_splits
    splits = build_splits("digits_hard")
    parity = relabel_splits(splits, [c % 2 for c in range(10)])
    assert parity.num_classes == 2 and parity.input_shape == splits.input_shape
    for name in ("train", "val", "test"):
        old, new = getattr(splits, name), getattr(parity, name)
        assert len(old) == len(new)
        x_old, y_old, _ = old[5]
        x_new, y_new, index = new[5]
        assert torch.equal(x_old, x_new) and y_new == int(y_old) % 2 and index == 5
        assert torch.equal(new.targets, old.targets % 2)
    assert parity.classes == ("0+2+4+6+8", "1+3+5+7+9")


@pytest.mark.parametrize("mapping", [[0, 1], [0, 2] * 5])
def test_relabel_splits_rejects_bad_maps(mapping):
    from nni_dynamic_supernet.data import relabel_splits
    with pytest.raises(ConfigError, match="data.label_map"):
        relabel_splits(build_splits("digits_hard"), mapping)
