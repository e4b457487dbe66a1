"""Silence third-party messages that repeat on every run and tell users nothing.

What is hidden, and why each is harmless:

* NNI, at import: ``... is found to be not a nn.Module`` (NNI 3.0 wraps every ``torch.nn``
  name, and newer torch versions export non-module names such as ``Buffer``);
* NNI's ``NasExperiment``: ```training_service` will be ignored for sequential execution
  engine`` (one-shot strategies always run in-process);
* NNI's profiler: ``Parameters and FLOPs of Identity is not counted ...`` (parameter-free
  ops such as skip and pooling have nothing to count), printed twice because NNI's logger
  both prints and propagates;
* Lightning's start-up banners (``GPU available``, ``TPU available``, the logger tip,
  ``Loading train_dataloader ...``, ```Trainer.fit` stopped``), which PyTorch Lightning
  logs at INFO through its rank-zero logger;
* Lightning's run-time warnings about choices a supernet trainer makes on purpose
  (:func:`install_lightning_filters`): a ``validation_step`` without a validation loop (the
  subnets are validated after each epoch by our own evaluator), an epoch shorter than the
  logging interval, per-epoch values logged by rank 0 alone, and a resumed run writing into
  its own checkpoint directory; and torch's deprecation of ``isinstance(treespec, LeafSpec)``,
  which Lightning's own code triggers.

Warnings and errors of these libraries that are not in this list still show.
"""
from __future__ import annotations

import contextlib
import logging
import re
import warnings
from typing import Iterator

__all__ = ["MessageFilter", "quiet_third_party_logs", "install_nni_filters", "install_lightning_filters",
           "quiet_nni_import"]

_NNI_LOG_NOISE = (
    (re.compile(r"`?training_service`? will be ignored"), "nni.nas.experiment.config.experiment"),
    (re.compile(r"Parameters and FLOPs of .* is not counted"), "nni.nas.profiler.pytorch.flops"),
)
# Lightning logs its banners through these loggers; PyTorch Lightning resets the level of its
# package logger to INFO when imported, so the children are set instead (that sticks).
_LIGHTNING_BANNER_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
    "pytorch_lightning.accelerators.cuda", "lightning_fabric.utilities.seed",
)


class MessageFilter(logging.Filter):
    """Drops log records whose message matches ``pattern``."""

    def __init__(self, pattern: "re.Pattern[str]") -> None:
        super().__init__()
        self.pattern = pattern

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a record whose message matches the pattern (the record is dropped)."""
        return not self.pattern.search(record.getMessage())


def install_nni_filters() -> None:
    """Hide NNI's repeated, harmless messages (idempotent); safe to call from library code.

    Only the exact messages above are filtered, on the NNI loggers that emit them, so a
    library user keeps every other NNI message.
    """
    warnings.filterwarnings("ignore", message=r".*is found to be not a nn\.Module", category=RuntimeWarning)
    for pattern, name in _NNI_LOG_NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, MessageFilter) and f.pattern is pattern for f in logger.filters):
            logger.addFilter(MessageFilter(pattern))


#: Lightning (and torch, through Lightning) warnings a supernet trainer triggers by design (module docstring).
_LIGHTNING_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*",
    r".*You defined a `validation_step` but have no `val_dataloader`.*",
    r".*is smaller than the logging interval.*",
    r".*It is recommended to use `self\.log\(.*sync_dist=True.*",
    r".*Checkpoint directory .* exists and is not empty.*",
)


def install_lightning_filters() -> None:
    """Hide Lightning's warnings about what a supernet trainer does on purpose (see the module docstring).

    Called before a supernet is trained (our trainer, and :class:`DynamicSupernetStrategy` under
    ``NasExperiment``); each filter matches one exact message, so every other warning still shows.
    """
    for pattern in _LIGHTNING_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


def quiet_third_party_logs(verbose: bool = False) -> None:
    """For the ``nds`` command and trials: NNI filters plus Lightning banners off (unless ``verbose``)."""
    install_nni_filters()
    level = logging.INFO if verbose else logging.WARNING
    for name in _LIGHTNING_BANNER_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for name in ("pytorch_lightning", "lightning", "lightning_fabric", "nni"):
        logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def quiet_nni_import() -> Iterator[None]:
    """Silence NNI's import-time "is found to be not a nn.Module" RuntimeWarning.

    NNI 3.0 wraps every ``torch.nn`` class when ``nni.nas.nn.pytorch.layers`` is first imported and
    warns about newer torch names (``Buffer``, ...) that are not modules. The warning is harmless;
    every module of ours that imports NNI does so inside this guard so users never see it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*is found to be not a nn.Module', category=RuntimeWarning)
        yield
