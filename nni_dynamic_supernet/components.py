"""One registry per component kind: every training and search component registers itself by name.

A component's file is the whole of it: the class, its small typed options dataclass (validated
where it is defined) and its builder, registered with a decorator, as timm's ``@register_model``
and MMRazor's registries do::

    @dataclass(frozen=True)
    class ToyOptions:
        toy_period: int = 2                     # a flat recipe field: training.toy_period

        def __post_init__(self) -> None:
            if self.toy_period < 1:
                raise ConfigError("training.toy_period", self.toy_period, "must be >= 1")

    @PATH_SAMPLERS.register("toy", options=ToyOptions)
    def build_toy(options: ToyOptions, context: EngineContext) -> PathSampler:
        return ToyPathSampler(options.toy_period, seed=context.seed)

From then on ``training.path_sampler: toy`` is a valid recipe value, ``training.toy_period`` a
valid recipe key (``--set``, YAML, nnictl parameters), and the engine builds it; the recipe's
allowed values and the CLI's choices are read from the registries.

**Options are flat recipe fields.** The recipe's sections keep flat fields as their public
surface (``training.gamma_max``, ``search.shift_lr``). A component's options dataclass names the
fields it owns: its field names are field names of its section (``training`` or ``search``).
Fields the section declares take their defaults and types from the section; a field the section
does not declare (a new component's own) takes its type and default from the options dataclass.
Every registered component's options are built from the recipe and validated (``__post_init__``)
whenever a recipe is, whether the component is chosen or not, so a bad value is refused at once;
rules that apply only to a chosen component, or that read other fields, go in the component's
``check(options, recipe, selected)``.

The built-in components live in the modules named by each registry's ``locations``; they are
imported the first time a registry is read, so this module (and the recipe that reads it) needs
nothing of torch.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence, TypeVar

from .errors import ConfigError

__all__ = ["Component", "Registry", "PATH_SAMPLERS", "DATA_SAMPLERS", "LR_POLICIES", "OPTIMIZER_STATES",
           "UPDATE_RULES", "PARTITIONERS", "SEARCHERS", "REGISTRIES", "options_of"]

F = TypeVar("F", bound=Callable[..., Any])


def options_of(options_class: Optional[type], section: Any) -> Any:
    """An instance of ``options_class`` built from the fields of a recipe section it names (validated).

    Parameters
    ----------
    options_class
        A dataclass whose field names are field names of ``section``, or ``None``.
    section
        The recipe section (``recipe.training`` or ``recipe.search``); a field it lacks takes the
        dataclass's default.

    Returns
    -------
    object or None
        The options (its ``__post_init__`` has validated them), or ``None`` without a class.
    """
    if options_class is None:
        return None
    values = {}
    for f in dataclasses.fields(options_class):
        if hasattr(section, f.name):
            values[f.name] = getattr(section, f.name)
    return options_class(**values)


@dataclass(frozen=True)
class Component:
    """One registered component: its name, its options, how it is built and checked.

    Attributes
    ----------
    kind
        The registry's kind (``path sampler``).
    name
        The value of the recipe field that chooses it (``uniform``).
    build
        ``build(options, context) -> component``; the context is the registry's (see its ``context``).
    options
        The options dataclass (fields named after flat recipe fields of the registry's section), or ``None``.
    check
        ``check(options, recipe, selected)``: cross-field rules, raising a one-line ConfigError.
        ``selected`` tells whether the recipe chose this component.
    hooks
        Extra named callables a component offers its caller (``prepare`` for searchers that
        set up their own evaluator, ``check_space`` for rules that need the built space).
    summary
        One line saying what the component is (the builder's docstring's first line).
    """

    kind: str
    name: str
    build: Callable[..., Any]
    options: Optional[type] = None
    check: Optional[Callable[[Any, Any, bool], None]] = None
    hooks: dict = field(default_factory=dict)
    summary: str = ""

    def options_from(self, section: Any) -> Any:
        """This component's options, read from a recipe section (see :func:`options_of`)."""
        return options_of(self.options, section)


class Registry:
    """The registered components of one kind, in registration order.

    Parameters
    ----------
    kind
        What the components are (``path sampler``), for messages.
    field
        The dotted recipe field that names the chosen component (``training.path_sampler``).
    locations
        Modules that register the built-in components, imported on the first read.
    context
        What ``build`` receives besides the options (documentation only).
    """

    def __init__(self, kind: str, field: str, locations: Sequence[str], context: str = "") -> None:
        self.kind = kind
        self.field = field
        self.section = field.split(".")[0]
        self.context = context
        self._locations = tuple(locations)
        self._entries: dict[str, Component] = {}
        self._loaded = False

    def register(self, name: str, *, options: Optional[type] = None,
                 check: Optional[Callable[[Any, Any, bool], None]] = None, **hooks: Callable[..., Any]
                 ) -> Callable[[F], F]:
        """Decorator: register the decorated builder as component ``name``.

        Parameters
        ----------
        name
            The recipe value that chooses the component.
        options
            Its options dataclass (fields named after flat recipe fields of this registry's section).
        check
            ``check(options, recipe, selected)`` for cross-field rules.
        **hooks
            Extra callables the component's caller may look up (:attr:`Component.hooks`).

        Returns
        -------
        Callable
            The decorator; it returns the builder unchanged.

        Raises
        ------
        ValueError
            If ``name`` is taken by another builder of this kind.
        """
        if options is not None and not dataclasses.is_dataclass(options):
            raise TypeError(f"options of {self.kind} {name!r} must be a dataclass, got {options!r}")

        def decorate(build: F) -> F:
            known = self._entries.get(name)
            if known is not None and known.build is not build:
                raise ValueError(f"{self.kind} {name!r} is already registered by {known.build.__module__}")
            doc = (build.__doc__ or "").strip().splitlines()
            self._entries[name] = Component(self.kind, name, build, options, check, dict(hooks),
                                            doc[0] if doc else "")
            return build

        return decorate

    def unregister(self, name: str) -> None:
        """Remove component ``name`` (a test that registered its own cleans up with this)."""
        self._entries.pop(name, None)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._locations:
                importlib.import_module(module)

    def _ordered(self) -> list[Component]:
        """Built-ins in the order of their modules in ``locations`` (whatever imported them first), then the rest.

        Within one module, components keep their registration order.
        """
        self._load()
        rank = {module: i for i, module in enumerate(self._locations)}
        entries = list(self._entries.values())
        return sorted(entries, key=lambda c: (rank.get(c.build.__module__, len(rank)), entries.index(c)))

    def names(self) -> tuple[str, ...]:
        """The registered names: the built-ins in a fixed order, then the others in registration order."""
        return tuple(c.name for c in self._ordered())

    def __iter__(self) -> Iterator[Component]:
        return iter(self._ordered())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def get(self, name: Any) -> Component:
        """The component ``name``; an unknown name is a one-line ConfigError listing the allowed values."""
        self._load()
        entry = self._entries.get(name) if isinstance(name, str) else None
        if entry is None:
            raise ConfigError(self.field, name, f"allowed values: {', '.join(self.names())}")
        return entry

    def build(self, name: str, section: Any, context: Any) -> Any:
        """Build component ``name`` with its options read from ``section`` and the given ``context``."""
        entry = self.get(name)
        return entry.build(entry.options_from(section), context)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, field={self.field!r}, names={list(self.names())})"


