"""Lightning plumbing for a manually optimized supernet: precision, a direct backward, checkpoints, local BN.

* **Precision**: :func:`lightning_precision` maps ``training.precision`` to Lightning's; the
  float16 path keeps Lightning's GradScaler but lets the engine make the scaler calls
  (:class:`ScalerStepPrecision`).
* **Direct backward and optimizer step**: :func:`direct_backward_and_step` says when
  Lightning's dispatch reduces to the plain torch calls, which then run directly
  (:func:`plain_backward`, :func:`counted_step`).
* **Checkpoint I/O**: :class:`AtomicCheckpointIO` writes atomically and reads plain data only;
  :func:`global_rng` / :func:`set_global_rng` carry the process-wide RNG streams through a
  checkpoint.
* **Local BatchNorm**: :class:`local_batchnorm` lets one rank run ``SyncBatchNorm`` layers
  with local statistics (BN recalibration on rank 0 under DDP).
* Small helpers: :class:`EpochMean` (an epoch mean logged once), :func:`as_loader` (the first
  of several loaders), :func:`all_gather_observations` (DA's observations of every rank).
"""
from __future__ import annotations

import random
from typing import Any, Callable, Optional

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn as nn
from pytorch_lightning.profilers import PassThroughProfiler
from pytorch_lightning.strategies import SingleDeviceStrategy
from torch.amp.grad_scaler import OptState

from ..atomic_io import atomic_torch_save
from ..errors import ConfigError
from ..quiet_logs import quiet_nni_import

with quiet_nni_import():
    from nni.nas.oneshot.pytorch.base_lightning import BaseOneShotLightningModule

__all__ = ["EpochMean", "local_batchnorm", "revert_sync_batchnorm", "ScalerStepPrecision", "lightning_precision",
           "direct_backward_and_step", "plain_backward", "counted_step", "all_gather_observations", "global_rng",
           "set_global_rng", "AtomicCheckpointIO", "first_optimizer", "as_loader"]


class EpochMean:
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


# ---------------------------------------------------------------------------------------------- local BatchNorm
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

    Parameters
    ----------
    module
        The model whose ``SyncBatchNorm`` layers run locally inside the context.
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
    """Make every ``SyncBatchNorm`` of ``module`` a local BatchNorm for good (search after DDP training).

    Parameters
    ----------
    module
        The trained model.

    Returns
    -------
    torch.nn.Module
        ``module`` itself.
    """
    local_batchnorm(module).__enter__()
    return module


# ---------------------------------------------------------------------------------------------- precision
class ScalerStepPrecision(pl.plugins.precision.MixedPrecision):  # type: ignore[misc]
    """Lightning's float16 mixed precision for our manual step: the engine owns the GradScaler calls.

    :meth:`SupernetEngine.optimizer_step` unscales, checks the gradients (an overflow lowers the
    scale and skips the step) and updates the scale; by the time Lightning's optimizer step runs
    the gradients are known finite, so it only steps the optimizer (no second unscale, and not
    ``GradScaler.step``'s host read of the overflow flag).
    """

    def optimizer_step(self, optimizer: Any, model: Any, closure: Callable[[], Any], **kwargs: Any) -> Any:
        """Step ``optimizer`` directly when the engine has unscaled its gradients; else Lightning's step."""
        state = self.scaler._per_optimizer_states[id(optimizer)] if self.scaler is not None else None
        if state is None or state["stage"] is not OptState.UNSCALED:
            return super().optimizer_step(optimizer, model=model, closure=closure, **kwargs)
        closure()
        self._after_closure(model, optimizer)
        return optimizer.step(**kwargs)


def lightning_precision(precision: str, accelerator: str) -> tuple[Any, list]:
    """``(Trainer precision, extra plugins)`` for ``training.precision`` (``32``, ``bf16`` or ``16``).

    Parameters
    ----------
    precision
        ``training.precision``.
    accelerator
        The Trainer's accelerator; float16 needs CUDA.

    Returns
    -------
    tuple
        The ``precision`` argument of ``pl.Trainer`` (``None``: set by the plugin) and the plugins.
    """
    if precision == "16":
        if accelerator == "cpu":
            raise ConfigError("training.precision", precision,
                              "16 (float16 with a GradScaler) needs a CUDA GPU; use bf16 on the CPU")
        return None, [ScalerStepPrecision("16-mixed", "cuda")]
    return {"32": "32-true", "bf16": "bf16-mixed"}[precision], []


