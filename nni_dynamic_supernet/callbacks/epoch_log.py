"""The epoch log: every epoch's row, kept for results.json, logged for TensorBoard and reported to nnictl."""
from __future__ import annotations

import logging
import time
from typing import Any, Optional

import pytorch_lightning as pl

from ..nni_bridge import SupernetCallback, SupernetModule

_logger = logging.getLogger("nni_dynamic_supernet")

__all__ = ["EpochLog", "epoch_line"]


class EpochLog(SupernetCallback):
    """Keeps the per-epoch rows of a run; a resumed run restores them, so results.json holds every epoch.

    It runs last among the epoch's callbacks: the row it keeps has every value the others added.
    Each row is logged under ``epoch/<key>`` (TensorBoard), summarised in one log line, and sent
    to nnictl as an intermediate result when the epoch was measured (a probe ran): NNI draws,
    and assessors read, every intermediate point as a measurement.

    Parameters
    ----------
    epochs
        The run's epochs (for the log line).
    reporter
        An :class:`~nni_dynamic_supernet.nni_bridge.NniReporter`, or ``None``.
    """

    def __init__(self, epochs: int, reporter: Any = None) -> None:
        self.epochs = epochs
        self.reporter = reporter
        self.history: list[dict] = []
        self._started: Optional[float] = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start the clock of the first epoch's log line."""
        self._started = time.monotonic()

    def on_supernet_epoch_end(self, trainer: pl.Trainer, module: SupernetModule, epoch: int, row: dict) -> None:
        """Keep, log and report the finished row of epoch ``epoch``."""
        self.history.append(row)
        module.log_dict({f"epoch/{k}": v for k, v in row.items() if k != "epoch"})
        now = time.monotonic()
        _logger.info("%s", epoch_line(row, self.epochs, now - (self._started or now)))
        self._started = time.monotonic()
        if self.reporter is not None and "probe_acc" in row:
            self.reporter.intermediate(row)

    def state_dict(self) -> dict:
        """The rows (plain data)."""
        return {"history": [dict(r) for r in self.history]}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` in place (callers hold a reference to :attr:`history`)."""
        self.history[:] = [dict(r) for r in state["history"]]


def epoch_line(row: dict, epochs: int, seconds: float) -> str:
    """One log line per epoch with what a user watches; every other value is in TensorBoard and results.json.

    Parameters
    ----------
    row
        The epoch's row.
    epochs
        The run's epochs.
    seconds
        The epoch's wall time.

    Returns
    -------
    str
    """
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss={row['loss']:.4f}", f"lr={row['lr']:.4g}"]
    if "probe_acc" in row:
        parts.append(f"probe_acc={row['probe_acc']:.2f}%")
    if "kendall_tau" in row:
        parts.append(f"tau={row['kendall_tau']:.3f}")
    if "probe_size" in row:
        parts.append(f"(probe of {row['probe_size']} archs)")
    parts.append(f"[{seconds:.1f} s]")
    return "  ".join(parts)
