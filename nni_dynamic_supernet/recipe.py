"""The Recipe: one validated, typed description of a supernet run.

Every stage (space, data, training, search, ranking, report) reads only the
:class:`Recipe`. A recipe is built from

1. the dataclass defaults below,
2. the named strategy preset (``strategy: spos_calr_ms`` fills the ``training``
   component fields; see :mod:`nni_dynamic_supernet.strategies`),
3. a YAML template,
4. overrides as dotted keys (``training.lr``, ``search.population``), which is also how
   the parameters sent by an NNI tuner and ``nds train --set key=value`` arrive.

Later sources win. Every invalid value raises :class:`~nni_dynamic_supernet.errors.ConfigError`
with one line naming the field, the value and what is allowed.

The sections' flat fields are the recipe's public surface (YAML keys, ``--set`` keys, NNI
parameters). The fields that choose a component (``training.path_sampler``, ``search.searcher``
...) accept the names registered for its kind, and each component owns its options: the
component's file declares which flat fields they are, in a small options dataclass that
validates them (:mod:`nni_dynamic_supernet.components`). A component registered by another
package may declare fields of its own; they are then valid keys of its section too.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Union, get_args, get_origin, get_type_hints

from .catalog import get_preset
from .components import REGISTRIES
from .errors import ConfigError
from .strict_yaml import dump_yaml, load_yaml_file, parse_yaml_value
from .sections import DataConfig, OutputConfig, RankingConfig, SearchConfig, SpaceConfig, TrainingConfig
from .strategies import COMPONENT_DEFAULTS
from .suggest import close_names, unknown_field_fix, unknown_key_fix

__all__ = [
    "SpaceConfig", "DataConfig", "TrainingConfig", "SearchConfig", "RankingConfig", "OutputConfig",
    "Recipe", "load_recipe", "parse_override", "check_label_map", "VALUE_ALIASES", "SMOKE_PROFILE",
    "smoke_overrides",
]


_SECTIONS = {
    "space": SpaceConfig, "data": DataConfig, "training": TrainingConfig,
    "search": SearchConfig, "ranking": RankingConfig, "output": OutputConfig,
}

#: Allowed values of the core fields. A component's own fields are checked by its options
#: (:mod:`nni_dynamic_supernet.components`), and the fields that name a component
#: (``training.path_sampler`` ...) allow exactly the names registered for its kind.
_CHOICES: dict[str, tuple] = {
    "training.optimizer": ("sgd", "adam", "adamw", "rmsprop"),
    "training.accelerator": ("auto", "cpu", "gpu", "cuda"),
    "training.precision": ("32", "bf16", "16"),
    "output.logger": ("tensorboard", "csv", "wandb", "mlflow", "none"),
    "search.leaf_selection": ("best_arch", "val_loss", "successive_halving"),
    "training.unused_grads": ("none", "zero"),
    "search.constraint_metric": ("params", "flops"),
    "search.bn_mode": ("recalibrate", "inherit"),
    "ranking.headline": ("kendall_tau", "spearman", "p_at_top5", "kendall_tau_stratified", "best_accuracy"),
}

_POSITIVE_INT = {
    "data.batch_size", "data.eval_batch_size", "training.epochs", "search.top_k", "ranking.n_bins",
    "training.checkpoint_every_n_epochs", "ranking.probe_every", "training.devices", "training.num_nodes",
    "training.task_batching", "search.leaf_probe_archs", "search.halving_epochs",
}
_NON_NEGATIVE = {
    "training.momentum", "training.weight_decay", "search.bn_batches", "data.num_workers", "ranking.probe_archs",
    "search.track_archs",
}
_POSITIVE = {"training.lr"}

#: Other names a field accepts, each mapped to the value the recipe stores: Lightning 2's precision
#: names (``Trainer(precision="bf16-mixed")``) mean the same modes as the recipe's short ones.
VALUE_ALIASES: dict[str, dict[str, str]] = {
    "training.precision": {"32-true": "32", "bf16-mixed": "bf16", "16-mixed": "16"},
}
#: Lightning precision names the engine cannot train with: its weights, optimizer states and updates are float32.
_UNSUPPORTED_PRECISION = ("64", "64-true", "bf16-true", "16-true", "transformer-engine", "transformer-engine-float16")

#: ``nds train --smoke``: a run that checks an install in seconds (2 epochs, no per-epoch probes, a
#: 10-evaluation search); every other field stays the chosen recipe's, and ``--set`` still wins.
SMOKE_PROFILE: dict[str, Any] = {"training.epochs": 2, "ranking.probe_archs": 0, "search.max_evaluations": 10}


def smoke_overrides(recipe: "Recipe") -> dict[str, Any]:
    """:data:`SMOKE_PROFILE` for ``recipe``, plus what its 2 epochs force on it.

    A GM-NAS recipe's explicit ``training.split_epochs`` (``[20, 40]``) lie beyond 2 epochs;
    they become ``null``, the splits evenly spaced over the smoke run. Nothing else changes.
    """
    out = dict(SMOKE_PROFILE)
    split = recipe.training.split_epochs
    if split and max(split) >= out["training.epochs"]:
        out["training.split_epochs"] = None
    return out


@dataclass
class Recipe:
    """A complete, validated supernet run: strategy, seed and one config per stage."""

    strategy: str = "spos"
    seed: int = 0
    space: SpaceConfig = field(default_factory=SpaceConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None) -> "Recipe":
        """Build a recipe from a nested mapping plus dotted-key overrides, then validate it.

        The strategy preset is applied between the defaults and the user's values, so
        explicit component fields in ``raw`` or ``overrides`` win over the preset.
        """
        raw = dict(raw or {})
        flat: dict[str, Any] = {}
        _flatten(raw, "", flat)
        for key, value in (overrides or {}).items():
            flat[str(key)] = value
        unknown = sorted(k for k in flat if k.split(".")[0] not in {*_SECTIONS, "strategy", "seed"})
        if unknown:
            # Echo the key as typed (`trainng.epochs=5`), not just its first part.
            name = unknown[0]
            raise ConfigError(name, flat[name], _unknown_key_fix(name))
        recipe = cls()
        strategy = flat.pop("strategy", recipe.strategy)
        if not isinstance(strategy, str):
            raise ConfigError("strategy", strategy, "must be a strategy name string")
        preset = get_preset(strategy)
        recipe.strategy = strategy
        for key, value in preset.settings.items():
            recipe._set(key, value, source="preset " + strategy)
        for key, value in flat.items():
            recipe._set(key, value)
        recipe.validate()
        return recipe

    def _set(self, dotted: str, value: Any, source: str = "") -> None:
        parts = dotted.split(".")
        if len(parts) == 1:
            if parts[0] != "seed":
                raise ConfigError(dotted, value, "unknown key")
            self.seed = _coerce("seed", value, int)
            return
        section_name, *rest = parts
        section = getattr(self, section_name, None)
        if section is None or section_name not in _SECTIONS:
            raise ConfigError(dotted, value, _unknown_key_fix(dotted))
        if section_name == "space" and rest and rest[0] == "kwargs" and len(rest) == 2:
            section.kwargs[rest[1]] = value
            return
        if len(rest) != 1:
            raise ConfigError(dotted, value, "nested keys are only allowed under space.kwargs")
        name = rest[0]
        if dotted == "training.precision" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # YAML reads `precision: 16` as a number
        if isinstance(value, str):
            value = VALUE_ALIASES.get(dotted, {}).get(value, value)
        hints = get_type_hints(type(section))
        if name not in hints:
            # A field a registered component declares beyond the section's own (a new technique's option).
            hint = _component_fields(section_name).get(name)
            if hint is None:
                raise ConfigError(dotted, value, _unknown_field_fix(section_name, name, source))
            setattr(section, name, _coerce(dotted, value, hint))
            return
        setattr(section, name, _coerce(dotted, value, hints[name]))

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every field and every cross-field rule; raise ConfigError on the first problem.

        The fields that name a component must name a registered one; every registered
        component then validates its own options and its rules (:mod:`nni_dynamic_supernet.components`).
        """
        for registry in REGISTRIES:
            registry.get(self.get(registry.field))
        for dotted, allowed in _CHOICES.items():
            value = self.get(dotted)
            if value not in allowed:
                raise ConfigError(dotted, value, _choice_fix(dotted, value, allowed))
        for dotted in _POSITIVE_INT:
            value = self.get(dotted)
            if value <= 0:
                raise ConfigError(dotted, value, "must be a positive integer")
        for dotted in _NON_NEGATIVE:
            value = self.get(dotted)
            if value < 0:
                raise ConfigError(dotted, value, "must be >= 0")
        for dotted in _POSITIVE:
            value = self.get(dotted)
            if not value > 0:
                raise ConfigError(dotted, value, "must be > 0")
        if not 0 <= self.seed < 2 ** 31:
            raise ConfigError("seed", self.seed, "must be an integer in [0, 2**31) (numpy seeds are unsigned)")
        t = self.training
        if t.grad_clip is not None and t.grad_clip <= 0:
            raise ConfigError("training.grad_clip", t.grad_clip, "must be > 0, or null to disable clipping")
        if t.num_threads is not None and t.num_threads <= 0:
            raise ConfigError("training.num_threads", t.num_threads, "must be a positive integer or null")
        if t.max_steps_per_epoch is not None and t.max_steps_per_epoch <= 0:
            raise ConfigError("training.max_steps_per_epoch", t.max_steps_per_epoch, "must be a positive integer or null")
        world = t.devices * t.num_nodes
        if world > 1 and self.data.batch_size % world:
            raise ConfigError("data.batch_size", self.data.batch_size,
                              f"is the global batch and must divide evenly over training.devices x "
                              f"training.num_nodes = {world} processes")
        if t.precision == "16" and t.accelerator == "cpu":
            raise ConfigError("training.precision", t.precision,
                              "16 (float16 with a GradScaler) needs a CUDA GPU; use bf16 on the CPU")
        if self.data.on_device and (self.data.augment or world > 1):
            raise ConfigError("data.on_device", True, "keeps one fixed tensor copy of the training split: "
                              "not with data.augment or several processes; set it to false")
        if not 0 < self.data.val_fraction < 1:
            raise ConfigError("data.val_fraction", self.data.val_fraction, "must be in (0, 1)")
        s = self.search
        if s.max_evaluations is not None and s.max_evaluations <= 0:
            raise ConfigError("search.max_evaluations", s.max_evaluations, "must be a positive integer or null")
        if s.max_seconds is not None and s.max_seconds <= 0:
            raise ConfigError("search.max_seconds", s.max_seconds, "must be > 0 or null")
        if s.max_evaluations is None and s.max_seconds is None and s.searcher != "exhaustive":
            raise ConfigError("search.max_evaluations", None,
                              "set search.max_evaluations or search.max_seconds: every searcher needs a budget")
        if s.constraint_min is not None and s.constraint_max is not None and s.constraint_min > s.constraint_max:
            raise ConfigError("search.constraint_min", s.constraint_min,
                              f"must be <= search.constraint_max ({s.constraint_max})")
        if s.bn_mode == "recalibrate" and s.bn_batches <= 0:
            raise ConfigError("search.bn_batches", s.bn_batches, "must be >= 1 when search.bn_mode is recalibrate")
        if not isinstance(self.space.kwargs, dict):
            raise ConfigError("space.kwargs", self.space.kwargs, "must be a mapping of keyword arguments")
        if self.data.label_map is not None:
            check_label_map("data.label_map", self.data.label_map)
        for registry in REGISTRIES:
            section, chosen = getattr(self, registry.section), self.get(registry.field)
            for component in registry:
                options = component.options_from(section)
                if component.check is not None:
                    component.check(options, self, component.name == chosen)

    @property
    def gamma_min(self) -> float:
        """The effective lower bound of the CaLR decay exponent (default 1/gamma_max)."""
        return self.training.gamma_min if self.training.gamma_min is not None else 1.0 / self.training.gamma_max

    # ------------------------------------------------------------------ access
    def get(self, dotted: str) -> Any:
        """Read a field by its dotted key (``training.lr``)."""
        obj: Any = self
        for part in dotted.split("."):
            obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
        return obj

    def to_dict(self) -> dict:
        """A JSON-serialisable nested dict of the whole recipe (with any component field set beyond a section's own)."""
        out = dataclasses.asdict(self)
        for name in _SECTIONS:
            section = getattr(self, name)
            declared = {f.name for f in dataclasses.fields(section)}
            out[name].update({k: v for k, v in vars(section).items() if k not in declared})
        return json.loads(json.dumps(out))

    def to_yaml(self, header: tuple[str, ...] = ()) -> str:
        """The whole recipe as YAML (every field, in recipe order), which :func:`load_recipe` reads back equal.

        Parameters
        ----------
        header
            Comment lines written first.

        Returns
        -------
        str
        """
        return dump_yaml(self.to_dict(), header)

    def replace(self, **overrides: Any) -> "Recipe":
        """A new validated recipe with dotted-key overrides applied.

        Changing ``strategy`` re-expands the new preset: the old preset's component fields
        are dropped rather than carried over as if the user had set them.
        """
        raw = self.to_dict()
        if "strategy" in overrides and overrides["strategy"] != self.strategy:
            owned = set(COMPONENT_DEFAULTS) | set(get_preset(self.strategy).settings)
            for dotted in owned:
                section, _, name = dotted.partition(".")
                raw.get(section, {}).pop(name, None)
        return Recipe.from_dict(raw, overrides)


