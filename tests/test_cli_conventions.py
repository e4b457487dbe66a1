"""The conventions NNI, Lightning and timm users expect of ``nds``: ``--version``, ``python -m``, ``nds config
show`` and ``OUT/recipe.yaml``, "did you mean", Lightning's precision names, help and defaults on every option,
the smoke profile, the loggers and their hyperparameters, and ``nds templates copy``."""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import nni_dynamic_supernet
from nni_dynamic_supernet import cli
from nni_dynamic_supernet.cli import build_parser
from nni_dynamic_supernet.errors import ConfigError
from nni_dynamic_supernet.recipe import SMOKE_PROFILE, VALUE_ALIASES, Recipe, load_recipe
from nni_dynamic_supernet.registry import list_strategies

from .tiny_recipe import write_recipe


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps sub-commands only on this private action
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _every_parser() -> list[tuple[str, argparse.ArgumentParser]]:
    """``(command, parser)`` for ``nds`` and every sub-command at any depth."""
    found, stack = [], [("nds", build_parser())]
    while stack:
        name, parser = stack.pop()
        found.append((name, parser))
        stack += [(f"{name} {sub}", p) for sub, p in _subparsers(parser).items()]
    return found


# ---------------------------------------------------------------------------------------------- the command
def test_version_is_the_packages(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"nds {nni_dynamic_supernet.__version__}"


@pytest.mark.parametrize("module", ["nni_dynamic_supernet", "nni_dynamic_supernet.cli"])
def test_python_dash_m_runs_nds(module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"nds {nni_dynamic_supernet.__version__}"
    bad = subprocess.run([sys.executable, "-m", module, "train"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("nds: error: train:") and len(bad.stderr.splitlines()) == 1


def test_every_command_and_option_has_help() -> None:
    parsers = _every_parser()
    assert {"nds config show", "nds templates copy", "nds bench build", "nds search", "nds rank"} <= {
        name for name, _ in parsers}
    missing = []
    for name, parser in parsers:
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):  # each sub-command's one-line summary
                missing += [f"{name} {c.dest}" for c in action._choices_actions if not (c.help or "").strip()]
            elif not (action.help or "").strip():
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, "options without help: " + ", ".join(missing)


def test_every_option_with_a_default_shows_it() -> None:
    for name, parser in _every_parser():
        help_text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if action.default in (None, False, argparse.SUPPRESS) or action.nargs == 0 or action.required:
                continue
            if not action.option_strings and action.nargs not in ("?", "*"):
                continue
            shown = " ".join(map(str, action.default)) if isinstance(action.default, list) else str(action.default)
            assert f"default: {shown}" in help_text or "(default:" in (action.help or ""), (
                f"{name} {action.option_strings}: the default {shown!r} is not shown")
    rank = dict(_every_parser())["nds rank"].format_help()
    assert "(default: 400)" in " ".join(rank.split())


def test_every_table_option_defaults_to_the_default_recipes_table() -> None:
    from nni_dynamic_supernet.ranking.tables import DEFAULT_TABLE, TABLES, table_for_dataset
    assert table_for_dataset(load_recipe().data.name).name == DEFAULT_TABLE == "v2_26"
    parsers = dict(_every_parser())
    build = next(a for a in parsers["nds bench build"]._actions if a.dest == "table")
    assert build.default == DEFAULT_TABLE
    for command in ("nds bench info", "nds bench compare", "nds bench sweep"):
        assert DEFAULT_TABLE in " ".join(parsers[command].format_help().split()), command
    # Without --archs / --seeds a build has the shipped table's size.
    assert (TABLES["v2_26"].archs, TABLES["v2_26"].seeds) == (150, (0, 1, 2, 3))
    assert (TABLES["v1"].archs, TABLES["v1"].seeds) == (160, (0, 1))


def test_bench_build_defaults_to_v2_26_with_its_size(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import inspect

    from nni_dynamic_supernet.bench import build, info
    assert inspect.signature(build.build_ground_truth).parameters["table"].default == "v2_26"  # the Python API too
    calls: list = []
    monkeypatch.setattr(build, "build_ground_truth", lambda *a, **k: calls.append(k))
    monkeypatch.setattr(info, "bench_info", lambda path: "table info")
    assert cli.main(["bench", "build", "--out", str(tmp_path / "t.json"), "--quiet"]) == 0
    assert calls[0]["table"] == "v2_26" and calls[0]["n_archs"] is None and calls[0]["seeds"] is None


# ---------------------------------------------------------------------------------------------- the recipe
def _show(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    capsys.readouterr()
    assert cli.main(["config", "show", *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("argv, overrides", [
    ([], {}),
    (["--smoke"], dict(SMOKE_PROFILE)),
    (["--strategy", "fairnas_calr_ms", "--set", "training.lr=0.1"], {"strategy": "fairnas_calr_ms", "training.lr": 0.1}),
    (["--smoke", "--set", "training.epochs=3"], {**SMOKE_PROFILE, "training.epochs": 3}),
], ids=["default", "smoke", "strategy-and-set", "set-wins-over-smoke"])
def test_config_show_prints_the_recipe_train_would_run(argv: list, overrides: dict, capsys: pytest.CaptureFixture,
                                                       tmp_path: Path) -> None:
    text = _show(argv, capsys)
    expected = load_recipe(None, overrides)
    assert yaml.safe_load(text) == expected.to_dict()  # every field, as the run would use it
    (tmp_path / "shown.yaml").write_text(text)
    assert load_recipe(tmp_path / "shown.yaml") == expected  # and it runs as it is shown


def test_the_yaml_of_every_preset_and_template_reads_back_equal(tmp_path: Path) -> None:
    templates = sorted((Path(__file__).resolve().parents[1] / "config_templates").glob("*.yaml"))
    assert templates
    for path in [None, *templates]:
        for strategy in (None, *list_strategies()):
            try:
                recipe = load_recipe(path, {"strategy": strategy} if strategy else {})
            except ConfigError:  # a template whose searcher or space a preset cannot use
                continue
            (tmp_path / "r.yaml").write_text(recipe.to_yaml(("a header",)))
            assert load_recipe(tmp_path / "r.yaml") == recipe, (path, strategy)


def test_the_smoke_profile_of_every_template_is_a_valid_recipe(capsys: pytest.CaptureFixture) -> None:
    templates = sorted((Path(__file__).resolve().parents[1] / "config_templates").glob("*.yaml"))
    for path in templates:
        shown = yaml.safe_load(_show(["--smoke", "--config", str(path)], capsys))
        assert shown["training"]["epochs"] == 2 and shown["search"]["max_evaluations"] == 10, path
        assert shown["ranking"]["probe_archs"] == 0, path
    gm = yaml.safe_load(_show(["--smoke", "--config", "config_templates/gm_spos.yaml"], capsys))
    assert gm["training"]["split_epochs"] is None  # [20, 40] of the template do not fit in 2 epochs
    kept = yaml.safe_load(_show(["--smoke", "--config", "config_templates/gm_spos.yaml", "--set",
                                 "training.split_epochs=[0, 1]"], capsys))
    assert kept["training"]["split_epochs"] == [0, 1]


def test_smoke_profile_is_what_the_docs_say() -> None:
    assert SMOKE_PROFILE == {"training.epochs": 2, "ranking.probe_archs": 0, "search.max_evaluations": 10}
    help_text = " ".join(dict(_every_parser())["nds train"].format_help().split())
    assert all(f"{k}={v}" in help_text for k, v in SMOKE_PROFILE.items())


@pytest.mark.parametrize("typed, suggestion", [
    ("training.epoch=2", "did you mean `training.epochs`?"),
    ("trainng.epochs=2", "did you mean `training.epochs`?"),
    ("epochs=2", "did you mean `training.epochs`?"),
    ("seeds=1", "did you mean `seed`?"),
    ("search.populaton=3", "did you mean `search.population`?"),
    ("training.optimizer=adamm", "did you mean `adam`?"),
])
def test_a_mistyped_key_gets_one_short_line_with_the_suggestion(typed: str, suggestion: str,
                                                               capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert cli.main(["config", "show", "--set", typed]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and suggestion in lines[0] and typed.split("=")[0] in lines[0], lines
    assert "allowed:" not in lines[0] and len(lines[0]) < 300


def test_lightning_precision_names_mean_the_recipes_modes() -> None:
    for name, internal in VALUE_ALIASES["training.precision"].items():
        assert Recipe.from_dict({}, {"training.precision": name, "training.accelerator": "gpu"}).training.precision \
            == internal
    assert VALUE_ALIASES["training.precision"] == {"32-true": "32", "bf16-mixed": "bf16", "16-mixed": "16"}
    assert Recipe.from_dict({"training": {"precision": 32}}).training.precision == "32"  # YAML's number
    for unsupported in ("64", "64-true", "bf16-true", "16-true"):
        with pytest.raises(ConfigError, match="training.precision.*float32"):
            Recipe.from_dict({}, {"training.precision": unsupported})
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):  # the alias goes through the same checks
        Recipe.from_dict({}, {"training.precision": "16-mixed", "training.accelerator": "cpu"})


def test_the_config_reference_lists_the_precision_aliases_and_the_loggers() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))
    import nds_reference
    text = nds_reference.config_reference_rst()
    precision = text[text.index(".. confval:: training.precision"):][:600]
    assert "``bf16-mixed`` (= ``bf16``)" in precision and "``32-true`` (= ``32``)" in precision
    logger = text[text.index(".. confval:: output.logger"):][:400]
    assert all(f"``{name}``" in logger for name in ("tensorboard", "csv", "wandb", "mlflow", "none"))
    cli_text = nds_reference.cli_reference_rst()
    assert "``nds config show``" in cli_text and "``nds templates copy``" in cli_text and "--smoke" in cli_text


@pytest.mark.parametrize("logger, tensorboard, expected", [
    ("tensorboard", None, ["tensorboard"]), ("tensorboard", False, []), ("csv", None, ["csv"]),
    ("csv", True, ["csv", "tensorboard"]), ("csv", False, ["csv"]), ("none", None, []), ("none", True, ["tensorboard"]),
])
def test_output_tensorboard_amends_output_logger(logger: str, tensorboard: object, expected: list) -> None:
    recipe = Recipe.from_dict({"output": {"logger": logger, "tensorboard": tensorboard}})
    assert recipe.output.loggers() == expected


# ---------------------------------------------------------------------------------------------- a run's files
@pytest.fixture(scope="module")
def csv_and_tb_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run logging to CSV and TensorBoard, with figures."""
    root = tmp_path_factory.mktemp("loggers")
    config = write_recipe(root / "tiny.yaml", seed=5, training={"epochs": 2}, output={"tensorboard": True,
                                                                                     "logger": "csv"})
    assert cli.main(["train", "--config", str(config), "--out", str(root / "run")]) == 0
    return root / "run"


def test_a_run_writes_its_resolved_recipe_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nni_dynamic_supernet import pipeline
    config = write_recipe(tmp_path / "tiny.yaml")
    out = tmp_path / "run"
    seen = []
    original = pipeline.train

    def train(run, out_dir, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((Path(out_dir) / "recipe.yaml").is_file())
        return original(run, out_dir, **kwargs)

    monkeypatch.setattr(pipeline, "train", train)
    assert cli.main(["train", "--config", str(config), "--out", str(out), "--strategy", "spos_calr"]) == 0
    assert seen == [True]
    results = json.loads((out / "results.json").read_text())
    assert yaml.safe_load((out / "recipe.yaml").read_text()) == results["recipe"]
    assert load_recipe(out / "recipe.yaml").strategy == "spos_calr"


def test_an_nnictl_trial_writes_its_resolved_recipe(tmp_path: Path) -> None:
    from nni_dynamic_supernet import trial
    config = write_recipe(tmp_path / "tiny.yaml")
    assert trial.main(["--config", str(config), "--out", str(tmp_path / "trial"), "--set", "seed=4"]) == 0
    recipe = yaml.safe_load((tmp_path / "trial" / "recipe.yaml").read_text())
    assert recipe["seed"] == 4 and recipe == json.loads((tmp_path / "trial" / "results.json").read_text())["recipe"]


def test_hparams_are_the_flattened_recipe_and_the_final_metrics(csv_and_tb_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2
    hparams = yaml.safe_load((csv_and_tb_run / "tensorboard" / "hparams.yaml").read_text())
    assert hparams["strategy"] == "spos" and hparams["seed"] == 5 and hparams["training.epochs"] == 2
    assert hparams["space.kwargs.channels"] == 2 and hparams["output.logger"] == "csv"
    events = EventAccumulator(str(csv_and_tb_run / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["strategy"].string_value == "spos"
    assert start.session_start_info.hparams["seed"].number_value == 5
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert "final/default" in metrics and metrics <= set(events.Tags()["scalars"])
    assert "epoch/loss" in events.Tags()["scalars"]


def test_the_csv_logger_has_the_epochs_the_final_metrics_and_the_recipe(csv_and_tb_run: Path) -> None:
    import csv
    folder = csv_and_tb_run / "csv" / "version_0"
    rows = list(csv.DictReader((folder / "metrics.csv").open()))
    assert [r["epoch/loss"] != "" for r in rows].count(True) == 2
    assert float(rows[-1]["final/default"]) == json.loads((csv_and_tb_run / "results.json").read_text())["default"]
    assert yaml.safe_load((folder / "hparams.yaml").read_text())["seed"] == 5


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_a_logger_whose_package_is_missing_is_one_line_before_any_work(name: str, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    import importlib.util
    if importlib.util.find_spec(name) is not None:
        pytest.skip(f"{name} is installed here")
    config = write_recipe(tmp_path / "tiny.yaml")
    capsys.readouterr()
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "run"),
                     "--set", f"output.logger={name}"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("nds: error: output.logger=") and f"pip install {name}" in line
    assert not (tmp_path / "run").exists()


def test_the_first_line_of_a_run_speaks_to_the_user(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = write_recipe(tmp_path / "tiny.yaml")
    with caplog.at_level(logging.INFO, logger="nni_dynamic_supernet"):
        assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    infos = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("nni_dyn")]
    assert infos[0].startswith("training spos (seed 0) on nas_bench_201 / digits_hard for 1 epochs")
    assert not any("ComplexityModel" in line for line in infos)


# ---------------------------------------------------------------------------------------------- inputs
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("archs")
    config = write_recipe(root / "tiny.yaml", output={"diagnostics": False})
    assert cli.main(["train", "--config", str(config), "--out", str(root / "run")]) == 0
    return root / "run"


def test_evaluate_takes_one_arch_a_list_and_the_files_of_a_run(trained: Path, tmp_path: Path) -> None:
    best = json.loads((trained / "best_arch.json").read_text())
    (tmp_path / "one.json").write_text(json.dumps(best))
    (tmp_path / "list.json").write_text(json.dumps([best, best]))
    (tmp_path / "search.json").write_text(json.dumps({"searcher": "random", "top": [{"arch": best, "accuracy": 1.0}]}))
    predictions = {}
    for name, path in (("one", tmp_path / "one.json"), ("list", tmp_path / "list.json"),
                       ("best_arch", trained / "best_arch.json"), ("results", trained / "results.json"),
                       ("search", tmp_path / "search.json")):
        out = tmp_path / f"{name}.preds.json"
        assert cli.main(["evaluate", "--checkpoint", str(trained / "supernet.pt"), "--archs", str(path),
                         "--out", str(out)]) == 0, name
        predictions[name] = json.loads(out.read_text())
    assert predictions["one"] == predictions["best_arch"] == predictions["results"] == predictions["search"] \
        == predictions["list"][:1]
    assert predictions["one"][0]["arch"] == best


def test_rank_takes_a_table_name(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from nni_dynamic_supernet.ranking.tables import TABLES
    table = json.loads(TABLES["v1"].path.read_text())
    preds = [{"arch": e["arch"], "predicted_accuracy": float(i % 7)} for i, e in enumerate(table["entries"][:20])]
    (tmp_path / "p.json").write_text(json.dumps(preds))
    reports = []
    for truth in ("v1", str(TABLES["v1"].path)):
        capsys.readouterr()
        assert cli.main(["rank", "--predictions", str(tmp_path / "p.json"), "--ground-truth", truth,
                         "--no-baselines"]) == 0
        reports.append(json.loads(capsys.readouterr().out))
    assert reports[0] == reports[1] and reports[0]["n"] == 20


def test_templates_copy_writes_the_examples_and_never_replaces_a_file(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    from nni_dynamic_supernet.templates import template_files
    dest = tmp_path / "examples here"
    assert cli.main(["templates", "copy", str(dest)]) == 0
    assert "nnictl create --config examples/spos_calr.yml" in capsys.readouterr().out
    assert sorted(p.relative_to(dest) for p in dest.rglob("*") if p.is_file()) == template_files()
    (dest / "examples" / "spos_calr.yml").write_text("# my edit\n")
    assert cli.main(["templates", "copy", str(dest)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("nds: error: DIR=") and "--overwrite" in line
    assert (dest / "examples" / "spos_calr.yml").read_text() == "# my edit\n"
    assert cli.main(["templates", "copy", str(dest), "--overwrite"]) == 0
    assert (dest / "examples" / "spos_calr.yml").read_text() != "# my edit\n"


def test_ci_runs_the_version_and_the_smoke_profile_from_the_installed_wheel() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    from_the_wheel = ci[ci.index(". .venv-wheel/bin/activate"):]
    for command in ("nds --version", "python -m nni_dynamic_supernet --version", "nds train --smoke",
                    "nds templates copy"):
        assert f"\n    {command}" in from_the_wheel, command
    assert "PHASE 2" not in ci
