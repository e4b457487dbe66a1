"""Assemble a :class:`SupernetEngine` from a recipe's ``training`` section.

This is the one place where component *names* in the recipe become component
*objects*; the step itself never branches on a method name. Each builder takes the typed
section it reads (:class:`~nni_dynamic_supernet.recipe.TrainingConfig`) and the recipe's
``seed``, never the whole recipe.
"""
from __future__ import annotations

import json
import logging
import weakref
from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn as nn

from ..errors import ConfigError
from ..recipe import TrainingConfig, split_schedule
from .engine import SupernetEngine
from .lr import ComplexityAwareLR, LRPolicy, StaticLR
from .optimizer_state import OptimizerStatePolicy, SeparatedState, SharedState, default_cluster_labels
from .partition import ExhaustivePartition, GradientMatchingPartition, OneShotPartition, Partition, split_labels_of
from .paths import ClusterFairPathSampler, PathSampler, StrictFairPathSampler, UniformPathSampler
from .updates import GradientStep, UpdateRule

_logger = logging.getLogger(__name__)

__all__ = ["build_engine", "partition_for", "search_space_of_model", "complexity_model_for", "cluster_labels_for",
           "importance_path_sampler", "build_data_sampler", "weighted_labels", "check_techniques"]


def search_space_of_model(model: nn.Module) -> dict[str, list]:
    """Label -> choices of a model space or supernet (LayerChoice labels only, stable order)."""
    from ..spaces.validation import search_space_of
    # NNI labels are str subclasses; plain types keep checkpoints loadable with weights_only=True.
    return {str(label): [_plain(v) for v in choices] for label, choices in search_space_of(model).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, tuple):  # a subset of an input choice
        return tuple(_plain(v) for v in value)
    return str(value)


def weighted_labels(op_modules: Sequence[tuple]) -> list[str]:
    """Labels whose choices own distinct weights: candidate modules of their own, one at least with parameters.

    ``LayerChoice`` labels (and DARTS cell ops) qualify; widths, kernels and depths of sliced or
    repeated layers, and input choices, do not (their choices share one weight tensor or own none).
    """
    out: list[str] = []
    for label, _, module in op_modules:
        if label not in out and any(True for _ in module.parameters()):
            out.append(label)
    return out


def validity_check(pristine_space: Optional[nn.Module]) -> Optional[Callable[[dict], bool]]:
    """``arch -> bool`` for a space with constraints (NAS-Bench-101), None when every architecture is valid."""
    if pristine_space is None:
        return None
    from ..spaces.validation import arch_is_valid, constraints_of
    if not constraints_of(pristine_space):
        return None
    cache: dict = {}

    def valid(arch: dict) -> bool:
        key = tuple(arch.items())
        if key not in cache:
            cache[key] = arch_is_valid(pristine_space, arch)
        return cache[key]

    return valid


def check_techniques(training: TrainingConfig, model: nn.Module) -> None:
    """Refuse, before training, a ``training`` technique that cannot apply to ``model``'s space (one line, naming the label).

    * GM-NAS (``training.partition: gradient_matching``) splits a label into groups of choices
      with weights of their own: every label of ``training.gm_labels`` must own distinct weights,
      and without ``gm_labels`` at least one label must.
    * Few-shot (``exhaustive``) and MS labels must be labels of the space.
    """
    from ..supernet.modules import op_modules
    space = search_space_of_model(model)
    if training.partition == "gradient_matching":
        owned = weighted_labels(op_modules(model))
        for label in training.gm_labels or []:
            if label not in space:
                raise ConfigError("training.gm_labels", label, f"not a label of the space; labels: {', '.join(space)}")
            if label not in owned:
                raise ConfigError("training.gm_labels", label, "its choices own no distinct weights (a sliced width or "
                                  "kernel, a depth or an input choice); GM splits labels whose choices are modules "
                                  f"of their own: {', '.join(owned) or 'none in this space'}")
        if not training.gm_labels and not owned:
            raise ConfigError("training.partition", training.partition, "no label of this space has choices with "
                              "weights of their own to split; use partition: none or exhaustive")
    if training.partition == "exhaustive" and training.split_label is not None and training.split_label not in space:
        raise ConfigError("training.split_label", training.split_label,
                          f"not a label of the space; labels: {', '.join(space)}")
    if (training.optimizer_state == "separated" and not training.ms_labels and training.partition == "exhaustive"
            and len(space) < 2):
        raise ConfigError("training.optimizer_state", training.optimizer_state, f"MS clusters on a label other than "
                          f"the few-shot split label, and this space has only {', '.join(space) or 'no label'}")
    for label in training.ms_labels or []:
        if label not in space:
            raise ConfigError("training.ms_labels", label, f"not a label of the space; labels: {', '.join(space)}")


