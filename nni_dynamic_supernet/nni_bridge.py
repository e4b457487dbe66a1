"""The module that drives NNI and Lightning: the one-shot module, the strategy and the trainer.

Everything NNI- or Lightning-version-specific lives here, or below it in
:mod:`nni_dynamic_supernet.supernet` (turning a model space into a supernet with NNI's
path-sampling mutation hooks and forcing an architecture on it, whose names this module
re-exports):

* :class:`SupernetModule`, a ``BaseOneShotLightningModule`` in manual optimization that
  drives :class:`~nni_dynamic_supernet.training.engine.SupernetEngine`;
* :class:`DynamicSupernetStrategy`, the NNI ``Strategy`` users pass to ``NasExperiment``;
* building and running the Lightning ``Trainer`` for our own pipeline;
* the NNI trial API (parameters and metric reports), with workarounds for NNI 3.0 (no final
  report when validation did not run; the TensorBoard folder the web UI reads).

The rest of the package sees plain PyTorch modules and our own interfaces.
"""
from __future__ import annotations

import copy
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import torch
import torch.nn as nn

from .quiet_logs import install_nni_filters  # noqa: E402

# NNI's import-time "not a nn.Module" warning and NasExperiment's "training_service will be ignored".
install_nni_filters()
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# Our trainer validates subnets itself after each epoch, not through Lightning's val loop.
warnings.filterwarnings("ignore", message=r".*You defined a `validation_step` but have no `val_dataloader`.*")
warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval.*")
# Under DDP the per-epoch row is computed and logged by rank 0 alone, by design.
warnings.filterwarnings("ignore", message=r".*It is recommended to use `self\.log\(.*sync_dist=True.*")
# A resumed run writes into its own checkpoint directory.
warnings.filterwarnings("ignore", message=r".*Checkpoint directory .* exists and is not empty.*")

import pytorch_lightning as pl  # noqa: E402
from nni.nas.evaluator.pytorch.lightning import ClassificationModule  # noqa: E402
from nni.nas.nn.pytorch import ModelSpace  # noqa: E402
from nni.nas.oneshot.pytorch.base_lightning import BaseOneShotLightningModule  # noqa: E402
from nni.nas.oneshot.pytorch.strategy import RandomOneShot  # noqa: E402

from .supernet.modules import (arch_setter, hooks_for, layer_choice_hooks, mutate_to_supernet,  # noqa: E402
                               op_modules, shared_labels, supernet_modules, unsupported_module_error)

if TYPE_CHECKING:  # pragma: no cover
    from .recipe import Recipe
    from .training.engine import SupernetEngine

_logger = logging.getLogger(__name__)

__all__ = [
    "mutate_to_supernet", "supernet_modules", "arch_setter", "op_modules", "shared_labels",
    "SupernetModule", "DynamicSupernetStrategy", "make_training_module", "fit_supernet",
    "nni_parameters", "NniReporter", "local_batchnorm", "revert_sync_batchnorm", "lightning_precision",
]


