"""Bad input: every case stops ``nds`` with one line that names the field and the fix, a non-zero
exit status, and no partial output file.

Each row of :data:`CASES` is ``(id, argv, field)``: the command line (``{ckpt}``, ``{tmp}`` and
``{out}`` are filled in), and the field or input the error line must name.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nni_dynamic_supernet import cli

from .error_lines import assert_one_clear_error_line
from .tiny_recipe import write_recipe



def _train(*sets: str) -> list[str]:
    argv = ["train", "--config", "{tmp}/tiny.yaml", "--out", "{out}"]
    for s in sets:
        argv += ["--set", s]
    return argv


CASES = [
    # recipe: names
    ("unknown-strategy", _train("strategy=nope"), "strategy"),
    ("unknown-space", _train("space.name=nope"), "space.name"),
    ("unknown-dataset", _train("data.name=nope"), "data.name"),
    ("unknown-searcher", _train("search.searcher=nope"), "search.searcher"),
    ("unknown-lr-policy", _train("training.lr_policy=nope"), "training.lr_policy"),
    ("unknown-path-sampler", _train("training.path_sampler=nope"), "training.path_sampler"),
    ("unknown-optimizer-state", _train("training.optimizer_state=nope"), "training.optimizer_state"),
    ("unknown-top-level-key", _train("nope=1"), "nope"),
    ("unknown-field", _train("training.nope=1"), "training.nope"),
    ("unknown-ms-label", _train("strategy=spos_ms", "training.ms_labels=[nope]"), "training.ms_labels"),
    ("unknown-split-label", _train("strategy=fsnas", "training.split_label=nope"), "training.split_label"),
    # recipe: types and ranges
    ("epochs-not-a-number", _train("training.epochs=abc"), "training.epochs"),
    ("epochs-negative", _train("training.epochs=-1"), "training.epochs"),
    ("batch-size-zero", _train("data.batch_size=0"), "data.batch_size"),
    ("eval-batch-size-negative", _train("data.eval_batch_size=-5"), "data.eval_batch_size"),
    ("lr-negative", _train("training.lr=-0.1"), "training.lr"),
    ("lr-nan", _train("training.lr=.nan"), "training.lr"),
    ("momentum-negative", _train("training.momentum=-0.5"), "training.momentum"),
    ("gamma-min-above-max", _train("strategy=spos_calr", "training.gamma_min=5", "training.gamma_max=2"),
     "training.gamma_min"),
    ("probe-every-zero", _train("ranking.probe_every=0"), "ranking.probe_every"),
    ("seed-negative", _train("seed=-3"), "seed"),
    ("val-fraction-one", _train("data.val_fraction=1.0"), "data.val_fraction"),
    ("select-above-population", _train("search.select_num=99", "search.population=4"), "search.select_num"),
    ("constraint-min-above-max", _train("search.constraint_min=10", "search.constraint_max=1"),
     "search.constraint_min"),
    # impossible constraint and data that cannot work
    ("impossible-constraint", _train("search.constraint_max=1"), "search.constraint"),
    ("dataset-too-small", _train("data.train_subset=4"), "data.batch_size"),
    ("missing-dataset-root", _train("data.name=cifar10", "data.root={tmp}/no-such-dir", "data.download=false"),
     "data.root"),
    # files
    ("missing-config", ["train", "--config", "{tmp}/no-such.yaml", "--out", "{out}"], "--config"),
    ("config-not-yaml", ["train", "--config", "{tmp}/broken.yaml", "--out", "{out}"], "--config"),
    ("resume-without-checkpoint", _train() + ["--resume"], "--resume"),
    ("corrupt-checkpoint", ["search", "--checkpoint", "{tmp}/corrupt.pt", "--out", "{out}"], "--checkpoint"),
    ("truncated-checkpoint", ["search", "--checkpoint", "{tmp}/truncated.pt", "--out", "{out}"], "--checkpoint"),
    ("checkpoint-of-another-space", ["search", "--checkpoint", "{tmp}/other_space.pt", "--out", "{out}"],
     "--checkpoint"),
    ("not-our-checkpoint", ["search", "--checkpoint", "{tmp}/foreign.pt", "--out", "{out}"], "--checkpoint"),
    ("missing-checkpoint", ["search", "--checkpoint", "{tmp}/none.pt", "--out", "{out}"], "--checkpoint"),
    ("arch-unknown-label", ["evaluate", "--checkpoint", "{ckpt}", "--archs", "{tmp}/bad_label.json",
                            "--out", "{out}/preds.json"], "arch"),
    ("arch-unknown-choice", ["evaluate", "--checkpoint", "{ckpt}", "--archs", "{tmp}/bad_choice.json",
                             "--out", "{out}/preds.json"], "arch"),
    ("archs-not-an-arch", ["evaluate", "--checkpoint", "{ckpt}", "--archs", "{tmp}/not_list.json",
                           "--out", "{out}/preds.json"], "--archs"),
    ("ground-truth-disjoint", _train("ranking.ground_truth={tmp}/disjoint_table.json"), "ranking.ground_truth"),
    ("ground-truth-missing", _train("ranking.ground_truth={tmp}/no-table.json"), "ranking.ground_truth"),
    ("predictions-not-json", ["rank", "--predictions", "{tmp}/broken.yaml", "--ground-truth", "{tmp}/table.json",
                              "--out", "{out}/rank.json"], "--predictions"),
    # what a user types: the key echoed as typed; failures that must not leave an empty --out behind
    ("section-typo-echoed", _train("trainng.epochs=5"), "trainng.epochs=5"),
    ("batch-size-above-the-data", _train("data.batch_size=100000"), "data.batch_size"),
    ("channels-negative", _train("space.kwargs.channels=-3"), "space.kwargs.channels"),
    ("set-without-equals", _train("training.epochs"), "--set"),
]


def _rank(predictions: str = "{tmp}/preds.json", ground_truth: str = "{tmp}/table.json", *extra: str) -> list[str]:
    return ["rank", "--predictions", predictions, "--ground-truth", ground_truth, *extra]


def _evaluate(archs: str = "{tmp}/archs.json", checkpoint: str = "{ckpt}", out: str = "{out}/p.json") -> list[str]:
    return ["evaluate", "--checkpoint", checkpoint, "--archs", archs, "--out", out]


def _export(arch: str = "{tmp}/arch.json", checkpoint: str = "{ckpt}", out: str = "{out}") -> list[str]:
    return ["export", "--checkpoint", checkpoint, "--arch", arch, "--out", out]


def _bench_build(*extra: str) -> list[str]:
    return ["bench", "build", "--out", "{out}/table.json", "--archs", "1", "--seeds", "0", *extra]


# Every verb, every argument, each way it can be wrong: missing, wrong type, wrong path kind (a directory for
# a file, a file for a directory, a path under a file), unreadable (binary), empty. All fail before any work.
CASES += [
    ("no-verb", [], "command"),
    ("unknown-verb", ["nope"], "invalid choice"),
    # train
    ("train-out-missing", ["train", "--config", "{tmp}/tiny.yaml"], "--out"),
    ("train-out-is-a-file", ["train", "--config", "{tmp}/tiny.yaml", "--out", "{tmp}/file.txt"], "--out"),
    ("train-out-under-a-file", ["train", "--config", "{tmp}/tiny.yaml", "--out", "{tmp}/file.txt/run"], "--out"),
    ("train-config-is-a-directory", ["train", "--config", "{tmp}", "--out", "{out}"], "--config"),
    ("train-config-empty", ["train", "--config", "{tmp}/empty.yaml", "--out", "{out}"], "--config"),
    ("train-config-binary", ["train", "--config", "{tmp}/binary.bin", "--out", "{out}"], "--config"),
    ("train-config-not-a-mapping", ["train", "--config", "{tmp}/list.json", "--out", "{out}"], "--config"),
    ("train-config-without-value", ["train", "--out", "{out}", "--config"], "--config"),
    # search
    ("search-checkpoint-missing-arg", ["search", "--out", "{out}"], "--checkpoint"),
    ("search-checkpoint-is-a-directory", ["search", "--checkpoint", "{tmp}", "--out", "{out}"], "--checkpoint"),
    ("search-checkpoint-empty", ["search", "--checkpoint", "{tmp}/empty.json", "--out", "{out}"], "--checkpoint"),
    ("search-out-is-a-file", ["search", "--checkpoint", "{ckpt}", "--out", "{tmp}/file.txt"], "--out"),
    ("search-unknown-searcher", ["search", "--checkpoint", "{ckpt}", "--out", "{out}", "--searcher", "nope"],
     "--searcher"),
    ("search-bad-set", ["search", "--checkpoint", "{ckpt}", "--out", "{out}", "--set", "serch.x=1"], "serch.x"),
    # evaluate
    ("evaluate-archs-missing", _evaluate("{tmp}/none.json"), "--archs"),
    ("evaluate-archs-is-a-directory", _evaluate("{tmp}"), "--archs"),
    ("evaluate-archs-empty-file", _evaluate("{tmp}/empty.json"), "--archs"),
    ("evaluate-archs-not-a-list-of-archs", _evaluate("{tmp}/list.json"), "--archs"),
    ("evaluate-archs-binary", _evaluate("{tmp}/binary.bin"), "--archs"),
    ("evaluate-checkpoint-missing", _evaluate(checkpoint="{tmp}/none.pt"), "--checkpoint"),
    ("evaluate-checkpoint-empty", _evaluate(checkpoint="{tmp}/empty.json"), "--checkpoint"),
    ("evaluate-out-is-a-directory", _evaluate(out="{tmp}"), "--out"),
    ("evaluate-out-missing", _evaluate()[:-2], "--out"),
    # rank
    ("rank-bins-not-an-integer", _rank("{tmp}/preds.json", "{tmp}/table.json", "--bins", "abc"), "--bins"),
    ("rank-bins-zero", _rank("{tmp}/preds.json", "{tmp}/table.json", "--bins", "0"), "--bins"),
    ("rank-predictions-empty-list", _rank("{tmp}/empty_list.json"), "--predictions"),
    ("rank-predictions-missing", _rank("{tmp}/none.json"), "--predictions"),
    ("rank-ground-truth-is-a-directory", _rank("{tmp}/preds.json", "{tmp}"), "--ground-truth"),
    ("rank-ground-truth-empty", _rank("{tmp}/preds.json", "{tmp}/empty.json"), "--ground-truth"),
    ("rank-ground-truth-not-a-table", _rank("{tmp}/preds.json", "{tmp}/list.json"), "--ground-truth"),
    ("rank-out-is-a-directory", _rank("{tmp}/preds.json", "{tmp}/table.json", "--out", "{tmp}"), "--out"),
    # export
    ("export-arch-missing", _export(arch="{tmp}/none.json"), "--arch"),
    ("export-arch-not-a-mapping", _export(arch="{tmp}/list.json"), "--arch"),
    ("export-checkpoint-is-a-directory", _export(checkpoint="{tmp}"), "--checkpoint"),
    ("export-out-is-a-file", _export(out="{tmp}/file.txt"), "--out"),
    # plot
    ("plot-results-missing", ["plot", "{tmp}/none.json", "--out", "{out}"], "RESULTS"),
    ("plot-results-is-a-directory", ["plot", "{tmp}", "--out", "{out}"], "RESULTS"),
    ("plot-results-binary", ["plot", "{tmp}/binary.bin", "--out", "{out}"], "RESULTS"),
    ("plot-out-is-a-file", ["plot", "{tmp}/trained/results.json", "--out", "{tmp}/file.txt"], "--out"),
    ("plot-results-missing-arg", ["plot"], "RESULTS.json"),
    # bench build / info / compare
    ("bench-build-archs-zero", _bench_build("--archs", "0"), "--archs"),
    ("bench-build-workers-not-an-integer", _bench_build("--workers", "two"), "--workers"),
    ("bench-build-seed-negative", _bench_build("--seeds", "-1"), "--seeds"),
    ("bench-build-out-is-a-directory", ["bench", "build", "--out", "{tmp}"], "--out"),
    ("bench-build-out-missing", ["bench", "build"], "--out"),
    ("bench-info-table-missing", ["bench", "info", "--table", "{tmp}/none.json"], "--table"),
    ("bench-info-table-not-a-table", ["bench", "info", "--table", "{tmp}/list.json"], "--table"),
    ("bench-info-table-is-a-directory", ["bench", "info", "--table", "{tmp}"], "--table"),
    ("bench-compare-unknown-recipe", ["bench", "compare", "--recipes", "nope", "--out", "{out}"], "strategy"),
    ("bench-compare-config-missing", ["bench", "compare", "--recipes", "spos", "--config", "{tmp}/none.yaml",
                                      "--out", "{out}"], "--config"),
    ("bench-compare-config-empty", ["bench", "compare", "--recipes", "spos", "--config", "{tmp}/empty.yaml",
                                    "--out", "{out}"], "--config"),
    ("bench-compare-bad-set", ["bench", "compare", "--recipes", "spos", "--set", "trainng.epochs=1",
                               "--out", "{out}"], "trainng.epochs"),
    ("bench-compare-out-is-a-file", ["bench", "compare", "--recipes", "spos", "--out", "{tmp}/file.txt"], "--out"),
    ("bench-compare-seeds-not-integers", ["bench", "compare", "--recipes", "spos", "--seeds", "a",
                                          "--out", "{out}"], "--seeds"),
    ("bench-compare-workers-zero", ["bench", "compare", "--recipes", "spos", "--workers", "0", "--out", "{out}"],
     "--workers"),
    ("bench-no-subcommand", ["bench"], "bench_command"),
    ("bench-build-table-unknown", _bench_build("--table", "v3"), "--table"),
]

# The conventions of issue 34: "did you mean", Lightning's names, the loggers, config show, --smoke, the
# architecture and table inputs, templates copy.
CASES += [
    ("did-you-mean-field", _train("training.epoch=2"), "did you mean `training.epochs`"),
    ("did-you-mean-section", _train("trainng.epochs=2"), "did you mean `training.epochs`"),
    ("did-you-mean-top-level", _train("epochs=2"), "did you mean `training.epochs`"),
    ("did-you-mean-value", _train("training.optimizer=adamm"), "did you mean `adam`"),
    ("precision-64-true", _train("training.precision=64-true"), "training.precision"),
    ("precision-16-mixed-on-cpu", _train("training.precision=16-mixed", "training.accelerator=cpu"),
     "training.precision"),
    ("logger-unknown", _train("output.logger=nope"), "output.logger"),
    ("logger-wandb-not-installed", _train("output.logger=wandb"), "pip install wandb"),
    ("logger-mlflow-not-installed", _train("output.logger=mlflow"), "pip install mlflow"),
    ("smoke-with-a-typo", _train("training.epoch=1") + ["--smoke"], "training.epochs"),
    ("strategy-option-unknown", _train() + ["--strategy", "nope"], "strategy"),
    ("strategy-option-contradicts-set", _train("strategy=fairnas") + ["--strategy", "spos"], "--strategy"),
    ("config-no-subcommand", ["config"], "config_command"),
    ("config-show-typo", ["config", "show", "--set", "training.epoch=2"], "did you mean `training.epochs`"),
    ("config-show-config-missing", ["config", "show", "--config", "{tmp}/none.yaml"], "--config"),
    ("config-show-config-empty", ["config", "show", "--config", "{tmp}/empty.yaml"], "--config"),
    ("config-show-unknown-strategy", ["config", "show", "--strategy", "sposs"], "strategy"),
    ("evaluate-archs-results-without-best-arch", _evaluate("{tmp}/results_skipped_search.json"), "--archs"),
    ("evaluate-archs-empty-list", _evaluate("{tmp}/empty_list.json"), "--archs"),
    ("export-arch-list-of-two", _export(arch="{tmp}/two_archs.json"), "--arch"),
    ("rank-ground-truth-unknown-table-name", _rank("{tmp}/preds.json", "v3"), "--ground-truth"),
    ("templates-copy-missing-dir", ["templates", "copy"], "DIR"),
    ("templates-copy-into-a-file", ["templates", "copy", "{tmp}/file.txt"], "DIR"),
    ("templates-copy-over-a-users-file", ["templates", "copy", "{tmp}/copied"], "--overwrite"),
    ("templates-no-subcommand", ["templates"], "templates_command"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny trained checkpoint plus every broken file the cases point at."""
    tmp = tmp_path_factory.mktemp("bad_input")
    write_recipe(tmp / "tiny.yaml", output={"diagnostics": False})
    assert cli.main(["train", "--config", str(tmp / "tiny.yaml"), "--out", str(tmp / "trained")]) == 0
    ckpt = tmp / "trained" / "supernet.pt"
    payload = torch.load(ckpt, weights_only=True)
    data = ckpt.read_bytes()
    (tmp / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp / "corrupt.pt").write_bytes(b"\x00not a torch file" * 10)
    torch.save({"state_dict": {}}, tmp / "foreign.pt")
    other = dict(payload, search_space={**payload["search_space"], "extra_label": ["a", "b"]})
    torch.save(other, tmp / "other_space.pt")
    (tmp / "broken.yaml").write_text("training: [unclosed\n")
    labels = list(payload["search_space"])
    good = {k: v[0] for k, v in payload["search_space"].items()}
    (tmp / "bad_label.json").write_text(json.dumps([{**good, "no_such_label": 1}]))
    (tmp / "bad_choice.json").write_text(json.dumps([{**good, labels[0]: "no_such_op"}]))
    (tmp / "not_list.json").write_text(json.dumps({"arch": good}))
    table = json.loads((Path(cli.__file__).parents[1] / "_resources" / "digits_hard_nb201.json").read_text())
    (tmp / "table.json").write_text(json.dumps(table))
    for record in table["entries"]:
        record["arch"] = {f"other_{k}": v for k, v in record["arch"].items()}
    (tmp / "disjoint_table.json").write_text(json.dumps(table))
    (tmp / "file.txt").write_text("a regular file where a directory is expected\n")
    (tmp / "empty.yaml").write_text("")
    (tmp / "empty.json").write_text("")
    (tmp / "empty_list.json").write_text("[]")
    (tmp / "list.json").write_text("[1, 2]")
    (tmp / "binary.bin").write_bytes(b"\xff\xfe\x00\x81" * 64)
    (tmp / "archs.json").write_text(json.dumps([good]))
    (tmp / "arch.json").write_text(json.dumps(good))
    (tmp / "two_archs.json").write_text(json.dumps([good, good]))
    (tmp / "results_skipped_search.json").write_text(json.dumps({"format": "nds-results/1", "strategy": "spos"}))
    (tmp / "copied" / "examples").mkdir(parents=True)
    (tmp / "copied" / "examples" / "spos_calr.yml").write_text("# the user's own edit\n")
    (tmp / "preds.json").write_text(json.dumps([{"arch": table["entries"][0]["arch"], "predicted_accuracy": 50.0}]))
    return {"tmp": str(tmp), "ckpt": str(ckpt), "listing": sorted(p.name for p in tmp.iterdir())}


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 90
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("argv, field", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line_and_no_output(argv: list, field: str, files: dict, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    filled = [a.format(out=out, tmp=files["tmp"], ckpt=files["ckpt"]) for a in argv]
    capsys.readouterr()
    code = cli.main(filled)
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert_one_clear_error_line(err, "nds: error: ", field, code, out)
    assert sorted(p.name for p in Path(files["tmp"]).iterdir()) == files["listing"], "a fixture file was changed"
