"""Path samplers: which subnets a training step trains.

* :mod:`.samplers`: uniform (SPOS), strict fairness (FairNAS), cluster fairness (CaLR + MS),
  rounds and constraint filtering.
* :mod:`.importance`: path importance sampling (PA of PA&DA).
"""
from .importance import ImportancePathSampler
from .samplers import (Arch, ClusterFairPathSampler, ConstrainedPathSampler, PathSampler, RoundsPathSampler, SearchSpace,
                       StrictFairPathSampler, UniformPathSampler, rng_state, set_rng_state)

__all__ = ["Arch", "SearchSpace", "PathSampler", "UniformPathSampler", "StrictFairPathSampler", "ClusterFairPathSampler",
           "RoundsPathSampler", "ConstrainedPathSampler", "ImportancePathSampler", "rng_state", "set_rng_state"]
