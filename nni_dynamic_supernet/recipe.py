"""The Recipe: one validated, typed description of a supernet run.

Every stage (space, data, training, search, ranking, report) reads only the
:class:`Recipe`. A recipe is built from

1. the dataclass defaults below,
2. the named strategy preset (``strategy: spos_calr_ms`` fills the ``training``
   component fields; see :mod:`nni_dynamic_supernet.strategies`),
3. a YAML template,
4. overrides as dotted keys (``training.lr``, ``search.population``), which is also how
   the parameters sent by an NNI tuner and ``nds train --set key=value`` arrive.

Later sources win. Every invalid value raises :class:`~nni_dynamic_supernet.errors.ConfigError`
with one line naming the field, the value and what is allowed.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Union, get_args, get_origin, get_type_hints


from .errors import ConfigError

__all__ = [
    "SpaceConfig", "DataConfig", "TrainingConfig", "SearchConfig", "RankingConfig", "OutputConfig",
    "Recipe", "load_recipe", "parse_override",
]


@dataclass
class SpaceConfig:
    """Which search space to build: a registered name plus its keyword arguments."""

    name: str = "nas_bench_201"
    kwargs: dict = field(default_factory=dict)


@dataclass
class DataConfig:
    """Where the data comes from and how it is batched."""

    name: str = "digits_hard"
    root: Optional[str] = None
    download: bool = False
    val_fraction: float = 0.1
    train_subset: Optional[int] = None
    augment: bool = False
    batch_size: int = 64
    eval_batch_size: int = 256
    num_workers: int = 0
    # Page-locked host batches copied with non_blocking=True; null: on when training on CUDA.
    pin_memory: Optional[bool] = None
    # Keep the whole training split on the training device as tensors and batch it there (small sets:
    # digits, CIFAR-10); no loader, no host-to-device copy per step. Not with data.augment or several processes.
    on_device: bool = False
    # A relabelled view of the dataset: class c becomes label_map[c] (e.g. digit parity), in every split.
    label_map: Optional[list] = None


@dataclass
class TrainingConfig:
    """Supernet training: optimizer hyperparameters plus the components of the step.

    The component fields (``path_sampler`` ... ``partition``) are normally filled by the
    strategy preset; setting them explicitly overrides the preset.
    """

    epochs: int = 30
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    optimizer: str = "sgd"
    grad_clip: Optional[float] = 5.0
    max_steps_per_epoch: Optional[int] = None
    # components
    path_sampler: str = "uniform"
    paths_per_step: Optional[int] = None
    sampling_constraint: Optional[dict] = None
    lr_schedule: str = "cosine"
    poly_power: float = 1.0
    lr_min: float = 0.0
    lr_policy: str = "static"
    gamma_max: float = 4.0
    gamma_min: Optional[float] = None
    lr_floor: float = 0.0
    complexity_metric: str = "params"
    optimizer_state: str = "shared"
    ms_labels: Optional[list] = None
    ms_num_labels: int = 1
    update_rule: str = "gradient"
    # Reptile (SUMNAS) update rule; ignored by the gradient rule. See training/updates/reptile.py.
    reptile_steps: int = 4
    inner_lr: Optional[float] = None  # None: 0.05 * 4 / reptile_steps (SUMNAS Table 6 and Appendix D)
    inner_momentum: float = 0.9
    inner_state: str = "reset"
    inner_batches: str = "same"
    inner_grad_clip: Optional[float] = 5.0
    task_batching: int = 1  # strict-fair rounds (sub-models per op) per step; SUMNAS ImageNet uses 3
    partition: str = "none"
    split_label: Optional[str] = None  # few-shot (exhaustive) split label; None: the first label
    # GM-NAS (partition: gradient_matching); see training/partition/.
    split_epochs: Optional[list] = None  # epochs after which each level splits; None: evenly spaced (60 -> 20, 40)
    split_branching: list = field(default_factory=lambda: [2, 2])  # groups per split, one per level
    gm_batches: int = 100  # batches (each with a fresh context path) averaged by the gradient-matching score
    gm_edge_rule: str = "max_cut"  # max_cut (NB201 code), min_within (DARTS/Proxyless code), random (ablation)
    gm_restart: str = "final"  # final: leaves of the last split restart from the initial weights; none: inherit
    gm_labels: Optional[list] = None  # candidate labels to split; None: all
    gm_fix_schedule: bool = False  # shorthand for gm_restart_schedule: stretched (the official fix_sche=1)
    # LR schedule of leaves restarted at the final split: fresh (official fix_sche=0, default unless gm_fix_schedule),
    # stretched (fix_sche=1: over the steps left) or continue (the global schedule carries on; no official mode).
    gm_restart_schedule: Optional[str] = None
    # With sub-supernets: per_leaf (every leaf trains on every step: each gets the whole phase, as the GM-NAS and
    # few-shot NAS code train each sub-supernet separately; costs more) or shared (one leaf per step: equal compute).
    partition_budget: str = "per_leaf"
    # Importance sampling of paths (PA) and data (DA) of PA&DA; see training/paths/importance.py, data/samplers.py.
    data_sampler: str = "uniform"
    pa_delta_schedule: str = "linear"
    pa_delta_max: float = 1.0
    pa_shared_across_labels: Optional[bool] = None  # None: shared for cell spaces, per label for chain spaces
    importance_reweight: bool = False
    da_tau_schedule: str = "linear"
    da_tau_max: float = 1.0
    da_unseen: str = "zero"  # zero: an example not drawn in an epoch scores 0 (paper, code); keep: its last score
    pa_op_norm: str = "conv"  # PA's op norm over conv weights (+ bias) as the official code; all: BN affine too
    # none: an op off the path has no gradient (SPOS code); zero: zero gradients, so weight decay and momentum move
    # it every step (DYNAS code under PyTorch 1.8; the CaLR / MS presets).
    unused_grads: str = "none"
    checkpoint_every_n_epochs: int = 1
    num_threads: Optional[int] = None
    # Drop a step whose gradients are NaN/inf instead of stopping the run (the default stops it).
    skip_nonfinite: bool = False
    # Lightning devices per node and nodes; more than one process trains with DDP (gloo on CPU, NCCL on GPU).
    # data.batch_size stays the global batch: each process gets batch_size / (devices * num_nodes) examples.
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    # Lightning precision: 32 (float32), bf16 (bfloat16 autocast; also on CPU) or 16 (float16 autocast with a
    # GradScaler; CUDA only). Weights, optimizer states and the update stay float32 in every mode.
    precision: str = "32"
    # Inputs and convolution weights in NHWC memory format (faster convolutions on tensor-core GPUs).
    channels_last: bool = False
    # Under multi-GPU DDP, BatchNorm layers become SyncBatchNorm: statistics over the global batch, as one
    # process on the whole batch computes them (false: per-GPU statistics). No effect on CPU or one device.
    sync_batchnorm: bool = True


@dataclass
class SearchConfig:
    """How subnets are evaluated and which searcher looks for the best one."""

    searcher: str = "evolution"
    max_evaluations: Optional[int] = 500
    max_seconds: Optional[float] = None
    population: int = 50
    generations: int = 20
    select_num: int = 10
    mutation_num: int = 25
    crossover_num: int = 25
    mutation_prob: float = 0.1
    constraint_metric: str = "params"
    constraint_min: Optional[float] = None
    constraint_max: Optional[float] = None
    bn_mode: str = "recalibrate"
    bn_batches: int = 4
    top_k: int = 10
    # Supernet shifting (searcher: shifted_evolution; search/shifting.py). The paper's
    # loss uses 640 samples per candidate (e.g. 20 x 32); the official code 20 x 150.
    shift_lr: float = 1e-4
    shift_momentum: float = 0.9
    shift_weight_decay: float = 4e-5
    shift_iters: int = 20
    shift_batch_size: int = 32
    shift_update: str = "per_generation"
    shift_order: str = "evaluate_first"
    shift_label_smoothing: float = 0.1
    shift_reevaluate_parents: bool = False  # re-score parents each generation (not in the paper or code)
    # shift: the candidate's train-mode shifting passes are its BN recalibration (official tester); recalibrate:
    # a separate recalibration on search.bn_batches per evaluation, BN restored after each shift.
    shift_bn: str = "shift"
    shift_final_reevaluate: int = 10
    save_shifted: bool = True
    # Transfer (with shifted_evolution): a data section for the target dataset; missing fields come from `data`.
    transfer_to: Optional[dict] = None
    freeze_features: bool = False
    transfer_head_lr: Optional[float] = None  # None: shift_lr for the new head too (the paper)
    # NSGA-II (searcher: nsga2): accuracy against params and/or flops.
    objectives: list = field(default_factory=lambda: ["accuracy", "params"])
    # Diagnostics: architectures (half top by ground truth, half random) re-scored after every generation.
    track_archs: int = 0
    # With several sub-supernets: how the final architecture is chosen across leaves (search/leaf_selection.py).
    leaf_selection: str = "best_arch"
    leaf_probe_archs: int = 20  # random archs per leaf whose mean validation loss ranks leaves (val_loss)
    halving_epochs: int = 1  # stand-alone epochs of the first successive-halving round, doubled each round


@dataclass
class RankingConfig:
    """Ground truth and the metric reported as NNI's ``default``.

    ``ground_truth`` is ``"auto"`` (the embedded table of the run's dataset when the run
    matches it: ``v1`` for ``digits_hard``, ``v2_26`` for ``digits_hard_v2``), ``"v1"`` / ``"v2"`` /
    ``"v2_26"`` (a named embedded table), a path to a
    ground-truth JSON table, ``"nasbench201"`` (NNI's database) or ``None``.
    """

    ground_truth: Optional[str] = "auto"
    headline: str = "kendall_tau"
    n_bins: int = 400
    probe_archs: int = 24
    probe_every: int = 1
    # Rank the table by parameter count, FLOPs and zero-cost proxies too (ranking.baselines in results.json).
    baselines: bool = True


@dataclass
class OutputConfig:
    """What a run writes besides results.json.

    ``tensorboard``: Lightning's TensorBoard log in ``OUT/tensorboard`` (per-epoch scalars,
    then the figures and final metrics); ``plots``: the registered PNG figures beside
    results.json; ``diagnostics``: the gradient / momentum / CaLR diagnostics; ``progress``:
    force progress bars on even when stderr is not a terminal (bars show on a terminal
    anyway, and never in an nnictl trial).
    """

    tensorboard: bool = True
    plots: bool = True
    diagnostics: bool = True
    progress: bool = False


_SECTIONS = {
    "space": SpaceConfig, "data": DataConfig, "training": TrainingConfig,
    "search": SearchConfig, "ranking": RankingConfig, "output": OutputConfig,
}

_CHOICES: dict[str, tuple] = {
    "training.optimizer": ("sgd", "adam", "adamw", "rmsprop"),
    "training.accelerator": ("auto", "cpu", "gpu", "cuda"),
    "training.precision": ("32", "bf16", "16"),
    "training.path_sampler": ("uniform", "strict_fair", "cluster_fair", "importance"),
    "training.lr_schedule": ("cosine", "poly", "constant"),
    "training.lr_policy": ("static", "calr"),
    "training.complexity_metric": ("params", "flops"),
    "training.optimizer_state": ("shared", "separated"),
    "training.update_rule": ("gradient", "reptile"),
    "training.partition": ("none", "exhaustive", "gradient_matching"),
    "training.gm_edge_rule": ("max_cut", "min_within", "random"),
    "training.gm_restart": ("final", "none"),
    "search.leaf_selection": ("best_arch", "val_loss", "successive_halving"),
    "training.data_sampler": ("uniform", "importance"),
    "training.pa_delta_schedule": ("linear", "decreasing", "constant"),
    "training.da_tau_schedule": ("linear", "decreasing", "constant"),
    "training.da_unseen": ("keep", "zero"),
    "training.pa_op_norm": ("conv", "all"),
    "training.unused_grads": ("none", "zero"),
    "training.partition_budget": ("per_leaf", "shared"),
    "search.shift_bn": ("shift", "recalibrate"),
    "search.searcher": ("evolution", "random", "exhaustive", "shifted_evolution", "nsga2"),
    "search.shift_update": ("per_generation", "per_candidate"),
    "search.shift_order": ("evaluate_first", "train_first"),
    "search.constraint_metric": ("params", "flops"),
    "search.bn_mode": ("recalibrate", "inherit"),
    "ranking.headline": ("kendall_tau", "spearman", "p_at_top5", "kendall_tau_stratified", "best_accuracy"),
}

_POSITIVE_INT = {
    "data.batch_size", "data.eval_batch_size", "training.epochs", "search.population", "search.generations",
    "search.select_num", "search.top_k", "ranking.n_bins", "training.ms_num_labels",
    "training.checkpoint_every_n_epochs", "ranking.probe_every", "search.shift_iters", "search.shift_batch_size",
    "training.devices", "training.num_nodes",
    "training.gm_batches", "search.leaf_probe_archs", "search.halving_epochs",
}
_NON_NEGATIVE = {
    "training.momentum", "training.weight_decay", "training.lr_floor", "training.lr_min",
    "search.mutation_num", "search.crossover_num", "search.bn_batches", "data.num_workers",
    "ranking.probe_archs", "search.shift_lr", "search.shift_weight_decay", "search.shift_final_reevaluate",
    "search.track_archs",
}
_POSITIVE = {"training.lr", "training.gamma_max", "training.poly_power"}


@dataclass
class Recipe:
    """A complete, validated supernet run: strategy, seed and one config per stage."""

    strategy: str = "spos"
    seed: int = 0
    space: SpaceConfig = field(default_factory=SpaceConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None) -> "Recipe":
        """Build a recipe from a nested mapping plus dotted-key overrides, then validate it.

        The strategy preset is applied between the defaults and the user's values, so
        explicit component fields in ``raw`` or ``overrides`` win over the preset.
        """
        raw = dict(raw or {})
        flat: dict[str, Any] = {}
        _flatten(raw, "", flat)
        for key, value in (overrides or {}).items():
            flat[str(key)] = value
        unknown = sorted(k for k in flat if k.split(".")[0] not in {*_SECTIONS, "strategy", "seed"})
        if unknown:
            # Echo the key as typed (`trainng.epochs=5`), not just its first part.
            name = unknown[0]
            raise ConfigError(name, flat[name], f"unknown {'section' if '.' in name else 'key'} "
                              f"{name.split('.')[0]!r}; allowed top-level keys: "
                              f"{', '.join(['strategy', 'seed', *_SECTIONS])}")
        recipe = cls()
        strategy = flat.pop("strategy", recipe.strategy)
        if not isinstance(strategy, str):
            raise ConfigError("strategy", strategy, "must be a strategy name string")
        from .catalog import get_preset
        preset = get_preset(strategy)
        recipe.strategy = strategy
        for key, value in preset.settings.items():
            recipe._set(key, value, source="preset " + strategy)
        for key, value in flat.items():
            recipe._set(key, value)
        recipe.validate()
        return recipe

    def _set(self, dotted: str, value: Any, source: str = "") -> None:
        parts = dotted.split(".")
        if len(parts) == 1:
            if parts[0] != "seed":
                raise ConfigError(dotted, value, "unknown key")
            self.seed = _coerce("seed", value, int)
            return
        section_name, *rest = parts
        section = getattr(self, section_name, None)
        if section is None or section_name not in _SECTIONS:
            raise ConfigError(dotted, value, f"unknown section; allowed: {', '.join(_SECTIONS)}")
        if section_name == "space" and rest and rest[0] == "kwargs" and len(rest) == 2:
            section.kwargs[rest[1]] = value
            return
        if len(rest) != 1:
            raise ConfigError(dotted, value, "nested keys are only allowed under space.kwargs")
        name = rest[0]
        if dotted == "training.precision" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # YAML reads `precision: 16` as a number
        hints = get_type_hints(type(section))
        if name not in hints:
            allowed = ", ".join(f.name for f in dataclasses.fields(section))
            raise ConfigError(dotted, value, f"unknown field{' in ' + source if source else ''}; allowed: {allowed}")
        setattr(section, name, _coerce(dotted, value, hints[name]))

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every field and every cross-field rule; raise ConfigError on the first problem."""
        for dotted, allowed in _CHOICES.items():
            value = self.get(dotted)
            if value not in allowed:
                raise ConfigError(dotted, value, f"allowed values: {', '.join(allowed)}")
        for dotted in _POSITIVE_INT:
            value = self.get(dotted)
            if value <= 0:
                raise ConfigError(dotted, value, "must be a positive integer")
        for dotted in _NON_NEGATIVE:
            value = self.get(dotted)
            if value < 0:
                raise ConfigError(dotted, value, "must be >= 0")
        for dotted in _POSITIVE:
            value = self.get(dotted)
            if not value > 0:
                raise ConfigError(dotted, value, "must be > 0")
        if not 0 <= self.seed < 2 ** 31:
            raise ConfigError("seed", self.seed, "must be an integer in [0, 2**31) (numpy seeds are unsigned)")
        t = self.training
        if t.grad_clip is not None and t.grad_clip <= 0:
            raise ConfigError("training.grad_clip", t.grad_clip, "must be > 0, or null to disable clipping")
        gmin = t.gamma_min if t.gamma_min is not None else 1.0 / t.gamma_max
        if gmin <= 0:
            raise ConfigError("training.gamma_min", t.gamma_min, "must be > 0")
        if gmin > t.gamma_max:
            raise ConfigError("training.gamma_min", t.gamma_min,
                              f"must be <= training.gamma_max ({t.gamma_max}); swap them or omit gamma_min")
        if not 0 <= t.lr_floor < 1:
            raise ConfigError("training.lr_floor", t.lr_floor, "must be in [0, 1): a fraction of the base LR")
        if t.paths_per_step is not None and t.paths_per_step <= 0:
            raise ConfigError("training.paths_per_step", t.paths_per_step, "must be a positive integer or null")
        if t.num_threads is not None and t.num_threads <= 0:
            raise ConfigError("training.num_threads", t.num_threads, "must be a positive integer or null")
        if t.max_steps_per_epoch is not None and t.max_steps_per_epoch <= 0:
            raise ConfigError("training.max_steps_per_epoch", t.max_steps_per_epoch, "must be a positive integer or null")
        world = t.devices * t.num_nodes
        if world > 1 and self.data.batch_size % world:
            raise ConfigError("data.batch_size", self.data.batch_size,
                              f"is the global batch and must divide evenly over training.devices x "
                              f"training.num_nodes = {world} processes")
        if t.path_sampler == "cluster_fair" and t.optimizer_state != "separated":
            raise ConfigError("training.path_sampler", t.path_sampler,
                              "cluster_fair needs training.optimizer_state: separated (it trains one MS cluster per step)")
        if t.precision == "16" and t.accelerator == "cpu":
            raise ConfigError("training.precision", t.precision,
                              "16 (float16 with a GradScaler) needs a CUDA GPU; use bf16 on the CPU")
        if self.data.on_device and (self.data.augment or world > 1):
            raise ConfigError("data.on_device", True, "keeps one fixed tensor copy of the training split: "
                              "not with data.augment or several processes; set it to false")
        _check_importance(self)
        _check_gradient_matching(self)
        _check_reptile(self)  # Reptile over a single uniform path is a valid (if unusual) combination.
        if t.sampling_constraint is not None:
            _check_range("training.sampling_constraint", t.sampling_constraint)
        if not 0 < self.data.val_fraction < 1:
            raise ConfigError("data.val_fraction", self.data.val_fraction, "must be in (0, 1)")
        s = self.search
        if s.max_evaluations is not None and s.max_evaluations <= 0:
            raise ConfigError("search.max_evaluations", s.max_evaluations, "must be a positive integer or null")
        if s.max_seconds is not None and s.max_seconds <= 0:
            raise ConfigError("search.max_seconds", s.max_seconds, "must be > 0 or null")
        if s.max_evaluations is None and s.max_seconds is None and s.searcher != "exhaustive":
            raise ConfigError("search.max_evaluations", None,
                              "set search.max_evaluations or search.max_seconds: every searcher needs a budget")
        if not 0 <= s.mutation_prob <= 1:
            raise ConfigError("search.mutation_prob", s.mutation_prob, "must be in [0, 1]")
        if s.select_num > s.population:
            raise ConfigError("search.select_num", s.select_num, f"must be <= search.population ({s.population})")
        if s.constraint_min is not None and s.constraint_max is not None and s.constraint_min > s.constraint_max:
            raise ConfigError("search.constraint_min", s.constraint_min,
                              f"must be <= search.constraint_max ({s.constraint_max})")
        if s.bn_mode == "recalibrate" and s.bn_batches <= 0:
            raise ConfigError("search.bn_batches", s.bn_batches, "must be >= 1 when search.bn_mode is recalibrate")
        if not isinstance(self.space.kwargs, dict):
            raise ConfigError("space.kwargs", self.space.kwargs, "must be a mapping of keyword arguments")
        _check_shifting(self)
        if self.data.label_map is not None:
            _check_label_map("data.label_map", self.data.label_map)

    @property
    def gamma_min(self) -> float:
        """The effective lower bound of the CaLR decay exponent (default 1/gamma_max)."""
        return self.training.gamma_min if self.training.gamma_min is not None else 1.0 / self.training.gamma_max

    # ------------------------------------------------------------------ access
    def get(self, dotted: str) -> Any:
        """Read a field by its dotted key (``training.lr``)."""
        obj: Any = self
        for part in dotted.split("."):
            obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
        return obj

    def to_dict(self) -> dict:
        """A JSON-serialisable nested dict of the whole recipe."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **overrides: Any) -> "Recipe":
        """A new validated recipe with dotted-key overrides applied.

        Changing ``strategy`` re-expands the new preset: the old preset's component fields
        are dropped rather than carried over as if the user had set them.
        """
        raw = self.to_dict()
        if "strategy" in overrides and overrides["strategy"] != self.strategy:
            from .strategies import COMPONENT_DEFAULTS
            from .catalog import get_preset
            owned = set(COMPONENT_DEFAULTS) | set(get_preset(self.strategy).settings)
            for dotted in owned:
                section, _, name = dotted.partition(".")
                raw.get(section, {}).pop(name, None)
        return Recipe.from_dict(raw, overrides)


def _check_importance(recipe: "Recipe") -> None:
    """Fields of PA&DA's importance samplers and the combinations they cannot run."""
    t = recipe.training
    for name in ("pa_delta_max", "da_tau_max"):
        value = getattr(t, name)
        if not 0 <= value <= 1:
            raise ConfigError(f"training.{name}", value, "must be in [0, 1]: the importance share of the mixture")
    if t.importance_reweight and t.path_sampler != "importance":
        raise ConfigError("training.importance_reweight", True,
                          "needs training.path_sampler: importance (it divides by the path's sampling probability)")
    if t.path_sampler == "importance" and t.paths_per_step not in (None, 1):
        raise ConfigError("training.paths_per_step", t.paths_per_step,
                          "the importance path sampler trains one path per step; use null")


