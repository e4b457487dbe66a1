"""Pre-registered paired tests: the file that fixes a verdict's design before any of its runs.

A registration is a YAML file, ``benchmarks/verdicts/<name>.yaml``, committed before its
runs. It fixes the pair (technique and baseline), the budget of each side, the table and
measure, the fresh seeds, ``n``, the test level and the minimum detectable effect that ``n``
gives at the stated power for the standard deviation of the paired differences seen in an
earlier, exploratory pilot. ``nds bench verdict FILE`` runs it and writes
``<name>.result.json`` beside it.

Two kinds of test:

``recipes``
    Two training recipes on the same seeds; the measure is a ranking measure of each
    supernet against the table (``kendall_tau``, ...), as ``nds bench compare`` reports it.
``searchers``
    One supernet recipe per seed, searched by two searcher settings; the measure is
    ``best_standalone_accuracy``, the stand-alone accuracy (table protocol, mean over
    ``standalone_seeds``) of the architecture each search ranks first.

The family of tests whose p-values are adjusted together (Holm) is fixed in ``family.yaml``
in the same folder.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import math
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from ..errors import ConfigError
from .compare import METRIC_NAMES
from .paired_stats import min_detectable_effect

__all__ = ["Side", "Registration", "Family", "load_registration", "load_family", "result_path", "KINDS",
           "SEARCH_MEASURES", "REGISTRATION_FORMAT", "FAMILY_FORMAT"]

REGISTRATION_FORMAT = "nds-verdict/1"
FAMILY_FORMAT = "nds-verdict-family/1"
KINDS = ("recipes", "searchers")
#: Measures of a ``searchers`` test.
SEARCH_MEASURES = ("best_standalone_accuracy",)
_MDE_TOLERANCE = 0.0015


@dataclasses.dataclass(frozen=True)
class Side:
    """One arm of a test: a strategy (``recipes``) and the recipe overrides that arm adds.

    Attributes
    ----------
    recipe
        Strategy name; ``None`` on the arms of a ``searchers`` test (they share the supernet).
    overrides
        Dotted recipe keys of this arm only (its budget, its searcher).
    """

    recipe: Optional[str]
    overrides: dict


@dataclasses.dataclass(frozen=True)
class Registration:
    """A validated registration file (see the module docstring for the fields' meaning)."""

    path: Path
    name: str
    paper: str
    claim: str
    kind: str
    technique: Side
    baseline: Side
    supernet: Optional[Side]
    config: str
    table: str
    overrides: dict
    search: dict
    measure: str
    seeds: tuple[int, ...]
    n: int
    alpha: float
    power: float
    pilot_sd: float
    pilot_source: str
    mde: float
    standalone_seeds: tuple[int, ...]
    registered: str
    sha256: str

    @property
    def result_path(self) -> Path:
        """Where the runner writes this test's result."""
        return result_path(self.path)

    def config_path(self) -> Optional[Path]:
        """The base recipe file: ``None`` for the packaged embedded recipe, else relative to the registration."""
        if self.config == "embedded":
            return None
        p = Path(self.config)
        return p if p.is_absolute() else (self.path.parent / p)


@dataclasses.dataclass(frozen=True)
class Family:
    """The fixed family of registered tests whose p-values are adjusted together."""

    path: Path
    tests: tuple[str, ...]
    correction: str
    p_value: str
    alpha: float
    registered: str


def result_path(registration: Union[str, Path]) -> Path:
    """``<name>.result.json`` beside ``<name>.yaml``."""
    p = Path(registration)
    return p.with_name(p.name[: -len(p.suffix)] + ".result.json") if p.suffix else p.with_name(p.name + ".result.json")


def _read_yaml(path: Path, field: str) -> dict:
    if not path.is_file():
        raise ConfigError(field, str(path), "file not found; pass a registration such as "
                                            "benchmarks/verdicts/dynas_early.yaml")
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(field, str(path), f"not valid YAML ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(field, str(path), "must hold a mapping of registration fields")
    return data


def _require(data: dict, key: str, where: str, types: Union[type, tuple], what: str) -> Any:
    if key not in data:
        raise ConfigError(f"{where}: {key}", None, f"missing; give {what}")
    value = data[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ConfigError(f"{where}: {key}", value, f"must be {what}")
    if not isinstance(value, types):
        raise ConfigError(f"{where}: {key}", value, f"must be {what}")
    return value


def _side(data: dict, key: str, where: str, needs_recipe: bool) -> Side:
    raw = _require(data, key, where, dict, "a mapping with recipe and set")
    unknown = sorted(set(raw) - {"recipe", "set"})
    if unknown:
        raise ConfigError(f"{where}: {key}.{unknown[0]}", raw[unknown[0]], "allowed keys: recipe, set")
    recipe = raw.get("recipe")
    if needs_recipe:
        if not isinstance(recipe, str):
            raise ConfigError(f"{where}: {key}.recipe", recipe, "must name a registered strategy")
        from ..registry import get_preset
        try:
            get_preset(recipe)
        except ConfigError:
            raise ConfigError(f"{where}: {key}.recipe", recipe, "is not a registered strategy (nds list)") from None
    elif recipe is not None:
        raise ConfigError(f"{where}: {key}.recipe", recipe, "a searchers test trains one supernet recipe "
                                                            "(supernet.recipe); its arms set only search keys")
    overrides = raw.get("set") or {}
    if not isinstance(overrides, dict) or not all(isinstance(k, str) for k in overrides):
        raise ConfigError(f"{where}: {key}.set", overrides, "must map dotted recipe keys to values")
    return Side(recipe, dict(overrides))


def _int_list(data: dict, key: str, where: str) -> tuple[int, ...]:
    raw = _require(data, key, where, list, "a list of distinct non-negative integers")
    if not raw or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in raw) or len(set(raw)) != len(raw):
        raise ConfigError(f"{where}: {key}", raw, "must be a non-empty list of distinct non-negative integers")
    return tuple(int(s) for s in raw)


def _date(data: dict, where: str) -> str:
    raw = _require(data, "registered", where, (str, datetime.date), "the registration date, YYYY-MM-DD")
    text = raw.isoformat() if isinstance(raw, datetime.date) else raw
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{where}: registered", raw, "must be a date, YYYY-MM-DD") from None
    return text


_FIELDS = {"format", "name", "paper", "claim", "kind", "technique", "baseline", "supernet", "config", "table", "set",
           "search", "measure", "seeds", "n", "alpha", "power", "pilot_sd", "pilot_source", "mde", "standalone_seeds",
           "registered"}


def load_registration(path: Union[str, Path]) -> Registration:
    """Read and check a registration file.

    Parameters
    ----------
    path
        The YAML file.

    Returns
    -------
    Registration

    Raises
    ------
    ConfigError
        One line naming the file and field for every inconsistency: an unknown field or
        strategy, seeds whose count is not ``n``, a measure the kind cannot report, or an
        ``mde`` that does not follow from ``pilot_sd``, ``n``, ``alpha`` and ``power``.
    """
    p = Path(path)
    data = _read_yaml(p, "REGISTRATION")
    where = str(p)
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ConfigError(f"{where}: {unknown[0]}", data[unknown[0]], f"unknown field; allowed: {', '.join(sorted(_FIELDS))}")
    if data.get("format") != REGISTRATION_FORMAT:
        raise ConfigError(f"{where}: format", data.get("format"), f"must be {REGISTRATION_FORMAT}")
    name = _require(data, "name", where, str, "the test's name")
    if p.suffix in (".yaml", ".yml") and p.stem != name:
        raise ConfigError(f"{where}: name", name, f"must equal the file name without .yaml ({p.stem})")
    kind = _require(data, "kind", where, str, f"one of {', '.join(KINDS)}")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind", kind, f"allowed values: {', '.join(KINDS)}")
    recipes = kind == "recipes"
    technique = _side(data, "technique", where, needs_recipe=recipes)
    baseline = _side(data, "baseline", where, needs_recipe=recipes)
    supernet = None if recipes else _side(data, "supernet", where, needs_recipe=True)
    if recipes and "supernet" in data:
        raise ConfigError(f"{where}: supernet", data["supernet"], "only a searchers test trains a shared supernet")
    if recipes and (technique.recipe, technique.overrides) == (baseline.recipe, baseline.overrides):
        raise ConfigError(f"{where}: technique", technique.recipe, "is the same arm as the baseline")
    measure = _require(data, "measure", where, str, "the measure compared")
    allowed = tuple(METRIC_NAMES) if recipes else SEARCH_MEASURES
    if measure not in allowed:
        raise ConfigError(f"{where}: measure", measure, f"a {kind} test compares one of {', '.join(allowed)}")
    seeds = _int_list(data, "seeds", where)
    n = _require(data, "n", where, int, "the number of paired seeds")
    if n != len(seeds):
        raise ConfigError(f"{where}: n", n, f"must equal the number of seeds ({len(seeds)})")
    if n < 2:
        raise ConfigError(f"{where}: n", n, "a paired test needs at least 2 seeds")
    alpha = float(_require(data, "alpha", where, (int, float), "the two-sided test level, e.g. 0.05"))
    power = float(_require(data, "power", where, (int, float), "the power the mde is computed for, e.g. 0.8"))
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ConfigError(f"{where}: alpha", alpha, "alpha and power must lie in (0, 1)")
    pilot_sd = float(_require(data, "pilot_sd", where, (int, float), "the pilot's SD of the paired differences"))
    if not pilot_sd > 0 or not math.isfinite(pilot_sd):
        raise ConfigError(f"{where}: pilot_sd", pilot_sd, "must be a positive number")
    mde = float(_require(data, "mde", where, (int, float), "the minimum detectable effect"))
    expected = min_detectable_effect(pilot_sd, n, alpha, power)
    if abs(mde - expected) > _MDE_TOLERANCE * max(1.0, expected):
        raise ConfigError(f"{where}: mde", mde, f"does not follow from pilot_sd {pilot_sd}, n {n}, alpha {alpha} and "
                                                f"power {power}: it is {expected:.4f}")
    table = _require(data, "table", where, str, "a table name (v2_26) or a path")
    config = data.get("config", "embedded")
    if not isinstance(config, str):
        raise ConfigError(f"{where}: config", config, "must be 'embedded' or the path of a base recipe")
    common = data.get("set") or {}
    search = data.get("search") or {}
    for key, value in (("set", common), ("search", search)):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key}", value, "must map dotted recipe keys to values")
    if recipes and search:
        raise ConfigError(f"{where}: search", search, "only a searchers test searches; use set for a recipes test")
    standalone = _int_list(data, "standalone_seeds", where) if not recipes else ()
    text = p.read_bytes()
    return Registration(
        path=p, name=name, paper=_require(data, "paper", where, str, "the paper"),
        claim=_require(data, "claim", where, str, "the claim tested, in one sentence"), kind=kind,
        technique=technique, baseline=baseline, supernet=supernet, config=config, table=table, overrides=dict(common),
        search=dict(search), measure=measure, seeds=seeds, n=n, alpha=alpha, power=power, pilot_sd=pilot_sd,
        pilot_source=_require(data, "pilot_source", where, str, "where pilot_sd comes from"), mde=mde,
        standalone_seeds=standalone, registered=_date(data, where), sha256=hashlib.sha256(text).hexdigest())


def load_family(path: Union[str, Path]) -> Family:
    """Read the family file: the registered tests adjusted together, the p-value adjusted, the correction, its level."""
    p = Path(path)
    data = _read_yaml(p, "FAMILY")
    where = str(p)
    if data.get("format") != FAMILY_FORMAT:
        raise ConfigError(f"{where}: format", data.get("format"), f"must be {FAMILY_FORMAT}")
    tests = _require(data, "tests", where, list, "the names of the registered tests")
    if not tests or not all(isinstance(t, str) for t in tests) or len(set(tests)) != len(tests):
        raise ConfigError(f"{where}: tests", tests, "must be a non-empty list of distinct test names")
    correction = _require(data, "correction", where, str, "holm")
    if correction != "holm":
        raise ConfigError(f"{where}: correction", correction, "allowed values: holm")
    p_value = _require(data, "p_value", where, str, "the p-value adjusted: sign_flip or ttest")
    if p_value not in ("sign_flip", "ttest"):
        raise ConfigError(f"{where}: p_value", p_value, "allowed values: sign_flip, ttest")
    alpha = float(_require(data, "alpha", where, (int, float), "the family-wise level, e.g. 0.05"))
    return Family(p, tuple(tests), correction, p_value, alpha, _date(data, where))
