"""The NNI one-shot Lightning module that trains a supernet with the recipe's composable step.

:class:`SupernetModule` drives :class:`~nni_dynamic_supernet.training.engine.SupernetEngine`
in manual optimization. Per-epoch work outside the step (probes, the epoch log, diagnostics)
belongs to Lightning callbacks; a :class:`SupernetCallback` also gets two hooks of the module's
own, at the two moments Lightning's hooks cannot mark:

* :meth:`SupernetCallback.on_engine_built` once the engine exists (inside
  ``configure_optimizers``), before any step;
* :meth:`SupernetCallback.on_supernet_epoch_end` after the engine closed the epoch (its
  samplers updated) and before a partition split and the epoch's checkpoint, on global rank 0
  only, with the epoch's log row to add to.
"""
from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any, Callable, Optional

import pytorch_lightning as pl
import torch
import torch.nn as nn

from ..quiet_logs import quiet_nni_import
from ..spaces.introspection import search_space_of_model
from ..supernet.modules import arch_setter, op_modules, shared_labels
from ..training.build import build_engine, partition_for
from . import plumbing
from .plumbing import EpochMean, all_gather_observations, as_loader, first_optimizer, global_rng, local_batchnorm

with quiet_nni_import():
    from nni.nas.nn.pytorch import ModelSpace
    from nni.nas.oneshot.pytorch.base_lightning import BaseOneShotLightningModule

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe import Recipe
    from ..training.engine import SupernetEngine

_logger = logging.getLogger("nni_dynamic_supernet.nni_bridge")

__all__ = ["SupernetModule", "SupernetCallback"]


