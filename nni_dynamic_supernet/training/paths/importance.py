"""Path importance sampling (PA of PA&DA, Lu et al., CVPR 2023).

The gradient variance of weight-sharing training is smallest when a path is drawn with
probability proportional to its gradient norm (paper Eq. 10). PA approximates that per
*op*: after each step it records the gradient norm of every candidate op on the trained
path, and at the end of each epoch it turns those records into the next epoch's sampling
distribution, mixed with uniform by a coefficient δ that rises over training.

What is recorded, following the official NAS-Bench-201 code (``ShunLu91/PA-DA``,
``nasbench201/train_panda_201.py``):

* the norms are taken **after clipping** (the update rule calls :meth:`observe` after the
  optimizer step, when ``.grad`` still holds the clipped gradients);
* an op's norm is the sum of the L2 norms of its parameter tensors, summed over every module
  that carries its label (all cells of a cell space). The official code counts the conv
  weight and bias of ``ReLUConvBN``; NNI's ``ReLUConvBN`` has a bias-free conv and an affine
  BN, so here every trainable parameter of the candidate counts (conv weight, BN weight, BN bias);
* with ``shared_across_labels`` (the official behaviour for NAS-Bench-201: one distribution
  shared by all edges) an op's norm is also summed over the labels of the path that chose it,
  then divided by how many labels chose it;
* an accumulator is updated by the pairwise running mean ``h <- (h + s) / 2`` starting from 0
  each epoch, and only when ``s != 0``. Parameter-free ops (none, skip, pooling) therefore
  keep ``h = 0``, and so does an op not trained this epoch: they get only the uniform share
  ``(1 - δ) / n``. That is the official behaviour; with δ near 1 such ops are almost never
  trained late in training.

The loss is the plain mean, as in the official code. ``reweight=True`` instead multiplies the
loss of the path by ``prod_l 1 / (n_l * p_l(a_l))``, the importance weight that makes the
gradient an unbiased estimate of the uniform-sampling gradient (paper Eq. 5); the update rule
applies it through :meth:`loss_weight`.

Distributed training: every rank owns a sampler seeded alike, so every rank draws the same
paths as long as the distributions agree. ``reduce_fn`` receives the epoch's accumulators as
one float64 tensor before the distribution update and must return the cross-rank mean (for
example ``all_reduce`` then divide by the world size); the default is the identity.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Hashable, Optional, Sequence

import numpy as np
import torch

from ...components import PATH_SAMPLERS
from ...data.smoothing import SCHEDULES, SmoothingSchedule
from ...errors import ConfigError
from ..context import EngineContext
from .samplers import Arch, PathSampler, SearchSpace

if TYPE_CHECKING:  # pragma: no cover
    from ...recipe import Recipe

__all__ = ["ImportancePathSampler", "ImportancePathOptions", "importance_path_sampler"]


class ImportancePathSampler(PathSampler):
    """PA: one path per step, each label's op drawn from an importance distribution.

    Parameters
    ----------
    space
        The full search space (label -> choices); distributions are kept over it.
    seed
        Seed of the sampler's RandomState.
    shared_across_labels
        ``True``: one accumulator per op *name*, shared by every label that offers it (the
        official NAS-Bench-201 code; right for cell spaces, where all cells share one
        genotype). ``False``: one accumulator per (label, op) (recommended for chain spaces,
        whose layers differ in width; PA&DA released no code for them).
    delta
        The smoothing schedule: ``p = δ_e * h / sum(h) + (1 - δ_e) / n`` after epoch ``e``.
    reweight
        Multiply each path's loss by ``prod_l 1 / (n_l p_l)`` (off in the official code).
    reduce_fn
        Cross-rank mean of the accumulators under DDP; identity by default.

    Examples
    --------
    >>> sampler = ImportancePathSampler({"e0": ["none", "conv"]}, shared_across_labels=True)
    >>> sampler.observe([{"e0": "conv"}], {("e0", "conv"): 2.0})
    >>> sampler.on_epoch_end(1, 2)     # δ = 1/2
    >>> sampler.probabilities()["e0"]
    {'none': 0.25, 'conv': 0.75}
    """

    needs_op_grad_norms = True

    def __init__(self, space: SearchSpace, seed: int = 0, shared_across_labels: bool = False,
                 delta: Optional[SmoothingSchedule] = None, reweight: bool = False,
                 reduce_fn: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> None:
        super().__init__(seed)
        self.space: dict[str, list] = {str(label): list(choices) for label, choices in space.items()}
        self.shared_across_labels = bool(shared_across_labels)
        self.delta = delta if delta is not None else SmoothingSchedule("linear")
        self.reweight = bool(reweight)
        self.reduce_fn = reduce_fn
        keys: list[Hashable] = []
        for label, choices in self.space.items():
            for choice in choices:
                key = self._key(label, choice)
                if key not in keys:
                    keys.append(key)
        #: Accumulator keys in a fixed order (the order of the tensor given to ``reduce_fn``).
        self.keys: list[Hashable] = keys
        self._h: dict[Hashable, float] = {key: 0.0 for key in keys}
        self._probs: dict[str, np.ndarray] = {label: np.full(len(c), 1.0 / len(c)) for label, c in self.space.items()}
        self._cdf_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._last: Optional[tuple[Arch, float]] = None
        self.last_delta = 0.0
        self.history: list[dict] = []

    # ------------------------------------------------------------------ distributions
    def _key(self, label: str, choice: Any) -> Hashable:
        return choice if self.shared_across_labels else (label, choice)

    def probabilities(self) -> dict[str, dict]:
        """The current distribution of every label, ``label -> {choice: probability}``."""
        return {label: dict(zip(self.space[label], self._probs[label].tolist())) for label in self.space}

    def _restricted(self, label: str, choices: Sequence) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and CDF over ``choices`` (a partition leaf may allow only some of them)."""
        key = (label, tuple(choices))
        cached = self._cdf_cache.get(key)
        if cached is not None:
            return cached
        full = self.space.get(label)
        if full is not None and list(choices) == full:
            probs = self._probs[label].copy()
        else:
            lookup = dict(zip(full, self._probs[label])) if full is not None else {}
            probs = np.array([lookup.get(c, 0.0) for c in choices], dtype=float)
            total = probs.sum()
            probs = probs / total if total > 0 else np.full(len(choices), 1.0 / len(choices))
        cdf = np.cumsum(probs)
        cdf[-1] = 1.0  # rounding must never leave a draw past the last choice
        self._cdf_cache[key] = (probs, cdf)
        return probs, cdf

    def sample(self, space: SearchSpace) -> list[Arch]:
        """One path: each label's choice drawn independently from its current distribution."""
        draws = self.rng.random_sample(len(space))
        arch: Arch = {}
        weight = 1.0
        for (label, choices), r in zip(space.items(), draws):
            probs, cdf = self._restricted(label, choices)
            i = min(int(np.searchsorted(cdf, r, side="right")), len(choices) - 1)
            arch[label] = choices[i]
            weight *= 1.0 / (len(choices) * probs[i])
        self._last = (arch, weight)
        return [arch]

    def loss_weight(self, arch: Arch) -> float:
        """``prod_l 1 / (n_l p_l(a_l))`` when ``reweight`` is on, else 1."""
        if not self.reweight:
            return 1.0
        if self._last is not None and self._last[0] == arch:
            return self._last[1]
        weight = 1.0
        for label, choice in arch.items():
            probs, _ = self._restricted(label, self.space[label])
            weight *= 1.0 / (len(probs) * probs[self.space[label].index(choice)])
        return weight

    # ------------------------------------------------------------------ statistics
    def observe(self, paths: Sequence[Arch], op_grad_norms: Optional[dict] = None) -> None:
        """Fold the (post-clip) gradient norms of the ops of ``paths`` into the accumulators.

        ``op_grad_norms`` maps ``(label, choice)`` to the summed per-tensor gradient norm of
        that op over every module carrying ``label``.
        """
        if not op_grad_norms:
            return
        for arch in paths:
            sums: dict[Hashable, float] = {}
            counts: dict[Hashable, int] = {}
            for label, choice in arch.items():
                key = self._key(label, choice)
                sums[key] = sums.get(key, 0.0) + float(op_grad_norms.get((label, choice), 0.0))
                counts[key] = counts.get(key, 0) + 1
            for key, total in sums.items():
                s = total / counts[key]
                # Official rule: an op whose norm is 0 (parameter-free, or unused downstream) keeps its value.
                if s != 0.0 and math.isfinite(s) and key in self._h:
                    self._h[key] = (self._h[key] + s) / 2.0

    def on_epoch_end(self, epoch: int, total_epochs: int) -> None:
        """Turn the epoch's accumulators into the next epoch's distributions, then reset them."""
        delta = float(self.delta(epoch, total_epochs))
        values = torch.tensor([self._h[key] for key in self.keys], dtype=torch.float64)
        if self.reduce_fn is not None:
            values = self.reduce_fn(values)
        h = dict(zip(self.keys, values.detach().cpu().tolist()))
        for label, choices in self.space.items():
            raw = np.array([h[self._key(label, c)] for c in choices], dtype=float)
            total = raw.sum()
            uniform = np.full(len(choices), 1.0 / len(choices))
            # No recorded norm on this label (all ops parameter-free, or none trained): stay uniform.
            importance = raw / total if total > 0 and math.isfinite(total) else uniform
            self._probs[label] = delta * importance + (1.0 - delta) * uniform
        self._cdf_cache.clear()
        self._last = None
        self.last_delta = delta
        self.history.append({"epoch": int(epoch) + 1, "delta": delta,
                             "probs": {label: self._probs[label].tolist() for label in self.space}})
        self._h = {key: 0.0 for key in self.keys}

    # ------------------------------------------------------------------ reporting
    def epoch_metrics(self) -> dict[str, float]:
        """δ and, per op name, its probability averaged over the labels offering it (for the epoch row)."""
        if not self.history:
            return {}
        by_choice: dict[str, list[float]] = {}
        for label, choices in self.space.items():
            for choice, p in zip(choices, self._probs[label]):
                by_choice.setdefault(str(choice), []).append(float(p))
        row = {"pa_delta": self.last_delta}
        row.update({f"pa_prob/{choice}": float(np.mean(ps)) for choice, ps in by_choice.items()})
        return row

    def summary(self) -> dict:
        """The distributions after every epoch (computed at its end, used by the next), for results.json."""
        return {"kind": "importance", "shared_across_labels": self.shared_across_labels,
                "reweight": self.reweight, "delta_schedule": {"kind": self.delta.kind, "scale": self.delta.scale},
                "choices": {label: [_jsonable(c) for c in choices] for label, choices in self.space.items()},
                "history": self.history}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """RNG, accumulators, distributions and history, as plain data."""
        state = super().state_dict()
        state.update({"h": [float(self._h[key]) for key in self.keys],
                      "probs": {label: self._probs[label].tolist() for label in self.space},
                      "last_delta": self.last_delta, "history": [dict(row) for row in self.history]})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; sampling continues exactly as it would have."""
        super().load_state_dict(state)
        self._h = dict(zip(self.keys, (float(v) for v in state["h"])))
        self._probs = {label: np.asarray(state["probs"][label], dtype=float) for label in self.space}
        self.last_delta = float(state.get("last_delta", 0.0))
        self.history = [dict(row) for row in state.get("history", [])]
        self._cdf_cache.clear()
        self._last = None


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str)) or value is None else str(value)


# ---------------------------------------------------------------------------------------------- registration
@dataclass(frozen=True)
class ImportancePathOptions:
    """Options of PA: the δ schedule, shared or per-label distributions, loss reweighting, the op norm."""

    pa_delta_schedule: str = "linear"
    pa_delta_max: float = 1.0
    #: None: shared for cell spaces (every label carried by several modules), per label for chain spaces.
    pa_shared_across_labels: Optional[bool] = None
    importance_reweight: bool = False
    #: Which tensors make an op's gradient norm: conv (the official code) or all (BN affine too).
    pa_op_norm: str = "conv"

    def __post_init__(self) -> None:
        if self.pa_delta_schedule not in SCHEDULES:
            raise ConfigError("training.pa_delta_schedule", self.pa_delta_schedule,
                              f"allowed values: {', '.join(SCHEDULES)}")
        if self.pa_op_norm not in ("conv", "all"):
            raise ConfigError("training.pa_op_norm", self.pa_op_norm, "allowed values: conv, all")
        if not 0 <= self.pa_delta_max <= 1:
            raise ConfigError("training.pa_delta_max", self.pa_delta_max,
                              "must be in [0, 1]: the importance share of the mixture")


def _check_importance(options: ImportancePathOptions, recipe: "Recipe", selected: bool) -> None:
    if options.importance_reweight and not selected:
        raise ConfigError("training.importance_reweight", True,
                          "needs training.path_sampler: importance (it divides by the path's sampling probability)")
    if selected and recipe.training.paths_per_step not in (None, 1):
        raise ConfigError("training.paths_per_step", recipe.training.paths_per_step,
                          "the importance path sampler trains one path per step; use null")


def importance_path_sampler(options: Any, space: SearchSpace, shared: set, *, seed: int) -> ImportancePathSampler:
    """PA's sampler for ``space``; ``shared`` holds the labels carried by several layer choices.

    ``pa_shared_across_labels: null`` picks one distribution per op name shared by all
    labels when every label is shared by several modules (a cell space such as NAS-Bench-201,
    as the official code does), else one distribution per label (chain spaces, whose layers
    differ in width; PA&DA released no code for them).

    Parameters
    ----------
    options
        :class:`ImportancePathOptions`, or the recipe's ``training`` section (it has the same fields).
    space
        ``{label: [choices]}`` of the whole supernet.
    shared
        Labels carried by more than one supernet module.
    seed
        The recipe's seed.

    Returns
    -------
    ImportancePathSampler
    """
    shared_mode = options.pa_shared_across_labels
    if shared_mode is None:
        shared_mode = bool(space) and set(space) <= set(shared)
    return ImportancePathSampler(space, seed=seed, shared_across_labels=shared_mode,
                                 delta=SmoothingSchedule(options.pa_delta_schedule, options.pa_delta_max),
                                 reweight=options.importance_reweight)


@PATH_SAMPLERS.register("importance", options=ImportancePathOptions, check=_check_importance)
def build_importance(options: ImportancePathOptions, context: EngineContext) -> ImportancePathSampler:
    """PA of PA&DA: each label's op drawn by its recent gradient norms, mixed with uniform."""
    return importance_path_sampler(options, context.space, context.shared, seed=context.seed)
