"""End to end: simulated cluster -> genuine API lists -> loopback API server -> collector -> frames.

The simulator's snapshot is the ground truth; ``analyzer.simulator.kube_objects.kube_lists``
renders it as the API server would list it at the window's end (running pods, finished pods
the API keeps, their controllers, HPAs, PDBs, nodes, namespaces). Every object is validated
against the Kubernetes OpenAPI schema, served through the real client with pagination, and
the collected frames must give back the truth: requests and limits exact, owners resolved,
spot/on-demand nodes, HPA and PDB facts, sidecars, OOM kills.
"""

from __future__ import annotations

import json

import kubernetes_validate
import polars as pl
import pytest

from analyzer.collectors.kubernetes import KubeConfig, collect_from_kubectl, collect_kubernetes
from analyzer.schema import FRAMES
from analyzer.simulator import kube_objects, simulate
from analyzer.snapshot import frames_equal
from tests.support.kube_api_server import KubeAPIServer, write_kubeconfig


SIM = {"workloads": 40, "days": 2, "step_seconds": 300, "seed": 5}
PROVIDERS = ("aws", "gcp", "azure")


def _str(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(pl.String) for c, t in df.schema.items()
                           if t == pl.Categorical or isinstance(t, pl.Enum))


@pytest.fixture(scope="module", params=PROVIDERS)
def world(request, tmp_path_factory):
    truth = simulate(**SIM, provider=request.param)
    lists = kube_objects.kube_lists(truth)
    with KubeAPIServer(lists) as srv:
        kc = write_kubeconfig(tmp_path_factory.mktemp("kc") / "kubeconfig", srv.url)
        snap = collect_kubernetes(KubeConfig(kubeconfig=kc, page_size=25, include_kube_system=True),
                                  collected_at=truth.manifest.end)
        methods = srv.methods()
    return truth, lists, snap, methods


def test_objects_are_genuine(world):
    """Against the OpenAPI schema (strict): on AWS every object but pods and one pod per workload;
    on GCP and Azure (only nodes, tolerations and selectors differ) the nodes and one of each kind."""
    truth, lists, _, methods = world
    everything = truth.nodes["provider"][0] == "aws"
    n = 0
    for resource, lst in lists.items():
        assert lst["kind"].endswith("List")
        if resource == "rollouts":  # a CRD: no OpenAPI schema to check against
            continue
        items = lst["items"]
        if not everything and resource != "nodes":
            items = items[:1]
        elif resource == "pods":
            firsts = {}
            for item in items:
                owner = (item["metadata"].get("ownerReferences") or [{}])[0].get("name", item["metadata"]["name"])
                firsts.setdefault((item["metadata"]["namespace"], owner), item)
            items = list(firsts.values())
        for item in items:
            kubernetes_validate.validate({"apiVersion": lst["apiVersion"], "kind": lst["kind"][:-4], **item}
                                         if "kind" not in item else item, "1.33", strict=True)
            n += 1
    assert n > (80 if everything else 10)
    assert methods == {"GET"}


