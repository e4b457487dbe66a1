"""Ground truth from NNI's NAS-Bench-201 database.

NNI ships NAS-Bench-201 as an SQLite database (``nasbench201-b2b60732.db``) read through
the peewee models of :mod:`nni.nas.benchmark.nasbench201`:

* ``Nb201TrialConfig``: ``arch`` (a JSON dict ``{'0_1': op, '0_2': op, '1_2': op,
  '0_3': op, '1_3': op, '2_3': op}`` with ops from ``none``, ``skip_connect``,
  ``conv_1x1``, ``conv_3x3``, ``avg_pool_3x3``), ``num_epochs`` (12 or 200),
  ``num_channels`` (16), ``num_cells`` (5) and ``dataset`` (``cifar10-valid``,
  ``cifar10``, ``cifar100``, ``imagenet16-120``);
* ``Nb201TrialStats``: one row per (config, training seed) with ``train_acc``,
  ``valid_acc``, ``test_acc``, ``ori_test_acc`` (percent), ``parameters`` (millions),
  ``flops`` (millions), ...

NNI's space :class:`nni.nas.hub.pytorch.NasBench201` labels the same edges
``'cell/0_1'`` ... ``'cell/2_3'`` with the same op names, so the mapping is only the
``'cell/'`` prefix (:func:`to_nni_arch`, :func:`from_nni_arch`).

NNI finds the file in ``$NASBENCHMARK_DIR`` or ``~/.cache/nni/nasbenchmark``
(:mod:`nni.nas.benchmark.constants`). NNI's own ``load_benchmark`` also checks the file's
hash and caches one global connection; we open the file ourselves, read-only, and bind
NNI's models to it only for the duration of the query, so a test fixture or a regenerated
database (``nni.nas.benchmark.nasbench201.db_gen``) works and no global state is touched.

NNI's benchmark code needs ``peewee<4`` (peewee 4 removed ``SqliteExtDatabase``).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union

from ..errors import ConfigError
from .ground_truth import Arch, GroundTruth, arch_key

__all__ = [
    "NB201_EDGES",
    "NB201_OPS",
    "NB201_DB_FILENAME",
    "to_nni_arch",
    "from_nni_arch",
    "locate_nasbench201_db",
    "ground_truth_from_nasbench201",
]

#: Edge names of the NAS-Bench-201 cell, as NNI's database stores them.
NB201_EDGES: tuple[str, ...] = ("0_1", "0_2", "1_2", "0_3", "1_3", "2_3")
#: Op names shared by the database and ``nni.nas.hub.pytorch.NasBench201``.
NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3")
#: File name NNI downloads the database to (basename of ``DB_URLS['nasbench201']``).
NB201_DB_FILENAME = "nasbench201-b2b60732.db"

_LABEL_PREFIX = "cell/"
_DATASETS = ("cifar10-valid", "cifar10", "cifar100", "imagenet16-120")
_METRICS = ("train_acc", "valid_acc", "test_acc", "ori_test_acc")
_NUM_CLASSES = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "imagenet16-120": 120}
_DOWNLOAD_FIX = "download NAS-Bench-201 with `python -m nni.nas.benchmark.download nasbench201`"


def to_nni_arch(arch: Mapping[str, Union[str, int]]) -> dict[str, str]:
    """Convert one of our NAS-Bench-201 archs to the dict format of NNI's database.

    Parameters
    ----------
    arch
        ``{'cell/0_1': 'conv_3x3', ...}`` (the bare edge names ``'0_1'`` are accepted too).

    Returns
    -------
    dict
        ``{'0_1': 'conv_3x3', ...}`` with exactly the six edges.

    Raises
    ------
    ConfigError
        If an edge is missing or unknown, or an op is not a NAS-Bench-201 op.
    """
    out: dict[str, str] = {}
    for label, op in arch.items():
        edge = label[len(_LABEL_PREFIX):] if label.startswith(_LABEL_PREFIX) else label
        if edge not in NB201_EDGES:
            raise ConfigError("arch", label, f"not a NAS-Bench-201 edge; use {', '.join(_LABEL_PREFIX + e for e in NB201_EDGES)}")
        if op not in NB201_OPS:
            raise ConfigError(f"arch.{label}", op, f"not a NAS-Bench-201 op; use one of {', '.join(NB201_OPS)}")
        out[edge] = str(op)
    missing = [e for e in NB201_EDGES if e not in out]
    if missing:
        raise ConfigError("arch", arch_key(arch), f"missing edges {', '.join(_LABEL_PREFIX + e for e in missing)}")
    return out


def from_nni_arch(nni_arch: Mapping[str, str]) -> Arch:
    """Convert an arch from NNI's database format to our labels (``'cell/0_1'`` ...).

    Parameters
    ----------
    nni_arch
        ``{'0_1': op, ...}`` as stored in ``Nb201TrialConfig.arch``.

    Returns
    -------
    dict
        ``{'cell/0_1': op, ...}``, matching ``nni.nas.hub.pytorch.NasBench201``'s labels.
    """
    return {_LABEL_PREFIX + edge: nni_arch[edge] for edge in NB201_EDGES}


def locate_nasbench201_db(db_dir: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Find NNI's NAS-Bench-201 database file.

    Parameters
    ----------
    db_dir
        A directory holding ``nasbench201-b2b60732.db`` (or exactly one other
        ``nasbench201*.db``, e.g. one regenerated with NNI's ``db_gen``), or the ``.db``
        file itself. ``None`` uses NNI's location: ``$NASBENCHMARK_DIR`` if set, else
        ``nni.nas.benchmark.constants.DATABASE_DIR`` (``~/.cache/nni/nasbenchmark``).

    Returns
    -------
    pathlib.Path
        The database file.

    Raises
    ------
    ConfigError
        ``ground_truth.db_dir`` when no database is there, with the download command.
    """
    if db_dir is None:
        # Read the variable at call time: NNI's constant is frozen when nni is imported.
        env = os.environ.get("NASBENCHMARK_DIR")
        if env:
            base = Path(env)
        else:
            try:
                from nni.nas.benchmark.constants import DATABASE_DIR
            except ImportError:  # pragma: no cover - nni is a hard dependency of the package
                DATABASE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "nni", "nasbenchmark")
            base = Path(DATABASE_DIR)
    else:
        base = Path(db_dir).expanduser()
    if base.is_file():
        return base
    candidate = base / NB201_DB_FILENAME
    if candidate.is_file():
        return candidate
    others = sorted(base.glob("nasbench201*.db")) if base.is_dir() else []
    if len(others) == 1:
        return others[0]
    raise ConfigError("ground_truth.db_dir", str(base),
                      f"no NAS-Bench-201 database ({NB201_DB_FILENAME}) there; {_DOWNLOAD_FIX} "
                      "(it goes to $NASBENCHMARK_DIR or ~/.cache/nni/nasbenchmark), or point db_dir at it")


