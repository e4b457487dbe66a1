"""The ``spawn`` worker processes of the benchmark commands, stopped at once with their caller.

``nds bench build``, ``compare``, ``verdict`` and the pilots train one job per worker. When the
command stops early -- a signal, which :mod:`~nni_dynamic_supernet.signals` turns into an
exception, or an error -- the running jobs' results would never be recorded, so waiting for
them (minutes each) only delays the stop: :func:`worker_pool` stops them and drops the queued
ones.

A worker is stopped with SIGTERM, not killed outright: each job runs under
:func:`~nni_dynamic_supernet.signals.handle_signals`, so the signal waits for a file write in
progress to complete, then unwinds the job as it would unwind ``nds train`` (the run
directory's lock released, no temporary file left) and ends the worker by the signal, before
it can take another job. A worker still alive after :data:`STOP_GRACE_S` is killed. A stopped
job is run again, from its last whole checkpoint, by the next call.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence

from ..signals import Interrupted, die_by, handle_signals

__all__ = ["worker_pool", "STOP_GRACE_S"]

#: Seconds a stopped worker has to finish its file write and unwind before it is killed.
STOP_GRACE_S: float = 30.0


class _StoppablePool(concurrent.futures.ProcessPoolExecutor):
    """A process pool whose jobs end their worker cleanly on SIGTERM or SIGINT (``map`` goes through ``submit``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """Schedule ``fn(*args, **kwargs)`` in a worker that a signal stops between two file writes."""
        return super().submit(_run_stoppable, fn, *args, **kwargs)


def _run_stoppable(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:  # pragma: no cover (in a worker)
    """``fn(*args, **kwargs)``; a signal unwinds it and ends this worker by that signal."""
    with handle_signals():
        try:
            return fn(*args, **kwargs)
        except Interrupted as stop:
            # Returning would hand the worker its next queued job; the pool is being shut down.
            die_by(stop.signum)


@contextmanager
def worker_pool(workers: int, initializer: Optional[Callable[..., Any]] = None,
                initargs: Sequence[Any] = ()) -> Iterator[concurrent.futures.ProcessPoolExecutor]:
    """A ``spawn`` process pool that ends with its ``with`` block.

    Parameters
    ----------
    workers
        Worker processes.
    initializer, initargs
        Run once in each worker before its first job (see :class:`~concurrent.futures.ProcessPoolExecutor`).

    Yields
    ------
    concurrent.futures.ProcessPoolExecutor
        The pool. A block that ends normally waits for every submitted job; a block that raises
        (``BaseException`` included, so a signal counts) stops the workers (see the module
        docstring) and cancels the queued jobs before the exception goes on.
    """
    pool = _StoppablePool(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                          initializer=initializer, initargs=tuple(initargs))
    try:
        yield pool
    except BaseException:
        _stop_workers(pool, STOP_GRACE_S)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _stop_workers(pool: concurrent.futures.ProcessPoolExecutor, grace_s: float) -> None:
    """SIGTERM every worker of ``pool``; kill those still alive after ``grace_s`` seconds."""
    # The pool keeps its processes in this private mapping (pid -> Process) only; Python 3.14's
    # terminate_workers() would also shut the pool down, before the grace period could be given.
    processes = [p for p in list((getattr(pool, "_processes", None) or {}).values()) if p.is_alive()]
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(5.0)
