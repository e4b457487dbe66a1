"""Bit-identity of two source trees: the same tiny runs must give the same results and weights.

A refactor that "changes no result" is checked by running every case of :data:`CASES` once with
each tree (each run in its own process, the tree first on ``PYTHONPATH``) and comparing:

* ``results.json`` (and ``search.json`` / ``predictions.json`` of the follow-up commands) with the
  fields that differ between any two runs removed (wall times, absolute paths);
* every tensor of every ``*.pt`` file, for exact equality (``torch.equal``).

The cases cover every registered strategy, bf16 precision, channels_last, an NNI hub space
through ``nds train`` and through ``NasExperiment``, a ground-truth ranking, each searcher,
transfer, leaf selection, sampling constraints and the chain spaces.

Usage::

    python tests/refactor_identity.py generate OUT_ROOT [CASE ...]   # with this tree's package
    python tests/refactor_identity.py compare REF_ROOT NEW_ROOT

``generate`` runs the package found on ``PYTHONPATH`` (set it to the tree under test).
``tests/test_refactor_identity.py`` (marked slow) does both against a git revision.
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

#: Keys whose values differ between two runs of the same recipe (wall time, file locations).
VOLATILE_KEYS = {"seconds", "checkpoint", "shifted_checkpoint", "elapsed", "elapsed_seconds", "wall_seconds"}

_BASE: dict = {
    "strategy": "spos", "seed": 3,
    "space": {"name": "nas_bench_201", "kwargs": {"channels": 2, "cells_per_stage": 1}},
    "data": {"name": "digits_hard", "batch_size": 16, "eval_batch_size": 200, "train_subset": 256},
    "training": {"epochs": 3, "max_steps_per_epoch": 3, "num_threads": 1},
    "search": {"searcher": "evolution", "max_evaluations": 6, "population": 4, "generations": 2, "select_num": 2,
               "mutation_num": 2, "crossover_num": 2, "bn_batches": 1},
    "ranking": {"ground_truth": None, "headline": "best_accuracy", "probe_archs": 2},
    "output": {"tensorboard": False, "plots": False},
}

STRATEGIES = ("spos", "spos_calr", "spos_ms", "spos_calr_ms", "fairnas", "fairnas_calr_ms", "fsnas", "fsnas_calr_ms",
              "sumnas", "sumnas_ms", "spos_pa", "spos_da", "pada", "pada_calr_ms", "gm_spos", "gm_spos_calr_ms",
              "gm_fairnas")

_MOBILENET = {"widths": [8, 8, 16], "depths": [2, 1, 1], "strides": [1, 2, 1], "stem_channels": 4,
              "first_channels": 4, "last_channels": 16}
_SHUFFLENET = {"depths": [1, 1], "widths": [16, 32], "stem_channels": 8, "last_channels": 32, "stem_stride": 1}


def _recipe(strategy: str, **sections: dict) -> dict:
    recipe = copy.deepcopy(_BASE)
    recipe["strategy"] = strategy
    if strategy.startswith("gm_"):
        recipe["training"].update({"split_epochs": [1, 2], "gm_batches": 2})
    for name, values in sections.items():
        if name in recipe and isinstance(recipe[name], dict):
            recipe[name].update(values)
        else:
            recipe[name] = values
    return recipe


def _cases() -> dict[str, dict]:
    cases: dict[str, dict] = {name: {"recipe": _recipe(name)} for name in STRATEGIES}
    cases["spos"]["follow_up"] = True  # nds search and nds evaluate on its checkpoint
    cases.update({
        "bf16": {"recipe": _recipe("spos_calr_ms", training={"precision": "bf16"},
                                   search={"searcher": "random", "max_evaluations": 4})},
        "channels_last": {"recipe": _recipe("spos", training={"channels_last": True})},
        "hub_nasbench101": {"recipe": _recipe("spos", space={"name": "hub_nasbench101", "kwargs": {}}),
                            "hub": True},
        "nas_experiment": {"experiment": "spos_calr_ms"},
        "ground_truth": {"recipe": _recipe("spos_calr_ms", ranking={"ground_truth": "v1", "headline": "kendall_tau",
                                                                    "probe_archs": 4, "n_bins": 20},
                                           search={"track_archs": 2})},
        "shifted_transfer": {"recipe": _recipe(
            "spos", search={"searcher": "shifted_evolution", "shift_iters": 2, "shift_batch_size": 8,
                            "shift_final_reevaluate": 2, "transfer_to": {"label_map": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]},
                            "freeze_features": True})},
        "shifted": {"recipe": _recipe("spos_ms", search={"searcher": "shifted_evolution", "shift_iters": 2,
                                                         "shift_batch_size": 8, "shift_final_reevaluate": 2,
                                                         "track_archs": 2})},
        "nsga2": {"recipe": _recipe("spos_calr", search={"searcher": "nsga2", "objectives": ["accuracy", "params",
                                                                                              "flops"]})},
        "mobilenet": {"recipe": _recipe("spos_calr_ms", space={"name": "mobilenet", "kwargs": _MOBILENET},
                                        training={"complexity_metric": "flops"})},
        "shufflenet": {"recipe": _recipe("pada", space={"name": "shufflenet", "kwargs": _SHUFFLENET})},
        "fsnas_halving": {"recipe": _recipe("fsnas_calr_ms", search={"leaf_selection": "successive_halving",
                                                                     "halving_epochs": 1})},
        "gm_val_loss": {"recipe": _recipe("gm_spos", search={"leaf_selection": "val_loss", "leaf_probe_archs": 2},
                                          training={"partition_budget": "shared", "gm_restart": "none"})},
        "constraint": {"recipe": _recipe("spos", training={"sampling_constraint": {"metric": "params", "min": 0,
                                                                           "max": 1e9, "bins": 2}},
                                         search={"constraint_metric": "params", "constraint_max": 1e9})},
        "sumnas_rounds": {"recipe": _recipe("sumnas", training={"task_batching": 2, "inner_batches": "split",
                                                                "reptile_steps": 2})},
        "on_device_da": {"recipe": _recipe("spos_da", data={"on_device": True},
                                           training={"da_unseen": "keep", "da_tau_schedule": "constant"})},
        "pa_reweight": {"recipe": _recipe("spos_pa", training={"importance_reweight": True, "pa_op_norm": "all",
                                                               "pa_shared_across_labels": False})},
        "adam_poly": {"recipe": _recipe("fairnas", training={"optimizer": "adam", "lr_schedule": "poly",
                                                             "poly_power": 2.0, "paths_per_step": 2})},
        "plots_tensorboard": {"recipe": _recipe("spos_calr", output={"plots": True, "tensorboard": True})},
    })
    return cases


CASES: dict[str, dict] = _cases()


# ---------------------------------------------------------------------------------------------- one run
def _register_hub_spaces() -> None:
    """NNI's NAS-Bench-101 hub cell as the space ``hub_nasbench101`` (as ``tests/hub_entry_points.py`` does)."""
    import importlib.metadata as metadata

    real = metadata.entry_points

    class _EntryPoint:
        name = "hub_nasbench101"

        def load(self) -> Any:
            def factory(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> Any:
                from nni_dynamic_supernet.spaces.nni_hub import create_hub_space
                return create_hub_space("NasBench101", num_classes)
            return factory

    def entry_points(**kwargs: Any) -> Any:
        if kwargs.get("group") != "nni_dynamic_supernet.spaces":
            return real(**kwargs)
        return [*real(**kwargs), _EntryPoint()]

    metadata.entry_points = entry_points  # type: ignore[assignment]


def _run_experiment(strategy_name: str, out: Path) -> None:
    """Train and search through ``NasExperiment`` (the Python API) and save what it produced."""
    import torch
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from nni.nas.experiment import NasExperiment
    from torch.utils.data import TensorDataset

    from nni_dynamic_supernet import create_strategy
    from nni_dynamic_supernet.spaces.nni_hub import create_hub_space

    torch.set_num_threads(1)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(48, 3, 16, 16, generator=g), torch.randint(0, 10, (48,), generator=g))
    evaluator = Classification(train_dataloaders=DataLoader(data, batch_size=8, shuffle=True),
                               val_dataloaders=DataLoader(data, batch_size=16), num_classes=10, max_epochs=2,
                               learning_rate=0.05, accelerator="cpu", limit_train_batches=3,
                               enable_progress_bar=False, logger=False, enable_checkpointing=False)
    strategy = create_strategy(strategy_name, searcher="evolution", max_evaluations=6, population=4, generations=2,
                               select_num=2, mutation_num=2, crossover_num=2, bn_batches=1)
    exp = NasExperiment(create_hub_space("NasBench201"), evaluator, strategy)
    exp.config.experiment_working_directory = str(out / "nni")
    exp.run()
    top = exp.export_top_models(top_k=3, formatter="dict")
    module = strategy._nds_module
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"top": top, "search_history": strategy.search_history},
                                                 default=str, sort_keys=True))
    torch.save({"models": [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in module.supernets()]},
               out / "supernet.pt")


