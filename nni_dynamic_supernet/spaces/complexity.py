"""Exact parameter counts and FLOPs of the subnets of a search space, and their bounds over the space.

CaLR (complexity-aware LR) needs C(alpha) = the trainable-parameter count of every sampled subnet, and the
bounds C_min / C_max over the *whole* space; searchers with FLOPs or parameter constraints need the same
numbers for FLOPs. :class:`ComplexityModel` answers both for any supported space (every decision a
``LayerChoice``) and records how it got them:

``method`` / ``flops_method`` (how one architecture is measured)
    * ``'profiler'``: NNI's :class:`~nni.nas.profiler.pytorch.flops.FlopsParamsProfiler`, built once on a private
      copy of the pristine space (symbolic shape inference; a query is an expression evaluation, ~0.1 ms).
      It is used only after it agreed exactly with the reference count below on a few random architectures.
    * ``'additive'`` (parameters only): a per-label lookup table, ``base + sum_label table[label][choice]``,
      read off the modules (every LayerChoice carrying the label contributes its candidate's parameters).
      Exact for pure LayerChoice spaces without parameter sharing between candidates; verified the same way.
    * ``'freeze'``: the reference itself: ``space.freeze(arch)``, count ``requires_grad`` parameters and run
      one batch-1 forward with shape hooks to apply NNI's FLOPs formulas to the real shapes. Slow
      (0.1-2 s per new architecture), cached by architecture.

``bounds_method`` (how C_min / C_max were found, per metric)
    * ``'additive'``: the metric is a sum of per-label terms (a table read off the modules, or built from
      one-label-at-a-time differences) and was checked on the extreme and some random architectures; the
      bounds are then exact (per-label min / max).
    * ``'enumeration'``: the space has at most ``enumeration_limit`` (20,000) architectures, all measured.
    * ``'estimated'``: min / max over ``estimate_samples`` (2,000) random architectures, with a warning. Real
      subnets can fall outside such bounds, so callers (e.g. the CaLR schedule) must clamp C(alpha) into
      ``[C_min, C_max]``.

FLOPs follow NNI's counting conventions (multiply-accumulates of conv/linear plus bias, BatchNorm and
activations; pooling and other formula-less leaves count 0) and ignore the batch size.

The model must be built from the **pristine** space, before NNI's one-shot mutation turns it into a
supernet: the profiler cannot trace a supernet, and a failed profiler build leaves forward hooks on the
model it traced. The constructor therefore deep-copies the space and traces only private copies, so the
caller's space is never touched.
"""
from __future__ import annotations

import copy
import itertools
import logging
import time
import warnings
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..arch import random_arch
from ..errors import ConfigError
from ..quiet_logs import install_nni_filters, quiet_nni_import
from .introspection import (arch_for_nni, arch_is_valid, constraints_of, count_architectures, has_only_layer_choices,
                            is_supernet, search_space_of)
from .profiler import hooked_flops, register_nb201_formulas

with quiet_nni_import():
    from nni.nas.nn.pytorch import LayerChoice
    from nni.nas.profiler.pytorch.flops import FlopsParamsProfiler

__all__ = ['ComplexityModel', 'METRICS']

_logger = logging.getLogger(__name__)

METRICS: tuple[str, ...] = ('params', 'flops')
"""Metric names accepted by :meth:`ComplexityModel.measure` and :meth:`ComplexityModel.bounds`."""

Arch = Mapping[str, Any]


