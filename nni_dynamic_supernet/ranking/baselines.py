"""The trivial rankers every supernet ranking is shown beside, and a ranking score beyond size.

A supernet ranking is only informative when it beats what costs nothing. For the
architectures of a ground-truth table this module scores:

* ``params`` and ``flops`` -- the subnet's size (bigger predicted better), from the space's
  complexity model;
* the zero-cost proxies of :mod:`.zero_cost` (``synflow``, ``jacov``, ``nwot``) -- each subnet
  freshly initialised with a fixed seed and scored on one fixed minibatch of training data.

Each baseline's Kendall tau against the table is reported twice: tau-b (ties count as
ties; parameter counts tie often, e.g. 17 distinct counts among v2_26's 150 architectures)
and ``kendall_tau_random_ties``, the mean tau-b over :data:`TIE_DRAWS` seeded random
orderings of the tied values (what a ranker that must give a strict order achieves).

The complexity-controlled score of a supernet's predictions is the **partial Kendall tau
given parameter count** (Kendall, 1942)::

    tau(P, T | C) = (tau(P, T) - tau(P, C) tau(T, C)) / sqrt((1 - tau(P, C)^2) (1 - tau(T, C)^2))

with ``P`` the predictions, ``T`` the ground truth and ``C`` the parameter count, each tau
the tau-b. It is about 0 for predictions that carry no information about accuracy beyond
size (a ranking by parameter count scores 0), positive when the supernet orders
architectures correctly among those of similar size.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..spaces.reinit import reinitialize
from .metrics import kendall_tau
from .zero_cost import PROXIES

__all__ = ["TIE_DRAWS", "partial_kendall_tau", "baseline_tau", "proxy_scores", "ranking_baselines",
           "subnet_factory", "minibatch", "table_baseline_scores", "cache_dir"]

#: Seeded random tie-breaks averaged by ``kendall_tau_random_ties``.
TIE_DRAWS = 100
#: Subnet initialisation and minibatch seed of the zero-cost proxies.
PROXY_SEED = 0
PROXY_BATCH = 64

Arch = Mapping[str, Any]


def partial_kendall_tau(pred: Sequence[float], truth: Sequence[float], control: Sequence[float]) -> float:
    """Partial Kendall tau of ``pred`` and ``truth`` given ``control`` (tau-b throughout).

    Predictions that order the architectures exactly as ``control`` does (the parameter
    count itself, or any increasing function of it) carry no information beyond it: 0.

    Returns
    -------
    float
        NaN when a tau is undefined or ``control`` orders ``truth`` perfectly.

    Examples
    --------
    >>> partial_kendall_tau([10, 20, 30, 40], [2, 1, 4, 3], [1, 2, 3, 4])
    0.0
    >>> round(partial_kendall_tau([1, 2, 4, 3], [2, 1, 4, 3], [1, 2, 3, 4]), 3)
    0.632
    """
    pt, pc, tc = kendall_tau(pred, truth), kendall_tau(pred, control), kendall_tau(truth, control)
    if not all(math.isfinite(v) for v in (pt, pc, tc)) or 1.0 - tc * tc < 1e-12:
        return float("nan")
    if 1.0 - pc * pc < 1e-12:
        return 0.0
    return float((pt - pc * tc) / math.sqrt((1.0 - pc * pc) * (1.0 - tc * tc)))


def baseline_tau(scores: Sequence[float], truth: Sequence[float], seed: int = 0,
                 draws: int = TIE_DRAWS) -> dict[str, Any]:
    """Kendall tau of a baseline ranker: tau-b, and the mean over seeded random tie-breaks.

    An architecture the baseline cannot score (NaN or infinite, e.g. a proxy on a cell whose
    output does not depend on its input) ranks last, tied with the others it cannot score.

    Parameters
    ----------
    scores
        The baseline's score per architecture (higher predicted better).
    truth
        Ground-truth accuracy, same order.
    seed, draws
        The tie-breaking draws.

    Returns
    -------
    dict
        ``kendall_tau`` (tau-b), ``kendall_tau_random_ties``, ``distinct`` (number of distinct
        scores, the unscored counting as one) and ``unscored`` (how many ranked last that way).
    """
    s = np.asarray(scores, dtype=np.float64).copy()
    bad = ~np.isfinite(s)
    if bad.any():
        s[bad] = (s[~bad].min() - 1.0) if (~bad).any() else 0.0
    out = {"kendall_tau": kendall_tau(s, truth), "kendall_tau_random_ties": float("nan"),
           "distinct": int(len(np.unique(s))), "unscored": int(bad.sum())}
    rng = np.random.RandomState(seed)
    _, ranks = np.unique(s, return_inverse=True)
    taus = []
    for _ in range(draws):
        # Rank by score, then by a random key: ties get a random strict order, other pairs keep theirs.
        order = np.lexsort((rng.permutation(len(s)), ranks))
        strict = np.empty(len(s))
        strict[order] = np.arange(len(s))
        taus.append(kendall_tau(strict, truth))
    out["kendall_tau_random_ties"] = float(np.mean(taus))
    return out


def subnet_factory(build_space: Callable[[], nn.Module]) -> Callable[[Arch, int], nn.Module]:
    """A function ``(arch, seed) -> initialised subnet`` for a space built by ``build_space()``.

    The subnet is constructed directly under NNI's ``model_context(arch)`` (a fixed network,
    no supernet), then every submodule with ``reset_parameters`` is reset after
    ``torch.manual_seed(seed)``, in ``modules()`` order: the initial weights depend only on the
    seed and the network's structure.
    """
    from nni.nas.space import model_context

    def make(arch: Arch, seed: int) -> nn.Module:
        with model_context(dict(arch)):
            model = build_space()
        return reinitialize(model, seed)
    return make


def minibatch(dataset: Any, size: int = PROXY_BATCH, seed: int = PROXY_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """``size`` examples of ``dataset`` drawn without replacement with ``seed``, as ``(inputs, targets)``.

    An item's first two fields are the input and the label (an indexed dataset's third field is ignored).
    """
    index = np.random.RandomState(seed).permutation(len(dataset))[: min(size, len(dataset))]
    items = [dataset[int(i)] for i in index]
    return torch.stack([item[0] for item in items]), torch.as_tensor([int(item[1]) for item in items])


def proxy_scores(archs: Sequence[Arch], factory: Callable[[Arch, int], nn.Module],
                 batch: tuple[torch.Tensor, torch.Tensor], names: Sequence[str] = tuple(PROXIES),
                 seed: int = PROXY_SEED) -> dict[str, list[float]]:
    """Every proxy of ``names`` for every architecture (one initialised subnet per architecture)."""
    inputs, targets = batch
    scores: dict[str, list[float]] = {name: [] for name in names}
    for arch in archs:
        model = factory(arch, seed)
        for name in names:
            scores[name].append(float(PROXIES[name](model, inputs, targets)))
    return scores


def ranking_baselines(truth: Sequence[float], params: Optional[Sequence[float]] = None,
                      flops: Optional[Sequence[float]] = None, proxies: Optional[Mapping[str, Sequence[float]]] = None,
                      predictions: Optional[Sequence[float]] = None, seed: int = 0,
                      missing: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """The ``ranking.baselines`` block of a results file.

    Parameters
    ----------
    truth
        Ground-truth accuracy per architecture.
    params, flops, proxies
        Each baseline's score per architecture, same order (``None`` when unavailable).
    predictions
        The supernet's predictions, for the complexity-controlled score.
    seed
        Seed of the random tie-breaks.
    missing
        Why a baseline is unavailable, by name (kept in the block as ``{"missing": reason}``).

    Returns
    -------
    dict
        One entry per baseline (:func:`baseline_tau`), plus ``complexity_controlled`` with
        ``partial_kendall_tau_given_params`` (and ``given_flops``) when predictions are given.
    """
    out: dict[str, Any] = {}
    named = {"params": params, "flops": flops, **dict(proxies or {})}
    for name, scores in named.items():
        if scores is not None:
            out[name] = baseline_tau(scores, truth, seed=seed)
    for name, reason in (missing or {}).items():
        out.setdefault(name, {"missing": reason})
    if predictions is not None:
        controlled: dict[str, Any] = {"definition": "partial Kendall tau-b of predictions and ground truth given "
                                                    "the control (0: no information beyond size)"}
        if params is not None:
            controlled["partial_kendall_tau_given_params"] = partial_kendall_tau(predictions, truth, params)
        if flops is not None:
            controlled["partial_kendall_tau_given_flops"] = partial_kendall_tau(predictions, truth, flops)
        out["complexity_controlled"] = controlled
    return out


#: Proxy scores of the embedded tables' architectures, shipped so that a run on them pays nothing.
SHIPPED_SCORES = Path(__file__).resolve().parent.parent / "_resources" / "baseline_scores"

PROXY_VERSION = "naslib-1"
"""Changes whenever a proxy's definition or its inputs change, so that cached scores are not reused."""


