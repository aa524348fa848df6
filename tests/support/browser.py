"""A real dashboard in a real browser, for the browser test and benchmarks/dashboard_browser.py.

``running_dashboard`` starts `kubetune dashboard` (the CLI users run) on 127.0.0.1 and a free port
and stops it by PID; ``chromium`` drives Debian's headless Chromium through Debian's chromedriver
(selenium with an explicit Service path, so Selenium Manager downloads nothing). Screenshots go
to ``.artefacts/dashboard/`` (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.support.prometheus_server import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artefacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def have_browser() -> str | None:
    """None when Chromium, chromedriver and selenium are here; else what is missing."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip, the test extra)")
    return ", ".join(missing) or None


@contextlib.contextmanager
def running_dashboard(*args: str, env: dict[str, str] | None = None, timeout: float = 60.0) -> Iterator[str]:
    """`kubetune dashboard ARGS --port FREE` on 127.0.0.1; yields its URL once /_stcore/health answers."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="kubetune-dashboard-", suffix=".log", delete=False)
    cmd = [sys.executable, "-m", "kubetune", "dashboard", *args, "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"kubetune dashboard exited with {proc.returncode}: {Path(log.name).read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not answer within {timeout:.0f} s: {Path(log.name).read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        Path(log.name).unlink(missing_ok=True)


@contextlib.contextmanager
def chromium(download_dir: Path | None = None, width: int = 1400, height: int = 1000):
    """A headless Chromium WebDriver with a fresh profile (removed afterwards)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = Path(tempfile.mkdtemp(prefix="kubetune-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        if download_dir is not None:
            driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                   {"behavior": "allow", "downloadPath": str(download_dir)})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_text(driver, text: str, timeout: float = 60.0, gone: str | None = None) -> float:
    """Seconds until ``text`` is in the page's visible text (and Streamlit is no longer running)."""
    from selenium.webdriver.common.by import By

    t0 = time.perf_counter()
    while True:
        try:
            body = driver.find_element(By.TAG_NAME, "body").text
            running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
            if text in body and (gone is None or gone not in body) and not running:
                return time.perf_counter() - t0
        except Exception:  # noqa: BLE001 - the DOM is being replaced under us; look again
            pass
        if time.perf_counter() - t0 > timeout:
            raise AssertionError(f"{text!r} did not appear within {timeout:.0f} s")
        time.sleep(0.05)


def open_page(driver, title: str) -> None:
    """Click the sidebar navigation link ``title``."""
    from selenium.webdriver.common.by import By

    links = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNavLink"]')
    next(link for link in links if link.text.strip().splitlines()[-1] == title).click()


def click_label(driver, text: str) -> None:
    """Click the radio option / label whose visible text is ``text``."""
    from selenium.webdriver.common.by import By

    for el in driver.find_elements(By.CSS_SELECTOR, "label"):
        if el.text.strip() == text:
            el.click()
            return
    raise AssertionError(f"no label {text!r}")


def pick(driver, label: str, option: str) -> None:
    """Choose ``option`` in the multiselect whose label is ``label``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = driver.find_element(By.CSS_SELECTOR, f'[data-testid="stMultiSelect"] input[aria-label="{label}"]')
    field.click()
    field.send_keys(option)
    field.send_keys(Keys.ENTER)
    field.send_keys(Keys.ESCAPE)


def screenshot(driver, name: str) -> Path:
    """The whole page (the window is stretched to Streamlit's scroll height first)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = driver.get_window_size()
    height = driver.execute_script(
        "const m = document.querySelector('[data-testid=\"stMain\"]');"
        "return Math.max(m ? m.scrollHeight : 0, document.body.scrollHeight);")
    driver.set_window_size(size["width"], min(int(height) + 100, 6000))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path
