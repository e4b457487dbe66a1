"""Path samplers: which subnets a training step trains.

A search space here is an ordered ``dict`` label -> list of choice values. A path
sampler returns a list of architectures (label -> value dicts) for one step:
one path (SPOS), or ``m`` strict-fair paths (FairNAS, SUMNAS). Samplers own a seeded
``numpy.random.RandomState`` so a step's paths are reproducible and resumable, and
they receive the *allowed* choices per call, so the same sampler works inside a
sub-supernet of a partition.

Registered path samplers (``training.path_sampler``): ``uniform``, ``strict_fair``,
``cluster_fair`` here, ``importance`` in :mod:`.importance`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

import numpy as np

from ...arch import Arch, SearchSpace, random_arch
from ...components import PATH_SAMPLERS
from ...errors import ConfigError
from ..context import EngineContext

if TYPE_CHECKING:  # pragma: no cover
    from ...recipe import Recipe

__all__ = [
    "Arch", "SearchSpace", "PathSampler", "UniformPathSampler", "StrictFairPathSampler",
    "ClusterFairPathSampler", "RoundsPathSampler", "ConstrainedPathSampler", "rng_state", "set_rng_state",
    "UniformOptions", "StrictFairOptions",
]

def rng_state(rng: np.random.RandomState) -> dict:
    """The state of a numpy RandomState as plain Python data (safe for ``weights_only`` checkpoints)."""
    name, keys, pos, has_gauss, cached = rng.get_state()
    return {"name": name, "keys": [int(k) for k in keys], "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def set_rng_state(rng: np.random.RandomState, state: dict) -> None:
    """Restore a state produced by :func:`rng_state`."""
    rng.set_state((state["name"], np.asarray(state["keys"], dtype=np.uint32), state["pos"],
                   state["has_gauss"], state["cached"]))


class PathSampler:
    """Base class: draws the architectures a step trains.

    Subclasses implement :meth:`sample`. ``observe`` and ``on_epoch_end`` are no-ops
    except for importance sampling.
    """

    #: Whether :meth:`observe` needs per-op gradient norms (costs a pass over the path's gradients).
    needs_op_grad_norms: bool = False

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.RandomState(seed)

    def sample(self, space: SearchSpace) -> list[Arch]:
        """Return the architectures to train in this step, drawn from ``space``."""
        raise NotImplementedError

    def observe(self, paths: Sequence[Arch], op_grad_norms: Optional[dict] = None) -> None:
        """Record statistics of the step just taken (importance sampling only)."""

    def on_epoch_end(self, epoch: int, total_epochs: int) -> None:
        """Update the sampling distribution at the end of an epoch (importance sampling only)."""

    def loss_weight(self, arch: Arch) -> float:
        """Factor on the loss of ``arch`` in the step that trains it (1: no reweighting).

        An importance sampler may return ``1 / (N * p(arch))`` to keep the gradient unbiased;
        the update rule applies it.
        """
        return 1.0

    def epoch_metrics(self) -> dict[str, float]:
        """Scalars for the epoch's log row (TensorBoard, NNI intermediate results); empty by default."""
        return {}

    def summary(self) -> dict:
        """Per-epoch history for results.json; empty by default."""
        return {}

    def state_dict(self) -> dict:
        """Everything needed to resume sampling exactly."""
        return {"rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        set_rng_state(self.rng, state["rng"])


class UniformPathSampler(PathSampler):
    """SPOS: one path per step, each label's choice drawn independently and uniformly.

    Parameters
    ----------
    seed
        Seed of the sampler's RandomState.
    constraint
        Optional ``(fn, lo, hi)``: only paths with ``lo <= fn(arch) <= hi`` are trained, as
        NNI's ``RangeProfilerFilter`` and the SPOS code's FLOPs-bounded sampling do. Rejection
        sampling with ``patience`` tries; an impossible constraint raises ConfigError.
    patience
        Number of draws before giving up on the constraint.
    bins
        If set (with both bounds), the official SPOS sampler: pick one of ``bins`` equal-width
        bins of ``[lo, hi]`` uniformly, then rejection-sample a path inside it (up to 500
        tries, as the SPOS code does), falling back to the whole range. This flattens the
        distribution of complexities that plain uniform sampling concentrates in the middle.
    """

    def __init__(self, seed: int = 0, constraint: Optional[tuple[Callable[[Arch], float], Optional[float],
                                                                 Optional[float]]] = None,
                 patience: int = 1000, bins: Optional[int] = None) -> None:
        super().__init__(seed)
        self.constraint = constraint
        self.patience = patience
        if bins is not None and (constraint is None or constraint[1] is None or constraint[2] is None):
            raise ConfigError("training.sampling_constraint.bins", bins, "needs both min and max")
        self.bins = bins

    def _draw(self, space: SearchSpace) -> Arch:
        return random_arch(space, self.rng)

    def _ok(self, arch: Arch) -> bool:
        if self.constraint is None:
            return True
        fn, lo, hi = self.constraint
        value = fn(arch)
        return (lo is None or value >= lo) and (hi is None or value <= hi)

    def sample(self, space: SearchSpace) -> list[Arch]:
        """One uniform path (inside the constraint, in a drawn bin with bins)."""
        if self.bins:
            fn, lo, hi = self.constraint  # type: ignore[misc]
            width = (hi - lo) / self.bins
            b = self.rng.randint(self.bins)
            for _ in range(500):
                arch = self._draw(space)
                if lo + b * width <= fn(arch) <= lo + (b + 1) * width:
                    return [arch]
        for _ in range(self.patience):
            arch = self._draw(space)
            if self._ok(arch):
                return [arch]
        raise ConfigError("training.sampling_constraint", _describe(self.constraint),
                          f"no architecture satisfied it in {self.patience} draws; widen min/max")


class StrictFairPathSampler(PathSampler):
    """FairNAS strict fairness: ``m`` paths per step that together use every choice of every label once.

    Each label gets a random permutation of its choices; path ``i`` takes element ``i``.
    When labels have different numbers of choices (MobileNet: skip only on some layers),
    ``m`` is the largest count and shorter permutations are padded with random extra
    picks, so every choice is still trained at least once per step.
    """

    def __init__(self, seed: int = 0, paths_per_step: Optional[int] = None) -> None:
        super().__init__(seed)
        self.paths_per_step = paths_per_step

    def _columns(self, space: SearchSpace, m: int) -> dict[str, list]:
        columns = {}
        for label, choices in space.items():
            order = list(self.rng.permutation(len(choices)))
            while len(order) < m:
                order.append(int(self.rng.randint(len(choices))))
            columns[label] = [choices[i] for i in order[:m]]
        return columns

    def sample(self, space: SearchSpace) -> list[Arch]:
        """The step's m strict-fair paths: every choice of every label at least once."""
        m = self.paths_per_step or max(len(c) for c in space.values())
        columns = self._columns(space, m)
        return [{label: columns[label][i] for label in space} for i in range(m)]


class ClusterFairPathSampler(StrictFairPathSampler):
    """FairNAS + MS (DYNAS ``train_fairnas.py``): all paths of a step share one cluster.

    A cluster value is drawn uniformly on each clustering label; every path takes it
    there, and strict-fair permutations fill the other labels. Fairness is deliberately
    broken on the clustering labels so that the step updates a single momentum buffer.
    """

    def __init__(self, cluster_labels: Sequence[str], seed: int = 0, paths_per_step: Optional[int] = None) -> None:
        super().__init__(seed, paths_per_step)
        self.cluster_labels = list(cluster_labels)

    def sample(self, space: SearchSpace) -> list[Arch]:
        """The step's strict-fair paths, all in one drawn MS cluster."""
        fixed = random_arch({label: space[label] for label in self.cluster_labels}, self.rng)
        rest = {label: choices for label, choices in space.items() if label not in fixed}
        m = self.paths_per_step or max(len(c) for c in space.values())
        columns = self._columns(rest, m) if rest else {}
        return [{label: (fixed[label] if label in fixed else columns[label][i]) for label in space}
                for i in range(m)]


def _describe(constraint: Any) -> Any:
    if constraint is None:
        return None
    _, lo, hi = constraint
    return {"min": lo, "max": hi}


class RoundsPathSampler:
    """Task batching: ``rounds`` independent draws of another sampler, trained as one step.

    SUMNAS on ImageNet aggregates "3 sub-models per operator" into each update (MAML task
    batching, read as permutation rounds); with a strict-fair sampler that is 3 permutation
    rounds, so every op is trained exactly ``rounds`` times per step. Every other attribute (observe,
    on_epoch_end, loss weights, metrics) is the wrapped sampler's.

    Parameters
    ----------
    sampler
        The per-round sampler (``training.path_sampler``).
    rounds
        Draws per step (``training.task_batching``).
    """

    def __init__(self, sampler: PathSampler, rounds: int) -> None:
        if rounds < 1:
            raise ConfigError("training.task_batching", rounds, "must be a positive integer")
        self.sampler = sampler
        self.rounds = int(rounds)

    def sample(self, space: SearchSpace) -> list[Arch]:
        """The concatenated paths of ``rounds`` draws."""
        return [arch for _ in range(self.rounds) for arch in self.sampler.sample(space)]

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes this wrapper does not define: delegate to the wrapped sampler.
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)