# ---------------------------------------------------------------------------------------------- lightning module
class SupernetModule(BaseOneShotLightningModule):
    """NNI one-shot Lightning module that trains a supernet with our composable step.

    It wraps the evaluator's module (NNI's ``ClassificationModule`` or the user's): that
    module provides the model, the loss and the optimizer class; the recipe provides
    the components. Optimization is manual; each training batch is one
    :meth:`SupernetEngine.train_step`.

    Parameters
    ----------
    training_module
        The evaluator's Lightning module.
    recipe
        The validated recipe.
    pristine_space
        An un-mutated copy of the space (parameter/FLOPs counting needs one).
    on_epoch_end
        Optional callback ``(module, epoch) -> None`` run after each training epoch
        (probe evaluation and reporting in our pipeline).
    """

    def __init__(self, training_module: pl.LightningModule, recipe: "Recipe",
                 pristine_space: Optional[ModelSpace] = None,
                 on_epoch_end: Optional[Callable[["SupernetModule", int], None]] = None,
                 data_sampler: Any = None) -> None:
        super().__init__(training_module)
        self.recipe = recipe
        self.pristine_space = pristine_space
        self.leaves = nn.ModuleList()
        self.engine: Optional["SupernetEngine"] = None
        self.batches_done = 0
        self._epoch_end_cb = on_epoch_end
        self._data_sampler = data_sampler
        self._pending_state: Optional[dict] = None
        self._pending_extra: Optional[dict] = None
        #: Objects with ``state_dict()`` / ``load_state_dict()`` saved in every checkpoint beside the engine
        #: (the pipeline's per-epoch log and diagnostics), so a resumed run reports what an uninterrupted one does.
        self.stateful: dict[str, Any] = {}
        self._probe_arch: Optional[dict] = None
        self._partition: Any = None
        #: Called with the engine once it is built (the pipeline attaches diagnostics here).
        self.on_engine_ready: Optional[Callable[[Any], None]] = None

    # models -------------------------------------------------------------------------------------------
    def supernets(self) -> list[nn.Module]:
        """The supernet of every partition leaf (leaf 0 is the model space itself)."""
        return [self.model, *self.leaves]

    def ensure_partition(self) -> None:
        """Create the partition and one weight copy per extra leaf (idempotent)."""
        if getattr(self, "_partition", None) is None:
            from .training.build import partition_for
            self._partition = partition_for(self.recipe.training, self.model, seed=self.recipe.seed)
        # Sub-supernets start from the same initial weights as leaf 0 and never share them. Every slot a
        # partition tree can ever use is allocated now, so the optimizer's parameter groups and the
        # Lightning state never change shape when a GM-NAS leaf splits later.
        while len(self.leaves) < self._partition.max_leaves - 1:
            self.leaves.append(copy.deepcopy(self.model))
        remember = getattr(self._partition, "remember_initial_weights", None)
        if remember is not None:
            remember(self.model.state_dict())

    def setup(self, stage: str = "fit") -> None:  # type: ignore[override]
        super().setup(stage)
        self.ensure_partition()
        if self.recipe.training.channels_last:
            # NHWC weights; the inputs follow in training_step. Idempotent, and before the engine caches parameters.
            for model in self.supernets():
                model.to(memory_format=torch.channels_last)
        world = int(getattr(self.trainer, "world_size", 1) or 1)
        sampler = self._data_sampler
        if world > 1 and sampler is not None:
            # Every rank draws the same epoch order and keeps every world-th index, so the ranks' batches of
            # one step together are exactly the single-process batch. DA folds everyone's observations.
            sampler.num_replicas, sampler.rank = world, int(self.trainer.global_rank)
            if getattr(sampler, "needs_example_scores", False):
                sampler.reduce_fn = _all_gather_observations

    def build_engine(self, total_steps: int) -> "SupernetEngine":
        """Build the engine over the evaluator's optimizer (plus one param group per extra leaf)."""
        from .training.build import build_engine
        self.ensure_partition()
        conf = self.training_module.configure_optimizers()
        optimizer = _first_optimizer(conf)
        for leaf in self.leaves:
            optimizer.add_param_group({"params": list(leaf.parameters())})
        self.engine = build_engine(
            self.recipe.training, models=self.supernets(), set_arch=[arch_setter(m) for m in self.supernets()],
            optimizer=optimizer, partition=self._partition, total_steps=total_steps, shared=shared_labels(self.model),
            pristine_space=self.pristine_space, op_modules=[op_modules(m, slices=True) for m in self.supernets()],
            data_sampler=self._data_sampler, criterion=getattr(self.training_module, "criterion", None),
            seed=self.recipe.seed,
        )
        if self.on_engine_ready is not None:
            self.on_engine_ready(self.engine)
        return self.engine

    def configure_optimizers(self) -> Any:
        # The engine's backward and step are chosen in on_train_start, once the trainer's callbacks are known.
        return self.build_engine(max(1, int(self.trainer.estimated_stepping_batches))).optimizer

    # training -----------------------------------------------------------------------------------------
    def _restore_pending(self) -> None:
        """Apply a resumed checkpoint's engine, per-epoch log and RNG states (once)."""
        if self._pending_state is not None and self.engine is not None:
            self.engine.load_state_dict(self._pending_state)
            self._pending_state = None
        if self._pending_extra is not None:
            for key, obj in self.stateful.items():
                if key in self._pending_extra["stateful"]:
                    obj.load_state_dict(self._pending_extra["stateful"][key])
            _set_global_rng(self._pending_extra["rng"])
            self._pending_extra = None

    def on_train_start(self) -> None:
        self._restore_pending()
        lightning_opt = self.optimizers()
        if direct_backward_and_step(self.trainer, self):
            self.engine.backward = _plain_backward  # type: ignore[union-attr]
            self.engine.step_fn = _counted_step(lightning_opt)  # type: ignore[union-attr]
        else:
            self.engine.backward = self.manual_backward  # type: ignore[union-attr]
            self.engine.step_fn = lightning_opt.step  # type: ignore[union-attr]
        # training.precision 16: the engine unscales, checks and updates the scale itself (see engine.optimizer_step).
        plugin = self.trainer.precision_plugin
        if type(plugin) is pl.plugins.precision.MixedPrecision:  # an evaluator's own Trainer(precision="16-mixed")
            plugin.__class__ = _ScalerStepPrecision
        self.engine.scaler = getattr(plugin, "scaler", None)  # type: ignore[union-attr]
        self.engine.steps_done = self.batches_done  # type: ignore[union-attr]
        self._split_due(int(self.current_epoch))  # a split at epoch 0, or one a resumed run has not made yet

    def _split_due(self, epochs_done: int) -> None:
        """Let the partition split the leaves whose split epoch has come (GM-NAS); a no-op otherwise."""
        if not self.engine.partition.split_due(epochs_done):  # type: ignore[union-attr]
            return  # the batch source needs the train loader, which is only there once a split is due
        made = self.engine.partition.maybe_split(epochs_done, self.engine, self._gm_batches())  # type: ignore[union-attr]
        for split in made:
            _logger.info("epoch %d: leaf %d split on %s into %s (slots %s)", epochs_done, split["slot"],
                         split["label"], split["groups"], split["slots"])

    def _gm_batches(self) -> Callable:
        """``draw(rng) -> (x, y)``: a fresh random training batch for gradient matching.

        Nothing is gathered until a GM split actually draws a batch (every strategy calls
        the partition at the epoch ends; only GM-NAS draws). From a map-style loader
        (``dataset`` and ``batch_size``) the batch is drawn by index with the partition's own
        RNG, so the training loader's order is untouched and a resumed run draws the same
        batches; under ``torch.distributed`` every rank draws the same indices and keeps its
        own slice. Any other iterable of ``(x, y, ...)`` batches gives its ``k``-th batch, ``k``
        drawn with the same RNG.
        """
        module = self

        def draw(rng: Any) -> tuple[torch.Tensor, torch.Tensor]:
            loader = _as_loader(module.trainer.train_dataloader)
            device = next(module.model.parameters()).device
            dataset, size = getattr(loader, "dataset", None), getattr(loader, "batch_size", None)
            if dataset is None or size is None or not hasattr(dataset, "__getitem__"):
                k = int(rng.randint(len(loader)))
                for i, batch in enumerate(loader):
                    if i == k:
                        return batch[0].to(device), batch[1].to(device)
                raise RuntimeError(f"the training loader yielded fewer than {k + 1} batches")
            collate = getattr(loader, "collate_fn", None) or torch.utils.data.default_collate
            rank, world = 0, 1
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
            index = rng.choice(len(dataset), size=min(int(size) * world, len(dataset)), replace=False)
            mine = index[rank::world] if world > 1 else index
            batch = collate([dataset[int(i)] for i in mine])
            return batch[0].to(device), batch[1].to(device)

        return draw

    def on_train_epoch_start(self) -> None:
        self._epoch_means = {"train_loss": _EpochMean(), "lr": _EpochMean()}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.recipe.training.channels_last and batch[0].dim() == 4:
            batch = (batch[0].contiguous(memory_format=torch.channels_last), *batch[1:])
        loss = self.engine.train_step(batch, self.batches_done)  # type: ignore[union-attr]
        self.batches_done += 1
        # Lightning's ``self.log`` costs ~0.3 ms a call in Python (7% of a tiny CPU step for two
        # calls); the epoch means are accumulated here with its arithmetic and logged once.
        means = getattr(self, "_epoch_means", None)
        if means is None:
            means = self._epoch_means = {"train_loss": _EpochMean(), "lr": _EpochMean()}
        size = len(batch[1])
        means["train_loss"].add(loss, size)
        # ``self.log`` of a float weighs it by the batch size it finds in the batch (its first tensor).
        means["lr"].add(torch.tensor(float(self.engine.last_lr), device=loss.device), len(batch[0]))
        return loss

    def on_train_epoch_end(self) -> None:
        self.engine.check_deferred()  # type: ignore[union-attr]
        for name, mean in getattr(self, "_epoch_means", {}).items():
            if mean.count:
                self.log(name, mean.compute(), prog_bar=True, on_step=False, on_epoch=True, batch_size=1)
        epoch = int(self.current_epoch)
        total = int(self.trainer.max_epochs or 1)
        self.engine.path_sampler.on_epoch_end(epoch, total)  # type: ignore[union-attr]
        if self.engine.data_sampler is not None:  # type: ignore[union-attr]
            self.engine.data_sampler.on_epoch_end(epoch, total)  # type: ignore[union-attr]
        if self._epoch_end_cb is not None and self.trainer.is_global_zero:
            # Probes, diagnostics and reporting: rank 0 only (they use no collective, so others need not wait).
            # SyncBatchNorm would wait for the other ranks in BN recalibration: rank 0 recalibrates with local
            # statistics of its full calibration batches, what a single process computes.
            with local_batchnorm(self):
                self._epoch_end_cb(self, epoch)
        # After the epoch's probe (it measures the trained leaves) and before the checkpoint callback.
        self._split_due(epoch + 1)

    def on_train_end(self) -> None:
        """Under DDP, check that every rank ends with the same weights (they train the same paths)."""
        self.ranks_agree: Optional[bool] = None
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            with torch.no_grad():
                flat = torch.cat([p.detach().reshape(-1).double().cpu() for p in self.parameters()])
                digest = torch.stack([flat.sum(), (flat * torch.arange(1, len(flat) + 1, dtype=torch.float64)).sum()])
            gathered = [torch.zeros_like(digest) for _ in range(torch.distributed.get_world_size())]
            torch.distributed.all_gather_object(gathered, digest)
            self.ranks_agree = all(torch.equal(g, gathered[0]) for g in gathered)

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        # Under NasExperiment the evaluator validates: report one fixed subnet's accuracy.
        if self._probe_arch is None:
            from .training.build import search_space_of_model
            space = search_space_of_model(self.model)
            self._probe_arch = {label: choices[-1] for label, choices in space.items()}
        if getattr(self, "_probe_setter", None) is None:
            self._probe_setter = arch_setter(self.model)  # built once: it reads the space's labels
        self._probe_setter(self._probe_arch)
        return self.training_module.validation_step((batch[0], batch[1]), batch_idx)

    def on_fit_end(self) -> None:
        # NNI's evaluator would report a final result from callback_metrics['val_acc'] here, which
        # crashes when no validation ran and files the result under the wrong trial.
        # A run resumed from the checkpoint of its last epoch (stopped during the search or the ranking) has
        # no epoch left, so Lightning skips on_train_start: its states are applied here instead.
        self._restore_pending()
        return None

    # checkpoints --------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.engine is not None:
            checkpoint["nds_engine"] = self.engine.state_dict()
        checkpoint["nds_batches_done"] = self.batches_done
        checkpoint["nds_extra"] = {"stateful": {k: obj.state_dict() for k, obj in self.stateful.items()},
                                   "rng": _global_rng()}
        # NNI's evaluator module saves its constructor arguments (an optimizer class among them); they are not
        # needed to resume and would make the checkpoint unreadable with weights_only=True.
        checkpoint.pop("hyper_parameters", None)
        checkpoint.pop("hparams_name", None)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Optimizers do not exist yet when Lightning restores the module: apply in on_train_start.
        self._pending_state = checkpoint.get("nds_engine")
        self._pending_extra = checkpoint.get("nds_extra")
        self.batches_done = int(checkpoint.get("nds_batches_done", 0))


