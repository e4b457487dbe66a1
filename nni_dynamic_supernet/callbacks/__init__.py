"""The per-epoch work of a pipeline run, as Lightning callbacks with state (one behaviour per file).

* :mod:`.diagnostics` -- :class:`Diagnostics`: the CaLR / MS / PA&DA training diagnostics;
* :mod:`.probe` -- :class:`Probe`: scores fixed probe architectures (and ranks them) at probe epochs;
* :mod:`.epoch_log` -- :class:`EpochLog`: keeps every epoch's row, logs it and reports it to nnictl.

Each is a :class:`~nni_dynamic_supernet.nni_bridge.SupernetCallback`: it adds its values to the
epoch's row after the engine closed the epoch, in the order the trainer holds the callbacks
(diagnostics, probe, then the log that keeps the finished row). Callbacks with state are saved in
every checkpoint, so a resumed run reports what an uninterrupted one does.
"""
from .diagnostics import Diagnostics
from .epoch_log import EpochLog, epoch_line
from .probe import Probe, probe_archs

__all__ = ["Diagnostics", "EpochLog", "Probe", "epoch_line", "probe_archs"]