def _int_list(name: str, values: Any) -> list[int]:
    out = []
    for v in values:
        try:
            number = _coerce(name, v, int)
        except ConfigError:
            raise ConfigError(name, values, "must be a list of integers, for example [20, 40]") from None
        out.append(number)
    return out


#: The LR schedule of leaves restarted at GM-NAS's final split (``training.gm_restart_schedule``).
#: ``fresh``: a new schedule of the full length from its top, cut off at the end of training
#: (official ``fix_sche=0``); ``stretched``: a new schedule from its top spanning the steps left
#: (official ``fix_sche=1``); ``continue``: the global schedule carries on (no official mode).
RESTART_SCHEDULES = ("fresh", "stretched", "continue")


def even_split_epochs(epochs: int, splits: int) -> list[int]:
    """Split epochs spread evenly over training: ``s * epochs // (splits + 1)`` for ``s = 1..splits``.

    60 epochs and 2 splits give the paper's NB201 schedule, splits after 20 and 40 epochs.
    """
    return [s * epochs // (splits + 1) for s in range(1, splits + 1)]


def split_schedule(training: TrainingConfig) -> list[int]:
    """The epochs after which GM-NAS splits: ``training.split_epochs``, or evenly spaced when null."""
    if training.split_epochs is not None:
        return _int_list("training.split_epochs", training.split_epochs)
    return even_split_epochs(training.epochs, len(training.split_branching))


def _check_gradient_matching(recipe: "Recipe") -> None:
    """Fields of the GM-NAS partition tree; the label-dependent checks run when the space is known."""
    t = recipe.training
    t.split_branching = _int_list("training.split_branching", t.split_branching)
    if t.split_epochs is not None:
        t.split_epochs = _int_list("training.split_epochs", t.split_epochs)
    if t.partition != "gradient_matching":
        return
    if not t.split_branching:
        raise ConfigError("training.split_branching", t.split_branching, "give at least one branching factor, e.g. [2, 2]")
    if any(b < 2 for b in t.split_branching):
        raise ConfigError("training.split_branching", t.split_branching, "every branching factor must be >= 2")
    if t.split_epochs is not None:
        e = t.split_epochs
        if len(e) != len(t.split_branching):
            raise ConfigError("training.split_epochs", e, f"give one epoch per branching factor "
                              f"({len(t.split_branching)} in training.split_branching)")
        if any(b <= a for a, b in zip(e, e[1:])):
            raise ConfigError("training.split_epochs", e, "must be strictly increasing")
        if e[0] < 0 or e[-1] >= t.epochs:
            raise ConfigError("training.split_epochs", e, f"each must be in [0, training.epochs) = [0, {t.epochs})")
    if t.gm_restart_schedule is not None and t.gm_restart_schedule not in RESTART_SCHEDULES:
        raise ConfigError("training.gm_restart_schedule", t.gm_restart_schedule,
                          f"allowed values: {', '.join(RESTART_SCHEDULES)}, or null (fresh; stretched with "
                          f"gm_fix_schedule: true)")
    if t.gm_labels is not None and not t.gm_labels:
        raise ConfigError("training.gm_labels", t.gm_labels, "give at least one label, or null for all labels")
    if t.update_rule == "reptile" and t.inner_state == "persistent":
        raise ConfigError("training.inner_state", t.inner_state, "gradient_matching does not hand a persistent "
                          "Reptile inner state to new leaves; use inner_state: reset")


def _check_reptile(recipe: "Recipe") -> None:
    """Fields of the Reptile (SUMNAS) update rule and the combinations it cannot run."""
    t = recipe.training
    if t.reptile_steps <= 0:
        raise ConfigError("training.reptile_steps", t.reptile_steps, "must be a positive integer")
    if t.task_batching <= 0:
        raise ConfigError("training.task_batching", t.task_batching, "must be a positive integer")
    if t.inner_lr is not None and not t.inner_lr > 0:
        raise ConfigError("training.inner_lr", t.inner_lr, "must be > 0, or null for 0.05 * 4 / reptile_steps")
    if not 0 <= t.inner_momentum < 1:
        raise ConfigError("training.inner_momentum", t.inner_momentum, "must be in [0, 1)")
    if t.inner_state not in ("reset", "persistent"):
        raise ConfigError("training.inner_state", t.inner_state, "allowed values: reset, persistent")
    if t.inner_batches not in ("same", "split"):
        raise ConfigError("training.inner_batches", t.inner_batches, "allowed values: same, split")
    if t.inner_grad_clip is not None and t.inner_grad_clip <= 0:
        raise ConfigError("training.inner_grad_clip", t.inner_grad_clip, "must be > 0, or null to disable clipping")
    if t.update_rule != "reptile":
        return
    if t.inner_batches == "split" and recipe.data.batch_size < t.reptile_steps:
        raise ConfigError("data.batch_size", recipe.data.batch_size,
                          f"must be >= training.reptile_steps ({t.reptile_steps}) with training.inner_batches: split")


def _check_label_map(name: str, mapping: Any) -> None:
    if not isinstance(mapping, list) or not mapping or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in mapping):
        raise ConfigError(name, mapping, "must be a list of non-negative integers, new label per old class "
                          "(digit parity: [0, 1, 0, 1, 0, 1, 0, 1, 0, 1])")
    if len(set(mapping)) < 2:
        raise ConfigError(name, mapping, "must map onto at least 2 classes")