# ---------------------------------------------------------------------------------------------- direct backward
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

    Parameters
    ----------
    trainer
        The running ``pl.Trainer``.
    module
        The Lightning module being trained.

    Returns
    -------
    bool
    """
    if type(trainer.strategy) is not SingleDeviceStrategy:
        return False
    if type(trainer.precision_plugin) is not pl.plugins.precision.Precision:
        return False
    if not isinstance(trainer.profiler, PassThroughProfiler):
        return False
    if not all(_default_hook(module, name) for name in _STEP_HOOKS):
        return False
    return all(getattr(type(cb), name, None) is getattr(pl.Callback, name, None)
               for cb in trainer.callbacks for name in _STEP_HOOKS)


def plain_backward(loss: torch.Tensor) -> None:
    """``manual_backward`` where :func:`direct_backward_and_step` holds."""
    loss.backward()


def counted_step(lightning_opt: Any) -> Callable[[], None]:
    """``lightning_opt.step()`` where :func:`direct_backward_and_step` holds: the step, counted as Lightning counts it.

    The manual-optimization loop sets the optimizer's ``_on_before_step`` / ``_on_after_step``
    around every batch; they advance ``trainer.global_step`` (checkpoints, loggers), so they run here too.

    Parameters
    ----------
    lightning_opt
        Lightning's wrapper of the engine's optimizer (``module.optimizers()``).

    Returns
    -------
    Callable
        ``step()``.
    """
    optimizer = lightning_opt.optimizer

    def step() -> None:
        lightning_opt._on_before_step()
        optimizer.step()
        lightning_opt._on_after_step()

    return step


# ---------------------------------------------------------------------------------------------- distributed
def all_gather_observations(index: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's ``(index, score)`` observations of the epoch, concatenated in rank order.

    Parameters
    ----------
    index, scores
        This rank's example indices and their importance scores.

    Returns
    -------
    tuple[torch.Tensor, torch.Tensor]
    """
    gathered: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, (index.cpu(), scores.cpu()))
    return torch.cat([i for i, _ in gathered]), torch.cat([s for _, s in gathered])


# ---------------------------------------------------------------------------------------------- checkpoints
def global_rng() -> dict:
    """The process-wide RNG streams (torch CPU, numpy, Python) as plain data."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, state, gauss_py = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype("int64")), int(pos),
                                                      int(has_gauss), float(gauss)],
            "python": [int(version), torch.tensor(state, dtype=torch.int64),
                       None if gauss_py is None else float(gauss_py)]}


def set_global_rng(state: dict) -> None:
    """Restore :func:`global_rng`."""
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
    ``torch.load(weights_only=True)``: every value our module, our callbacks and Lightning's
    loops put in a checkpoint is plain data (tensors, numbers, strings, lists, dicts).
    """

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Optional[Any] = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically."""
        atomic_torch_save(path, checkpoint)

    def load_checkpoint(self, path: Any, map_location: Optional[Any] = lambda storage, loc: storage,
                        weights_only: Optional[bool] = None) -> dict:
        """Read a checkpoint as plain data; a truncated or foreign file is a one-line error."""
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # truncated, corrupt, or holding pickled objects
            raise ConfigError("--resume", str(path), f"cannot be read as a plain-data checkpoint "
                              f"({type(exc).__name__}); delete it to start over") from None


# ---------------------------------------------------------------------------------------------- small helpers
def first_optimizer(conf: Any) -> torch.optim.Optimizer:
    """The first optimizer in whatever ``configure_optimizers`` returned (an optimizer, a dict or a list)."""
    if isinstance(conf, torch.optim.Optimizer):
        return conf
    if isinstance(conf, dict):
        return first_optimizer(conf["optimizer"])
    if isinstance(conf, (list, tuple)) and conf:
        return first_optimizer(conf[0])
    raise TypeError(f"the evaluator's configure_optimizers returned no optimizer: {conf!r}")


def as_loader(loaders: Any) -> Any:
    """The first loader of a list, tuple or dict of loaders; a single loader as it is."""
    if isinstance(loaders, (list, tuple)):
        return loaders[0]
    if isinstance(loaders, dict):
        return next(iter(loaders.values()))
    return loaders
