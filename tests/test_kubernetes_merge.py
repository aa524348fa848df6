"""merge_specs: spec from the API, usage from Prometheus, disagreements reported, nothing dropped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from analyzer.collectors.kubernetes import collect_from_kubectl, merge_specs
from analyzer.snapshot import Manifest, Snapshot, load_snapshot
from tests.support import kube_fixtures as F

START = datetime(2026, 11, 22, tzinfo=UTC)
END = START + timedelta(hours=1)


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("kubectl") / "cluster.json"
    path.write_text(json.dumps(F.kubectl_list()))
    return collect_from_kubectl(path, cluster="prod", collected_at=END)


def usage_snapshot() -> Snapshot:
    """What a Prometheus collection of the same cluster could look like over one hour."""
    series = [  # namespace, kind, workload, pod, container
        ("shop", "Deployment", "web", "web-5d9f8b7c6d-abcde", "app"),
        ("shop", "Deployment", "web", "web-5d9f8b7c6d-abcde", "istio-proxy"),
        ("shop", "ReplicaSet", "checkout-7f6b5c4d3e", "checkout-7f6b5c4d3e-x1y2z", "server"),  # owner guessed
        ("shop", "Deployment", "legacy", "legacy-6b7c8d9e0f-zzzzz", "app"),  # deleted since
        ("kube-system", "Deployment", "coredns", "coredns-5d78c9869d-aaaaa", "coredns"),  # not read by the API
    ]
    times = [START + timedelta(minutes=5 * k) for k in range(12)]
    usage = pl.DataFrame(
        [{"timestamp": t, "namespace": s[0], "workload_kind": s[1], "workload": s[2], "pod": s[3], "container": s[4],
          "resource": r, "device": None, "value": 0.1 if r == "cpu" else 2.0**27}
         for s in series for t in times for r in ("cpu", "memory")])
    containers = pl.DataFrame([{"namespace": s[0], "workload_kind": s[1], "workload": s[2], "pod": s[3],
                                "container": s[4], "container_type": "app", "cpu_request": 0.3}
                               for s in series])
    workloads = pl.DataFrame([{"namespace": s[0], "workload_kind": s[1], "workload": s[2], "replicas": 1}
                              for s in {s[:3] for s in series}])
    nodes = pl.DataFrame([
        {"node": "node-od", "capacity_type": "unknown", "hourly_price": 0.384, "price_source": "opencost",
         "first_seen": START, "last_seen": END, "labels": []},
        {"node": "node-old", "capacity_type": "spot", "hourly_price": 0.15, "price_source": "opencost",
         "first_seen": START, "last_seen": START + timedelta(minutes=20), "labels": []},
    ], schema_overrides={"labels": pl.List(pl.Struct({"key": pl.String, "value": pl.String}))})
    events = pl.DataFrame([{"timestamp": datetime(2026, 11, 23, 10, 15, 30, tzinfo=UTC), "namespace": "shop",
                            "workload_kind": "Deployment", "workload": "web", "pod": "web-5d9f8b7c6d-abcde",
                            "container": "app", "reason": "OOMKilled", "exit_code": 137, "restart_count": 4}])
    manifest = Manifest(cluster="prod", start=START, end=END, step_seconds=300, source="prometheus http://prom:9090",
                        absent=["replicaset_owners", "hpa", "gpu"], warnings=["kube_replicaset_owner is missing"])
    return Snapshot.build(manifest, usage=usage, containers=containers, workloads=workloads, nodes=nodes,
                          events=events)


@pytest.fixture(scope="module")
def merged(spec):
    return merge_specs(usage_snapshot(), spec)


def keys(df: pl.DataFrame) -> set[tuple]:
    return {tuple(r) for r in df.select(pl.col("namespace", "workload_kind", "workload").cast(pl.String)).iter_rows()}


def test_report_names_every_disagreement(merged):
    _, report = merged
    assert report.workloads_only_in_usage == [("shop", "Deployment", "legacy")]
    assert report.workloads_outside_spec_scope == [("kube-system", "Deployment", "coredns")]
    assert ("data", "StatefulSet", "redis") in report.workloads_only_in_spec
    assert ("shop", "Deployment", "web") not in report.workloads_only_in_spec
    assert ("shop", "Deployment", "checkout") not in report.workloads_only_in_spec  # its pod was moved to it
    assert report.pods_reassigned == [("shop", "checkout-7f6b5c4d3e-x1y2z", "ReplicaSet/checkout-7f6b5c4d3e",
                                       "Deployment/checkout")]
    assert report.nodes_only_in_usage == ["node-old"]
    assert "node-od" not in report.nodes_only_in_spec and "node-gpu" in report.nodes_only_in_spec
    assert report.containers_only_in_usage == 2 and not report.clean
    lines = report.lines()
    assert any(line.startswith("1 workloads have usage but no spec in the API") and "shop/Deployment/legacy" in line
               for line in lines)
    assert json.loads(json.dumps(report.to_json()))["pods_reassigned"][0]["to"] == "Deployment/checkout"


def test_nothing_is_dropped(merged, spec):
    snap, _ = merged
    assert snap.usage.height == usage_snapshot().usage.height
    assert keys(snap.workloads) >= keys(spec.workloads) | {("shop", "Deployment", "legacy"),
                                                            ("kube-system", "Deployment", "coredns")}
    assert ("shop", "ReplicaSet", "checkout-7f6b5c4d3e") not in keys(snap.workloads)
    assert set(snap.nodes["node"].cast(pl.String)) == set(spec.nodes["node"].cast(pl.String)) | {"node-old"}
    legacy = snap.containers.filter(pl.col("pod") == "legacy-6b7c8d9e0f-zzzzz")
    assert legacy.height == 1 and legacy["cpu_request"][0] == 0.3


def test_spec_wins_for_specs_usage_for_usage(merged):
    snap, _ = merged
    moved = snap.usage.filter(pl.col("pod") == "checkout-7f6b5c4d3e-x1y2z")
    assert set(moved["workload_kind"].cast(pl.String)) == {"Deployment"}
    assert set(moved["workload"].cast(pl.String)) == {"checkout"}
    app = snap.containers.filter((pl.col("pod") == "web-5d9f8b7c6d-abcde") & (pl.col("container") == "app")).row(
        0, named=True)
    assert (app["cpu_request"], app["memory_limit"]) == (0.25, 768 * 2**20)  # from the API
    od = snap.nodes.filter(pl.col("node") == "node-od").row(0, named=True)
    assert (od["hourly_price"], od["price_source"], od["first_seen"]) == (0.384, "opencost", START)
    assert (od["capacity_type"], od["instance_type"]) == ("on-demand", "m5.2xlarge")  # API labels beat "unknown"
    oom = snap.events.filter(pl.col("reason") == "OOMKilled")
    assert oom.height == 1, "the API's copy of a termination Prometheus saw is not doubled"
    web = snap.workloads.filter(pl.col("workload") == "web").row(0, named=True)
    assert web["hpa_name"] == "web" and web["pdb_name"] == "web-pdb"


def test_manifest(merged, tmp_path):
    snap, report = merged
    m = snap.manifest
    assert (m.start, m.end, m.step_seconds, m.cluster) == (START, END, 300, "prod")
    assert m.source.startswith("prometheus http://prom:9090 + kubectl cluster.json")
    assert "replicaset_owners" not in m.absent and "hpa" not in m.absent and "gpu" in m.absent
    assert "kube_replicaset_owner is missing" in m.warnings
    assert all(line in m.warnings for line in report.lines())
    assert load_snapshot(snap.write(tmp_path / "merged")).equals(snap)


def test_merge_of_identical_sources_is_clean(spec):
    snap, report = merge_specs(spec, spec)
    assert report.pods_reassigned == [] and report.nodes_only_in_usage == [] and report.workloads_only_in_usage == []
    assert snap.containers.height == spec.containers.height and snap.workloads.height == spec.workloads.height
