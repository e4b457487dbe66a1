"""The ``nds`` command: train, search, evaluate, rank, export, plot, summary, bench, list.

Every user error is printed as one line (``nds: error: field=value: fix``) with exit
status 2, and leaves no partial output file behind. A command imports torch, NNI, scipy and
matplotlib only once it runs, so ``nds --help`` and a usage error answer at once.

* :mod:`.parser` -- the argument parser; :mod:`.files` -- input and output paths;
* :mod:`.run_commands` and :mod:`.bench_commands` -- the handlers.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..errors import ConfigError, TrainingDiverged
from ..output_dirs import missing_dirs, remove_empty_new_dirs
from ..quiet_logs import quiet_third_party_logs
from ..signals import Interrupted, handle_signals
from .bench_commands import cmd_bench_build
from .files import input_file, output_dir
from .parser import build_parser
from .run_commands import cmd_evaluate, cmd_rank, cmd_train

__all__ = ["main", "build_parser", "input_file", "output_dir"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``nds``; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (one line, printed) or --help
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    quiet_third_party_logs(verbose=args.verbose)
    existed = {p: False for p in _new_output_dirs(args)}  # deepest first: removed in that order on failure
    with handle_signals():  # SIGTERM / SIGINT end the command with 128 + signal, files whole
        try:
            return int(args.fn(args) or 0)
        except ConfigError as exc:
            remove_empty_new_dirs(existed)
            print(f"nds: error: {exc}", file=sys.stderr)
            return 2
        except TrainingDiverged as exc:
            print(f"nds: error: {exc}", file=sys.stderr)
            return 3
        except Interrupted as exc:
            remove_empty_new_dirs(existed)
            print(f"nds: stopped by {exc.name} (exit status {exc.exit_status}); {_what_is_kept(args)}", file=sys.stderr)
            return exc.exit_status


def _what_is_kept(args: argparse.Namespace) -> str:
    """The second half of the line a stopped command prints: what survives and how to go on."""
    if args.fn is cmd_train:
        last = Path(args.out) / "lightning" / "last.ckpt"
        if last.is_file():
            return f"the last checkpoint {last} is whole: continue with the same command and --resume"
        return "no checkpoint was written yet: start the run again"
    return "every file written so far is whole; nothing was half-written"


def _new_output_dirs(args: argparse.Namespace) -> list[str]:
    """The output folders (and their missing parents) this command may create, deepest first."""
    out = getattr(args, "out", None)
    if not isinstance(out, str):
        return []
    return missing_dirs(Path(out).parent if args.fn in (cmd_evaluate, cmd_rank, cmd_bench_build) else Path(out))

