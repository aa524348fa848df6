"""Where the dashboard's data comes from, loaded once per snapshot and cached.

``kubetune dashboard`` passes its source in the environment (the Streamlit process is a child):
``KUBETUNE_DASHBOARD_SOURCE`` (a snapshot directory, a report directory or a history directory;
unset = the bundled sample), ``KUBETUNE_DASHBOARD_HISTORY_DIR``, ``KUBETUNE_DASHBOARD_TEAM_LABEL``
and ``KUBETUNE_DASHBOARD_ERROR`` (a live source the CLI could not read). A Prometheus URL is read
by the CLI once, into a snapshot, before the app starts (dashboards never import collectors).

Caching: the Snapshot itself is a shared read-only resource (``st.cache_resource``: tens of
millions of usage rows must not be copied per rerun); everything derived from it is
``st.cache_data`` keyed by the snapshot's identity (path + manifest/report mtimes and sizes), so a
new snapshot at the same path is recomputed and a filter change is only a Polars filter. The
results object is then shared read-only across reruns (one unpickle per process, not per call).
A source that fails to load becomes one sentence (``LoadFailure``) the pages show; the app runs on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import streamlit as st

from analyzer.errors import KubetuneError
from analyzer.paths import sample_snapshot_dir
from analyzer.snapshot import Snapshot, load_snapshot
from dashboards.app import saved_run as runs
from dashboards.app.config import Config
from dashboards.app.results import Results, compute_results, results_without_snapshot


@dataclass(frozen=True)
class LoadFailure:
    message: str


def stamp(path: Path) -> str:
    """Identity of a snapshot or run directory: changes when it is rewritten."""
    parts = [str(path.resolve())]
    for name in ("manifest.json", "report.json", "patches/recommendations.json", "latest"):
        f = path / name
        if f.exists():
            st_ = f.stat()
            parts.append(f"{name}:{st_.st_mtime_ns}:{st_.st_size}")
    return "|".join(parts)


@st.cache_resource(show_spinner="Reading the snapshot...", max_entries=4)
def cached_snapshot(path: str, version: str) -> Snapshot:
    """One shared, read-only Snapshot per (path, version); never mutated by the pages."""
    return load_snapshot(Path(path))


@st.cache_data(show_spinner="Computing cost and recommendations...", max_entries=8)
def _snapshot_results(path: str, version: str, origin: str, team_label: str) -> Results:
    return compute_results(cached_snapshot(path, version), origin=origin, key=version, team_label=team_label,
                           snapshot_dir=path)


@st.cache_data(show_spinner="Reading the saved run...", max_entries=8)
def _run_results(path: str, version: str, team_label: str) -> Results:
    run = runs.read_run(Path(path))
    origin = f"saved run {path}"
    recs = run.recommendations
    if run.snapshot_dir is not None:
        snap_dir = str(run.snapshot_dir)
        return compute_results(cached_snapshot(snap_dir, stamp(run.snapshot_dir)), origin=origin, key=version,
                               team_label=team_label, recommendations=recs, snapshot_dir=snap_dir)
    if recs is None:
        raise KubetuneError(f"{path} holds neither patches/recommendations.json nor its snapshot; nothing to show.")
    return results_without_snapshot(recs, origin=origin, key=version, report=run.report,
                                    headline=runs.run_headline(run), team_label=team_label)


@st.cache_resource(show_spinner=False, max_entries=8)
def _shared(kind: str, path: str, version: str, origin: str, team_label: str) -> Results:
    """The ``st.cache_data`` results, unpickled once per process and handed to every rerun as the same
    read-only object: cache_data alone copies thousands of records on each of the 2+ calls per rerun."""
    if kind == "run":
        return _run_results(path, version, team_label)
    return _snapshot_results(path, version, origin, team_label)


def load(config: Config) -> Results | LoadFailure:
    """The results for the configured source, or the one sentence saying why they cannot be shown."""
    try:
        if config.history_dir:
            history = Path(config.history_dir)
            if not history.is_dir():
                return LoadFailure(f"--history-dir {history} is not a directory.")
            run = runs.latest_run(history)
            return _shared("run", str(run), stamp(run), "", config.team_label)
        if config.error:
            return LoadFailure(config.error)
        source = config.source
        path = Path(source) if source else sample_snapshot_dir()
        if not path.exists():
            return LoadFailure(f"{path} does not exist: give a snapshot directory, a report directory or a "
                               "Prometheus URL.")
        if path.is_dir() and not (path / "manifest.json").exists():
            if runs.is_saved_run(path):
                return _shared("run", str(path), stamp(path), "", config.team_label)
            if runs.is_history_dir(path):
                run = runs.latest_run(path)
                return _shared("run", str(run), stamp(run), "", config.team_label)
        origin = "the bundled sample" if not source else f"snapshot {path}"
        return _shared("snapshot", str(path), stamp(path), origin, config.team_label)
    except KubetuneError as exc:
        return LoadFailure(f"Cannot load {config.history_dir or config.source or 'the bundled sample'}: {exc}")
    except OSError as exc:
        return LoadFailure(f"Cannot read {exc.filename or config.source}: {exc.strerror}.")


def current() -> Results | LoadFailure:
    return load(Config.from_env())


@st.cache_data(show_spinner="Reading past reports...", max_entries=4)
def history_trend(history: str, version: str) -> pl.DataFrame:
    """Monthly cost, idle, waste and saving per past run of a history directory, oldest first: the trend the
    newest report.json carries (``history.runs``), else read run by run."""
    schema = {"run": pl.String, "generated_at": pl.String, "cost_monthly": pl.Float64, "idle_monthly": pl.Float64,
              "waste_monthly": pl.Float64, "saving_monthly": pl.Float64}
    try:
        points = runs.find(runs.read_run(runs.latest_run(Path(history))).report, "history.runs")
    except KubetuneError:
        points = None
    if isinstance(points, list) and points:
        return pl.DataFrame([{
            "run": p.get("run_id"), "generated_at": p.get("generated_at"), "cost_monthly": p.get("monthly_cost_usd"),
            "idle_monthly": p.get("idle_monthly_usd"), "waste_monthly": p.get("waste_monthly_usd"),
            "saving_monthly": p.get("potential_saving_monthly_usd")} for p in points if isinstance(p, dict)],
            schema=schema)
    rows = []
    for path in runs.history_runs(Path(history)):
        try:
            rows.append(runs.run_headline(runs.read_run(path)))
        except KubetuneError:
            continue
    return pl.DataFrame(rows, schema=schema)


def history_dir(config: Config) -> Path | None:
    """The history directory in play: --history-dir, or a source that is one."""
    if config.history_dir:
        return Path(config.history_dir)
    if config.source and not re.match(r"(?i)https?://", config.source):
        p = Path(config.source)
        if p.is_dir() and not (p / "manifest.json").exists() and not runs.is_saved_run(p) and runs.is_history_dir(p):
            return p
    return None


def snapshot_for(results: Results) -> Snapshot | None:
    """The snapshot behind the results, for usage series (None for a saved run without one)."""
    if not results.snapshot_dir:
        return None
    path = Path(results.snapshot_dir)
    return cached_snapshot(str(path), stamp(path))
