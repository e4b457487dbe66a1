"""One recipe, end to end: data -> space -> supernet -> training -> search -> ranking -> report.

:func:`run_recipe` is what ``nds train`` and the nnictl trial runner call. The stages
are also usable one by one (:func:`prepare`, :func:`train`, :func:`load_supernet`,
:func:`predict`), which is how ``nds search`` and ``nds evaluate`` reuse a checkpoint.

Data flows one way: each stage reads the :class:`Recipe` and the previous stage's
output, never another stage's internals.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from .atomic_io import atomic_torch_save, atomic_write_json
from .data import build_splits, make_loader
from .errors import ConfigError, TrainingDiverged
from .recipe import Recipe
from .registry import create_space

_logger = logging.getLogger("nni_dynamic_supernet")

__all__ = ["Run", "prepare", "train", "run_recipe", "load_supernet", "predict", "resolve_ground_truth",
           "save_supernet", "search_run", "transfer_target", "build_data", "CHECKPOINT_FORMAT", "RESULTS_FORMAT"]

CHECKPOINT_FORMAT = "nds-supernet/1"
RESULTS_FORMAT = "nds-results/1"
EMBEDDED_TABLE = Path(__file__).parent / "_resources" / "digits_hard_nb201.json"


@dataclass
class Run:
    """Everything built for one recipe: data, the supernet(s) and the Lightning module."""

    recipe: Recipe
    splits: Any
    space: Any
    pristine_space: Any
    module: Any
    search_space: dict
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    #: Supernet copies that replace the module's (a transferred run's new-head copies).
    model_copies: Optional[list] = None

    @property
    def models(self) -> list:
        """The supernet of every partition leaf."""
        return self.model_copies if self.model_copies is not None else self.module.supernets()

    @property
    def partition(self) -> Any:
        """The partition (one leaf unless few-shot / GM)."""
        return self.module._partition

    @property
    def data_sampler(self) -> Any:
        """The training data sampler (uniform or importance) that the engine also observes."""
        return self.module._data_sampler

    def loader(self, split: str, shuffle: bool, seed_offset: int = 0, drop_last: bool = False,
               batch_size: Optional[int] = None, sampler: Any = None) -> Any:
        """A deterministic loader over ``split`` seeded from the recipe's seed (or ordered by ``sampler``)."""
        d = self.recipe.data
        dataset = getattr(self.splits, split)
        size = batch_size or (d.batch_size if split == "train" else d.eval_batch_size)
        pin = d.pin_memory if d.pin_memory is not None else self.device.type == "cuda"
        return make_loader(dataset, size, shuffle=shuffle, seed=self.recipe.seed + seed_offset,
                           drop_last=drop_last, num_workers=d.num_workers if split == "train" else 0, sampler=sampler,
                           pin_memory=pin)

    def calib_loader(self) -> Any:
        """Training batches used for BN recalibration: fixed, so evaluation is deterministic."""
        return self.loader("train", shuffle=True, seed_offset=1_000_003, drop_last=True,
                           batch_size=self.recipe.data.batch_size)

    def val_loader(self) -> Any:
        """The validation split, unshuffled."""
        return self.loader("val", shuffle=False)


# ---------------------------------------------------------------------------------------------- building
def space_kwargs(recipe: Recipe, splits: Any) -> dict:
    """The keyword arguments the recipe's space is built with: ``space.kwargs`` plus the data's classes and shape."""
    kwargs = dict(recipe.space.kwargs)
    channels, height, _ = splits.input_shape
    kwargs.setdefault("num_classes", splits.num_classes)
    kwargs.setdefault("in_channels", channels)
    kwargs.setdefault("input_size", height)
    return kwargs


def build_data(recipe: Recipe) -> Any:
    """The recipe's train/val/test splits (relabelled when ``data.label_map`` is set)."""
    from .data import relabel_splits
    d = recipe.data
    splits = build_splits(d.name, root=d.root, download=d.download, val_fraction=d.val_fraction,
                          split_seed=0, train_subset=d.train_subset, augment=d.augment)
    if d.label_map is not None:
        splits = relabel_splits(splits, d.label_map)
    return splits


