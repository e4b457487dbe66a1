"""Run ``nds`` commands on hostile inputs and measure their peak memory (used by ``test_limits.py``).

``python -m tests.faults.memory_probe WORKDIR`` is a small launcher: it runs every case of
``WORKDIR/cases.json`` in one child process and then prints that child's peak resident memory
as ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``. The launcher exists because Linux carries
a process's peak across ``fork`` and ``exec``: measured in a process started straight from
pytest, the figure would be pytest's own. The child also prints, after each case, its
``VmHWM`` (the peak of its own memory so far), so each case's cost can be read.
"""
from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path


def _peak_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_cases(workdir: str) -> None:
    """Run every case in this process; print one JSON line per case."""
    from nni_dynamic_supernet import cli
    cases = json.loads((Path(workdir) / "cases.json").read_text())
    for name, argv in cases:
        err, out = io.StringIO(), io.StringIO()
        with redirect_stderr(err), redirect_stdout(out):
            code = cli.main(argv)
        lines = (err.getvalue() + out.getvalue()).splitlines()
        print(json.dumps({"case": name, "code": code, "peak_mb": _peak_mb(),
                          "longest_line": max((len(line) for line in lines), default=0),
                          "first_line": lines[0][:200] if lines else ""}), flush=True)


def launch(workdir: str) -> int:
    """Run :func:`run_cases` in a child; print its lines and then its ``getrusage`` peak."""
    proc = subprocess.run([sys.executable, "-m", "tests.faults.memory_probe", "--cases", workdir],
                          capture_output=True, text=True, env=os.environ.copy())
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr[-3000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"getrusage_children_max_rss_mb": peak}), flush=True)
    return proc.returncode


if __name__ == "__main__":
    if sys.argv[1] == "--cases":
        run_cases(sys.argv[2])
    else:
        sys.exit(launch(sys.argv[1]))
