"""The embedded digits_hard_v2 dataset must be generated bit for bit (checksums), and its designs checked."""
from __future__ import annotations

import warnings

import pytest
import torch

from nni_dynamic_supernet.data.digits_hard import checksum
from nni_dynamic_supernet.data.digits_v2 import (
    DIGITS_V2,
    DIGITS_V2_CHECKSUMS,
    DigitsDesign,
    build_digits,
    digits_v2_checksums,
    load_digits_v2,
)
from nni_dynamic_supernet.errors import ConfigError


@pytest.fixture(scope="module")
def splits():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a checksum mismatch must fail here
        return load_digits_v2()


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_checksums_match_the_pinned_ones(splits, split):
    x, y = splits[split]
    assert checksum(x) == DIGITS_V2_CHECKSUMS[split]["images"]
    assert checksum(y) == DIGITS_V2_CHECKSUMS[split]["labels"]


def test_pinned_checksums_and_shapes():
    assert DIGITS_V2_CHECKSUMS == {
        "train": {"images": "7e31c4a932682c7d", "labels": "0a838b6aca1029fe"},
        "val": {"images": "fd648038306d6f26", "labels": "d68d459831fe5061"},
        "test": {"images": "d3b7df3a78ed88ad", "labels": "13aef2b000e29e86"},
    }
    assert digits_v2_checksums() == DIGITS_V2_CHECKSUMS
    data = load_digits_v2()
    assert {k: tuple(x.shape) for k, (x, _) in data.items()} == {
        "train": (700, 3, 16, 16), "val": (400, 3, 16, 16), "test": (697, 3, 16, 16)}
    assert torch.bincount(data["train"][1]).tolist() == [70] * 10
    # Held-out images only: 1797 digits minus train and val, no re-noised copies.
    assert len(data["test"][1]) == 1797 - 700 - 400


def test_returns_copies(splits):
    data = load_digits_v2()
    data["train"][0].zero_()
    assert checksum(load_digits_v2()["train"][0]) == DIGITS_V2_CHECKSUMS["train"]["images"]


def test_other_designs_are_deterministic_and_shaped():
    design = DigitsDesign(canvas=16, digit_size=10, train_copies=2)
    a, b = build_digits(design), build_digits(DigitsDesign(canvas=16, digit_size=10, train_copies=2))
    assert tuple(a["train"][0].shape) == (1400, 3, 16, 16)
    assert checksum(a["train"][0]) == checksum(b["train"][0])
    # Extra copies re-draw the corruption of the same digits: same labels, different images.
    assert torch.equal(a["train"][1][:700], a["train"][1][700:])
    assert not torch.equal(a["train"][0][:700], a["train"][0][700:])
    assert checksum(a["train"][0]) != checksum(build_digits(DIGITS_V2)["train"][0])


def test_test_copies_grow_only_the_test_split():
    base = build_digits(DIGITS_V2)
    more = build_digits(DigitsDesign(canvas=16, digit_size=12, max_angle=15.0, noise=0.1, test_copies=3))
    for split in ("train", "val"):  # drawn before the test copies: bit-identical
        assert torch.equal(base[split][0], more[split][0]) and torch.equal(base[split][1], more[split][1])
    x, y = more["test"]
    assert tuple(x.shape) == (3 * 697, 3, 16, 16)
    assert torch.equal(x[:697], base["test"][0]) and torch.equal(y, base["test"][1].repeat(3))
    assert not torch.equal(x[697:1394], x[:697])  # fresh geometry and noise for the same digits


@pytest.mark.parametrize("design", [DigitsDesign(canvas=10), DigitsDesign(canvas=8, digit_size=6),
                                    DigitsDesign(train_copies=0), DigitsDesign(test_copies=0)])
def test_bad_design_is_refused(design):
    with pytest.raises(ConfigError, match="design"):
        build_digits(design)


def test_build_splits_serves_v2():
    from nni_dynamic_supernet.data import build_splits

    splits = build_splits("digits_hard_v2")
    assert splits.name == "digits_hard_v2" and splits.input_shape == (3, 16, 16)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (700, 400, 697)
