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
  logs at INFO through its rank-zero logger.

Warnings and errors of these libraries that are not in this list still show.
"""
from __future__ import annotations

import logging
import re
import warnings

__all__ = ["MessageFilter", "quiet_third_party_logs", "install_nni_filters"]

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


def quiet_third_party_logs(verbose: bool = False) -> None:
    """For the ``nds`` command and trials: NNI filters plus Lightning banners off (unless ``verbose``)."""
    install_nni_filters()
    level = logging.INFO if verbose else logging.WARNING
    for name in _LIGHTNING_BANNER_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for name in ("pytorch_lightning", "lightning", "lightning_fabric", "nni"):
        logging.getLogger(name).setLevel(level)