class _EpochMean:
    """The epoch mean of a per-step value, with the arithmetic of Lightning's ``self.log(..., on_epoch=True)``.

    Lightning keeps ``value + x * batch_size`` in the default float dtype and an integer
    count, and divides at the end; logging the result once with ``batch_size=1`` then
    gives exactly the value that logging every step gave (``0 + m * 1 = m``, ``m / 1 = m``).
    """

    def __init__(self) -> None:
        self.value: Optional[torch.Tensor] = None
        self.count = 0

    def add(self, value: torch.Tensor, batch_size: int) -> None:
        """Accumulate one step's ``value`` (a scalar tensor), weighted by ``batch_size``."""
        value = value.detach()
        if value.dtype not in (torch.float32, torch.float64):
            value = value.to(torch.get_default_dtype())
        if self.value is None:
            self.value = torch.tensor(0.0, dtype=torch.get_default_dtype(), device=value.device)
        self.value = self.value + value * batch_size
        self.count += batch_size

    def compute(self) -> torch.Tensor:
        """The weighted mean (a tensor on the values' device; no host sync)."""
        assert self.value is not None
        return self.value / torch.tensor(self.count, device=self.value.device)


class _LocalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """A ``SyncBatchNorm`` seen as a plain BatchNorm (same parameters and buffers, local statistics)."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")


class local_batchnorm:
    """Context manager: every ``SyncBatchNorm`` of ``module`` computes local statistics inside it.

    The modules stay the same objects (their class is swapped and restored), so cached
    module lists and the optimizer are untouched. Used where one rank alone runs BN in train
    mode (recalibration before evaluation), which would otherwise wait for the other ranks.
    """

    def __init__(self, module: nn.Module) -> None:
        self.swapped = [m for m in module.modules() if isinstance(m, nn.SyncBatchNorm)]

    def __enter__(self) -> "local_batchnorm":
        for m in self.swapped:
            m.__class__ = _LocalBatchNorm
        return self

    def __exit__(self, *exc: Any) -> None:
        for m in self.swapped:
            m.__class__ = nn.SyncBatchNorm


def revert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Make every ``SyncBatchNorm`` of ``module`` a local BatchNorm for good (search after DDP training)."""
    local_batchnorm(module).__enter__()
    return module


