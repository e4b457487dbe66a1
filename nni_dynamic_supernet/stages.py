"""The stages of one recipe, usable one by one: prepare, train, search, predict, save and load.

:class:`Run` holds everything built for a recipe (data, the supernet(s), the Lightning module).
:func:`~nni_dynamic_supernet.pipeline.run_recipe` chains the stages; ``nds search`` and
``nds evaluate`` reuse a checkpoint through :func:`load_supernet`, :func:`search_run` and
:func:`predict`. Each stage reads the :class:`Recipe` and the previous stage's output, never
another stage's internals.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pytorch_lightning as pl
import torch

from .arch import arch_key, random_arch
from .atomic_io import atomic_torch_save
from .checkpoint_check import check_models_fit, check_payload
from .data import build_splits, make_loader, relabel_splits
from .data.device import DeviceLoader
from .data.samplers import build_data_sampler
from .errors import ConfigError, TrainingDiverged
from .nni_bridge import (DynamicSupernetStrategy, SupernetModule, fit_supernet, make_training_module,
                         revert_sync_batchnorm)
from .progress import ProgressLog, progress_bar
from .ranking.ground_truth import GroundTruth
from .ranking.metrics import ranking_report
from .recipe import Recipe
from .catalog import create_space
from .search.evaluate import SubnetEvaluator, build_evaluator
from .search.run import SearchContext, search_supernet
from .spaces.introspection import normalize_arch, search_space_of_model
from .training.transfer import freeze_features, replace_classifier

__all__ = ["Run", "CHECKPOINT_FORMAT", "space_kwargs", "build_data", "prepare", "training_device", "save_supernet",
           "load_supernet", "transfer_target", "tracked_archs", "search_run", "predict", "rank_predictions", "train"]

CHECKPOINT_FORMAT = "nds-supernet/1"


@dataclass
class Run:
    """Everything built for one recipe: data, the supernet(s) and the Lightning module.

    Attributes
    ----------
    recipe
        The validated recipe.
    splits
        The train / val / test splits.
    space
        The space the supernet was made from (mutated in place into leaf 0's supernet).
    pristine_space
        An un-mutated copy of the space (counting, export, stand-alone training).
    module
        The Lightning module that trains the supernet(s).
    search_space
        ``{label: [choices]}`` of the space.
    device
        The device training, search and evaluation run on.
    model_copies
        Supernet copies that replace the module's (a transferred run's new-head copies).
    """

    recipe: Recipe
    splits: Any
    space: Any
    pristine_space: Any
    module: Any
    search_space: dict
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    model_copies: Optional[list] = None

    @property
    def models(self) -> list:
        """The supernet of every partition leaf."""
        return self.model_copies if self.model_copies is not None else self.module.supernets()

    @property
    def partition(self) -> Any:
        """The partition (one leaf unless few-shot / GM)."""
        return self.module.partition

    @property
    def data_sampler(self) -> Any:
        """The training data sampler (uniform or importance) that the engine also observes."""
        return self.module.data_sampler

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

    def evaluator(self) -> SubnetEvaluator:
        """A subnet evaluator over this run's supernets, with fixed calibration and validation batches."""
        return build_evaluator(self.recipe.search, self.models, self.partition, self.calib_loader(),
                               self.val_loader(), self.device)


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
    d = recipe.data
    splits = build_splits(d.name, root=d.root, download=d.download, val_fraction=d.val_fraction,
                          split_seed=0, train_subset=d.train_subset, augment=d.augment)
    if d.label_map is not None:
        splits = relabel_splits(splits, d.label_map)
    return splits


