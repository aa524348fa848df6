"""The CLI as people use it (issue #16): tables that keep every number whole at any width and in a
pipe, the versioned JSON envelope (validated by its JSON Schema), forecast summaries, filters,
progress lines, quiet cost, help text and file modes. Everything runs the real console script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import polars as pl
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from analyzer.envelope import SCHEMA_DIR
from analyzer.paths import sample_snapshot_dir
from analyzer.units import human_value
from tests.support.cli_helpers import assert_clean_error, run_cli

WIDTHS = ("80", "120", "200", None)  # None: piped, no terminal, no $COLUMNS
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ kubetune ")


def usd(v: float) -> str:
    return f"-${-v:,.2f}" if v < 0 else f"${v:,.2f}"


def _schema(command: str):
    doc = json.loads((SCHEMA_DIR / "envelope-v1.json").read_text())
    registry = Registry().with_resource(doc["$id"], Resource.from_contents(doc))
    return Draft202012Validator({"$ref": f"{doc['$id']}#/$defs/{command}"}, registry=registry)


def _valid(document: dict, command: str) -> dict:
    errors = sorted(_schema(command).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    return document


@pytest.fixture(scope="module")
def small_snapshot(tmp_path_factory):
    from analyzer.simulator import simulate

    return simulate(workloads=16, days=4, step_seconds=1800, seed=3).write(tmp_path_factory.mktemp("s") / "snap")


@pytest.fixture(scope="module")
def sample_recommend_json():
    res = run_cli("recommend", "-f", "json")
    assert res.code == 0, res.err
    return json.loads(res.out)


def _table_lines(text: str, header: str) -> list[str]:
    """The body rows of the first table whose header starts with ``header`` (up to a blank line or note)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(header))
    body = []
    for line in lines[start + 2:]:
        if not line.strip() or line.startswith("("):
            break
        body.append(line)
    return body


@pytest.mark.parametrize("width", WIDTHS)
def test_recommend_table_keeps_every_saving_whole(width, sample_recommend_json):
    res = run_cli("recommend", env={"COLUMNS": width})
    assert res.code == 0, res.err
    items = sample_recommend_json["items"]
    rows = _table_lines(res.out, "workload")
    assert len(rows) == len(items)
    # rows with equal savings may come in either order: compare (workload, saving) as multisets
    seen = sorted((line.split()[0], next(t for t in line.split() if "$" in t)) for line in rows)
    want = sorted((f"{i['namespace']}/{i['workload']}", usd(i["monthly_saving_usd"])) for i in items)
    assert seen == want
    if width is not None:
        assert all(len(line) <= int(width) for line in rows)
    # the money never shrinks: the $/month cell is a complete amount on every row
    assert all(re.fullmatch(r"-?\$[\d,]+\.\d\d", tok) for tok, in ([next(t for t in line.split() if "$" in t)]
                                                                for line in rows))
    if width is None:  # piped without a terminal: every column, the free text too, uncut
        assert "…" not in res.out and all(item["reason"].split(";")[0] in res.out for item in items)
    if width == "80":
        assert "left out to fit 80 columns" in res.out and "-f wide" in res.out


@pytest.mark.parametrize("width", WIDTHS)
def test_cost_table_keeps_every_amount_whole(width):
    res = run_cli("cost", "--by", "namespace", env={"COLUMNS": width})
    doc = json.loads(run_cli("cost", "--by", "namespace", "-f", "json").out)
    assert res.code == 0, res.err
    for row in doc["items"]:
        line = next(x for x in res.out.splitlines() if x.startswith(row["namespace"] + " "))
        assert usd(row["total_cost"]) in line.split() and usd(row["total_cost_monthly"]) in line.split(), line
    assert "…" not in res.out


@pytest.mark.parametrize("width", WIDTHS)
def test_forecast_table_keeps_quantities_whole(width, small_snapshot):
    res = run_cli("forecast", small_snapshot, "--horizon", "1d", env={"COLUMNS": width})
    doc = json.loads(run_cli("forecast", small_snapshot, "--horizon", "1d", "-f", "json").out)
    assert res.code == 0, res.err
    lines = _table_lines(res.out, "namespace")
    header = next(x for x in res.out.splitlines() if x.startswith("namespace")).split()
    assert len(lines) == len(doc["items"]) and "p95" in header  # p95 is the last value column to go
    shown = [q for q in ("p50", "p90", "p95", "p99", "peak") if q in header]
    if width in ("200", None):
        assert len(shown) == 5
    for line, item in zip(lines, doc["items"], strict=True):
        if item["resource"] in ("cpu", "memory"):
            for q in shown:
                assert human_value(item["resource"], item[q]) in line.split(), (q, line)