class _ScalerStepPrecision(pl.plugins.precision.MixedPrecision):  # type: ignore[misc]
    """Lightning's float16 mixed precision for our manual step: the engine owns the GradScaler calls.

    :meth:`SupernetEngine.optimizer_step` unscales, checks the gradients (an overflow lowers the
    scale and skips the step) and updates the scale; by the time Lightning's optimizer step runs
    the gradients are known finite, so it only steps the optimizer (no second unscale, and not
    ``GradScaler.step``'s host read of the overflow flag).
    """

    def optimizer_step(self, optimizer: Any, model: Any, closure: Callable[[], Any], **kwargs: Any) -> Any:
        from torch.amp.grad_scaler import OptState
        state = self.scaler._per_optimizer_states[id(optimizer)] if self.scaler is not None else None
        if state is None or state["stage"] is not OptState.UNSCALED:
            return super().optimizer_step(optimizer, model=model, closure=closure, **kwargs)
        closure()
        self._after_closure(model, optimizer)
        return optimizer.step(**kwargs)


#: The Lightning hooks that its backward and optimizer-step dispatch exists to call.
_STEP_HOOKS = ("backward", "on_before_backward", "on_after_backward", "on_before_optimizer_step")


def _default_hook(module: Any, name: str) -> bool:
    """Whether ``module``'s hook ``name`` is Lightning's no-op (through NNI's delegation to its training module)."""
    impl = getattr(type(module), name)
    if impl is getattr(pl.LightningModule, name):
        return True
    if impl is getattr(BaseOneShotLightningModule, name, None):
        return _default_hook(module.training_module, name)
    return False


