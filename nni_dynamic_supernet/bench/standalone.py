"""Stand-alone training of one architecture: the ground truth that supernet rankings are judged by.

:func:`train_standalone` implements the protocol of ``docs/embedded_benchmark.rst`` ("Stand-alone
training") exactly, so that any table built with it compares with any other:

* model ``copy.deepcopy(space.freeze(arch))``; ``torch.manual_seed(seed)``; then
  ``reset_parameters()`` on every submodule that has it, in ``modules()`` order (the same
  network is built faster under ``model_context(arch)``; it is identical tensor for tensor
  after the reset, see :func:`_frozen_model`);
* SGD (lr 0.05, momentum 0.9, Nesterov, weight decay 5e-4), the LR set before every step to
  ``lr * 0.5 * (1 + cos(pi * step / total))`` with no warm-up;
* 13 epochs of batch 64, last partial batch dropped; each epoch's order is
  ``torch.randperm(n_train, generator=g)`` with ``g`` seeded with ``seed`` once;
* plain cross-entropy; test accuracy in percent under ``model.eval()``.

The result depends only on the arch, the seed, the data and the number of intra-op threads that
torch uses (floating-point reductions are split differently across threads). The table builder
(:mod:`.build`) therefore always trains single-threaded; :func:`single_thread` is the guard it uses.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import math
import time
from typing import Any, Iterator, Mapping, Optional, Union

import torch
from torch import nn

from ..data.digits_hard import load_digits_hard
from ..errors import ConfigError
from ..spaces.reinit import reinitialize
from ..quiet_logs import quiet_nni_import
from ..spaces.introspection import search_space_of
from ..spaces.nas_bench_201 import nas_bench_201

with quiet_nni_import():
    from nni.nas.space import model_context

__all__ = ["PROTOCOL", "DEFAULT_SPACE_KWARGS", "train_standalone", "single_thread", "protocol"]

DEFAULT_SPACE_KWARGS: dict[str, int] = dict(channels=4, cells_per_stage=3, num_classes=10, in_channels=3,
                                             input_size=8)
"""Arguments of :func:`~nni_dynamic_supernet.spaces.nas_bench_201` for the embedded benchmark."""

PROTOCOL: dict[str, Any] = {
    "epochs": 13,
    "batch_size": 64,
    "drop_last": True,
    "optimizer": "SGD",
    "lr": 0.05,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "lr_schedule": "lr * 0.5 * (1 + cos(pi * step / total)), set before every step, no warm-up",
    "loss": "cross_entropy (no label smoothing, no clipping, no augmentation)",
    "init": "copy.deepcopy(space.freeze(arch)); torch.manual_seed(seed); "
            "reset_parameters() on every submodule that has it, in modules() order",
    "batch_order": "each epoch torch.randperm(n_train, generator=g), g = torch.Generator().manual_seed(seed) once",
    "train_split": "train",
    "eval_split": "test",
    "eval": "model.eval(); accuracy in percent",
    "threads": 1,
    "reference": "docs/embedded_benchmark.rst, 'Stand-alone training'",
}
"""The stand-alone training protocol with its default hyper-parameters, as recorded in tables."""


def protocol(epochs: int = 13, batch_size: int = 64, lr: float = 0.05, momentum: float = 0.9,
             weight_decay: float = 5e-4) -> dict[str, Any]:
    """Describe the protocol with the given hyper-parameters, for recording next to results.

    Parameters
    ----------
    epochs, batch_size, lr, momentum, weight_decay
        As passed to :func:`train_standalone`.

    Returns
    -------
    dict
        A copy of :data:`PROTOCOL` with those values filled in.
    """
    out = dict(PROTOCOL)
    out.update(epochs=int(epochs), batch_size=int(batch_size), lr=float(lr), momentum=float(momentum),
               weight_decay=float(weight_decay))
    return out


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the enclosed code with one torch intra-op thread, then restore the previous count.

    Results of CPU training change in their last bits with the thread count; training every
    job single-threaded makes a table independent of how many worker processes built it.

    Yields
    ------
    None
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.lru_cache(maxsize=4)
def _space(kwargs_items: tuple[tuple[str, Any], ...]) -> nn.Module:
    # One pristine space per process, used to validate archs (and by the reference freeze
    # path). It is never trained: freeze()'s result is deep-copied before use.
    return nas_bench_201(**dict(kwargs_items))


def _check_arch(arch: Any, space: nn.Module) -> dict[str, Any]:
    allowed = search_space_of(space)
    if not isinstance(arch, Mapping):
        raise ConfigError("arch", arch, "give the architecture as a dict {label: op}, e.g. {'cell/0_1': 'conv_3x3', ...}")
    missing = [label for label in allowed if label not in arch]
    extra = [label for label in arch if label not in allowed]
    if missing or extra:
        raise ConfigError("arch", dict(arch), f"labels must be exactly {list(allowed)} "
                                              f"(missing {missing}, unknown {extra})")
    for label, choice in arch.items():
        if choice not in allowed[label]:
            raise ConfigError(f"arch.{label}", choice, f"use one of {allowed[label]}")
    return dict(arch)


def _check_hparams(epochs: int, batch_size: int, lr: float, n_train: int) -> None:
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"bench.{name}", value, "use a positive integer")
    if batch_size > n_train:
        raise ConfigError("bench.batch_size", batch_size,
                          f"use at most {n_train} (the train split); the last partial batch is dropped")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
        raise ConfigError("bench.lr", lr, "use a positive number, e.g. 0.05")


def _frozen_model(arch: Mapping[str, Union[str, int]], space_kwargs: Optional[dict[str, Any]],
                  reference: bool = False) -> nn.Module:
    """The stand-alone model of ``arch``, before initialization.

    ``reference=True`` is the protocol's literal ``copy.deepcopy(space.freeze(arch))``
    (``freeze`` shares the chosen op modules with the space, hence the copy). NNI's ``freeze``
    deep-copies every parent module together with all unchosen candidate ops, about 1.4 s per
    arch here, so by default the same network is instead constructed directly under
    ``nni.nas.space.model_context(arch)`` (about 0.15 s). Both give the same modules in the same
    ``modules()`` order with the same shapes, so after :func:`_initialized_model` resets every
    parameter they are identical tensor for tensor; ``tests/bench`` checks this.
    """
    kwargs = dict(space_kwargs or DEFAULT_SPACE_KWARGS)
    space = _space(tuple(sorted(kwargs.items())))
    arch = _check_arch(arch, space)
    if reference:
        return copy.deepcopy(space.freeze(arch))
    with model_context(arch):
        return nas_bench_201(**kwargs)


def _initialized_model(arch: Mapping[str, Union[str, int]], seed: int, space_kwargs: Optional[dict[str, Any]],
                       reference: bool = False) -> nn.Module:
    """The model of ``arch`` with the protocol's initialization for ``seed``."""
    return reinitialize(_frozen_model(arch, space_kwargs, reference=reference), seed)


