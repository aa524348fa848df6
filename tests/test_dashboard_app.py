"""The Streamlit dashboard through Streamlit's own AppTest: every page renders without an exception,
filters change the numbers (checked against the analysis run independently), the patch download
holds the right files, and snapshots lacking GPUs, prices or requests (or failing to load) get a
sentence instead of a chart or a traceback."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from analyzer import yamlio
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from analyzer.paths import sample_snapshot_dir
from analyzer.snapshot import load_snapshot
from dashboards.app.config import ENV_HISTORY, ENV_SOURCE
from recommenders.api import recommend
from recommenders.patches import write_patches

APP = str(Path(__file__).resolve().parents[1] / "dashboards" / "app" / "main.py")
PAGES = {
    "views/overview.py": "Overview", "views/workloads.py": "Workloads", "views/gpus.py": "GPUs",
    "views/recommendations.py": "Recommendations", "views/forecast_quality.py": "Forecast quality",
}


class RecordingStorage(MemoryMediaFileStorage):
    """Streamlit's in-memory media storage, remembered so a test can read what a download serves."""

    instances: list[RecordingStorage] = []

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint)
        RecordingStorage.instances.append(self)

    @classmethod
    def content(cls, url: str) -> bytes:
        name = url.rsplit("/", 1)[-1]
        for storage in reversed(cls.instances):
            try:
                return storage.get_file(name).content
            except Exception:  # noqa: BLE001 - another run's storage
                continue
        raise AssertionError(f"no stored file behind {url}")


class RecordingManager(MediaFileManager):
    """Streamlit's media file manager, remembered so a test can run a deferred download as a click would."""

    instances: list[RecordingManager] = []

    def __init__(self, storage) -> None:
        super().__init__(storage)
        RecordingManager.instances.append(self)

    @classmethod
    def download(cls, button) -> bytes:
        """The bytes the browser would receive for this download button (deferred or not)."""
        if button.proto.deferred_file_id:
            url = cls.instances[-1].execute_deferred(button.proto.deferred_file_id)
        else:
            url = button.proto.url
        return RecordingStorage.content(url)


@pytest.fixture
def app(monkeypatch):
    """An AppTest of the dashboard on the source the test sets (bundled sample by default)."""
    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", RecordingStorage)
    monkeypatch.setattr(app_test_module, "MediaFileManager", RecordingManager)
    monkeypatch.delenv(ENV_SOURCE, raising=False)
    monkeypatch.delenv(ENV_HISTORY, raising=False)

    def start(source: Path | str | None = None, history: Path | None = None) -> AppTest:
        if source is not None:
            monkeypatch.setenv(ENV_SOURCE, str(source))
        if history is not None:
            monkeypatch.setenv(ENV_HISTORY, str(history))
        at = AppTest.from_file(APP, default_timeout=180).run()
        assert not at.exception, [e.message for e in at.exception]
        return at

    return start


def _page(at: AppTest, path: str) -> AppTest:
    at.switch_page(path).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label))


def _money(text: str) -> float:
    return float(text.split("/")[0].replace("$", "").replace(",", ""))


def _saving(records) -> float:
    """Net $/month as the records' rows carry it (each rounded to cents)."""
    return sum(round(r.monthly_saving_usd, 2) for r in records)


@pytest.fixture(scope="module")
def sample_recs():
    return recommend(load_snapshot(sample_snapshot_dir()))


def test_every_page_renders_on_the_bundled_sample(app):
    at = app()
    for path, title in PAGES.items():
        _page(at, path)
        assert at.title[0].value == title
        assert not at.error, [e.value for e in at.error]
    assert any("the bundled sample" in c.value for c in at.sidebar.caption)


