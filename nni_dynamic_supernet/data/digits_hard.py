"""The embedded ``digits_hard`` v1 dataset: a CPU-sized benchmark that needs no network.

Plain scikit-learn digits is too easy to rank architectures on (every cell scores about 99%),
so every image is rotated and noised. The recipe is fixed bit for bit in
``docs/embedded_benchmark.rst`` because the shipped ground-truth tables were trained on exactly these
arrays; :data:`DIGITS_HARD_CHECKSUMS` lets any consumer confirm that its copy is the same.

Recipe (summary):

1. ``imgs = load_digits().images / 16`` in float64, labels int64.
2. ``rng = RandomState(0)``; rotate image ``i`` by ``rng.uniform(-30, 30)`` degrees (bilinear,
   constant padding, same size), for ``i`` in order; then add ``0.2 * rng.randn(1797, 8, 8)``.
3. ``perm = rng.permutation(1797)``; walking it, an example fills train (70 per class), then
   val (40 per class), then goes to test.
4. Normalize with the scalar mean/std of the corrupted train images.
5. Test also gets two re-corrupted copies (``RandomState(1000)`` and ``RandomState(2000)``).
6. Images become float32, 1 x 8 x 8 repeated to 3 channels.
"""
from __future__ import annotations

import functools
import hashlib
import warnings

import numpy as np
import torch

__all__ = [
    "DIGITS_HARD_CHECKSUMS",
    "DIGITS_HARD_VERSION",
    "DIGITS_HARD_SPLIT_SIZES",
    "DIGITS_HARD_NUM_CLASSES",
    "DIGITS_HARD_INPUT_SHAPE",
    "load_digits_hard",
    "checksum",
    "digits_hard_checksums",
]

DIGITS_HARD_VERSION: str = "v1"
"""Version of the recipe; bump it if the recipe ever changes (the checksums will too)."""

DIGITS_HARD_NUM_CLASSES: int = 10
DIGITS_HARD_INPUT_SHAPE: tuple[int, int, int] = (3, 8, 8)
DIGITS_HARD_SPLIT_SIZES: dict[str, int] = {"train": 700, "val": 400, "test": 2091}

DIGITS_HARD_CHECKSUMS: dict[str, dict[str, str]] = {
    "train": {"images": "f1a24cc6d07fd227", "labels": "e0b0d39ea029830b"},
    "val": {"images": "2290fc6da721c3b1", "labels": "24b4d53ee14a5d2f"},
    "test": {"images": "9b9d2da6a9d15487", "labels": "47b3a3e062b87876"},
}
"""First 16 hex digits of the SHA-256 of each split's tensors (see :func:`checksum`)."""

_TRAIN_PER_CLASS = 70
_VAL_PER_CLASS = 40
_NUM_TEST_COPIES = 2
_MAX_ANGLE = 30.0
_NOISE_STD = 0.2


def checksum(t: torch.Tensor) -> str:
    """Fingerprint a tensor's contents, for comparing datasets across machines.

    Parameters
    ----------
    t
        Any CPU or GPU tensor. Its dtype and shape are part of what is hashed only through
        the raw bytes, so compare tensors of the same dtype.

    Returns
    -------
    str
        The first 16 hex digits of the SHA-256 of the tensor's bytes in C (row-major) order.
    """
    array = np.ascontiguousarray(t.detach().cpu().numpy())
    return hashlib.sha256(array.tobytes()).hexdigest()[:16]