class ConstrainedPathSampler:
    """Keeps another sampler's paths inside a space's constraint (NAS-Bench-101's cell rules).

    Each path the wrapped sampler draws that ``valid`` rejects is replaced by the path at the
    same position of a fresh draw (up to ``patience`` draws, then kept: the supernet runs any
    path). Uniform sampling stays uniform over the valid architectures; a strict-fair set is
    fair up to the replaced paths. Every other attribute is the wrapped sampler's.

    Parameters
    ----------
    sampler
        The recipe's path sampler.
    valid
        ``arch -> bool``: whether ``arch`` satisfies the space's constraints.
    patience
        Fresh draws tried per rejected path.
    """

    def __init__(self, sampler: Any, valid: Callable[[Arch], bool], patience: int = 100) -> None:
        self.sampler = sampler
        self.valid = valid
        self.patience = int(patience)

    def sample(self, space: SearchSpace) -> list[Arch]:
        """The wrapped sampler's paths, each invalid one replaced by a valid redraw when one is found."""
        paths = self.sampler.sample(space)
        for i, arch in enumerate(paths):
            for _ in range(self.patience):
                if self.valid(arch):
                    break
                fresh = self.sampler.sample(space)
                arch = fresh[i % len(fresh)]
            paths[i] = arch
        return paths

    def __getattr__(self, name: str) -> Any:
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)