class SupernetCallback(pl.Callback):
    """A Lightning callback that also hears the supernet module's own two moments.

    Subclasses override what they need; the defaults do nothing. Like any Lightning
    callback, a subclass with ``state_dict`` / ``load_state_dict`` is saved in every
    checkpoint and restored on resume.
    """

    def on_engine_built(self, trainer: pl.Trainer, module: "SupernetModule", engine: "SupernetEngine") -> None:
        """The engine and its components exist; no step has run (every rank)."""

    def on_supernet_epoch_end(self, trainer: pl.Trainer, module: "SupernetModule", epoch: int, row: dict) -> None:
        """Epoch ``epoch`` (0-based) is trained and closed; add this callback's values to the log ``row``.

        Runs on global rank 0 only, with every ``SyncBatchNorm`` computing local statistics, after
        the engine's samplers updated and before a partition split and the epoch's checkpoint.
        """


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
    data_sampler
        The training loader's data sampler, which the engine feeds (DA) and closes every epoch.
    """

    def __init__(self, training_module: pl.LightningModule, recipe: "Recipe",
                 pristine_space: Optional[ModelSpace] = None, data_sampler: Any = None) -> None:
        super().__init__(training_module)
        self.recipe = recipe
        self.pristine_space = pristine_space
        self.leaves = nn.ModuleList()
        self.engine: Optional["SupernetEngine"] = None
        self.batches_done = 0
        #: The training data sampler (uniform or importance) that the engine observes.
        self.data_sampler = data_sampler
        #: The partition (one leaf unless few-shot / GM); created by :meth:`ensure_partition`.
        self.partition: Any = None
        self._pending_state: Optional[dict] = None
        self._pending_rng: Optional[dict] = None
        self._probe_arch: Optional[dict] = None
        self._probe_setter: Optional[Callable[[dict], None]] = None
        self._epoch_means: dict[str, EpochMean] = {}
        self.ranks_agree: Optional[bool] = None

    # models -------------------------------------------------------------------------------------------
    def supernets(self) -> list[nn.Module]:
        """The supernet of every partition leaf (leaf 0 is the model space itself)."""
        return [self.model, *self.leaves]

    def ensure_partition(self) -> None:
        """Create the partition and one weight copy per extra leaf (idempotent)."""
        if self.partition is None:
            self.partition = partition_for(self.recipe.training, self.model, seed=self.recipe.seed)
        # Sub-supernets start from the same initial weights as leaf 0 and never share them. Every slot a
        # partition tree can ever use is allocated now, so the optimizer's parameter groups and the
        # Lightning state never change shape when a GM-NAS leaf splits later.
        while len(self.leaves) < self.partition.max_leaves - 1:
            self.leaves.append(copy.deepcopy(self.model))
        remember = getattr(self.partition, "remember_initial_weights", None)
        if remember is not None:
            remember(self.model.state_dict())

    def setup(self, stage: str = "fit") -> None:  # type: ignore[override]
        """Partition, memory format and, under DDP, the data sampler's share of each epoch."""
        super().setup(stage)
        self.ensure_partition()
        if self.recipe.training.channels_last:
            # NHWC weights; the inputs follow in training_step. Idempotent, and before the engine caches parameters.
            for model in self.supernets():
                model.to(memory_format=torch.channels_last)
        world = int(getattr(self.trainer, "world_size", 1) or 1)
        sampler = self.data_sampler
        if world > 1 and sampler is not None:
            # Every rank draws the same epoch order and keeps every world-th index, so the ranks' batches of
            # one step together are exactly the single-process batch. DA folds everyone's observations.
            sampler.num_replicas, sampler.rank = world, int(self.trainer.global_rank)
            if getattr(sampler, "needs_example_scores", False):
                sampler.reduce_fn = all_gather_observations

    def build_engine(self, total_steps: int) -> "SupernetEngine":
        """Build the engine over the evaluator's optimizer (plus one param group per extra leaf)."""
        self.ensure_partition()
        optimizer = first_optimizer(self.training_module.configure_optimizers())
        for leaf in self.leaves:
            optimizer.add_param_group({"params": list(leaf.parameters())})
        self.engine = build_engine(
            self.recipe.training, models=self.supernets(), set_arch=[arch_setter(m) for m in self.supernets()],
            optimizer=optimizer, partition=self.partition, total_steps=total_steps, shared=shared_labels(self.model),
            pristine_space=self.pristine_space, op_modules=[op_modules(m, slices=True) for m in self.supernets()],
            data_sampler=self.data_sampler, criterion=getattr(self.training_module, "criterion", None),
            seed=self.recipe.seed,
        )
        for callback in self._supernet_callbacks():
            callback.on_engine_built(self.trainer, self, self.engine)
        return self.engine

    def _supernet_callbacks(self) -> list[SupernetCallback]:
        """The trainer's :class:`SupernetCallback` objects, in the trainer's order (none without a trainer)."""
        trainer = self._trainer
        if trainer is None:
            return []
        return [cb for cb in trainer.callbacks if isinstance(cb, SupernetCallback)]

    def configure_optimizers(self) -> Any:
        """The engine's optimizer; its backward and step are chosen in :meth:`on_train_start`."""
        return self.build_engine(max(1, int(self.trainer.estimated_stepping_batches))).optimizer

    # training -----------------------------------------------------------------------------------------
    def _restore_pending(self) -> None:
        """Apply a resumed checkpoint's engine and RNG states (once)."""
        if self._pending_state is not None and self.engine is not None:
            self.engine.load_state_dict(self._pending_state)
            self._pending_state = None
        if self._pending_rng is not None:
            plumbing.set_global_rng(self._pending_rng)
            self._pending_rng = None

    def on_train_start(self) -> None:
        """Restore a resumed run's engine and RNG state; choose the backward and step the engine calls."""
        engine = self.engine
        assert engine is not None
        self._restore_pending()
        lightning_opt = self.optimizers()
        if plumbing.direct_backward_and_step(self.trainer, self):
            engine.backward = plumbing.plain_backward
            engine.step_fn = plumbing.counted_step(lightning_opt)
        else:
            engine.backward = self.manual_backward
            engine.step_fn = lightning_opt.step
        # training.precision 16: the engine unscales, checks and updates the scale itself (see engine.optimizer_step).
        plugin = self.trainer.precision_plugin
        if type(plugin) is pl.plugins.precision.MixedPrecision:  # an evaluator's own Trainer(precision="16-mixed")
            plugin.__class__ = plumbing.ScalerStepPrecision
        engine.scaler = getattr(plugin, "scaler", None)
        engine.steps_done = self.batches_done
        self._split_due(int(self.current_epoch))  # a split at epoch 0, or one a resumed run has not made yet

    def _split_due(self, epochs_done: int) -> None:
        """Let the partition split the leaves whose split epoch has come (GM-NAS); a no-op otherwise."""
        engine = self.engine
        assert engine is not None
        if not engine.partition.split_due(epochs_done):
            return  # the batch source needs the train loader, which is only there once a split is due
        for split in engine.partition.maybe_split(epochs_done, engine, self._gm_batches()):
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
            loader = as_loader(module.trainer.train_dataloader)
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
        """Start the epoch means of the loss and the LR."""
        self._epoch_means = {"train_loss": EpochMean(), "lr": EpochMean()}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """One :meth:`SupernetEngine.train_step` on ``batch``; returns its mean loss."""
        engine = self.engine
        assert engine is not None
        if self.recipe.training.channels_last and batch[0].dim() == 4:
            batch = (batch[0].contiguous(memory_format=torch.channels_last), *batch[1:])
        loss = engine.train_step(batch, self.batches_done)
        self.batches_done += 1
        # Lightning's ``self.log`` costs ~0.3 ms a call in Python (7% of a tiny CPU step for two
        # calls); the epoch means are accumulated here with its arithmetic and logged once.
        means = self._epoch_means
        if not means:
            means = self._epoch_means = {"train_loss": EpochMean(), "lr": EpochMean()}
        means["train_loss"].add(loss, len(batch[1]))
        # ``self.log`` of a float weighs it by the batch size it finds in the batch (its first tensor).
        means["lr"].add(torch.tensor(float(engine.last_lr), device=loss.device), len(batch[0]))
        return loss

    def on_train_epoch_end(self) -> None:
        """Close the epoch: the engine's checks and samplers, the epoch means, the callbacks, a due split."""
        engine = self.engine
        assert engine is not None
        epoch = int(self.current_epoch)
        engine.end_epoch(epoch, int(self.trainer.max_epochs or 1))
        for name, mean in self._epoch_means.items():
            if mean.count:
                self.log(name, mean.compute(), prog_bar=True, on_step=False, on_epoch=True, batch_size=1)
        callbacks = self._supernet_callbacks()
        if callbacks and self.trainer.is_global_zero:
            # Probes, diagnostics and reporting: rank 0 only (they use no collective, so others need not wait).
            # SyncBatchNorm would wait for the other ranks in BN recalibration: rank 0 recalibrates with local
            # statistics of its full calibration batches, what a single process computes.
            row = {"epoch": epoch + 1,
                   "loss": float(self.trainer.callback_metrics.get("train_loss", float("nan"))),
                   "lr": float(engine.last_lr), **engine.epoch_metrics()}
            with local_batchnorm(self):
                for callback in callbacks:
                    callback.on_supernet_epoch_end(self.trainer, self, epoch, row)
        # After the epoch's callbacks (a probe measures the trained leaves) and before the checkpoint callback.
        self._split_due(epoch + 1)

    def on_train_end(self) -> None:
        """Under DDP, check that every rank ends with the same weights (they train the same paths)."""
        self.ranks_agree = None
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            with torch.no_grad():
                flat = torch.cat([p.detach().reshape(-1).double().cpu() for p in self.parameters()])
                digest = torch.stack([flat.sum(), (flat * torch.arange(1, len(flat) + 1, dtype=torch.float64)).sum()])
            gathered = [torch.zeros_like(digest) for _ in range(torch.distributed.get_world_size())]
            torch.distributed.all_gather_object(gathered, digest)
            self.ranks_agree = all(torch.equal(g, gathered[0]) for g in gathered)

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        """Under ``NasExperiment`` the evaluator validates: one fixed subnet's accuracy (the last choices)."""
        if self._probe_arch is None:
            space = search_space_of_model(self.model)
            self._probe_arch = {label: choices[-1] for label, choices in space.items()}
        if self._probe_setter is None:
            self._probe_setter = arch_setter(self.model)  # built once: it reads the space's labels
        self._probe_setter(self._probe_arch)
        return self.training_module.validation_step((batch[0], batch[1]), batch_idx)

    def on_fit_end(self) -> None:
        """Nothing: NNI's evaluator would report a final result here, which the trial API does instead.

        NNI's evaluator reports ``callback_metrics['val_acc']`` at fit end, which crashes when no
        validation ran and files the result under the wrong trial. A run resumed from the checkpoint
        of its last epoch (stopped during the search or the ranking) has no epoch left, so Lightning
        skips :meth:`on_train_start`: its states are applied here instead.
        """
        self._restore_pending()
        return None

    # checkpoints --------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Add the engine's components, the step count and the global RNG streams to the checkpoint."""
        if self.engine is not None:
            checkpoint["nds_engine"] = self.engine.state_dict()
        checkpoint["nds_batches_done"] = self.batches_done
        checkpoint["nds_rng"] = global_rng()
        # NNI's evaluator module saves its constructor arguments (an optimizer class among them); they are not
        # needed to resume and would make the checkpoint unreadable with weights_only=True.
        checkpoint.pop("hyper_parameters", None)
        checkpoint.pop("hparams_name", None)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Keep the engine and RNG state for :meth:`on_train_start` (the optimizer does not exist yet)."""
        self._pending_state = checkpoint.get("nds_engine")
        self._pending_rng = checkpoint.get("nds_rng")
        self.batches_done = int(checkpoint.get("nds_batches_done", 0))
