"""What a run reports while it trains (intermediate dicts, log lines) and at the end (the final dict).

The web UI page of the docs (docs/webui.rst) promises: intermediate results only at probe epochs, whose
``default`` is the final ``default``'s measure (the last one equals it when the probe set is the
whole table); ``best_true_acc`` or the reason it is missing; and a log line at least every 15 s
of wall time during search and ranking.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import torch

from nni_dynamic_supernet import progress
from nni_dynamic_supernet.pipeline import final_metrics, run_recipe
from nni_dynamic_supernet.ranking import GroundTruth
from nni_dynamic_supernet.recipe import Recipe
from nni_dynamic_supernet.search.evaluate import SubnetEvaluator

from .tiny_recipe import tiny_recipe

torch.set_num_threads(1)

EMBEDDED_TABLE = Path(progress.__file__).parent / "_resources" / "digits_hard_nb201.json"
WEB_UI_DOC = Path(__file__).resolve().parents[1] / "docs" / "webui.rst"


class _Reporter:
    def __init__(self) -> None:
        self.intermediates: list[dict] = []
        self.finals: list[dict] = []

    def intermediate(self, metrics: dict) -> None:
        self.intermediates.append(dict(metrics))

    def final(self, metrics: dict) -> None:
        self.finals.append(dict(metrics))


def _table(tmp: Path, n: int = 16) -> Path:
    full = GroundTruth.load(EMBEDDED_TABLE)
    small = GroundTruth(full.space, dict(full.space_kwargs), full.dataset, full.metric, dict(full.recipe),
                        list(full.seeds), full.entries[:n], source=f"embedded[:{n}]")
    return small.save(tmp / "table.json")


def _recipe(tmp: Path, **ranking) -> Recipe:
    raw = tiny_recipe(training={"epochs": 4, "max_steps_per_epoch": 1},
                      search={"searcher": "evolution", "max_evaluations": 6, "population": 3, "generations": 2,
                              "select_num": 2, "mutation_num": 2, "crossover_num": 1},
                      ranking={"ground_truth": str(_table(tmp)), "headline": "kendall_tau", "probe_every": 2,
                               **ranking},
                      output={"diagnostics": False})
    return Recipe.from_dict(raw)


@pytest.mark.parametrize("probe_archs", [16, 5])
def test_intermediate_default_is_measured_and_ends_at_the_final_value(tmp_path: Path, probe_archs: int) -> None:
    reporter = _Reporter()
    results = run_recipe(_recipe(tmp_path, probe_archs=probe_archs), tmp_path / "out", reporter=reporter)
    # Probe epochs 1, 2 and 4 (the first, every probe_every-th, the last); epoch 3 was not measured.
    assert [r["epoch"] for r in reporter.intermediates] == [1, 2, 4]
    assert [r["probe_size"] for r in reporter.intermediates] == [probe_archs, probe_archs, 16]
    assert all(r["default"] == r["kendall_tau"] for r in reporter.intermediates)
    # The last intermediate `default` is the final one: tau of the same supernet on the whole table.
    (final,) = reporter.finals
    assert reporter.intermediates[-1]["default"] == final["default"] == results["ranking"]["kendall_tau"]
    history = results["training"]["history"]
    assert len(history) == 4 and "kendall_tau" not in history[2]  # nothing carried into unmeasured epochs
    # best_true_acc is either there or missing with its reason, never silently absent.
    assert ("best_true_acc" in final) != ("best_true_acc_missing" in final), final
    # The docs describe both series, key by key.
    web_ui = WEB_UI_DOC.read_text().split("What a trial reports", 1)[1].split(".. image::", 1)[0]
    for key in set(reporter.intermediates[-1]) | set(final) | {"best_true_acc", "best_true_acc_missing"}:
        assert f"``{key}``" in web_ui, key


def test_best_true_acc_missing_names_the_reason() -> None:
    base = {"default": 0.5, "best": {"accuracy": 40.0}, "best_arch": {"a": "x"}}
    missing = final_metrics({**base, "best": {"accuracy": 40.0, "true_accuracy": None,
                                              "true_accuracy_missing": "not in the table"}})
    assert "best_true_acc" not in missing and missing["best_true_acc_missing"] == "not in the table"
    known = final_metrics({**base, "best": {"accuracy": 40.0, "true_accuracy": 61.5}})
    assert known["best_true_acc"] == 61.5 and "best_true_acc_missing" not in known


def test_search_and_ranking_log_a_line_at_least_every_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    # Scaled down: a 0.5 s interval and evaluations slowed to 0.1 s stand for 10 s and a loaded machine.
    interval, slow = 0.5, 0.1
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", interval)
    evaluate = SubnetEvaluator.evaluate
    longest = [0.0]

    def slow_evaluate(self: SubnetEvaluator, arch: dict) -> dict:
        started = time.monotonic()
        time.sleep(slow)
        out = evaluate(self, arch)
        longest[0] = max(longest[0], time.monotonic() - started)
        return out

    monkeypatch.setattr(SubnetEvaluator, "evaluate", slow_evaluate)
    monkeypatch.setattr(progress, "resolve", lambda enabled: False)  # quiet, as in an nnictl trial
    recipe = _recipe(tmp_path, probe_archs=16)
    caplog.set_level(logging.INFO, logger="nni_dynamic_supernet")
    run_recipe(recipe, tmp_path / "out", reporter=_Reporter())
    records = [r for r in caplog.records if r.name.startswith("nni_dynamic_supernet")]
    messages = [r.getMessage() for r in records]
    first = next(i for i, m in enumerate(messages) if m.startswith("epoch 4/4"))
    tail = records[first:]
    assert any(m.startswith("search: generation 1/2") for m in messages), messages
    assert any(m.startswith("probe: ") for m in messages[:first]), messages  # the 16-arch probes took > interval
    gaps = [b.created - a.created for a, b in zip(tail, tail[1:])]
    # A line is due once the interval has passed; the evaluation running then, and the stage's set-up
    # between two counted evaluations (saving the supernet, building the searcher), may add their time.
    assert gaps and max(gaps) <= interval + 2 * longest[0] + 1.5, list(zip(gaps, messages[first + 1:]))
