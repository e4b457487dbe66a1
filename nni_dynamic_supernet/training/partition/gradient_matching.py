"""Gradient-matching scores of GM-NAS: how much the choices of one label agree on the shared weights.

For a candidate label ``e`` of a sub-supernet, each repeat draws one fresh training batch and
one random *context* path of the sub-supernet (a connected one: like the official sampler's
``check_connect``, a cell whose output is cut off from its input by ``none`` edges is drawn
again, since it gives all-zero gradients that only add noise to the score); then for every choice ``o`` of ``e`` it runs the
context path with ``o`` on ``e`` and takes the gradient of the loss on the *shared* weights
``S_e``. Pairs of choices score ``1 - cos(g_i, g_j)``, averaged over the repeats
(as in the official ``WS-GM/nasbench201/train_search.py``). Batch and context stay fixed across
the choices of one repeat, so only ``e`` varies.

Scoring takes gradients with :func:`torch.autograd.grad`, so ``.grad`` of every parameter and
every optimizer state are untouched; BatchNorm runs in train mode (as in training, so its
statistics do not leak across choices) and its buffers are restored afterwards. Under
``torch.distributed`` each rank scores its own slice of every batch and the summed distance
matrices are all-reduced, so every rank takes the same split.
"""
from __future__ import annotations

import re
from typing import Callable, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from ...arch import random_arch

__all__ = ["shared_parameters", "gradient_distances", "draw_context", "cell_connected"]

#: A cell-edge label ``<cell prefix><from>_<to>`` (NNI's NAS-Bench-201 labels: ``cell/0_1`` ... ``cell/2_3``).
_EDGE_LABEL = re.compile(r"^(?P<cell>.*?)(?P<src>\d+)_(?P<dst>\d+)$")
#: Redraws of a context before a disconnected one is accepted (a mask with no connected path).
_MAX_CONTEXT_DRAWS = 1000

BatchSource = Callable[[np.random.RandomState], tuple[torch.Tensor, torch.Tensor]]


def shared_parameters(model: nn.Module, op_modules: Sequence[tuple], label: str) -> list[nn.Parameter]:
    """The weights ``S_e`` whose gradients are matched when scoring ``label``.

    Generic rule for any space of layer choices, which reproduces the NAS-Bench-201 code's set
    (``WS-GM/nasbench201/train_search.py``, ``get_split_gradients``): the parameters of the model's
    top-level children
    from the first to the last one holding a layer choice (the cells and the reduction blocks
    between them), plus the model's own direct parameters, minus every candidate op of
    ``label`` itself. The stem before the first choice and the head after the last one
    (final BN, classifier) are left out. Inactive candidates of other labels are kept: their
    gradient is zero for every choice, which changes no cosine.

    Parameters
    ----------
    model
        The sub-supernet.
    op_modules
        ``(label, choice, module)`` of every candidate op of ``model``.
    label
        The label being scored.
    """
    choice_modules = {id(m) for _, _, m in op_modules}
    own = {id(p) for lab, _, m in op_modules if lab == label for p in m.parameters()}
    children = list(model.children())
    holds = [any(id(m) in choice_modules for m in child.modules()) for child in children]
    body = children
    if any(holds):
        first = holds.index(True)
        last = len(holds) - 1 - holds[::-1].index(True)
        body = children[first:last + 1]
    out: list[nn.Parameter] = []
    seen: set[int] = set()
    for p in [*model._parameters.values(), *(p for child in body for p in child.parameters())]:
        if p is None or not p.requires_grad or id(p) in own or id(p) in seen:
            continue
        seen.add(id(p))
        out.append(p)
    return out


