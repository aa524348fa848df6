"""The dashboard as users get it: `kubetune dashboard` on 127.0.0.1 and a free port, driven by headless
Chromium (Debian's chromium + chromedriver, selenium). Clicks through every page, asserts on the
text people read, downloads the patch zip, and keeps full-page screenshots in .artefacts/dashboard/."""

from __future__ import annotations

import io
import os
import time
import zipfile

import pytest
from analyzer import yamlio

from tests.support.browser import (chromium, click_label, have_browser, open_page, pick, running_dashboard, screenshot,
                           wait_text)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def _need_browser():
    missing = have_browser()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"missing for the browser test: {missing} (scripts/ensure-system-packages.sh installs them)")
        pytest.skip(f"missing for the browser test: {missing}")


def select_first_row(driver) -> None:
    """Tick the first row of the page's table (a canvas grid: click its selection cell)."""
    from selenium.webdriver.common.action_chains import ActionChains

    deadline = time.monotonic() + 60
    while not (grids := driver.find_elements("css selector", '[data-testid="stDataFrame"]')):
        assert time.monotonic() < deadline, "no table on the page"
        time.sleep(0.2)
    rect = grids[0].rect
    ActionChains(driver).move_to_element_with_offset(grids[0], -rect["width"] / 2 + 16, -rect["height"] / 2 + 52) \
        .click().perform()


def _metric(driver, label: str) -> str:
    from selenium.webdriver.common.by import By

    for m in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMetric"]'):
        lines = m.text.splitlines()
        if lines and lines[0].startswith(label):
            return lines[1]
    raise AssertionError(f"no metric {label!r}")


def test_click_through_every_page(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with running_dashboard() as url, chromium(downloads) as d:
        assert url.startswith("http://127.0.0.1:")
        d.get(url)
        wait_text(d, "Potential saving", timeout=180)
        assert "Monthly cost" in d.page_source and "Cost over time" in d.page_source
        screenshot(d, "overview")
        whole = _metric(d, "Allocated cost")
        click_label(d, "Last 24 hours")
        wait_text(d, "Allocated cost, last 24 hours")
        deadline = time.monotonic() + 30
        while _metric(d, "Allocated cost") == whole:
            assert time.monotonic() < deadline, "the window picker did not change the cost"
            time.sleep(0.1)

        open_page(d, "Workloads")
        wait_text(d, "Select a row")
        assert "60 of 60 workloads" in d.find_element("tag name", "body").text
        select_first_row(d)
        wait_text(d, "orange band")  # the chart's caption
        wait_text(d, "apiVersion")  # the patch, below the recommendations with their evidence
        assert "confidence" in d.find_element("tag name", "body").text
        screenshot(d, "workload-detail")
        pick(d, "Namespace", "ml-serving")
        deadline = time.monotonic() + 30
        while "60 of 60 workloads" in d.find_element("tag name", "body").text:
            assert time.monotonic() < deadline, "the namespace filter did not change the table"
            time.sleep(0.1)
        screenshot(d, "workloads")

        open_page(d, "GPUs")
        wait_text(d, "Removal and sharing candidates")
        assert "Idle GPU cost" in d.find_element("tag name", "body").text
        screenshot(d, "gpus")

        open_page(d, "Recommendations")
        wait_text(d, "Saving of the selection")
        everything = _metric(d, "Saving of the selection")
        pick(d, "Kind", "rightsize")
        deadline = time.monotonic() + 30
        while _metric(d, "Saving of the selection") == everything:
            assert time.monotonic() < deadline, "the kind filter did not change the total"
            time.sleep(0.1)
        screenshot(d, "recommendations")
        button = next(b for b in d.find_elements("css selector", '[data-testid="stDownloadButton"] button'))
        button.click()
        target = downloads / "kubetune-patches.zip"
        deadline = time.monotonic() + 30
        while not target.exists():
            assert time.monotonic() < deadline, "the zip was not downloaded"
            time.sleep(0.1)
        archive = zipfile.ZipFile(io.BytesIO(target.read_bytes()))
        top = yamlio.load(archive.read("kubetune-patches/kustomization.yaml"))  # components, one per namespace
        listed = [f"kubetune-patches/{c}/{p['path']}" for c in top["components"]
                  for p in yamlio.load(archive.read(f"kubetune-patches/{c}/kustomization.yaml"))["patches"]]
        assert listed and all(p in archive.namelist() for p in listed)
        kinds = {r["kind"] for r in yamlio.load(archive.read("kubetune-patches/recommendations.json"))["items"]}
        assert kinds == {"rightsize"}

        open_page(d, "Forecast quality")
        wait_text(d, "Run the backtest")
        next(b for b in d.find_elements("css selector", "button") if b.text.strip() == "Run the backtest").click()
        wait_text(d, "Loss per model", timeout=300)
        assert "kubetune-global" in d.find_element("tag name", "body").text
        screenshot(d, "forecast-quality")


def test_a_source_that_fails_to_load_still_starts(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{}")
    with running_dashboard(str(broken)) as url, chromium() as d:
        d.get(url)
        wait_text(d, f"Cannot load {broken}")
        screenshot(d, "load-failure")
        open_page(d, "Recommendations")
        wait_text(d, "Recommendations")
        wait_text(d, f"Cannot load {broken}")