def run_case(name: str, out: Path) -> None:
    """Run case ``name`` of :data:`CASES` into ``out`` with the package on ``sys.path``."""
    case = CASES[name]
    if "experiment" in case:
        _run_experiment(case["experiment"], out)
        return
    if case.get("hub"):
        _register_hub_spaces()
    from nni_dynamic_supernet import cli
    out.mkdir(parents=True, exist_ok=True)
    config = out.parent / f"{name}.yaml"
    config.write_text(json.dumps(case["recipe"]))
    status = cli.main(["train", "--config", str(config), "--out", str(out / "run"), "--no-progress"])
    if status != 0:
        raise SystemExit(f"{name}: nds train exited with {status}")
    if case.get("follow_up"):
        checkpoint = str(out / "run" / "supernet.pt")
        assert cli.main(["search", "--checkpoint", checkpoint, "--out", str(out / "search"), "--searcher", "random",
                         "--set", "search.max_evaluations=3"]) == 0
        archs = out / "archs.json"
        top = json.loads((out / "search" / "search.json").read_text())["top"]
        archs.write_text(json.dumps([t["arch"] for t in top[:2]]))
        assert cli.main(["evaluate", "--checkpoint", checkpoint, "--archs", str(archs), "--out",
                         str(out / "predictions.json"), "--no-progress"]) == 0


