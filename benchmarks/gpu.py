"""The GPU check: ``python -m benchmarks.gpu`` (``benchmarks/gpu_check.sh`` runs it), one summary table.

Built to run whole in at most 8 minutes on one GPU (and on the CPU with ``--cpu --tiny``, to
check the script itself). It prints and writes (``--out``, JSON):

* the test suite's CUDA-marked tests (``pytest -m cuda``): passed / failed / skipped;
* steps/s of spos, spos_calr_ms, fairnas, pada, sumnas (k = 2) and gm_spos on NAS-Bench-201
  with 16 channels and 5 cells per stage on synthetic 32 x 32 inputs (CIFAR's shape), in
  float32 and bf16, and NNI 3.0's ``RandomOneShot`` on the same space, data and paths
  budget, each with its peak GPU memory; each technique's step time over its reference beside
  the papers' overhead bounds: PA&DA over spos, SUMNAS over fairnas, CaLR + MS over spos with
  ``unused_grads: zero`` (the presets' setting, which steps every parameter of the supernet, as
  the DYNAS code's SPOS baseline does, so the ratio isolates CaLR's and MS's own cost);
* one short ``nds train`` end to end and a DDP run on one GPU (``devices: 1``, DDP strategy);
* on CUDA, per side: kernel time over step time ("GPU busy"), kernel launches and host syncs per
  step, from one ``torch.profiler`` window (a step the GPU is busy for a small part of is bound by
  the host: per-op Python and dispatch, which mixed precision cannot shorten).

Steps are timed with wall time around ``torch.cuda.synchronize()`` (CPU time means nothing
for GPU work); every side runs warm-up steps first, then the sides run interleaved repeats.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from nni_dynamic_supernet.atomic_io import atomic_write_json

STRATEGIES = ["spos", "spos_calr_ms", "fairnas", "pada", "sumnas", "gm_spos"]
#: spos with the CaLR / MS presets' ``unused_grads: zero`` (the DYNAS code's SPOS baseline steps every
#: parameter of the supernet, as its technique does): the reference of CaLR + MS's own overhead.
SPOS_ZERO = "spos, zero grads"
#: Step-time bounds of the papers: technique / reference side <= bound.
BOUNDS = {"spos_calr_ms": (SPOS_ZERO, 1.03), "pada": ("spos", 1.13), "sumnas": ("fairnas", 1.05 * 2)}
#: NAS-Bench-201 sizes: the issue's table (the default of ``--channels`` / ``--cells``) and ``--tiny``'s.
FULL_SPACE = {"channels": 16, "cells_per_stage": 5}
TINY_SPACE = {"channels": 2, "cells_per_stage": 1}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _base(space: dict, device: torch.device, precision: str, batch_size: int) -> dict:
    return {
        "seed": 0, "space": {"name": "nas_bench_201", "kwargs": dict(space)},
        "data": {"name": "digits_hard", "batch_size": batch_size},
        "training": {"epochs": 1, "precision": precision, "accelerator": "cpu" if device.type == "cpu" else "gpu",
                     "reptile_steps": 2, "gm_batches": 2},
        "ranking": {"ground_truth": None, "headline": "best_accuracy"},
        "output": {"tensorboard": False, "diagnostics": False},
    }


def _synthetic(n_batches: int, batch_size: int, size: int, device: torch.device) -> list:
    """Fixed random ``(x, y, index)`` batches of CIFAR's shape, already on ``device``."""
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(batch_size, 3, size, size, generator=g).to(device),
             torch.randint(0, 10, (batch_size,), generator=g).to(device),
             torch.arange(i * batch_size, (i + 1) * batch_size, device=device)) for i in range(n_batches)]


def _autocast(device: torch.device, precision: str) -> Any:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def _ours(strategy: str, base: dict, device: torch.device, data: list, precision: str,
          training: dict | None = None) -> Callable[[], None]:
    """Steps of our engine on ``data`` (the Lightning module's engine, without the Trainer loop).

    ``training`` overrides fields of the recipe's ``training`` section (e.g. ``unused_grads``).
    """
    from nni_dynamic_supernet.nni_bridge import DynamicSupernetStrategy, SupernetModule, make_training_module
    from nni_dynamic_supernet.recipe import Recipe
    from nni_dynamic_supernet.registry import create_space
    from nni_dynamic_supernet.data.samplers import build_data_sampler
    recipe = Recipe.from_dict({**base, "strategy": strategy, "training": {**base["training"], **(training or {})},
                               "data": {"name": "digits_hard", "batch_size": base["data"]["batch_size"]}})
    torch.manual_seed(0)
    space = create_space("nas_bench_201", **base["space"]["kwargs"], num_classes=10, in_channels=3,
                         input_size=data[0][0].shape[-1])
    nni_strategy = DynamicSupernetStrategy(recipe)
    nni_strategy.mutate_model(space)
    training_module = make_training_module(recipe, 10)
    training_module.set_model(space)
    # PA&DA's DA observes example scores.
    sampler = build_data_sampler(recipe.training, sum(len(b[1]) for b in data), seed=recipe.seed)
    module = SupernetModule(training_module, recipe, pristine_space=nni_strategy.pristine_space, data_sampler=sampler)
    module.ensure_partition()
    module.to(device)
    engine = module.build_engine(10_000)
    state = {"step": 0}

    def go() -> None:
        for batch in data:
            with _autocast(device, precision):
                engine.train_step(batch, state["step"])
            state["step"] += 1
    return go


