"""The Lightning ``Trainer`` of our own pipeline, and the NNI evaluator module it trains through."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.strategies import DDPStrategy

from ..quiet_logs import install_lightning_filters, quiet_nni_import
from .lightning_module import SupernetModule
from .plumbing import AtomicCheckpointIO, lightning_precision

with quiet_nni_import():
    from nni.nas.evaluator.pytorch.lightning import ClassificationModule

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe import Recipe

__all__ = ["make_training_module", "fit_supernet"]


def make_training_module(recipe: "Recipe", num_classes: int) -> ClassificationModule:
    """NNI's classification module configured with the recipe's optimizer, LR and weight decay.

    Parameters
    ----------
    recipe
        The validated recipe (``training.optimizer``, ``lr``, ``momentum``, ``nesterov``, ``weight_decay``).
    num_classes
        Classes of the data.

    Returns
    -------
    nni.nas.evaluator.pytorch.lightning.ClassificationModule
    """
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
                 resume_from: Optional[str] = None, progress: bool = False, loggers: Sequence[Any] = (),
                 limit_train_batches: Optional[int] = None, accelerator: str = "auto",
                 devices: Any = "auto", strategy: Any = "auto", num_nodes: int = 1,
                 callbacks: Sequence[pl.Callback] = ()) -> pl.Trainer:
    """Train ``module`` with a Lightning ``Trainer`` (checkpoints under ``out_dir/lightning``).

    With more than one process (``devices * num_nodes > 1``) the strategy is DDP with unused
    parameters allowed (a step trains one path): gloo on CPU, NCCL on GPU.
    Lightning starts the other processes itself, or joins those of ``torchrun``.

    Parameters
    ----------
    module
        The supernet module to train.
    train_loader
        The training batches.
    epochs
        Epochs to train.
    out_dir
        Where the rolling ``lightning/last.ckpt`` goes; ``None`` writes no checkpoint.
    resume_from
        A ``last.ckpt`` to resume from.
    progress
        Show Lightning's progress bar.
    loggers
        The run's Lightning loggers (:func:`~.loggers.make_loggers`); none: no log.
    limit_train_batches
        Steps per epoch at most (``None``: the whole loader).
    accelerator, devices, strategy, num_nodes
        As Lightning's ``Trainer`` takes them.
    callbacks
        Extra Lightning callbacks (the pipeline's probe, epoch log and diagnostics), run in order.

    Returns
    -------
    pytorch_lightning.Trainer
        The trainer after ``fit``.
    """
    install_lightning_filters()
    t = module.recipe.training
    precision, precision_plugins = lightning_precision(t.precision, accelerator)
    # SyncBatchNorm needs NCCL (CUDA tensors); gloo on the CPU keeps per-process statistics.
    sync_bn = bool(t.sync_batchnorm and isinstance(devices, int) and devices * num_nodes > 1
                   and accelerator != "cpu" and torch.cuda.is_available())
    if isinstance(devices, int) and devices * num_nodes > 1 and strategy == "auto":
        strategy = DDPStrategy(find_unused_parameters=True,
                               process_group_backend="gloo" if accelerator == "cpu" else None)
    all_callbacks = list(callbacks)
    if out_dir is not None:
        every = module.recipe.training.checkpoint_every_n_epochs
        # One rolling file, rewritten atomically every `every` epochs. (save_last with save_top_k=0 never writes
        # before the end of training in Lightning 2.6: "last" is only refreshed after a top-k save.)
        all_callbacks.append(ModelCheckpoint(dirpath=str(Path(out_dir) / "lightning"), filename="last", save_top_k=1,
                                             monitor=None, every_n_epochs=every, save_on_train_epoch_end=True,
                                             enable_version_counter=False))
    logger: Any = list(loggers) if loggers else False
    trainer = pl.Trainer(
        max_epochs=epochs, accelerator=accelerator, devices=devices, strategy=strategy, logger=logger,
        num_nodes=num_nodes,
        callbacks=all_callbacks, enable_checkpointing=out_dir is not None, enable_progress_bar=progress,
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
