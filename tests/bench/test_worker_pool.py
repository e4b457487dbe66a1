"""The benchmark commands' worker pool: a block that ends waits, a block that is stopped stops its workers."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nni_dynamic_supernet.atomic_io import atomic_write_bytes
from nni_dynamic_supernet.bench.worker_pool import worker_pool
from nni_dynamic_supernet.run_dir import DirectoryLock


def _gone(pid: int) -> bool:
    """The process has exited (reaped, or a zombie waiting for its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:  # reaped since the kill() above
        return True
    return state == "Z"


def test_a_block_that_ends_normally_waits_for_every_job() -> None:
    with worker_pool(2) as pool:
        futures = [pool.submit(pow, 2, k) for k in range(4)]
    assert [f.result(timeout=0) for f in futures] == [1, 2, 4, 8]


def test_a_stopped_block_kills_its_running_workers_instead_of_waiting_for_them() -> None:
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with worker_pool(2) as pool:
            futures = [pool.submit(time.sleep, 600) for _ in range(3)]
            deadline = time.monotonic() + 120
            while len(pool._processes) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            pids = list(pool._processes)
            assert len(pids) == 2
            raise KeyboardInterrupt
    # No job completes: each is cancelled or fails with the broken pool, well before its 10 minutes.
    for future in futures:
        assert future.cancelled() or future.exception(timeout=120) is not None
    deadline = time.monotonic() + 60
    while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(pid) for pid in pids)
    assert time.monotonic() - started < 300


def _write_forever(folder: str) -> None:  # pragma: no cover (in a worker)
    """Hold ``folder``'s run lock and rewrite a large file atomically until stopped, as training does."""
    lock = DirectoryLock(Path(folder), "--out", "test").acquire()
    try:
        payload = os.urandom(16 << 20)
        while True:
            atomic_write_bytes(Path(folder) / "last.ckpt", payload)
    finally:
        lock.release()


def test_a_stopped_worker_completes_its_write_and_releases_its_lock(tmp_path: Path) -> None:
    # A worker is almost always inside a write here: killed outright, it leaves a temporary file
    # and its lock behind.
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with worker_pool(2) as pool:
            futures = [pool.submit(_write_forever, str(folder)) for folder in folders]
            deadline = time.monotonic() + 120
            while not all((f / "last.ckpt").is_file() for f in folders) and time.monotonic() < deadline:
                time.sleep(0.05)
            pids = list(pool._processes)
            time.sleep(0.5)
            raise KeyboardInterrupt
    for future in futures:
        assert future.cancelled() or future.exception(timeout=60) is not None
    assert all(_gone(pid) for pid in pids)
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]  # whole; no .tmp, no nds.lock
        assert (folder / "last.ckpt").stat().st_size == 16 << 20