def partition_for(training: TrainingConfig, model: nn.Module, *, seed: int) -> Partition:
    """The partitioner ``training.partition`` over ``model``'s search space."""
    space = search_space_of_model(model)
    kind = training.partition
    if kind == "none":
        return OneShotPartition(space, seed=seed)
    if kind == "exhaustive":
        return ExhaustivePartition(space, training.split_label, seed=seed, budget=training.partition_budget)
    if kind == "gradient_matching":
        from ..supernet.modules import op_modules
        # Without gm_labels: every label whose choices own weights (all of a LayerChoice space).
        owned = set(weighted_labels(op_modules(model)))
        labels = training.gm_labels or [label for label in space if label in owned]
        return GradientMatchingPartition(space, split_schedule(training), training.split_branching,
                                         batches=training.gm_batches, edge_rule=training.gm_edge_rule,
                                         restart=training.gm_restart, labels=labels, seed=seed,
                                         fix_schedule=training.gm_fix_schedule,
                                         restart_schedule=training.gm_restart_schedule,
                                         budget=training.partition_budget)
    raise ConfigError("training.partition", kind, "allowed: none, exhaustive, gradient_matching")


_COMPLEXITY_CACHE: dict[Any, Any] = {}
_COMPLEXITY_OWNER: dict[int, Any] = {}  # id key -> weak reference to the user space it was built for


def complexity_model_for(pristine_space: Optional[nn.Module]) -> Any:
    """A cached :class:`ComplexityModel` of an un-mutated space.

    Registered spaces are cached by name and arguments, so repeated runs in one process
    (tests, ``nds bench compare`` workers) pay NNI's profiler build once; a user's own
    space is cached by object.
    """
    from .complexity import ComplexityModel
    if pristine_space is None:
        raise ConfigError("training.lr_policy", "calr", "needs the un-mutated space to count parameters; "
                          "pass the model space before it is turned into a supernet")
    shape = getattr(pristine_space, "nds_input_shape", None)
    if not shape:
        # Never guess: a wrong dummy input makes the profiler trace a different network (or fail).
        raise ConfigError("training.lr_policy", "calr", "needs the input shape of one example; it is read from the "
                          "training data (the evaluator's train dataloader or the recipe's dataset)")
    name = getattr(pristine_space, "nds_space_name", None)
    kwargs = getattr(pristine_space, "nds_space_kwargs", None)
    if not name and getattr(pristine_space, "trace_kwargs", None) is not None and not getattr(pristine_space,
                                                                                            "trace_args", ()):
        # An NNI hub space (``@model_wrapper``) is rebuilt from its class and keyword arguments alone.
        symbol = getattr(pristine_space, "trace_symbol", type(pristine_space))
        name, kwargs = f"{symbol.__module__}.{symbol.__qualname__}", pristine_space.trace_kwargs
    key: Any = (name, json.dumps(kwargs, sort_keys=True, default=str), tuple(shape)) if name else id(pristine_space)
    owner = _COMPLEXITY_OWNER.get(key)
    if key not in _COMPLEXITY_CACHE or (not name and (owner is None or owner() is not pristine_space)):
        # CPython reuses the id of a freed object: an id key is only valid while its space lives.
        from ..spaces.validation import has_only_layer_choices
        # Where NNI's profiler cannot trace a general space, each count freezes a subnet (0.2-3 s on NNI's hub
        # spaces): bounds are then estimated from fewer architectures than for LayerChoice spaces.
        limit = 200 if has_only_layer_choices(pristine_space) else 50
        _COMPLEXITY_CACHE[key] = ComplexityModel(pristine_space, shape, self_check_samples=1, freeze_eval_limit=limit)
        if not name:
            _COMPLEXITY_OWNER[key] = weakref.ref(pristine_space)
    return _COMPLEXITY_CACHE[key]