def _nni(base: dict, device: torch.device, data: list, precision: str) -> Callable[[], None]:
    """NNI 3.0 RandomOneShot's step without the Trainer loop, as our side runs without it.

    ``RandomSamplingLightningModule.resample`` (NNI's walk over its supernet modules), forward,
    cross-entropy, ``zero_grad``, backward and the same SGD step; NNI's per-step ``self.log``
    calls and its torchmetrics accuracy are left out, so this side is if anything faster than
    NNI's real step and the ratio is conservative.
    """
    from nni.nas.evaluator.pytorch.lightning import ClassificationModule
    from nni.nas.oneshot.pytorch.sampling import RandomSamplingLightningModule
    from nni.nas.oneshot.pytorch.strategy import RandomOneShot

    from nni_dynamic_supernet.registry import create_space
    torch.manual_seed(0)
    space = create_space("nas_bench_201", **base["space"]["kwargs"], num_classes=10, in_channels=3,
                         input_size=data[0][0].shape[-1])
    strategy = RandomOneShot()
    strategy.mutate_model(space)
    cls = ClassificationModule(learning_rate=0.05, weight_decay=5e-4, num_classes=10, export_onnx=False,
                               optimizer=lambda params, lr, weight_decay: torch.optim.SGD(
                                   params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay))
    cls.set_model(space)
    module = RandomSamplingLightningModule(cls).to(device)
    module.log = lambda *a, **k: None  # no Trainer here: logging is a no-op, as our side logs per epoch
    module.training_module.log = module.log
    optimizer = cls.configure_optimizers()
    model = module.model
    model.train()

    def go() -> None:
        for x, y, _ in data:
            module.resample()
            with _autocast(device, precision):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return go


def _time(fns: dict[str, Callable[[], None]], device: torch.device, repeats: int, steps: int) -> dict:
    """Median steps/s of each side over interleaved repeats (after one warm-up round), with peak memory."""
    for fn in fns.values():
        fn()
    _sync(device)
    seconds: dict[str, list[float]] = {name: [] for name in fns}
    peak: dict[str, int] = {}
    for r in range(repeats):
        for name, fn in fns.items():
            if device.type == "cuda" and r == 0:
                torch.cuda.reset_peak_memory_stats(device)
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            seconds[name].append(time.perf_counter() - start)
            if device.type == "cuda" and r == 0:
                peak[name] = int(torch.cuda.max_memory_allocated(device))
    return {name: {"steps_per_s": steps / statistics.median(s), "peak_mem_mib": peak.get(name, 0) / 2 ** 20}
            for name, s in seconds.items()}