def direct_backward_and_step(trainer: Any, module: Any) -> bool:
    """Whether Lightning's ``manual_backward`` and ``LightningOptimizer.step`` reduce to the plain torch calls.

    On one device with full precision, no profiler and no callback or module hook on
    backward or the optimizer step, Lightning's dispatch (strategy, precision plugin, closure
    wrapper, four hook walks) calls ``loss.backward()`` and ``optimizer.step()`` and nothing
    else; on a small CPU supernet that dispatch is 3% of a step. Anything else (DDP, mixed
    precision, a user's gradient callback, a profiler) keeps Lightning's calls.
    """
    from pytorch_lightning.profilers import PassThroughProfiler
    from pytorch_lightning.strategies import SingleDeviceStrategy
    if type(trainer.strategy) is not SingleDeviceStrategy or type(trainer.precision_plugin) is not pl.plugins.precision.Precision:
        return False
    if not isinstance(trainer.profiler, PassThroughProfiler):
        return False
    if not all(_default_hook(module, name) for name in _STEP_HOOKS):
        return False
    return all(getattr(type(cb), name, None) is getattr(pl.Callback, name, None)
               for cb in trainer.callbacks for name in _STEP_HOOKS)


def _plain_backward(loss: torch.Tensor) -> None:
    """``manual_backward`` where :func:`direct_backward_and_step` holds."""
    loss.backward()


def _counted_step(lightning_opt: Any) -> Callable[[], None]:
    """``lightning_opt.step()`` where :func:`direct_backward_and_step` holds: the step, counted as Lightning counts it.

    The manual-optimization loop sets the optimizer's ``_on_before_step`` / ``_on_after_step``
    around every batch; they advance ``trainer.global_step`` (checkpoints, loggers), so they run here too.
    """
    optimizer = lightning_opt.optimizer

    def step() -> None:
        lightning_opt._on_before_step()
        optimizer.step()
        lightning_opt._on_after_step()

    return step


def lightning_precision(precision: str, accelerator: str) -> tuple[Any, list]:
    """``(Trainer precision, extra plugins)`` for ``training.precision`` (``32``, ``bf16`` or ``16``)."""
    if precision == "16":
        if accelerator == "cpu":
            from .errors import ConfigError
            raise ConfigError("training.precision", precision,
                              "16 (float16 with a GradScaler) needs a CUDA GPU; use bf16 on the CPU")
        return None, [_ScalerStepPrecision("16-mixed", "cuda")]
    return {"32": "32-true", "bf16": "bf16-mixed"}[precision], []


def _all_gather_observations(index: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's ``(index, score)`` observations of the epoch, concatenated in rank order."""
    gathered: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, (index.cpu(), scores.cpu()))
    return torch.cat([i for i, _ in gathered]), torch.cat([s for _, s in gathered])


def _global_rng() -> dict:
    """The process-wide RNG streams (torch CPU, numpy, Python) as plain data."""
    import random

    import numpy as np
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, state, gauss_py = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype("int64")), int(pos),
                                                      int(has_gauss), float(gauss)],
            "python": [int(version), torch.tensor(state, dtype=torch.int64),
                       None if gauss_py is None else float(gauss_py)]}


def _set_global_rng(state: dict) -> None:
    """Restore :func:`_global_rng`."""
    import random

    import numpy as np
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, py_state, gauss_py = state["python"]
    random.setstate((version, tuple(int(v) for v in py_state.tolist()), gauss_py))


