"""SIGTERM / SIGINT at each phase: exit 128 + signal, one line, whole files, and an exact resume.

The signal is sent by the process to itself at a chosen point (a training step, the start of
the search, the final ranking, a table job), in a forked child, so the phase is exact and the
test fast; one test sends it from outside while the child trains, as a scheduler would.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Callable

import pytest
import torch

from nni_dynamic_supernet import cli

from ..bench.tiny_compare import tiny_registration, tiny_table
from ..tiny_recipe import write_recipe
from .helpers import assert_nothing_half_written, assert_one_line, in_child, run_nds, snapshot

EPOCHS, STEPS = 3, 3
_TIMING_KEYS = {"seconds", "checkpoint"}


def _config(tmp: Path, **changes: dict) -> Path:
    sections: dict = {"training": {"epochs": EPOCHS, "max_steps_per_epoch": STEPS, "num_threads": 1},
                      "data": {"train_subset": 256}, "ranking": {"probe_archs": 2}, "output": {"diagnostics": False},
                      "search": {"searcher": "evolution", "max_evaluations": 6, "population": 4, "generations": 2,
                                 "select_num": 2, "mutation_num": 2, "crossover_num": 2}}
    for key, value in changes.items():
        sections[key] = {**sections.get(key, {}), **value}
    return write_recipe(tmp / "sig.yaml", seed=3, **sections)


def _signal_at(owner: object, name: str, signum: int, when: Callable[..., bool] = lambda *a, **k: True) -> None:
    """Patch ``owner.name`` so that it sends ``signum`` to this process when ``when(*args)`` holds, then runs."""
    original = getattr(owner, name)

    def patched(*args, **kwargs):  # type: ignore[no-untyped-def]
        if when(*args, **kwargs):
            os.kill(os.getpid(), signum)
        return original(*args, **kwargs)

    setattr(owner, name, patched)


def _strip(value):  # type: ignore[no-untyped-def]
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _TIMING_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _assert_same_run(a: Path, b: Path) -> None:
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    assert _strip(ra) == _strip(rb)
    ma, mb = (torch.load(d / "supernet.pt", weights_only=True)["models"] for d in (a, b))
    for x, y in zip(ma, mb, strict=True):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), "weights differ after resume"


def _train_killed_at_step(config: Path, out: Path, step: int, signum: int) -> Callable[[], int]:
    def target() -> int:
        from nni_dynamic_supernet.training.engine import SupernetEngine
        _signal_at(SupernetEngine, "train_step", signum, lambda self, batch, s: s == step)
        return cli.main(["train", "--config", str(config), "--out", str(out)])
    return target


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of the signal tests' recipe."""
    tmp = tmp_path_factory.mktemp("sig_reference")
    code, _, err = run_nds(["train", "--config", _config(tmp), "--out", tmp / "run"])
    assert code == 0, err
    return tmp / "run"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_training_exits_128_plus_n_and_resume_is_bit_identical(signum: int, tmp_path: Path,
                                                                              reference: Path) -> None:
    config = _config(tmp_path)
    out = tmp_path / "run"
    code, err, _ = in_child(_train_killed_at_step(config, out, STEPS + 1, signum), tmp_path)
    line = assert_one_line(err, code, 128 + signum, f"stopped by {signal.Signals(signum).name}", "--resume")
    assert "last.ckpt is whole" in line
    assert (out / "lightning" / "last.ckpt").is_file() and not (out / "results.json").exists()
    assert_nothing_half_written(out)
    ckpt = torch.load(out / "lightning" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 0  # the checkpoint of the first epoch, written before the signal came
    code, _, err = run_nds(["train", "--config", config, "--out", out, "--resume"])
    assert code == 0, err
    _assert_same_run(out, reference)


def test_sigterm_from_outside_while_training(tmp_path: Path) -> None:
    config = _config(tmp_path)
    out = tmp_path / "run"
    started = tmp_path / "started"

    def target() -> int:
        from nni_dynamic_supernet.training.engine import SupernetEngine
        original = SupernetEngine.train_step

        def slow_step(self, batch, step):  # type: ignore[no-untyped-def]
            if step == STEPS + 1:
                started.write_text("training")
                time.sleep(60)  # the scheduler's SIGTERM arrives here
            return original(self, batch, step)

        SupernetEngine.train_step = slow_step  # type: ignore[method-assign]
        return cli.main(["train", "--config", str(config), "--out", str(out)])

    import multiprocessing
    import threading
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(r=in_child(target, tmp_path)))
    runner.start()
    for _ in range(1200):
        if started.exists():
            break
        time.sleep(0.1)
    assert started.exists()
    # The child is the only process of ours that is alive besides this one.
    (child,) = multiprocessing.active_children()
    os.kill(child.pid, signal.SIGTERM)
    runner.join(timeout=120)
    code, err, _ = result["r"]
    assert_one_line(err, code, 143, "stopped by SIGTERM", "--resume")
    assert_nothing_half_written(out)