def _gpu_busy(fn: Callable[[], None], device: torch.device, steps: int) -> dict:
    """Kernel time and kernel launches per step of one profiled call of ``fn`` (``torch.profiler``).

    A step whose kernels keep the GPU busy for a small part of its wall time is bound by the
    host (Python and dispatch per op), where mixed precision cannot help and a sync costs little.
    """
    from torch.profiler import ProfilerActivity, profile
    _sync(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        _sync(device)
    events = prof.key_averages()
    kernel_us = sum(e.self_device_time_total for e in events if str(e.device_type).endswith("CUDA"))
    launches = sum(e.count for e in events if e.key.startswith(("cudaLaunchKernel", "cuLaunchKernel")))
    syncs = sum(e.count for e in events if e.key in ("cudaStreamSynchronize", "cudaDeviceSynchronize"))
    return {"kernel_ms_per_step": kernel_us / 1e3 / steps, "launches_per_step": launches / steps,
            "syncs_per_step": max(0, syncs - 1) / steps}  # less the one ``_sync`` that ends the timed call


def throughput(device: torch.device, tiny: bool, repeats: int, steps: int, batch_size: int, space: dict) -> dict:
    """Steps/s and peak memory of every strategy and of NNI's RandomOneShot, in float32 and bf16.

    ``space`` (NAS-Bench-201 ``channels`` and ``cells_per_stage``) and ``batch_size`` size the
    supernet and its batches; :data:`FULL_SPACE` and 64 are the issue's table. Larger ones move the
    step from host-bound (where bf16 cannot help) towards compute-bound.
    """
    size = 8 if tiny else 32
    data = _synthetic(steps, batch_size, size, device)
    out: dict = {}
    for precision in ("32", "bf16"):
        base = _base(space, device, precision, batch_size)
        sides = {name: _ours(name, base, device, data, precision) for name in STRATEGIES}
        sides[SPOS_ZERO] = _ours("spos", base, device, data, precision, {"unused_grads": "zero"})
        sides["NNI RandomOneShot"] = _nni(base, device, data, precision)
        out[precision] = _time(sides, device, repeats, steps)
        if device.type == "cuda":
            for name, fn in sides.items():
                row = out[precision][name]
                row.update(_gpu_busy(fn, device, steps))
                # Kernel time over the unprofiled step time: the share of the step the GPU computes.
                row["gpu_busy"] = row["kernel_ms_per_step"] * row["steps_per_s"] / 1e3
    return out


def _cli(args: list[str], timeout: int) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nni_dynamic_supernet.cli", *args], capture_output=True, text=True,
                          timeout=timeout)
    return {"ok": proc.returncode == 0, "seconds": time.perf_counter() - started,
            "tail": (proc.stdout + proc.stderr).strip().splitlines()[-30:]}


def end_to_end(device: torch.device, tiny: bool) -> dict:
    """One short ``nds train`` through the CLI, and one DDP run on one device through the pipeline."""
    space = TINY_SPACE if tiny else FULL_SPACE
    accel = "cpu" if device.type == "cpu" else "gpu"
    recipe = {"strategy": "spos", "seed": 0, "space": {"name": "nas_bench_201", "kwargs": dict(space)},
              "data": {"name": "digits_hard", "batch_size": 64, "train_subset": 512},
              "training": {"epochs": 1, "max_steps_per_epoch": 4, "accelerator": accel, "precision": "bf16"},
              "search": {"searcher": "random", "max_evaluations": 2, "bn_batches": 1},
              "ranking": {"ground_truth": None, "headline": "best_accuracy", "probe_archs": 0},
              "output": {"tensorboard": False, "plots": False}}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yml"
        path.write_text(json.dumps(recipe))
        out["nds train"] = _cli(["train", "--config", str(path), "--out", str(Path(tmp) / "out")], timeout=240)
        started = time.perf_counter()
        try:
            from pytorch_lightning.strategies import DDPStrategy

            from nni_dynamic_supernet.nni_bridge import fit_supernet
            from nni_dynamic_supernet.pipeline import prepare
            from nni_dynamic_supernet.recipe import Recipe
            run = prepare(Recipe.from_dict(recipe))
            loader = run.loader("train", shuffle=True, drop_last=True)
            ddp = DDPStrategy(find_unused_parameters=True, process_group_backend="gloo" if accel == "cpu" else None)
            trainer = fit_supernet(run.module, loader, 1, limit_train_batches=4, accelerator=accel, devices=1,
                                   strategy=ddp)
            out["DDP, 1 device"] = {"ok": int(run.module.batches_done) == 4, "seconds": time.perf_counter() - started,
                                    "tail": [f"{run.module.batches_done} steps, strategy {type(trainer.strategy).__name__}"]}
        except Exception as exc:  # reported in the table, not raised: the rest of the check still prints
            out["DDP, 1 device"] = {"ok": False, "seconds": time.perf_counter() - started,
                                    "tail": [f"{type(exc).__name__}: {exc}"]}
        finally:
            # Lightning leaves the process group (and its gloo / NCCL threads) up after fit.
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
    return out


