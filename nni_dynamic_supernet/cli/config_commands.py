"""The handlers of ``nds config show`` and ``nds templates copy``."""
from __future__ import annotations

import argparse
from pathlib import Path

from .files import output_dir, recipe_from_args

__all__ = ["cmd_config_show", "cmd_templates_copy", "RECIPE_HEADER"]

#: The comment above the YAML of a resolved recipe (``nds config show``; a run's ``recipe.yaml`` has its own).
RECIPE_HEADER = ("The resolved recipe: every field, after the strategy preset, the template and the overrides.",
                 "nds train --config THIS_FILE --out DIR runs it.")


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the recipe ``nds train`` would run with the same options, as YAML."""
    print(recipe_from_args(args).to_yaml(RECIPE_HEADER), end="")
    return 0


def cmd_templates_copy(args: argparse.Namespace) -> int:
    """Copy the nnictl examples and their recipe templates into ``args.dir``."""
    from ..templates import copy_templates
    dest = output_dir(args.dir, "DIR")
    written = copy_templates(dest, overwrite=args.overwrite)
    folders = sorted({Path(p).relative_to(dest).parts[0] for p in written})
    print(f"copied {len(written)} files into {dest} ({', '.join(f + '/' for f in folders)}); run an example with: "
          f"cd {dest} && nnictl create --config examples/spos_calr.yml")
    return 0
