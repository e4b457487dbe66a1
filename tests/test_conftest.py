"""The test set-up keeps a green run green: no logging tracebacks after pytest's summary."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# What NNI does (importing it is slow, so its two steps are copied): a handler on sys.stdout at import (pytest's capture stream there),
# and a stop() registered with atexit that logs after pytest has closed that stream.
_TEST = '''
import atexit
import logging
import sys

# nni.runtime.log.start_stdout_logging, run when nni is first imported:
logging.getLogger("nni").addHandler(logging.StreamHandler(sys.stdout))
logging.getLogger("nni").setLevel(logging.INFO)


def test_registers_a_late_log_message():
    atexit.register(lambda: logging.getLogger("nni.nas.experiment").info("Experiment stopped"))
'''


def _pytest(tmp_path: Path, *plugin: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_late_log.py").write_text(_TEST)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
                           *plugin, str(tmp_path / "test_late_log.py")], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_no_logging_error_after_the_summary(tmp_path: Path) -> None:
    bare = _pytest(tmp_path)
    assert bare.returncode == 0 and "Logging error" in bare.stdout + bare.stderr, \
        "the problem no longer reproduces without the conftest; this test checks nothing"
    ours = _pytest(tmp_path, "-p", "tests.conftest")
    assert ours.returncode == 0, ours.stdout + ours.stderr
    assert "Logging error" not in ours.stdout + ours.stderr, ours.stdout + ours.stderr
    assert "1 passed" in ours.stdout