def _import_nni_models() -> tuple[Any, Any, Any, Any]:
    """Import NNI's NAS-Bench-201 peewee models lazily (peewee is only needed here)."""
    try:
        # Import peewee before NNI: without it nni.nas.benchmark fails with a NameError
        # instead of an ImportError.
        from playhouse.sqlite_ext import SqliteExtDatabase
        from nni.nas.benchmark.nasbench201 import Nb201IntermediateStats, Nb201TrialConfig, Nb201TrialStats
    except ImportError as exc:
        raise ConfigError("ground_truth", "nasbench201",
                          f"NNI's benchmark database needs peewee 3 ({exc}); install it with "
                          "`pip install 'peewee>=3.14,<4'`") from None
    return SqliteExtDatabase, Nb201TrialConfig, Nb201TrialStats, Nb201IntermediateStats


def ground_truth_from_nasbench201(
    dataset: str = "cifar10",
    num_epochs: int = 200,
    metric: str = "test_acc",
    db_dir: Optional[Union[str, os.PathLike]] = None,
    archs: Optional[Iterable[Mapping[str, Union[str, int]]]] = None,
) -> GroundTruth:
    """Build a :class:`GroundTruth` table from NNI's NAS-Bench-201 database.

    Each entry's ``per_seed`` holds the database's trial for each training seed (seeds
    777, 888, 999 in the real benchmark; not every arch has all three), ``accuracy`` is
    their mean and ``params`` is the parameter count (the database stores millions).

    Parameters
    ----------
    dataset
        ``'cifar10'`` (the papers' default), ``'cifar10-valid'``, ``'cifar100'`` or
        ``'imagenet16-120'``.
    num_epochs
        Training length of the benchmark run: 200 (the papers' ground truth) or 12.
    metric
        Which accuracy: ``'test_acc'``, ``'valid_acc'``, ``'ori_test_acc'`` or
        ``'train_acc'`` (percent).
    db_dir
        Where the database is (see :func:`locate_nasbench201_db`).
    archs
        Only these archs (our labels, ``'cell/0_1'`` ...); ``None`` takes every arch in
        the database.

    Returns
    -------
    GroundTruth
        Space ``'nas_bench_201'`` with NNI ``NasBench201``'s kwargs for the benchmark.

    Raises
    ------
    ConfigError
        For a missing database (``ground_truth.db_dir``), an unknown dataset, epoch count
        or metric, a file that is not a NAS-Bench-201 database, no rows for the request,
        or a requested arch the database lacks.
    """
    if dataset not in _DATASETS:
        raise ConfigError("ground_truth.dataset", dataset, f"use one of {', '.join(_DATASETS)}")
    if num_epochs not in (12, 200):
        raise ConfigError("ground_truth.num_epochs", num_epochs, "NAS-Bench-201 has 12 or 200")
    if metric not in _METRICS:
        raise ConfigError("ground_truth.metric", metric, f"use one of {', '.join(_METRICS)}")
    wanted: Optional[dict[str, Arch]] = None
    if archs is not None:
        wanted = {}
        for a in archs:
            ours = from_nni_arch(to_nni_arch(a))  # validates and normalises the labels
            wanted[arch_key(ours)] = ours

    path = locate_nasbench201_db(db_dir)
    SqliteExtDatabase, TrialConfig, TrialStats, IntermediateStats = _import_nni_models()
    import peewee

    # Read-only URI: opening a wrong path must not create an empty database file.
    db = SqliteExtDatabase(path.resolve().as_uri() + "?mode=ro", uri=True)
    rows: dict[str, dict[str, Any]] = {}
    seeds: set[int] = set()
    num_channels: set[int] = set()
    num_cells: set[int] = set()
    try:
        with db.bind_ctx([TrialConfig, TrialStats, IntermediateStats]):
            query = (TrialStats.select(TrialStats, TrialConfig)
                     .join(TrialConfig)
                     .where((TrialConfig.num_epochs == num_epochs) & (TrialConfig.dataset == dataset)))
            for stat in query:
                cfg = stat.config
                arch = from_nni_arch(cfg.arch)
                key = arch_key(arch)
                if wanted is not None and key not in wanted:
                    continue
                value = getattr(stat, metric)
                if value is None or not math.isfinite(float(value)):
                    continue  # a diverged trial has no usable accuracy
                row = rows.setdefault(key, {"arch": arch, "per_seed": {}, "params": []})
                row["per_seed"][str(int(stat.seed))] = float(value)
                row["params"].append(float(stat.parameters))
                seeds.add(int(stat.seed))
                num_channels.add(int(cfg.num_channels))
                num_cells.add(int(cfg.num_cells))
    except peewee.DatabaseError as exc:
        raise ConfigError("ground_truth.db_dir", str(path),
                          f"is not a readable NAS-Bench-201 database ({exc}); {_DOWNLOAD_FIX}") from None
    finally:
        db.close()

    # Report missing requested archs first: they are the likelier cause of an empty result.
    if wanted is not None:
        missing = [k for k in wanted if k not in rows]
        if missing:
            raise ConfigError("ground_truth.archs", missing[0],
                              f"{len(missing)} requested arch(s) have no {num_epochs}-epoch {dataset} trial in {path}")
    if not rows:
        raise ConfigError("ground_truth.dataset", dataset,
                          f"no {num_epochs}-epoch trials for it in {path}; {_DOWNLOAD_FIX}")

    entries = []
    for row in rows.values():
        per_seed = dict(sorted(row["per_seed"].items(), key=lambda kv: int(kv[0])))
        entries.append({
            "arch": row["arch"],
            "accuracy": sum(per_seed.values()) / len(per_seed),
            "per_seed": per_seed,
            # The database stores millions of parameters; the table stores a count.
            "params": int(round(sum(row["params"]) / len(row["params"]) * 1e6)),
        })
    space_kwargs: dict[str, Any] = {"num_labels": _NUM_CLASSES[dataset]}
    if len(num_channels) == 1 and len(num_cells) == 1:
        space_kwargs.update(stem_out_channels=num_channels.pop(), num_modules_per_stack=num_cells.pop())
    return GroundTruth(
        space="nas_bench_201",
        space_kwargs=space_kwargs,
        dataset=dataset,
        metric=metric,
        recipe={"source": "NAS-Bench-201 (NNI database)", "database": path.name, "num_epochs": num_epochs},
        seeds=sorted(seeds),
        entries=entries,
        source=str(path),
    )
