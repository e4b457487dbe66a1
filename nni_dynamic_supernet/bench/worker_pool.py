"""The ``spawn`` worker processes of the benchmark commands, stopped at once with their caller.

``nds bench build``, ``compare``, ``verdict`` and the pilots train one job per worker. When the
command stops early -- a signal, which :mod:`~nni_dynamic_supernet.signals` turns into an
exception, or an error -- the running jobs' results would never be recorded, so waiting for
them (minutes each) only delays the stop: :func:`worker_pool` kills them and drops the queued
ones. A killed job leaves at most whole files behind (every write is atomic) and is run again
by the next call.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, Sequence

__all__ = ["worker_pool"]


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
        (``BaseException`` included, so a signal counts) kills the workers and cancels the
        queued jobs before the exception goes on.
    """
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=initializer, initargs=tuple(initargs))
    try:
        yield pool
    except BaseException:
        _kill_workers(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _kill_workers(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Kill every worker of ``pool`` now (Python 3.14 has this as ``kill_workers``)."""
    kill = getattr(pool, "kill_workers", None)
    if callable(kill):
        kill()
        return
    # Before 3.14 the pool keeps its processes in this private mapping (pid -> Process) only.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.kill()
