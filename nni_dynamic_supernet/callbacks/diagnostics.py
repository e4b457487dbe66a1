"""The training diagnostics of a run (CaLR's exponents and LR curves, MS's momentum consistency, PA&DA's variance)."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import pytorch_lightning as pl

from ..arch import random_arch
from ..nni_bridge import SupernetCallback, SupernetModule
from ..search.evaluate import take_batches
from ..spaces.measures import complexity_model_for
from ..stages import Run
from ..training.diagnostics import TrainingDiagnostics
from ..training.engine import SupernetEngine

__all__ = ["Diagnostics"]


class Diagnostics(SupernetCallback):
    """Attaches :class:`~nni_dynamic_supernet.training.diagnostics.TrainingDiagnostics` to the engine once it is built.

    Eight fixed random subnets (from the recipe's seed) and one fixed calibration batch are the
    gradient probes; each epoch adds ``grad_std``, ``momentum_consistency`` and ``grad_variance`` to
    the epoch's row. What they accumulated is saved in every checkpoint.

    Parameters
    ----------
    run
        The run being trained.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        #: The diagnostics, once the engine exists.
        self.diagnostics: Optional[TrainingDiagnostics] = None
        self._pending: Optional[dict] = None

    def on_engine_built(self, trainer: pl.Trainer, module: SupernetModule, engine: SupernetEngine) -> None:
        """Attach the diagnostics to the new engine (and restore a resumed run's)."""
        run = self.run
        rng = np.random.RandomState(run.recipe.seed + 3)
        archs = [random_arch(run.search_space, rng) for _ in range(8)]
        try:
            complexity: Any = complexity_model_for(run.pristine_space).params
        except Exception:  # counting is optional for diagnostics
            complexity = None
        batch = take_batches(run.calib_loader(), 1)[0]
        self.diagnostics = TrainingDiagnostics(engine, batch, archs, complexity)
        if self._pending is not None:
            self.diagnostics.load_state_dict(self._pending)
            self._pending = None

    def on_supernet_epoch_end(self, trainer: pl.Trainer, module: SupernetModule, epoch: int, row: dict) -> None:
        """Add the epoch's gradient spread, momentum consistency and gradient variance to the row."""
        assert self.diagnostics is not None
        row.update({k: v for k, v in self.diagnostics.on_epoch_end(epoch).items() if k != "epoch"})

    def summary(self, archs: Sequence[dict]) -> dict:
        """Everything for results.json (``archs``: the subnets whose LR curves are drawn)."""
        assert self.diagnostics is not None
        return self.diagnostics.summary(archs)

    def state_dict(self) -> dict:
        """What the diagnostics accumulated so far."""
        return self.diagnostics.state_dict() if self.diagnostics is not None else {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (kept until the engine exists)."""
        if not state:
            return
        if self.diagnostics is None:
            self._pending = state
        else:
            self.diagnostics.load_state_dict(state)