# ---------------------------------------------------------------------------------------------- many runs
def generate(root: Path, tree: Optional[Path] = None, names: Optional[list[str]] = None,
             python: str = sys.executable) -> dict[str, int]:
    """Run every case (or ``names``) into ``root/<case>``, each in its own process; return exit codes.

    ``tree``: the source tree whose package runs (first on ``PYTHONPATH``); ``None`` keeps the
    current ``PYTHONPATH``.
    """
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    codes = {}
    for name in names or list(CASES):
        out = root / name
        log = root / f"{name}.log"
        root.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as handle:
            codes[name] = subprocess.call([python, str(Path(__file__).resolve()), "run", name, str(out)], env=env,
                                          stdout=handle, stderr=subprocess.STDOUT)
    return codes


#: A file of the package (an embedded ground-truth table) named by its absolute path: the tree differs.
_PACKAGE_PATH = re.compile(r"\S*/nni_dynamic_supernet/")


def _strip(value: Any, roots: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, roots) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(v, roots) for v in value]
    if isinstance(value, str):
        for root in roots:
            value = value.replace(root, "<out>")
        value = _PACKAGE_PATH.sub("<package>/", value)
    return value


def _tensors(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Every tensor inside a nested checkpoint, by path; other leaves as they are."""
    import torch
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_tensors(v, f"{prefix}/{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_tensors(v, f"{prefix}[{i}]"))
    elif isinstance(obj, torch.Tensor):
        out[prefix] = obj
    else:
        out[prefix] = obj
    return out


def compare_case(ref: Path, new: Path) -> list[str]:
    """The differences between one case's outputs under ``ref`` and ``new`` (empty: identical)."""
    import torch
    problems: list[str] = []
    files_ref = sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file() and "nni" not in p.parts
                       and "lightning" not in p.parts and "tensorboard" not in p.parts)
    files_new = sorted(p.relative_to(new) for p in new.rglob("*") if p.is_file() and "nni" not in p.parts
                       and "lightning" not in p.parts and "tensorboard" not in p.parts)
    if files_ref != files_new:
        problems.append(f"files differ: {sorted(set(map(str, files_ref)) ^ set(map(str, files_new)))}")
    for rel in files_ref:
        a, b = ref / rel, new / rel
        if not b.is_file():
            continue
        if rel.suffix == ".json":
            ja = _strip(json.loads(a.read_text()), (str(ref.resolve()), str(ref)))
            jb = _strip(json.loads(b.read_text()), (str(new.resolve()), str(new)))
            if ja != jb:
                problems.append(f"{rel}: {_first_difference(ja, jb)}")
        elif rel.suffix == ".pt":
            ta = _tensors(torch.load(a, map_location="cpu", weights_only=True))
            tb = _tensors(torch.load(b, map_location="cpu", weights_only=True))
            if ta.keys() != tb.keys():
                problems.append(f"{rel}: entries differ: {sorted(set(ta) ^ set(tb))[:5]}")
                continue
            for key in ta:
                va, vb = ta[key], tb[key]
                if isinstance(va, torch.Tensor):
                    same = isinstance(vb, torch.Tensor) and va.dtype == vb.dtype and va.shape == vb.shape \
                        and torch.equal(va, vb)
                else:
                    same = _strip(va, (str(ref.resolve()),)) == _strip(vb, (str(new.resolve()),))
                if not same:
                    problems.append(f"{rel}: {key} differs")
                    break
        elif rel.suffix == ".png":
            continue  # figures: present in both (their bytes carry matplotlib metadata)
    return problems


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{path or '/'}: keys {sorted(set(a) ^ set(b))}"
        for k in a:
            if a[k] != b[k]:
                return _first_difference(a[k], b[k], f"{path}/{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: {str(a)[:200]} != {str(b)[:200]}"


def compare(ref_root: Path, new_root: Path, names: Optional[list[str]] = None) -> dict[str, list[str]]:
    """Compare every case present under ``ref_root``; return the problems per case (empty lists: identical)."""
    names = names or sorted(p.name for p in ref_root.iterdir() if p.is_dir())
    return {name: compare_case(ref_root / name, new_root / name) for name in names}


def main(argv: list[str]) -> int:
    """Command line: ``run CASE OUT``, ``generate ROOT [CASE ...]`` or ``compare REF NEW``."""
    command, *rest = argv
    if command == "run":
        run_case(rest[0], Path(rest[1]))
        return 0
    if command == "generate":
        codes = generate(Path(rest[0]), names=rest[1:] or None)
        for name, code in codes.items():
            print(f"{name}: exit {code}")
        return int(any(codes.values()))
    if command == "compare":
        report = compare(Path(rest[0]), Path(rest[1]), rest[2:] or None)
        for name, problems in report.items():
            print(f"{name}: {'identical' if not problems else '; '.join(problems)}")
        same = sum(not p for p in report.values())
        print(f"{same}/{len(report)} cases identical")
        return int(same != len(report))
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