def prepare(recipe: Recipe) -> Run:
    """Build data, space, supernet and the Lightning module for ``recipe`` (no training yet).

    Parameters
    ----------
    recipe
        The validated recipe.

    Returns
    -------
    Run
    """
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
    # The train loader draws from this sampler and the engine feeds it per-example scores (DA).
    data_sampler = build_data_sampler(recipe.training, len(splits.train), seed=recipe.seed)
    module = SupernetModule(training_module, recipe, pristine_space=strategy.pristine_space, data_sampler=data_sampler)
    module.ensure_partition()
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
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--checkpoint", str(path), "file not found; pass the supernet.pt written by nds train")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt or not a torch file
        raise ConfigError("--checkpoint", str(path), f"cannot be read ({type(exc).__name__}); it is corrupt or "
                          "truncated, re-run nds train") from None
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


def tracked_archs(recipe: Recipe, truth: Optional[GroundTruth], search_space: dict) -> list[dict]:
    """The architectures a search re-scores after every generation (``search.track_archs`` of them).

    Half the best architectures by ground truth and half random ones (random only without truth).
    """
    n = recipe.search.track_archs
    if n == 0:
        return []
    rng = np.random.RandomState(recipe.seed + 5)
    if truth is None:
        return [{"arch": random_arch(search_space, rng), "group": "random"} for _ in range(n)]
    archs, accs = truth.archs(), np.asarray(truth.accuracies())
    order = np.argsort(-accs, kind="stable")
    n_top = max(n // 2, 1)
    top = [int(i) for i in order[:n_top]]
    rest = [int(i) for i in rng.permutation(order[n_top:])[: n - n_top]]
    return ([{"arch": archs[i], "group": "top", "true_accuracy": float(accs[i])} for i in top]
            + [{"arch": archs[i], "group": "random", "true_accuracy": float(accs[i])} for i in rest])


def search_run(run: Run, out_dir: Optional[Path] = None, evaluator: Optional[SubnetEvaluator] = None,
               truth: Optional[GroundTruth] = None, progress: Optional[bool] = None) -> dict:
    """Run the recipe's searcher on ``run``'s supernet, transferring it first when ``search.transfer_to`` is set.

    A shifted search writes the moved supernet to ``out_dir/supernet_shifted.pt``
    (``search.save_shifted``) so ``nds evaluate`` can score subnets on it.

    Returns
    -------
    dict
        The search report of :func:`~.search.run.search_supernet` (plus ``shifted_checkpoint``
        and ``transfer`` when they apply).
    """
    s = run.recipe.search
    target = run
    if s.transfer_to is not None:
        target = transfer_target(run)
        evaluator, truth = None, None  # other data, other classes: no ground truth, no reusable batches
    context = SearchContext(run.recipe.search, target.models, run.partition, target.calib_loader(),
                            target.val_loader(), seed=run.recipe.seed, pristine_space=target.pristine_space,
                            device=target.device, training=run.recipe.training, evaluator=evaluator,
                            train_set=target.splits.train, tracked=tracked_archs(run.recipe, truth, run.search_space),
                            progress=progress)
    result = search_supernet(context)
    found = result.report
    if s.transfer_to is not None:
        found["transfer"] = {"num_classes": target.splits.num_classes, "classes": list(target.splits.classes),
                             "data": target.recipe.to_dict()["data"], "freeze_features": s.freeze_features}
    if result.moved_models and out_dir is not None and s.save_shifted:
        saved = Run(target.recipe, target.splits, run.space, target.pristine_space, run.module, run.search_space)
        path = save_supernet(saved, Path(out_dir) / "supernet_shifted.pt", models=result.moved_models)
        found["shifted_checkpoint"] = str(path.resolve())
    return found


# ---------------------------------------------------------------------------------------------- predict, train
def predict(run: Run, archs: Sequence[dict], evaluator: Optional[SubnetEvaluator] = None,
            progress: Optional[bool] = None, what: str = "evaluate") -> list[dict]:
    """Predicted accuracy of each architecture (val accuracy after the recipe's BN policy), in order.

    ``progress``: ``None`` shows a bar when interactive (never in an nnictl trial); ``True`` / ``False`` force it.
    Without a bar, a log line (``<what>: 80/160 archs [10.0 s]``) at least every
    :data:`~.progress.LOG_INTERVAL_S` seconds tells a trial's log how far it is.
    """
    # Input choices arrive from JSON as lists; the search space holds them as sorted tuples.
    archs = [normalize_arch(a, run.search_space) for a in archs]
    for arch in archs:
        missing = set(run.search_space) - set(arch)
        unknown = {k: v for k, v in arch.items() if k not in run.search_space or v not in run.search_space[k]}
        if unknown or missing:
            bad = next(iter(unknown.items())) if unknown else (sorted(missing)[0], None)
            raise ConfigError("arch", {bad[0]: bad[1]}, "unknown or missing label/choice; labels and choices: "
                              + "; ".join(f"{k}: {v}" for k, v in run.search_space.items()))
    evaluator = evaluator or run.evaluator()
    bar = progress_bar(archs, desc=what, unit="arch", enabled=progress)
    lines = ProgressLog(what, len(archs), enabled=bar.disable)
    out = []
    for arch in bar:
        out.append({"arch": dict(arch), "predicted_accuracy": float(evaluator.evaluate(arch)["accuracy"])})
        lines.update(1)
    lines.close()
    return out



def rank_predictions(run: Run, truth: GroundTruth, preds: list[dict]) -> dict:
    """The ranking report of ``preds`` (:func:`predict`'s rows) against ``truth``: the final ranking's measures.

    Parameters
    ----------
    run
        The run (its ``ranking.n_bins`` and number of classes, the chance accuracy).
    truth
        The ground-truth table.
    preds
        :func:`predict`'s rows for architectures of the table.

    Returns
    -------
    dict
        :func:`~nni_dynamic_supernet.ranking.metrics.ranking_report` of the predictions.
    """
    true = [truth.accuracy(p["arch"]) for p in preds]
    params = truth.params()
    complexity = None
    if params is not None:
        by_key = {arch_key(a): c for a, c in zip(truth.archs(), params)}
        complexity = [by_key[arch_key(p["arch"])] for p in preds]
    return ranking_report([p["predicted_accuracy"] for p in preds], true, complexity=complexity,
                          chance=100.0 / run.splits.num_classes, n_bins=run.recipe.ranking.n_bins)

def train(run: Run, out_dir: Optional[Path], resume: Optional[str] = None, progress: bool = False,
          loggers: Sequence[Any] = (), callbacks: Sequence[pl.Callback] = ()) -> dict:
    """Train the supernet(s) of ``run``; return timing and step counts.

    Parameters
    ----------
    run
        The prepared run.
    out_dir
        Where ``lightning/last.ckpt`` goes (``None``: no checkpoint).
    resume
        A ``last.ckpt`` to resume from.
    progress
        Show Lightning's progress bar.
    loggers
        The run's Lightning loggers (:func:`~nni_dynamic_supernet.nni_bridge.loggers.make_loggers`), or none.
    callbacks
        Lightning callbacks of the per-epoch work (probe, epoch log, diagnostics).

    Returns
    -------
    dict
        ``seconds``, ``steps``, ``skipped_nonfinite_steps`` (and the scaler's skips, the world size).
    """
    t = run.recipe.training
    world = t.devices * t.num_nodes
    loader = run.loader("train", shuffle=True, drop_last=True, sampler=run.data_sampler,
                        batch_size=run.recipe.data.batch_size // world)
    if len(loader) == 0:
        raise ConfigError("data.batch_size", run.recipe.data.batch_size, "leaves no full training batch; lower it")
    if run.recipe.data.on_device:
        loader = DeviceLoader(loader, run.device)
    started = time.monotonic()
    try:
        accelerator = t.accelerator if t.accelerator != "auto" else ("cpu" if run.device.type == "cpu" else "auto")
        fit_supernet(run.module, loader, t.epochs, out_dir=out_dir, resume_from=resume, progress=progress,
                     loggers=loggers, limit_train_batches=t.max_steps_per_epoch,
                     accelerator=accelerator, devices=t.devices, num_nodes=t.num_nodes, callbacks=callbacks)
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