def test_overview_window_changes_the_cost(app):
    at = app()
    whole = _money(_metric(at, "Allocated cost"))
    at.radio(key="overview_window").set_value("Last 24 hours").run()
    day = _money(_metric(at, "Allocated cost"))
    assert 0 < day < whole / 5  # one day of a 14-day snapshot
    at.radio(key="overview_by").set_value("team label (team)").run()
    assert not at.exception
    records = recommend(load_snapshot(sample_snapshot_dir())).recommendations
    assert _money(_metric(at, "Potential saving")) == pytest.approx(
        sum(max(0.0, r.monthly_saving_usd) for r in records), abs=1)


def test_workloads_filter_and_drill_down(app):
    at = _page(app(), "views/workloads.py")
    everything = at.dataframe[0].value
    namespace = everything["namespace"].iloc[-1]
    at.multiselect(key="wl_namespace").set_value([namespace]).run()
    table = at.dataframe[0].value
    assert 0 < len(table) < len(everything) and set(table["namespace"]) == {namespace}
    assert at.caption[0].value.startswith(f"{len(table)} of {len(everything)} workloads")
    # Drill into the first workload that has a recommendation: chart, evidence and its patch.
    at.multiselect(key="wl_namespace").set_value([]).run()
    table = at.dataframe[0].value
    row = int(table.index[table["recommendation"] != ""][0])
    at.session_state["wl_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    patch = yamlio.load(at.code[0].value)
    assert patch["metadata"] == {"name": table["workload"][row], "namespace": table["namespace"][row]}
    assert patch["kind"] == table["workload_kind"][row]
    assert at.expander, "the recommendation with its evidence"
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart"), "usage vs request chart"


def test_recommendations_filters_total_and_zip(app, sample_recs, tmp_path):
    at = _page(app(), "views/recommendations.py")
    all_rows = sample_recs.recommendations
    assert _money(_metric(at, "Saving of the selection")) == pytest.approx(_saving(all_rows),
                                                                          abs=0.02)
    at.multiselect(key="rec_kind").set_value(["rightsize"]).run()
    at.multiselect(key="rec_confidence").set_value(["high"]).run()
    expected = [r for r in all_rows if r.kind == "rightsize" and r.confidence_label == "high"]
    assert len(at.dataframe[0].value) == len(expected)
    assert _money(_metric(at, "Saving of the selection")) == pytest.approx(
        _saving(expected), abs=0.02)
    at.number_input(key="rec_min_saving").set_value(50.0).run()
    expected = [r for r in expected if r.monthly_saving_usd >= 50.0]
    assert len(at.dataframe[0].value) == len(expected) > 0
    # Tick two rows: the total and the zip follow the ticked rows only.
    table = at.dataframe[0].value
    at.session_state["rec_table"] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    ticked = table.iloc[[0, 1]]
    assert _money(_metric(at, "Saving of the selection")) == pytest.approx(ticked["monthly_saving_usd"].sum(), abs=0.02)
    button = at.download_button(key="rec_download")
    archive = zipfile.ZipFile(io.BytesIO(RecordingManager.download(button)))
    names = set(archive.namelist())
    top = yamlio.load(archive.read("kubetune-patches/kustomization.yaml"))
    assert top["kind"] == "Component"  # the CLI's component layout: one Component per namespace under it
    listed = set()
    for component in top["components"]:
        comp = yamlio.load(archive.read(f"kubetune-patches/{component}/kustomization.yaml"))
        listed |= {f"{component}/{p['path']}" for p in comp["patches"]}
    layout = {f"kubetune-patches/{c}/kustomization.yaml" for c in top["components"]}
    assert {f"kubetune-patches/{n}" for n in listed} | layout | {"kubetune-patches/kustomization.yaml",
                                                                 "kubetune-patches/recommendations.json",
                                                                 "kubetune-patches/.kubetune"} == names  # #15's marker
    targets = {(p["metadata"]["namespace"], p["kind"], p["metadata"]["name"])
               for p in (yamlio.load(archive.read(f"kubetune-patches/{n}")) for n in listed)}
    assert targets == set(zip(ticked["namespace"], ticked["workload_kind"], ticked["workload"], strict=True))
    records = json.loads(archive.read("kubetune-patches/recommendations.json"))["items"]
    assert sorted((r["workload"], r["container"], r["resource"]) for r in records) == sorted(
        zip(ticked["workload"], ticked["container"], ticked["resource"], strict=True))
    # Byte-for-byte what `kubetune recommend --patches` writes for the same records.
    chosen = [r for r in all_rows if (r.target.workload, r.target.container, r.resource, r.kind) in set(
        zip(ticked["workload"], ticked["container"], ticked["resource"], ticked["kind"], strict=True))]
    cli = tmp_path / "cli"
    write_patches(replace(sample_recs, recommendations=chosen, skipped=[]), cli)
    for n in listed:
        assert archive.read(f"kubetune-patches/{n}") == (cli / n).read_bytes()


def test_gpu_page_shows_devices_and_candidates(app):
    at = _page(app(), "views/gpus.py")
    assert int(_metric(at, "GPU devices")) > 0
    idle_all = _money(at.caption[0].value.split("idle ")[1].replace("\\", ""))
    model = at.multiselect(key="gpu_model").options[0]
    at.multiselect(key="gpu_model").set_value([model]).run()
    idle_one = _money(at.caption[0].value.split("idle ")[1].replace("\\", ""))
    assert idle_one < idle_all
    assert any("candidate" in c.value for c in at.caption)
    at.radio(key="gpu_metric").set_value("framebuffer %").run()
    assert not at.exception


def test_forecast_quality_runs_the_backtest(app):
    at = _page(app(), "views/forecast_quality.py")
    assert not at.dataframe and "backtest" in at.info[0].value
    at.button(key="fq_button").click().run()
    assert not at.exception, [e.message for e in at.exception]
    models = list(at.dataframe[0].value["model"])
    assert "kubetune-global" in models and any("seasonal" in m for m in models)
    coverage = at.dataframe[1].value
    assert ((coverage["kubetune-global"] >= 0) & (coverage["kubetune-global"] <= 1)).all()


def _without_gpus(tmp: Path) -> Path:
    snap = load_snapshot(sample_snapshot_dir())
    snap.usage = snap.usage.filter(pl.col("resource").is_in(["cpu", "memory"]))
    snap.gpus = snap.gpus.clear()
    snap.containers = snap.containers.with_columns(pl.lit(None, pl.Int64).alias("gpu_request"),
                                                   pl.lit(None, pl.Int64).alias("gpu_limit"))
    return snap.write(tmp / "no-gpu")


def test_snapshot_without_gpus_says_so(app, tmp_path):
    at = _page(app(_without_gpus(tmp_path)), "views/gpus.py")
    assert any("no GPUs" in i.value for i in at.info)
    assert not at.get("arrow_vega_lite_chart") and not at.dataframe


def test_imported_usage_without_requests_or_prices(app, tmp_path):
    from analyzer.collectors.files import import_files

    usage = tmp_path / "usage.csv"
    lines = ["timestamp,namespace,workload_kind,workload,pod,container,resource,value"]
    for h in range(72):
        for res, value in (("cpu", 0.2 + 0.1 * (h % 24 > 8)), ("memory", 300e6 + 1e6 * h)):
            lines.append(f"{1767225600 + h * 3600},shop,Deployment,api,api-1,app,{res},{value}")
    usage.write_text("\n".join(lines) + "\n")
    snap_dir = import_files(usage, None, cluster="imported").write(tmp_path / "imported")
    at = app(snap_dir)
    for path in PAGES:
        _page(at, path)
        assert not at.error, [e.value for e in at.error]
    _page(at, "views/overview.py")
    sentences = " ".join(i.value for i in at.info)
    assert "no nodes, so there are no prices" in sentences and "requests" in sentences
    _page(at, "views/gpus.py")
    assert any("no GPUs" in i.value for i in at.info)


def test_a_snapshot_that_fails_to_load_is_named_and_the_app_runs(app, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    at = app(broken)
    for path in PAGES:
        _page(at, path)
        assert at.error and str(broken) in at.error[0].value
    at2 = app(tmp_path / "missing")
    assert "does not exist" in at2.error[0].value


def _saved_run(root: Path, recs, *, keep_snapshot: bool) -> Path:
    """A report directory as `kubetune report` writes it, with ``recs`` as its recorded recommendations."""
    import inspect

    from dashboards.report import write_report

    snap = load_snapshot(sample_snapshot_dir())
    if "summary" in inspect.signature(write_report).parameters:  # the first report (summary only)
        from analyzer.summary import summarize

        write_report(summarize(snap), root)
    else:  # the full report (#17): report.json v2, patches/ and the rest
        write_report(snap, out=root)
    write_patches(recs, root / "patches")
    if keep_snapshot:
        snap.write(root / "snapshot")
    return root


def test_saved_run_is_read_not_recomputed(app, sample_recs, tmp_path):
    # A run whose records differ from what the snapshot would give today: the page must show the run's.
    kept = replace(sample_recs, recommendations=sample_recs.recommendations[:5], skipped=[])
    run = _saved_run(tmp_path / "report", kept, keep_snapshot=False)
    at = _page(app(run), "views/recommendations.py")
    assert len(at.dataframe[0].value) == 5
    assert _money(_metric(at, "Saving of the selection")) == pytest.approx(
        _saving(kept.recommendations), abs=0.02)
    for path in PAGES:
        _page(at, path)
    _page(at, "views/overview.py")
    assert any("keeps no snapshot" in i.value for i in at.info)


def test_history_directory_shows_the_latest_run_and_a_trend(app, sample_recs, tmp_path):
    history = tmp_path / "history"
    _saved_run(history / "20261101T000000Z", replace(sample_recs, recommendations=sample_recs.recommendations[:3]),
               keep_snapshot=False)
    _saved_run(history / "20261108T000000Z", replace(sample_recs, recommendations=sample_recs.recommendations[:7]),
               keep_snapshot=True)
    (history / "latest").symlink_to("20261108T000000Z")
    at = app(history=history)
    assert "Across past reports" in [s.value for s in at.subheader]
    _page(at, "views/recommendations.py")
    assert len(at.dataframe[0].value) == 7
    _page(at, "views/workloads.py")
    assert len(at.dataframe[0].value) == 60  # the kept snapshot gives every workload's cost


def test_a_live_source_the_cli_could_not_read_is_said_on_every_page(app, monkeypatch):
    from dashboards.app.config import ENV_ERROR

    monkeypatch.setenv(ENV_ERROR, "Cannot read Prometheus at http://prometheus:9090: connection refused.")
    at = app()
    for path in PAGES:
        _page(at, path)
        assert at.error[0].value.startswith("Cannot read Prometheus at http://prometheus:9090")


def test_untrusted_names_are_escaped_and_no_html_is_allowed():
    from dashboards.app.view import md

    hostile = "[click](javascript:alert(1)) <img src=x onerror=alert(1)> **bold** $x$ :smile:"
    escaped = md(hostile)
    for ch in "[]()<>*$:":
        assert all(escaped[i - 1] == "\\" for i, c in enumerate(escaped) if c == ch)
    app_dir = Path(APP).parent
    assert not [p for p in app_dir.rglob("*.py") if "unsafe_allow_html" in p.read_text()]


def test_nothing_in_the_app_can_change_the_cluster():
    """No Kubernetes client, no subprocess, no HTTP client: the app reads files and nothing else."""
    import ast

    for path in Path(APP).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                assert not name.startswith(("kubernetes", "subprocess", "requests", "urllib", "http.client",
                                            "analyzer.collectors")), f"{path.name} imports {name}"
