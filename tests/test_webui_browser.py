"""The NNI web UI as users see it, in a real headless Chromium (Selenium + system chromium/chromedriver).

A tiny two-trial experiment runs through real nnictl on 127.0.0.1; the test then opens the
web UI's "Trials detail" page and checks what a user would look for: every trial's id and
status in the trial table, its final `default`, sorting by `default`, and the other metric
keys (`kendall_tau`, `best_acc`, `best_params`, `best_flops`) offered as columns. It also
checks that each trial's folder holds results.json, best_arch.json and the plots, and that
NNI's TensorBoard feature (started over REST, as the web UI's button does) serves every
trial's per-epoch and final scalars. A screenshot is saved to the test's tmp directory.

Skipped, with the reason, where Selenium, chromium or chromedriver is missing (`.ci/run`
installs them where it can).
"""
from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path
from typing import Any, Optional

import pytest

from .nnictl_helpers import (experiment_config, free_port, metrics, nnictl_experiment, rest, rest_send,
                             tiny_trial_template, wait_done)

REPO = Path(__file__).resolve().parents[1]
EMBEDDED_TABLE = REPO / "nni_dynamic_supernet" / "_resources" / "digits_hard_nb201.json"
METRIC_KEYS = ("kendall_tau", "best_acc", "best_params", "best_flops")


def _browser_paths() -> tuple[Optional[str], Optional[str], str]:
    """(chromium binary, chromedriver, reason when one is missing)."""
    if importlib.util.find_spec("selenium") is None:
        return None, None, "selenium is not installed (pip install -e '.[test]')"
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    if browser is None:
        return None, None, "no chromium binary (apt-get install chromium)"
    driver = shutil.which("chromedriver")
    if driver is None:
        return browser, None, "no chromedriver (apt-get install chromium-driver)"
    return browser, driver, ""


BROWSER, DRIVER, MISSING = _browser_paths()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=MISSING or "browser available")


def _chrome(width: int = 1600, height: int = 1000) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    options = Options()
    options.binary_location = BROWSER
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def _small_table(tmp: Path, n: int = 16) -> Path:
    """The first ``n`` entries of the embedded table: a ground truth that makes trials report ``kendall_tau``
    while their final ranking stays a few seconds long."""
    from nni_dynamic_supernet.ranking import GroundTruth
    full = GroundTruth.load(EMBEDDED_TABLE)
    small = GroundTruth(full.space, dict(full.space_kwargs), full.dataset, full.metric, dict(full.recipe),
                        list(full.seeds), full.entries[:n], source="embedded[:16]")
    return small.save(tmp / "small_table.json")


def _trial_dir(job: dict) -> Path:
    # logPath is "file://host:/path" in some NNI versions and a plain path in others.
    return Path(re.sub(r"^file://[^/]*:?", "", job["logPath"]))


_DEFAULT_HEADER = "//div[contains(@class,'ms-DetailsHeader-cell')][.//span[normalize-space(text())='Default metric']]"


def _sort_state(driver: Any) -> str:
    """``aria-sort`` of the `Default metric` header: none, ascending or descending."""
    from selenium.webdriver.common.by import By
    return driver.find_element(By.XPATH, _DEFAULT_HEADER).get_attribute("aria-sort") or "none"


def _check_nni_tensorboard(port: int, jobs: list) -> None:
    """Start TensorBoard as the web UI's button does, check it serves every trial's scalars, stop it."""
    import json
    import time
    import urllib.request
    task = rest_send(port, "tensorboard", "POST", {"trials": ",".join(j["trialJobId"] for j in jobs)})
    try:
        tags: dict = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(tags) < len(jobs):
            time.sleep(2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{task['port']}/data/plugin/scalars/tags",
                                            timeout=10) as resp:
                    tags = json.loads(resp.read().decode())
            except OSError:
                continue  # TensorBoard is still starting
        for job in jobs:
            run = next((r for r in tags if r.startswith(f"{job['sequenceId']}-{job['trialJobId']}")), None)
            assert run is not None, tags
            assert {"epoch/loss", "epoch/lr", "epoch/probe_acc", "epoch/kendall_tau", "final/default"} <= set(tags[run])
    finally:
        rest_send(port, f"tensorboard/{task['id']}", "DELETE")


