"""`kubetune report` end to end: every file, the schema, headless Chromium, history, bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import polars as pl
import pytest

from analyzer.paths import sample_snapshot_dir
from analyzer.snapshot import load_snapshot
from dashboards.report.schema import SCHEMA
from tests.support.cli_helpers import assert_clean_error, run_cli
from tests.support.tiny import tiny_snapshot

ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS = Path(os.environ.get("KUBETUNE_TEST_ARTEFACTS", ROOT / ".artefacts"))
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report"
    result = run_cli("report", "--out", out)
    assert result.code == 0, result.err
    assert "using the bundled sample" in result.err
    return out


def _validate(doc: dict) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc)]
    assert not errors, errors[:5]


def test_sample_report_writes_every_file(sample_report):
    names = {p.name for p in sample_report.iterdir()}
    assert names == {"report.html", "report.md", "report.json", "patches"}
    patches = sample_report / "patches"
    assert (patches / "kustomization.yaml").is_file() and (patches / "recommendations.json").is_file()
    doc = json.loads((sample_report / "report.json").read_text())
    envelope = json.loads((patches / "recommendations.json").read_text())
    recs = envelope["items"]
    # the same envelope as `recommend --patches`: the source and window are filled in
    assert envelope["source"] and envelope["source"] == doc["source"]
    assert envelope["window"]["start"] == doc["snapshot"]["start"] and envelope["window"]["end"] == doc["snapshot"]["end"]
    assert len(recs) == doc["headline"]["recommendations"] == len(doc["recommendations"]) > 0
    assert sum(1 for p in patches.glob("namespaces/*/*.yaml") if p.name != "kustomization.yaml") > 0
    # readable by others under the usual umask (not 0600/0700 temp permissions)
    for path in [sample_report, *sample_report.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o004, (path, oct(mode))
    assert not [p for p in sample_report.parent.iterdir() if p.name.startswith(".")]


def test_report_json_validates_and_agrees_with_itself(sample_report):
    doc = json.loads((sample_report / "report.json").read_text())
    _validate(doc)
    h = doc["headline"]
    assert h["monthly_cost_usd"] > h["idle_monthly_usd"] > 0
    by_kind = {k["kind"]: k for k in h["saving_by_kind"]}
    assert sum(k["count"] for k in by_kind.values()) == h["recommendations"]
    assert h["potential_saving_monthly_usd"] == pytest.approx(
        sum(r["monthly_saving_usd"] for r in doc["recommendations"] if r["monthly_saving_usd"] > 0), abs=0.05)
    ns_total = sum(r["total_cost"] for r in doc["cost"]["by_namespace"])
    assert ns_total == pytest.approx(h["monthly_cost_usd"], rel=1e-3)
    assert doc["gpu"]["fleet"]["devices"] > 0 and doc["gpu"]["sharing"]
    shares = [r["setup"] for r in doc["gpu"]["sharing"] if r["kind"] == "gpu-share"]
    assert shares and all(re.fullmatch(r"time-slicing x\d+|mig-\dg\.\d+gb", x) for x in shares), shares
    assert doc["workload_charts"] and all(c["forecast"] for c in doc["workload_charts"])
    # a broken document fails the schema (the test can fail)
    with pytest.raises(AssertionError):
        _validate({**doc, "headline": {**h, "monthly_cost_usd": "a lot"}})


def test_markdown_has_headline_and_tables(sample_report):
    text = (sample_report / "report.md").read_text()
    doc = json.loads((sample_report / "report.json").read_text())
    assert f"${doc['headline']['monthly_cost_usd']:,.0f}" in text
    assert "## Recommendations" in text and "| workload | container | kind |" in text


class _Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.charts: list[str] = []
        self.rows: dict[str, int] = {}
        self.text: dict[str, list[str]] = {}
        self.tags: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "svg" and "chart" in (a.get("class") or ""):
            self.charts.append(a.get("id", ""))
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith("#"):
                self.external.append(a[key])
        if tag == "tr":
            table = next((x for t, x in reversed(self.stack) if t == "table"), {})
            if any(t == "tbody" for t, _ in self.stack):
                self.rows[table.get("id", "")] = self.rows.get(table.get("id", ""), 0) + 1
        if tag not in ("rect", "line", "circle", "polyline", "polygon", "meta", "br"):
            self.stack.append((tag, a))

    def handle_endtag(self, tag):
        while self.stack:
            t, _ = self.stack.pop()
            if t == tag:
                break

    def handle_data(self, data):
        for _, a in self.stack:
            if a.get("id"):
                self.text.setdefault(a["id"], []).append(data)


def _chromium(*args: str, url: str, tmp: Path) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tempfile.mkdtemp(dir=tmp)}", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (scripts/ensure-system-packages.sh)")
def test_report_html_in_headless_chromium(sample_report, tmp_path):
    url = (sample_report / "report.html").as_uri()
    proc = _chromium("--dump-dom", url=url, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Dom()
    dom.feed(proc.stdout)
    doc = json.loads((sample_report / "report.json").read_text())
    h = doc["headline"]
    for card, value in (("monthly-cost", h["monthly_cost_usd"]), ("idle-cost", h["idle_monthly_usd"]),
                        ("potential-saving", h["potential_saving_monthly_usd"])):
        assert f"${value:,.0f}" in "".join(dom.text[card]), (card, dom.text.get(card))
    assert len(dom.charts) >= 3, dom.charts
    assert {"chart-daily", "chart-namespaces", "chart-teams", "chart-workload-0"} <= set(dom.charts)
    assert dom.rows["recommendations"] == min(100, len(doc["recommendations"]))
    assert "script" not in dom.tags and not dom.external, dom.external  # self-contained, works offline
    shot = tmp_path / "report.png"
    proc = _chromium(f"--screenshot={shot}", "--window-size=1280,4000", "--hide-scrollbars", url=url, tmp=tmp_path)
    assert proc.returncode == 0 and shot.stat().st_size > 50_000, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTEFACTS / "report.png")


def _apply(snapshot_dir: Path, recs: list[dict], out: Path) -> list[dict]:
    """A later snapshot in which the team took the given CPU recommendations (requests moved to them)."""
    snap = load_snapshot(snapshot_dir)
    c = snap.containers
    for r in recs:
        match = ((pl.col("namespace").cast(pl.String) == r["namespace"])
                 & (pl.col("workload").cast(pl.String) == r["workload"])
                 & (pl.col("container").cast(pl.String) == r["container"]))
        c = c.with_columns(pl.when(match).then(pl.lit(r["proposed_request"])).otherwise(pl.col("cpu_request"))
                           .alias("cpu_request"))
    snap.containers = c
    snap.write(out)
    return recs


def test_history_shows_trend_and_taken_recommendations(sample_report, tmp_path):
    history = tmp_path / "history"
    history.mkdir()
    (history / "notes.txt").write_text("not a run")
    first = run_cli("report", "--history-dir", history)
    assert first.code == 0, first.err
    run1 = os.readlink(history / "latest")
    doc1 = json.loads((history / "latest" / "report.json").read_text())
    assert doc1["run_id"] == run1 and re.fullmatch(r"\d{8}T\d{6}Z(-\d+)?", run1)
    assert [r["run_id"] for r in doc1["history"]["runs"]] == [run1] and doc1["history"]["taken"] == []
    cpu = [r for r in doc1["recommendations"] if r["kind"] == "rightsize" and r["resource"] == "cpu"][:2]
    _apply(sample_snapshot_dir(), cpu, tmp_path / "later")
    second = run_cli("report", "--snapshot", tmp_path / "later", "--history-dir", history, "--keep", "2")
    assert second.code == 0, second.err
    doc2 = json.loads((history / "latest" / "report.json").read_text())
    _validate(doc2)
    assert [r["run_id"] for r in doc2["history"]["runs"]] == [run1, doc2["run_id"]]
    taken = {(t["workload"], t["container"], t["resource"]) for t in doc2["history"]["taken"]}
    assert taken == {(r["workload"], r["container"], "cpu") for r in cpu}
    assert doc2["history"]["taken_saving_monthly_usd"] == pytest.approx(sum(r["monthly_saving_usd"] for r in cpu), abs=0.02)
    assert doc2["history"]["runs"][-1]["taken_saving_monthly_usd"] == doc2["history"]["taken_saving_monthly_usd"]
    html = (history / "latest" / "report.html").read_text()
    assert 'id="chart-trend"' in html and 'id="taken"' in html
    # a third run with --keep 2 removes the oldest run, and nothing else
    third = run_cli("report", "--snapshot", tmp_path / "later", "--history-dir", history, "--keep", "2")
    assert third.code == 0, third.err
    runs = sorted(p.name for p in history.iterdir() if re.fullmatch(r"\d{8}T.*", p.name))
    assert len(runs) == 2 and run1 not in runs and (history / "notes.txt").read_text() == "not a run"
    assert os.readlink(history / "latest") == runs[-1]
    assert not [p for p in history.iterdir() if p.name.startswith(".")]


def test_names_are_escaped_everywhere(tmp_path):
    snap = tiny_snapshot(steps=12)
    evil = "<script>alert(1)</script>|*x*"
    for name in ("usage", "containers", "workloads"):
        frame = getattr(snap, name)
        setattr(snap, name, frame.with_columns(
            pl.col("namespace").cast(pl.String).str.replace("^shop$", evil).cast(frame.schema["namespace"])))
    path = snap.write(tmp_path / "snap")
    result = run_cli("report", path, "--out", tmp_path / "r")
    assert result.code == 0, result.err
    html = (tmp_path / "r" / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = (tmp_path / "r" / "report.md").read_text()
    assert "\\<script\\>alert\\(1\\)\\</script\\>\\|\\*x\\*" in md and "<script>" not in md
    _validate(json.loads((tmp_path / "r" / "report.json").read_text()))


def test_bad_targets_and_failing_sources_leave_the_previous_report(tmp_path):
    out = tmp_path / "r"
    assert run_cli("report", tiny_snapshot().write(tmp_path / "snap"), "--out", out).code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    # the source fails: a corrupt snapshot (bad input) and a Prometheus that is not there (failure)
    bad = tiny_snapshot().write(tmp_path / "bad")
    (bad / "usage.parquet").write_bytes(b"garbage")
    assert_clean_error(run_cli("report", bad, "--out", out), 2, "usage.parquet")
    assert_clean_error(run_cli("report", "--prometheus-url", "http://127.0.0.1:9", "--out", out), 1)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    # an unwritable target: its parent is a file
    (tmp_path / "file").write_text("x")
    result = run_cli("report", tiny_snapshot().write(tmp_path / "s2"), "--out", tmp_path / "file" / "r")
    assert_clean_error(result, 1, "is a file, not a directory")
    assert len(result.err.strip().splitlines()) == 1  # refused before any work
    # a directory of someone else's files is refused, not replaced
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "keep.txt").write_text("mine")
    assert_clean_error(run_cli("report", tmp_path / "snap", "--out", theirs), 2, "not a kubetune report")
    assert (theirs / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_published_schema_is_current():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    published = json.loads((ROOT / "docs" / "report-schema.json").read_text())
    assert published == SCHEMA, "run: python -m dashboards.report.schema > docs/report-schema.json"


def test_a_source_failing_mid_run_leaves_the_previous_report(prom_cluster, tmp_path):
    """Prometheus answers the first queries, then refuses the GPU ones: one sentence, exit 1, nothing replaced."""
    from tests.support.fault_proxy import Fault, FaultProxy

    history = tmp_path / "history"
    assert run_cli("report", tiny_snapshot().write(tmp_path / "snap"), "--history-dir", history).code == 0
    before = {p.relative_to(history).as_posix(): p.read_bytes() for p in history.rglob("*") if p.is_file()}
    proxy = FaultProxy(prom_cluster.url)
    try:
        proxy.reset(Fault("DCGM", "status", times=None, status=400,
                          body=b'{"status":"error","errorType":"bad_data","error":"refused by test"}'))
        result = run_cli("report", "--prometheus-url", proxy.url, "--history", "60d", "--history-dir", history)
        answered = sum(1 for s in proxy.seen if s.fault is None)
    finally:
        proxy.close()
    assert_clean_error(result, 1)
    assert "refused by test" in result.err or "400" in result.err, result.err
    assert answered >= 1, result.err  # it failed mid-run, after real answers
    after = {p.relative_to(history).as_posix(): p.read_bytes() for p in history.rglob("*") if p.is_file()}
    assert after == before and not [p for p in history.iterdir() if p.name.startswith(".")]