# ---------------------------------------------------------------------------------------------- registration
@dataclass(frozen=True)
class UniformOptions:
    """Options of the uniform sampler: ``training.sampling_constraint``, ``{metric, min, max, bins}`` or null."""

    sampling_constraint: Optional[dict] = None

    def __post_init__(self) -> None:
        spec, name = self.sampling_constraint, "training.sampling_constraint"
        if spec is None:
            return
        if not isinstance(spec, dict):
            raise ConfigError(name, spec, "must be a mapping like {metric: params, min: 1e5, max: 5e5}")
        extra = set(spec) - {"metric", "min", "max", "bins"}
        if extra:
            raise ConfigError(f"{name}.{sorted(extra)[0]}", spec[sorted(extra)[0]],
                              "allowed keys: metric, min, max, bins")
        bins = spec.get("bins")
        if bins is not None and (not isinstance(bins, int) or isinstance(bins, bool) or bins <= 0):
            raise ConfigError(f"{name}.bins", bins, "must be a positive integer (SPOS uses 7)")
        if spec.get("metric", "params") not in ("params", "flops"):
            raise ConfigError(f"{name}.metric", spec.get("metric"), "allowed values: params, flops")
        lo, hi = spec.get("min"), spec.get("max")
        if lo is not None and hi is not None and float(lo) > float(hi):
            raise ConfigError(f"{name}.min", lo, f"must be <= {name}.max ({hi})")


def _check_uniform(options: UniformOptions, recipe: "Recipe", selected: bool) -> None:
    if options.sampling_constraint is not None and not selected:
        raise ConfigError("training.sampling_constraint", options.sampling_constraint,
                          "only the uniform path sampler supports a sampling constraint")


@PATH_SAMPLERS.register("uniform", options=UniformOptions, check=_check_uniform)
def build_uniform(options: UniformOptions, context: EngineContext) -> UniformPathSampler:
    """SPOS: one path per step, each label's choice uniform (optionally inside a params/FLOPs range)."""
    spec = options.sampling_constraint
    if not spec:
        return UniformPathSampler(seed=context.seed)
    complexity = context.complexity()
    fn = complexity.params if spec.get("metric", "params") == "params" else complexity.flops
    return UniformPathSampler(seed=context.seed, constraint=(fn, spec.get("min"), spec.get("max")),
                              bins=spec.get("bins"))


@dataclass(frozen=True)
class StrictFairOptions:
    """Options of the strict-fair samplers: ``training.paths_per_step`` (null: the most choices of a label)."""

    paths_per_step: Optional[int] = None

    def __post_init__(self) -> None:
        if self.paths_per_step is not None and self.paths_per_step <= 0:
            raise ConfigError("training.paths_per_step", self.paths_per_step, "must be a positive integer or null")


@PATH_SAMPLERS.register("strict_fair", options=StrictFairOptions)
def build_strict_fair(options: StrictFairOptions, context: EngineContext) -> StrictFairPathSampler:
    """FairNAS: m paths per step that together train every choice of every label once."""
    return StrictFairPathSampler(seed=context.seed, paths_per_step=options.paths_per_step)


def _check_cluster_fair(options: StrictFairOptions, recipe: "Recipe", selected: bool) -> None:
    if selected and recipe.training.optimizer_state != "separated":
        raise ConfigError("training.path_sampler", "cluster_fair",
                          "cluster_fair needs training.optimizer_state: separated (it trains one MS cluster per step)")


@PATH_SAMPLERS.register("cluster_fair", options=StrictFairOptions, check=_check_cluster_fair)
def build_cluster_fair(options: StrictFairOptions, context: EngineContext) -> ClusterFairPathSampler:
    """FairNAS + MS: the strict-fair paths of a step share one MS cluster."""
    return ClusterFairPathSampler(context.cluster_labels, seed=context.seed, paths_per_step=options.paths_per_step)