def cluster_labels_for(training: TrainingConfig, space: dict[str, list], shared: set[str], partition: Partition, *,
                       seed: int) -> list[str]:
    """The MS clustering labels: the user's ``training.ms_labels`` or the paper's default choice."""
    excluded = list(split_labels_of(partition))
    if training.ms_labels:
        for label in training.ms_labels:
            if label not in space:
                raise ConfigError("training.ms_labels", label, f"not a label of the space; labels: {', '.join(space)}")
            if label in excluded:
                raise ConfigError("training.ms_labels", label,
                                  "is the few-shot split label: every subnet of a sub-supernet would share one "
                                  "cluster; pick another label")
        return list(training.ms_labels)
    # A label with one value (MobileNetV3Space's fixed width multiplier) would put every subnet in one cluster.
    fixed = [label for label, values in space.items() if len(values) < 2]
    if len(fixed) < len(space):
        excluded += [label for label in fixed if label not in excluded]
    return default_cluster_labels(list(space), shared, seed=seed, count=training.ms_num_labels,
                                  exclude=excluded)


def importance_path_sampler(training: TrainingConfig, space: dict[str, list], shared: set[str], *,
                            seed: int) -> PathSampler:
    """PA's sampler for ``space``; ``shared`` holds the labels carried by several layer choices.

    ``training.pa_shared_across_labels: null`` picks one distribution per op name shared by all
    labels when every label is shared by several modules (a cell space such as NAS-Bench-201,
    as the official code does), else one distribution per label (chain spaces, whose layers
    differ in width; PA&DA released no code for them).
    """
    from .paths.importance import ImportancePathSampler
    from ..data.smoothing import SmoothingSchedule
    shared_mode = training.pa_shared_across_labels
    if shared_mode is None:
        shared_mode = bool(space) and set(space) <= set(shared)
    return ImportancePathSampler(space, seed=seed, shared_across_labels=shared_mode,
                                 delta=SmoothingSchedule(training.pa_delta_schedule, training.pa_delta_max),
                                 reweight=training.importance_reweight)


def build_data_sampler(training: TrainingConfig, num_examples: int, num_replicas: int = 1, rank: int = 0, *,
                       seed: int) -> Any:
    """The data sampler ``training.data_sampler`` over a training set of ``num_examples``."""
    from ..data.samplers import ImportanceDataSampler, UniformDataSampler
    from ..data.smoothing import SmoothingSchedule
    if training.data_sampler == "importance":
        return ImportanceDataSampler(num_examples, seed=seed,
                                     tau=SmoothingSchedule(training.da_tau_schedule, training.da_tau_max),
                                     unseen=training.da_unseen, num_replicas=num_replicas, rank=rank)
    if training.data_sampler == "uniform":
        return UniformDataSampler(num_examples, seed=seed, num_replicas=num_replicas, rank=rank)
    raise ConfigError("training.data_sampler", training.data_sampler, "allowed values: uniform, importance")