_TRAINING = "nni_dynamic_supernet.training"

#: Which subnets a training step trains (``training.path_sampler``).
PATH_SAMPLERS = Registry("path sampler", "training.path_sampler",
                         [f"{_TRAINING}.paths.samplers", f"{_TRAINING}.paths.importance"],
                         context=":class:`~nni_dynamic_supernet.training.build.EngineContext`")
#: Which examples make up an epoch (``training.data_sampler``).
DATA_SAMPLERS = Registry("data sampler", "training.data_sampler", ["nni_dynamic_supernet.data.samplers"],
                         context=":class:`~nni_dynamic_supernet.data.samplers.DataSamplerContext`")
#: What LR a subnet gets at step t (``training.lr_policy``).
LR_POLICIES = Registry("LR policy", "training.lr_policy", [f"{_TRAINING}.lr.static", f"{_TRAINING}.lr.calr"],
                       context=":class:`~nni_dynamic_supernet.training.build.EngineContext`")
#: Which momentum an update uses (``training.optimizer_state``).
OPTIMIZER_STATES = Registry("optimizer state", "training.optimizer_state", [f"{_TRAINING}.optimizer_state.momentum"],
                            context=":class:`~nni_dynamic_supernet.training.build.EngineContext`")
#: How the losses of a step's paths become a weight update (``training.update_rule``).
UPDATE_RULES = Registry("update rule", "training.update_rule",
                        [f"{_TRAINING}.updates.gradient_step", f"{_TRAINING}.updates.reptile"],
                        context=":class:`~nni_dynamic_supernet.training.build.EngineContext`")
#: One supernet or several (``training.partition``).
PARTITIONERS = Registry("partitioner", "training.partition", [f"{_TRAINING}.partition.partitioners"],
                        context=":class:`~nni_dynamic_supernet.training.partition.partitioners.PartitionContext`")
#: Which subnets are evaluated after training (``search.searcher``).
SEARCHERS = Registry("searcher", "search.searcher",
                     ["nni_dynamic_supernet.search.searchers", "nni_dynamic_supernet.search.shifting",
                      "nni_dynamic_supernet.search.nsga2"],
                     context=":class:`~nni_dynamic_supernet.search.run.SearchSession`")

#: Every registry, in the order a recipe is validated.
REGISTRIES: tuple[Registry, ...] = (PATH_SAMPLERS, LR_POLICIES, OPTIMIZER_STATES, UPDATE_RULES, PARTITIONERS,
                                    DATA_SAMPLERS, SEARCHERS)
