"""Data samplers: which training examples make up each epoch.

Both samplers are :class:`torch.utils.data.Sampler` objects that yield dataset indices,
so they plug into any ``DataLoader(sampler=...)``. The epoch's index list is a pure
function of ``(seed, epoch)`` and the sampler's state: nothing is drawn from a generator
that lives across epochs, so a resumed run sees exactly the batches an uninterrupted run
would, and iterating the loader again (BN recalibration, debugging) changes nothing.
Lightning calls :meth:`DataSampler.set_epoch` at the start of every epoch.

* :class:`UniformDataSampler`: a fresh permutation per epoch (SPOS and everything else).
* :class:`ImportanceDataSampler`: DA of PA&DA (Lu et al., CVPR 2023). Each example's
  importance is ``||softmax(z) - onehot(y)||_2``, the norm of the loss gradient w.r.t. the
  logits, an upper bound (up to a constant) of its weight-gradient norm (paper Eq. 12-13),
  computed from the logits of the training forward itself. After each epoch the next
  epoch's ``N`` indices are drawn **with replacement** from
  ``q = τ_e * v / sum(v) + (1 - τ_e) / N``.

Both are registered data samplers (``training.data_sampler``: ``uniform``, ``importance``);
:func:`build_data_sampler` builds the recipe's.

Distributed training: every rank builds the same full
index list from the same seed and takes every ``num_replicas``-th index from ``rank``.
Before the end-of-epoch update, ``reduce_fn(index, scores)`` must return the observations
of *all* ranks (``all_gather`` of both tensors), so that every rank computes the same ``q``;
the default is the identity.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import Sampler

from ..components import DATA_SAMPLERS
from ..errors import ConfigError
from .smoothing import SCHEDULES, SmoothingSchedule

__all__ = ["DataSampler", "UniformDataSampler", "ImportanceDataSampler", "pairwise_running_mean",
           "UNSEEN_POLICIES", "DataSamplerContext", "ImportanceDataOptions", "build_data_sampler"]

_logger = logging.getLogger(__name__)

#: How :class:`ImportanceDataSampler` scores an example not drawn in the last epoch.
UNSEEN_POLICIES: tuple[str, ...] = ("keep", "zero")


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A torch generator seeded from ``(seed, epoch)`` alone (well mixed, so nearby seeds differ)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch) & 0xFFFFFFFF, 0x5DA]).generate_state(2)
    generator = torch.Generator()
    generator.manual_seed(int(state[0]) << 32 | int(state[1]))
    return generator


class DataSampler(Sampler[int]):
    """Base class: yields one epoch of dataset indices; subclasses say which.

    Parameters
    ----------
    num_examples
        Size ``N`` of the training set; indices are ``0 .. N - 1``.
    seed
        Seed of every epoch's draw (with the epoch number).
    num_replicas, rank
        Under DDP, this rank yields ``indices[rank::num_replicas]`` of the common list
        (the tail that does not divide evenly is dropped so every rank has the same length).
    """

    #: Whether the engine should call :meth:`observe` with per-example importance scores.
    needs_example_scores: bool = False

    def __init__(self, num_examples: int, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        if num_examples <= 0:
            raise ConfigError("data", num_examples, "the training split is empty")
        if not 0 <= rank < num_replicas:
            raise ConfigError("rank", rank, f"must be in [0, num_replicas={num_replicas})")
        self.num_examples = int(num_examples)
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        #: The epoch whose indices :meth:`__iter__` yields (0-based).
        self.epoch = 0

    # ------------------------------------------------------------------ the torch Sampler protocol
    def indices(self, epoch: int) -> torch.Tensor:
        """The full (all ranks) index list of ``epoch``."""
        return torch.randperm(self.num_examples, generator=_epoch_generator(self.seed, epoch))

    def __iter__(self) -> Iterator[int]:
        order = self.indices(self.epoch)
        if self.num_replicas > 1:
            usable = len(order) - len(order) % self.num_replicas
            order = order[self.rank:usable:self.num_replicas]
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.num_examples // self.num_replicas if self.num_replicas > 1 else self.num_examples

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch to yield (Lightning calls this at every epoch start, also on resume)."""
        self.epoch = int(epoch)

    # ------------------------------------------------------------------ training hooks
    def observe(self, index: torch.Tensor, scores: torch.Tensor) -> None:
        """Record per-example scores of a batch (importance sampling only)."""

    def on_epoch_end(self, epoch: int, total_epochs: int) -> None:
        """Prepare epoch ``epoch + 1``."""
        self.epoch = int(epoch) + 1

    def epoch_metrics(self) -> dict[str, float]:
        """Scalars for the epoch's log row; empty by default."""
        return {}

    def summary(self) -> dict:
        """Per-epoch history for results.json."""
        return {"kind": "uniform"}

    def state_dict(self) -> dict:
        """The epoch counter (the draw itself is a function of seed and epoch)."""
        return {"epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.epoch = int(state["epoch"])


class UniformDataSampler(DataSampler):
    """Every example once per epoch, in a fresh random order determined by ``(seed, epoch)``."""

    def summary(self) -> dict:
        """Only the kind: a uniform sampler has no per-epoch history."""
        return {"kind": "uniform"}


def pairwise_running_mean(index: torch.Tensor, values: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per index, the official PA&DA running mean of its values in observation order.

    The official code folds the values of one example as ``v = u_1``, then ``v <- (v + u_k) / 2``;
    for ``k`` observations that is ``u_1 / 2^(k-1) + sum_{j>=2} u_j / 2^(k-j+1)``. This computes it
    for all examples at once (stable sort by index, then one weighted scatter-add).

    Parameters
    ----------
    index
        int64 example indices in ``[0, size)``, in observation order (duplicates allowed).
    values
        The observed values, same length.
    size
        Number of examples.

    Returns
    -------
    (mean, seen)
        float64 tensor of length ``size`` (0 where unseen) and a bool mask of the seen examples.
    """
    index = index.reshape(-1).to(torch.int64)
    values = values.reshape(-1).to(torch.float64)
    out = torch.zeros(size, dtype=torch.float64)
    seen = torch.zeros(size, dtype=torch.bool)
    if index.numel() == 0:
        return out, seen
    order = torch.sort(index, stable=True).indices
    sorted_index, sorted_values = index[order], values[order]
    counts = torch.bincount(sorted_index, minlength=size)
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(len(sorted_index)) - starts[sorted_index]  # 0-based rank within its example
    k = counts[sorted_index]
    exponent = torch.where(position == 0, k - 1, k - position).to(torch.float64)
    out.index_add_(0, sorted_index, sorted_values * torch.pow(2.0, -exponent))
    seen[sorted_index] = True
    return out, seen


class ImportanceDataSampler(DataSampler):
    """DA: the next epoch's indices drawn with replacement from per-example importance.

    Epoch 0 is the same permutation as :class:`UniformDataSampler` with the same seed, so a
    DA run and a uniform run start on identical batches.

    Parameters
    ----------
    num_examples, seed, num_replicas, rank
        See :class:`DataSampler`.
    tau
        The smoothing schedule: ``q = τ_e v / sum(v) + (1 - τ_e) / N`` after epoch ``e``.
    unseen
        Score of an example not drawn in the last epoch. ``"zero"`` (default): the paper
        (section 3.4) and the official code, which reset scores every epoch, so an undrawn
        example gets importance 0 and only the uniform mass ``(1 - τ_e) / N``. ``"keep"``:
        its score from the last epoch it was drawn in; an example never drawn yet gets the
        mean score of the others, i.e. exactly the uniform share ``1 / N`` of the importance mass. Either way ``q > 0``
        while ``τ_e < 1``, which the linear schedule guarantees (``τ_e <= (E - 1) / E``).
    reduce_fn
        ``(index, scores) -> (index, scores)`` gathering every rank's observations under
        DDP; identity by default.
    """

    needs_example_scores = True

    def __init__(self, num_examples: int, seed: int = 0, tau: Optional[SmoothingSchedule] = None,
                 unseen: str = "zero", num_replicas: int = 1, rank: int = 0,
                 reduce_fn: Optional[Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]] = None
                 ) -> None:
        super().__init__(num_examples, seed, num_replicas, rank)
        if unseen not in UNSEEN_POLICIES:
            raise ConfigError("training.da_unseen", unseen, f"allowed values: {', '.join(UNSEEN_POLICIES)}")
        self.tau = tau if tau is not None else SmoothingSchedule("linear")
        self.unseen = unseen
        self.reduce_fn = reduce_fn
        #: Last known importance of each example (NaN: never drawn yet).
        self.scores = torch.full((self.num_examples,), float("nan"), dtype=torch.float64)
        #: The distribution of the next draw; ``None`` until the first update (epoch 0 is a permutation).
        self.probs: Optional[torch.Tensor] = None
        self.history: list[dict] = []
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._warned = False

    def indices(self, epoch: int) -> torch.Tensor:
        """Epoch 0 (or before any update): a permutation; afterwards ``N`` draws with replacement from ``q``."""
        if epoch == 0 or self.probs is None:
            return super().indices(epoch)
        return torch.multinomial(self.probs, self.num_examples, replacement=True,
                                 generator=_epoch_generator(self.seed, epoch))

    def observe(self, index: torch.Tensor, scores: torch.Tensor) -> None:
        """Buffer a batch's ``(index, importance)``; kept on the batch's device until the epoch ends.

        Folding happens once per epoch, so a step costs no host-device synchronisation.
        """
        self._pending.append((index.detach().reshape(-1), scores.detach().reshape(-1).float()))

    def _gather(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._pending:
            index, scores = torch.zeros(0, dtype=torch.int64), torch.zeros(0)
        else:
            index = torch.cat([i for i, _ in self._pending])
            scores = torch.cat([s for _, s in self._pending])
        if self.reduce_fn is not None:
            index, scores = self.reduce_fn(index, scores)
        index, scores = index.cpu().to(torch.int64), scores.cpu().to(torch.float64)
        keep = (index >= 0) & (index < self.num_examples) & torch.isfinite(scores)
        if index.numel() and not bool(keep.all()) and not self._warned:
            self._warned = True
            _logger.warning("data importance sampling got %d observations without a valid dataset index; "
                            "the training dataset must return (x, y, index)", int((~keep).sum()))
        return index[keep], scores[keep]

    def on_epoch_end(self, epoch: int, total_epochs: int) -> None:
        """Fold the epoch's observations into the scores and compute the next epoch's ``q``."""
        tau = float(self.tau(epoch, total_epochs))
        index, scores = self._gather()
        self._pending = []
        epoch_mean, seen = pairwise_running_mean(index, scores, self.num_examples)
        if self.unseen == "zero":
            self.scores = epoch_mean
        else:
            self.scores = torch.where(seen, epoch_mean, self.scores)
        v = self.scores.clone()
        known = torch.isfinite(v)
        if bool(known.any()):
            # Never drawn yet: the mean of the known scores, i.e. the uniform share 1/N of the importance mass.
            v[~known] = v[known].mean()
        else:
            v.fill_(1.0)
        total = float(v.sum())
        uniform = torch.full_like(v, 1.0 / self.num_examples)
        importance = v / total if total > 0 and math.isfinite(total) else uniform
        self.probs = tau * importance + (1.0 - tau) * uniform
        self.epoch = int(epoch) + 1
        entropy = float(-(self.probs * torch.log(self.probs.clamp_min(1e-300))).sum())
        self.history.append({"epoch": int(epoch) + 1, "tau": tau, "entropy": entropy,
                             "entropy_ratio": entropy / math.log(self.num_examples) if self.num_examples > 1 else 1.0,
                             "seen_fraction": float(seen.double().mean()),
                             "max_prob_ratio": float(self.probs.max()) * self.num_examples})

    # ------------------------------------------------------------------ reporting
    def epoch_metrics(self) -> dict[str, float]:
        """τ, the entropy of ``q`` (nats, and relative to uniform), the fraction of examples drawn."""
        if not self.history:
            return {}
        last = self.history[-1]
        return {"da_tau": last["tau"], "da_entropy": last["entropy"], "da_entropy_ratio": last["entropy_ratio"],
                "da_seen_fraction": last["seen_fraction"], "da_max_prob_ratio": last["max_prob_ratio"]}

    def summary(self) -> dict:
        """The distribution statistics after every epoch (computed at its end, used by the next)."""
        return {"kind": "importance", "num_examples": self.num_examples, "unseen": self.unseen,
                "tau_schedule": {"kind": self.tau.kind, "scale": self.tau.scale}, "history": self.history}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Epoch, scores, ``q``, buffered observations and history (tensors on the CPU)."""
        pending = self._pending
        return {"epoch": self.epoch, "scores": self.scores.clone(),
                "probs": None if self.probs is None else self.probs.clone(),
                "pending_index": torch.cat([i for i, _ in pending]).cpu() if pending else None,
                "pending_scores": torch.cat([s for _, s in pending]).cpu() if pending else None,
                "history": [dict(row) for row in self.history]}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; the next draws are those an uninterrupted run makes."""
        self.epoch = int(state["epoch"])
        self.scores = torch.as_tensor(state["scores"], dtype=torch.float64).clone()
        self.probs = None if state.get("probs") is None else torch.as_tensor(state["probs"], dtype=torch.float64).clone()
        self._pending = []
        if state.get("pending_index") is not None:
            self._pending.append((torch.as_tensor(state["pending_index"]), torch.as_tensor(state["pending_scores"])))
        self.history = [dict(row) for row in state.get("history", [])]


# ---------------------------------------------------------------------------------------------- registration
@dataclass(frozen=True)
class DataSamplerContext:
    """What a data sampler's builder receives besides its options: the training set's size and the run's seed.

    Attributes
    ----------
    num_examples
        Size of the training set.
    seed
        The recipe's seed.
    num_replicas, rank
        The process's share of every epoch under DDP.
    """

    num_examples: int
    seed: int
    num_replicas: int = 1
    rank: int = 0


@DATA_SAMPLERS.register("uniform")
def build_uniform(options: None, context: DataSamplerContext) -> UniformDataSampler:
    """Every example once per epoch, in a fresh seeded order."""
    return UniformDataSampler(context.num_examples, seed=context.seed, num_replicas=context.num_replicas,
                              rank=context.rank)


@dataclass(frozen=True)
class ImportanceDataOptions:
    """Options of DA: the τ schedule and the score of an example not drawn in the last epoch."""

    da_tau_schedule: str = "linear"
    da_tau_max: float = 1.0
    da_unseen: str = "zero"

    def __post_init__(self) -> None:
        if self.da_tau_schedule not in SCHEDULES:
            raise ConfigError("training.da_tau_schedule", self.da_tau_schedule,
                              f"allowed values: {', '.join(SCHEDULES)}")
        if self.da_unseen not in UNSEEN_POLICIES:
            raise ConfigError("training.da_unseen", self.da_unseen, f"allowed values: {', '.join(UNSEEN_POLICIES)}")
        if not 0 <= self.da_tau_max <= 1:
            raise ConfigError("training.da_tau_max", self.da_tau_max,
                              "must be in [0, 1]: the importance share of the mixture")


@DATA_SAMPLERS.register("importance", options=ImportanceDataOptions)
def build_importance(options: ImportanceDataOptions, context: DataSamplerContext) -> ImportanceDataSampler:
    """DA of PA&DA: the next epoch's examples drawn by their loss-gradient bound, mixed with uniform."""
    return ImportanceDataSampler(context.num_examples, seed=context.seed,
                                 tau=SmoothingSchedule(options.da_tau_schedule, options.da_tau_max),
                                 unseen=options.da_unseen, num_replicas=context.num_replicas, rank=context.rank)


def build_data_sampler(training: Any, num_examples: int, num_replicas: int = 1, rank: int = 0, *,
                       seed: int) -> DataSampler:
    """The data sampler ``training.data_sampler`` over a training set of ``num_examples``.

    Parameters
    ----------
    training
        The recipe's ``training`` section.
    num_examples
        Size of the training set.
    num_replicas, rank
        The process's share of every epoch under DDP.
    seed
        The recipe's seed.

    Returns
    -------
    DataSampler
    """
    context = DataSamplerContext(num_examples, seed, num_replicas, rank)
    return DATA_SAMPLERS.build(training.data_sampler, training, context)