def prepare(recipe: Recipe, on_epoch_end: Optional[Callable] = None) -> Run:
    """Build data, space, supernet and the Lightning module for ``recipe`` (no training yet)."""
    from .nni_bridge import DynamicSupernetStrategy, make_training_module

    if recipe.training.num_threads is not None:
        # Tiny supernets run fastest on one thread; it also lets two trials share two cores.
        torch.set_num_threads(recipe.training.num_threads)
    torch.manual_seed(recipe.seed)
    np.random.seed(recipe.seed)
    d = recipe.data
    splits = build_data(recipe)
    if len(splits.train) < d.batch_size:
        raise ConfigError("data.batch_size", d.batch_size,
                          f"larger than the training split ({len(splits.train)} examples); lower it")
    space = create_space(recipe.space.name, **space_kwargs(recipe, splits))
    strategy = DynamicSupernetStrategy(recipe)
    strategy.mutate_model(space)
    # The shape of the data, not a guess (parameter/FLOPs counting traces the space with it).
    strategy.pristine_space.nds_input_shape = tuple(int(d) for d in splits.input_shape)  # type: ignore[union-attr]
    training_module = make_training_module(recipe, splits.num_classes)
    training_module.set_model(space)
    from .nni_bridge import SupernetModule
    from .training.build import build_data_sampler
    # The train loader draws from this sampler and the engine feeds it per-example scores (DA).
    data_sampler = build_data_sampler(recipe.training, len(splits.train), seed=recipe.seed)
    module = SupernetModule(training_module, recipe, pristine_space=strategy.pristine_space,
                            on_epoch_end=on_epoch_end, data_sampler=data_sampler)
    module.ensure_partition()
    from .training.build import search_space_of_model
    return Run(recipe, splits, space, strategy.pristine_space, module, search_space_of_model(space),
               training_device(recipe))


