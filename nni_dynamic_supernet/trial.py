"""Entry point of nnictl trials: ``python -m nni_dynamic_supernet.trial --config TEMPLATE``.

It merges the tuner's parameters (dotted recipe keys such as ``strategy`` or
``training.lr``) into the template, trains, searches and ranks, reports one
intermediate dict per epoch and a final dict to nnictl, and writes results.json,
best_arch.json, the figures and the supernet checkpoint to ``$NNI_OUTPUT_DIR`` (or
``--out``). A trial whose output directory already holds a Lightning checkpoint resumes
from it. Trials are quiet: no progress bars, one log line per epoch, and NNI's and
Lightning's repeated messages hidden. The folder NNI's TensorBoard button reads is linked
to the output directory.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from .cli import output_dir
from .errors import ConfigError, TrainingDiverged
from .output_dirs import remove_empty_new_dirs
from .progress import in_nni_trial
from .quiet_logs import quiet_third_party_logs
from .recipe import load_recipe, parse_override
from .run_dir import claim_run_dir
from .signals import Interrupted, die_by, handle_signals
from .tensorboard_log import link_for_nni_webui

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (``trial: error: ...``) and exit status 2, like a bad recipe."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"trial: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one trial; returns the exit status (2 for a configuration error).

    A bad command line exits with status 2 (``SystemExit``) after one error line.
    """
    parser = _Parser(prog="python -m nni_dynamic_supernet.trial")
    parser.add_argument("--config", required=True, help="recipe template (YAML)")
    parser.add_argument("--out", help="output directory (default: $NNI_OUTPUT_DIR)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="extra recipe overrides")
    args = parser.parse_args(argv)
    if in_nni_trial():
        # NNI's import hooks trial.log onto the root logger (and stdout into it); a second handler on
        # stderr would copy every line into trial.stderr, which is for warnings and errors.
        import nni  # noqa: F401
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_third_party_logs()
    existed: dict = {}  # output directory -> whether it was there before: a failed trial removes it if it made it
    with handle_signals():
        try:
            return _run(args, existed)
        except (ConfigError, TrainingDiverged) as exc:
            remove_empty_new_dirs(existed)  # nds's rule: a failed run leaves nothing half-written behind
            print(f"trial: error: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, ConfigError) else 3
        except Interrupted as exc:
            # No final result was reported: nnictl must not record a stopped trial as a finished one.
            remove_empty_new_dirs(existed)
            print(f"trial: stopped by {exc.name}; no final result reported; the last checkpoint (if any) is whole "
                  "and a restarted trial resumes from it", file=sys.stderr)
            return exc.exit_status


def _run(args: argparse.Namespace, existed: dict) -> int:
    """Train, search and rank the trial's recipe into its output directory."""
    # torch, NNI and Lightning load once the command line is known to be good (and NNI after its logging).
    from .nni_bridge import NniReporter, nni_parameters
    from .pipeline import run_recipe
    overrides = dict(parse_override(p) for p in (args.set or []))
    overrides.update(nni_parameters())
    target = args.out or os.environ.get("NNI_OUTPUT_DIR") or "trial_output"
    existed[str(target)] = Path(target).exists()
    out = output_dir(target)
    recipe = load_recipe(args.config, overrides)
    # NNI's TensorBoard button reads another folder than NNI_OUTPUT_DIR
    # (<exp root>/trials/<id>/output/tensorboard in NNI 3.0).
    link_for_nni_webui(out)
    # resume=None: a restarted trial continues the unfinished run in its folder (same recipe only).
    with claim_run_dir(out, recipe.to_dict(), resume=None, command="nni trial") as claim:
        results = run_recipe(recipe, out, reporter=NniReporter(), resume=claim.resume_from, on_start=claim.start)
    if results:  # empty on DDP ranks other than 0, which report nothing
        logging.getLogger("nni_dynamic_supernet").info("final %s=%s", results["headline"], results["default"])
    return 0


def _exit(status: int) -> None:
    """Exit with ``status``; a trial stopped by a signal dies by that signal, as nnictl expects of a stopped trial."""
    import signal
    if status - 128 in (signal.SIGTERM, signal.SIGINT):
        die_by(status - 128)
    sys.exit(status)


if __name__ == "__main__":  # pragma: no cover
    _exit(main())
