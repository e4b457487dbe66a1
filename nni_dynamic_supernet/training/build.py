"""Assemble a :class:`SupernetEngine` from a recipe's ``training`` section, through the component registries.

This is the one place where component *names* in the recipe become component *objects*; the
step itself never branches on a method name, and neither does this module: each name is looked
up in its registry (:mod:`nni_dynamic_supernet.components`), whose entry builds the component
from its own options. Each builder takes the typed section it reads
(:class:`~nni_dynamic_supernet.recipe.TrainingConfig`) and the recipe's ``seed``, never the
whole recipe.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch
import torch.nn as nn

from ..components import LR_POLICIES, OPTIMIZER_STATES, PARTITIONERS, PATH_SAMPLERS, UPDATE_RULES
from ..recipe import TrainingConfig
from ..spaces.introspection import search_space_of_model
from ..spaces.measures import validity_check
from .context import EngineContext
from .engine import SupernetEngine
from .partition.partitioners import Partition, PartitionContext
from .paths.samplers import ConstrainedPathSampler, RoundsPathSampler

__all__ = ["build_engine", "partition_for", "check_techniques"]


def check_techniques(training: TrainingConfig, model: nn.Module) -> None:
    """Refuse, before training, a ``training`` technique that cannot apply to ``model``'s space (one line, naming the label).

    Each chosen partitioner and optimizer-state component checks the built space itself (its
    ``check_space`` hook): GM-NAS needs labels whose choices own weights, few-shot NAS and MS
    labels must be labels of the space.

    Parameters
    ----------
    training
        The recipe's ``training`` section.
    model
        The supernet (or the space it was made from).

    Raises
    ------
    ConfigError
        The first technique that cannot apply.
    """
    space = search_space_of_model(model)
    for registry, name in ((PARTITIONERS, training.partition), (OPTIMIZER_STATES, training.optimizer_state)):
        entry = registry.get(name)
        check = entry.hooks.get("check_space")
        if check is not None:
            check(entry.options_from(training), training, model, space)


def partition_for(training: TrainingConfig, model: nn.Module, *, seed: int) -> Partition:
    """The partitioner ``training.partition`` over ``model``'s search space.

    Parameters
    ----------
    training
        The recipe's ``training`` section.
    model
        The supernet.
    seed
        The recipe's seed.

    Returns
    -------
    Partition
    """
    context = PartitionContext(search_space_of_model(model), model, seed, training.epochs)
    return PARTITIONERS.build(training.partition, training, context)


def build_engine(training: TrainingConfig, models: Sequence[nn.Module], set_arch: Sequence[Callable[[dict], None]],
                 optimizer: torch.optim.Optimizer, partition: Partition, total_steps: int, shared: set[str],
                 pristine_space: Optional[nn.Module] = None, op_modules: Optional[Sequence[list]] = None,
                 data_sampler: Any = None, criterion: Any = None, *, seed: int) -> SupernetEngine:
    """Build the engine and its components as the ``training`` section says (``seed``: the recipe's seed).

    The components are built in a fixed order: optimizer state (MS picks its clustering
    labels), path sampler (a cluster-fair sampler reads them), LR policy, update rule.
    ``training.task_batching`` and a constrained space wrap whatever path sampler was built.

    Parameters
    ----------
    training
        The recipe's ``training`` section.
    models
        One supernet per partition slot.
    set_arch
        Per model, the function that makes it run an architecture.
    optimizer
        The torch optimizer over every model's parameters.
    partition
        The partition (:func:`partition_for`).
    total_steps
        Optimizer steps of the whole run.
    shared
        Labels carried by more than one supernet module.
    pristine_space
        The un-mutated space (parameter/FLOPs counting), or ``None``.
    op_modules
        Per model, ``(label, choice, module)`` of every candidate op.
    data_sampler
        The training loader's data sampler, or ``None``.
    criterion
        The loss (default: cross-entropy).
    seed
        The recipe's seed.

    Returns
    -------
    SupernetEngine
    """
    context = EngineContext(training, seed, partition.space, shared, partition,
                            float(optimizer.param_groups[0]["lr"]), total_steps, pristine_space)
    state_policy = OPTIMIZER_STATES.build(training.optimizer_state, training, context)
    context.cluster_labels = list(getattr(state_policy, "labels", []))
    path_sampler = PATH_SAMPLERS.build(training.path_sampler, training, context)
    if training.task_batching > 1:
        path_sampler = RoundsPathSampler(path_sampler, training.task_batching)
    valid = validity_check(pristine_space)
    if valid is not None:
        path_sampler = ConstrainedPathSampler(path_sampler, valid)
    lr_policy = LR_POLICIES.build(training.lr_policy, training, context)
    update_rule = UPDATE_RULES.build(training.update_rule, training, context)
    return SupernetEngine(models, set_arch, optimizer, path_sampler, lr_policy, state_policy, update_rule,
                          partition, data_sampler=data_sampler, grad_clip=training.grad_clip, criterion=criterion,
                          skip_nonfinite=training.skip_nonfinite, op_modules=op_modules,
                          unused_grads=training.unused_grads, op_norm_params=training.pa_op_norm)