def cache_dir() -> Path:
    """Where computed baseline scores are cached: ``$NDS_CACHE_DIR``, else ``~/.cache/nni_dynamic_supernet``."""
    root = os.environ.get("NDS_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "nni_dynamic_supernet"


def table_baseline_scores(archs: Sequence[Arch], space: str, space_kwargs: Mapping[str, Any], train_set: Any,
                          complexity: Any = None, params: Optional[Sequence[float]] = None,
                          names: Sequence[str] = tuple(PROXIES), seed: int = PROXY_SEED,
                          cache: bool = True) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Every baseline's score for ``archs`` of a registered space, cached on disk.

    Parameters
    ----------
    archs
        The architectures (a table's, in its order).
    space, space_kwargs
        The registered space and its arguments (a table's ``space`` and ``space_kwargs``).
    train_set
        The training split the proxies' minibatch comes from (:func:`minibatch`).
    complexity
        An object with ``params(arch)`` and ``flops(arch)`` (the space's complexity model), or ``None``.
    params
        Parameter counts to use instead of ``complexity.params`` (a table's own column).
    names, seed
        The proxies and the seed of the subnets' initialisation and of the minibatch.
    cache
        Reuse and store the proxy scores under :func:`cache_dir` (keyed by the architectures, the
        space, the minibatch's bytes, the proxies and :data:`PROXY_VERSION`).

    Returns
    -------
    tuple
        ``(scores, missing)``: scores by baseline name, and why a baseline could not be computed.
    """
    from ..atomic_io import atomic_write_json
    from ..catalog import create_space
    scores: dict[str, list[float]] = {}
    missing: dict[str, str] = {}
    if params is not None:
        scores["params"] = [float(p) for p in params]
    elif complexity is not None:
        scores["params"] = [float(complexity.params(a)) for a in archs]
    else:
        missing["params"] = "no parameter counts (no complexity model, none in the table)"
    if complexity is not None:
        try:
            scores["flops"] = [float(complexity.flops(a)) for a in archs]
        except Exception as exc:  # a space the profiler cannot count
            missing["flops"] = f"FLOPs could not be counted ({type(exc).__name__})"
    else:
        missing["flops"] = "no complexity model of the space"
    batch = minibatch(train_set, seed=seed)
    digest = hashlib.sha256(json.dumps([PROXY_VERSION, space, dict(space_kwargs), sorted(names), seed,
                                        [dict(a) for a in archs]], sort_keys=True, default=str).encode())
    digest.update(batch[0].numpy().tobytes())
    digest.update(batch[1].numpy().tobytes())
    name = f"{digest.hexdigest()[:32]}.json"
    path = cache_dir() / "baselines" / name
    cached = None
    # The user's cache first, then the scores shipped for the embedded tables (computed the same way).
    for candidate in ((path, SHIPPED_SCORES / name) if cache else ()):
        if candidate.is_file():
            try:
                cached = json.loads(candidate.read_text())
                break
            except (OSError, ValueError):
                cached = None
    if isinstance(cached, dict) and all(isinstance(cached.get(n), list) and len(cached[n]) == len(archs)
                                        for n in names):
        proxies = {n: [float("nan") if v is None else float(v) for v in cached[n]] for n in names}
    else:
        try:
            factory = subnet_factory(lambda: create_space(space, **dict(space_kwargs)))
            with torch.random.fork_rng():  # the proxies' seeding must not move the caller's RNG
                proxies = proxy_scores(archs, factory, batch, names, seed)
        except Exception as exc:  # a space that cannot be built fixed, or a proxy that fails on it
            for name in names:
                missing[name] = f"not computable on this space ({type(exc).__name__})"
            return scores, missing
        if cache:
            atomic_write_json(path, {n: [v if math.isfinite(v) else None for v in vals] for n, vals in proxies.items()})
    scores.update(proxies)
    return scores, missing
