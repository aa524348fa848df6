"""Dashboard responsiveness in a real browser (issue 19): first page load and filter interactions.

Simulates a ~5,000-container cluster (``kubetune simulate --workloads 1260 --days 14``, as
benchmarks/recommend_scale.py), saves a run of it (``kubetune report`` into a report directory, plus
``kubetune recommend --patches`` when the report does not write patches itself), then starts
``kubetune dashboard`` on 127.0.0.1 and drives headless Chromium (Debian chromium + chromedriver):

* first page load: from ``driver.get`` to the Overview's headline being visible;
* interactions: the Overview's window picker, the Recommendations page's kind filter, the
  Workloads page's namespace filter: from the click to the changed number on screen.

Measured twice: on the saved run (the target: load < 10 s, interaction < 2 s) and on the bare
snapshot (the dashboard computes cost and recommendations itself, once, then caches).
Not a test: results go to benchmarks/README.md by hand.

    .venv/bin/python benchmarks/dashboard_browser.py [--workloads 1260] [--days 14] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.browser import chromium, click_label, open_page, pick, running_dashboard, wait_text  # noqa: E402


def kubetune(*args: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kubetune", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def _body(d) -> str:
    return d.find_element("tag name", "body").text


def _metric(d, label: str) -> str:
    for m in d.find_elements("css selector", '[data-testid="stMetric"]'):
        lines = m.text.splitlines()
        if lines and lines[0].startswith(label):
            return lines[1]
    return ""


def _settled(read, timeout: float = 120.0) -> str:
    """The value once it is on screen (a filter is only clicked after the number it changes is shown)."""
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        try:
            value = read()
        except Exception:  # noqa: BLE001 - being re-rendered
            value = ""
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the value never appeared")


def _until_changed(read, before: str, timeout: float = 120.0) -> float:
    t = time.perf_counter()
    while True:
        try:
            now = read()
        except Exception:  # noqa: BLE001 - the element is being re-rendered
            now = before
        if now and now != before:
            return time.perf_counter() - t
        if time.perf_counter() - t > timeout:
            raise AssertionError(f"nothing changed within {timeout:.0f} s")
        time.sleep(0.02)


def measure(source: str, label: str, namespace: str) -> dict[str, float]:
    out: dict[str, float] = {}
    with running_dashboard(source, timeout=120) as url, chromium() as d:
        t = time.perf_counter()
        d.get(url)
        wait_text(d, "Potential saving", timeout=900)
        out["first load"] = time.perf_counter() - t
        radio = "Last 24 hours" if "Window" in _body(d) else None
        if radio:
            before = _settled(lambda: _metric(d, "Allocated cost"))
            click_label(d, radio)
            out["overview window"] = _until_changed(lambda: _metric(d, "Allocated cost"), before)
        t = time.perf_counter()
        open_page(d, "Recommendations")
        wait_text(d, "Saving of the selection", timeout=300)
        out["open Recommendations"] = time.perf_counter() - t
        before = _settled(lambda: _metric(d, "Saving of the selection"))
        pick(d, "Kind", "rightsize")
        out["recommendations kind filter"] = _until_changed(lambda: _metric(d, "Saving of the selection"), before)
        t = time.perf_counter()
        open_page(d, "Workloads")
        wait_text(d, " workloads · ", timeout=300)
        out["open Workloads"] = time.perf_counter() - t
        before = _settled(lambda: next(line for line in _body(d).splitlines() if " workloads · " in line))
        pick(d, "Namespace", namespace)
        out["workloads namespace filter"] = _until_changed(
            lambda: next(line for line in _body(d).splitlines() if " workloads · " in line), before)
    for name, seconds in out.items():
        print(f"  {label:<14} {name:<28} {seconds:6.2f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", type=int, default=1260)
    ap.add_argument("--days", type=float, default=14)
    ap.add_argument("--keep", type=Path, help="Keep the snapshot and saved run here (reused when present).")
    ap.add_argument("--saved-run-only", action="store_true", help="Skip the bare-snapshot measurement.")
    args = ap.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="kubetune-dashboard-bench-"))
    snap, run = root / "snapshot", root / "run"
    try:
        if not (snap / "manifest.json").exists():
            took = kubetune("simulate", "--workloads", str(args.workloads), "--days", f"{args.days:g}", "--out", str(snap),
                            "--overwrite")
            print(f"simulate: {took:.1f} s")
        if not (run / "report.json").exists():
            print(f"report: {kubetune('report', str(snap), '--out', str(run)):.1f} s")
        if not (run / "patches" / "recommendations.json").exists():
            print(f"recommend --patches: {kubetune('recommend', str(snap), '--patches', str(run / 'patches'), '--overwrite', '-f', 'json', '--out', os.devnull):.1f} s")
        import polars as pl

        containers = pl.read_parquet(snap / "containers.parquet")
        namespace = containers.get_column("namespace").cast(pl.String).value_counts(sort=True).item(0, "namespace")
        print(f"cluster: {containers.select('namespace', 'pod', 'container').n_unique():,} containers "
              f"({containers.select('namespace', 'workload', 'container').n_unique():,} distinct workload containers), "
              f"{pl.scan_parquet(snap / 'usage.parquet').select(pl.len()).collect().item():,} usage rows; "
              f"run: {sum(f.stat().st_size for f in run.rglob('*') if f.is_file()) / 1e6:.1f} MB")
        measure(str(run), "saved run", namespace)
        if not args.saved_run_only:
            measure(str(snap), "bare snapshot", namespace)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
