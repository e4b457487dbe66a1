"""Run directories: one writer, finished runs kept, resumes of the same recipe only, checks before training."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nni_dynamic_supernet.run_dir import LOCK_FILE, DirectoryLock, recipe_differences

from ..tiny_recipe import write_recipe
from .helpers import assert_nothing_half_written, assert_one_line, in_child, run_nds, snapshot


def _train(config: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run_nds(["train", "--config", config, "--out", out, *extra])


def test_a_finished_run_is_never_overwritten_without_overwrite(run_copy: Path, config: Path) -> None:
    before = snapshot(run_copy)
    code, out, err = _train(config, run_copy)
    assert_one_line(err, code, 2, "finished run", "--overwrite")
    assert snapshot(run_copy) == before
    # --resume of a finished run has nothing to continue and must not rewrite it either.
    code, out, err = _train(config, run_copy, "--resume")
    assert_one_line(err, code, 2, "finished run", "nothing to resume")
    assert snapshot(run_copy) == before


def test_overwrite_replaces_the_whole_run_not_a_mix(run_copy: Path, config: Path) -> None:
    (run_copy / "predicted_vs_true.png").write_bytes(b"an old figure")
    (run_copy / "notes.txt").write_text("the user's own file")
    code, out, err = _train(config, run_copy, "--overwrite", "--skip-search")
    assert code == 0, err
    names = {p.name for p in run_copy.iterdir()}
    # The new run did not search: the old best_arch.json and figure must not survive beside its results.
    assert "best_arch.json" not in names and "predicted_vs_true.png" not in names
    assert {"results.json", "supernet.pt", "run.json", "recipe.yaml", "lightning", "notes.txt"} <= names
    results = json.loads((run_copy / "results.json").read_text())
    assert "search" not in results
    assert_nothing_half_written(run_copy)


def test_an_unfinished_run_needs_resume_or_overwrite(run_copy: Path, config: Path) -> None:
    (run_copy / "results.json").unlink()
    before = snapshot(run_copy)
    code, out, err = _train(config, run_copy)
    assert_one_line(err, code, 2, "unfinished run", "--resume", "--overwrite")
    assert snapshot(run_copy) == before
    code, out, err = _train(config, run_copy, "--resume", "--overwrite")
    assert_one_line(err, code, 2, "--overwrite", "not both")
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("change, fields", [
    ({"strategy": "spos_calr"}, ["strategy", "training.lr_policy"]),
    ({"space": {"name": "nas_bench_201", "kwargs": {"channels": 4, "cells_per_stage": 1}}},
     ["space.kwargs.channels"]),
    ({"seed": 7}, ["seed"]),
    ({"data": {"train_subset": 256}}, ["data.train_subset"]),
], ids=["strategy", "space", "seed", "data"])
def test_resume_with_another_recipe_is_refused_naming_the_fields(run_copy: Path, tmp_path: Path, change: dict,
                                                                 fields: list) -> None:
    (run_copy / "results.json").unlink()
    before = snapshot(run_copy)
    other = write_recipe(tmp_path / "other.yaml", output={"diagnostics": False}, **change)
    code, out, err = _train(other, run_copy, "--resume")
    assert_one_line(err, code, 2, "--resume", "another recipe", *fields)
    assert snapshot(run_copy) == before


def test_resume_may_change_what_runs_after_training(run_copy: Path, tmp_path: Path) -> None:
    (run_copy / "results.json").unlink()
    other = write_recipe(tmp_path / "other.yaml", output={"diagnostics": False},
                         search={"searcher": "random", "max_evaluations": 3, "bn_batches": 1},
                         training={"epochs": 1, "max_steps_per_epoch": 1, "num_threads": 1,
                                   "checkpoint_every_n_epochs": 2})
    code, out, err = _train(other, run_copy, "--resume")
    assert code == 0, err
    assert json.loads((run_copy / "results.json").read_text())["search"]["evaluations"] == 3


def test_a_resume_keeps_recipe_yaml_or_says_what_changed(run_copy: Path, config: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    import yaml
    (run_copy / "results.json").unlink()
    started = (run_copy / "recipe.yaml").read_bytes()
    assert yaml.safe_load(started) == json.loads((run_copy / "run.json").read_text())["recipe"]
    code, out, err = _train(config, run_copy, "--resume")  # the same recipe: the file stays as it was
    assert code == 0, err
    assert (run_copy / "recipe.yaml").read_bytes() == started
    (run_copy / "results.json").unlink()
    other = write_recipe(tmp_path / "other.yaml", output={"diagnostics": False},
                         search={"searcher": "random", "max_evaluations": 3, "bn_batches": 1})
    with caplog.at_level("WARNING", logger="nni_dynamic_supernet"):
        code, out, err = _train(other, run_copy, "--resume")  # a free field changed: rewritten, and said so
    assert code == 0, err
    assert yaml.safe_load((run_copy / "recipe.yaml").read_text())["search"]["max_evaluations"] == 3
    said = [r.getMessage() for r in caplog.records if "recipe.yaml" in r.getMessage()]
    assert len(said) == 1 and "search.max_evaluations (2 -> 3)" in said[0]


def test_fingerprint_differences_name_fields_and_ignore_free_ones() -> None:
    from nni_dynamic_supernet.recipe import Recipe
    a = Recipe.from_dict({"strategy": "spos"}).to_dict()
    b = Recipe.from_dict({"strategy": "spos", "search": {"population": 60}, "data": {"num_workers": 2},
                          "output": {"plots": False}}).to_dict()
    assert recipe_differences(a, b) == []
    c = Recipe.from_dict({"strategy": "spos", "search": {"bn_batches": 9}}).to_dict()
    assert recipe_differences(a, c) == ["search.bn_batches (4 -> 9)"]


def test_output_paths_of_the_wrong_kind_are_refused_before_training(config: Path, tmp_path: Path) -> None:
    for name, make in (("results.json", "dir"), ("supernet.pt", "dir"), ("lightning", "file"),
                       ("tensorboard", "file")):
        out = tmp_path / f"out_{name}"
        out.mkdir()
        (out / name).mkdir() if make == "dir" else (out / name).write_text("x")
        before = snapshot(out)
        started = time.monotonic()
        code, _, err = _train(config, out)
        assert_one_line(err, code, 2, "--out", name)
        assert time.monotonic() - started < 10, "refused only after the work"
        assert snapshot(out) == before and not (out / "run.json").exists()


def test_an_output_dir_that_cannot_be_created_is_one_line(config: Path, tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    for out in (tmp_path / "file.txt" / "run", tmp_path / ("n" * 300) / "run"):
        code, _, err = _train(config, out)
        assert_one_line(err, code, 2, "--out")
    if os.geteuid() != 0:  # root writes anywhere; the permission case needs another user
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, _, err = _train(config, locked / "run")
        assert_one_line(err, code, 2, "--out")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "tiny.yaml") in (["file.txt"],
                                                                                   ["file.txt", "locked"])


def _hold_lock(out: str, ready: str) -> int:  # runs in a forked child
    lock = DirectoryLock(Path(out), command="nds train").acquire()
    Path(ready).write_text("held")
    time.sleep(60)
    lock.release()
    return 0


def test_a_second_run_into_a_locked_directory_is_refused_naming_the_holder(config: Path, tmp_path: Path) -> None:
    import multiprocessing
    out = tmp_path / "shared"
    out.mkdir()
    ready = tmp_path / "ready"
    holder = multiprocessing.get_context("fork").Process(target=_hold_lock, args=(str(out), str(ready)))
    holder.start()
    try:
        for _ in range(200):
            if ready.exists():
                break
            time.sleep(0.05)
        code, _, err = _train(config, out)
        assert_one_line(err, code, 2, f"PID {holder.pid}", "is writing into this directory")
        assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # the holder's lock, nothing of ours
        # nds search into the same folder is refused the same way.
    finally:
        holder.kill()
        holder.join()
    # The holder died without releasing: its lock is stale and the next run takes it over.
    code, _, err = _train(config, out)
    assert code == 0, err
    assert not (out / LOCK_FILE).exists()
    assert_nothing_half_written(out)


def test_a_stale_lock_of_a_dead_pid_is_taken_over(config: Path, tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "stale"
    out.mkdir()
    (out / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename, "command": "nds train"}))
    code, _, err = _train(config, out)
    assert code == 0, err
    assert (out / "results.json").is_file() and not (out / LOCK_FILE).exists()


def test_a_resume_removes_the_temporary_files_of_a_killed_write(run_copy: Path, config: Path) -> None:
    # What `kill -9` during a checkpoint or results write leaves: the next run holding the lock removes it.
    (run_copy / "results.json").unlink()
    orphans = [run_copy / "lightning" / ".last.ckpt.x1y2z3.tmp", run_copy / ".results.json.a1b2c3.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a file")
    (run_copy / "notes.tmp").write_text("the user's own file")
    before = snapshot(run_copy)
    code, _, err = _train(config, run_copy)  # refused (no --resume): it must change nothing
    assert_one_line(err, code, 2, "unfinished run")
    assert snapshot(run_copy) == before
    code, _, err = _train(config, run_copy, "--resume")
    assert code == 0, err
    assert not any(orphan.exists() for orphan in orphans)
    assert (run_copy / "notes.tmp").read_text() == "the user's own file"
    assert (run_copy / "results.json").is_file()


def _train_in_child(config: str, out: str) -> int:
    from nni_dynamic_supernet import cli
    return cli.main(["train", "--config", config, "--out", out])


def test_two_runs_into_one_folder_at_once_one_is_refused(tmp_path: Path) -> None:
    # Both start together; the claim (lock, then the finished-run check) lets exactly one of them write.
    config = write_recipe(tmp_path / "tiny.yaml", output={"diagnostics": False},
                          training={"epochs": 3, "max_steps_per_epoch": 2, "num_threads": 1})
    out = tmp_path / "both"
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_exit_with, args=(_train_in_child, str(config), str(out), str(tmp_path / f"e{i}")))
                for i in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=300)
    codes = sorted(c.exitcode for c in children)
    assert codes == [0, 2], codes
    errs = [(tmp_path / f"e{i}").read_text() for i in range(2)]
    refused = [e for e, c in zip(errs, [c.exitcode for c in children]) if c][0]
    assert "is writing into this directory" in refused or "finished run" in refused, refused
    results = json.loads((out / "results.json").read_text())
    assert results["checkpoint"] == str((out / "supernet.pt").resolve())
    assert_nothing_half_written(out)


def _exit_with(fn, config: str, out: str, err_path: str) -> None:  # type: ignore[no-untyped-def]
    with open(err_path, "w") as err:
        sys.stderr = err
        code = fn(config, out)
        err.flush()
    os._exit(code)


def test_search_evaluate_rank_export_keep_earlier_outputs(finished_run: Path, tmp_path: Path) -> None:
    ckpt = finished_run / "supernet.pt"
    best = finished_run / "best_arch.json"
    arch = json.loads(best.read_text())
    (tmp_path / "archs.json").write_text(json.dumps([arch]))
    out = tmp_path / "s"
    assert run_nds(["search", "--checkpoint", ckpt, "--out", out])[0] == 0
    before = snapshot(out)
    code, _, err = run_nds(["search", "--checkpoint", ckpt, "--out", out])
    assert_one_line(err, code, 2, "--overwrite")
    assert snapshot(out) == before
    assert run_nds(["search", "--checkpoint", ckpt, "--out", out, "--overwrite"])[0] == 0

    preds = tmp_path / "preds.json"
    assert run_nds(["evaluate", "--checkpoint", ckpt, "--archs", tmp_path / "archs.json", "--out", preds])[0] == 0
    before = preds.read_bytes()
    code, _, err = run_nds(["evaluate", "--checkpoint", ckpt, "--archs", tmp_path / "archs.json", "--out", preds])
    assert_one_line(err, code, 2, "--overwrite")
    assert preds.read_bytes() == before

    exported = tmp_path / "exported"
    assert run_nds(["export", "--checkpoint", ckpt, "--arch", best, "--out", exported])[0] == 0
    before = snapshot(exported)
    code, _, err = run_nds(["export", "--checkpoint", ckpt, "--arch", best, "--out", exported])
    assert_one_line(err, code, 2, "--overwrite")
    assert snapshot(exported) == before
    assert_nothing_half_written(tmp_path)


def test_search_into_a_folder_a_run_is_writing_is_refused(finished_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    lock = DirectoryLock(out, command="nds train").acquire()
    try:
        code, _, err = run_nds(["search", "--checkpoint", finished_run / "supernet.pt", "--out", out])
        assert_one_line(err, code, 2, f"PID {os.getpid()}")
    finally:
        lock.release()
    assert list(out.iterdir()) == []


def test_the_trial_runner_resumes_only_its_own_recipe(run_copy: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    from nni_dynamic_supernet import trial
    (run_copy / "results.json").unlink()
    before = snapshot(run_copy)
    other = write_recipe(tmp_path / "other.yaml", strategy="spos_calr", output={"diagnostics": False})
    capsys.readouterr()
    code = trial.main(["--config", str(other), "--out", str(run_copy)])
    assert_one_line(capsys.readouterr().err, code, 2, "another recipe", "strategy", prefix="trial: ")
    assert snapshot(run_copy) == before
