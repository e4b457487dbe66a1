"""PA&DA overheads: step time of pada vs spos, and the cost of the gradient-variance diagnostic.

PA adds, per step, one batched norm of the path's op gradients (one host sync) and a few
dict updates; DA adds a buffered ``(index, score)`` pair per step (the score comes from the
logits the step computed anyway) and, once per epoch, a sort and a multinomial draw over the
training set. The epoch-end work is timed separately and amortised over an epoch's steps.
Both sides train the same list of paths (see :class:`_Replay`), each still paying for its
own sampler's draw.
"""
from __future__ import annotations

import statistics

import torch

from nni_dynamic_supernet.training.gradient_variance import GradientVarianceMonitor
from nni_dynamic_supernet.training.paths import UniformPathSampler

from .common import CLOCK, batches, make_run, ratio, time_side_by_side, train_steps


class _Replay:
    """Pays for the wrapped sampler's draw, then trains the next path of a fixed list instead.

    Step time depends strongly on which ops a path holds; replaying one list on both sides
    compares the samplers' overhead on identical compute instead of two different path mixes.
    """

    def __init__(self, sampler, archs: list) -> None:
        self.sampler = sampler
        self.archs = iter(archs)

    def sample(self, space: dict) -> list:
        self.sampler.sample(space)
        return [next(self.archs)]

    def __getattr__(self, name: str):
        if name == "sampler":
            raise AttributeError(name)
        return getattr(self.sampler, name)


def _same_paths(runs: list, count: int) -> None:
    space = runs[0].module.engine.partition.space
    archs = [UniformPathSampler(seed=12345).sample(space)[0] for _ in range(count)]
    for run in runs:
        run.module.engine.path_sampler = _Replay(run.module.engine.path_sampler, archs)


def _epoch_end_seconds(run, repeats: int = 5) -> float:
    """Median seconds of both samplers' end-of-epoch update after a full epoch of observations."""
    engine = run.module.engine
    n = engine.data_sampler.num_examples
    size = run.recipe.data.batch_size
    times = []
    for r in range(repeats):
        g = torch.Generator().manual_seed(r)
        for start in range(0, n - size + 1, size):  # one epoch of per-example scores, batch by batch
            engine.data_sampler.observe(torch.randint(0, n, (size,), generator=g), torch.rand(size, generator=g))
        started = CLOCK()
        engine.path_sampler.on_epoch_end(r, repeats)
        engine.data_sampler.on_epoch_end(r, repeats)
        list(engine.data_sampler)  # the next epoch's draw, as the loader makes it
        times.append(CLOCK() - started)
    return statistics.median(times)


def step_time(repeats: int = 7, steps: int = 10) -> dict:
    """Seconds per training step of pada divided by spos (target <= 1.05; the paper reports +12.5%).

    ``pada / spos step time`` includes the end-of-epoch updates amortised over one epoch's
    steps (``N / batch_size``); ``pada / spos step time (steps only)`` leaves them out.
    """
    torch.set_num_threads(1)
    spos, pada = make_run("spos"), make_run("pada")
    _same_paths([spos, pada], steps * (repeats + 2))
    data = batches(spos, steps)
    times = time_side_by_side({"spos": train_steps(spos, data), "pada": train_steps(pada, data)}, repeats=repeats)
    per_step = ratio(times["pada"], times["spos"])
    epoch_end = _epoch_end_seconds(pada)
    steps_per_epoch = pada.module.engine.data_sampler.num_examples // pada.recipe.data.batch_size
    extra = epoch_end / steps_per_epoch * steps  # per round of `steps` steps
    amortised = ratio([t + extra for t in times["pada"]], times["spos"])
    amortised.update({"epoch_end_s": epoch_end, "steps_per_epoch": steps_per_epoch})
    return {"pada / spos step time": amortised, "pada / spos step time (steps only)": per_step}


def grad_variance_cost(repeats: int = 7, steps: int = 10) -> dict:
    """Step time of spos with the gradient-variance monitor attached, divided by plain spos."""
    torch.set_num_threads(1)
    plain, watched = make_run("spos"), make_run("spos")
    _same_paths([plain, watched], steps * (repeats + 2))
    engine = watched.module.engine
    engine.step_observers.append(GradientVarianceMonitor(engine.params).on_step)
    data = batches(plain, steps)
    times = time_side_by_side({"plain": train_steps(plain, data), "watched": train_steps(watched, data)},
                              repeats=repeats)
    return {"spos + gradient-variance monitor / spos step time": ratio(times["watched"], times["plain"])}