def _check_shifting(recipe: "Recipe") -> None:
    """Fields of supernet shifting, transfer and NSGA-II (searchers ``shifted_evolution`` and ``nsga2``)."""
    s = recipe.search
    if not 0 <= s.shift_momentum < 1:
        raise ConfigError("search.shift_momentum", s.shift_momentum, "must be in [0, 1)")
    if not 0 <= s.shift_label_smoothing < 1:
        raise ConfigError("search.shift_label_smoothing", s.shift_label_smoothing, "must be in [0, 1)")
    if s.transfer_head_lr is not None and s.transfer_head_lr < 0:
        raise ConfigError("search.transfer_head_lr", s.transfer_head_lr, "must be >= 0, or null for search.shift_lr")
    if s.shift_order == "train_first" and s.shift_update != "per_candidate":
        raise ConfigError("search.shift_order", s.shift_order, "train_first needs search.shift_update: per_candidate "
                          "(a per-generation update lands after every candidate is scored)")
    if (s.searcher == "shifted_evolution" and s.shift_bn == "shift" and s.shift_order == "evaluate_first"
            and s.shift_update == "per_candidate"):
        raise ConfigError("search.shift_bn", s.shift_bn, "with shift_order: evaluate_first and shift_update: "
                          "per_candidate the shifting passes (and their steps) come after the score, so they cannot be "
                          "its BN recalibration; use shift_order: train_first, shift_update: per_generation, or "
                          "shift_bn: recalibrate")
    objectives = s.objectives
    allowed = {"accuracy", "params", "flops"}
    if (not isinstance(objectives, list) or len(set(objectives)) != len(objectives) or "accuracy" not in objectives
            or not set(objectives) <= allowed or len(objectives) < 2):
        raise ConfigError("search.objectives", objectives,
                          "must list accuracy and at least one of params, flops, e.g. [accuracy, params]")
    if s.transfer_to is not None:
        if s.searcher != "shifted_evolution":
            raise ConfigError("search.transfer_to", s.transfer_to, "needs search.searcher: shifted_evolution "
                              "(the new head is trained by the shifting steps)")
        fields = {f.name for f in dataclasses.fields(DataConfig)}
        unknown = sorted(set(s.transfer_to) - fields)
        if unknown:
            raise ConfigError(f"search.transfer_to.{unknown[0]}", s.transfer_to[unknown[0]],
                              f"unknown data field; allowed: {', '.join(sorted(fields))}")
        if s.transfer_to.get("label_map") is not None:
            _check_label_map("search.transfer_to.label_map", s.transfer_to["label_map"])
    elif s.freeze_features:
        raise ConfigError("search.freeze_features", True, "only applies with search.transfer_to (a new head to train)")