def test_sigterm_during_the_search_then_resume_is_bit_identical(tmp_path: Path, reference: Path) -> None:
    config = _config(tmp_path)
    out = tmp_path / "run"

    def target() -> int:
        import nni_dynamic_supernet.stages as stages
        _signal_at(stages, "search_supernet", signal.SIGTERM)
        return cli.main(["train", "--config", str(config), "--out", str(out)])

    code, err, _ = in_child(target, tmp_path)
    assert_one_line(err, code, 143, "stopped by SIGTERM")
    assert not (out / "results.json").exists() and not (out / "best_arch.json").exists()
    assert_nothing_half_written(out)
    code, _, err = run_nds(["train", "--config", config, "--out", out, "--resume"])
    assert code == 0, err
    _assert_same_run(out, reference)


def test_sigterm_during_the_final_ranking(tmp_path: Path) -> None:
    table = tiny_table(tmp_path / "gt.json")
    config = _config(tmp_path, ranking={"probe_archs": 0, "ground_truth": str(table)})
    out = tmp_path / "run"

    def target() -> int:
        import nni_dynamic_supernet.report as report
        _signal_at(report, "rank_predictions", signal.SIGTERM)
        return cli.main(["train", "--config", str(config), "--out", str(out)])

    code, err, _ = in_child(target, tmp_path)
    assert_one_line(err, code, 143, "stopped by SIGTERM")
    assert not (out / "results.json").exists()
    assert_nothing_half_written(out)
    before = snapshot(table)
    code, _, err = run_nds(["train", "--config", config, "--out", out, "--resume"])
    assert code == 0, err
    assert json.loads((out / "results.json").read_text())["ranking"]["kendall_tau"] is not None
    assert snapshot(table) == before