def test_containers_match_the_truth(world):
    truth, lists, snap, _ = world
    listed = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in lists["pods"]["items"]}
    cols = ["namespace", "workload_kind", "workload", "pod", "container", "container_type", "owner_kind",
            "owner_name", "node", "cpu_request", "cpu_limit", "memory_request", "memory_limit", "gpu_resource",
            "gpu_request", "gpu_limit", "started_at", "ended_at"]
    expect = _str(truth.containers).filter(
        pl.struct("namespace", "pod").map_elements(lambda r: (r["namespace"], r["pod"]) in listed,
                                                   return_dtype=pl.Boolean)).select(cols)
    got = _str(snap.containers).select(cols)
    key = ["namespace", "pod", "container"]
    assert got.height == expect.height > 50
    diff = got.join(expect, on=cols, how="anti", nulls_equal=True)
    assert diff.is_empty(), diff.join(expect, on=key, suffix="_truth").head(5).to_dicts()
    assert got.filter(pl.col("container_type") == "sidecar").height > 0, "istio sidecars are marked"
    assert set(got["workload_kind"]) >= {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Job"}


WORKLOAD_FACTS = ["replicas", "hpa_name", "hpa_min_replicas", "hpa_max_replicas", "pdb_name", "pdb_min_available",
                  "pdb_max_unavailable", "update_strategy", "max_unavailable", "max_surge", "uses_empty_dir",
                  "uses_local_storage", "affinity"]


def test_workloads_match_the_truth(world):
    truth, _, snap, _ = world
    key = ["namespace", "workload_kind", "workload"]
    t, g = _str(truth.workloads), _str(snap.workloads)
    assert sorted(g.select(key).rows()) == sorted(t.select(key).rows())
    joined = g.join(t, on=key, suffix="_truth")
    for col in WORKLOAD_FACTS:
        bad = joined.filter(pl.col(col).ne_missing(pl.col(f"{col}_truth")))
        assert bad.is_empty(), (col, bad.select(*key, col, f"{col}_truth").head(5).to_dicts())
    for row in joined.to_dicts():
        where = (row["namespace"], row["workload"])
        as_dict = lambda pairs: {p["key"]: p["value"] for p in pairs or []}
        assert as_dict(row["labels"]) == as_dict(row["labels_truth"]), where
        assert as_dict(row["annotations"]) == as_dict(row["annotations_truth"]), where
        assert as_dict(row["node_selector"]) == as_dict(row["node_selector_truth"]), where
        assert (row["tolerations"] or []) == (row["tolerations_truth"] or []), where
        metrics = [{**m, "target": round(m["target"], 9)} for m in row["hpa_metrics"] or []]
        assert metrics == [{**m, "target": round(m["target"], 9)} for m in row["hpa_metrics_truth"] or []], where
    assert g.filter(pl.col("hpa_name").is_not_null()).height > 0
    assert g.filter(pl.col("pdb_name").is_not_null()).height > 0


def test_nodes_match_the_truth(world):
    truth, _, snap, _ = world
    end = truth.manifest.end
    t = _str(truth.nodes).filter(pl.col("last_seen").is_null() | (pl.col("last_seen") >= end))
    g = _str(snap.nodes)
    assert sorted(g["node"]) == sorted(t["node"])
    cols = ["instance_type", "provider", "region", "zone", "capacity_type", "cpu_capacity", "cpu_allocatable",
            "memory_capacity", "memory_allocatable", "gpu_count", "gpu_model", "gpu_memory", "mig_strategy",
            "mig_config", "gpu_sharing", "gpu_replicas", "taints"]
    joined = g.join(t, on="node", suffix="_truth")
    for col in cols:
        bad = joined.filter(pl.col(col).ne_missing(pl.col(f"{col}_truth")))
        assert bad.is_empty(), (col, bad.select("node", col, f"{col}_truth").head(5).to_dicts())
    for row in joined.to_dicts():
        assert sorted(map(tuple, (d.values() for d in row["labels"]))) == sorted(
            map(tuple, (d.values() for d in row["labels_truth"])))
    kinds = set(g["capacity_type"])
    assert {"spot", "on-demand"} <= kinds and "unknown" not in kinds


def test_oom_kills_are_seen(world):
    """The API keeps a container's last termination: the last OOM kill of every running container."""
    truth, lists, snap, _ = world
    end = truth.manifest.end
    running = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in lists["pods"]["items"]
               if p["status"]["phase"] == "Running"}
    ooms = _str(truth.events).filter((pl.col("reason") == "OOMKilled") & (pl.col("timestamp") <= end))
    last = ooms.sort("timestamp").group_by("namespace", "pod", "container").last()
    last = last.filter(pl.struct("namespace", "pod").map_elements(lambda r: (r["namespace"], r["pod"]) in running,
                                                                  return_dtype=pl.Boolean))
    assert last.height > 0
    got = _str(snap.events).filter(pl.col("reason") == "OOMKilled")
    cols = ["namespace", "workload_kind", "workload", "pod", "container", "timestamp", "exit_code", "restart_count",
            "memory_limit"]
    missing = last.select(cols).join(got.select(cols), on=cols, how="anti")
    assert missing.is_empty(), missing.head(5).to_dicts()
    completed = _str(snap.events).filter(pl.col("reason") == "Completed")
    assert set(completed["workload_kind"]) <= {"Job", "CronJob"}


def test_namespaces_match_the_truth(world):
    truth, _, snap, _ = world
    as_map = lambda df: {r["namespace"]: {p["key"]: p["value"] for p in r["labels"]}
                         for r in _str(df).to_dicts()}
    got, expect = as_map(snap.namespaces), as_map(truth.namespaces)
    assert {k: got[k] for k in expect} == expect


def test_kubectl_file_gives_the_same_frames(world, tmp_path):
    truth, _, snap, _ = world
    path = tmp_path / "all.json"
    path.write_text(json.dumps(kube_objects.kubectl_list(truth)))
    offline = collect_from_kubectl(path, include_kube_system=True, collected_at=truth.manifest.end)
    for name in FRAMES:
        assert frames_equal(name, getattr(offline, name), getattr(snap, name)), name
    written = kube_objects.write_kube_json(truth, tmp_path / "dir")
    from_dir = collect_from_kubectl(written if written else tmp_path / "dir", include_kube_system=True,
                                    collected_at=truth.manifest.end)
    for name in FRAMES:
        assert frames_equal(name, getattr(from_dir, name), getattr(snap, name)), name
