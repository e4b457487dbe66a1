"""The supernet training step, in plain PyTorch.

:class:`SupernetEngine` holds the supernet(s), one optimizer and the recipe's
components, and runs this step::

    for leaf in partition.step_leaves():      # one drawn leaf, or every leaf (per_leaf budget)
        paths = path_sampler.sample(partition.leaves[leaf])
        loss  = update_rule.apply(engine, leaf, paths, batch, step)
    path_sampler.observe(...); data_sampler.observe(...)

It knows nothing of NNI or Lightning: the bridge passes in a ``set_arch`` function per
supernet and a ``backward`` function (Lightning's ``manual_backward``).
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError, TrainingDiverged
from . import grad_checks
from .grad_checks import checked_grads, clip_with_norms, grad_norms
from .lr import LRPolicy
from .optimizer_state import OptimizerStatePolicy
from .partition import Partition
from .paths import PathSampler
from .updates import UpdateRule

__all__ = ["SupernetEngine", "NonFiniteLossError"]


#: Module kinds whose forward differs between train and eval mode.
_MODE_SENSITIVE = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd, nn.modules.instancenorm._InstanceNorm)


class NonFiniteLossError(TrainingDiverged):
    """A step produced a NaN or infinite loss or gradient; the message names the step and the subnet."""


def _norm_params(module: nn.Module, which: str) -> list[nn.Parameter]:
    """The parameters of a candidate op that make its PA gradient norm (``conv``: convolutions only)."""
    if which == "all":
        return list(module.parameters())
    return [p for m in module.modules() if isinstance(m, nn.modules.conv._ConvNd) for p in m.parameters(recurse=False)]


class SupernetEngine:
    """Runs training steps of a weight-sharing supernet from composable components.

    Parameters
    ----------
    models
        One supernet per partition leaf (leaf 0 is the NNI-mutated model space).
    set_arch
        ``set_arch[leaf](arch)`` makes supernet ``leaf`` run ``arch``.
    optimizer
        A torch optimizer over the parameters of every model.
    path_sampler, lr_policy, state_policy, update_rule, partition
        The components; see :mod:`nni_dynamic_supernet.training`.
    data_sampler
        Optional importance data sampler with ``observe(index, scores)``.
    grad_clip
        Max global gradient norm per optimizer step, or ``None``.
    skip_nonfinite
        Skip (instead of failing on) a step whose loss is NaN or infinite.
    op_modules
        Per leaf, ``(label, choice, module)`` of every candidate op (per-op gradient norms).
    unused_grads
        ``none``: a parameter the step did not train has no gradient, so the optimizer leaves
        it alone (the SPOS code). ``zero``: every parameter of the trained sub-supernet gets
        a zero gradient when it has none, so weight decay and the active optimizer state's
        momentum move it every step, as under the PyTorch 1.8 ``zero_grad`` the DYNAS code
        (CaLR, MS) ran on. DYNAS gives a parameter zeros only after its first use; here every
        parameter of the leaf has them from the first step.
    op_norm_params
        Which tensors of an op make PA's gradient norm: ``conv`` (convolution weights and
        biases, the official PA&DA code) or ``all`` (every parameter, BN affine included).
    """

    def __init__(self, models: Sequence[nn.Module], set_arch: Sequence[Callable[[dict], None]],
                 optimizer: torch.optim.Optimizer, path_sampler: PathSampler, lr_policy: LRPolicy,
                 state_policy: OptimizerStatePolicy, update_rule: UpdateRule, partition: Partition,
                 data_sampler: Any = None, grad_clip: Optional[float] = None,
                 criterion: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
                 skip_nonfinite: bool = False, op_modules: Optional[Sequence[list]] = None,
                 unused_grads: str = "none", op_norm_params: str = "conv") -> None:
        if unused_grads not in ("none", "zero"):
            raise ConfigError("training.unused_grads", unused_grads, "allowed values: none, zero")
        if op_norm_params not in ("conv", "all"):
            raise ConfigError("training.pa_op_norm", op_norm_params, "allowed values: conv, all")
        self.unused_grads = unused_grads
        self.op_norm_params = op_norm_params
        self.models = list(models)
        self.set_arch_fns = list(set_arch)
        self.optimizer = optimizer
        self.path_sampler = path_sampler
        self.lr_policy = lr_policy
        self.state_policy = state_policy
        self.update_rule = update_rule
        self.partition = partition
        self.data_sampler = data_sampler
        self.grad_clip = grad_clip
        self.criterion = criterion or F.cross_entropy
        self.skip_nonfinite = skip_nonfinite
        self.op_modules = list(op_modules) if op_modules is not None else [[] for _ in self.models]
        self.backward: Callable[[torch.Tensor], None] = lambda loss: loss.backward()
        # Lightning's optimizer step when run by the bridge (keeps its step counting and precision hooks).
        self.step_fn: Callable[[], Any] = optimizer.step
        #: Steps dropped because their gradients were not finite (``skip_nonfinite``).
        self.skipped_steps = 0
        #: The float16 path's ``torch.amp.GradScaler`` (set by the bridge for ``training.precision: 16``); None
        #: otherwise. Losses are then scaled by ``backward`` and every step unscales before checking.
        self.scaler: Any = None
        #: float16 steps skipped because the scaled gradients overflowed (the scaler lowered its scale);
        #: loss-scale calibration, not divergence: they never count as ``skipped_steps`` nor raise.
        self.scaler_skips = 0
        # Optimizer steps whose gradients were verified finite (the step's one host read), and the deferred
        # loss check: a non-finite loss whose gradients were all finite cannot have moved the weights, so
        # it is flagged on the device and raised at :meth:`check_deferred` (epoch end) instead of read per step.
        self._checked_steps = 0
        self._loss_flags: list[torch.Tensor] = []
        self._loss_steps: list[tuple[int, dict]] = []
        self.last_lr = 0.0
        self.last_paths: list[dict] = []
        #: Called as ``fn(step, paths)`` after every step (diagnostics; must not change training state).
        self.step_observers: list[Callable[[int, list[dict]], None]] = []
        self._current_arch: Optional[dict] = None
        self._params = [p for group in optimizer.param_groups for p in group["params"]]
        self._op_tables: dict[int, dict] = {}
        #: The leaf being trained (``unused_grads='zero'`` fills its parameters' missing gradients).
        self._leaf = 0
        self._leaf_params: dict[int, tuple[tuple, list[nn.Parameter], list[torch.Tensor]]] = {}
        #: Steps taken so far (the step index after the last ``train_step``).
        self.steps_done = 0
        # Flat list of every module, built once: checking train mode on it is cheap, while
        # ``Module.train()`` re-walks and re-sets ~900 modules of a NAS-Bench-201 supernet (all
        # candidates) on every call, a cost that grows with the space.
        # Only the modules whose forward depends on the mode are checked (BatchNorm, dropout, and any module of
        # another kind that defines its own ``train``), plus the roots: ``eval()`` / ``train(False)`` of a model
        # flips its root, so a third of the walk finds every mode change our code or a user makes.
        self._all_modules = [m for model in self.models for m in model.modules()
                             if m is model or isinstance(m, _MODE_SENSITIVE) or type(m).train is not nn.Module.train]

    # ------------------------------------------------------------------ primitives used by update rules
    def forward(self, leaf: int, arch: dict, x: torch.Tensor) -> torch.Tensor:
        """Run ``arch`` of sub-supernet ``leaf`` on ``x``."""
        self.set_arch_fns[leaf](arch)
        self._current_arch = arch
        return self.models[leaf](x)

    def zero_grad(self) -> None:
        """Zero gradients with ``set_to_none`` so unused ops are skipped by the optimizer.

        What ``optimizer.zero_grad(set_to_none=True)`` does, without its profiler and hook
        bookkeeping (a millisecond per call on a CPU step).
        """
        for p in self._params:
            if p.grad is not None:
                p.grad = None

    def _one_kind(self) -> bool:
        """Whether every parameter has one device and dtype (rechecked when the models move)."""
        device = self._params[0].device if self._params else None
        if getattr(self, "_kind_device", "unset") != device:
            self._kind_device = device
            self._single_kind = len({(p.device, p.dtype) for p in self._params}) <= 1
        return self._single_kind

    def inverse_loss_scale(self) -> Optional[torch.Tensor]:
        """``1 / scale`` of the float16 GradScaler as a device tensor (no host sync), or None without one.

        Update rules that apply gradients themselves (Reptile's inner steps) unscale with it.
        """
        if self.scaler is None:
            return None
        return self.scaler._scale.double().reciprocal().float()

    def optimizer_step(self, key: Hashable, step: int, arch: Optional[dict], grads_scaled: bool = True) -> bool:
        """Check, clip, select the optimizer state ``key``, set the LR and step.

        ``arch`` is the single path of the step (its CaLR factor scales the LR) or
        ``None`` for an accumulated multi-path step (factors were applied to the losses).
        Gradients are checked *before* anything moves: a NaN or infinite gradient (a
        non-finite loss, or an exploding one whose norm overflows) raises
        :class:`NonFiniteLossError` naming the step and the subnet, so the weights, the
        optimizer state and the last checkpoint stay those of the last good step. With
        ``skip_nonfinite`` the step is dropped instead. Returns whether the step was taken.

        With a float16 GradScaler the gradients are unscaled first (so clipping, the
        check and PA's gradient norms see true gradients). A non-finite gradient is then
        the scaler's overflow: the scale is lowered and the step skipped, as ``torch.amp``
        does, and counted in :attr:`scaler_skips`; a non-finite *loss* is still caught as
        divergence by :meth:`train_step`. ``grads_scaled=False`` says the ``.grad`` tensors
        are not scaled losses' gradients (Reptile's weight differences): they are multiplied
        by the scale first, exactly (the scale is a power of two), so one unscaling serves both.
        """
        scaler = self.scaler
        if scaler is not None:
            if not grads_scaled:
                grads = [p.grad for p in self._params if p.grad is not None]
                if grads:
                    torch._foreach_mul_(grads, scaler._scale)
            scaler.unscale_(self.optimizer)
        checked = self._flat_check() if scaler is None else None
        total: Optional[float] = None
        if checked is not None:
            finite, norms = True, None
            kept, total = checked
        else:
            finite, kept, norms = checked_grads(self._params)
        if not finite:
            if scaler is not None:
                scaler.update()  # lowers the scale from the overflow unscale_ recorded
                self.scaler_skips += 1
                self.zero_grad()
                return False
            subnet = arch if arch is not None else self._current_arch
            if not self.skip_nonfinite:
                raise NonFiniteLossError(f"non-finite gradient at step {step} training subnet {subnet}")
            self.skipped_steps += 1
            self.zero_grad()
            return False
        if self.unused_grads == "zero":
            self._fill_zero_grads()  # zero norms: the clip total below is unchanged
        if self.grad_clip is not None and kept:
            if total is not None and total < 0.99 * self.grad_clip:
                pass  # clip_grad_norm_'s coefficient would be exactly 1.0 (its float32 total is < max_norm): a no-op
            elif total is not None:
                clip_with_norms(kept, grad_norms([p.grad for p in kept]), self.grad_clip)
            elif self._one_kind() and norms is not None and norms.dtype == kept[0].grad.dtype:
                clip_with_norms(kept, norms, self.grad_clip)  # type: ignore[arg-type]
            else:
                torch.nn.utils.clip_grad_norm_(kept, self.grad_clip)
        self.state_policy.activate(self.optimizer, key)
        lr = (self.lr_policy.lr(step, arch) if arch is not None
              else self.lr_policy.base_lr * self.lr_policy.schedule(step))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.last_lr = lr
        self._checked_steps += 1
        self.step_fn()
        if scaler is not None:
            scaler.update()
        return True

    def _flat_check(self) -> Optional[tuple[list, float]]:
        """:func:`~.grad_checks.flat_check` where it applies (every parameter a float32 CPU tensor), else None."""
        if not self._params or not self._one_kind():
            return None
        first = self._params[0]
        if first.device.type != "cpu" or first.dtype != torch.float32:
            return None  # CUDA's _foreach_norm is fused; other dtypes keep the clip_grad_norm_ path
        return grad_checks.flat_check(self._params)

    def _fill_zero_grads(self) -> None:
        """Give every parameter of the trained leaf without a gradient a zero one (``unused_grads='zero'``).

        The zero tensors are kept per parameter and zeroed again in one ``_foreach_zero_`` call
        before each use (an optimizer may write into a gradient, e.g. Nesterov SGD without weight
        decay), instead of a ``zeros_like`` allocation per parameter and step: the same zeros.
        """
        cached = self._leaf_params.get(self._leaf)
        if cached is None or cached[0] != self._kind_key():  # first use, or the models moved
            params = [p for p in self.models[self._leaf].parameters() if p.requires_grad]
            cached = self._leaf_params[self._leaf] = (self._kind_key(), params, [torch.zeros_like(p) for p in params])
        _, params, zeros = cached
        missing = [(p, z) for p, z in zip(params, zeros) if p.grad is None]
        if missing:
            torch._foreach_zero_([z for _, z in missing])
            for p, z in missing:
                p.grad = z

    def _kind_key(self) -> tuple:
        """The device and dtype of the first parameter (the zero gradients are rebuilt when they change)."""
        first = self._params[0]
        return (first.device, first.dtype)

    def observe_examples(self, index: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Give the data sampler each example's importance ``||softmax(z) - onehot(y)||``, at no extra forward."""
        if self.data_sampler is None or not getattr(self.data_sampler, "needs_example_scores", False):
            return
        with torch.no_grad():
            probs = torch.softmax(logits.detach().float(), dim=1)
            probs[torch.arange(len(y), device=y.device), y] -= 1.0
            self.data_sampler.observe(index, probs.norm(dim=1))

    def observe_ops(self, leaf: int, arch: dict) -> None:
        """Hook for path importance sampling: per-op gradient norms of ``arch``'s ops.

        Update rules call it after the optimizer step, so the norms are those of the clipped
        gradients the step used (``.grad`` is kept until the next ``zero_grad``), as in the
        official PA&DA code (``nasbench201/train_panda_201.py``).
        """
        if not self.path_sampler.needs_op_grad_norms:
            return
        self.path_sampler.observe([arch], self.op_grad_norms(leaf, arch))

    def _op_param_table(self, leaf: int) -> dict:
        """``(label, choice) -> parameters`` of sub-supernet ``leaf``, built once (the step must not walk modules)."""
        tables = self._op_tables
        if leaf not in tables:
            table: dict = {}
            for label, choice, module in self.op_modules[leaf]:
                params = table.setdefault((label, choice), [])
                known = {id(p) for p in params}
                params.extend(p for p in _norm_params(module, self.op_norm_params) if id(p) not in known)
            tables[leaf] = table
        return tables[leaf]

    def op_grad_norms(self, leaf: int, arch: dict) -> dict:
        """Per chosen op, the sum of its parameter tensors' gradient L2 norms, keyed by (label, choice).

        The tensors are those :attr:`op_norm_params` selects (default: convolution weights and
        biases only, as the official PA&DA code).
        Summed over every module carrying the label (all cells of a cell space); an op
        without parameters or gradients gets 0. One host-device synchronisation per call.
        """
        table = self._op_param_table(leaf)
        keys: list = []
        grads: list[torch.Tensor] = []
        owner: list[int] = []
        for label, choice in arch.items():
            params = table.get((label, choice))
            if params is None:
                continue
            keys.append((label, choice))
            for p in params:
                if p.grad is not None:
                    grads.append(p.grad)
                    owner.append(len(keys) - 1)
        norms = {key: 0.0 for key in keys}
        if grads:
            per_tensor = grad_norms(grads)
            sums = torch.zeros(len(keys), dtype=per_tensor.dtype, device=per_tensor.device)
            sums.index_add_(0, torch.tensor(owner, device=per_tensor.device), per_tensor)
            norms.update(zip(keys, sums.tolist()))
        return norms

    # ------------------------------------------------------------------ the step
    def train_step(self, batch: Sequence[torch.Tensor], step: int) -> torch.Tensor:
        """Run one training step on ``batch`` (``(x, y)`` or ``(x, y, index)``); return the mean loss."""
        if len(batch) == 2:
            x, y = batch
            index = torch.full((len(y),), -1, dtype=torch.long, device=y.device)
        else:
            x, y, index = batch[0], batch[1], batch[2]
        skipped_before = self.skipped_steps
        checked_before = self._checked_steps
        self._ensure_train_mode()
        # The partition may restart the LR schedule at a GM-NAS restart (fix_sche); otherwise this is ``step``.
        lr_step = self.partition.schedule_step(step, getattr(self.lr_policy, "total_steps", 0))
        # One drawn leaf (shared budget) or every leaf on the same batch (per_leaf budget).
        leaves = self.partition.step_leaves()
        paths: list[dict] = []
        losses = []
        for leaf in leaves:
            leaf_paths = self.path_sampler.sample(self.partition.leaves[leaf])
            paths.extend(leaf_paths)
            self._leaf = leaf
            losses.append(self.update_rule.apply(self, leaf, leaf_paths, (x, y, index), lr_step))
            for observer in self.step_observers:  # per leaf: the gradients it sees are this leaf's
                observer(step, leaf_paths)
        loss = losses[0] if len(losses) == 1 else torch.stack(losses).mean()
        self.last_paths = paths
        self.steps_done = step + 1
        if self._checked_steps > checked_before and not self.skip_nonfinite:
            # Every optimizer step of this step read its gradients finite: defer the loss check (no host sync).
            self._loss_flags.append(torch.isfinite(loss.detach()))
            self._loss_steps.append((step, paths[0]))
            return loss
        if not torch.isfinite(loss):
            # Reached only when the update rule dropped the step itself (Reptile restores theta) or skipping is on.
            if not self.skip_nonfinite:
                raise NonFiniteLossError(f"non-finite loss {float(loss)} at step {step} training subnet {paths[0]}")
            if self.skipped_steps == skipped_before:  # the update rule dropped it without asking optimizer_step
                self.skipped_steps += 1
        return loss

    def check_deferred(self) -> None:
        """Read the deferred loss checks (one host sync); raise :class:`NonFiniteLossError` for the first bad step.

        Called at the epoch end and before any evaluation; the weights are those of the last
        good optimizer step either way (non-finite gradients are caught when they occur).
        """
        flags, steps = self._loss_flags, self._loss_steps
        self._loss_flags, self._loss_steps = [], []
        if not flags:
            return
        bad = torch.nonzero(~torch.stack(flags)).reshape(-1).tolist()
        if bad:
            step, subnet = steps[bad[0]]
            raise NonFiniteLossError(f"non-finite loss at step {step} training subnet {subnet}")

    # ------------------------------------------------------------------ the samplers' lifecycle
    def end_epoch(self, epoch: int, total_epochs: int) -> None:
        """Close epoch ``epoch`` (0-based): read the deferred loss checks, then update both samplers' distributions.

        Importance samplers (PA, DA) turn the epoch's observations into the next epoch's
        distribution here; uniform samplers have nothing to update.
        """
        self.check_deferred()
        self.path_sampler.on_epoch_end(epoch, total_epochs)
        if self.data_sampler is not None:
            self.data_sampler.on_epoch_end(epoch, total_epochs)

    def epoch_metrics(self) -> dict[str, float]:
        """The samplers' scalars for the epoch's log row (PA: per-op probabilities, DA: entropy of q).

        A third-party sampler without ``epoch_metrics`` reports nothing.
        """
        row: dict[str, float] = {}
        for sampler in (self.path_sampler, self.data_sampler):
            row.update(getattr(sampler, "epoch_metrics", dict)())
        return row

    def sampling_summary(self) -> dict:
        """The samplers' per-epoch history for results.json: ``{"paths": ..., "data": ...}``."""
        return {"paths": getattr(self.path_sampler, "summary", dict)(),
                "data": getattr(self.data_sampler, "summary", dict)()}

    def _ensure_train_mode(self) -> None:
        """Put every model in train mode, calling ``train()`` only when some module is not.

        Evaluation between steps restores the mode with ``model.train(was_training)``, so
        the flat check almost always passes. A model whose ``train()`` override leaves some
        modules in eval mode fails the check and gets ``train()`` every step.
        """
        if not all(m.training for m in self._all_modules):
            for model in self.models:
                model.train()

    # ------------------------------------------------------------------ state
    @property
    def params(self) -> list[nn.Parameter]:
        """Every parameter the optimizer updates, in a fixed order (checkpoint indexing)."""
        return self._params

    def state_dict(self) -> dict:
        """Component states (samplers, optimizer states by cluster, partition) as plain data."""
        return {
            "path_sampler": self.path_sampler.state_dict(),
            "state_policy": self.state_policy.state_dict(self._params),
            "partition": self.partition.state_dict(),
            "update_rule": self.update_rule.state_dict(),
            "data_sampler": self.data_sampler.state_dict() if self.data_sampler is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (models and optimizer must already exist)."""
        self.path_sampler.load_state_dict(state["path_sampler"])
        self.state_policy.load_state_dict(state["state_policy"], self._params)
        self.partition.load_state_dict(state["partition"])
        self.update_rule.load_state_dict(state["update_rule"])
        if self.data_sampler is not None and state.get("data_sampler") is not None:
            self.data_sampler.load_state_dict(state["data_sampler"])
