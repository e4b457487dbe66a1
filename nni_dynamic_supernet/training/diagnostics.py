"""Training diagnostics of the CaLR paper (Fig. 2c / 5) and LR curves by complexity.

* ``gamma``: the distribution of the CaLR exponent over the subnets sampled in training;
* ``lr_curves``: the LR schedule of the smallest, median and largest subnet;
* ``grad_std``: per epoch, the standard deviation across a fixed set of probe subnets of
  their gradients on the *shared* weights (weights outside any layer choice), on one fixed
  batch, relative to the gradients' mean magnitude; a high value means the subnets pull
  the shared weights in different directions;
* ``momentum_consistency``: per epoch, the mean cosine similarity between each probe
  subnet's gradient and the momentum buffer that subnet's updates use (its MS cluster's,
  or the single shared one). Momentum separation exists to raise it;
* ``grad_variance``: per epoch, the supernet gradient variance of PA&DA (Fig. 4, Appendix A):
  each parameter's gradient variance over the epoch's updates, averaged over parameters
  (:class:`~nni_dynamic_supernet.training.gradient_variance.GradientVarianceMonitor`; running
  sums, so it costs two fused kernels per step and two copies of the parameters).

Diagnostics run at epoch end on a fixed batch and never change the weights, the
optimizer state or any RNG the training uses.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from .gradient_variance import GradientVarianceMonitor

__all__ = ["TrainingDiagnostics"]

_BUFFER_KEYS = ("momentum_buffer", "exp_avg", "square_avg")


class TrainingDiagnostics:
    """Collects the diagnostics above for one :class:`SupernetEngine`.

    Parameters
    ----------
    engine
        The engine being trained.
    batch
        A fixed ``(x, y)`` training batch for the gradient probes.
    probe_archs
        Fixed subnets for the gradient probes.
    complexity
        Optional ``arch -> C(arch)`` used to pick the smallest / median / largest subnet.
    """

    def __init__(self, engine: Any, batch: tuple[torch.Tensor, torch.Tensor], probe_archs: Sequence[dict],
                 complexity: Any = None) -> None:
        self.engine = engine
        self.batch = batch
        self.probe_archs = list(probe_archs)
        self.complexity = complexity
        self.gammas: list[float] = []
        self.epochs: list[dict] = []
        self._shared = [self._shared_params(leaf) for leaf in range(len(engine.models))]
        engine.step_observers.append(self.on_step)
        self.grad_variance = GradientVarianceMonitor(engine.params)
        engine.step_observers.append(self.grad_variance.on_step)

    def _shared_params(self, leaf: int) -> list[nn.Parameter]:
        op_params = {id(p) for _, _, module in self.engine.op_modules[leaf] for p in module.parameters()}
        return [p for p in self.engine.models[leaf].parameters() if id(p) not in op_params and p.requires_grad]

    def on_step(self, step: int, paths: Sequence[dict]) -> None:
        """Record the CaLR exponent of the step's paths (no-op for static LR)."""
        gamma = getattr(self.engine.lr_policy, "gamma", None)
        if gamma is not None:
            self.gammas.extend(float(gamma(a)) for a in paths)

    def on_epoch_end(self, epoch: int) -> dict:
        """Gradient spread and momentum consistency over the probe subnets; returns the epoch's row."""
        engine = self.engine
        # The probe batch is taken from a CPU loader; the supernet may have moved to a GPU since.
        device = engine.params[0].device
        x, y = (t.to(device, non_blocking=True) for t in self.batch)
        grads, cosines = [], []
        saved = [p.grad for p in engine.params]
        try:
            for arch in self.probe_archs:
                leaf = engine.partition.route(arch)
                shared = self._shared[leaf]
                for p in shared:
                    p.grad = None
                model = engine.models[leaf]
                was_training = model.training
                model.train()
                with torch.enable_grad():
                    loss = engine.criterion(engine.forward(leaf, arch, x), y)
                    g = torch.autograd.grad(loss, shared, allow_unused=True)
                model.train(was_training)
                flat = torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1)
                                  for gi, p in zip(g, shared)]).detach()
                grads.append(flat)
                buffer = self._momentum(engine.state_policy.key(arch, leaf), shared)
                if buffer is not None and buffer.norm() > 0 and flat.norm() > 0:
                    cosines.append(float(torch.nn.functional.cosine_similarity(flat, buffer, dim=0)))
        finally:
            for p, g0 in zip(engine.params, saved):
                p.grad = g0
        stacked = torch.stack(grads)
        scale = float(stacked.abs().mean()) or 1.0
        row = {"epoch": epoch + 1, "grad_std": float(stacked.std(dim=0).mean()) / scale,
               "momentum_consistency": float(np.mean(cosines)) if cosines else float("nan"),
               "grad_variance": self.grad_variance.end_epoch()}
        self.epochs.append(row)
        return row

    def state_dict(self) -> dict:
        """What the diagnostics accumulated so far (checkpointed, so a resumed run reports every epoch)."""
        return {"gammas": torch.tensor(self.gammas, dtype=torch.float64), "epochs": [dict(r) for r in self.epochs]}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.gammas = [float(g) for g in state["gammas"].tolist()]
        self.epochs = [dict(r) for r in state["epochs"]]

    def _momentum(self, key: Any, params: Sequence[nn.Parameter]) -> Optional[torch.Tensor]:
        states = self.engine.state_policy._states()
        state = states.get(key)
        if state is None:
            return None
        parts = []
        for p in params:
            s = state.get(p, {})
            buf = next((s[k] for k in _BUFFER_KEYS if k in s), None)
            parts.append((buf if buf is not None else torch.zeros_like(p)).reshape(-1))
        return torch.cat(parts).detach()

    def lr_curves(self, archs: Sequence[dict], points: int = 50) -> dict:
        """The LR of the smallest, median and largest of ``archs`` over training (single-path LR)."""
        policy = self.engine.lr_policy
        if self.complexity is not None and archs:
            ordered = sorted(archs, key=self.complexity)
            picks = {"smallest": ordered[0], "median": ordered[len(ordered) // 2], "largest": ordered[-1]}
        else:
            picks = {"any": archs[0]} if archs else {}
        steps = np.linspace(0, policy.total_steps - 1, points).round().astype(int).tolist()
        out: dict = {"steps": steps}
        for name, arch in picks.items():
            out[name] = {"arch": arch, "lr": [float(policy.lr(t, arch)) for t in steps],
                         "complexity": float(self.complexity(arch)) if self.complexity is not None else None,
                         "gamma": float(policy.gamma(arch)) if hasattr(policy, "gamma") else None}
        return out

    def summary(self, archs: Sequence[dict]) -> dict:
        """Everything for results.json."""
        gammas = np.array(self.gammas, dtype=float)
        hist: dict = {}
        if len(gammas):
            counts, edges = np.histogram(gammas, bins=20)
            hist = {"counts": counts.tolist(), "edges": edges.tolist(), "mean": float(gammas.mean()),
                    "min": float(gammas.min()), "max": float(gammas.max())}
        return {"gamma": hist, "lr_curves": self.lr_curves(archs), "epochs": self.epochs,
                "num_optimizer_states": int(self.engine.state_policy.num_states)}