def training_device(recipe: Recipe) -> torch.device:
    """The device training runs on: CUDA for ``training.accelerator`` gpu/cuda, or auto with a GPU present."""
    accelerator = recipe.training.accelerator
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def save_supernet(run: Run, path: Path, models: Optional[Sequence[Any]] = None) -> Path:
    """Write the trained supernet(s) as plain data, atomically (loadable with ``weights_only=True``).

    ``models`` replaces ``run.models`` (a shifted copy); ``run.recipe`` must build them.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "recipe": run.recipe.to_dict(),
        "search_space": {k: list(v) for k, v in run.search_space.items()},
        "partition": run.partition.state_dict(),
        "models": [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in (models or run.models)],
    }
    return atomic_torch_save(path, payload)


def load_supernet(path: str | Path, overrides: Optional[dict] = None) -> Run:
    """Rebuild a :class:`Run` from a checkpoint written by :func:`save_supernet`.

    ``overrides`` (dotted keys) may change the search, ranking or data fields; the
    training fields stay those the supernet was trained with.
    """
    from .training.build import partition_for
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--checkpoint", str(path), "file not found; pass the supernet.pt written by nds train")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt or not a torch file
        raise ConfigError("--checkpoint", str(path),
                          f"cannot be read ({type(exc).__name__}); it is corrupt or truncated, re-run nds train") from None
    from .checkpoint_check import check_models_fit, check_payload
    check_payload(payload, str(path), CHECKPOINT_FORMAT)  # format, recipe, space, partition, model list
    try:  # the checkpoint's own recipe first: its faults are the file's, the overrides' are the user's
        Recipe.from_dict(payload["recipe"])
    except ConfigError as exc:
        raise ConfigError("--checkpoint", str(path), f"holds an invalid recipe ({exc}); re-run nds train") from None
    recipe = Recipe.from_dict(payload["recipe"], overrides or {})
    run = prepare(recipe)
    saved_space = {k: list(v) for k, v in payload["search_space"].items()}
    if saved_space != {k: list(v) for k, v in run.search_space.items()}:
        raise ConfigError("--checkpoint", str(path), "was trained on another search space than its recipe builds")
    try:
        run.partition.load_state_dict(payload["partition"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError("--checkpoint", str(path), f"its partition cannot be restored ({type(exc).__name__}); "
                                                     "re-run nds train to write a new one") from None
    run.module.ensure_partition()
    check_models_fit(payload["models"], run.models, str(path))  # one state per supernet, every shape right
    for model, state in zip(run.models, payload["models"]):
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError("--checkpoint", str(path), f"weights do not fit the space ({first})") from None
    run.module.to(run.device)  # search and evaluation run on the recipe's training device
    return run


# ---------------------------------------------------------------------------------------------- search
def transfer_target(run: Run) -> Run:
    """``run`` moved to ``search.transfer_to``: target data, and supernet copies with a new classifier head.

    The returned run's recipe describes the target (its ``data`` section is the target's,
    ``transfer_to`` is cleared), so a checkpoint saved from it rebuilds the new head size.
    Its ``models`` are deep copies (the source supernet is untouched); the head is freshly
    initialised from the recipe's seed and, with ``search.freeze_features``, the only
    trainable part (the Supernet Shifting paper's transfer mode).
    """
    from .training.transfer import freeze_features, replace_classifier
    s = run.recipe.search
    data = {**run.recipe.to_dict()["data"], **(s.transfer_to or {})}
    target = run.recipe.replace(**{f"data.{k}": v for k, v in data.items()}, **{"search.transfer_to": None,
                                                                               "search.freeze_features": False})
    splits = build_data(target)
    models = [copy.deepcopy(m) for m in run.models]
    pristine = copy.deepcopy(run.pristine_space)
    for i, model in enumerate(models):
        replace_classifier(model, splits.num_classes, seed=run.recipe.seed + 11 + i)
        if s.freeze_features:
            freeze_features(model)
    replace_classifier(pristine, splits.num_classes, seed=run.recipe.seed + 11)
    return Run(target, splits, run.space, pristine, run.module, run.search_space, run.device, model_copies=models)


def _tracked_archs(recipe: Recipe, truth: Any, search_space: dict) -> list[dict]:
    """Half the best architectures by ground truth and half random ones (random only without truth)."""
    n = recipe.search.track_archs
    if n == 0:
        return []
    rng = np.random.RandomState(recipe.seed + 5)
    if truth is None:
        return [{"arch": {label: c[rng.randint(len(c))] for label, c in search_space.items()}, "group": "random"}
                for _ in range(n)]
    archs, accs = truth.archs(), np.asarray(truth.accuracies())
    order = np.argsort(-accs, kind="stable")
    n_top = max(n // 2, 1)
    top = [int(i) for i in order[:n_top]]
    rest = [int(i) for i in rng.permutation(order[n_top:])[: n - n_top]]
    return ([{"arch": archs[i], "group": "top", "true_accuracy": float(accs[i])} for i in top]
            + [{"arch": archs[i], "group": "random", "true_accuracy": float(accs[i])} for i in rest])


def search_run(run: Run, out_dir: Optional[Path] = None, evaluator: Any = None, truth: Any = None,
               progress: Optional[bool] = None) -> dict:
    """Run the recipe's searcher on ``run``'s supernet, transferring it first when ``search.transfer_to`` is set.

    A shifted search writes the moved supernet to ``out_dir/supernet_shifted.pt``
    (``search.save_shifted``) so ``nds evaluate`` can score subnets on it. Returns the
    search dict of :func:`~.search.run.search_supernet` (plus ``shifted_checkpoint``
    and ``transfer`` when they apply).
    """
    from .search.run import search_supernet
    s = run.recipe.search
    target = run
    if s.transfer_to is not None:
        target = transfer_target(run)
        evaluator, truth = None, None  # other data, other classes: no ground truth, no reusable batches
    shifted: list = []
    found = search_supernet(run.recipe.search, target.models, run.partition, target.calib_loader(),
                            target.val_loader(), target.pristine_space, target.device, evaluator=evaluator,
                            train_set=target.splits.train, tracked=_tracked_archs(run.recipe, truth, run.search_space),
                            shifted_models=shifted, progress=progress, seed=run.recipe.seed,
                            training=run.recipe.training)
    if s.transfer_to is not None:
        found["transfer"] = {"num_classes": target.splits.num_classes, "classes": list(target.splits.classes),
                             "data": target.recipe.to_dict()["data"], "freeze_features": s.freeze_features}
    if shifted and out_dir is not None and s.save_shifted:
        saved = Run(target.recipe, target.splits, run.space, target.pristine_space, run.module, run.search_space)
        path = save_supernet(saved, Path(out_dir) / "supernet_shifted.pt", models=shifted)
        found["shifted_checkpoint"] = str(path.resolve())
    return found


# ---------------------------------------------------------------------------------------------- ground truth
def resolve_ground_truth(recipe: Recipe, search_space: dict) -> Any:
    """The ground-truth table the recipe asks for, restricted to the space, or ``None``.

    ``auto`` uses the embedded table of the run's dataset when the run is that embedded
    benchmark (``digits_hard`` -> ``v1``, ``digits_hard_v2`` -> ``v2_26``, on ``nas_bench_201`` of
    the table's size); ``v1`` / ``v2`` / ``v2_26`` name an embedded table explicitly.
    """
    from .bench.tables import TABLES, table_for_dataset
    from .ranking import GroundTruth
    source = recipe.ranking.ground_truth
    if source is None or source in ("none", ""):
        return None
    if source == "auto":
        spec = table_for_dataset(recipe.data.name)
        if spec is None or recipe.space.name != "nas_bench_201" or not spec.path.is_file():
            return None
        table = GroundTruth.load(spec.path)
        wanted = {k: v for k, v in table.space_kwargs.items() if k not in ("num_classes", "in_channels", "input_size")}
        if any(recipe.space.kwargs.get(k, v) != v for k, v in wanted.items()):
            return None
    elif source in TABLES:
        if not TABLES[source].path.is_file():
            raise ConfigError("ranking.ground_truth", source, "this embedded table is not installed; build it with "
                              f"`nds bench build --table {source}` or use another table")
        table = GroundTruth.load(TABLES[source].path)
    elif source == "nasbench201":
        from .ranking.nasbench201_db import ground_truth_from_nasbench201
        table = ground_truth_from_nasbench201()
    else:
        try:
            table = GroundTruth.load(source)
        except ConfigError as exc:  # name the recipe field the user set, not the loader's argument
            raise ConfigError("ranking.ground_truth", source, exc.fix) from None
    restricted = table.restrict(search_space)
    if len(restricted) == 0:
        raise ConfigError("ranking.ground_truth", source, "shares no architecture with the search space; "
                          "use a table built for this space")
    return restricted


def _probe_archs(recipe: Recipe, truth: Any, search_space: dict) -> list[dict]:
    """The architectures scored at probe epochs (``ranking.probe_archs`` of them).

    With a ground truth: a fixed subset stratified by true accuracy (evenly spaced ranks),
    or the whole table, in table order, when ``probe_archs`` is at least its size. Without
    one: random architectures from the recipe's seed.
    """
    n = recipe.ranking.probe_archs
    if n == 0:
        return []
    if truth is not None:
        archs = truth.archs()
        if n >= len(archs):
            return list(archs)
        order = np.argsort(truth.accuracies())
        picks = np.unique(np.linspace(0, len(order) - 1, n).round().astype(int))
        return [archs[int(order[i])] for i in picks]
    rng = np.random.RandomState(recipe.seed + 2)
    return [{label: choices[rng.randint(len(choices))] for label, choices in search_space.items()} for _ in range(n)]


def _rank_against(run: Run, truth: Any, preds: list[dict]) -> dict:
    """The ranking report of ``preds`` (``predict``'s rows) against ``truth``: the final ranking's measures."""
    from .ranking import ranking_report
    r = run.recipe.ranking
    true = [truth.accuracy(p["arch"]) for p in preds]
    params = truth.params()
    complexity = None
    if params is not None:
        by_key = {tuple(sorted(a.items())): c for a, c in zip(truth.archs(), params)}
        complexity = [by_key[tuple(sorted(p["arch"].items()))] for p in preds]
    return ranking_report([p["predicted_accuracy"] for p in preds], true, complexity=complexity,
                          chance=100.0 / run.splits.num_classes, n_bins=r.n_bins)


# ---------------------------------------------------------------------------------------------- stages
def predict(run: Run, archs: Sequence[dict], evaluator: Any = None, progress: Optional[bool] = None,
            what: str = "evaluate") -> list[dict]:
    """Predicted accuracy of each architecture (val accuracy after the recipe's BN policy), in order.

    ``progress``: ``None`` shows a bar when interactive (never in an nnictl trial); ``True`` / ``False`` force it.
    Without a bar, a log line (``<what>: 80/160 archs [10.0 s]``) at least every
    :data:`~.progress.LOG_INTERVAL_S` seconds tells a trial's log how far it is.
    """
    from .search.run import build_evaluator
    from .spaces.validation import normalize_arch
    # Input choices arrive from JSON as lists; the search space holds them as sorted tuples.
    archs = [normalize_arch(a, run.search_space) for a in archs]
    for arch in archs:
        missing = set(run.search_space) - set(arch)
        unknown = {k: v for k, v in arch.items() if k not in run.search_space or v not in run.search_space[k]}
        if unknown or missing:
            bad = next(iter(unknown.items())) if unknown else (sorted(missing)[0], None)
            raise ConfigError("arch", {bad[0]: bad[1]}, "unknown or missing label/choice; labels and choices: "
                              + "; ".join(f"{k}: {v}" for k, v in run.search_space.items()))
    evaluator = evaluator or build_evaluator(run.recipe.search, run.models, run.partition, run.calib_loader(),
                                             run.val_loader(), run.device)
    from .progress import ProgressLog, progress_bar
    bar = progress_bar(archs, desc=what, unit="arch", enabled=progress)
    lines = ProgressLog(what, len(archs), enabled=bar.disable)
    out = []
    for arch in bar:
        out.append({"arch": dict(arch), "predicted_accuracy": float(evaluator.evaluate(arch)["accuracy"])})
        lines.update(1)
    lines.close()
    return out


def train(run: Run, out_dir: Optional[Path], resume: Optional[str] = None, progress: bool = False,
          tensorboard_dir: Optional[Path] = None) -> dict:
    """Train the supernet(s) of ``run``; return timing and step counts."""
    from .nni_bridge import fit_supernet
    t = run.recipe.training
    world = t.devices * t.num_nodes
    loader = run.loader("train", shuffle=True, drop_last=True, sampler=run.data_sampler,
                        batch_size=run.recipe.data.batch_size // world)
    if len(loader) == 0:
        raise ConfigError("data.batch_size", run.recipe.data.batch_size, "leaves no full training batch; lower it")
    if run.recipe.data.on_device:
        from .data.device import DeviceLoader
        loader = DeviceLoader(loader, run.device)
    started = time.monotonic()
    try:
        accelerator = t.accelerator if t.accelerator != "auto" else ("cpu" if run.device.type == "cpu" else "auto")
        fit_supernet(run.module, loader, t.epochs, out_dir=out_dir, resume_from=resume, progress=progress,
                     tensorboard_dir=tensorboard_dir, limit_train_batches=t.max_steps_per_epoch,
                     accelerator=accelerator, devices=t.devices, num_nodes=t.num_nodes)
        from .nni_bridge import revert_sync_batchnorm
        # Lightning leaves the module on the CPU after fit; evaluation and search run on the training device,
        # on one process (local BatchNorm statistics).
        revert_sync_batchnorm(run.module).to(run.device)
    except TrainingDiverged as exc:
        last = Path(out_dir) / "lightning" / "last.ckpt" if out_dir is not None else None
        kept = (f"last good checkpoint {last} (resume with --resume)" if last is not None and last.is_file()
                else "no checkpoint was written yet")
        raise TrainingDiverged(f"{exc}; {kept}; lower training.lr or training.grad_clip, "
                               "or pass --skip-nonfinite") from None
    engine = run.module.engine
    info = {"seconds": time.monotonic() - started, "steps": int(run.module.batches_done),
            "skipped_nonfinite_steps": int(getattr(engine, "skipped_steps", 0))}
    if t.precision == "16":
        info["scaler_skipped_steps"] = int(getattr(engine, "scaler_skips", 0))
    if world > 1:
        info.update(world_size=world, ranks_agree=getattr(run.module, "ranks_agree", None))
    return info


def run_recipe(recipe: Recipe, out_dir: str | Path, reporter: Any = None, resume: Optional[str] = None,
               progress: Optional[bool] = None, skip_search: bool = False,
               on_start: Optional[Callable[[], None]] = None) -> dict:
    """Train, search and rank one recipe; write results.json, best_arch.json and supernet.pt to ``out_dir``.

    ``progress`` shows Lightning's training bar and bars for the search and the final
    ranking: ``None`` (default) when interactive and ``recipe.output.progress`` is not
    forcing it, ``True`` / ``False`` to force. Never in an nnictl trial (quiet mode).
    ``on_start`` is called once the recipe, data and space are known good, right before
    training (the run directory's claim records the run there: :mod:`~.run_dir`).
    Returns the results dict (the ``results.json`` content).
    """
    from .progress import heartbeat, resolve
    show = resolve(True if progress is None and recipe.output.progress else progress)
    from .search.run import build_evaluator, check_search_feasible

    out = Path(out_dir)
    started = time.monotonic()
    log = EpochLog()
    history = log.history
    state: dict = {}

    def on_epoch_end(module: Any, epoch: int) -> None:
        row = {"epoch": epoch + 1,
               "loss": float(module.trainer.callback_metrics.get("train_loss", float("nan"))),
               "lr": float(module.engine.last_lr)}
        # Importance samplers report their distributions (PA: per-op probabilities, DA: entropy of q).
        for sampler in (module.engine.path_sampler, module.engine.data_sampler):
            row.update(getattr(sampler, "epoch_metrics", dict)())  # a third-party sampler may not report
        diagnostics = state.get("diagnostics")
        if diagnostics is not None:
            row.update({k: v for k, v in diagnostics.on_epoch_end(epoch).items() if k != "epoch"})
        probes = state.get("probes") or []
        last = epoch + 1 == recipe.training.epochs
        probed = bool(probes) and (epoch == 0 or last or (epoch + 1) % recipe.ranking.probe_every == 0)
        if probed:
            row.update(_probe(epoch, last))
        history.append(row)
        module.log_dict({f"epoch/{k}": v for k, v in row.items() if k != "epoch"})
        _logger.info("%s", _epoch_line(row, recipe.training.epochs, time.monotonic() - state.get("t0", started)))
        state["t0"] = time.monotonic()
        # Only measured epochs are reported: NNI draws (and assessors read) every point as a measurement.
        if reporter is not None and probed:
            reporter.intermediate(row)

    def _probe(epoch: int, last: bool) -> dict:
        """Score the probe architectures; ``default`` estimates the final ``default`` (README, "web UI")."""
        if "evaluator" not in state:
            # Fixed calibration and validation batches: collect them once, not at every probe.
            state["evaluator"] = build_evaluator(recipe.search, run.module.supernets(), run.module._partition,
                                                 run.calib_loader(), run.val_loader(), run.device)
        truth, headline = state.get("truth"), recipe.ranking.headline
        # The last epoch scores the whole table when there is one: its values are then the final ranking's.
        archs = truth.archs() if last and truth is not None else state["probes"]
        preds = predict(run, archs, evaluator=state["evaluator"], progress=show, what="probe")
        accs = [p["predicted_accuracy"] for p in preds]
        out = {"probe_acc": float(np.mean(accs)), "probe_size": len(preds)}
        if truth is not None:
            report = _rank_against(run, truth, preds)
            if last:
                state["table_ranking"] = (preds, report, run.partition.num_leaves)
            out["kendall_tau"] = float(report["kendall_tau"])
            if headline != "best_accuracy":
                out[headline] = float(report[headline])
        # best_accuracy: the final value is the best searched subnet's; the probe's best is its estimate.
        out["default"] = out[headline] if headline in out else float(max(accs))
        return out

    run = prepare(recipe, on_epoch_end=on_epoch_end)
    truth = resolve_ground_truth(recipe, run.search_space)
    check_search_feasible(recipe.search, run.pristine_space)
    # Created only once the recipe, data, space, ground truth and constraint are known to be good:
    # bad input leaves nothing behind.
    out.mkdir(parents=True, exist_ok=True)
    if on_start is not None:
        on_start()
    state.update(run=run, truth=truth, probes=_probe_archs(recipe, truth, run.search_space))
    tb_dir = out / "tensorboard" if recipe.output.tensorboard else None
    if recipe.output.diagnostics:
        def attach_diagnostics(engine: Any) -> None:
            state["diagnostics"] = run.module.stateful["diagnostics"] = _diagnostics(run, engine)
        run.module.on_engine_ready = attach_diagnostics
    run.module.stateful["epoch_log"] = log
    state["t0"] = time.monotonic()
    train_info = train(run, out, resume=resume, progress=show, tensorboard_dir=tb_dir)
    if not run.module.trainer.is_global_zero:
        return {}  # under DDP, search, ranking and every output file belong to rank 0
    with heartbeat("search and ranking", enabled=not show):
        return _after_training(run, recipe, out, state, history, train_info, truth, reporter, show, skip_search,
                               tb_dir)


def _after_training(run: Run, recipe: Recipe, out: Path, state: dict, history: list, train_info: dict,
                    truth: Any, reporter: Any, show: bool, skip_search: bool, tb_dir: Optional[Path]) -> dict:
    """Search, rank and report a trained run (the second half of :func:`run_recipe`)."""
    from .search.run import build_evaluator
    checkpoint = save_supernet(run, out / "supernet.pt")

    results: dict = {
        "format": RESULTS_FORMAT, "strategy": recipe.strategy, "seed": recipe.seed, "recipe": recipe.to_dict(),
        "checkpoint": str(checkpoint.resolve()),
        "training": {**train_info, "epochs": recipe.training.epochs, "history": history},
        "partition": run.partition.describe(),
        "partition_tree": run.partition.tree(),
        # What the sub-supernets cost: steps per leaf and in total (per_leaf trains every leaf on every step).
        "partition_budget": run.partition.budget_report(),
    }
    engine = run.module.engine
    results["sampling"] = {"paths": getattr(engine.path_sampler, "summary", dict)(),
                           "data": getattr(engine.data_sampler, "summary", dict)()}
    if state.get("diagnostics") is not None:
        results["diagnostics"] = state["diagnostics"].summary(truth.archs() if truth is not None else state["probes"])
    evaluator = state.get("evaluator") or build_evaluator(recipe.search, run.models, run.partition, run.calib_loader(),
                                                          run.val_loader(), run.device)
    if not skip_search:
        found = search_run(run, out, evaluator=evaluator, truth=truth, progress=show)
        best = found["top"][0]
        results["search"] = {k: v for k, v in found.items() if k != "history"}
        results["search"]["history_size"] = len(found["history"])
        results["best_arch"] = best["arch"]
        results["best"] = {k: v for k, v in best.items() if k != "arch"}
        atomic_write_json(out / "best_arch.json", best["arch"])
    if truth is not None:
        # The last epoch's probe scored the whole table with the same supernet and evaluator: reuse it
        # (unless a partition split after that probe changed the supernets).
        preds, report, leaves = state.get("table_ranking") or (None, None, None)
        if preds is not None and leaves == run.partition.num_leaves:
            _logger.info("ranking: the last epoch's probe of the %d archs of the table is the final ranking "
                         "(kendall_tau=%.4f)", len(preds), report["kendall_tau"])
        else:
            preds = predict(run, truth.archs(), evaluator=evaluator, progress=show, what="ranking")
            report = _rank_against(run, truth, preds)
        true = truth.accuracies()
        if recipe.ranking.baselines:
            report["baselines"] = _baselines(run, truth, [p["predicted_accuracy"] for p in preds])
            report["kendall_tau_partial_params"] = report["baselines"].get("complexity_controlled", {}).get(
                "partial_kendall_tau_given_params")
        report["noise_ceiling"] = truth.noise_ceiling(recipe.ranking.n_bins)
        report["ground_truth"] = truth.source
        report["predictions"] = [{"arch": p["arch"], "predicted_accuracy": p["predicted_accuracy"],
                                  "true_accuracy": t} for p, t in zip(preds, true)]
        results["ranking"] = report
    if "best" in results:
        results["best"]["true_accuracy"], missing = _best_true_accuracy(recipe, truth, results["best_arch"])
        if missing:
            results["best"]["true_accuracy_missing"] = missing
    headline = recipe.ranking.headline
    if headline != "best_accuracy" and "ranking" not in results:
        _logger.warning("ranking.headline=%s needs a ground truth; reporting best_accuracy instead", headline)
        headline = "best_accuracy"
    if headline == "best_accuracy":
        default = results.get("best", {}).get("accuracy", float("nan"))
    else:
        default = results["ranking"][headline]
    results["headline"] = headline
    # Strict JSON has no NaN: an undefined headline is null, and default_missing says why.
    results["default"] = float(default) if math.isfinite(float(default)) else None
    if results["default"] is None:
        results["default_missing"] = _default_missing(headline, skip_search)
    atomic_write_json(out / "results.json", results)
    figures = []
    if recipe.output.plots:
        _logger.info("figures: drawing them beside %s", out / "results.json")
        from .plots import plot_results
        figures = plot_results(results, out)
    final = final_metrics(results)
    if tb_dir is not None:
        from .tensorboard_log import log_figures_and_final
        log_figures_and_final(tb_dir, figures, final, step=recipe.training.epochs)
    if reporter is not None:
        reporter.final(final)
    return results


def _baselines(run: Run, truth: Any, predictions: list) -> dict:
    """The trivial rankers of the table (params, FLOPs, zero-cost proxies) and the supernet's score beyond size."""
    from .ranking.baselines import ranking_baselines, table_baseline_scores
    from .ranking.zero_cost import PROXIES
    from .training.build import complexity_model_for
    try:
        complexity = complexity_model_for(run.pristine_space)
    except Exception:  # a space the complexity model cannot count: FLOPs are then reported as missing
        complexity = None
    space, kwargs = ((truth.space, truth.space_kwargs) if truth.space == run.recipe.space.name and truth.space_kwargs
                     else (run.recipe.space.name, space_kwargs(run.recipe, run.splits)))
    scores, missing = table_baseline_scores(truth.archs(), space, kwargs, run.splits.train, complexity=complexity,
                                            params=truth.params())
    return ranking_baselines(truth.accuracies(), params=scores.get("params"), flops=scores.get("flops"),
                             proxies={k: v for k, v in scores.items() if k in PROXIES}, predictions=predictions,
                             seed=run.recipe.seed, missing=missing)


def _default_missing(headline: str, skip_search: bool) -> str:
    """Why a run has no ``default`` value (results.json says it beside ``"default": null``)."""
    if headline == "best_accuracy" and skip_search:
        return ("no search ran (--skip-search) and there is no ground truth to rank against "
                "(ranking.ground_truth), so there is no headline value")
    if headline == "best_accuracy":
        return "the best searched subnet has no finite accuracy"
    return f"{headline} is undefined for these predictions (e.g. every predicted accuracy is equal)"


def _best_true_accuracy(recipe: Recipe, truth: Any, arch: dict) -> tuple[Optional[float], str]:
    """The ground-truth accuracy of the best searched architecture, or ``None`` and the reason it is missing."""
    if recipe.search.transfer_to is not None:
        return None, "searched on the transfer target; the ground truth is of the source data"
    if truth is None:
        return None, "no ground-truth table (ranking.ground_truth)"
    value = truth.accuracy(arch)
    if value is None:
        return None, (f"best_arch is not among the {len(truth)} architectures of the ground-truth table; "
                      "train it stand-alone to know it")
    return float(value), ""


def _epoch_line(row: dict, epochs: int, seconds: float) -> str:
    """One log line per epoch with what a user watches; every other value is in TensorBoard and results.json."""
    parts = [f"epoch {row['epoch']}/{epochs}", f"loss={row['loss']:.4f}", f"lr={row['lr']:.4g}"]
    if "probe_acc" in row:
        parts.append(f"probe_acc={row['probe_acc']:.2f}%")
    if "kendall_tau" in row:
        parts.append(f"tau={row['kendall_tau']:.3f}")
    if "probe_size" in row:
        parts.append(f"(probe of {row['probe_size']} archs)")
    parts.append(f"[{seconds:.1f} s]")
    return "  ".join(parts)


class EpochLog:
    """The per-epoch rows of a run, checkpointed with the supernet.

    A resumed run restores it, so results.json holds every epoch, not only those after the resume.
    """

    def __init__(self) -> None:
        self.history: list[dict] = []

    def state_dict(self) -> dict:
        """The rows (plain data)."""
        return {"history": [dict(r) for r in self.history]}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` in place (callers hold a reference to :attr:`history`)."""
        self.history[:] = [dict(r) for r in state["history"]]


def _diagnostics(run: Run, engine: Any) -> Any:
    from .search.evaluate import take_batches
    from .training.build import complexity_model_for
    from .training.diagnostics import TrainingDiagnostics
    rng = np.random.RandomState(run.recipe.seed + 3)
    archs = [{label: c[rng.randint(len(c))] for label, c in run.search_space.items()} for _ in range(8)]
    try:
        complexity = complexity_model_for(run.pristine_space).params
    except Exception:  # counting is optional for diagnostics
        complexity = None
    batch = take_batches(run.calib_loader(), 1)[0]
    return TrainingDiagnostics(engine, batch, archs, complexity)


def final_metrics(results: dict) -> dict:
    """The final dict reported to nnictl: ``default`` plus one short key per headline figure."""
    # NNI needs a number: an undefined default is reported as 0.0, with the reason beside it.
    out: dict = {"default": _finite(results["default"])}
    if results.get("default_missing"):
        out["default_missing"] = results["default_missing"]
    ranking = results.get("ranking", {})
    for key in ("kendall_tau", "spearman", "p_at_top5", "kendall_tau_stratified", "cb", "rho_cc"):
        if key in ranking:
            out[key] = _finite(ranking[key])
    for name, block in ranking.get("baselines", {}).items():
        if isinstance(block, dict) and block.get("kendall_tau") is not None:
            out[f"{name}_tau"] = _finite(block["kendall_tau"])
    if ranking.get("kendall_tau_partial_params") is not None:
        out["partial_tau_params"] = _finite(ranking["kendall_tau_partial_params"])
    best = results.get("best", {})
    if "accuracy" in best:
        out["best_acc"] = _finite(best["accuracy"])
    for key in ("params", "flops", "true_accuracy"):
        if key in best and best[key] is not None:
            out[f"best_{key}" if key != "true_accuracy" else "best_true_acc"] = _finite(best[key])
    if best.get("true_accuracy_missing"):
        out["best_true_acc_missing"] = best["true_accuracy_missing"]
    if "best_arch" in results:
        out["best_arch"] = _arch_string(results["best_arch"])
    return out


def _arch_string(arch: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in arch.items())


def _finite(value: Any) -> float:
    if value is None:
        return 0.0
    value = float(value)
    return value if math.isfinite(value) else 0.0
