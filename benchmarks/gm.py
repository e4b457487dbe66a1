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


def split_stability(epochs: int = 20, repeats: int = 100, draws: tuple[int, ...] = (10, 25)) -> dict:
    """How stable the root split's edge choice is: R = ``repeats`` against disjoint smaller draws.

    Trains ``gm_spos`` ``epochs`` epochs of steps (no split yet), scores every label of the root
    with ``repeats`` connected-context repeats, then picks the edge and groups (``max_cut``) from
    all repeats and from disjoint slices of ``draws[i]`` repeats, with each pick's
    ``margin_over_noise`` and ``group_agreement``. Slow (``repeats x labels x choices`` passes).
    """
    from nni_dynamic_supernet.training.partition.gradient_matching import gradient_distances, shared_parameters
    from nni_dynamic_supernet.training.partition.min_cut import edge_stability, select_split
    torch.set_num_threads(1)
    run = make_run("gm_spos", total_steps=600, **{"training.split_epochs": [20, 40], "training.epochs": 60})
    engine = run.module.engine
    steps = len(run.loader("train", shuffle=True, drop_last=True)) * epochs
    for step, batch in enumerate(batches(run, steps)):
        engine.train_step(batch, step)
    leaf, model, rng = engine.partition.leaves[0], engine.models[0], np.random.RandomState(0)
    per = {}
    for label in leaf:
        shared = shared_parameters(model, engine.op_modules[0], label)
        _, per[label] = gradient_distances(lambda a, x: engine.forward(0, a, x), engine.criterion, model, shared,
                                           leaf, label, _draw(run), repeats, rng, return_repeats=True)

    def pick(sub: dict) -> dict:
        choice = select_split({k: v.mean(0) for k, v in sub.items()}, 2, "max_cut")
        stability = edge_stability(sub, choice, "max_cut", 2)
        return {"label": choice["label"], "groups": choice["groups"], "margin_over_noise":
                stability["margin_over_noise"], "group_agreement": stability["group_agreement"]}
    out: dict = {f"R={repeats}": pick(per)}
    for size in draws:
        out[f"R={size} disjoint"] = [pick({k: v[i * size:(i + 1) * size] for k, v in per.items()})
                                     for i in range(repeats // size)]
    return out
