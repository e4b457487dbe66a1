"""Subnet evaluation overhead: ``SubnetEvaluator.evaluate`` against the raw forward passes it needs.

Evaluating one subnet with BN recalibration needs, at the least, ``bn_batches`` forwards
in train mode (the statistics) and one forward per validation batch in eval mode. The raw
side runs exactly those forwards (set the path, no gradients) and nothing else; the
evaluator adds the BN reset, snapshot and restore, the loss and accuracy, and its reads of
the results. Both sides evaluate the same list of subnets on the same batches of a
supernet trained for a few steps.
"""
from __future__ import annotations

import torch

from nni_dynamic_supernet.search.run import build_evaluator
from nni_dynamic_supernet.training.paths import UniformPathSampler

from .common import batches, make_run, ratio, time_side_by_side, train_steps


def evaluation_vs_forward(repeats: int = 7, subnets: int = 6) -> dict:
    """Seconds to evaluate ``subnets`` subnets divided by seconds of their raw forwards (target <= 1.2)."""
    torch.set_num_threads(1)
    run = make_run("spos")
    train_steps(run, batches(run, 5))()
    models = run.module.supernets()
    evaluator = build_evaluator(run.recipe.search, models, run.module.partition, run.calib_loader(), run.val_loader())
    space = run.module.engine.partition.space
    archs = [UniformPathSampler(seed=7).sample(space)[0] for _ in range(subnets)]
    model, set_arch = models[0], evaluator.set_arch[0]

    def evaluate() -> None:
        for arch in archs:
            evaluator.evaluate(arch)

    @torch.no_grad()
    def raw() -> None:
        for arch in archs:
            set_arch(arch)
            model.train()
            for x, _ in evaluator.calib_batches:
                model(x)
            model.eval()
            for x, _ in evaluator.val_batches:
                model(x)
        model.train()

    times = time_side_by_side({"evaluate": evaluate, "raw": raw}, repeats=repeats)
    out = ratio(times["evaluate"], times["raw"])
    out.update({"subnets": subnets, "bn_batches": len(evaluator.calib_batches),
                "val_batches": len(evaluator.val_batches),
                "val_examples": sum(len(y) for _, y in evaluator.val_batches)})
    return {"evaluation (BN recal + val) / raw forwards": out}
