"""The Kubernetes API collector against the loopback API server: frames, owners, paging, read-only.

The real ``kubernetes`` client talks HTTP to ``tests.support.kube_api_server`` through a generated
kubeconfig; the objects are the hand-written cluster of ``tests.support.kube_fixtures``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from analyzer.collectors.kube_fields import KINDS
from analyzer.collectors.kubernetes import KubeConfig, collect_kubernetes
from analyzer.schema import FRAMES
from tests.support import kube_fixtures as F
from tests.support.kube_api_server import KubeAPIServer, write_kubeconfig

AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MI, GI = 2**20, 2**30


@pytest.fixture
def server():
    with KubeAPIServer(F.objects()) as srv:
        yield srv


@pytest.fixture
def kubeconfig(tmp_path, server):
    return write_kubeconfig(tmp_path / "kubeconfig", server.url)


@pytest.fixture
def snap(kubeconfig, server):
    return collect_kubernetes(KubeConfig(kubeconfig=kubeconfig, page_size=4), collected_at=AT)


def rows(df: pl.DataFrame, **where) -> list[dict]:
    for k, v in where.items():
        df = df.filter(pl.col(k).cast(pl.String) == v)
    return df.to_dicts()


def one(df: pl.DataFrame, **where) -> dict:
    found = rows(df, **where)
    assert len(found) == 1, (where, found)
    return found[0]


def test_frames_follow_the_schema_and_manifest(snap):
    for name, frame in FRAMES.items():
        df = getattr(snap, name)
        assert dict(df.schema) == frame.schema, name
    m = snap.manifest
    assert m.cluster == "loopback-cluster"
    assert m.start == m.end == AT
    assert "usage" in m.absent and "gpus" in m.absent
    assert m.warnings == []
    assert "v1.33.1" in m.source and "but kube-system" in m.source
    assert snap.usage.is_empty()


def test_requests_and_limits_exact(snap):
    c = snap.containers
    app = one(c, pod="web-5d9f8b7c6d-abcde", container="app")
    assert (app["cpu_request"], app["cpu_limit"], app["memory_request"], app["memory_limit"]) == (0.25, None, 512 * MI, 768 * MI)
    server = one(c, container="server", workload="checkout")  # 1.5 cores, 1G, 1.5Gi
    assert (server["cpu_request"], server["memory_request"], server["memory_limit"]) == (1.5, 10**9, 1536 * MI)
    job = one(c, container="job")  # 2e9 bytes
    assert (job["cpu_request"], job["memory_request"], job["memory_limit"]) == (2.0, 2 * 10**9, 3 * GI)
    shell = one(c, container="shell")  # limits only: the request defaults to the limit
    assert (shell["cpu_request"], shell["cpu_limit"], shell["memory_request"]) == (0.1, 0.1, 64 * MI)
    mig = one(c, container="server", workload="mig-infer")
    assert (mig["gpu_resource"], mig["gpu_request"], mig["gpu_limit"]) == ("nvidia.com/mig-1g.5gb", 1, 1)
    assert one(c, pod="redis-0", container="metrics")["cpu_request"] == 0.05


def test_container_types(snap):
    c = snap.containers.filter(pl.col("pod") == "web-5d9f8b7c6d-fghij")
    types = dict(zip(c["container"].cast(pl.String), c["container_type"].cast(pl.String), strict=True))
    assert types == {"istio-init": "init", "istio-proxy": "sidecar", "app": "app"}
    assert one(snap.containers, container="fetch")["container_type"] == "init"


def test_owners_resolved(snap):
    c = snap.containers.unique(["pod"])
    owners = {r["pod"]: (r["workload_kind"], r["workload"], r["owner_kind"], r["owner_name"]) for r in c.to_dicts()}
    assert owners["web-5d9f8b7c6d-abcde"] == ("Deployment", "web", "ReplicaSet", "web-5d9f8b7c6d")
    assert owners["canary-6c8d9e7f5b-p1q2r"] == ("Rollout", "canary", "ReplicaSet", "canary-6c8d9e7f5b")
    assert owners["nightly-29400120-h7k2m"] == ("CronJob", "nightly", "Job", "nightly-29400120")
    assert owners["backfill-9xk2p"] == ("Job", "backfill", "Job", "backfill")
    assert owners["redis-1"] == ("StatefulSet", "redis", "StatefulSet", "redis")
    assert owners["node-exporter-x7k2p"] == ("DaemonSet", "node-exporter", "DaemonSet", "node-exporter")
    assert owners["debug"] == ("Pod", "debug", None, None)
    assert not any(p.startswith("coredns") for p in owners), "kube-system is excluded by default"
    started = one(snap.containers, pod="nightly-29400120-h7k2m", container="job")
    assert started["started_at"] == datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    assert started["ended_at"] == datetime(2026, 11, 23, 3, 12, tzinfo=UTC)
    assert one(snap.containers, pod="debug")["ended_at"] is None


def test_workloads(snap):
    w = snap.workloads
    keys = {(r["namespace"], r["workload_kind"], r["workload"]) for r in w.to_dicts()}
    assert keys == {("shop", "Deployment", "web"), ("shop", "Deployment", "checkout"), ("shop", "Rollout", "canary"),
                    ("shop", "Pod", "debug"), ("data", "StatefulSet", "redis"), ("data", "CronJob", "nightly"),
                    ("data", "Job", "backfill"), ("monitoring", "DaemonSet", "node-exporter"),
                    ("ml", "Deployment", "mig-infer")}
    web = one(w, workload="web")
    assert web["replicas"] == 3
    assert {"key": "deployment.kubernetes.io/revision", "value": "7"} in web["annotations"]
    assert not any(a["key"].endswith("last-applied-configuration") for a in web["annotations"])
    assert (web["hpa_name"], web["hpa_min_replicas"], web["hpa_max_replicas"]) == ("web", 3, 12)
    assert web["hpa_metrics"] == [
        {"metric": "cpu", "target_type": "Utilization", "target": 70.0},
        {"metric": "memory", "target_type": "AverageValue", "target": float(GI)},
        {"metric": "http_requests_per_second", "target_type": "AverageValue", "target": 0.25},
    ]
    assert (web["pdb_name"], web["pdb_min_available"], web["pdb_max_unavailable"]) == ("web-pdb", "2", None)
    assert (web["update_strategy"], web["max_unavailable"], web["max_surge"]) == ("RollingUpdate", "25%", "1")
    assert web["uses_empty_dir"] is True and web["uses_local_storage"] is False
    assert web["affinity"] == "preferred: karpenter.sh/capacity-type In [spot]"
    assert web["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}]
    checkout = one(w, workload="checkout")  # an HPA without metrics defaults to CPU 80 %
    assert checkout["hpa_metrics"] == [{"metric": "cpu", "target_type": "Utilization", "target": 80.0}]
    assert (checkout["hpa_min_replicas"], checkout["update_strategy"], checkout["max_surge"]) == (1, "Recreate", None)
    assert checkout["node_selector"] == [{"key": "karpenter.sh/nodepool", "value": "general"}]
    assert checkout["pdb_name"] is None
    redis = one(w, workload="redis")
    assert (redis["pdb_name"], redis["pdb_max_unavailable"], redis["uses_local_storage"]) == ("redis", "1", True)
    assert redis["affinity"] == ("required: karpenter.sh/capacity-type In [on-demand, reserved] and "
                                 "kubernetes.io/arch Exists")
    assert (redis["update_strategy"], redis["max_unavailable"]) == ("RollingUpdate", None)
    ds = one(w, workload="node-exporter")
    assert (ds["replicas"], ds["max_unavailable"], ds["max_surge"]) == (2, "10%", "0")
    assert ds["tolerations"] == [{"key": None, "operator": "Exists", "value": None, "effect": None}]
    canary = one(w, workload="canary")
    assert (canary["replicas"], canary["update_strategy"], canary["max_surge"]) == (2, "Canary", "50%")
    assert one(w, workload="backfill")["replicas"] == 2
    assert one(w, workload="nightly")["labels"] == [{"key": "app", "value": "nightly"}]
    debug = one(w, workload="debug")
    assert debug["replicas"] == 1 and debug["labels"] == [{"key": "run", "value": "debug"}]


def test_nodes(snap):
    n = snap.nodes
    expect = {"node-od": ("aws", "on-demand"), "node-spot": ("aws", "spot"), "node-eks": ("aws", "on-demand"),
              "node-gpu": ("aws", "on-demand"), "gke-spot-1": ("gcp", "spot"), "gke-std-1": ("gcp", "on-demand"),
              "aks-spot-1": ("azure", "spot"), "gpu-ts": ("aws", "unknown")}
    got = {r["node"]: (r["provider"], r["capacity_type"]) for r in n.to_dicts()}
    assert got == expect
    od = one(n, node="node-od")
    assert (od["instance_type"], od["region"], od["zone"]) == ("m5.2xlarge", "us-east-1", "us-east-1a")
    assert (od["cpu_capacity"], od["cpu_allocatable"]) == (8.0, 7.91)
    assert (od["memory_capacity"], od["memory_allocatable"]) == (32408312 * 1024, 31390456 * 1024)
    assert (od["gpu_count"], od["mig_strategy"], od["gpu_sharing"]) == (0, None, None)
    assert od["first_seen"] == datetime(2026, 11, 20, 8, tzinfo=UTC) and od["last_seen"] == AT
    gpu = one(n, node="node-gpu")
    assert (gpu["gpu_count"], gpu["gpu_model"], gpu["gpu_memory"]) == (8, "NVIDIA-A100-SXM4-40GB", 40960 * MI)
    assert (gpu["mig_strategy"], gpu["mig_config"], gpu["gpu_sharing"]) == ("mixed", "all-1g.5gb", "none")
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": None, "effect": "NoSchedule"}]
    ts = one(n, node="gpu-ts")  # time-slicing: 4 replicas of one physical GPU
    assert (ts["gpu_count"], ts["gpu_replicas"], ts["gpu_sharing"], ts["mig_strategy"]) == (1, 4, "time-slicing", "none")
    aks = one(n, node="aks-spot-1")
    assert aks["taints"] == [{"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}]
    assert {"key": "karpenter.sh/nodepool", "value": "general"} in od["labels"]


def test_events(snap):
    e = snap.events
    oom = one(e, reason="OOMKilled")
    assert (oom["pod"], oom["container"], oom["exit_code"], oom["restart_count"], oom["memory_limit"]) == (
        "web-5d9f8b7c6d-abcde", "app", 137, 4, 768 * MI)
    assert oom["timestamp"] == datetime(2026, 11, 23, 10, 15, tzinfo=UTC)
    assert (oom["workload_kind"], oom["workload"]) == ("Deployment", "web")
    done = one(e, reason="Completed")  # the Job's container; init containers finishing is not an event
    assert (done["workload"], done["container"], done["exit_code"]) == ("nightly", "job", 0)
    restart = one(e, reason="Restart")
    assert (restart["workload"], restart["restart_count"]) == ("checkout", 2)
    assert e.height == 3


def test_namespaces(snap):
    ns = {r["namespace"]: {kv["key"]: kv["value"] for kv in r["labels"]} for r in snap.namespaces.to_dicts()}
    assert set(ns) == {"shop", "data", "monitoring", "ml"}
    assert ns["shop"]["team"] == "web" and ns["shop"]["cost-center"] == "cc-1001"


def test_pagination_reads_every_object_once(server, kubeconfig):
    snap = collect_kubernetes(KubeConfig(kubeconfig=kubeconfig, page_size=2, include_kube_system=True))
    pods = server.requests_for("pods")
    assert len(pods) == 8  # 15 pods at 2 per page
    assert all(q["limit"] == ["2"] for q in pods)
    assert "continue" not in pods[0] and all("continue" in q for q in pods[1:])
    assert snap.containers["pod"].n_unique() == 15
    assert snap.containers.select(["namespace", "pod", "container"]).is_duplicated().sum() == 0
    assert one(snap.workloads, workload="coredns")["workload_kind"] == "Deployment"


def test_read_only(server, kubeconfig):
    collect_kubernetes(KubeConfig(kubeconfig=kubeconfig, page_size=3))
    collect_kubernetes(KubeConfig(kubeconfig=kubeconfig, namespaces=("shop", "data")))
    assert server.methods() == {"GET"}
    listed = {p.rstrip("/").split("/")[-1] for m, p, _ in server.seen if p != "/version"}
    assert listed >= {k.resource for k in KINDS}


def test_namespace_filter(server, kubeconfig):
    snap = collect_kubernetes(KubeConfig(kubeconfig=kubeconfig, namespaces=("shop", "kube-system")))
    assert set(snap.containers["namespace"].cast(pl.String).unique()) == {"shop", "kube-system"}
    assert set(snap.namespaces["namespace"].cast(pl.String)) == {"shop", "kube-system"}
    paths = {p for _, p, _ in server.seen}
    assert "/api/v1/namespaces/shop/pods" in paths and "/api/v1/pods" not in paths
    assert "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts" in paths
    assert "/api/v1/namespaces/shop" in paths  # namespaces are read by name (verb get)
    assert snap.nodes.height == 8  # nodes are cluster-wide
    assert "namespaces=shop,kube-system" in snap.manifest.source


def test_missing_namespace_is_a_warning(server, kubeconfig):
    snap = collect_kubernetes(KubeConfig(kubeconfig=kubeconfig, namespaces=("shop", "nope")))
    assert any("namespace nope does not exist" in w for w in snap.manifest.warnings)


def test_snapshot_round_trips(snap, tmp_path):
    from analyzer.snapshot import load_snapshot

    path = snap.write(tmp_path / "spec")
    back = load_snapshot(path)
    assert back.equals(snap)
