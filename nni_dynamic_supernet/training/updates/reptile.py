"""SUMNAS: Reptile meta-training of supernet weights under strict fairness (an update rule).

Ha et al., *SUMNAS: Supernet with Unbiased Meta-Features for Neural Architecture Search*, ICLR 2022. Each
subnet of a step is a meta-learning "task". For every path ``i`` of the step (the ``m`` strict-fair
permutations of FairNAS):

1. start from the shared weights ``theta``;
2. run ``k`` inner SGD steps on path ``i`` (inner LR ``eps1``, momentum 0.9), giving ``theta_i``;
3. accumulate ``g += w_i * (theta - theta_i)`` (``w_i = 1`` unless CaLR weights the paths);
4. restore ``theta`` exactly before the next path.

Then ``g`` becomes the ``.grad`` of every parameter and the engine's *outer* optimizer takes one step at the
recipe's LR (``eps0``, cosine by default) with its weight decay and the recipe's optimizer-state policy (MS).
Summing, not averaging, follows the paper's Algorithm 1 and makes ``k = 1`` reduce exactly to FairNAS with LR
``eps0 * eps1`` (SUMNAS Algorithm 1 sums ``g += eps0 * (theta - theta_i)``; PA&DA's reimplementation averages,
which is ``m`` times smaller).

Memory and speed
----------------
The model is never copied. Per step, only the parameters a path touches (its chosen candidate ops plus every
parameter outside the layer choices) and their buffers are snapshotted and restored, into buffers allocated
once and reused. Extra memory held between steps is one snapshot and one accumulator per parameter (2x the
parameter bytes; FairNAS holds 1x, its momentum, and the paper's outer SGD has none). The inner momentum of
``inner_state: reset`` exists only while a path adapts and adopts the first gradient tensor as its buffer (no
allocation); ``persistent`` keeps one buffer per parameter and state key. See :meth:`ReptileStep.extra_bytes`.
The inner SGD is a few fused ``torch._foreach_*`` calls over the path's tensors, not a torch optimizer, so no
optimizer object is built per path.

BatchNorm running statistics
----------------------------
Buffers (BN ``running_mean`` / ``running_var`` / ``num_batches_tracked``) are *not* part of the Reptile
difference: a running average has no gradient-like meaning. After each path they are restored to their value
right after the path's first inner forward, which ran at ``theta``; the statistics of the adapted weights
``theta_i`` (inner steps 2..k) are discarded. The buffers therefore evolve exactly as under FairNAS (one
forward per path at the shared weights, paths in sequence), so ``search.bn_mode: inherit`` stays meaningful
and ``k = 1`` matches FairNAS buffers too. Training-mode forwards use batch statistics, so the weight
trajectory does not depend on the buffers at all."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Hashable, Optional, Sequence

import torch
import torch.nn as nn

from ...components import UPDATE_RULES
from ...errors import ConfigError
from ..context import EngineContext
from ..optimizer_state.momentum import _plain_key, _unplain_key
from .gradient_step import UpdateRule, group_paths

if TYPE_CHECKING:  # pragma: no cover
    from ...recipe import Recipe
    from ..step import StepHelpers

__all__ = ["ReptileStep", "ReptileOptions", "default_inner_lr", "INNER_LR_AT_4_STEPS"]

#: SUMNAS Table 6: inner LR tuned on CIFAR-10 / NAS-Bench-201 at k = 4 adaptation steps.
INNER_LR_AT_4_STEPS = 0.05


def default_inner_lr(steps: int) -> float:
    """The paper's inner LR for ``steps`` adaptation steps: ``0.05 * 4 / k`` (0.1 at k = 2, 0.2 at k = 1).

    The 4/k rescaling keeps the total movement of ``k`` inner steps equal to the k = 4 tuning
    (SUMNAS Appendix D).
    """
    return INNER_LR_AT_4_STEPS * 4.0 / steps


class _LeafIndex:
    """Which engine parameters (by index) and buffers each path of one supernet touches.

    A path touches every tensor outside the layer choices ("shared": stem, head,
    reduction blocks) plus those of its chosen candidate of every layer choice. A tensor
    inside a nested choice is attributed to every enclosing candidate, which only ever
    snapshots too much, never too little.
    """

    def __init__(self, model: nn.Module, op_modules: Sequence[tuple], param_index: dict[int, int]) -> None:
        self.choice_params: dict[tuple, list[int]] = {}
        self.choice_buffers: dict[tuple, list[torch.Tensor]] = {}
        self.labels: set[str] = set()
        inside_p: set[int] = set()
        inside_b: set[int] = set()
        for label, choice, module in op_modules:
            key = (str(label), choice)
            self.labels.add(str(label))
            plist = self.choice_params.setdefault(key, [])
            for p in module.parameters():
                inside_p.add(id(p))
                if id(p) in param_index:
                    plist.append(param_index[id(p)])
            blist = self.choice_buffers.setdefault(key, [])
            for b in module.buffers():
                inside_b.add(id(b))
                blist.append(b)
        self.shared_params = [param_index[id(p)] for p in model.parameters()
                              if id(p) not in inside_p and id(p) in param_index]
        self.shared_buffers = [b for b in model.buffers() if id(b) not in inside_b]
        self.checked = False

    def _keys(self, arch: dict) -> list[tuple]:
        keys = []
        for label, value in arch.items():
            key = (str(label), value)
            if key not in self.choice_params:
                if str(label) in self.labels:
                    # A silent miss would leave the op's weights out of the snapshot and the update.
                    raise RuntimeError(f"Reptile: choice {value!r} of label {label!r} matches no candidate module")
                continue
            keys.append(key)
        return keys

    def params_of(self, arch: dict) -> list[int]:
        """Engine parameter indices the path ``arch`` touches (shared first, no duplicates)."""
        idx = list(self.shared_params)
        for key in self._keys(arch):
            idx.extend(self.choice_params[key])
        return list(dict.fromkeys(idx))

    def buffers_of(self, arch: dict) -> list[torch.Tensor]:
        """Buffers of the path ``arch`` (BN statistics of the shared part and the chosen ops)."""
        out = {id(b): b for b in self.shared_buffers}
        for key in self._keys(arch):
            for b in self.choice_buffers[key]:
                out[id(b)] = b
        return list(out.values())


class ReptileStep(UpdateRule):
    """SUMNAS update rule: per path, ``k`` inner SGD steps from ``theta``; one outer step on the sum of differences.

    Parameters
    ----------
    steps
        Adaptation steps ``k`` per path (``training.reptile_steps``).
    inner_lr
        Constant inner SGD LR ``eps1``; ``None`` gives :func:`default_inner_lr` (``0.05 * 4 / k``).
    inner_momentum
        Inner SGD momentum (0.9 in the paper; no dampening, no Nesterov, no weight decay).
    inner_state
        ``"reset"`` (default): each path's adaptation starts with an empty momentum buffer, as
        pure Reptile has it, so the first inner step is plain SGD and ``k = 1`` equals FairNAS.
        ``"persistent"``: one inner momentum per optimizer-state key (per leaf; per MS cluster
        under ``optimizer_state: separated``) that carries over paths and steps, as PA&DA's
        reimplementation keeps one inner optimizer (the paper does not say).
    inner_batches
        ``"same"`` (default, Algorithm 1 and PA&DA): every inner step uses the step's whole
        batch. ``"split"``: inner step ``j`` uses chunk ``j`` of ``k`` equal chunks, so each
        subnet sees every example once per step. Fresh full-size batches per inner step
        (Appendix H's reading) are ``split`` with ``data.batch_size`` multiplied by ``k``.
    inner_grad_clip
        Max gradient norm of each inner step (over the path's parameters), or ``None``. The
        paper states none; the default 5 is PA&DA's reimplementation, and it clips in the
        inner loop only. ``k = 1`` equals FairNAS exactly with ``None`` (FairNAS
        clips the summed gradient, Reptile each path's). The Reptile difference itself is
        clipped only by the engine's ``grad_clip`` (the outer step's; off in the presets).

    Notes
    -----
    Several optimizer-state groups in one step (strict-fair paths under MS) are handled like
    :class:`~nni_dynamic_supernet.training.updates.GradientStep`: one Reptile outer step per group, in order. With
    several paths in a group each path's difference is weighted by the LR policy's ``path_factor`` (CaLR's FairNAS
    semantics); a single-path group takes the factor in its outer LR instead. Both reduce to FairNAS(+CaLR) /
    SPOS(+CaLR) at ``k = 1``. A path sampler's ``loss_weight(arch)`` (importance sampling) scales the path's
    difference, which at ``k = 1`` is the same as scaling its loss.

    The returned loss is the mean, over paths, of each path's first inner-step loss (the loss at ``theta``,
    comparable with FairNAS's). If any inner loss is not finite, the outer step is skipped (``theta`` is already
    restored) and a non-finite loss is returned, so the engine fails or skips the step as configured.

    Mixed precision with a loss scaler is not supported: the inner steps read ``.grad`` directly, which would still
    be scaled.
    """

    def __init__(self, steps: int = 4, inner_lr: Optional[float] = None, inner_momentum: float = 0.9,
                 inner_state: str = "reset", inner_batches: str = "same",
                 inner_grad_clip: Optional[float] = 5.0) -> None:
        if steps < 1:
            raise ValueError(f"ReptileStep: steps must be >= 1, got {steps}")
        if inner_state not in ("reset", "persistent"):
            raise ValueError(f"ReptileStep: inner_state must be reset or persistent, got {inner_state!r}")
        if inner_batches not in ("same", "split"):
            raise ValueError(f"ReptileStep: inner_batches must be same or split, got {inner_batches!r}")
        self.steps = int(steps)
        self.inner_lr = float(inner_lr) if inner_lr is not None else default_inner_lr(self.steps)
        self.inner_momentum = float(inner_momentum)
        self.inner_state = inner_state
        self.inner_batches = inner_batches
        self.inner_grad_clip = inner_grad_clip
        self._engine_id: Optional[int] = None
        self._leaves: dict[int, _LeafIndex] = {}
        # Preallocated per engine-parameter index, reused every step (allocated on first use).
        self._snap: list[Optional[torch.Tensor]] = []
        self._acc: list[Optional[torch.Tensor]] = []
        self._buffer_snap: dict[int, torch.Tensor] = {}
        # Persistent inner momentum: state key -> {engine parameter index: buffer} (from its first gradient on).
        self._persistent: dict[Hashable, dict[int, torch.Tensor]] = {}
        self._peak_path_momentum = 0
        #: float16 only: a device flag set when an inner gradient overflowed (read once per path group).
        self._inner_overflow: Optional[torch.Tensor] = None
        self._pending: Optional[dict] = None

    # ------------------------------------------------------------------ bookkeeping
    def _bind(self, engine: "StepHelpers") -> None:
        if self._engine_id == id(engine):
            return
        n = len(engine.params)
        self._engine_id = id(engine)
        self._leaves = {}
        self._snap, self._acc = [None] * n, [None] * n
        self._buffer_snap = {}
        if self._pending is not None:
            self._restore_persistent(engine, self._pending)
            self._pending = None

    def _leaf(self, engine: "StepHelpers", leaf: int) -> _LeafIndex:
        if leaf not in self._leaves:
            index = {id(p): i for i, p in enumerate(engine.params)}
            self._leaves[leaf] = _LeafIndex(engine.models[leaf], engine.op_modules[leaf], index)
        return self._leaves[leaf]

    @staticmethod
    def _alloc(store: list, indices: Sequence[int], params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for i in indices:
            t = store[i]
            if t is None:
                t = store[i] = torch.empty_like(params[i], memory_format=torch.preserve_format)
            out.append(t)
        return out

    def _momentum_store(self, key: Hashable) -> dict[int, torch.Tensor]:
        # Reset mode: a fresh dict per path, so every adaptation starts without momentum and its
        # buffers are freed when the path ends (no memory held between paths).
        if self.inner_state == "reset":
            return {}
        return self._persistent.setdefault(key, {})

    # ------------------------------------------------------------------ the step
    def apply(self, engine: "StepHelpers", leaf: int, paths: list[dict], batch: tuple,
              step: int) -> torch.Tensor:
        """Per path k inner steps from theta, then one outer step per state group on the summed differences."""
        self._bind(engine)
        index = self._leaf(engine, leaf)
        x = batch[0]
        first_total = torch.zeros((), device=x.device)
        healthy = True
        for key, group in group_paths(engine, leaf, paths).items():
            first, finite = self._group_step(engine, leaf, index, key, group, batch, step)
            first_total = first_total + first
            healthy = healthy and finite
        mean = first_total / len(paths)
        return mean if healthy else mean * float("nan")

    def _group_step(self, engine: "StepHelpers", leaf: int, index: _LeafIndex, key: Hashable,
                    group: list[dict], batch: tuple, step: int) -> tuple[torch.Tensor, bool]:
        params = engine.params
        # Drops last step's .grad, which points at our accumulators: backward would add into them.
        engine.zero_grad()
        per_path = [index.params_of(arch) for arch in group]
        union = list(dict.fromkeys(i for idx in per_path for i in idx))
        theta = [params[i] for i in union]
        snap_all = self._alloc(self._snap, union, params)
        acc_all = self._alloc(self._acc, union, params)
        with torch.no_grad():
            torch._foreach_copy_(snap_all, theta)
            torch._foreach_zero_(acc_all)

        multi = len(group) > 1
        loss_weight = getattr(engine.path_sampler, "loss_weight", None)
        first_total = torch.zeros((), device=batch[0].device)
        all_total = torch.zeros((), device=batch[0].device)
        for arch, idx in zip(group, per_path):
            first, total = self._adapt(engine, leaf, index, key, arch, idx, batch)
            first_total = first_total + first
            all_total = all_total + total
            weight = engine.lr_policy.path_factor(step, arch) if multi else 1.0
            if loss_weight is not None:
                weight *= loss_weight(arch)  # importance sampling's 1/(N p): scales the difference like the loss
            p_list = [params[i] for i in idx]
            s_list = [self._snap[i] for i in idx]
            a_list = [self._acc[i] for i in idx]
            with torch.no_grad():
                # In place, no temporaries: p <- theta_i - theta; acc -= w * p; p <- theta (exact copy).
                torch._foreach_sub_(p_list, s_list)
                torch._foreach_sub_(a_list, p_list, alpha=weight)
                torch._foreach_copy_(p_list, s_list)

        overflow = self._inner_overflow
        if overflow is not None:
            # float16: one read for both flags. An inner gradient overflow (finite losses) is the GradScaler's
            # business, not divergence: lower the scale and skip the outer step (theta is restored).
            self._inner_overflow = None
            # Each path's first loss is taken at theta, before any inner update: finite first losses with an
            # overflow mean the scale was too high (later inner losses may be NaN from the overflowed update).
            finite, first_finite, overflowed = torch.stack(
                [torch.isfinite(all_total), torch.isfinite(first_total), overflow.reshape(()).bool()]).tolist()
            if first_finite and overflowed:
                scaler = engine.scaler
                scaler.update(new_scale=scaler._scale * scaler.get_backoff_factor())
                engine.scaler_skips += 1
                return first_total, True
        else:
            finite = bool(torch.isfinite(all_total))
        if not finite:
            # theta is restored: skipping the outer step leaves the supernet as it was.
            return first_total, False
        for i, acc in zip(union, acc_all):
            params[i].grad = acc
        # The outer "gradient" is a weight difference, not a scaled loss's gradient.
        engine.optimizer_step(key, step, None if multi else group[0], grads_scaled=False)
        for arch in group:
            # PA scores ops by the gradient the step used, as after GradientStep: here each op's
            # (clipped) Reptile difference, which is eps1 times its gradient at k = 1.
            engine.observe_ops(leaf, arch)
        return first_total, True

    def _adapt(self, engine: "StepHelpers", leaf: int, index: _LeafIndex, key: Hashable, arch: dict,
               idx: list[int], batch: tuple) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the ``k`` inner steps of one path in place; return (first loss, sum of all losses), detached."""
        x, y, ex_index = batch
        params = engine.params
        k = self.steps
        if self.inner_batches == "split":
            chunks = list(zip(x.tensor_split(k), y.tensor_split(k), ex_index.tensor_split(k)))
        else:
            chunks = [(x, y, ex_index)] * k
        store = self._momentum_store(key)
        # BN statistics to keep: those after the forward at theta (k > 1 only; k = 1 has nothing to discard).
        buffers = index.buffers_of(arch) if k > 1 else []
        kept = self._alloc_buffers(buffers)
        first = torch.zeros((), device=x.device)
        total = torch.zeros((), device=x.device)
        for j, (xj, yj, ij) in enumerate(chunks):
            # Setting the path walks every supernet module; once per path is enough.
            logits = engine.forward(leaf, arch, xj) if j == 0 else engine.models[leaf](xj)
            if j == 0 and buffers:
                with torch.no_grad():
                    torch._foreach_copy_(kept, buffers)
            loss = engine.criterion(logits, yj)
            engine.backward(loss)
            if j == 0 or self.inner_batches == "split":
                engine.observe_examples(ij, logits, yj)  # every example scored once per path
            if j == 0:
                self._check_isolation(engine, index, idx)
                first = loss.detach()
            total = total + loss.detach()
            self._inner_update(params, idx, store, engine.inverse_loss_scale())
        if self.inner_state == "reset" and store:
            self._peak_path_momentum = max(self._peak_path_momentum,
                                           sum(t.numel() * t.element_size() for t in store.values()))
        if buffers:
            with torch.no_grad():
                torch._foreach_copy_(buffers, kept)
        return first, total

    def _alloc_buffers(self, buffers: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for b in buffers:
            saved = self._buffer_snap.get(id(b))
            if saved is None or saved.shape != b.shape or saved.dtype != b.dtype:
                saved = self._buffer_snap[id(b)] = torch.empty_like(b)
            out.append(saved)
        return out

    def _check_isolation(self, engine: "StepHelpers", index: _LeafIndex, idx: list[int]) -> None:
        """Once per leaf: no parameter outside the path may receive a gradient (it would escape the snapshot)."""
        if index.checked:
            return
        index.checked = True
        inside = set(idx)
        for i, p in enumerate(engine.params):
            if p.grad is not None and i not in inside:
                raise RuntimeError(
                    f"Reptile: parameter #{i} {tuple(p.shape)} received a gradient but belongs to no chosen op of the "
                    "path; the update rule snapshots only the path's parameters. Are all choices LayerChoices?")

    def _inner_update(self, params: list, idx: list[int], store: dict[int, torch.Tensor],
                      inverse_scale: Optional[torch.Tensor] = None) -> None:
        """One SGD-with-momentum step on the path's parameters that have a gradient; then clear the gradients."""
        ps = [params[i] for i in idx if params[i].grad is not None]
        live = [i for i in idx if params[i].grad is not None]
        if ps and inverse_scale is not None:
            # float16: true gradients before clipping and the inner SGD; an overflow is flagged on the device
            # and read once per path group with the finiteness check (no extra host sync).
            if self._inner_overflow is None:
                self._inner_overflow = torch.zeros(1, device=ps[0].device)
            torch._amp_foreach_non_finite_check_and_unscale_([p.grad for p in ps], self._inner_overflow,
                                                             inverse_scale)
        if ps:
            if self.inner_grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(ps, self.inner_grad_clip)
            grads = [p.grad for p in ps]
            if self.inner_state == "persistent" and self.inner_momentum > 0:
                # A carried momentum would keep moving an op whose gradient is exactly zero (an NB201 edge
                # feeding only `none`); treat it as unused, as the outer step does (official SPOS code).
                nonzero = torch.stack([g.ne(0).any() for g in grads]).tolist()
                ps = [p for p, keep in zip(ps, nonzero) if keep]
                live = [i for i, keep in zip(live, nonzero) if keep]
                grads = [g for g, keep in zip(grads, nonzero) if keep]
            with torch.no_grad():
                if self.inner_momentum == 0:
                    if ps:
                        torch._foreach_add_(ps, grads, alpha=-self.inner_lr)
                elif ps:
                    old = [n for n, i in enumerate(live) if i in store]
                    if old:
                        old_bufs = [store[live[n]] for n in old]
                        torch._foreach_mul_(old_bufs, self.inner_momentum)
                        torch._foreach_add_(old_bufs, [grads[n] for n in old])
                    for i, g in zip(live, grads):
                        # torch SGD's first step is buf = g. The gradient tensor itself becomes the buffer (no
                        # copy, no allocation): .grad is dropped below, so nothing else refers to it.
                        store.setdefault(i, g)
                    torch._foreach_add_(ps, [store[i] for i in live], alpha=-self.inner_lr)
        for i in idx:
            params[i].grad = None

    # ------------------------------------------------------------------ memory and state
    def extra_bytes(self) -> dict[str, int]:
        """Bytes held by the rule's buffers: snapshot, accumulator, inner momentum, kept BN statistics.

        ``inner_momentum`` is the persistent momentum (``inner_state: persistent``) or, in reset
        mode, the peak of the momentum that exists while one path adapts.
        """
        def size(tensors: Sequence[Optional[torch.Tensor]]) -> int:
            return sum(t.numel() * t.element_size() for t in tensors if t is not None)
        persistent = sum(size(list(v.values())) for v in self._persistent.values())
        return {"snapshot": size(self._snap), "accumulator": size(self._acc),
                "inner_momentum": persistent or self._peak_path_momentum,
                "buffer_snapshot": size(list(self._buffer_snap.values()))}

    def state_dict(self) -> dict:
        """The persistent inner momentum by state key and parameter index (empty in reset mode)."""
        if self._pending is not None:
            return self._pending
        return {"inner_state": [
            {"key": _plain_key(key), "momentum": {i: t.detach().clone() for i, t in bufs.items()}}
            for key, bufs in self._persistent.items()]}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`; applied when the rule first sees its engine (parameters needed)."""
        self._pending = state if state and state.get("inner_state") else None
        self._persistent = {}
        self._engine_id = None

    def _restore_persistent(self, engine: "StepHelpers", state: dict) -> None:
        params = engine.params
        for entry in state["inner_state"]:
            bufs: dict[int, torch.Tensor] = {}
            for i, t in entry["momentum"].items():
                bufs[int(i)] = t.to(device=params[int(i)].device, dtype=params[int(i)].dtype).clone()
            self._persistent[_unplain_key(entry["key"])] = bufs


# ---------------------------------------------------------------------------------------------- registration
@dataclass(frozen=True)
class ReptileOptions:
    """Options of the Reptile update rule: inner steps, their LR, momentum, state, batches and clipping."""

    reptile_steps: int = 4
    inner_lr: Optional[float] = None  # None: 0.05 * 4 / reptile_steps (SUMNAS Table 6 and Appendix D)
    inner_momentum: float = 0.9
    inner_state: str = "reset"
    inner_batches: str = "same"
    inner_grad_clip: Optional[float] = 5.0

    def __post_init__(self) -> None:
        if self.reptile_steps <= 0:
            raise ConfigError("training.reptile_steps", self.reptile_steps, "must be a positive integer")
        if self.inner_lr is not None and not self.inner_lr > 0:
            raise ConfigError("training.inner_lr", self.inner_lr, "must be > 0, or null for 0.05 * 4 / reptile_steps")
        if not 0 <= self.inner_momentum < 1:
            raise ConfigError("training.inner_momentum", self.inner_momentum, "must be in [0, 1)")
        if self.inner_state not in ("reset", "persistent"):
            raise ConfigError("training.inner_state", self.inner_state, "allowed values: reset, persistent")
        if self.inner_batches not in ("same", "split"):
            raise ConfigError("training.inner_batches", self.inner_batches, "allowed values: same, split")
        if self.inner_grad_clip is not None and self.inner_grad_clip <= 0:
            raise ConfigError("training.inner_grad_clip", self.inner_grad_clip,
                              "must be > 0, or null to disable clipping")


def _check_reptile(options: ReptileOptions, recipe: "Recipe", selected: bool) -> None:
    if selected and options.inner_batches == "split" and recipe.data.batch_size < options.reptile_steps:
        raise ConfigError("data.batch_size", recipe.data.batch_size,
                          f"must be >= training.reptile_steps ({options.reptile_steps}) with "
                          f"training.inner_batches: split")


@UPDATE_RULES.register("reptile", options=ReptileOptions, check=_check_reptile)
def build_reptile(options: ReptileOptions, context: EngineContext) -> ReptileStep:
    """SUMNAS: per path k inner SGD steps, one outer step on the summed weight differences."""
    return ReptileStep(steps=options.reptile_steps, inner_lr=options.inner_lr, inner_momentum=options.inner_momentum,
                       inner_state=options.inner_state, inner_batches=options.inner_batches,
                       inner_grad_clip=options.inner_grad_clip)
