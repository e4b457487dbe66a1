"""Ground-truth accuracy tables: the stand-alone accuracies supernet rankings are judged by.

A table records, for a set of architectures of one search space, the accuracy each one
reaches when trained alone (mean over training seeds, plus the per-seed values), together
with how those numbers were made. It is plain JSON so it can be shipped with the package,
diffed, and read without unpickling anything.

Architecture keys
-----------------
An architecture ("arch") is a ``dict[str, str | int]`` mapping an NNI label (``'cell/0_1'``)
to a choice (``'conv_3x3'``). :func:`arch_key` turns it into the canonical string used to
match archs everywhere in the package (predictions, tables, caches):
``json.dumps(arch, sort_keys=True, separators=(",", ":"))``.

File format ``nds-ground-truth/1``
----------------------------------
A UTF-8 JSON object::

    {
      "format": "nds-ground-truth/1",          # required, exactly this string
      "space": "nas_bench_201",                # required, registry name of the space
      "space_kwargs": {"stem_out_channels": 4, "num_modules_per_stack": 3},
                                               # optional (default {}), arguments of the space
      "dataset": "digits_hard",                # required, dataset the archs were trained on
      "metric": "test_accuracy",               # required, what "accuracy" measures (percent)
      "recipe": {...},                         # optional (default {}), free-form: training
                                               # recipe, checksums, arch sampling, ...
      "seeds": [0, 1],                         # required, training seeds (ints), column order
                                               # of per_seed_matrix()
      "entries": [                             # required, one object per distinct arch
        {"arch": {"cell/0_1": "conv_3x3", ...},  # required, non-empty label -> choice
         "accuracy": 71.3,                     # required, finite number: mean over seeds
         "per_seed": {"0": 70.1, "1": 72.5},   # optional, seed (as a string) -> accuracy
         "params": 12345},                     # optional, complexity (parameter count)
        ...
      ]
    }

Other keys inside an entry are kept as they are (e.g. ``flops``). An arch may miss some
seeds; :meth:`GroundTruth.per_seed_matrix` shows them as NaN. Loading validates the
structure and reports the first problem as a :class:`~nni_dynamic_supernet.errors.ConfigError`
whose field is ``<file>:<key>`` (e.g. ``table.json:entries[3].accuracy``).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from ..arch import Arch, arch_key
from ..atomic_io import atomic_write_text
from ..errors import ConfigError
from .noise_ceiling import noise_ceiling

__all__ = ["FORMAT", "Arch", "arch_key", "GroundTruth"]

#: Value of the ``format`` key of every table this module writes and accepts.
FORMAT = "nds-ground-truth/1"

_REQUIRED_KEYS = ("format", "space", "dataset", "metric", "seeds", "entries")


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but True as an accuracy is always a mistake.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validate_entry(entry: Any, where: str) -> dict[str, Any]:
    """Check one table entry; ``where`` prefixes the field of any error."""
    if not isinstance(entry, dict):
        raise ConfigError(where, type(entry).__name__, "each entry must be a JSON object with 'arch' and 'accuracy'")
    if "arch" not in entry:
        raise ConfigError(f"{where}.arch", None, "missing; give the architecture as {label: choice}")
    arch = entry["arch"]
    if not isinstance(arch, dict) or not arch:
        raise ConfigError(f"{where}.arch", arch, "must be a non-empty object mapping NNI labels to choices")
    for label, choice in arch.items():
        if isinstance(choice, bool) or not isinstance(choice, (str, int)):
            raise ConfigError(f"{where}.arch.{label}", choice, "choices must be strings or integers")
    if "accuracy" not in entry:
        raise ConfigError(f"{where}.accuracy", None, "missing; give the mean accuracy over seeds as a number")
    if not _is_number(entry["accuracy"]):
        raise ConfigError(f"{where}.accuracy", entry["accuracy"], "must be a finite number")
    per_seed = entry.get("per_seed")
    if per_seed is not None:
        if not isinstance(per_seed, dict):
            raise ConfigError(f"{where}.per_seed", per_seed, "must be an object mapping seed (string) to accuracy")
        for seed, value in per_seed.items():
            if not _is_number(value):
                raise ConfigError(f"{where}.per_seed.{seed}", value, "must be a finite number")
    if "params" in entry and not _is_number(entry["params"]):
        raise ConfigError(f"{where}.params", entry["params"], "must be a finite number (parameter count)")
    return entry


@dataclass
class GroundTruth:
    """A ground-truth table: stand-alone accuracies of archs of one space (see module doc).

    Build one with :meth:`load`, :meth:`from_pairs` or
    :func:`~nni_dynamic_supernet.ranking.nasbench201_db.ground_truth_from_nasbench201`.
    Treat ``entries`` as read-only after construction: the arch index used by
    :meth:`accuracy` is built once (it is rebuilt if the list object or its length
    changes, but not on in-place edits of an entry).

    Parameters
    ----------
    space
        Registry name of the search space, e.g. ``'nas_bench_201'``.
    space_kwargs
        Arguments the space was built with.
    dataset
        Dataset the archs were trained and evaluated on.
    metric
        What ``accuracy`` measures, e.g. ``'test_accuracy'``.
    recipe
        Free-form description of how the numbers were produced.
    seeds
        Training seeds, in the column order of :meth:`per_seed_matrix`.
    entries
        One dict per arch: ``arch``, ``accuracy`` and optionally ``per_seed``, ``params``.
    source
        Where the table came from (file path or a name); used in error messages only.
    """

    space: str
    space_kwargs: dict[str, Any]
    dataset: str
    metric: str
    recipe: dict[str, Any]
    seeds: list[int]
    entries: list[dict[str, Any]]
    source: str = field(default="<memory>", compare=False)
    _index: Optional[dict[str, int]] = field(default=None, init=False, repr=False, compare=False)
    _index_of: tuple[int, int] = field(default=(0, -1), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Validate here, not only in load(), so hand-built tables fail early and clearly.
        for i, entry in enumerate(self.entries):
            _validate_entry(entry, f"{self.source}:entries[{i}]")
        self._lookup()  # also fails early on duplicate archs

    def _lookup(self) -> dict[str, int]:
        """arch_key -> entry index, rebuilt when ``entries`` was replaced or resized."""
        stamp = (id(self.entries), len(self.entries))
        if self._index is None or self._index_of != stamp:
            index: dict[str, int] = {}
            for i, entry in enumerate(self.entries):
                key = arch_key(entry["arch"])
                if key in index:
                    raise ConfigError(f"{self.source}:entries[{i}].arch", key,
                                      f"duplicates entries[{index[key]}]; list each architecture once "
                                      "and put its seeds in per_seed")
                index[key] = i
            self._index, self._index_of = index, stamp
        return self._index

    def __len__(self) -> int:
        return len(self.entries)

    # ------------------------------------------------------------------ queries
    def _entry(self, arch: Mapping[str, Union[str, int]]) -> Optional[dict[str, Any]]:
        i = self._lookup().get(arch_key(arch))
        return None if i is None else self.entries[i]

    def accuracy(self, arch: Mapping[str, Union[str, int]]) -> Optional[float]:
        """Mean ground-truth accuracy of ``arch``, or ``None`` if the table lacks it.

        Parameters
        ----------
        arch
            Mapping from NNI label to choice.

        Returns
        -------
        float or None
        """
        entry = self._entry(arch)
        return None if entry is None else float(entry["accuracy"])

    def seed_accuracies(self, arch: Mapping[str, Union[str, int]]) -> Optional[dict[str, float]]:
        """Per-seed accuracies of ``arch``, found as :meth:`accuracy` finds it, or ``None`` if the table lacks it.

        A copy of the entry's ``per_seed`` (seed as a string -> accuracy; empty when it has none).
        """
        entry = self._entry(arch)
        return None if entry is None else {k: float(v) for k, v in (entry.get("per_seed") or {}).items()}

    def archs(self) -> list[Arch]:
        """The architectures of the table, in entry order (copies).

        Returns
        -------
        list of dict
        """
        return [dict(e["arch"]) for e in self.entries]

    def accuracies(self) -> list[float]:
        """Mean accuracy of each entry, in entry order.

        Returns
        -------
        list of float
        """
        return [float(e["accuracy"]) for e in self.entries]

    def params(self) -> Optional[list[float]]:
        """Parameter count of each entry, or ``None`` unless every entry has one.

        Returns
        -------
        list of float or None
            Suitable as the ``complexity`` argument of the CB / rho_CC metrics.
        """
        if not self.entries or any("params" not in e for e in self.entries):
            return None
        return [float(e["params"]) for e in self.entries]

    def per_seed_matrix(self) -> np.ndarray:
        """Per-seed accuracies as an ``(n_entries, n_seeds)`` float array.

        Returns
        -------
        numpy.ndarray
            Column j holds seed ``seeds[j]``; NaN where an entry lacks that seed.
        """
        out = np.full((len(self.entries), len(self.seeds)), np.nan)
        for i, entry in enumerate(self.entries):
            per_seed = entry.get("per_seed") or {}
            for j, seed in enumerate(self.seeds):
                value = per_seed.get(str(seed))
                if value is not None:
                    out[i, j] = float(value)
        return out

    def noise_ceiling(self, n_bins: int = 400) -> dict[str, Any]:
        """How well the ground truth agrees with itself across training seeds.

        A supernet's ranking is read against this, so it is reported next to every ranking
        result; :func:`~nni_dynamic_supernet.ranking.noise_ceiling.noise_ceiling` computes it
        (its documentation explains every key).

        Parameters
        ----------
        n_bins
            Bins of the stratified subset.

        Returns
        -------
        dict
            ``kendall_tau``, ``kendall_tau_stratified``, ``spearman``, ``mean_abs_diff``,
            ``n_seed_pairs`` and the split-half and truth-vs-mean estimates.
        """
        return noise_ceiling(self.per_seed_matrix(), self.accuracies(), n_bins)

    def restrict(self, labels_to_choices: Mapping[str, Sequence[Union[str, int]]]) -> "GroundTruth":
        """The sub-table of archs that are valid in a search space.

        An arch is kept when it has exactly the space's labels and each value is one of
        that label's choices. Use it to check that a table fits a space (an empty result
        means it does not).

        Parameters
        ----------
        labels_to_choices
            The space's search space: label -> list of allowed choices.

        Returns
        -------
        GroundTruth
            A new table with the same metadata and the kept entries.
        """
        allowed = {label: set(choices) for label, choices in labels_to_choices.items()}
        kept = [
            e for e in self.entries
            if set(e["arch"]) == set(allowed)
            and all(choice in allowed[label] for label, choice in e["arch"].items())
        ]
        return GroundTruth(self.space, dict(self.space_kwargs), self.dataset, self.metric,
                           dict(self.recipe), list(self.seeds), kept, source=self.source)

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict[str, Any]:
        """The table as a JSON-ready dict in the ``nds-ground-truth/1`` format.

        Returns
        -------
        dict
        """
        return {
            "format": FORMAT,
            "space": self.space,
            "space_kwargs": self.space_kwargs,
            "dataset": self.dataset,
            "metric": self.metric,
            "recipe": self.recipe,
            "seeds": list(self.seeds),
            "entries": self.entries,
        }

    def to_json(self) -> str:
        """Serialize the table to a JSON string (the file format of :meth:`save`).

        Returns
        -------
        str

        Raises
        ------
        ValueError
            If a value is NaN or infinite (not valid JSON).
        """
        # allow_nan=False: NaN is not JSON and other readers would reject the file.
        return json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n"

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write the table to ``path`` atomically.

        The JSON goes to a temporary file in the same directory, which then replaces
        ``path`` with :func:`os.replace`, so a crash or a concurrent reader never sees a
        half-written table.

        Parameters
        ----------
        path
            Destination file; its directory must exist.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        text = self.to_json()  # serialize first: a bad value must not leave a temp file
        atomic_write_text(path, text)
        return Path(path)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> "GroundTruth":
        """Validate a parsed ``nds-ground-truth/1`` object and build the table.

        Parameters
        ----------
        data
            The parsed JSON object.
        source
            Name used in error fields (the file path when loading).

        Returns
        -------
        GroundTruth

        Raises
        ------
        ConfigError
            Naming ``<source>:<key>`` for the first invalid or missing key.
        """
        if not isinstance(data, dict):
            raise ConfigError(source, type(data).__name__, f"must be a JSON object in the {FORMAT} format")
        for key in _REQUIRED_KEYS:
            if key not in data:
                raise ConfigError(f"{source}:{key}", None, f"missing; a {FORMAT} table needs {', '.join(_REQUIRED_KEYS)}")
        if data["format"] != FORMAT:
            raise ConfigError(f"{source}:format", data["format"], f"expected {FORMAT!r}")
        for key in ("space", "dataset", "metric"):
            if not isinstance(data[key], str) or not data[key]:
                raise ConfigError(f"{source}:{key}", data[key], "must be a non-empty string")
        for key in ("space_kwargs", "recipe"):
            if not isinstance(data.get(key, {}), dict):
                raise ConfigError(f"{source}:{key}", data[key], "must be a JSON object")
        seeds = data["seeds"]
        if not isinstance(seeds, list) or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
            raise ConfigError(f"{source}:seeds", seeds, "must be a list of integer seeds")
        entries = data["entries"]
        if not isinstance(entries, list):
            raise ConfigError(f"{source}:entries", type(entries).__name__, "must be a list of entries")
        return cls(space=data["space"], space_kwargs=dict(data.get("space_kwargs", {})),
                   dataset=data["dataset"], metric=data["metric"], recipe=dict(data.get("recipe", {})),
                   seeds=list(seeds), entries=list(entries), source=source)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "GroundTruth":
        """Read and validate a table written by :meth:`save` (JSON only, never pickle).

        Parameters
        ----------
        path
            The ``.json`` file.

        Returns
        -------
        GroundTruth

        Raises
        ------
        ConfigError
            If the file is missing, not JSON, or not a valid ``nds-ground-truth/1``
            table; the field names the file and the offending key.
        """
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError("ground_truth", source, "file not found; give the path of a ground-truth table "
                              "(e.g. one written by `nds bench build`)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("ground_truth", source, f"cannot be read ({exc})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("ground_truth", source,
                              f"is not valid JSON ({exc.msg} at line {exc.lineno}); expected a {FORMAT} table") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_pairs(
        cls,
        archs: Sequence[Mapping[str, Union[str, int]]],
        accuracies: Sequence[float],
        *,
        space: str = "unknown",
        space_kwargs: Optional[dict[str, Any]] = None,
        dataset: str = "unknown",
        metric: str = "accuracy",
        recipe: Optional[dict[str, Any]] = None,
        seeds: Optional[Sequence[int]] = None,
        per_seed: Optional[Sequence[Mapping[Union[int, str], float]]] = None,
        params: Optional[Sequence[float]] = None,
        source: str = "<memory>",
    ) -> "GroundTruth":
        """Build a table from parallel lists of archs and mean accuracies.

        Parameters
        ----------
        archs
            Architectures (label -> choice), distinct.
        accuracies
            Mean accuracy of each arch.
        space, space_kwargs, dataset, metric, recipe
            Metadata stored in the table (see :class:`GroundTruth`).
        seeds
            Training seeds; defaults to the union of the ``per_seed`` keys (or ``[]``).
        per_seed
            Optional per-arch mapping seed -> accuracy.
        params
            Optional per-arch parameter count.
        source
            Name used in error messages.

        Returns
        -------
        GroundTruth
        """
        if len(archs) != len(accuracies):
            raise ConfigError("accuracies", f"{len(accuracies)} values",
                              f"must have one value per architecture ({len(archs)})")
        for name, seq in (("per_seed", per_seed), ("params", params)):
            if seq is not None and len(seq) != len(archs):
                raise ConfigError(name, f"{len(seq)} values", f"must have one value per architecture ({len(archs)})")
        entries: list[dict[str, Any]] = []
        seen: set[int] = set()
        for i, (arch, acc) in enumerate(zip(archs, accuracies)):
            entry: dict[str, Any] = {"arch": dict(arch), "accuracy": float(acc)}
            if per_seed is not None:
                entry["per_seed"] = {str(s): float(v) for s, v in per_seed[i].items()}
                seen.update(int(s) for s in per_seed[i])
            if params is not None:
                entry["params"] = params[i] if isinstance(params[i], int) else float(params[i])
            entries.append(entry)
        seed_list = [int(s) for s in seeds] if seeds is not None else sorted(seen)
        return cls(space=space, space_kwargs=dict(space_kwargs or {}), dataset=dataset, metric=metric,
                   recipe=dict(recipe or {}), seeds=seed_list, entries=entries, source=source)