def cuda_tests(device: torch.device) -> dict:
    """The test suite's CUDA-marked tests (skipped without CUDA)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests", "-p", "no:cacheprovider"],
                          capture_output=True, text=True, timeout=240)
    # pytest's summary is stdout's last line; a failure before collection (a plugin's import) is only on stderr.
    last = (proc.stdout.strip().splitlines() or proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"ok": proc.returncode in (0, 5), "summary": last, "tail": (proc.stdout + proc.stderr).splitlines()[-30:]}


def main(argv: list[str] | None = None) -> dict:
    """Run the GPU check and print its summary table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (checks the script, not the GPU)")
    parser.add_argument("--tiny", action="store_true", help="a tiny space and few steps (a smoke test)")
    parser.add_argument("--out", default="benchmarks/results_gpu.json")
    parser.add_argument("--skip", nargs="*", default=[], choices=["tests", "throughput", "end_to_end"])
    parser.add_argument("--batch-size", type=int, default=None, help="throughput batch size (default 64; 16 with --tiny)")
    parser.add_argument("--channels", type=int, default=FULL_SPACE["channels"],
                        help=f"throughput NAS-Bench-201 channels (default {FULL_SPACE['channels']})")
    parser.add_argument("--cells", type=int, default=FULL_SPACE["cells_per_stage"],
                        help=f"throughput cells per stage (default {FULL_SPACE['cells_per_stage']})")
    args = parser.parse_args(argv)
    for name in ("batch_size", "channels", "cells"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if not args.cpu and not torch.cuda.is_available():
        parser.error("no CUDA device: pass --cpu --tiny to check the script on the CPU")
    device = torch.device("cpu" if args.cpu else "cuda")
    if args.cpu:
        torch.set_num_threads(1)
    else:
        torch.backends.cudnn.benchmark = True
    started = time.perf_counter()
    report: dict = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
                    "torch": torch.__version__}
    if "tests" not in args.skip:
        report["cuda_tests"] = cuda_tests(device)
    if "throughput" not in args.skip:
        steps, repeats = (3, 1) if args.tiny else (20, 5)
        batch_size = args.batch_size or (16 if args.tiny else 64)
        space = TINY_SPACE if args.tiny else {"channels": args.channels, "cells_per_stage": args.cells}
        report["throughput"] = throughput(device, args.tiny, repeats, steps, batch_size, space)
        report["throughput_config"] = {"batch_size": batch_size, **space}
    if "end_to_end" not in args.skip:
        report["end_to_end"] = end_to_end(device, args.tiny)
    report["seconds"] = time.perf_counter() - started
    _print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(args.out), report)
    return report


def _print(report: dict) -> None:
    print(f"\nGPU check on {report['device']} (torch {report['torch']}), {report['seconds']:.0f} s")
    if "cuda_tests" in report:
        print(f"  CUDA-marked tests: {'ok' if report['cuda_tests']['ok'] else 'FAILED'} "
              f"({report['cuda_tests']['summary']})")
    table = report.get("throughput")
    if table:
        config = report.get("throughput_config", {})
        print(f"\n  NAS-Bench-201, {config.get('channels')} channels, {config.get('cells_per_stage')} cells per stage, "
              f"batch {config.get('batch_size')}")
        print(f"\n  {'side':20s} {'fp32 steps/s':>13s} {'bf16 steps/s':>13s} {'bf16 speed-up':>14s} "
              f"{'fp32 MiB':>9s} {'bf16 MiB':>9s} {'time/ref fp32':>26s} {'bound':>6s} {'GPU busy':>9s} "
              f"{'launches':>9s} {'syncs':>6s}")
        for name in table["32"]:
            a, b = table["32"][name], table["bf16"][name]
            ref, bound = BOUNDS.get(name, (None, None))  # NNI's row: see the spos / NNI lines below
            over = (table["32"][ref]["steps_per_s"] / a["steps_per_s"]) if ref else float("nan")
            label = f"{over:.3f}" + (f" ({ref})" if ref else "")
            print(f"  {name:20s} {a['steps_per_s']:13.1f} {b['steps_per_s']:13.1f} "
                  f"{b['steps_per_s'] / a['steps_per_s']:14.2f} {a['peak_mem_mib']:9.1f} {b['peak_mem_mib']:9.1f} "
                  f"{label:>26s} {bound if bound else '':>6} {a.get('gpu_busy', float('nan')):9.2f} "
                  f"{a.get('launches_per_step', float('nan')):9.0f} {a.get('syncs_per_step', float('nan')):6.2f}")
        for precision in ("32", "bf16"):
            ratio = table[precision]["spos"]["steps_per_s"] / table[precision]["NNI RandomOneShot"]["steps_per_s"]
            print(f"  spos / NNI RandomOneShot steps/s ({precision}): {ratio:.3f} (target >= 1.2)")
        if "gpu_busy" in table["32"]["spos"]:
            print("  GPU busy: kernel time / step time (fp32); launches, syncs: per step (fp32, torch.profiler)")
    for name, row in report.get("end_to_end", {}).items():
        print(f"  {name}: {'ok' if row['ok'] else 'FAILED'} in {row['seconds']:.0f} s  {' | '.join(row['tail'][-1:])}")


if __name__ == "__main__":
    main()
