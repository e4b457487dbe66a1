"""Stand-alone accuracy of any architecture: a named table's entry, else trained with its protocol and cached.

A search can find an architecture that the table (150-160 of NAS-Bench-201's 15,625 cells)
does not hold. :class:`StandaloneAccuracy` then trains it stand-alone with the table's own
protocol (:func:`~.build.run_jobs`), once per seed, and caches each (architecture, seed)
result in a JSON file, so later searches, other seeds and other processes reuse it.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Optional, Union

from ..atomic_io import atomic_write_json
from ..ranking import GroundTruth
from ..ranking.tables import TableSpec, get_table

__all__ = ["StandaloneAccuracy"]


def _key(arch: dict) -> str:
    return json.dumps(arch, sort_keys=True)


class StandaloneAccuracy:
    """Stand-alone test accuracy of an architecture, mean over ``seeds``.

    Parameters
    ----------
    cache_path
        JSON file of the accuracies trained here, ``{arch key: {seed: accuracy}}``.
    table
        A table name (``v2_26``) or its :class:`~.tables.TableSpec`; its protocol trains what it lacks.
    seeds
        Stand-alone seeds averaged; default: the table's.
    """

    def __init__(self, cache_path: Union[str, Path], table: Union[str, TableSpec] = "v1",
                 seeds: Optional[list[int]] = None) -> None:
        self.spec = get_table(table) if isinstance(table, str) else table
        self.table = GroundTruth.load(self.spec.path)
        self.seeds = [int(s) for s in (self.table.seeds if seeds is None else seeds)]
        self.cache_path = Path(cache_path)
        cached = json.loads(self.cache_path.read_text()) if self.cache_path.is_file() else {}
        self.cache: dict[str, dict[str, float]] = {k: v for k, v in cached.items() if isinstance(v, dict)}
        self.trained = 0

    def known(self, arch: dict) -> dict[str, float]:
        """Every seed's accuracy of ``arch`` known so far (the table's over the cache's)."""
        return {**self.cache.get(_key(arch), {}), **(self.table.seed_accuracies(arch) or {})}

    def cache_update(self, accuracies: dict[str, dict[str, float]]) -> None:
        """Add accuracies known elsewhere (``{arch key: {seed: accuracy}}``, e.g. from a result file)."""
        for key, per_seed in accuracies.items():
            self.cache.setdefault(key, {}).update({str(s): float(a) for s, a in per_seed.items()})

    def missing(self, archs: list[dict]) -> list[tuple[dict, int]]:
        """The distinct (arch, seed) jobs that neither the table nor the cache holds."""
        jobs, seen = [], set()
        for arch in archs:
            known = self.known(arch)
            for seed in self.seeds:
                if str(seed) not in known and (_key(arch), seed) not in seen:
                    seen.add((_key(arch), seed))
                    jobs.append((arch, seed))
        return jobs

    def prefetch(self, archs: list[dict], workers: int = 1) -> None:
        """Train every missing (arch, seed) job of ``archs`` with ``workers`` processes, caching each as it ends."""
        from .build import run_jobs

        def record(result: dict) -> None:
            self.cache.setdefault(_key(result["arch"]), {})[str(result["seed"])] = float(result["accuracy"])
            self.trained += 1
            atomic_write_json(self.cache_path, self.cache)
        run_jobs(self.missing(archs), self.spec.name, workers, record)

    def __call__(self, arch: dict) -> float:
        """The mean accuracy over :attr:`seeds`, training what is missing first."""
        self.prefetch([arch])
        known = self.known(arch)
        return float(statistics.mean(float(known[str(seed)]) for seed in self.seeds))