def _check_range(name: str, spec: Any) -> None:
    if not isinstance(spec, dict):
        raise ConfigError(name, spec, "must be a mapping like {metric: params, min: 1e5, max: 5e5}")
    extra = set(spec) - {"metric", "min", "max", "bins"}
    if extra:
        raise ConfigError(f"{name}.{sorted(extra)[0]}", spec[sorted(extra)[0]], "allowed keys: metric, min, max, bins")
    bins = spec.get("bins")
    if bins is not None and (not isinstance(bins, int) or isinstance(bins, bool) or bins <= 0):
        raise ConfigError(f"{name}.bins", bins, "must be a positive integer (SPOS uses 7)")
    if spec.get("metric", "params") not in ("params", "flops"):
        raise ConfigError(f"{name}.metric", spec.get("metric"), "allowed values: params, flops")
    lo, hi = spec.get("min"), spec.get("max")
    if lo is not None and hi is not None and float(lo) > float(hi):
        raise ConfigError(f"{name}.min", lo, f"must be <= {name}.max ({hi})")


def _flatten(obj: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and key in _SECTIONS and not prefix:
            for sub_key, sub_value in value.items():
                if key == "space" and sub_key == "kwargs":
                    if not isinstance(sub_value, Mapping):
                        raise ConfigError("space.kwargs", sub_value, "must be a mapping of keyword arguments")
                    for kk, vv in sub_value.items():
                        out[f"space.kwargs.{kk}"] = vv
                else:
                    out[f"{dotted}.{sub_key}"] = sub_value
        elif key in _SECTIONS and not prefix and value is None:
            continue  # an empty YAML section (every key commented out) keeps the defaults
        elif key in _SECTIONS and not prefix:
            raise ConfigError(key, value, "must be a mapping of fields")
        else:
            out[dotted] = value


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Convert YAML / CLI / tuner values to the annotated type, or raise ConfigError."""
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is Union:
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(name, value, "must be true or false")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(name, value, "must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(name, value, "must be an integer")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(name, value, "must be a number")
        number = None
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None and math.isfinite(number):  # NaN and inf would pass every range check below
            return number
        raise ConfigError(name, value, "must be a finite number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(name, value, "must be a string")
    if hint is dict or origin is dict:
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, str):
            from .strict_yaml import parse_yaml_value
            parsed = parse_yaml_value(value, name)
            if isinstance(parsed, dict):
                return parsed
        raise ConfigError(name, value, "must be a mapping")
    if hint is list or origin is list:
        if isinstance(value, (list, tuple)):
            return list(value)
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        raise ConfigError(name, value, "must be a list")
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``key=value`` command-line override; the value is read as YAML (``1e-3``, ``true``, ``[a, b]``)."""
    if "=" not in text:
        raise ConfigError("--set", text, "expected key=value, for example --set training.lr=0.1")
    key, raw = text.split("=", 1)
    from .strict_yaml import parse_yaml_value
    return key.strip(), parse_yaml_value(raw, key.strip())


#: The embedded benchmark recipe, used when no template is given (``nds train --out DIR``).
EMBEDDED_RECIPE = Path(__file__).resolve().parent / "_resources" / "embedded.yaml"


def load_recipe(path: Union[str, Path, None] = None, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """Load a YAML recipe template, apply dotted-key overrides and validate.

    Without ``path`` the packaged embedded recipe is used, so a fresh install trains on
    the offline benchmark and reports a Kendall tau with no configuration at all.
    """
    raw: dict = {}
    if path is None:
        path = EMBEDDED_RECIPE
    if path is not None:
        p = Path(path)
        if p.is_dir():
            raise ConfigError("--config", str(path), "is a directory; pass a YAML recipe such as "
                              "config_templates/embedded.yaml")
        if not p.is_file():
            raise ConfigError("--config", str(path), "file not found; pass the path of a YAML recipe such as "
                              "config_templates/embedded.yaml")
        from .strict_yaml import load_yaml_file
        loaded = load_yaml_file(p, "--config")  # duplicate keys, alias bombs and huge files are refused
        if loaded is None:
            # An empty file is more likely a mistake than a wish for every default: say so instead of guessing.
            raise ConfigError("--config", str(path), "is empty; write at least `strategy: spos`, or leave out "
                              "--config for the embedded benchmark recipe")
        if not isinstance(loaded, dict):
            raise ConfigError("--config", str(path), "the YAML file must hold a mapping of recipe sections")
        raw = loaded
    return Recipe.from_dict(raw, overrides)
