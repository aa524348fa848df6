"""The `kubetune` console script: help for every command, exit codes, clean errors, report output."""

from __future__ import annotations

import json

import pytest

from tests.support.cli_helpers import assert_clean_error, run_cli
from tests.support.tiny import tiny_snapshot

COMMANDS = ["simulate", "import", "collect", "info", "report", "cost", "forecast", "recommend", "pr", "dashboard"]


def test_top_level_help_lists_every_command():
    result = run_cli("--help")
    assert result.code == 0
    for command in COMMANDS:
        assert command in result.out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = run_cli(command, "--help")
    assert result.code == 0, result.err
    assert "Usage:" in result.out


def test_unknown_command_and_flag_are_usage_errors():
    assert_clean_error(run_cli("frobnicate"), 2, "No such command")
    assert_clean_error(run_cli("report", "--frobnicate"), 2, "No such option")
    assert_clean_error(run_cli("info", "--format", "xml"), 2, "Invalid value")


def test_pr_without_a_forge_says_where_to_open_it():
    assert_clean_error(run_cli("pr"), 2, "say where to open the pull request: --github OWNER/REPO or --gitlab PROJECT")


def test_missing_and_corrupt_snapshot(tmp_path):
    assert_clean_error(run_cli("report", "--snapshot", tmp_path / "nope", "--out", tmp_path / "r"), 2, "does not exist")
    assert not (tmp_path / "r").exists()
    path = tiny_snapshot().write(tmp_path / "snap")
    (path / "usage.parquet").write_bytes(b"garbage")
    result = run_cli("report", "--snapshot", path, "--out", tmp_path / "r")
    assert_clean_error(result, 2, "usage.parquet is not a readable Parquet file")
    assert not (tmp_path / "r").exists()


def test_report_on_a_snapshot(tmp_path):
    path = tiny_snapshot().write(tmp_path / "snap")
    result = run_cli("report", "--snapshot", path, "--out", tmp_path / "r")
    assert result.code == 0, result.err
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    summary = data["summary"]
    assert summary["cluster"] == "tiny"
    assert summary["containers"] == 3 and summary["nodes"] == 2 and summary["spot_nodes"] == 1
    cpu = next(r for r in summary["resources"] if r["resource"] == "cpu")
    assert cpu["requested"] == pytest.approx(2.6)
    # used = app 0.2..0.31 (mean 0.255) + envoy 0.05 + server 1.0
    assert cpu["used_avg"] == pytest.approx(0.255 + 0.05 + 1.0)
    gpu = next(r for r in summary["resources"] if r["resource"] == "gpu")
    assert gpu["requested"] == pytest.approx(1.0) and gpu["used_avg"] == pytest.approx(0.1)
    html = (tmp_path / "r" / "report.html").read_text()
    assert "kubetune report: tiny" in html and "<table" in html
    assert [p.name for p in (tmp_path / "r").iterdir() if p.name.startswith(".")] == []


def test_info_formats(tmp_path):
    path = tiny_snapshot().write(tmp_path / "snap")
    result = run_cli("info", "--snapshot", path, "--format", "json")
    assert result.code == 0, result.err
    rows = {r["field"]: r["value"] for r in json.loads(result.out)}
    assert rows["cluster"] == "tiny" and rows["rows.containers"] == "3"
    csv = run_cli("info", "--snapshot", path, "--format", "csv")
    assert csv.out.splitlines()[0] == "field,value"
    yaml_out = run_cli("info", "--snapshot", path, "--format", "yaml")
    assert "field: cluster" in yaml_out.out


def test_import_cli_bad_input_writes_nothing(tmp_path):
    bad = tmp_path / "u.csv"
    bad.write_text("timestamp,namespace,workload_kind,workload,pod,container,resource,value\n"
                   "2026-01-01T00:00:00Z,a,Deployment,w,p,c,cpu,oops\n")
    result = run_cli("import", bad, "--out", tmp_path / "snap")
    assert_clean_error(result, 2, "u.csv column 'value' has a non-numeric value at line 2")
    assert not (tmp_path / "snap").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.csv"]


def test_import_refuses_existing_out(tmp_path):
    path = tiny_snapshot().write(tmp_path / "snap")
    tiny_snapshot().usage.write_parquet(tmp_path / "u.parquet")
    assert_clean_error(run_cli("import", tmp_path / "u.parquet", "--out", path), 2, "already exists")


def test_cost_command(tmp_path):
    path = tiny_snapshot().write(tmp_path / "snap")
    result = run_cli("cost", "--snapshot", path, "--format", "json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    rows = doc["rows"]
    assert {r["namespace"] for r in rows} == {"ml", "shop", "__idle__"}
    assert sum(r["total_cost"] for r in rows) == pytest.approx(doc["summary"]["total_cost"], abs=0.01)
    assert doc["top_waste"][0]["workload"] == "infer"  # the idle GPU wastes most
    table = run_cli("cost", "--snapshot", path, "--by", "workload")
    assert table.code == 0 and "infer" in table.out and "Top 2 wasteful workloads" in table.out
    csv = run_cli("cost", "--snapshot", path, "--format", "csv", "--by", "node")
    assert csv.out.splitlines()[0].startswith("node,")
    out = tmp_path / "cost.parquet"
    assert run_cli("cost", "--snapshot", path, "--format", "parquet", "--out", out).code == 0
    assert out.exists()


def test_cost_bad_input(tmp_path):
    path = tiny_snapshot().write(tmp_path / "snap")
    assert_clean_error(run_cli("cost", "--snapshot", path, "--by", "colour"), 2, "--by 'colour' is not one of")
    pricing = tmp_path / "prices.yaml"
    pricing.write_text("prices:\n  - {type: m5.xlarge, price: 0.19}\n  - {type: m5.2xlarge, price: -1}\n")
    result = run_cli("cost", "--snapshot", path, "--pricing", pricing)
    assert_clean_error(result, 2, "prices.yaml:3")
    assert_clean_error(run_cli("cost", "--snapshot", path, "--format", "parquet"), 2, "needs --out")


def test_forecast_command(tmp_path):
    from analyzer.simulator import simulate

    path = simulate(workloads=16, days=4, step_seconds=1800, seed=3).write(tmp_path / "snap")
    out = tmp_path / "f.json"
    result = run_cli("forecast", "--snapshot", path, "--horizon", "1d", "--format", "json", "--out", out)
    assert result.code == 0, result.err
    rows = json.loads(out.read_text())
    assert rows and {"namespace", "workload", "container", "resource", "timestamp", "p50", "p95", "p99", "peak",
                     "model"} <= set(rows[0])
    assert all(r["p50"] <= r["p95"] + 1e-9 <= r["p99"] + 2e-9 for r in rows)
    drift = run_cli("forecast", "--snapshot", path, "--drift", "--format", "csv")
    assert drift.code == 0, drift.err
    assert_clean_error(run_cli("forecast", "--snapshot", path, "--backtest", "--drift"), 2, "not both")