class ComplexityModel:
    """Trainable-parameter count and FLOPs of every architecture of a space, plus bounds over the space.

    Build it from the **pristine** space (before ``NasExperiment.run`` / a strategy's ``mutate_model``);
    the constructor deep-copies the space, so the caller may mutate the original afterwards. See the module
    docstring for the methods used and their guarantees.

    Parameters
    ----------
    space
        A pristine NNI ``ModelSpace``.
    input_shape
        Shape of one input without the batch dimension, e.g. ``(3, 32, 32)``. Defaults to the
        ``nds_input_shape`` attribute set by our space factories.
    use_profiler
        Try NNI's ``FlopsParamsProfiler`` first (recommended). ``False`` forces the fallbacks.
    self_check_samples
        Random architectures on which a fast method must match the reference ``freeze`` count exactly.
    seed
        Seed of the private random state used for self-checks and estimated bounds.
    enumeration_limit
        Largest space whose bounds are found by measuring every architecture when they are not additive.
    estimate_samples
        Random architectures measured for estimated bounds.
    freeze_eval_limit
        Most ``freeze`` measurements one bounds computation may spend (they cost 0.1-2 s each), capping the
        enumeration, the additive-table construction and the estimate when no fast method is available.

    Attributes
    ----------
    search_space : dict[str, list]
        ``{label: [choice values]}`` of the space.
    input_shape : tuple[int, ...]
        The input shape used for FLOPs.
    method : str
        How ``params`` are computed: ``'profiler'``, ``'additive'`` or ``'freeze'``.
    flops_method : str
        How ``flops`` are computed: ``'profiler'`` or ``'freeze'``.
    fallback_reason : str or None
        Why the profiler was not used (build error or self-check mismatch), if it was not.
    build_seconds : float
        Time spent in the constructor.

    Examples
    --------
    >>> from nni_dynamic_supernet.spaces import nas_bench_201
    >>> space = nas_bench_201(channels=4, cells_per_stage=1, input_size=8)
    >>> cm = ComplexityModel(space)            # before any supernet mutation
    >>> c_min, c_max = cm.bounds('params')
    >>> from nni_dynamic_supernet.arch import random_arch
    >>> arch = random_arch(cm.search_space, np.random.RandomState(0))
    >>> c_min <= cm.params(arch) <= c_max
    True
    """

    def __init__(self, space: nn.Module, input_shape: Sequence[int] | None = None, *, use_profiler: bool = True,
                 self_check_samples: int = 3, seed: int = 0, enumeration_limit: int = 20_000,
                 estimate_samples: int = 2_000, freeze_eval_limit: int = 200) -> None:
        start = time.perf_counter()
        register_nb201_formulas()
        install_nni_filters()  # the profiler's "Parameters and FLOPs of Identity is not counted" lines
        if is_supernet(space):
            raise ConfigError('space', type(space).__name__,
                              'build ComplexityModel from the pristine space, before NNI mutates it into a supernet')
        if input_shape is None:
            input_shape = getattr(space, 'nds_input_shape', None)
        if input_shape is None or isinstance(input_shape, (str, bytes)) or not all(
                isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in input_shape):
            raise ConfigError('input_shape', input_shape, 'pass the input shape without batch, e.g. (3, 32, 32)')
        self.input_shape: tuple[int, ...] = tuple(int(d) for d in input_shape)
        self.search_space: dict[str, list] = search_space_of(space)
        self._labels: tuple[str, ...] = tuple(self.search_space)
        self._value_sets = {label: set(values) for label, values in self.search_space.items()}
        self._enumeration_limit = int(enumeration_limit)
        self._estimate_samples = int(estimate_samples)
        self._freeze_eval_limit = int(freeze_eval_limit)
        self._rng = np.random.RandomState(seed)

        # Our private pristine copy: every freeze and trace below works on it (or on copies of it), so the
        # caller's space is never hooked, re-moded or shared with frozen models.
        self._space = copy.deepcopy(space).to('cpu')
        self._cache: dict[str, dict[tuple, int]] = {m: {} for m in METRICS}
        self._references: dict[tuple, tuple[int, int | None]] = {}
        self._profiler: FlopsParamsProfiler | None = None
        self._param_table = self._structural_param_table()
        self._bounds: dict[str, tuple[float, float]] = {}
        self._bounds_archs: dict[str, tuple[dict, dict]] = {}
        self.bounds_methods: dict[str, str] = {}
        self.fallback_reason: str | None = None
        self.method = 'freeze'
        self.flops_method = 'freeze'

        # A constrained space (NAS-Bench-101) freezes only valid architectures: draw those, and find bounds by sampling.
        self._constrained = bool(constraints_of(self._space))
        checks = [self._random_arch() for _ in range(max(0, self_check_samples))]
        if use_profiler:
            self._try_profiler(checks)
        else:
            self.fallback_reason = 'profiler disabled (use_profiler=False)'
        if self.method == 'freeze' and self._param_table is not None:
            if all(self._table_value(self._param_table, a) == self._reference(a, flops=False)[0] for a in checks):
                self.method = 'additive'
            else:
                self._param_table = None
        self.build_seconds = time.perf_counter() - start
        _logger.debug('ComplexityModel: params via %s, FLOPs via %s (%.2f s)%s', self.method, self.flops_method,
                      self.build_seconds, f'; profiler rejected: {self.fallback_reason}' if self.fallback_reason else '')
        if 'freeze' in (self.method, self.flops_method):
            # What the fallback costs a user: every subnet whose size is needed is built once (slower, still exact).
            _logger.info('subnet sizes: NNI\'s profiler cannot count this space (%s); each subnet is built once '
                         'to count its %s', self.fallback_reason or 'no profiler',
                         'parameters and FLOPs' if self.method == self.flops_method else
                         ('parameters' if self.method == 'freeze' else 'FLOPs'))

    # ---------------------------------------------------------------------------------------------- queries

    def params(self, arch: Arch) -> int:
        """Return the number of trainable parameters of the subnet ``arch``.

        Parameters
        ----------
        arch
            ``{label: choice value}`` with every label of the space (extra keys are ignored).

        Returns
        -------
        int
            Exactly ``sum(p.numel() for p in space.freeze(arch).parameters() if p.requires_grad)``.
        """
        return self.measure(arch, 'params')

    def flops(self, arch: Arch) -> int:
        """Return the FLOPs of the subnet ``arch`` for one input of ``input_shape`` (NNI's conventions).

        Parameters
        ----------
        arch
            ``{label: choice value}`` with every label of the space (extra keys are ignored).

        Returns
        -------
        int
            FLOPs (multiply-accumulates of conv/linear, plus bias, BatchNorm and activation operations).
        """
        return self.measure(arch, 'flops')

    def measure(self, arch: Arch, metric: str = 'params') -> int:
        """Return ``metric`` (``'params'`` or ``'flops'``) of ``arch``, cached by architecture.

        Parameters
        ----------
        arch
            ``{label: choice value}`` with every label of the space.
        metric
            One of :data:`METRICS`.

        Returns
        -------
        int
            The metric's value.

        Raises
        ------
        ConfigError
            If ``metric`` is unknown, or ``arch`` misses a label or has a value outside its choices.
        """
        self._check_metric(metric)
        key = self._key(arch)
        cache = self._cache[metric]
        value = cache.get(key)
        if value is None:
            value = self._compute(key, metric)
            cache[key] = value
        return value

    def bounds(self, metric: str = 'params') -> tuple[float, float]:
        """Return ``(C_min, C_max)`` of ``metric`` over the whole search space (computed once, then cached).

        How they were found is recorded in :attr:`bounds_methods` (``'additive'`` and ``'enumeration'`` are
        exact; ``'estimated'`` comes from random samples and warns, so callers must clamp values into the
        range).

        Parameters
        ----------
        metric
            ``'params'`` (the CaLR complexity) or ``'flops'``.

        Returns
        -------
        tuple[float, float]
            The minimum and the maximum.
        """
        self._check_metric(metric)
        if metric not in self._bounds:
            self._compute_bounds(metric)
        return self._bounds[metric]

    def extreme_archs(self, metric: str = 'params') -> tuple[dict[str, Any], dict[str, Any]]:
        """Return architectures attaining the lower and upper :meth:`bounds` of ``metric``.

        Ties are broken towards the earliest choice of each label (e.g. NAS-Bench-201's all-``none``).

        Parameters
        ----------
        metric
            ``'params'`` or ``'flops'``.

        Returns
        -------
        tuple[dict, dict]
            ``(arch_min, arch_max)``.
        """
        self.bounds(metric)
        arch_min, arch_max = self._bounds_archs[metric]
        return dict(arch_min), dict(arch_max)

    @property
    def bounds_method(self) -> str:
        """How the parameter bounds were found: ``'additive'``, ``'enumeration'`` or ``'estimated'``."""
        self.bounds('params')
        return self.bounds_methods['params']

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(labels={len(self._labels)}, archs={count_architectures(self.search_space)}, '
                f'method={self.method!r}, flops_method={self.flops_method!r})')

    # ---------------------------------------------------------------------------------------------- internals

    def _check_metric(self, metric: str) -> None:
        if metric not in METRICS:
            raise ConfigError('metric', metric, f'use one of {list(METRICS)}')

    def _key(self, arch: Arch) -> tuple:
        """Validate ``arch`` and turn it into a hashable cache key (values in label order)."""
        try:
            key = tuple(arch[label] for label in self._labels)
        except KeyError as exc:
            raise ConfigError('arch', exc.args[0], f'missing label; give a choice for each of {list(self._labels)}') from None
        except TypeError:
            raise ConfigError('arch', arch, 'pass a dict {label: choice}') from None
        for label, value in zip(self._labels, key):
            if value not in self._value_sets[label]:
                raise ConfigError(f'arch[{label!r}]', value, f'use one of {self.search_space[label]}')
        return key

    def _arch(self, key: tuple) -> dict[str, Any]:
        return dict(zip(self._labels, key))

    def _is_fast(self, metric: str) -> bool:
        return (self.method if metric == 'params' else self.flops_method) != 'freeze'

    def _compute(self, key: tuple, metric: str) -> int:
        method = self.method if metric == 'params' else self.flops_method
        if method == 'profiler':
            assert self._profiler is not None
            expr = self._profiler.flops_result.params if metric == 'params' else self._profiler.flops_result.flops
            value = expr.freeze(arch_for_nni(self._arch(key))) if hasattr(expr, 'freeze') else expr
            return int(round(float(value)))
        if method == 'additive':
            assert self._param_table is not None
            return self._table_value(self._param_table, self._arch(key))
        params, flops = self._reference(self._arch(key), flops=metric == 'flops')
        return params if metric == 'params' else int(flops)  # type: ignore[arg-type]

    def _reference(self, arch: Arch, flops: bool = True) -> tuple[int, int | None]:
        """Ground truth for one architecture: (trainable params, FLOPs) of ``freeze(arch)``, cached.

        FLOPs need a forward pass, so they are computed only when asked for (``flops=True``). ``freeze`` shares
        the chosen op modules with our private copy; that is harmless here because counting changes no weight
        or BN statistic (eval mode, no grad) and the copy is never trained, so no extra deep copy is needed.
        """
        key = self._key(arch)
        entry = self._references.get(key)
        if entry is None or (flops and entry[1] is None):
            model = self._space.freeze(arch_for_nni(self._arch(key)))
            params = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
            entry = (params, hooked_flops(model, self.input_shape) if flops else None)
            self._references[key] = entry
        return entry

    def _try_profiler(self, checks: list[dict]) -> None:
        """Build NNI's profiler on a throw-away copy and adopt it per metric if it matches the reference."""
        # Eval mode: a batch-1 trace through BatchNorm at 1x1 resolution fails in training mode.
        traced = copy.deepcopy(self._space).eval()
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter('ignore')
                profiler = FlopsParamsProfiler(traced, torch.zeros(1, *self.input_shape))
        except Exception as exc:  # noqa: BLE001 - any trace failure means "fall back"
            # The failed build may have left forward hooks on ``traced``; dropping the copy drops them.
            self.fallback_reason = f'profiler build failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}'
            return
        finally:
            del traced
        self._profiler = profiler
        self.method, self.flops_method = 'profiler', 'profiler'
        for arch in checks:
            params, flops = self._reference(arch)
            if self.method == 'profiler' and self._compute(self._key(arch), 'params') != params:
                self.method = 'freeze'
                self.fallback_reason = f'profiler params mismatch on {arch}'
            if self.flops_method == 'profiler' and self._compute(self._key(arch), 'flops') != flops:
                self.flops_method = 'freeze'
                self.fallback_reason = (self.fallback_reason or '') + f' profiler FLOPs mismatch on {arch}'
            # The reference numbers are exact: seed the caches with them.
            self._cache['params'][self._key(arch)] = params
            self._cache['flops'][self._key(arch)] = flops
        if self.method != 'profiler' and self.flops_method != 'profiler':
            self._profiler = None

    def _structural_param_table(self) -> tuple[int, dict[str, dict[Any, int]]] | None:
        """Read ``(base, {label: {choice: params}})`` off the modules, or None when params are not additive.

        Not additive when a LayerChoice sits inside another one's candidate, when a parameter is shared by
        two candidates, or when the space has decisions other than LayerChoices.
        """
        if not has_only_layer_choices(self._space):
            return None
        choices = [(name, m) for name, m in self._space.named_modules() if isinstance(m, LayerChoice)]
        names = [name for name, _ in choices]
        if any(other.startswith(name + '.') for name in names for other in names):
            return None
        table: dict[str, dict[Any, int]] = {label: {v: 0 for v in values} for label, values in self.search_space.items()}
        in_choice: set[int] = set()
        for _, layer in choices:
            for value in layer.names:
                for p in layer[value].parameters():
                    if id(p) in in_choice:
                        return None
                    in_choice.add(id(p))
                    if p.requires_grad:
                        table[layer.label][value] += p.numel()
        base = sum(p.numel() for p in self._space.parameters() if p.requires_grad and id(p) not in in_choice)
        return int(base), table

    @staticmethod
    def _table_value(table: tuple[int, dict[str, dict[Any, int]]], arch: Arch) -> int:
        base, per_label = table
        return base + sum(per_label[label][arch[label]] for label in per_label)

    def _difference_table(self, metric: str) -> tuple[int, dict[str, dict[Any, int]]] | None:
        """Build an additive table from one-label-at-a-time changes of a reference architecture.

        Costs ``1 + sum(|choices| - 1)`` measurements; skipped (None) when that exceeds the freeze budget for a
        slow metric.
        """
        needed = 1 + sum(len(v) - 1 for v in self.search_space.values())
        if not self._is_fast(metric) and needed > self._freeze_eval_limit:
            return None
        ref = {label: values[0] for label, values in self.search_space.items()}
        base = self.measure(ref, metric)
        table: dict[str, dict[Any, int]] = {}
        for label, values in self.search_space.items():
            table[label] = {values[0]: 0}
            for value in values[1:]:
                table[label][value] = self.measure({**ref, label: value}, metric) - base
        return base, table

    def _random_arch(self) -> dict[str, Any]:
        """A uniformly random architecture, valid under the space's constraints (rejection sampling)."""
        while True:
            arch = random_arch(self.search_space, self._rng)
            if not self._constrained or arch_is_valid(self._space, arch):
                return arch

    def _compute_bounds(self, metric: str) -> None:
        if self._constrained:
            # Neither a per-label table nor an enumeration can skip the invalid architectures: estimate.
            n = self._estimate_samples if self._is_fast(metric) else min(self._estimate_samples, self._freeze_eval_limit)
            lo, hi, a_lo, a_hi = self._min_max((self._random_arch() for _ in range(max(1, n))), metric)
            self._set_bounds(metric, 'estimated', lo, hi, a_lo, a_hi)
            return

        def additive_tables() -> Any:
            # Lazily: the module-derived parameter table is free, the difference table costs measurements.
            if metric == 'params':
                table = self._param_table if self._param_table is not None else self._structural_param_table()
                if table is not None:
                    yield table
            table = self._difference_table(metric)
            if table is not None:
                yield table

        for table in additive_tables():
            result = self._verified_additive_bounds(table, metric)
            if result is not None:
                self._set_bounds(metric, 'additive', *result)
                return

        total = count_architectures(self.search_space)
        budget = self._enumeration_limit if self._is_fast(metric) else min(self._enumeration_limit, self._freeze_eval_limit)
        if total <= budget:
            archs = (dict(zip(self._labels, values)) for values in itertools.product(*self.search_space.values()))
            self._set_bounds(metric, 'enumeration', *self._min_max(archs, metric))
            return
        n = self._estimate_samples if self._is_fast(metric) else min(self._estimate_samples, self._freeze_eval_limit)
        archs = (self._random_arch() for _ in range(max(1, n)))
        lo, hi, a_lo, a_hi = self._min_max(archs, metric)
        warnings.warn(f'{metric} bounds of this space are estimated from {n} random architectures '
                      f'({lo:.0f}..{hi:.0f}); subnets outside are clamped by the callers', RuntimeWarning, stacklevel=3)
        self._set_bounds(metric, 'estimated', lo, hi, a_lo, a_hi)

    def _verified_additive_bounds(self, table: tuple[int, dict[str, dict[Any, int]]],
                                  metric: str) -> tuple[float, float, dict, dict] | None:
        """Per-label min/max of an additive ``table`` if it predicts the metric on extremes and random archs."""
        _, per_label = table
        arch_min = {label: min(self.search_space[label], key=lambda v: per_label[label][v]) for label in self._labels}
        arch_max = {label: max(self.search_space[label], key=lambda v: per_label[label][v]) for label in self._labels}
        n_random = 16 if self._is_fast(metric) else 2
        probes = [arch_min, arch_max] + [self._random_arch() for _ in range(n_random)]
        if any(self._table_value(table, a) != self.measure(a, metric) for a in probes):
            return None
        return float(self.measure(arch_min, metric)), float(self.measure(arch_max, metric)), arch_min, arch_max

    def _min_max(self, archs: Any, metric: str) -> tuple[float, float, dict, dict]:
        lo = hi = None
        a_lo = a_hi = None
        for arch in archs:
            value = self.measure(arch, metric)
            if lo is None or value < lo:
                lo, a_lo = value, arch
            if hi is None or value > hi:
                hi, a_hi = value, arch
        return float(lo), float(hi), a_lo, a_hi  # type: ignore[arg-type]

    def _set_bounds(self, metric: str, how: str, lo: float, hi: float, a_lo: dict, a_hi: dict) -> None:
        self._bounds[metric] = (float(lo), float(hi))
        self._bounds_archs[metric] = (dict(a_lo), dict(a_hi))
        self.bounds_methods[metric] = how