def build_engine(training: TrainingConfig, models: Sequence[nn.Module], set_arch: Sequence[Callable[[dict], None]],
                 optimizer: torch.optim.Optimizer, partition: Partition, total_steps: int, shared: set[str],
                 pristine_space: Optional[nn.Module] = None, op_modules: Optional[Sequence[list]] = None,
                 data_sampler: Any = None, criterion: Any = None, *, seed: int) -> SupernetEngine:
    """Build the engine and its components as the ``training`` section says (``seed``: the recipe's seed)."""
    space = partition.space
    base_lr = float(optimizer.param_groups[0]["lr"])

    state_policy: OptimizerStatePolicy
    cluster_labels: list[str] = []
    if training.optimizer_state == "separated":
        cluster_labels = cluster_labels_for(training, space, shared, partition, seed=seed)
        state_policy = SeparatedState(cluster_labels)
    else:
        state_policy = SharedState()

    constraint = None
    if training.sampling_constraint:
        cm = complexity_model_for(pristine_space)
        metric = training.sampling_constraint.get("metric", "params")
        fn = cm.params if metric == "params" else cm.flops
        constraint = (fn, training.sampling_constraint.get("min"), training.sampling_constraint.get("max"))

    path_sampler: PathSampler
    if training.path_sampler == "uniform":
        bins = training.sampling_constraint.get("bins") if training.sampling_constraint else None
        path_sampler = UniformPathSampler(seed=seed, constraint=constraint, bins=bins)
    elif training.path_sampler == "strict_fair":
        path_sampler = StrictFairPathSampler(seed=seed, paths_per_step=training.paths_per_step)
    elif training.path_sampler == "cluster_fair":
        path_sampler = ClusterFairPathSampler(cluster_labels, seed=seed, paths_per_step=training.paths_per_step)
    elif training.path_sampler == "importance":
        path_sampler = importance_path_sampler(training, space, shared, seed=seed)
    else:
        raise ConfigError("training.path_sampler", training.path_sampler, "not available yet")
    if constraint is not None and training.path_sampler != "uniform":
        raise ConfigError("training.sampling_constraint", training.sampling_constraint,
                          "only the uniform path sampler supports a sampling constraint")
    if training.task_batching > 1:
        from .paths import RoundsPathSampler
        path_sampler = RoundsPathSampler(path_sampler, training.task_batching)  # type: ignore[assignment]
    valid = validity_check(pristine_space)
    if valid is not None:
        from .paths import ConstrainedPathSampler
        path_sampler = ConstrainedPathSampler(path_sampler, valid)  # type: ignore[assignment]

    lr_policy: LRPolicy
    if training.lr_policy == "calr":
        cm = complexity_model_for(pristine_space)
        metric = training.complexity_metric
        fn = cm.params if metric == "params" else cm.flops
        lr_policy = ComplexityAwareLR(base_lr, total_steps, fn, cm.bounds(metric), gamma_max=training.gamma_max,
                                      gamma_min=training.gamma_min, floor=training.lr_floor)
    else:
        lr_policy = StaticLR(base_lr, total_steps, training.lr_schedule, power=training.poly_power,
                             lr_min=training.lr_min)

    update_rule: UpdateRule
    if training.update_rule == "gradient":
        update_rule = GradientStep()
    elif training.update_rule == "reptile":
        from .updates.reptile import ReptileStep
        update_rule = ReptileStep(steps=training.reptile_steps, inner_lr=training.inner_lr,
                                  inner_momentum=training.inner_momentum, inner_state=training.inner_state,
                                  inner_batches=training.inner_batches, inner_grad_clip=training.inner_grad_clip)
    else:
        raise ConfigError("training.update_rule", training.update_rule, "not available yet; allowed: gradient, reptile")

    return SupernetEngine(models, set_arch, optimizer, path_sampler, lr_policy, state_policy, update_rule,
                          partition, data_sampler=data_sampler, grad_clip=training.grad_clip, criterion=criterion,
                          skip_nonfinite=training.skip_nonfinite, op_modules=op_modules,
                          unused_grads=training.unused_grads, op_norm_params=training.pa_op_norm)