def test_wide_shows_every_column_even_at_80(sample_recommend_json):
    res = run_cli("recommend", "-f", "wide", env={"COLUMNS": "80"})
    assert res.code == 0
    header = _table_lines(res.out, "workload")
    head = next(x for x in res.out.splitlines() if x.startswith("workload"))
    assert {"controller", "change", "resource", "now", "proposed", "$/month", "confidence", "why"} <= set(head.split())
    assert "left out" not in res.out and header


def test_forecast_default_is_one_row_per_container_and_resource_on_the_sample():
    res = run_cli("forecast", "-f", "json")
    assert res.code == 0, res.err
    doc = _valid(json.loads(res.out), "forecast")
    keys = [(i["namespace"], i["workload_kind"], i["workload"], i["container"], i["resource"]) for i in doc["items"]]
    assert len(keys) == len(set(keys)) > 100
    usage = pl.read_parquet(sample_snapshot_dir() / "usage.parquet")
    series = usage.select("namespace", "workload_kind", "workload", "container", "resource").unique().height
    assert len(keys) == series
    assert all(i["p50"] <= i["p90"] <= i["p95"] <= i["p99"] <= i["peak"] + 1e-9 for i in doc["items"])
    assert "progress" not in res.out and any(STAMP.match(line) for line in res.err.splitlines())


def test_forecast_hourly_and_yaml_are_the_same_envelope(small_snapshot, tmp_path):
    hourly = run_cli("forecast", small_snapshot, "--horizon", "6h", "--hourly", "-f", "json")
    doc = _valid(json.loads(hourly.out), "forecast_hourly")
    series = json.loads(run_cli("forecast", small_snapshot, "--horizon", "6h", "-f", "json").out)["items"]
    assert len(doc["items"]) == 6 * len(series)
    as_yaml = yaml.safe_load(run_cli("forecast", small_snapshot, "--horizon", "6h", "-f", "yaml").out)
    assert set(as_yaml) == set(doc) and _valid(as_yaml, "forecast")["items"][0].keys() == series[0].keys()
    out = tmp_path / "f.json"
    res = run_cli("forecast", small_snapshot, "--horizon", "6h", "-f", "json", "-o", out)
    assert res.out == "" and f"to {out}" in res.err  # data on stdout or the file; "written" on stderr


def test_every_envelope_validates(sample_recommend_json, small_snapshot, tmp_path):
    _valid(sample_recommend_json, "recommend")
    assert sample_recommend_json["summary"]["monthly_saving_usd"] > 0
    info = _valid(json.loads(run_cli("info", "-f", "json").out), "info")
    assert info["items"]["rows"]["workloads"] == 60 and info["window"]["cluster"] == "sample"
    cost = _valid(json.loads(run_cli("cost", small_snapshot, "-f", "json").out), "cost")
    assert cost["source"] == f"source {small_snapshot}" and cost["summary"]["by"] == "namespace"
    res = run_cli("recommend", "--patches", tmp_path / "p", "--kind", "rightsize")
    assert res.code == 0, res.err
    saved = _valid(json.loads((tmp_path / "p" / "recommendations.json").read_text()), "recommend")
    assert saved["items"] and "unmatched" in saved["summary"]
    bad = dict(sample_recommend_json, schema_version=2)
    assert list(_schema("recommend").iter_errors(bad))  # the schema can fail


def test_version_and_filters(small_snapshot):
    version = run_cli("--version")
    assert version.code == 0 and re.fullmatch(r"kubetune \S+\n", version.out)
    everything = json.loads(run_cli("recommend", "-f", "json").out)["items"]
    namespaces = {i["namespace"] for i in everything}
    one = sorted(namespaces)[0]
    exact = json.loads(run_cli("recommend", "-n", one, "-f", "json").out)["items"]
    assert exact and {i["namespace"] for i in exact} == {one}
    pattern = json.loads(run_cli("recommend", "-n", "ml-.*", "-n", one, "-f", "json").out)["items"]
    assert {i["namespace"] for i in pattern} == {n for n in namespaces if n.startswith("ml-")} | {one}
    # anchored: "ml" alone matches no namespace ("ml-serving" is not "ml")
    assert_clean_error(run_cli("cost", "-n", "ml"), 2, "matches no workload")
    team = json.loads(run_cli("info", "--selector", "team=payments", "-f", "json").out)["items"]["rows"]
    assert 0 < team["workloads"] < 60
    assert_clean_error(run_cli("forecast", "--selector", "team"), 2, "LABEL=VALUE")