def _corrupt(images: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    # Imported here so that importing the package does not pay for scipy.
    import scipy.ndimage

    # The order of RNG draws is part of the recipe: one angle per image in order, and only
    # then the noise for the whole stack in a single call.
    rotated = np.stack(
        [
            scipy.ndimage.rotate(
                image, rng.uniform(-_MAX_ANGLE, _MAX_ANGLE), reshape=False, order=1, mode="constant"
            )
            for image in images
        ]
    )
    return rotated + _NOISE_STD * rng.randn(*images.shape)


def _assign_splits(labels: np.ndarray, perm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    train_count = np.zeros(DIGITS_HARD_NUM_CLASSES, dtype=np.int64)
    val_count = np.zeros(DIGITS_HARD_NUM_CLASSES, dtype=np.int64)
    for i in perm:
        c = labels[i]
        if train_count[c] < _TRAIN_PER_CLASS:
            train.append(int(i))
            train_count[c] += 1
        elif val_count[c] < _VAL_PER_CLASS:
            val.append(int(i))
            val_count[c] += 1
        else:
            test.append(int(i))
    return np.array(train, dtype=np.int64), np.array(val, dtype=np.int64), np.array(test, dtype=np.int64)


def _to_tensor(images: np.ndarray, mu: np.float64, sd: np.float64) -> torch.Tensor:
    # Normalize in float64 first and cast afterwards: casting first changes the low bits.
    normalized = ((images - mu) / sd).astype(np.float32)[:, None, :, :]
    return torch.from_numpy(np.ascontiguousarray(np.repeat(normalized, 3, axis=1)))


@functools.lru_cache(maxsize=1)
def _build() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from sklearn.datasets import load_digits  # scikit-learn loads only when the digits are generated

    digits = load_digits()
    images = digits.images.astype(np.float64) / 16
    labels = digits.target.astype(np.int64)

    rng = np.random.RandomState(0)
    corrupted = _corrupt(images, rng)
    train, val, test = _assign_splits(labels, rng.permutation(len(images)))

    mu = corrupted[train].mean()
    sd = corrupted[train].std()

    # Extra corrupted copies of the test images make the ground truth less noisy.
    test_images = np.concatenate(
        [corrupted[test]]
        + [_corrupt(images[test], np.random.RandomState(1000 * c)) for c in range(1, _NUM_TEST_COPIES + 1)]
    )
    test_labels = np.tile(labels[test], _NUM_TEST_COPIES + 1)

    splits = {
        "train": (_to_tensor(corrupted[train], mu, sd), torch.from_numpy(labels[train].copy())),
        "val": (_to_tensor(corrupted[val], mu, sd), torch.from_numpy(labels[val].copy())),
        "test": (_to_tensor(test_images, mu, sd), torch.from_numpy(test_labels)),
    }
    mismatched = [
        f"{split}/{kind}"
        for split, (x, y) in splits.items()
        for kind, t in (("images", x), ("labels", y))
        if checksum(t) != DIGITS_HARD_CHECKSUMS[split][kind]
    ]
    if mismatched:
        # A different scipy/numpy may interpolate or draw differently; results then no longer
        # compare with the shipped ground-truth tables, which the user must know about.
        warnings.warn(
            "digits_hard differs from the reference recipe checksums for "
            f"{', '.join(mismatched)}; ground-truth tables built elsewhere will not match "
            "(check the numpy/scipy/scikit-learn versions)",
            RuntimeWarning,
            stacklevel=3,
        )
    return splits


def load_digits_hard() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Load the embedded ``digits_hard`` v1 benchmark dataset.

    The arrays are computed once per process (about a second) and cached; each call returns
    fresh clones, so callers may modify what they get without affecting later calls.

    Returns
    -------
    dict[str, tuple[torch.Tensor, torch.Tensor]]
        ``{"train": (x, y), "val": (x, y), "test": (x, y)}`` with ``x`` float32 of shape
        ``n x 3 x 8 x 8`` and ``y`` int64 of shape ``n``; ``n`` is 700, 400 and 2091.

    Warns
    -----
    RuntimeWarning
        If the result differs from :data:`DIGITS_HARD_CHECKSUMS` (e.g. another scipy version
        rotates differently).
    """
    return {split: (x.clone(), y.clone()) for split, (x, y) in _build().items()}


def digits_hard_checksums() -> dict[str, dict[str, str]]:
    """Compute the checksums of the ``digits_hard`` arrays as built on this machine.

    Useful for recording in ground-truth tables and for comparing against
    :data:`DIGITS_HARD_CHECKSUMS`.

    Returns
    -------
    dict[str, dict[str, str]]
        Same layout as :data:`DIGITS_HARD_CHECKSUMS`.
    """
    return {
        split: {"images": checksum(x), "labels": checksum(y)} for split, (x, y) in _build().items()
    }
