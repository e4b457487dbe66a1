"""The embedded digits_hard benchmark must match the recipe bit for bit."""
from __future__ import annotations

import warnings

import pytest
import torch

from nni_dynamic_supernet.data import (
    DIGITS_HARD_CHECKSUMS,
    DIGITS_HARD_SPLIT_SIZES,
    checksum,
    digits_hard_checksums,
    load_digits_hard,
)


@pytest.fixture(scope="module")
def splits():
    with warnings.catch_warnings():
        # A checksum mismatch warning must fail the checksum test below, not pass silently.
        warnings.simplefilter("error", RuntimeWarning)
        return load_digits_hard()


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_checksums_match_recipe(splits, split):
    x, y = splits[split]
    assert checksum(x) == DIGITS_HARD_CHECKSUMS[split]["images"]
    assert checksum(y) == DIGITS_HARD_CHECKSUMS[split]["labels"]


def test_checksum_table_is_the_documented_one():
    assert DIGITS_HARD_CHECKSUMS == {
        "train": {"images": "f1a24cc6d07fd227", "labels": "e0b0d39ea029830b"},
        "val": {"images": "2290fc6da721c3b1", "labels": "24b4d53ee14a5d2f"},
        "test": {"images": "9b9d2da6a9d15487", "labels": "47b3a3e062b87876"},
    }
    assert digits_hard_checksums() == DIGITS_HARD_CHECKSUMS


def test_shapes_and_dtypes(splits):
    for split, n in {"train": 700, "val": 400, "test": 2091}.items():
        x, y = splits[split]
        assert DIGITS_HARD_SPLIT_SIZES[split] == n
        assert x.shape == (n, 3, 8, 8) and x.dtype == torch.float32 and x.is_contiguous()
        assert y.shape == (n,) and y.dtype == torch.int64
        # The three channels are copies of one grey image.
        assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])


def test_class_balance(splits):
    assert splits["train"][1].bincount(minlength=10).tolist() == [70] * 10
    assert splits["val"][1].bincount(minlength=10).tolist() == [40] * 10
    y_test = splits["test"][1]
    # Test is three corrupted copies of the same 697 examples, in the same order.
    assert torch.equal(y_test[:697], y_test[697:1394]) and torch.equal(y_test[:697], y_test[1394:])


def test_train_is_normalized(splits):
    x = splits["train"][0].double()
    assert abs(x.mean().item()) < 1e-5
    assert abs(x.std(unbiased=False).item() - 1) < 1e-5


def test_test_copies_differ(splits):
    x = splits["test"][0]
    assert not torch.equal(x[:697], x[697:1394])


def test_deterministic_and_returns_clones(splits):
    again = load_digits_hard()
    for split in ("train", "val", "test"):
        assert torch.equal(again[split][0], splits[split][0])
        assert torch.equal(again[split][1], splits[split][1])
    again["train"][0].zero_()
    assert checksum(load_digits_hard()["train"][0]) == DIGITS_HARD_CHECKSUMS["train"]["images"]


def test_checksum_of_known_bytes():
    # sha256 of the 8 zero bytes of one int64 zero.
    assert checksum(torch.zeros(1, dtype=torch.int64)) == "af5570f5a1810b7a"
    assert checksum(torch.arange(6).reshape(2, 3).t()) == checksum(torch.arange(6).reshape(2, 3).t().contiguous())
