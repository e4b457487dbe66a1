"""Datasets for supernet training and ranking: the embedded ``digits_hard`` benchmark,
CIFAR-10/100 and image folders, split deterministically into train/val/test."""
from __future__ import annotations

from .datasets import KNOWN_DATASETS, build_splits, make_loader, relabel_splits
from .samplers import DataSampler, ImportanceDataSampler, UniformDataSampler
from .splits import DataSplits, IndexedDataset
from .digits_hard import (
    DIGITS_HARD_CHECKSUMS,
    DIGITS_HARD_INPUT_SHAPE,
    DIGITS_HARD_NUM_CLASSES,
    DIGITS_HARD_SPLIT_SIZES,
    DIGITS_HARD_VERSION,
    checksum,
    digits_hard_checksums,
    load_digits_hard,
)

__all__ = [
    "KNOWN_DATASETS",
    "DataSplits",
    "IndexedDataset",
    "build_splits",
    "make_loader",
    "relabel_splits",
    "DataSampler",
    "UniformDataSampler",
    "ImportanceDataSampler",
    "DIGITS_HARD_CHECKSUMS",
    "DIGITS_HARD_INPUT_SHAPE",
    "DIGITS_HARD_NUM_CLASSES",
    "DIGITS_HARD_SPLIT_SIZES",
    "DIGITS_HARD_VERSION",
    "checksum",
    "digits_hard_checksums",
    "load_digits_hard",
]
