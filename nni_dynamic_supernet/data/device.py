"""A training split kept whole on the training device (``data.on_device``).

Small datasets (digits, CIFAR-10: 150 MB as float32) fit in GPU memory many times over;
stacking them once there removes the loader, the collation and the host-to-device copy
from every step. The batch *order* is that of the host loader it replaces: an index-only
``DataLoader`` with the same sampler, generator, batch size and ``drop_last`` draws the
indices (so a seed gives the same batches on the host and on the device), and the batch
is gathered on the device with one indexing.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler

__all__ = ["DeviceLoader"]


class DeviceLoader:
    """Iterate over ``loader``'s batches, gathered from a copy of its dataset on ``device``.

    Parameters
    ----------
    loader
        A map-style ``DataLoader`` whose items are ``(x, y)`` or ``(x, y, index)`` tensors
        and numbers, fixed (no random augmentation: they are read once).
    device
        Where the stacked dataset lives.

    Attributes
    ----------
    dataset, batch_size
        Those of ``loader`` (gradient matching draws from them by index).
    """

    def __init__(self, loader: DataLoader, device: torch.device | str) -> None:
        self.dataset, self.batch_size = loader.dataset, loader.batch_size
        self.collate_fn = loader.collate_fn
        items = [self.dataset[i] for i in range(len(self.dataset))]
        width = len(items[0])
        self.columns = [torch.stack([torch.as_tensor(item[k]) for item in items]).to(device) for k in range(width)]
        self.device = torch.device(device)
        # Same sampler, generator and batching as the host loader: identical index order, epoch after epoch.
        self._indices = DataLoader(range(len(self.dataset)), batch_size=loader.batch_size,
                                   sampler=loader.sampler if not _is_default(loader) else None,
                                   shuffle=False if not _is_default(loader) else _shuffles(loader),
                                   drop_last=loader.drop_last, generator=loader.generator,
                                   collate_fn=lambda idx: torch.tensor(idx, dtype=torch.long))

    def __len__(self) -> int:
        return len(self._indices)

    def __iter__(self) -> Iterator[tuple]:
        for index in self._indices:
            index = index.to(self.device, non_blocking=True)
            yield tuple(column[index] for column in self.columns)


def _is_default(loader: DataLoader) -> bool:
    return type(loader.sampler) in (RandomSampler, SequentialSampler)


def _shuffles(loader: DataLoader) -> bool:
    return isinstance(loader.sampler, RandomSampler)
