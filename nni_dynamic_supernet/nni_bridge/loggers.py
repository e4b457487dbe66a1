"""The run's Lightning loggers (``output.logger``): the recipe as hyperparameters, the scalars, the final metrics.

A run logs as Lightning users expect: every recipe field, flattened to a dotted key with a scalar
value (``training.lr: 0.05``, ``strategy: spos_calr``), is the logger's hyperparameters, and the
final metrics (``final/kendall_tau`` ...) are logged against them. On TensorBoard the HPARAMS tab
then compares runs by strategy, seed or any other field; Lightning's ``hparams.yaml`` holds the
flattened recipe. ``tensorboard`` and ``csv`` come with Lightning; ``wandb`` and ``mlflow`` need
their packages, which a run checks before any work (:func:`check_loggers_installed`).

Where each writes: ``OUT/tensorboard``, ``OUT/csv/version_N`` (``metrics.csv`` and ``hparams.yaml``;
a resumed run writes the next version), and for
W&B and MLflow their own stores, configured by their environment variables (``WANDB_PROJECT``,
``WANDB_MODE``, ``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME``); without those, W&B files go
to ``OUT/wandb`` and MLflow runs to ``OUT/mlruns``.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..tensorboard_log import log_figures_and_final

__all__ = ["LOGGER_PACKAGES", "check_loggers_installed", "make_loggers", "hparam_values", "log_final"]

#: Loggers that need a package Lightning does not install, and the pip name of that package.
LOGGER_PACKAGES: dict[str, str] = {"wandb": "wandb", "mlflow": "mlflow"}

#: The project / experiment name of W&B and MLflow runs when their environment variables name none.
_PROJECT = "nni_dynamic_supernet"


def check_loggers_installed(names: Sequence[str]) -> None:
    """Refuse, before any work, a logger whose package is not installed (one line with the pip command).

    Parameters
    ----------
    names
        :meth:`~nni_dynamic_supernet.sections.OutputConfig.loggers` of the recipe.

    Raises
    ------
    ConfigError
        Naming ``output.logger`` and the ``pip install`` that adds the package.
    """
    for name in names:
        package = LOGGER_PACKAGES.get(name)
        if package is not None and importlib.util.find_spec(package) is None:
            raise ConfigError("output.logger", name, f"needs the {package} package, which is not installed: "
                                                     f"pip install {package} (or use tensorboard or csv)")


def hparam_values(recipe_dict: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe as hyperparameters: dotted keys, each value a number, a string or a boolean.

    Nested mappings (``space.kwargs``, a sampling constraint) become more dotted keys; a list is
    written as its JSON text and ``None`` as ``null``, the values every logger accepts.

    Parameters
    ----------
    recipe_dict
        ``Recipe.to_dict()``.

    Returns
    -------
    dict

    Examples
    --------
    >>> hparam_values({"strategy": "spos", "space": {"kwargs": {"channels": 8}}, "training": {"ms_labels": None,
    ...                "split_branching": [2, 2]}})
    {'strategy': 'spos', 'space.kwargs.channels': 8, 'training.ms_labels': 'null', 'training.split_branching': '[2, 2]'}
    """
    out: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
        elif value is None:
            out[key] = "null"
        elif isinstance(value, (bool, int, float, str)):
            out[key] = value
        else:  # a list or an empty mapping
            out[key] = json.dumps(value)

    walk(recipe_dict, "")
    return out


def make_loggers(names: Sequence[str], out_dir: Path, run_name: str, hparams: Mapping[str, Any]) -> list[Any]:
    """The Lightning loggers of a run, each already holding the recipe as its hyperparameters.

    Parameters
    ----------
    names
        ``tensorboard``, ``csv``, ``wandb``, ``mlflow`` (``OutputConfig.loggers()``).
    out_dir
        The run directory.
    run_name
        The name W&B and MLflow show for the run (``spos_calr-seed0``).
    hparams
        :func:`hparam_values` of the recipe.

    Returns
    -------
    list
        Lightning loggers, for ``Trainer(logger=...)``.
    """
    from pytorch_lightning.loggers import CSVLogger, MLFlowLogger, TensorBoardLogger, WandbLogger
    loggers: list[Any] = []
    for name in names:
        if name == "tensorboard":
            # No hp_metric placeholder: the HPARAMS tab's metrics are the final ones, logged at the end.
            logger: Any = TensorBoardLogger(save_dir=str(out_dir / "tensorboard"), name="", version="",
                                            default_hp_metric=False)
        elif name == "csv":
            # Lightning's versioned folders (OUT/csv/version_N): a resumed run gets the next one, because a
            # CSVLogger deletes the metrics.csv it finds in its folder.
            logger = CSVLogger(save_dir=str(out_dir), name="csv")
        elif name == "wandb":
            logger = WandbLogger(name=run_name, save_dir=str(out_dir),
                                 project=os.environ.get("WANDB_PROJECT", _PROJECT))
        elif name == "mlflow":
            logger = MLFlowLogger(experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME", _PROJECT),
                                  run_name=run_name, tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"),
                                  save_dir=str(out_dir / "mlruns"))
        else:
            raise ConfigError("output.logger", name, "allowed values: tensorboard, csv, wandb, mlflow, none")
        # Lightning writes hparams.yaml (TensorBoard, CSV) with what the logger holds when training starts.
        logger.log_hyperparams(dict(hparams))
        loggers.append(logger)
    return loggers


def _final_scalars(final: Mapping[str, Any]) -> dict[str, float]:
    """``final/<key>`` for every finite number of the final metrics (``best_arch`` and reasons are text)."""
    return {f"final/{k}": float(v) for k, v in final.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}


def log_final(loggers: Sequence[Any], hparams: Mapping[str, Any], final: Mapping[str, Any],
              figures: Sequence[Path], step: int) -> None:
    """Log the final metrics (and, on TensorBoard, the figures) of a finished run, against its hyperparameters.

    Parameters
    ----------
    loggers
        :func:`make_loggers`'s loggers, after training.
    hparams
        :func:`hparam_values` of the recipe.
    final
        :func:`~nni_dynamic_supernet.report.final_metrics` of the run.
    figures
        The PNG figures the run drew.
    step
        The step the final values are logged at (the run's epochs).
    """
    from pytorch_lightning.loggers import TensorBoardLogger
    scalars = _final_scalars(final)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            # Figures, final scalars and the HPARAMS summary in one event file of the run's folder.
            log_figures_and_final(Path(logger.log_dir), figures, final, step, hparams=hparams)
            continue
        logger.log_metrics(scalars, step=step)
        logger.save()
        logger.finalize("success")