def _default_column(driver: Any) -> list[float]:
    """The `default` values of the table rows, top to bottom."""
    from selenium.webdriver.common.by import By
    text = driver.find_element(By.CSS_SELECTOR, ".ms-DetailsList").text
    return [float(v) for v in re.findall(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?) \((?:FINAL|LATEST)\)", text)]


# Not marked slow although it takes one to three minutes (most of it the two nnictl trials): CI runs the
# default selection and must exercise it, like test_nnictl.py.
def test_web_ui_shows_trials_metrics_and_sorts_by_default(tmp_path: Path) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    template = tiny_trial_template(tmp_path, REPO, ground_truth=_small_table(tmp_path))
    config = experiment_config(tmp_path, REPO, template)
    port = free_port()
    with nnictl_experiment(config, port) as exp_id:
        status = wait_done(port, timeout=420)
        jobs = rest(port, "trial-jobs")
        assert status == "DONE", (status, [j.get("status") for j in jobs])
        ids = [j["trialJobId"] for j in jobs]
        assert len(ids) == 2 and all(j["status"] == "SUCCEEDED" for j in jobs), jobs

        for job in jobs:
            trial = _trial_dir(job)
            for name in ("results.json", "best_arch.json", "predicted_vs_true.png"):
                assert (trial / name).is_file(), (trial, name)
            # Where NNI 3.0's TensorBoard button looks (not under NNI_OUTPUT_DIR):
            # <exp root>/trials/<id>/output/tensorboard.
            tb = tmp_path / "nni-experiments" / exp_id / "trials" / job["trialJobId"] / "output" / "tensorboard"
            assert list(tb.glob("events.out.tfevents.*")), tb
        _check_nni_tensorboard(port, jobs)

        driver = _chrome()
        try:
            driver.get(f"http://127.0.0.1:{port}/detail")
            wait = WebDriverWait(driver, 60)
            # The React table renders after the REST calls return: wait for every trial id.
            for trial_id in ids:
                wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".ms-DetailsList"), trial_id))
            table = driver.find_element(By.CSS_SELECTOR, ".ms-DetailsList").text
            assert table.count("SUCCEEDED") == 2, table
            assert "Default metric" in table
            records = metrics(port)
            finals = {r["trialJobId"]: r["value"]["default"] for r in records if r["type"] == "FINAL"}
            assert set(finals) == set(ids), finals
            # The intermediate series ends on the final value: the same measure (docs/webui.rst),
            # taken on the whole table at the last epoch and reused by the final ranking.
            for trial_id in ids:
                series = [r["value"] for r in records if r["type"] == "PERIODICAL" and r["trialJobId"] == trial_id]
                assert [s["epoch"] for s in series] == [1, 2], series  # probe_every=1: every epoch was measured
                assert series[-1]["probe_size"] == 16 and series[-1]["default"] == finals[trial_id], \
                    (series[-1], finals[trial_id])
            web_ui = " ".join((REPO / "docs" / "webui.rst").read_text().split())
            assert "**Intermediate results**" in web_ui and "**The final result**" in web_ui
            assert "the last intermediate ``default`` equals the final ``default``" in web_ui
            shown = _default_column(driver)
            assert len(shown) == 2 and all(any(abs(v - f) < 1e-4 for f in finals.values()) for v in shown), \
                (shown, finals)

            # `default` is what the table sorts by: clicking its header orders the rows by it. The click can land
            # while the table re-renders (it polls the manager), so it is retried until the header reports a sort.
            direction = "none"
            for _ in range(5):
                header = _DEFAULT_HEADER + "//span[normalize-space(text())='Default metric']"
                driver.find_element(By.XPATH, header).click()
                try:
                    WebDriverWait(driver, 5).until(lambda d: _sort_state(d) != "none")
                except TimeoutException:
                    continue
                direction = _sort_state(driver)
                break
            assert direction in ("ascending", "descending"), direction
            shown = _default_column(driver)
            assert shown == sorted(shown, reverse=direction == "descending"), (direction, shown)

            # Trial detail: expanding a row shows the tuner's parameters of that trial.
            driver.find_elements(By.CSS_SELECTOR, ".ms-DetailsRow")[0].find_element(By.CSS_SELECTOR, "i.cursor").click()
            wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".ms-DetailsList"), "Parameters"))
            assert re.search(r"seed:\s*[01]", driver.find_element(By.CSS_SELECTOR, ".ms-DetailsList").text)

            # Every final metric key is offered as a column; show them and check the headers.
            driver.find_element(By.XPATH, "//button[.//*[normalize-space(text())='Add/Remove columns']]").click()
            dialog = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".ms-Dialog-main, .ms-Modal")))
            for key in METRIC_KEYS:
                assert f"{key} (metric)" in dialog.text, dialog.text
            assert "seed (space)" in dialog.text
            for label in [f"{k} (metric)" for k in METRIC_KEYS] + ["seed (space)"]:
                dialog.find_element(By.XPATH, f".//label[.//*[normalize-space(text())='{label}']]").click()
            dialog.find_element(By.XPATH, ".//button[.//*[normalize-space(text())='Save']]").click()
            wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, ".ms-Dialog-main")))
            headers = driver.find_element(By.CSS_SELECTOR, ".ms-DetailsHeader").text
            for key in METRIC_KEYS:
                assert key in headers, headers
            table = driver.find_element(By.CSS_SELECTOR, ".ms-DetailsList")
            driver.execute_script("arguments[0].scrollIntoView();", table)
            shot = tmp_path / "webui_trials.png"
            assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
            print(f"web UI screenshot: {shot}")
        finally:
            driver.quit()
