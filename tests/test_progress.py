"""Progress bars: shown on a terminal, forced on or off by the user, never in an nnictl trial."""
from __future__ import annotations

import io

import pytest

from nni_dynamic_supernet import progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_follow_the_terminal_and_the_users_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NNI_PLATFORM", raising=False)
    monkeypatch.setattr("sys.stderr", _Tty())
    assert progress.resolve(None) is True
    assert progress.resolve(False) is False
    monkeypatch.setattr("sys.stderr", io.StringIO())  # a log file or a pipe
    assert progress.resolve(None) is False
    assert progress.resolve(True) is True


def test_trials_are_quiet_even_when_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNI_PLATFORM", "local")
    monkeypatch.setattr("sys.stderr", _Tty())
    assert progress.resolve(True) is False
    bar = progress.progress_bar(range(3), desc="search", enabled=True)
    assert bar.disable and list(bar) == [0, 1, 2]
