"""Screenshot of an nnictl experiment's trial table in headless Chromium (how docs/webui_spos_calr.png is made).

Usage, with the experiment's web UI open (``nnictl view ID --port PORT`` for a stopped one)::

    python docs/webui_screenshot.py --port PORT --out docs/webui_spos_calr.png \\
        --columns strategy seed kendall_tau best_acc best_params best_flops

The table is sorted by ``default`` (best first) and the listed tuner parameters
(``(space)``) and metric keys (``(metric)``) are added as columns. Needs ``selenium``
(the ``test`` extra) and the system ``chromium`` and ``chromedriver``.
"""
from __future__ import annotations

import argparse
import shutil
import time
from typing import Any, Sequence

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

DEFAULT_HEADER = "//div[contains(@class,'ms-DetailsHeader-cell')][.//span[normalize-space(text())='Default metric']]"


def chrome(width: int, height: int) -> Any:
    """A headless Chromium of the given window size."""
    options = Options()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    # The window size includes the (invisible) browser frame; fix the page's viewport itself.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


def sort_by_default(driver: Any, direction: str = "descending") -> None:
    """Click the `Default metric` header until the table is sorted in ``direction``."""
    for _ in range(6):
        if driver.find_element(By.XPATH, DEFAULT_HEADER).get_attribute("aria-sort") == direction:
            return
        driver.find_element(By.XPATH, DEFAULT_HEADER + "//span").click()
        time.sleep(1.0)
    raise RuntimeError(f"could not sort the table {direction} by default")


def add_columns(driver: Any, wait: WebDriverWait, keys: Sequence[str]) -> None:
    """Tick each key (``(space)`` or ``(metric)``) in *Add/Remove columns* and save."""
    driver.find_element(By.XPATH, "//button[.//*[normalize-space(text())='Add/Remove columns']]").click()
    dialog = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".ms-Dialog-main")))
    for key in keys:
        label = next((f"{key} ({kind})" for kind in ("space", "metric") if f"{key} ({kind})" in dialog.text), None)
        if label is None:
            raise RuntimeError(f"{key} is neither a tuner parameter nor a metric key of this experiment")
        dialog.find_element(By.XPATH, f".//label[.//*[normalize-space(text())='{label}']]").click()
    dialog.find_element(By.XPATH, ".//button[.//*[normalize-space(text())='Save']]").click()
    wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, ".ms-Dialog-main")))


def main() -> None:
    """Open the experiment's Trials detail page, set it up and save the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--columns", nargs="*", default=[])
    parser.add_argument("--size", type=int, nargs=2, default=[1600, 1000])
    parser.add_argument("--scroll-to-table", action="store_true", help="scroll the trial table to the top")
    args = parser.parse_args()
    driver = chrome(*args.size)
    try:
        driver.get(f"http://127.0.0.1:{args.port}/detail")
        wait = WebDriverWait(driver, 60)
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".ms-DetailsList"), "(FINAL)"))
        if args.columns:
            add_columns(driver, wait, args.columns)
        try:
            sort_by_default(driver)
        except (RuntimeError, TimeoutException) as exc:
            print(f"warning: {exc}")
        if args.scroll_to_table:
            driver.execute_script("document.querySelector('.ms-DetailsList').scrollIntoView({block: 'start'});"
                                  "window.scrollBy(0, -120);")
        time.sleep(1.5)
        driver.save_screenshot(args.out)
        print(args.out)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