def check_label_map(name: str, mapping: Any) -> None:
    """Refuse a ``label_map`` that is not a list of non-negative integers onto at least two classes."""
    if not isinstance(mapping, list) or not mapping or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in mapping):
        raise ConfigError(name, mapping, "must be a list of non-negative integers, new label per old class "
                          "(digit parity: [0, 1, 0, 1, 0, 1, 0, 1, 0, 1])")
    if len(set(mapping)) < 2:
        raise ConfigError(name, mapping, "must map onto at least 2 classes")


def _field_names(section: str) -> list[str]:
    """The keys of ``section``: its own fields, then those its registered components declare."""
    return [*(f.name for f in dataclasses.fields(_SECTIONS[section])), *_component_fields(section)]


def _unknown_field_fix(section: str, name: str, source: str = "") -> str:
    """``unknown field; did you mean `training.epochs`?`` (or the allowed names when none is close)."""
    return unknown_field_fix(section, name, _field_names(section), source)


def _unknown_key_fix(dotted: str) -> str:
    """The fix for a key whose first part is no section (``trainng.epochs``) or no top-level key (``epochs``)."""
    return unknown_key_fix(dotted, {section: _field_names(section) for section in _SECTIONS}, ("strategy", "seed"))


def _choice_fix(dotted: str, value: Any, allowed: tuple) -> str:
    """``allowed values: ...`` for a field with fixed choices, with its other accepted names."""
    aliases = VALUE_ALIASES.get(dotted, {})
    fix = f"allowed values: {', '.join(allowed)}"
    if aliases:
        fix += f" (or Lightning's {', '.join(aliases)})"
    if dotted == "training.precision" and str(value) in _UNSUPPORTED_PRECISION:
        return fix + "; 64-bit and pure half-precision weights are not supported: weights and updates stay float32"
    close = close_names(value, [*allowed, *aliases], 1) if isinstance(value, str) else []
    return fix + (f"; did you mean `{close[0]}`?" if close else "")


