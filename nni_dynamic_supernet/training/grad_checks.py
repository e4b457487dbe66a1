"""The gradient checks of a training step: null all-zero gradients, check finiteness, clip.

Every optimizer step of :class:`~nni_dynamic_supernet.training.engine.SupernetEngine` runs them
before anything moves, with at most one host read per step:

* :func:`checked_grads` (and :func:`null_zero_grads`, its public face for supernet shifting):
  per-tensor norms; all-zero gradients become ``None``; one finiteness flag;
* :func:`flat_check`: the same decision for float32 CPU gradients from one flattened copy,
  which is cheaper than a norm per tensor on small supernets; ``None`` when it cannot decide;
* :func:`clip_with_norms`: ``clip_grad_norm_`` from norms already computed.
"""
from __future__ import annotations

import itertools
import math
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

__all__ = ["grad_norms", "null_zero_grads", "checked_grads", "flat_check", "clip_with_norms", "TINY_ABS", "FLAT_MAX"]


def grad_norms(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of each tensor, as one float tensor (fused where the tensors allow it)."""
    try:
        return torch.stack(torch._foreach_norm(list(grads))).float()
    except RuntimeError:  # mixed devices or dtypes
        return torch.stack([torch.linalg.vector_norm(g).float().to(grads[0].device) for g in grads])


def null_zero_grads(params: Sequence[nn.Parameter]) -> bool:
    """Null all-zero gradients and report whether the rest are finite, with one device sync.

    All-zero gradients become ``None``, as the official SPOS code does (``src/Supernet/train.py``): an
    op on the path whose output is multiplied away (a NAS-Bench-201 edge feeding only
    ``none`` edges) gets an all-zero gradient, not ``None``, and the optimizer would still
    apply weight decay and stale momentum to it. Used by the training step and by supernet
    shifting.
    """
    return checked_grads(params)[0]


def checked_grads(params: Sequence[nn.Parameter]) -> tuple[bool, list, Optional[torch.Tensor]]:
    """:func:`null_zero_grads`, also returning the kept parameters and their gradient norms (for clipping)."""
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return True, [], None
    norms = grad_norms([p.grad for p in with_grad])
    # A NaN norm is != 0, so a NaN gradient is kept (and reported) rather than nulled.
    flags = torch.cat([norms.ne(0), torch.isfinite(norms).all().reshape(1)]).tolist()
    kept, kept_at = [], []
    for i, (p, keep) in enumerate(zip(with_grad, flags[:-1])):
        if keep:
            kept.append(p)
            kept_at.append(i)
        else:
            p.grad = None
    if len(kept) != len(with_grad):
        # Not ``norms[torch.tensor(kept_at, device=...)]``: a host-to-device index copy from pageable memory
        # synchronises the stream, a second sync per step on CUDA.
        parts = norms.unbind(0)
        norms = torch.stack([parts[i] for i in kept_at]) if kept else None
    return bool(flags[-1]), kept, norms


#: Below this absolute value the square of a float32 gradient entry may underflow, so a gradient whose
#: entries are all this small may have a zero norm without being zero: :func:`flat_check` leaves it undecided.
TINY_ABS = 1e-18

#: Gradient elements above which :func:`flat_check` declines: with large tensors the per-tensor norms are
#: no longer dominated by per-call overhead, and the flat copy would only add memory traffic.
FLAT_MAX = 1 << 17


def flat_check(params: Sequence[nn.Parameter]) -> Optional[tuple[list, float]]:
    """:func:`checked_grads` for float32 CPU gradients, from one flat copy; None when undecided.

    On the CPU ``torch._foreach_norm`` is a loop of one norm per tensor (a few microseconds
    each, about a hundred gradients per NAS-Bench-201 step), then stacked, compared and read.
    One flattened copy, read once as a NumPy array, gives each gradient's largest absolute
    entry (zero exactly when its norm is zero, unless every entry is so small that its square
    underflows: left undecided) and the global norm (finite and below 1e30: every per-tensor
    norm is finite). Returns the kept parameters (all-zero gradients nulled, as
    :func:`checked_grads` does) and the global norm (it differs from ``clip_grad_norm_``'s
    total, a norm of per-tensor norms, by float32 rounding only: enough to tell that
    clipping cannot change anything); ``None`` leaves the
    step to :func:`checked_grads` (non-finite, huge, tiny, empty or sparse gradients, or more
    than :data:`FLAT_MAX` gradient elements in all).
    """
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return [], 0.0
    grads = [p.grad for p in with_grad]
    sizes = [g.numel() for g in grads]
    if 0 in sizes or sum(sizes) > FLAT_MAX or any(g.is_sparse for g in grads):
        return None
    # One copy (a slot at its end for the global norm), made absolute in place and read once.
    flat = torch._utils._flatten_dense_tensors([*grads, torch.zeros(1, dtype=grads[0].dtype)]).detach()
    flat[-1] = torch.linalg.vector_norm(flat[:-1])
    host = flat.abs_().numpy()  # the step's one host read
    total = float(host[-1])
    if not math.isfinite(total) or total > 1e30:
        return None
    largest = np.maximum.reduceat(host[:-1], [0, *itertools.accumulate(sizes[:-1])]).tolist()
    kept = []
    for p, m in zip(with_grad, largest):
        if m >= TINY_ABS:
            kept.append(p)
        elif m == 0:
            p.grad = None
        else:
            return None  # undecided: nothing has been nulled that checked_grads would keep
    return kept, total


def clip_with_norms(params: list, norms: torch.Tensor, max_norm: float) -> None:
    """``clip_grad_norm_(params, max_norm)`` from the per-tensor norms already computed, same arithmetic.

    ``clip_grad_norm_`` would recompute every norm and group the tensors again; for one
    device and dtype its result is ``vector_norm`` of the stacked per-tensor norms, then a
    clamped coefficient multiplied in, which is exactly what runs here (bit-identical).
    """
    grads = [p.grad for p in params]
    total = torch.linalg.vector_norm(norms, 2.0)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef)