def train_standalone(
    arch: Mapping[str, Union[str, int]],
    seed: int,
    data: Optional[dict[str, tuple[torch.Tensor, torch.Tensor]]] = None,
    epochs: int = 13,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    space_kwargs: Optional[dict[str, Any]] = None,
) -> dict[str, Any]:
    """Train one architecture alone from scratch and measure its test accuracy.

    This is how every ground-truth number of the embedded benchmark is made (see the module
    docstring for the exact protocol). It uses the calling process's torch thread count; wrap
    the call in :func:`single_thread` to reproduce the shipped tables bit for bit.

    Parameters
    ----------
    arch
        The architecture, ``{label: op}`` over the six NAS-Bench-201 labels
        (``'cell/0_1'`` ... ``'cell/2_3'``).
    seed
        Training seed: sets the initial weights and the batch order.
    data
        ``{"train": (x, y), "test": (x, y)}`` as returned by
        :func:`~nni_dynamic_supernet.data.digits_hard.load_digits_hard`; loaded when ``None``.
        Pass it when training many archs, to load it once.
    epochs, batch_size, lr, momentum, weight_decay
        The protocol's hyper-parameters; change them only for quick tests, since tables made
        with other values do not compare with the shipped one.
    space_kwargs
        Arguments of :func:`~nni_dynamic_supernet.spaces.nas_bench_201`; defaults to
        :data:`DEFAULT_SPACE_KWARGS` (the embedded benchmark's size).

    Returns
    -------
    dict
        ``accuracy`` (float, percent on the test split), ``params`` (int, parameter count of the
        trained model) and ``seconds`` (float, wall time of the whole call).

    Raises
    ------
    ConfigError
        If the arch does not fit the space or a hyper-parameter is invalid.

    Examples
    --------
    >>> arch = dict.fromkeys(['cell/0_1', 'cell/0_2', 'cell/1_2', 'cell/0_3', 'cell/1_3', 'cell/2_3'],
    ...                      'conv_3x3')
    >>> result = train_standalone(arch, seed=0, epochs=1)  # doctest: +SKIP
    >>> sorted(result)  # doctest: +SKIP
    ['accuracy', 'params', 'seconds']
    """
    start = time.perf_counter()
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError("bench.seed", seed, "use an integer seed")
    if data is None:
        data = load_digits_hard()
    x_train, y_train = data["train"]
    x_test, y_test = data["test"]
    n_train = len(x_train)
    _check_hparams(epochs, batch_size, lr, n_train)

    model = _initialized_model(arch, seed, space_kwargs)

    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, nesterov=True,
                                weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator()
    generator.manual_seed(seed)
    steps_per_epoch = n_train // batch_size  # the last partial batch is dropped
    total = epochs * steps_per_epoch
    step = 0
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n_train, generator=generator)
        for b in range(steps_per_epoch):
            index = order[b * batch_size:(b + 1) * batch_size]
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[index]), y_train[index])
            loss.backward()
            optimizer.step()
            step += 1

    model.eval()
    with torch.no_grad():
        correct = int((model(x_test).argmax(dim=1) == y_test).sum())
    return {
        "accuracy": 100.0 * correct / len(y_test),
        "params": int(sum(p.numel() for p in model.parameters())),
        "seconds": time.perf_counter() - start,
    }
