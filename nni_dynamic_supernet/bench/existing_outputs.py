"""What the bench commands find at their output paths before they write: tables and comparisons never shrink.

A ground-truth table of 150 architectures x 4 seeds is days of CPU; a compare of ten recipes x
five seeds is hours. Rewriting either with what one smaller call asked for would lose that
work in seconds. So, before any job runs:

* ``nds bench build --out TABLE`` into an existing file: a file that is not a ground-truth
  table, or a table of another protocol, space, dataset or architecture sample, is refused
  (a build never mixes protocols). A table of the same protocol is *kept and grown*: the
  build covers the union of what the table holds and what was asked (the larger
  architecture count, every seed of either), trains only what is missing, and leaves the
  file byte-identical when nothing is.
* ``nds bench compare --out DIR``: a run folder holding a finished run of another job
  (another base recipe or overrides) is refused instead of being trained over, and an
  existing ``compare.json`` whose runs this call does not include is refused instead of
  being rewritten without them (add those recipes and seeds: finished runs are reused at no
  cost).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import ConfigError

__all__ = ["table_growth", "check_compare_out"]

_logger = logging.getLogger("nni_dynamic_supernet")


def _differing(old: dict, new: dict) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def table_growth(out_path: Path, fingerprint: dict, n_archs: int, seeds: Sequence[int],
                 sample_seed: int) -> tuple[int, list[int], bool]:
    """How a build into ``out_path`` must extend the request so that no existing entry is lost.

    Parameters
    ----------
    out_path
        The table's destination.
    fingerprint
        The build's protocol fingerprint (``bench.build._fingerprint``).
    n_archs, seeds, sample_seed
        What was asked.

    Returns
    -------
    n_archs : int
        The architecture count to build (at least the table's).
    seeds : list of int
        The seeds to build (the union with the table's, sorted by first appearance).
    existed : bool
        Whether a table of the same protocol is there.

    Raises
    ------
    ConfigError
        When the file is not a ground-truth table, or a table of another protocol or sample.
    """
    if not out_path.exists():
        return n_archs, list(seeds), False
    from ..ranking.ground_truth import GroundTruth
    try:
        table = GroundTruth.load(out_path)
    except ConfigError:
        raise ConfigError("--out", str(out_path), "exists and is not a ground-truth table; a build never replaces "
                                                  "a file it did not make: move it away or choose another --out") \
            from None
    recipe = table.recipe if isinstance(table.recipe, dict) else {}
    theirs = recipe.get("fingerprint")
    if theirs != fingerprint:
        fields = _differing(theirs, fingerprint) if isinstance(theirs, dict) else ["fingerprint"]
        raise ConfigError("--out", str(out_path), f"holds a table of another protocol ({', '.join(fields)} differ: "
                                                  f"table {recipe.get('table', '?')}); a build never mixes or replaces "
                                                  "protocols: choose another --out")
    if recipe.get("sample_seed") != sample_seed:
        raise ConfigError("--sample-seed", sample_seed, f"the table at {out_path} sampled its architectures with "
                                                        f"--sample-seed {recipe.get('sample_seed')}; use that seed to "
                                                        "grow it, or choose another --out")
    have_archs = int(recipe.get("n_archs", len(table)))
    have_seeds = [int(s) for s in table.seeds]
    grown_archs = max(int(n_archs), have_archs)
    grown_seeds = list(dict.fromkeys([*seeds, *have_seeds]))
    if grown_archs != n_archs or grown_seeds != list(seeds):
        _logger.warning("bench build: %s holds %d archs x seeds %s; the build keeps them all and covers %d archs x "
                        "seeds %s (asked: %d x %s)", out_path, have_archs, have_seeds, grown_archs, grown_seeds,
                        n_archs, list(seeds))
    return grown_archs, grown_seeds, True


def check_compare_out(out_dir: Path, jobs: Sequence[dict], reused: Sequence[Optional[dict]], name: str = "compare") \
        -> None:
    """Refuse a compare that would train over a finished run of another job or drop runs from ``<name>.json``.

    Parameters
    ----------
    out_dir
        The compare's ``--out``.
    jobs
        The jobs of this call (``strategy``, ``seed``, ``out``).
    reused
        Per job, the row of a finished run of exactly that job in its folder, or ``None``.
    name
        Stem of the report (``compare``).

    Raises
    ------
    ConfigError
        On the first conflict.
    """
    for job, row in zip(jobs, reused):
        folder = Path(job["out"])
        if row is None and (folder / "results.json").exists():
            raise ConfigError("--out", str(out_dir), f"{folder} holds a finished run of another job (other base "
                                                     "recipe or overrides); it is never trained over: choose another "
                                                     "--out, or move that folder away")
    report = out_dir / f"{name}.json"
    if not report.exists():
        return
    from ..json_inputs import load_json
    data: Any = load_json(report, "--out", f"{name}.json")
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, list):
        raise ConfigError("--out", str(report), f"exists and is not a {name}.json of nds bench {name}; move it away "
                                                "or choose another --out")
    asked = {(j["strategy"], int(j["seed"])) for j in jobs}
    dropped = [f"{r.get('strategy')} seed {r.get('seed')}" for r in runs
               if isinstance(r, dict) and (r.get("strategy"), r.get("seed")) not in asked]
    if dropped:
        shown = ", ".join(dropped[:5]) + (f" and {len(dropped) - 5} more" if len(dropped) > 5 else "")
        raise ConfigError("--out", str(report), f"holds runs this call does not include ({shown}); add them to "
                                                "--recipes / --seeds to keep them (finished runs are reused), or "
                                                "choose another --out")