class AtomicCheckpointIO(pl.plugins.io.TorchCheckpointIO):  # type: ignore[misc]
    """Lightning checkpoint I/O that writes atomically and reads without unpickling objects.

    A checkpoint is serialised in memory, written to a temporary file in the same
    directory, flushed and renamed over the destination, so a SIGKILL or a full disk
    never leaves a truncated ``last.ckpt``: the previous one stays. Reading uses
    ``torch.load(weights_only=True)``: every value our module and Lightning's loops put
    in a checkpoint is plain data (tensors, numbers, strings, lists, dicts).
    """

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Optional[Any] = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically."""
        from .atomic_io import atomic_torch_save
        atomic_torch_save(path, checkpoint)

    def load_checkpoint(self, path: Any, map_location: Optional[Any] = lambda storage, loc: storage,
                        weights_only: Optional[bool] = None) -> dict:
        """Read a checkpoint as plain data; a truncated or foreign file is a one-line error."""
        from .errors import ConfigError
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # truncated, corrupt, or holding pickled objects
            raise ConfigError("--resume", str(path), f"cannot be read as a plain-data checkpoint "
                              f"({type(exc).__name__}); delete it to start over") from None


def _first_optimizer(conf: Any) -> torch.optim.Optimizer:
    if isinstance(conf, torch.optim.Optimizer):
        return conf
    if isinstance(conf, dict):
        return _first_optimizer(conf["optimizer"])
    if isinstance(conf, (list, tuple)) and conf:
        return _first_optimizer(conf[0])
    raise TypeError(f"the evaluator's configure_optimizers returned no optimizer: {conf!r}")


# ---------------------------------------------------------------------------------------------- NNI strategy
class DynamicSupernetStrategy(RandomOneShot):
    """NNI strategy that trains a supernet with a recipe's components, then searches it.

    Use it like any NNI one-shot strategy::

        exp = NasExperiment(space, Classification(...), create_strategy("spos_calr_ms"))
        exp.run()
        exp.export_top_models(top_k=3, formatter="dict")

    The evaluator provides the data, the loss, the optimizer class, learning rate and
    weight decay, and the trainer (epochs, devices). The recipe provides the training
    components and the search. After training, the searcher of ``recipe.search`` runs on
    the evaluator's validation data (BN recalibrated on its training data), so
    :meth:`list_models` returns the best *searched* architectures.
    """

    def __init__(self, recipe: "Recipe", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recipe = recipe
        self.pristine_space: Optional[ModelSpace] = None
        self.search_history: list[dict] = []
        self._nds_module: Optional[SupernetModule] = None

    def default_mutation_hooks(self) -> list:
        return getattr(self, "_hooks", None) or layer_choice_hooks()

    def mutate_model(self, model: ModelSpace) -> ModelSpace:
        """Refuse unsupported mutables by name, keep a pristine copy, then mutate in place.

        A recipe technique that cannot apply to the space (GM splitting a label without
        weights of its own ...) is refused here, before any training.
        """
        from .spaces.validation import check_supported
        from .training.build import check_techniques
        check_supported(model)
        self.pristine_space = copy.deepcopy(model)
        self._hooks = hooks_for(model)
        try:
            supernet = super().mutate_model(model)
        except (TypeError, ValueError) as exc:
            raise unsupported_module_error(exc, model) from None
        check_techniques(self.recipe.training, supernet)
        return supernet

    def mutate_evaluator(self, evaluator: Any) -> Any:
        """Wrap the evaluator's module (NNI), after reading one example's shape from its training data.

        The input shape is never guessed: parameter/FLOPs counting traces the space with a
        dummy input of exactly the shape the evaluator's train dataloader yields.
        """
        if self.pristine_space is not None:
            shape = example_shape(_evaluator_train_loader(evaluator))
            if shape is not None:
                self.pristine_space.nds_input_shape = shape
        return super().mutate_evaluator(evaluator)

    def configure_oneshot_module(self, training_module: pl.LightningModule) -> SupernetModule:
        self._nds_module = SupernetModule(training_module, self.recipe, pristine_space=self.pristine_space)
        return self._nds_module

    def train_dataloader(self, train_dataloader_fn: Callable[[], Any], val_dataloader_fn: Callable[[], Any]) -> Any:
        """The evaluator's train loader; rebuilt around our data sampler when DA is on.

        With ``training.data_sampler: uniform`` the user's loader is used unchanged (its own
        shuffling). With ``importance`` the loader is rebuilt with the same batch size,
        workers, collate function and ``drop_last``, over an index-returning view of its
        dataset (:class:`~nni_dynamic_supernet.data.IndexedDataset`) and with
        :class:`~nni_dynamic_supernet.data.samplers.ImportanceDataSampler`; the same sampler
        is handed to the engine. A loader that cannot be rebuilt that way (an iterable
        dataset, a custom batch sampler, several loaders) is refused with a ConfigError.
        """
        loader = train_dataloader_fn()
        if self.recipe.training.data_sampler == "uniform":
            return loader
        module = self._nds_module
        if module is None:
            raise RuntimeError("configure_oneshot_module must run before train_dataloader")
        rebuilt, sampler = _with_data_sampler(self.recipe, loader)
        module._data_sampler = sampler
        return rebuilt

    def _run(self) -> None:
        super()._run()
        from .search.run import search_supernet
        module = self.oneshot_module
        evaluator = self._mutated_model_space.evaluator  # type: ignore[union-attr]
        train_loader = _as_loader(evaluator.train_dataloaders)
        val_loader = _as_loader(evaluator.val_dataloaders)
        device = next(module.parameters()).device
        # Shifted evolution draws its own batches from the training set (``(x, y, ...)`` items).
        self.search_history = search_supernet(self.recipe.search, module.supernets(), module._partition,
                                              train_loader, val_loader, self.pristine_space, device=device,
                                              train_set=getattr(train_loader, "dataset", None), seed=self.recipe.seed,
                                              training=self.recipe.training)["top"]

    def list_models(self, sort: bool = True, limit: Optional[int] = 1) -> Iterator[Any]:
        """The best searched architectures, best first, as frozen NNI models."""
        from .spaces.validation import arch_for_nni
        for entry in self.search_history[: (limit or len(self.search_history))]:
            yield self.model_space.freeze(arch_for_nni(entry["arch"]))


def _with_data_sampler(recipe: "Recipe", loader: Any) -> tuple[Any, Any]:
    """``loader`` rebuilt to draw from the recipe's data sampler and to yield ``(x, y, index)``."""
    from torch.utils.data import DataLoader, IterableDataset

    from .data import IndexedDataset
    from .errors import ConfigError
    from .training.build import build_data_sampler

    field, value = "training.data_sampler", recipe.training.data_sampler
    if not isinstance(loader, DataLoader):
        raise ConfigError(field, value, f"needs the evaluator's train_dataloaders to be one torch DataLoader, "
                                        f"got {type(loader).__name__}")
    if isinstance(loader.dataset, IterableDataset) or loader.batch_size is None:
        raise ConfigError(field, value, "needs a map-style dataset and a DataLoader with batch_size "
                                        "(no iterable dataset, no custom batch_sampler)")
    dataset = loader.dataset if isinstance(loader.dataset, IndexedDataset) else IndexedDataset(loader.dataset)
    sampler = build_data_sampler(recipe.training, len(dataset), seed=recipe.seed)
    rebuilt = DataLoader(dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                         collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                         timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                         persistent_workers=loader.persistent_workers and loader.num_workers > 0)
    return rebuilt, sampler