def cell_connected(arch: dict, none: str = "none") -> bool:
    """Whether every cell of ``arch`` has a path of non-``none`` edges from its first node to its last.

    Cell edges are the labels ``<prefix><from>_<to>``; other labels are ignored, so a space
    without ``none`` edges (or without cells) is always connected. For NAS-Bench-201 this is
    the official GM-NAS sampler's ``check_connect``.
    """
    cells: dict[str, list[tuple[int, int, object]]] = {}
    for label, choice in arch.items():
        match = _EDGE_LABEL.match(str(label))
        if match is not None:
            cells.setdefault(match["cell"], []).append((int(match["src"]), int(match["dst"]), choice))
    for edges in cells.values():
        if all(choice != none for _, _, choice in edges):
            continue
        reached = {min(src for src, _, _ in edges)}
        for src, dst, choice in sorted(edges, key=lambda e: (e[1], e[0])):  # targets in order: a DAG with src < dst
            if choice != none and src in reached:
                reached.add(dst)
        if max(dst for _, dst, _ in edges) not in reached:
            return False
    return True


def draw_context(mask: dict[str, list], rng: np.random.RandomState) -> dict:
    """A uniformly random *connected* path among the allowed choices of ``mask`` (RSPS's context path).

    Disconnected cells (see :func:`cell_connected`) are drawn again, as the official sampler
    does; if ``mask`` allows no connected path the last draw is kept after a bounded number of tries.
    """
    for _ in range(_MAX_CONTEXT_DRAWS):
        arch = random_arch(mask, rng)
        if cell_connected(arch):
            break
    return arch


def gradient_distances(forward: Callable[[dict, torch.Tensor], torch.Tensor],
                       criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                       model: nn.Module, shared: Sequence[nn.Parameter], mask: dict[str, list], label: str,
                       batches: BatchSource, repeats: int, rng: np.random.RandomState,
                       return_repeats: bool = False) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Mean ``1 - cos`` between the shared-weight gradients of every pair of ``label``'s choices.

    Parameters
    ----------
    forward
        ``forward(arch, x)`` runs ``arch`` on the sub-supernet ``model``.
    criterion
        The training loss.
    model
        The sub-supernet (its buffers are restored after scoring).
    shared
        ``S_e`` from :func:`shared_parameters`; a tensor a choice does not reach counts as zeros,
        so every choice's gradient vector covers the same tensors in the same order.
    mask
        The sub-supernet's allowed choices per label (context paths are drawn from it).
    label
        The candidate label; all its choices in ``mask`` are scored.
    batches
        ``batches(rng)`` returns a fresh training batch ``(x, y)``.
    repeats
        Number of batches R (the paper uses 100).
    rng
        The scorer's random state (batches and context paths): resume-safe when saved.
    return_repeats
        Also return the ``(repeats, n, n)`` matrix of every repeat (how noisy the mean is).

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` distances, ``n = len(mask[label])``; the diagonal is ``1 - cos(g, g)``.
        With ``return_repeats``, ``(mean, per_repeat)``.
    """
    choices = list(mask[label])
    n = len(choices)
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    was_training = model.training
    model.train()
    per_repeat = torch.zeros(max(1, repeats), n, n, dtype=torch.float64)
    try:
        for r in range(repeats):
            x, y = batches(rng)
            context = draw_context(mask, rng)
            rows = []
            for choice in choices:
                loss = criterion(forward({**context, label: choice}, x), y)
                grads = torch.autograd.grad(loss, list(shared), allow_unused=True)
                rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).double()
                                       for g, p in zip(grads, shared)]))
            g = torch.stack(rows)
            norms = g.norm(dim=1)
            per_repeat[r] = (1.0 - (g @ g.T) / (torch.outer(norms, norms) + 1e-6)).cpu()
    finally:
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        model.train(was_training)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        world = torch.distributed.get_world_size()
        device = shared[0].device if shared else torch.device("cpu")
        summed = per_repeat.to(device)
        torch.distributed.all_reduce(summed)
        per_repeat = summed.cpu() / world
    # Summed in repeat order, one repeat at a time: the float64 mean does not depend on how the
    # repeats were computed (one process, or several ranks' all-reduced sums).
    total = torch.zeros(n, n, dtype=torch.float64)
    for r in range(repeats):
        total += per_repeat[r]
    mean = (total / max(1, repeats)).numpy()
    return (mean, per_repeat[:repeats].numpy()) if return_repeats else mean