def test_cost_is_quiet_by_default_and_says_when_a_label_matches_nothing():
    quiet = run_cli("cost")
    assert quiet.code == 0
    assert [line for line in quiet.err.splitlines() if line.startswith("Prices:")] and "warning" not in quiet.err
    assert len(quiet.err.splitlines()) <= 3, quiet.err  # sample note, one progress line, the price line
    verbose = run_cli("cost", "--verbose")
    assert len(verbose.err.splitlines()) > len(quiet.err.splitlines()) and "/core-h" in verbose.err
    nosuch = run_cli("cost", "--by", "label:nosuch")
    assert nosuch.code == 0 and "--by label:nosuch matches no label" in " ".join(nosuch.err.split())


def test_progress_lines_and_errors_are_single_lines_without_a_terminal(tmp_path):
    res = run_cli("recommend", "--kind", "rightsize", env={"COLUMNS": None})
    stages = [line for line in res.err.splitlines() if STAMP.match(line)]
    assert stages and all("recommend:" in line for line in stages)
    long_name = tmp_path / ("x" * 150)
    err = run_cli("info", long_name, env={"COLUMNS": None})
    assert err.code == 2 and len(err.err.strip().splitlines()) == 1 and str(long_name) in err.err


def test_help_teaches():
    top = run_cli("--help", env={"COLUMNS": "100"}).out
    # every command is in this build: none is marked "not yet available" (cli.register(planned=True) does that)
    assert "Not yet available in this build" not in top
    assert all(f"│ {c} " in top for c in ("recommend", "pr", "dashboard", "report"))
    info = run_cli("info", "--help", env={"COLUMNS": "100"}).out
    assert "parquet" in info
    for command in ("cost", "forecast", "recommend"):
        text = run_cli(command, "--help", env={"COLUMNS": "80"}).out
        assert text.count("─ Source ─") == 1, command
        # prose paragraphs are rewrapped evenly: no line of prose ends far short of the width
        # just before a continuation (what hard 100-column lines re-wrapped at 80 looked like)
        prose = [line for line in text.splitlines()[:12] if line.strip() and not line.startswith(("╭", "│", " Usage"))]
        assert all(len(line) >= 40 for line in prose[:-1] if not line.strip().startswith(("kubetune", "Example")))


def test_outputs_follow_the_umask(tmp_path):
    out = tmp_path / "snap"
    code = ("import os, sys; os.umask(0o022); from kubetune.cli import main; "
            "sys.exit(main(['recommend', '--kind', 'rightsize', '--patches', sys.argv[1], '-f', 'json', '-o', sys.argv[2]]))")
    res = subprocess.run([sys.executable, "-c", code, str(out), str(tmp_path / "recs.json")],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"}, check=False)
    assert res.returncode == 0, res.stderr
    assert oct((tmp_path / "recs.json").stat().st_mode & 0o777) == oct(0o644)
    assert oct(out.stat().st_mode & 0o777) == oct(0o755)
    assert all(oct(p.stat().st_mode & 0o777) == oct(0o644) for p in out.rglob("*") if p.is_file())


def test_thread_pools_capped_to_the_cpus_this_process_may_use():
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "[os.environ.pop(v, None) for v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS')]; "
            "import kubetune; from sklearn.utils._openmp_helpers import _openmp_effective_n_threads; "
            "print(os.environ['OMP_NUM_THREADS'], os.environ['OPENBLAS_NUM_THREADS'], _openmp_effective_n_threads())")
    one = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert one.stdout.split() == ["1", "1", "1"]
    mine = subprocess.run([sys.executable, "-c", "import os, kubetune; print(os.environ['OMP_NUM_THREADS'])"],
                          capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "3"})
    assert mine.stdout.strip() == "3"  # a value the user set wins


def test_openmp_waits_passively_only_on_an_oversubscribed_machine(monkeypatch):
    from kubetune.threads import wait_policy

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert wait_policy(load=0.5) is None and "OMP_WAIT_POLICY" not in os.environ
    assert wait_policy(load=(os.cpu_count() or 1) * 3.0) == "PASSIVE" and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # the user's choice wins
    assert wait_policy(load=100.0) is None and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
