"""Equal-compute accounting for benchmark runs: steps, path forwards and CPU seconds.

Comparing techniques is only fair at equal compute: FairNAS forwards 5 paths per step, SUMNAS
several inner steps, GM retrains restarted leaves. :func:`count_path_forwards` counts the
subnet forward passes made inside training steps (one per path per batch, inner Reptile steps
included), without touching the engine: while it is active, every supernet that takes a
training step gets a forward hook, and the hook counts only calls made inside
:meth:`~nni_dynamic_supernet.training.engine.SupernetEngine.train_step` (so per-epoch
diagnostics, BN recalibration and evaluation are not counted).
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator

from ..training.engine import SupernetEngine

__all__ = ["count_path_forwards"]


@contextlib.contextmanager
def count_path_forwards() -> Iterator[dict[str, Any]]:
    """Count training-step path forwards and CPU seconds of the enclosed code.

    Yields
    ------
    dict
        Filled on exit: ``path_forwards`` (int), ``cpu_seconds`` (float, this process's user +
        system time, all threads) and ``steps_counted`` (int, ``train_step`` calls).

    Examples
    --------
    >>> with count_path_forwards() as compute:  # doctest: +SKIP
    ...     run_recipe(recipe, out)
    >>> compute["path_forwards"]  # doctest: +SKIP
    """

    counts: dict[str, Any] = {"path_forwards": 0, "steps_counted": 0, "cpu_seconds": 0.0}
    inside = [False]
    hooked: dict[int, Any] = {}
    original = SupernetEngine.train_step

    def hook(module: Any, args: Any, output: Any) -> None:
        if inside[0]:
            counts["path_forwards"] += 1

    def train_step(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Leaves can be created during training (GM splits), so models are hooked lazily.
        for model in self.models:
            if id(model) not in hooked:
                hooked[id(model)] = model.register_forward_hook(hook)
        inside[0] = True
        try:
            return original(self, *args, **kwargs)
        finally:
            inside[0] = False
            counts["steps_counted"] += 1

    started = time.process_time()
    SupernetEngine.train_step = train_step  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        SupernetEngine.train_step = original  # type: ignore[method-assign]
        for handle in hooked.values():
            handle.remove()
        counts["cpu_seconds"] = time.process_time() - started
