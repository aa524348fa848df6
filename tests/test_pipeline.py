"""End to end through the console script: simulate -> snapshot -> import round trip, and the bundled sample."""

from __future__ import annotations

import json

import polars as pl

from analyzer.paths import sample_snapshot_dir
from analyzer.simulator import simulate
from analyzer.snapshot import frames_equal, load_snapshot
from tests.support.cli_helpers import assert_clean_error, run_cli


def test_simulate_cli_writes_the_same_snapshot_as_the_library(tmp_path):
    result = run_cli("simulate", "--workloads", 12, "--days", 2, "--step", "10m", "--seed", 5, "--out", tmp_path / "s")
    assert result.code == 0, result.err
    loaded = load_snapshot(tmp_path / "s")
    assert loaded.equals(simulate(workloads=12, days=2, step_seconds=600, seed=5))
    again = run_cli("simulate", "--workloads", 12, "--days", 2, "--out", tmp_path / "s")
    assert_clean_error(again, 2, "already exists")


def test_simulate_then_import_round_trip(tmp_path):
    truth = simulate(workloads=16, days=1, step_seconds=300, seed=2)
    usage_cols = ["timestamp", "namespace", "workload_kind", "workload", "pod", "container", "resource", "device", "value"]
    truth.usage.select(usage_cols).write_parquet(tmp_path / "usage.parquet")
    truth.containers.with_columns(
        pl.col(c).cast(pl.String) for c, d in truth.containers.schema.items() if d == pl.Categorical
    ).write_csv(tmp_path / "containers.csv")
    csv_usage = truth.usage.select(usage_cols).with_columns(
        pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        *[pl.col(c).cast(pl.String) for c in usage_cols[1:8]],
    )
    csv_usage.write_csv(tmp_path / "usage.csv")
    for usage_file in ("usage.parquet", "usage.csv"):
        out = tmp_path / f"snap-{usage_file}"
        result = run_cli("import", tmp_path / usage_file, "--containers", tmp_path / "containers.csv",
                         "--out", out, "--cluster", truth.manifest.cluster)
        assert result.code == 0, result.err
        imported = load_snapshot(out)
        assert frames_equal("usage", imported.usage, truth.usage)
        assert frames_equal("containers", imported.containers, truth.containers)
        assert imported.manifest.step_seconds == 300
        assert (imported.manifest.start, imported.manifest.end) == (truth.manifest.start, truth.manifest.end)


def test_bundled_sample_is_the_documented_simulation():
    sample = load_snapshot(sample_snapshot_dir())
    assert sample.manifest.source == "simulator workloads=60 days=14 step=300 seed=1"
    assert sample.equals(simulate(workloads=60, days=14, step_seconds=300, seed=1, cluster="sample"))


def test_no_source_uses_the_sample_and_says_so(tmp_path):
    result = run_cli("report", "--out", tmp_path / "r")
    assert result.code == 0, result.err
    assert "using the bundled sample snapshot" in " ".join(result.err.split())
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["summary"]["cluster"] == "sample"
    assert report["summary"]["workloads"] >= 60
    cost = run_cli("cost", "--by", "namespace")
    assert cost.code == 0, cost.err
    assert "Cost by namespace: sample" in cost.out and "wasteful workloads" in cost.out


def test_positional_source_is_a_snapshot_or_one_clear_error(tmp_path):
    sample = sample_snapshot_dir()
    result = run_cli("info", sample, "--format", "json")
    assert result.code == 0, result.err
    assert "bundled sample" not in result.err
    assert json.loads(result.out)["items"] == json.loads(run_cli("info", "--snapshot", sample, "--format", "json").out)["items"]
    assert_clean_error(run_cli("forecast", sample, "--snapshot", sample), 2, "give one source, not both")
    assert_clean_error(run_cli("recommend", tmp_path / "missing"), 2, "does not exist")


def test_simulate_exports_then_collect_from_kubectl(tmp_path):
    result = run_cli("simulate", "--workloads", 16, "--days", 0.5, "--step", "10m", "--seed", 9, "--out", tmp_path / "s",
                     "--openmetrics", tmp_path / "cluster.om", "--kube-json", tmp_path / "kube")
    assert result.code == 0, result.err
    text = (tmp_path / "cluster.om").read_text()
    assert text.startswith("# TYPE ") and text.endswith("# EOF\n")
    assert "kube_pod_container_resource_requests{" in text and "container_cpu_usage_seconds_total{" in text
    assert json.loads((tmp_path / "kube" / "all.json").read_text())["kind"] == "List"
    collected = run_cli("collect", "--from-kubectl", tmp_path / "kube" / "all.json", "--out", tmp_path / "spec")
    assert collected.code == 0, collected.err
    spec = load_snapshot(tmp_path / "spec")
    truth = load_snapshot(tmp_path / "s")
    running = truth.containers.filter(pl.col("ended_at").is_null())
    got = set(spec.containers.select(pl.concat_str([pl.col("pod").cast(pl.String), pl.col("container").cast(pl.String)],
                                                   separator="/")).to_series())
    want = set(running.select(pl.concat_str([pl.col("pod").cast(pl.String), pl.col("container").cast(pl.String)],
                                            separator="/")).to_series())
    assert want <= got
    assert "usage" in spec.manifest.absent