def _evaluator_train_loader(evaluator: Any) -> Any:
    """The training loader of an NNI Lightning evaluator (``train_dataloaders`` or its datamodule's)."""
    loaders = getattr(evaluator, "train_dataloaders", None)
    if loaders is None and getattr(evaluator, "datamodule", None) is not None:
        loaders = evaluator.datamodule.train_dataloader()
    return _as_loader(loaders)


def example_shape(loader: Any) -> Optional[tuple[int, ...]]:
    """The shape of one input example (no batch dimension) that ``loader`` yields, or None if unknown.

    Read from ``loader.dataset[0]`` when the dataset is map-style, which draws no random number
    (a shuffled loader's first batch would advance the global RNG and change the run); an
    iterable dataset gives its first batch.
    """
    if loader is None:
        return None
    dataset = getattr(loader, "dataset", None)
    item: Any = None
    try:
        if dataset is not None and hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__") and len(dataset):
            item, batched = dataset[0], False
        else:
            item, batched = next(iter(loader)), True
    except Exception:  # noqa: BLE001 - an unreadable loader leaves the shape unknown; callers say what needs it
        return None
    x = item[0] if isinstance(item, (tuple, list)) else item
    if isinstance(x, dict):
        return None
    x = torch.as_tensor(x)
    shape = tuple(int(d) for d in x.shape)
    return shape[1:] if batched else shape


def _as_loader(loaders: Any) -> Any:
    if isinstance(loaders, (list, tuple)):
        return loaders[0]
    if isinstance(loaders, dict):
        return next(iter(loaders.values()))
    return loaders


# ---------------------------------------------------------------------------------------------- our pipeline
def make_training_module(recipe: "Recipe", num_classes: int) -> ClassificationModule:
    """NNI's classification module configured with the recipe's optimizer, LR and weight decay."""
    import functools

    t = recipe.training
    optimizers = {
        # foreach: torch picks it on CUDA only; on the CPU it runs the same per-tensor kernels in one C++
        # loop instead of a Python loop over the parameters (bit-identical updates, ~10% of a tiny CPU step).
        "sgd": functools.partial(torch.optim.SGD, momentum=t.momentum, nesterov=t.nesterov and t.momentum > 0,
                                 foreach=True),
        "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
        "rmsprop": functools.partial(torch.optim.RMSprop, momentum=t.momentum),
    }
    return ClassificationModule(learning_rate=t.lr, weight_decay=t.weight_decay, optimizer=optimizers[t.optimizer],
                                num_classes=num_classes, export_onnx=False)


