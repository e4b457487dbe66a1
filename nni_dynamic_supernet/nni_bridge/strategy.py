"""The NNI ``Strategy`` users pass to ``NasExperiment``: train a supernet with a recipe, then search it."""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from ..data import IndexedDataset
from ..errors import ConfigError
from ..quiet_logs import install_lightning_filters, install_nni_filters, quiet_nni_import
from ..search.run import SearchContext, search_supernet
from ..spaces.introspection import arch_for_nni, check_supported
from ..supernet.modules import hooks_for, layer_choice_hooks, unsupported_module_error
from ..data.samplers import build_data_sampler
from ..training.build import check_techniques
from .lightning_module import SupernetModule
from .plumbing import as_loader

with quiet_nni_import():
    from nni.nas.nn.pytorch import ModelSpace
    from nni.nas.oneshot.pytorch.strategy import RandomOneShot

if TYPE_CHECKING:  # pragma: no cover
    from ..recipe import Recipe

__all__ = ["DynamicSupernetStrategy", "example_shape"]


class DynamicSupernetStrategy(RandomOneShot):
    """NNI strategy that trains a supernet with a recipe's components, then searches it.

    Use it like any NNI one-shot strategy::

        exp = NasExperiment(space, Classification(...), create_strategy("spos_calr_ms"))
        exp.run()
        exp.export_top_models(top_k=3, formatter="dict")

    The evaluator provides the data, the loss, the optimizer class, learning rate and
    weight decay, and the trainer (epochs, devices). The recipe provides the training
    components and the search. After training, the searcher of ``recipe.search`` runs on
    the evaluator's validation data (BN recalibrated on its training data), so
    :meth:`list_models` returns the best *searched* architectures.

    Parameters
    ----------
    recipe
        The validated recipe (:func:`~nni_dynamic_supernet.registry.create_strategy` builds one).
    **kwargs
        Passed to NNI's ``RandomOneShot``.
    """

    def __init__(self, recipe: "Recipe", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # NasExperiment's "training_service will be ignored" and Lightning's run-time warnings
        # about a validation_step without a val loop, which this strategy's trainer runs by design.
        install_nni_filters()
        install_lightning_filters()
        self.recipe = recipe
        self.pristine_space: Optional[ModelSpace] = None
        self.search_history: list[dict] = []
        self._nds_module: Optional[SupernetModule] = None

    def default_mutation_hooks(self) -> list:
        """The mutation hooks of the space being mutated (LayerChoice-only spaces keep the fast set)."""
        return getattr(self, "_hooks", None) or layer_choice_hooks()

    def mutate_model(self, model: ModelSpace) -> ModelSpace:
        """Refuse unsupported mutables by name, keep a pristine copy, then mutate in place.

        A recipe technique that cannot apply to the space (GM splitting a label without
        weights of its own ...) is refused here, before any training.
        """
        check_supported(model)
        self.pristine_space = copy.deepcopy(model)
        self._hooks = hooks_for(model)
        try:
            supernet = super().mutate_model(model)
        except (TypeError, ValueError) as exc:
            raise unsupported_module_error(exc, model) from None
        check_techniques(self.recipe.training, supernet)
        return supernet

    def mutate_evaluator(self, evaluator: Any) -> Any:
        """Wrap the evaluator's module (NNI), after reading one example's shape from its training data.

        The input shape is never guessed: parameter/FLOPs counting traces the space with a
        dummy input of exactly the shape the evaluator's train dataloader yields.
        """
        if self.pristine_space is not None:
            shape = example_shape(_evaluator_train_loader(evaluator))
            if shape is not None:
                self.pristine_space.nds_input_shape = shape
        return super().mutate_evaluator(evaluator)

    def configure_oneshot_module(self, training_module: pl.LightningModule) -> SupernetModule:
        """Our :class:`SupernetModule` around the evaluator's module."""
        self._nds_module = SupernetModule(training_module, self.recipe, pristine_space=self.pristine_space)
        return self._nds_module

    def train_dataloader(self, train_dataloader_fn: Callable[[], Any], val_dataloader_fn: Callable[[], Any]) -> Any:
        """The evaluator's train loader; rebuilt around our data sampler when DA is on.

        With ``training.data_sampler: uniform`` the user's loader is used unchanged (its own
        shuffling). With ``importance`` the loader is rebuilt with the same batch size,
        workers, collate function and ``drop_last``, over an index-returning view of its
        dataset (:class:`~nni_dynamic_supernet.data.IndexedDataset`) and with
        :class:`~nni_dynamic_supernet.data.samplers.ImportanceDataSampler`; the same sampler
        is handed to the engine. A loader that cannot be rebuilt that way (an iterable
        dataset, a custom batch sampler, several loaders) is refused with a ConfigError.
        """
        loader = train_dataloader_fn()
        if self.recipe.training.data_sampler == "uniform":
            return loader
        module = self._nds_module
        if module is None:
            raise RuntimeError("configure_oneshot_module must run before train_dataloader")
        rebuilt, sampler = _with_data_sampler(self.recipe, loader)
        module.data_sampler = sampler
        return rebuilt

    def _run(self) -> None:
        """Train (NNI's one-shot run), then search the trained supernet on the evaluator's data."""
        super()._run()
        module = self.oneshot_module
        evaluator = self._mutated_model_space.evaluator  # type: ignore[union-attr]
        train_loader = as_loader(evaluator.train_dataloaders)
        device = next(module.parameters()).device
        # Shifted evolution draws its own batches from the training set (``(x, y, ...)`` items).
        context = SearchContext(self.recipe.search, module.supernets(), module.partition, train_loader,
                                as_loader(evaluator.val_dataloaders), seed=self.recipe.seed,
                                pristine_space=self.pristine_space, device=device,
                                train_set=getattr(train_loader, "dataset", None), training=self.recipe.training)
        self.search_history = search_supernet(context).report["top"]

    def list_models(self, sort: bool = True, limit: Optional[int] = 1) -> Iterator[Any]:
        """The best searched architectures, best first, as frozen NNI models."""
        for entry in self.search_history[: (limit or len(self.search_history))]:
            yield self.model_space.freeze(arch_for_nni(entry["arch"]))


def _with_data_sampler(recipe: "Recipe", loader: Any) -> tuple[Any, Any]:
    """``loader`` rebuilt to draw from the recipe's data sampler and to yield ``(x, y, index)``."""
    field, value = "training.data_sampler", recipe.training.data_sampler
    if not isinstance(loader, DataLoader):
        raise ConfigError(field, value, f"needs the evaluator's train_dataloaders to be one torch DataLoader, "
                                        f"got {type(loader).__name__}")
    if isinstance(loader.dataset, IterableDataset) or loader.batch_size is None:
        raise ConfigError(field, value, "needs a map-style dataset and a DataLoader with batch_size "
                                        "(no iterable dataset, no custom batch_sampler)")
    dataset = loader.dataset if isinstance(loader.dataset, IndexedDataset) else IndexedDataset(loader.dataset)
    sampler = build_data_sampler(recipe.training, len(dataset), seed=recipe.seed)
    rebuilt = DataLoader(dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                         collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                         timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                         persistent_workers=loader.persistent_workers and loader.num_workers > 0)
    return rebuilt, sampler


def _evaluator_train_loader(evaluator: Any) -> Any:
    """The training loader of an NNI Lightning evaluator (``train_dataloaders`` or its datamodule's)."""
    loaders = getattr(evaluator, "train_dataloaders", None)
    if loaders is None and getattr(evaluator, "datamodule", None) is not None:
        loaders = evaluator.datamodule.train_dataloader()
    return as_loader(loaders)


def example_shape(loader: Any) -> Optional[tuple[int, ...]]:
    """The shape of one input example (no batch dimension) that ``loader`` yields, or None if unknown.

    Read from ``loader.dataset[0]`` when the dataset is map-style, which draws no random number
    (a shuffled loader's first batch would advance the global RNG and change the run); an
    iterable dataset gives its first batch.

    Parameters
    ----------
    loader
        A data loader (or any iterable of ``(x, y, ...)`` batches), or ``None``.

    Returns
    -------
    tuple of int or None
    """
    if loader is None:
        return None
    dataset = getattr(loader, "dataset", None)
    item: Any = None
    try:
        if dataset is not None and hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__") and len(dataset):
            item, batched = dataset[0], False
        else:
            item, batched = next(iter(loader)), True
    except Exception:  # noqa: BLE001 - an unreadable loader leaves the shape unknown; callers say what needs it
        return None
    x = item[0] if isinstance(item, (tuple, list)) else item
    if isinstance(x, dict):
        return None
    x = torch.as_tensor(x)
    shape = tuple(int(d) for d in x.shape)
    return shape[1:] if batched else shape
