"""The sections of a recipe: one typed dataclass per stage, whose flat fields are the recipe's keys.

:class:`~nni_dynamic_supernet.recipe.Recipe` holds one of each (``space``, ``data``, ``training``,
``search``, ``ranking``, ``output``) and validates them; a field's default and type are here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

__all__ = ["SpaceConfig", "DataConfig", "TrainingConfig", "SearchConfig", "RankingConfig", "OutputConfig"]


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
    strategy preset; setting them explicitly overrides the preset. The fields after each
    component field are that component's options: its file declares and validates them
    (``gamma_max`` ... in :mod:`~nni_dynamic_supernet.training.lr.calr`).
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
    split_epochs: Optional[list[int]] = None  # epochs after which each level splits; None: evenly spaced (60 -> 20, 40)
    split_branching: list[int] = field(default_factory=lambda: [2, 2])  # groups per split, one per level
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
    # GradScaler; CUDA only), also written as Lightning 2 names them (32-true, bf16-mixed, 16-mixed). Weights,
    # optimizer states and the update stay float32 in every mode (so no 64-true, bf16-true or 16-true).
    precision: str = "32"
    # Inputs and convolution weights in NHWC memory format (faster convolutions on tensor-core GPUs).
    channels_last: bool = False
    # Under multi-GPU DDP, BatchNorm layers become SyncBatchNorm: statistics over the global batch, as one
    # process on the whole batch computes them (false: per-GPU statistics). No effect on CPU or one device.
    sync_batchnorm: bool = True


@dataclass
class SearchConfig:
    """How subnets are evaluated and which searcher looks for the best one.

    The searchers' own options (``population`` ..., ``shift_*``, ``objectives``) are declared and
    validated in their files (:mod:`~nni_dynamic_supernet.search.searchers`, ``shifting``, ``nsga2``).
    """

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

    ``logger``: the Lightning logger of the per-epoch scalars, the recipe (as hyperparameters) and
    the final metrics: ``tensorboard`` (``OUT/tensorboard``; its HPARAMS tab compares runs by any
    recipe field), ``csv`` (``OUT/csv/metrics.csv`` and ``hparams.yaml``), ``wandb`` or ``mlflow``
    (when that package is installed; ``OUT/wandb``, ``OUT/mlruns`` unless their environment
    variables say otherwise) or ``none``. ``tensorboard``: the older switch of the TensorBoard log;
    ``plots``: the registered PNG figures beside results.json; ``diagnostics``: the gradient /
    momentum / CaLR diagnostics; ``progress``: force progress bars on even when stderr is not a
    terminal (bars show on a terminal anyway, and never in an nnictl trial).
    """

    # The Lightning logger: tensorboard (OUT/tensorboard), csv (OUT/csv/version_N), wandb or mlflow (pip install
    # wandb / mlflow first; their environment variables choose the project and the server) or none.
    logger: str = "tensorboard"
    # null: the log output.logger chooses; false: no TensorBoard log (with logger tensorboard, the same as logger:
    # none); true: a TensorBoard log as well as output.logger's.
    tensorboard: Optional[bool] = None

    plots: bool = True
    diagnostics: bool = True
    progress: bool = False

    def loggers(self) -> list[str]:
        """The loggers the run writes: :attr:`logger` (unless ``none``) as :attr:`tensorboard` amends it.

        Returns
        -------
        list of str
            For example ``["tensorboard"]`` (the default), ``["csv", "tensorboard"]`` or ``[]``.
        """
        names = [] if self.logger == "none" else [self.logger]
        if self.tensorboard is False:
            names = [n for n in names if n != "tensorboard"]
        elif self.tensorboard is True and "tensorboard" not in names:
            names.append("tensorboard")
        return names