def fit_supernet(module: SupernetModule, train_loader: Any, epochs: int, out_dir: Optional[Path] = None,
                 resume_from: Optional[str] = None, progress: bool = False, tensorboard_dir: Optional[Path] = None,
                 limit_train_batches: Optional[int] = None, accelerator: str = "auto",
                 devices: Any = "auto", strategy: Any = "auto", num_nodes: int = 1) -> pl.Trainer:
    """Train ``module`` with a Lightning ``Trainer`` (checkpoints under ``out_dir/lightning``).

    With more than one process (``devices * num_nodes > 1``) the strategy is DDP with unused
    parameters allowed (a step trains one path): gloo on CPU, NCCL on GPU.
    Lightning starts the other processes itself, or joins those of ``torchrun``.
    """
    t = module.recipe.training
    precision, precision_plugins = lightning_precision(t.precision, accelerator)
    # SyncBatchNorm needs NCCL (CUDA tensors); gloo on the CPU keeps per-process statistics.
    sync_bn = bool(t.sync_batchnorm and isinstance(devices, int) and devices * num_nodes > 1
                   and accelerator != "cpu" and torch.cuda.is_available())
    if isinstance(devices, int) and devices * num_nodes > 1 and strategy == "auto":
        from pytorch_lightning.strategies import DDPStrategy
        strategy = DDPStrategy(find_unused_parameters=True,
                               process_group_backend="gloo" if accelerator == "cpu" else None)
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import TensorBoardLogger

    callbacks = []
    if out_dir is not None:
        every = module.recipe.training.checkpoint_every_n_epochs
        # One rolling file, rewritten atomically every `every` epochs. (save_last with save_top_k=0 never writes
        # before the end of training in Lightning 2.6: "last" is only refreshed after a top-k save.)
        callbacks.append(ModelCheckpoint(dirpath=str(Path(out_dir) / "lightning"), filename="last", save_top_k=1,
                                         monitor=None, every_n_epochs=every, save_on_train_epoch_end=True,
                                         enable_version_counter=False))
    logger: Any = False
    if tensorboard_dir is not None:
        logger = TensorBoardLogger(save_dir=str(tensorboard_dir), name="", version="")
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator=accelerator, devices=devices, strategy=strategy, logger=logger,
        num_nodes=num_nodes,
        callbacks=callbacks, enable_checkpointing=out_dir is not None, enable_progress_bar=progress,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        limit_train_batches=limit_train_batches or 1.0, use_distributed_sampler=False,
        log_every_n_steps=1_000_000, deterministic=False, plugins=[AtomicCheckpointIO(), *precision_plugins],
        sync_batchnorm=sync_bn, **({"precision": precision} if precision is not None else {}),
    )
    fit_kwargs: dict = {}
    if resume_from is not None:
        fit_kwargs["ckpt_path"] = resume_from
    trainer.fit(module, train_dataloaders=train_loader, **fit_kwargs)
    return trainer


# ---------------------------------------------------------------------------------------------- nnictl trials
def nni_parameters() -> dict:
    """The tuner's parameters for this trial (``{}`` outside nnictl).

    NNI 3.0's local training service hands the queued parameters to whichever trial asks first,
    not to the trial the manager recorded them for (microsoft/nni#5726). With several trials
    starting together, a trial can then run another trial's parameters while the web UI shows
    its own next to its metrics. So the trial asks the manager which parameters it recorded for
    this trial and runs those, reporting under their ``parameter_id``: the web UI, the tuner and
    the trial then agree. When the manager cannot be asked, the delivered parameters are kept.
    """
    if not os.environ.get("NNI_PLATFORM"):
        return {}
    import nni
    import nni.trial
    params = nni.get_next_parameter()
    delivered = nni.trial._params
    recorded = _recorded_parameter_record()
    if recorded is not None and delivered is not None and recorded.get("parameter_id") != delivered.get("parameter_id"):
        _logger.warning("NNI delivered the parameters of parameter_id %s to trial %s, whose recorded parameters (shown "
                        "in the web UI) are parameter_id %s (microsoft/nni#5726); running the recorded ones",
                        delivered.get("parameter_id"), os.environ.get("NNI_TRIAL_JOB_ID"), recorded.get("parameter_id"))
        nni.trial._params = recorded  # the reports carry this parameter_id
        params = recorded.get("parameters")
    return dict(params or {})


def _recorded_parameter_record(attempts: int = 10, wait: float = 0.5) -> Optional[dict]:
    """The parameter record nnictl's manager holds for this trial, or ``None`` if it cannot be read.

    The trial's command channel is served by the manager's REST server
    (``http://HOST:PORT/[PREFIX/]env/ENV/TRIAL``), whose ``api/v1/nni/trial-jobs/ID`` has the
    trial's ``hyperParameters``. The record may lag the trial's start by a moment, so it is
    asked a few times.
    """
    import json
    import time
    import urllib.error
    import urllib.request

    channel = os.environ.get("NNI_TRIAL_COMMAND_CHANNEL", "")
    trial_id = os.environ.get("NNI_TRIAL_JOB_ID", "")
    if not channel.startswith("http") or "/env/" not in channel or not trial_id:
        return None
    url = f"{channel[:channel.rindex('/env/')]}/api/v1/nni/trial-jobs/{trial_id}"
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                job = json.loads(response.read().decode("utf-8"))
            hyper = job.get("hyperParameters") if isinstance(job, dict) else None
            if hyper:
                record = json.loads(hyper[0])
                if isinstance(record, dict) and "parameter_id" in record and "parameters" in record:
                    return record
        except (OSError, ValueError, urllib.error.URLError):
            pass
        if attempt + 1 < attempts:
            time.sleep(wait)
    _logger.info("could not read this trial's recorded parameters from %s; keeping the delivered ones", url)
    return None


class NniReporter:
    """Sends intermediate and final metric dicts to nnictl (no-op outside a trial).

    ``default`` must be a float: NNI's web UI plots and sorts by it. Values are plain
    Python floats, strings or ints.
    """

    def __init__(self) -> None:
        self.active = bool(os.environ.get("NNI_PLATFORM"))

    def intermediate(self, metrics: dict) -> None:
        """Report one epoch's metrics."""
        if self.active:
            import nni
            nni.report_intermediate_result(metrics)

    def final(self, metrics: dict) -> None:
        """Report the trial's final metrics."""
        if self.active:
            import nni
            nni.report_final_result(metrics)
