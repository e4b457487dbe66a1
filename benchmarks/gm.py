"""GM-NAS overhead: one gradient-matching split of the root supernet, in spos epochs.

A split scores every candidate label with ``gm_batches`` batches x (number of choices)
forward/backward passes and no optimizer step. It is timed side by side with one spos
epoch (every training batch once) on the same space, data and batch size; the ratio says
how many training epochs one split of the root costs. Later splits score each leaf, so a
run's total is the sum over leaves.
"""
from __future__ import annotations

import numpy as np
import torch

from .common import CLOCK, batches, make_run, ratio, train_steps


def _draw(run):  # type: ignore[no-untyped-def]
    dataset = run.splits.train
    size = run.recipe.data.batch_size

    def draw(rng: np.random.RandomState) -> tuple[torch.Tensor, torch.Tensor]:
        index = rng.choice(len(dataset), size=size, replace=False)
        items = [dataset[int(i)] for i in index]
        return torch.stack([x for x, *_ in items]), torch.tensor([int(y) for _, y, *_ in items])
    return draw


def split_phase(repeats: int = 3, gm_batches: int = 10) -> dict:
    """Seconds of the root's gradient-matching split divided by the seconds of one spos epoch."""
    torch.set_num_threads(1)
    spos = make_run("spos")
    epoch = batches(spos, len(spos.loader("train", shuffle=True, drop_last=True)))
    train_epoch = train_steps(spos, epoch)
    train_epoch()  # warm-up
    split_s, epoch_s = [], []
    for _ in range(repeats):
        gm = make_run("gm_spos", **{"training.gm_batches": gm_batches, "training.split_epochs": [1, 2], "training.epochs": 3})
        engine = gm.module.engine
        start = CLOCK()
        made = engine.partition.maybe_split(1, engine, _draw(gm))
        split_s.append(CLOCK() - start)
        assert made, "the root did not split"
        start = CLOCK()
        train_epoch()
        epoch_s.append(CLOCK() - start)
    out = ratio(split_s, epoch_s)
    out.update(gm_batches=gm_batches, steps_per_epoch=len(epoch))
    return {f"gm root split (R={gm_batches}) / one spos epoch": out}