def test_sigterm_during_nds_search_writes_nothing(finished_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "search"

    def target() -> int:
        import nni_dynamic_supernet.stages as stages
        _signal_at(stages, "search_supernet", signal.SIGTERM)
        return cli.main(["search", "--checkpoint", str(finished_run / "supernet.pt"), "--out", str(out)])

    before = snapshot(finished_run)
    code, err, _ = in_child(target, tmp_path)
    assert_one_line(err, code, 143, "stopped by SIGTERM", "nothing was half-written")
    assert not out.exists() or not any(out.iterdir())
    assert snapshot(finished_run) == before


def test_sigint_during_nds_evaluate_writes_nothing(finished_run: Path, tmp_path: Path) -> None:
    arch = json.loads((finished_run / "best_arch.json").read_text())
    (tmp_path / "archs.json").write_text(json.dumps([arch, arch]))
    preds = tmp_path / "preds.json"

    def target() -> int:
        import nni_dynamic_supernet.search.evaluate as evaluate
        from nni_dynamic_supernet.search import run as search_run  # noqa: F401 (evaluator class)
        _signal_at(evaluate.SubnetEvaluator, "evaluate", signal.SIGINT)
        return cli.main(["evaluate", "--checkpoint", str(finished_run / "supernet.pt"), "--archs",
                         str(tmp_path / "archs.json"), "--out", str(preds)])

    code, err, _ = in_child(target, tmp_path)
    assert_one_line(err, code, 130, "stopped by SIGINT")
    assert not preds.exists()
    assert_nothing_half_written(tmp_path)


def test_sigterm_during_bench_build_keeps_the_finished_jobs(tmp_path: Path) -> None:
    from nni_dynamic_supernet.bench import build as build_mod
    out = tmp_path / "table.json"
    argv = ["bench", "build", "--out", str(out), "--archs", "2", "--seeds", "0", "--sample-seed", "1", "--quiet",
            "--table", "v1"]

    def target() -> int:
        calls = []
        original = build_mod._run_job

        def job(arch, seed, hparams, *rest):  # type: ignore[no-untyped-def]
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            hparams = {**hparams, "epochs": 1}
            return original(arch, seed, hparams, *rest)

        build_mod._run_job = job
        return cli.main(argv)

    code, err, _ = in_child(target, tmp_path)
    assert_one_line(err, code, 143, "stopped by SIGTERM")
    assert not out.exists()
    lines = build_mod.partial_path(out).read_text().splitlines()
    assert len(lines) == 2 and "header" in json.loads(lines[0])  # the first job survives, whole
    assert_nothing_half_written(tmp_path)


def test_sigterm_during_bench_verdict_with_workers_stops_them_at_once(tmp_path: Path) -> None:
    # Trainings that would run for hours: the stop must not wait for them.
    long = {"recipe": "spos", "set": {"training.epochs": 100000}}
    reg = tiny_registration(tmp_path, technique={**long, "recipe": "spos_calr_ms"}, baseline=long)
    result = reg.with_name("tiny.result.json")

    def target() -> int:
        import threading
        threading.Timer(15.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return cli.main(["bench", "verdict", str(reg), "--runs-dir", str(tmp_path / "runs"), "--workers", "2"])

    started = time.monotonic()
    code, err, _ = in_child(target, tmp_path, timeout=240)
    assert_one_line(err, code, 143, "stopped by SIGTERM")
    assert time.monotonic() - started < 240
    assert json.loads(result.read_text())["n_seeds"] == 0  # written whole, with no made-up run
    assert_nothing_half_written(tmp_path)


def test_a_signal_during_a_file_write_waits_for_the_whole_file(tmp_path: Path) -> None:
    from nni_dynamic_supernet.atomic_io import atomic_write_bytes
    from nni_dynamic_supernet.signals import Interrupted, deferred, handle_signals
    target = tmp_path / "big.bin"
    payload = os.urandom(1 << 20)
    with handle_signals():
        with pytest.raises(Interrupted) as caught:
            with deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                atomic_write_bytes(target, payload)  # still written: the signal waits for the block
        assert caught.value.exit_status == 143
    assert target.read_bytes() == payload
    assert_nothing_half_written(tmp_path)


def test_an_ignored_signal_stays_ignored() -> None:
    from nni_dynamic_supernet.signals import handle_signals
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with handle_signals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # nohup / background job: left alone
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_stopped_nni_trial_reports_no_final_result_and_dies_by_the_signal(tmp_path: Path) -> None:
    config = _config(tmp_path)
    out = tmp_path / "trial"
    reports = tmp_path / "reports.jsonl"

    def target() -> int:
        from nni_dynamic_supernet import trial
        from nni_dynamic_supernet.nni_bridge import NniReporter
        from nni_dynamic_supernet.training.engine import SupernetEngine

        def record(kind: str):  # type: ignore[no-untyped-def]
            def report(self, metrics):  # type: ignore[no-untyped-def]
                with open(reports, "a") as fh:
                    fh.write(json.dumps({"type": kind, **metrics}) + "\n")
            return report

        NniReporter.intermediate = record("intermediate")  # type: ignore[method-assign]
        NniReporter.final = record("final")  # type: ignore[method-assign]
        # nnictl's trial keeper stops a trial with SIGINT (then SIGKILL 5 s later).
        _signal_at(SupernetEngine, "train_step", signal.SIGINT, lambda self, batch, s: s == STEPS + 1)
        trial._exit(trial.main(["--config", str(config), "--out", str(out)]))
        return 0

    code, err, _ = in_child(target, tmp_path)
    assert code == -signal.SIGINT, f"the trial must die by SIGINT (nnictl: USER_CANCELED / EARLY_STOPPED), got {code}"
    assert_one_line(err, 2, 2, "stopped by SIGINT", "no final result", prefix="trial: ")
    kinds = [json.loads(line)["type"] for line in reports.read_text().splitlines()] if reports.exists() else []
    assert "final" not in kinds and kinds.count("intermediate") == 1
    assert (out / "lightning" / "last.ckpt").is_file() and not (out / "results.json").exists()
    assert_nothing_half_written(out)


def test_a_second_signal_while_stopping_does_not_interrupt_the_clean_up(tmp_path: Path) -> None:
    from nni_dynamic_supernet.signals import Interrupted, handle_signals
    cleaned = []
    with handle_signals():
        with pytest.raises(Interrupted):
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)  # interrupted right away
            finally:
                os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C during the clean-up
                cleaned.append(True)
    assert cleaned == [True]