def _component_fields(section: str) -> dict[str, Any]:
    """Type hints of the fields that registered components of ``section`` declare beyond the section's own."""
    declared = {f.name for f in dataclasses.fields(_SECTIONS[section])}
    out: dict[str, Any] = {}
    for registry in REGISTRIES:
        if registry.section != section:
            continue
        for component in registry:
            if component.options is None:
                continue
            hints = get_type_hints(component.options)
            for f in dataclasses.fields(component.options):
                if f.name not in declared:
                    out.setdefault(f.name, hints[f.name])
    return out


def _flatten(obj: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and key in _SECTIONS and not prefix:
            for sub_key, sub_value in value.items():
                if key == "space" and sub_key == "kwargs":
                    if not isinstance(sub_value, Mapping):
                        raise ConfigError("space.kwargs", sub_value, "must be a mapping of keyword arguments")
                    for kk, vv in sub_value.items():
                        out[f"space.kwargs.{kk}"] = vv
                else:
                    out[f"{dotted}.{sub_key}"] = sub_value
        elif key in _SECTIONS and not prefix and value is None:
            continue  # an empty YAML section (every key commented out) keeps the defaults
        elif key in _SECTIONS and not prefix:
            raise ConfigError(key, value, "must be a mapping of fields")
        else:
            out[dotted] = value


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Convert YAML / CLI / tuner values to the annotated type, or raise ConfigError."""
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is Union:
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, value, inner[0])
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(name, value, "must be true or false")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(name, value, "must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(name, value, "must be an integer")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(name, value, "must be a number")
        number = None
        if isinstance(value, (int, float)):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None and math.isfinite(number):  # NaN and inf would pass every range check below
            return number
        raise ConfigError(name, value, "must be a finite number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(name, value, "must be a string")
    if hint is dict or origin is dict:
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, str):
            parsed = parse_yaml_value(value, name)
            if isinstance(parsed, dict):
                return parsed
        raise ConfigError(name, value, "must be a mapping")
    if hint is list or origin is list:
        if isinstance(value, (list, tuple)):
            items = list(value)
        elif isinstance(value, str):
            items = [v.strip() for v in value.split(",") if v.strip()]
        else:
            raise ConfigError(name, value, "must be a list")
        if args == (int,):
            try:
                return [_coerce(name, v, int) for v in items]
            except ConfigError:
                raise ConfigError(name, value, "must be a list of integers, for example [20, 40]") from None
        return items
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``key=value`` command-line override; the value is read as YAML (``1e-3``, ``true``, ``[a, b]``)."""
    if "=" not in text:
        raise ConfigError("--set", text, "expected key=value, for example --set training.lr=0.1")
    key, raw = text.split("=", 1)
    return key.strip(), parse_yaml_value(raw, key.strip())


#: The embedded benchmark recipe, used when no template is given (``nds train --out DIR``).
EMBEDDED_RECIPE = Path(__file__).resolve().parent / "_resources" / "embedded.yaml"


def load_recipe(path: Union[str, Path, None] = None, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """Load a YAML recipe template, apply dotted-key overrides and validate.

    Without ``path`` the packaged embedded recipe is used, so a fresh install trains on
    the offline benchmark and reports a Kendall tau with no configuration at all.
    """
    raw: dict = {}
    if path is None:
        path = EMBEDDED_RECIPE
    if path is not None:
        p = Path(path)
        if p.is_dir():
            raise ConfigError("--config", str(path), "is a directory; pass a YAML recipe such as "
                              "config_templates/embedded.yaml")
        if not p.is_file():
            raise ConfigError("--config", str(path), "file not found; pass the path of a YAML recipe such as "
                              "config_templates/embedded.yaml")
        loaded = load_yaml_file(p, "--config")  # duplicate keys, alias bombs and huge files are refused
        if loaded is None:
            # An empty file is more likely a mistake than a wish for every default: say so instead of guessing.
            raise ConfigError("--config", str(path), "is empty; write at least `strategy: spos`, or leave out "
                              "--config for the embedded benchmark recipe")
        if not isinstance(loaded, dict):
            raise ConfigError("--config", str(path), "the YAML file must hold a mapping of recipe sections")
        raw = loaded
    return Recipe.from_dict(raw, overrides)
