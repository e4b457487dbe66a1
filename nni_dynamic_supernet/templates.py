"""The nnictl examples and the recipe templates they run, copied out of the installed package.

An nnictl example (``examples/spos_calr.yml``) names its trial code directory as the folder
above it and its recipe as ``config_templates/<name>.yaml`` inside that folder. A git checkout
has both folders at its root; a wheel ships them as package data under
``nni_dynamic_supernet/_resources/templates/``. :func:`copy_templates` writes them to a folder
of the user's choice with the checkout's layout, so that::

    cd DIR && nnictl create --config examples/spos_calr.yml

runs the same experiment from a wheel install as from a checkout.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Union

from .errors import ConfigError

__all__ = ["TEMPLATE_FOLDERS", "templates_root", "template_files", "copy_templates"]

#: Folder -> file pattern of what is copied: the nnictl experiments and the recipes they run.
TEMPLATE_FOLDERS = {"examples": "*.yml", "config_templates": "*.yaml"}

_PACKAGED = Path(__file__).resolve().parent / "_resources" / "templates"
_CHECKOUT = Path(__file__).resolve().parent.parent


def templates_root() -> Path:
    """The folder that holds ``examples/`` and ``config_templates/``.

    A wheel install has them as package data; an editable install or a checkout on
    ``PYTHONPATH`` reads the repository's own folders (the wheel's copies are made from
    these at build time, so both are the same files).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ConfigError
        When neither location holds the examples (a broken install).
    """
    for root in (_PACKAGED, _CHECKOUT):
        if all((root / folder).is_dir() for folder in TEMPLATE_FOLDERS):
            return root
    raise ConfigError("templates", str(_PACKAGED), "the nnictl examples are not installed; reinstall the "
                      "package from its wheel, or use a git checkout of the repository")


def template_files() -> list[Path]:
    """Every example and recipe template, as paths relative to :func:`templates_root`, sorted.

    Returns
    -------
    list of pathlib.Path
        For example ``examples/spos_calr.yml`` and ``config_templates/spos_calr.yaml``.
    """
    root = templates_root()
    return sorted(path.relative_to(root) for folder, pattern in TEMPLATE_FOLDERS.items()
                  for path in (root / folder).glob(pattern))


def copy_templates(dest: Union[str, "os.PathLike[str]"], overwrite: bool = False) -> list[Path]:
    """Copy the nnictl examples and their recipe templates into ``dest``.

    ``dest/examples/*.yml`` and ``dest/config_templates/*.yaml`` keep the repository's layout,
    so ``nnictl create --config examples/spos_calr.yml`` works from ``dest``. Nothing is
    written when a check fails.

    Parameters
    ----------
    dest
        Target folder; created when missing.
    overwrite
        Replace files that already exist in ``dest``. Without it an existing file stops the
        copy, so a user's edited recipe is never replaced silently.

    Returns
    -------
    list of pathlib.Path
        The files written, in :func:`template_files` order.

    Raises
    ------
    ConfigError
        ``dest`` is a file, or (without ``overwrite``) one of the target files exists.

    Examples
    --------
    >>> import tempfile
    >>> from nni_dynamic_supernet.templates import copy_templates
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = copy_templates(tmp)
    ...     print(sorted(p.parent.name for p in written)[0], any(p.name == "spos_calr.yml" for p in written))
    config_templates True
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise ConfigError("DIR", str(dest), "is a file; pass a folder to copy the examples into")
    root = templates_root()
    files = template_files()
    if not overwrite:
        existing = [rel for rel in files if (dest / rel).exists()]
        if existing:
            raise ConfigError("DIR", str(dest), f"already holds {existing[0].as_posix()} (and {len(existing) - 1} "
                              "more of the files to copy); choose an empty folder, or pass --overwrite to "
                              "replace them")
    written = []
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / rel, target)
        written.append(target)
    return written
