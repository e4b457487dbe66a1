"""The structure of a supernet checkpoint (``supernet.pt``), checked before anything is built from it.

``torch.load(weights_only=True)`` already refuses pickled code (a ``__reduce__`` payload
never runs) and reads only tensors and plain containers. What it cannot know is whether
those containers are a checkpoint of ours: a foreign file, a hand-edited one, or one with
an empty model list would otherwise reach the search with untrained weights or a
traceback. :func:`check_payload` checks the layout written by
:func:`~nni_dynamic_supernet.pipeline.save_supernet`; :func:`check_models_fit` checks,
once the recipe's supernet is built, that there is one state per sub-supernet and that
every tensor has the shape the space gives it. Each problem is one :class:`ConfigError`
line naming ``--checkpoint``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .errors import ConfigError

__all__ = ["check_payload", "check_models_fit"]

_REWRITE = "re-run nds train to write a new one"


def _fail(path: str, what: str) -> None:
    raise ConfigError("--checkpoint", path, f"{what}; {_REWRITE}")


def check_payload(payload: Any, path: str, expected_format: str) -> None:
    """Refuse a loaded checkpoint whose layout is not that of :func:`~.pipeline.save_supernet`.

    Parameters
    ----------
    payload
        What ``torch.load(weights_only=True)`` returned.
    path
        The file, for the message.
    expected_format
        The ``format`` string a checkpoint of this version carries.

    Raises
    ------
    ConfigError
        On the first problem: not a mapping, another format, no recipe (or not a mapping), no
        search space, no partition, an empty or malformed model list.
    """
    import torch
    if not isinstance(payload, Mapping) or payload.get("format") != expected_format:
        raise ConfigError("--checkpoint", path, f"not an {expected_format} checkpoint written by nds train")
    recipe = payload.get("recipe")
    if not isinstance(recipe, Mapping):
        _fail(path, f"its 'recipe' is {'missing' if recipe is None else 'a ' + type(recipe).__name__}, not a mapping")
    if not isinstance(recipe.get("strategy", "spos"), str):
        _fail(path, "its recipe's strategy is not a name")
    space = payload.get("search_space")
    if not isinstance(space, Mapping) or not space or not all(
            isinstance(k, str) and isinstance(v, (list, tuple)) and v for k, v in space.items()):
        _fail(path, "its 'search_space' is not a mapping of labels to choice lists")
    partition = payload.get("partition")
    if not isinstance(partition, Mapping) or not isinstance(partition.get("leaves"), (list, tuple)) \
            or not partition["leaves"]:
        _fail(path, "its 'partition' has no sub-supernet leaves")
    models = payload.get("models")
    if not isinstance(models, (list, tuple)) or not models:
        _fail(path, "holds no model weights (its 'models' list is empty or missing)")
    for i, state in enumerate(models):
        if not isinstance(state, Mapping) or not state or not all(
                isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
            _fail(path, f"models[{i}] is not a mapping of parameter names to tensors")


def check_models_fit(states: Sequence[Mapping[str, Any]], models: Sequence[Any], path: str) -> None:
    """Refuse model states that do not fit the supernets the checkpoint's recipe builds.

    Parameters
    ----------
    states
        The checkpoint's ``models``.
    models
        The built supernets (one per sub-supernet slot).
    path
        The file, for the message.

    Raises
    ------
    ConfigError
        When the counts differ, a parameter is missing or extra, or a shape differs.
    """
    if len(states) != len(models):
        _fail(path, f"holds {len(states)} model states but its recipe and partition build {len(models)} supernets")
    for i, (state, model) in enumerate(zip(states, models)):
        own = model.state_dict()
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if missing or extra:
            name, kind = (missing[0], "missing") if missing else (extra[0], "unexpected")
            _fail(path, f"models[{i}] does not fit the space: parameter {name} is {kind} "
                        f"({len(missing)} missing, {len(extra)} unexpected)")
        for name, tensor in state.items():
            if tuple(tensor.shape) != tuple(own[name].shape):
                _fail(path, f"models[{i}].{name} has shape {tuple(tensor.shape)}, the space needs "
                            f"{tuple(own[name].shape)}")
