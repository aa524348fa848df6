"""Spot recommender (issue 7, item 3): readiness rules on tiny hand-made clusters, patches that touch
only placement and keep existing tolerations/affinity terms, the simulator's clusters on the three
providers, and the patches applied by real ``kubectl kustomize``."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from functools import cache

import kubernetes_validate
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import yamlio
from analyzer.cost import HOURS_PER_MONTH, load_pricing
from analyzer.simulator import simulate
from analyzer.simulator.kube_objects import kube_lists
from analyzer.snapshot import Manifest, Snapshot
from recommenders.rates import workload_rates
from recommenders.spot import recommend_spot, spot_patch
from recommenders.spot_checks import KUBECOST_READY, SAFE_TO_EVICT, SPOT_ANNOTATION, spot_readiness
from recommenders.spot_platform import detect_platform


GIB = 2**30
START = datetime(2026, 11, 2, tzinfo=UTC)
PLACEMENT_KEYS = {"nodeSelector", "affinity", "tolerations"}
AKS_KEY = "kubernetes.azure.com/scalesetpriority"
AKS_TOL = {"key": AKS_KEY, "operator": "Equal", "value": "spot", "effect": "NoSchedule"}

# -- tiny clusters --------------------------------------------------------------------------------

NODES = {
    "aks": {
        "provider": "azure", "od_type": "Standard_D4s_v5", "sp_type": "Standard_D4s_v5",
        "od_labels": {"kubernetes.azure.com/agentpool": "general"},
        "sp_labels": {"kubernetes.azure.com/agentpool": "spot", AKS_KEY: "spot"},
        "sp_taints": [{"key": AKS_KEY, "value": "spot", "effect": "NoSchedule"}],
    },
    "karpenter": {
        "provider": "aws", "od_type": "m5.xlarge", "sp_type": "m5.xlarge",
        "od_labels": {"karpenter.sh/capacity-type": "on-demand", "karpenter.sh/nodepool": "general"},
        "sp_labels": {"karpenter.sh/capacity-type": "spot", "karpenter.sh/nodepool": "spot"},
        "sp_taints": [],
    },
    "eks": {
        "provider": "aws", "od_type": "m5.xlarge", "sp_type": "m5.xlarge",
        "od_labels": {"eks.amazonaws.com/capacityType": "ON_DEMAND", "eks.amazonaws.com/nodegroup": "general"},
        "sp_labels": {"eks.amazonaws.com/capacityType": "SPOT", "eks.amazonaws.com/nodegroup": "spot"},
        "sp_taints": [],
    },
}


def _kv(d: dict | None) -> list[dict]:
    return [{"key": k, "value": v} for k, v in sorted((d or {}).items())]


def workload(name: str, kind: str = "Deployment", replicas: int | None = 4, *, ns: str = "shop",
             annotations: dict | None = None, tolerations: list[dict] | None = None,
             node_selector: dict | None = None, **facts) -> dict:
    """A workloads-frame row that passes every check unless told otherwise."""
    row = {"namespace": ns, "workload_kind": kind, "workload": name, "replicas": replicas,
           "labels": _kv({"app": name}), "annotations": _kv(annotations), "update_strategy": "RollingUpdate",
           "max_unavailable": "25%", "max_surge": "25%", "uses_empty_dir": False, "uses_local_storage": False,
           "node_selector": _kv(node_selector), "tolerations": tolerations or [], "affinity": None,
           "pdb_name": None, "pdb_min_available": None, "pdb_max_unavailable": None}
    row.update(facts)
    return row


def cluster(rows: list[dict], platform: str | None = "aks", *, spot_nodes: bool = True, on_spot: tuple[str, ...] = (),
            namespaces: dict[str, dict] | None = None, cpu: float | None = 0.5, memory: int | None = GIB,
            runs: dict[str, tuple[float, float]] | None = None) -> Snapshot:
    """A snapshot of ``rows``: one pod per workload with ``cpu``/``memory`` requested, on an on-demand
    node (or the spot node for the names in ``on_spot``); ``platform=None`` = no nodes at all;
    ``runs``: name -> (start, end) hours into the day for pods that did not run all along."""
    end = START + timedelta(days=1)
    containers, usage = [], []
    for r in rows:
        node = "spot-1" if r["workload"] in on_spot else "od-1"
        pod = f"{r['workload']}-abc12"
        containers.append({"namespace": r["namespace"], "workload_kind": r["workload_kind"],
                           "workload": r["workload"], "pod": pod, "container": "app", "container_type": "app",
                           "node": node if platform else None, "cpu_request": cpu, "memory_request": memory,
                           "started_at": START - timedelta(days=3), "ended_at": None})
        if runs and r["workload"] in runs:
            a, b = runs[r["workload"]]
            containers[-1].update(started_at=START + timedelta(hours=a), ended_at=START + timedelta(hours=b))
        for h in range(3):
            for res, v in (("cpu", 0.3), ("memory", float(GIB // 2))):
                usage.append({"timestamp": START + timedelta(hours=h), "namespace": r["namespace"],
                              "workload_kind": r["workload_kind"], "workload": r["workload"], "pod": pod,
                              "container": "app", "resource": res, "device": None, "value": v})
    frames: dict = {"workloads": pl.DataFrame(rows, strict=False), "containers": pl.DataFrame(containers, strict=False),
                    "usage": pl.DataFrame(usage, strict=False)}
    if platform is not None:
        p = NODES[platform]
        nodes = [{"node": "od-1", "instance_type": p["od_type"], "provider": p["provider"],
                  "capacity_type": "on-demand", "labels": _kv(p["od_labels"]), "taints": [],
                  "cpu_capacity": 4.0, "cpu_allocatable": 3.9, "memory_capacity": 16 * GIB,
                  "memory_allocatable": 15 * GIB, "gpu_count": 0, "first_seen": START, "last_seen": end}]
        if spot_nodes:
            nodes.append({**nodes[0], "node": "spot-1", "instance_type": p["sp_type"], "capacity_type": "spot",
                          "labels": _kv(p["sp_labels"]), "taints": p["sp_taints"]})
        frames["nodes"] = pl.DataFrame(nodes, strict=False)
    if namespaces:
        frames["namespaces"] = pl.DataFrame([{"namespace": n, "labels": _kv(lab)} for n, lab in namespaces.items()])
    manifest = Manifest(cluster="spot-test", start=START, end=end, step_seconds=3600, source="tests")
    return Snapshot.build(manifest, **frames)


def by_name(result) -> tuple[dict, dict]:
    recs = {r.target.workload: r for r in result.recommendations}
    skips = {s.target.workload: s for s in result.skipped}
    assert not set(recs) & set(skips), "a workload is both recommended and skipped"
    return recs, skips


def assert_placement_only(patch: dict) -> None:
    assert patch, "an empty patch"
    assert set(patch) <= PLACEMENT_KEYS, patch
    if "affinity" in patch:
        assert set(patch["affinity"]) == {"nodeAffinity"}, patch


# -- the rules ------------------------------------------------------------------------------------


def test_a_ready_deployment_is_recommended_with_the_saving_from_requests():
    snap = cluster([workload("api", replicas=4)])
    book = load_pricing()
    rates = workload_rates(snap, pricing=book)
    result = recommend_spot(snap, rates, pricing=book)
    recs, _ = by_name(result)
    rec = recs["api"]
    assert (rec.kind, rec.resource, rec.replicas) == ("spot", "placement", 4)
    r = rates.frame.row(0, named=True)
    f = book.spot_discounts["azure"].fraction
    expected = (0.5 * r["cpu_rate"] + 1.0 * r["memory_rate"]) * f * 4 * HOURS_PER_MONTH
    assert rec.monthly_saving_usd == pytest.approx(expected)
    assert rec.monthly_saving_usd > 0
    assert any(book.spot_discounts["azure"].source in n for n in rec.evidence.notes)
    assert any("interruption" in n for n in rec.evidence.notes)
    assert rec.confidence >= 0.75 and 0 < rec.risk < 1
    assert rec.saving_basis == "node prices"


def test_single_replica_is_never_recommended_even_when_opted_in():
    snap = cluster([workload("solo", replicas=1, annotations={SPOT_ANNOTATION: "true"}),
                    workload("zero", replicas=0)])
    recs, skips = by_name(recommend_spot(snap))
    assert not recs
    assert "single replica" in skips["solo"].reason and "no opt-in overrides" in skips["solo"].reason
    assert "scaled to zero" in skips["zero"].reason


def test_statefulsets_need_the_override_and_never_with_local_storage():
    snap = cluster([
        workload("db", "StatefulSet", 3),
        workload("db-ok", "StatefulSet", 3, annotations={SPOT_ANNOTATION: "true"}),
        workload("db-local", "StatefulSet", 3, annotations={SPOT_ANNOTATION: "true"}, uses_local_storage=True),
        workload("dep-local", "Deployment", 4, uses_local_storage=True),
    ])
    recs, skips = by_name(recommend_spot(snap))
    assert set(recs) == {"db-ok"}
    assert "StatefulSet" in skips["db"].reason and SPOT_ANNOTATION in skips["db"].reason
    assert "local persistent volumes" in skips["db-local"].reason
    assert "local persistent volumes" in skips["dep-local"].reason
    # the override is said, and costs confidence
    assert any("overriding" in n and "StatefulSet" in n for n in recs["db-ok"].evidence.notes)
    assert recs["db-ok"].confidence < 0.9


def test_empty_dir_is_not_ready_unless_opted_in():
    snap = cluster([workload("cache", uses_empty_dir=True),
                    workload("cache-ok", uses_empty_dir=True, annotations={KUBECOST_READY: "true"})])
    recs, skips = by_name(recommend_spot(snap))
    assert "emptyDir" in skips["cache"].reason
    assert "cache-ok" in recs
    assert any(KUBECOST_READY in n for n in recs["cache-ok"].evidence.notes)


@pytest.mark.parametrize(("replicas", "min_available", "max_unavailable", "ready"), [
    (5, "4", None, False),     # 80% > 50%
    (4, "75%", None, False),
    (4, "50%", None, True),    # exactly half is still ready (Kubecost: > 0.5)
    (4, "2", None, True),
    (4, None, "1", True),      # one-at-a-time drains are fine
    (4, None, "0", False),     # no drain at all
    (4, None, "0%", False),
])
def test_pdb_not_too_strict(replicas, min_available, max_unavailable, ready):
    snap = cluster([workload("api", replicas=replicas, pdb_name="api-pdb", pdb_min_available=min_available,
                             pdb_max_unavailable=max_unavailable)])
    recs, skips = by_name(recommend_spot(snap))
    assert ("api" in recs) == ready
    if not ready:
        assert "PodDisruptionBudget api-pdb" in skips["api"].reason


@pytest.mark.parametrize(("replicas", "strategy", "max_unavailable", "max_surge", "ready"), [
    (3, "RollingUpdate", "25%", "25%", False),  # floor(0.75) = 0 unavailable: keeps 3 of 3
    (4, "RollingUpdate", "25%", "25%", True),   # Kubecost: default 25% passes above 3 replicas
    (4, "RollingUpdate", None, None, True),     # defaults
    (6, "RollingUpdate", "0", "1", False),      # zero-downtime rollouts: 100% kept
    (2, "RollingUpdate", "1", "0", True),
    (2, "Recreate", None, None, True),          # not a rolling update
])
def test_rolling_update_headroom(replicas, strategy, max_unavailable, max_surge, ready):
    snap = cluster([workload("api", replicas=replicas, update_strategy=strategy, max_unavailable=max_unavailable,
                             max_surge=max_surge)])
    recs, skips = by_name(recommend_spot(snap))
    assert ("api" in recs) == ready
    if not ready:
        assert "rolling update keeps" in skips["api"].reason


def test_safe_to_evict_false_is_not_ready():
    snap = cluster([workload("pinned", annotations={SAFE_TO_EVICT: "false"}),
                    workload("fine", annotations={SAFE_TO_EVICT: "true"})])
    recs, skips = by_name(recommend_spot(snap))
    assert set(recs) == {"fine"}
    assert "safe-to-evict" in skips["pinned"].reason


def test_overrides_both_ways():
    snap = cluster([
        workload("out", annotations={SPOT_ANNOTATION: "false"}),  # ready, but opted out
        workload("in", uses_empty_dir=True, annotations={SAFE_TO_EVICT: "false", SPOT_ANNOTATION: "True"}),
        workload("ns-in", ns="batch", uses_empty_dir=True),  # namespace label opts in
        workload("ns-out-but-in", ns="batch", annotations={SPOT_ANNOTATION: "false"}),  # controller wins
        workload("ds-in", "DaemonSet", 10, annotations={SPOT_ANNOTATION: "true"}),  # hard: never
    ], namespaces={"batch": {SPOT_ANNOTATION: "true"}, "shop": {}})
    recs, skips = by_name(recommend_spot(snap))
    assert set(recs) == {"in", "ns-in"}
    assert "opted out" in skips["out"].reason
    assert "opted out" in skips["ns-out-but-in"].reason
    assert "DaemonSet" in skips["ds-in"].reason
    overridden = next(n for n in recs["in"].evidence.notes if "overriding" in n)
    assert "emptyDir" in overridden and "safe-to-evict" in overridden
    assert recs["in"].confidence < recs["ns-in"].confidence < 0.9


def test_workloads_already_on_spot_are_skipped():
    snap = cluster([
        workload("ran-there"),
        workload("preferred", affinity="preferred: kubernetes.azure.com/scalesetpriority In [spot]"),
        workload("selected", node_selector={AKS_KEY: "spot"}),
        workload("other-label", affinity="required: karpenter.sh/capacity-type In [on-demand, spot]"),
    ], on_spot=("ran-there",))
    recs, skips = by_name(recommend_spot(snap))
    assert not recs
    assert "already runs on spot" in skips["ran-there"].reason
    for name in ("preferred", "selected", "other-label"):
        assert "already placed on spot" in skips[name].reason


def test_controllers_that_are_never_candidates_and_cronjobs_only_opted_in():
    snap = cluster([
        workload("agent", "DaemonSet", 12),
        workload("one-off", "Pod", 1),
        workload("backfill", "Job", 4, update_strategy=None, max_unavailable=None, max_surge=None),
        workload("nightly", "CronJob", 1, update_strategy=None, max_unavailable=None, max_surge=None),
        workload("nightly-ok", "CronJob", 1, update_strategy=None, max_unavailable=None, max_surge=None,
                 annotations={SPOT_ANNOTATION: "true"}),
        workload("rollout", "Rollout", 5, update_strategy="Canary", max_unavailable="1", max_surge="25%"),
    ])
    recs, skips = by_name(recommend_spot(snap))
    assert set(recs) == {"nightly-ok", "rollout"}
    assert "DaemonSet" in skips["agent"].reason
    assert "bare Pod" in skips["one-off"].reason
    assert "Job" in skips["backfill"].reason
    assert "restarts from scratch" in skips["nightly"].reason
    assert len(skips) + len(recs) == 6  # every workload is accounted for


def test_a_cronjob_saving_counts_only_the_hours_its_runs_hold_capacity():
    cron = {"update_strategy": None, "max_unavailable": None, "max_surge": None,
            "annotations": {SPOT_ANNOTATION: "true"}}
    snap = cluster([workload("nightly", "CronJob", 1, **cron), workload("api")],
                   runs={"nightly": (0.0, 6.0)})
    recs, _ = by_name(recommend_spot(snap))
    assert recs["nightly"].evidence.observed["pods_priced"] == pytest.approx(0.25)  # 6 h of a 24 h window
    snap_all_day = cluster([workload("nightly", "CronJob", 1, **cron)])
    whole = recommend_spot(snap_all_day).recommendations[0]
    assert recs["nightly"].monthly_saving_usd == pytest.approx(whole.monthly_saving_usd * 0.25)
    assert any("averaged 0.25 pods" in n for n in recs["nightly"].evidence.notes)


def test_aks_toleration_is_added_and_existing_tolerations_are_kept():
    dedicated = {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}
    everything = {"key": None, "operator": "Exists", "value": None, "effect": None}
    snap = cluster([workload("web", tolerations=[dedicated]), workload("plain"),
                    workload("tolerant", tolerations=[everything])])
    recs, _ = by_name(recommend_spot(snap))
    tol = recs["web"].pod_spec_patch["tolerations"]
    assert tol == [dedicated, AKS_TOL]  # the list is replaced on merge: the old entry must be in it
    assert any("tolerations have no merge key" in n for n in recs["web"].evidence.notes)
    assert recs["plain"].pod_spec_patch["tolerations"] == [AKS_TOL]
    assert "tolerations" not in recs["tolerant"].pod_spec_patch  # already tolerates every taint
    aff = recs["web"].pod_spec_patch["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert aff == [{"weight": 100, "preference": {"matchExpressions": [
        {"key": AKS_KEY, "operator": "In", "values": ["spot"]}]}}]


def test_no_spot_nodes_still_recommends_with_preferred_affinity_and_says_so():
    snap = cluster([workload("api")], spot_nodes=False)
    result = recommend_spot(snap, placement="required")
    recs, _ = by_name(result)
    patch = recs["api"].pod_spec_patch
    assert "preferredDuringSchedulingIgnoredDuringExecution" in patch["affinity"]["nodeAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in patch["affinity"]["nodeAffinity"]
    assert patch["tolerations"] == [AKS_TOL]  # AKS taints its spot pools: the toleration comes from the platform
    assert any("no spot nodes" in n and "must exist" in n for n in recs["api"].evidence.notes)
    assert any("downgraded" in n for n in result.notes)
    assert recs["api"].confidence < 0.9
    assert result.cluster_notes["spot"]["spot_nodes"] == 0


@pytest.mark.parametrize(("platform", "key", "value"), [
    ("karpenter", "karpenter.sh/capacity-type", "spot"),
    ("eks", "eks.amazonaws.com/capacityType", "SPOT"),
])
def test_the_label_the_cluster_uses_is_detected_even_without_spot_nodes(platform, key, value):
    for spot in (True, False):
        snap = cluster([workload("api")], platform, spot_nodes=spot)
        rec = recommend_spot(snap).recommendations[0]
        expr = rec.pod_spec_patch["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
        assert expr["preference"]["matchExpressions"][0] == {"key": key, "operator": "In", "values": [value]}
        assert "tolerations" not in rec.pod_spec_patch


def test_required_placement_adds_the_spot_term_to_every_existing_term_and_selector_adds_a_key():
    aff = "required: topology.kubernetes.io/zone In [a, b] or node.kubernetes.io/instance-type In [m5.xlarge]"
    snap = cluster([workload("api", affinity=aff)], "karpenter")
    rec = recommend_spot(snap, placement="required").recommendations[0]
    terms = rec.pod_spec_patch["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"]
    spot = {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}
    assert terms == [
        {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a", "b"]}, spot]},
        {"matchExpressions": [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.xlarge"]},
                              spot]},
    ]
    sel = recommend_spot(snap, placement="selector").recommendations[0]
    assert sel.pod_spec_patch == {"nodeSelector": {"karpenter.sh/capacity-type": "spot"}}
    with pytest.raises(ValueError, match="placement"):
        recommend_spot(snap, placement="sometimes")


def test_a_node_pool_pin_without_spot_nodes_blocks_it():
    snap = cluster([workload("gpu", node_selector={"karpenter.sh/nodepool": "gpu"}),
                    workload("linux", node_selector={"kubernetes.io/os": "linux"})], "karpenter")
    recs, skips = by_name(recommend_spot(snap))
    assert "karpenter.sh/nodepool=gpu" in skips["gpu"].reason
    assert "linux" in recs


def test_no_nodes_and_no_requests_still_gives_recommendations_from_usage_and_fallback_rates():
    snap = cluster([workload("api")], None, cpu=None, memory=None)
    result = recommend_spot(snap)
    rec = result.recommendations[0]
    assert rec.monthly_saving_usd > 0
    assert "fallback" in rec.saving_basis
    assert any("mean usage" in n for n in rec.evidence.notes)
    assert any("no nodes" in n for n in result.notes)
    assert rec.evidence.observed["cpu_per_pod"] == pytest.approx(0.3)


def test_readiness_frame_has_one_column_per_check():
    snap = cluster([workload("api", uses_empty_dir=True), workload("solo", replicas=1)])
    frame = spot_readiness(snap)
    checks = [c for c in frame.columns if c.startswith("check_")]
    assert len(checks) >= 12
    assert frame.schema["hard"] == pl.List(pl.String) and frame.schema["soft"] == pl.List(pl.String)
    row = {r["workload"]: r for r in frame.iter_rows(named=True)}
    assert row["api"]["check_empty_dir"] and row["api"]["hard"] == [] and not row["api"]["ready"]
    assert row["solo"]["check_single_replica"] and not row["solo"]["ready"]


# -- property: the patch never touches anything but placement ------------------------------------

_tol = st.fixed_dictionaries({
    "key": st.sampled_from([None, "dedicated", AKS_KEY, "nvidia.com/gpu"]),
    "operator": st.sampled_from([None, "Equal", "Exists"]),
    "value": st.sampled_from([None, "spot", "web"]),
    "effect": st.sampled_from([None, "NoSchedule", "NoExecute"]),
})
_aff = st.sampled_from([None, "required: topology.kubernetes.io/zone In [a]", "preferred: team In [web]",
                        "required: a In [x] and b Exists; preferred: c NotIn [y]"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tols=st.lists(_tol, max_size=3), affinity=_aff, placement=st.sampled_from(["preferred", "required", "selector"]),
       platform=st.sampled_from(["aks", "karpenter", "eks"]), spot=st.booleans())
def test_patch_contains_only_placement_keys_and_keeps_existing_entries(tols, affinity, placement, platform, spot):
    snap = _property_cluster(platform, spot)
    detected = detect_platform(snap.nodes)
    patch, _ = spot_patch(detected, placement, tols, affinity)
    assert_placement_only(patch)
    if "tolerations" in patch:
        cleaned = [{k: v for k, v in t.items() if v is not None} for t in tols]
        assert patch["tolerations"][: len(cleaned)] == cleaned
    if placement == "required" and affinity and "required:" in affinity:
        terms = patch["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert all(t["matchExpressions"][-1]["key"] == detected.platform.key for t in terms)
    json.dumps(patch)  # plain data, ready for YAML


@cache
def _property_cluster(platform: str, spot: bool) -> Snapshot:
    return cluster([workload("api")], platform, spot_nodes=spot)


# -- the simulator's clusters ---------------------------------------------------------------------

SPOT_LABEL = {"aws": "karpenter.sh/capacity-type", "gcp": "cloud.google.com/gke-spot", "azure": AKS_KEY}


@cache
def sim(provider: str) -> Snapshot:
    return simulate(workloads=60, days=14, seed=2, provider=provider)


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure"])
def test_simulated_clusters(provider):
    snap = sim(provider)
    result = recommend_spot(snap)
    recs, skips = by_name(result)
    assert recs and result.monthly_saving_usd > 0
    assert len(recs) + len(skips) == snap.workloads.height
    w = {r["workload"]: r for r in snap.workloads.with_columns(pl.col(pl.Categorical).cast(pl.String))
         .iter_rows(named=True)}
    for name, rec in recs.items():
        facts = w[name]
        assert facts["workload_kind"] not in ("DaemonSet", "Pod", "Job")
        assert facts["replicas"] > 1
        assert not (facts["workload_kind"] == "StatefulSet" and facts["uses_local_storage"])
        assert not facts["uses_local_storage"]
        assert rec.monthly_saving_usd > 0
        assert_placement_only(rec.pod_spec_patch)
        exprs = rec.pod_spec_patch["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert exprs[-1]["preference"]["matchExpressions"][0]["key"] == SPOT_LABEL[provider]
        assert ("tolerations" in rec.pod_spec_patch) == (provider == "azure")
    for placement in ("required", "selector"):
        for rec in recommend_spot(snap, placement=placement).recommendations:
            assert_placement_only(rec.pod_spec_patch)
            assert SPOT_LABEL[provider] in json.dumps(rec.pod_spec_patch)


# -- real kubectl kustomize -----------------------------------------------------------------------


def _kustomize(tmp_path, manifest: dict, pod_spec_patch: dict) -> dict:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not on PATH")
    kind, meta = manifest["kind"], manifest["metadata"]
    resource = copy.deepcopy(manifest)
    resource.pop("status", None)
    patch = {"apiVersion": manifest["apiVersion"], "kind": kind,
             "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
             "spec": {"template": {"spec": pod_spec_patch}}}
    (tmp_path / "workload.yaml").write_text(yamlio.dump(resource))
    (tmp_path / "spot-patch.yaml").write_text(yamlio.dump(patch))
    (tmp_path / "kustomization.yaml").write_text(yamlio.dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "resources": ["workload.yaml"], "patches": [{"path": "spot-patch.yaml"}]}))
    out = subprocess.run(["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr
    return yamlio.load(out.stdout)


def test_kustomize_applies_the_patch_to_a_simulated_deployment(tmp_path):
    snap = sim("azure")
    recs = recommend_spot(snap).recommendations
    deployments = {(d["metadata"]["namespace"], d["metadata"]["name"]): d
                   for d in kube_lists(snap)["deployments"]["items"]}
    rec = next(r for r in recs if (r.target.namespace, r.target.workload) in deployments)
    original = deployments[(rec.target.namespace, rec.target.workload)]
    built = _kustomize(tmp_path, original, rec.pod_spec_patch)
    spec, before = built["spec"]["template"]["spec"], original["spec"]["template"]["spec"]
    assert AKS_TOL in spec["tolerations"]
    pref = spec["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert {"key": AKS_KEY, "operator": "In", "values": ["spot"]} in pref[-1]["preference"]["matchExpressions"]
    assert spec["containers"] == before["containers"]
    assert spec.get("initContainers") == before.get("initContainers")
    rest = {k: v for k, v in spec.items() if k not in PLACEMENT_KEYS}
    assert rest == {k: v for k, v in before.items() if k not in PLACEMENT_KEYS}
    assert {k: v for k, v in built["spec"].items() if k != "template"} == \
        {k: v for k, v in original["spec"].items() if k != "template"}
    kubernetes_validate.validate(built, kubernetes_validate.latest_version(), strict=True)


def test_kustomize_keeps_existing_tolerations_and_affinity_terms(tmp_path):
    dedicated = {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}
    aff = "required: topology.kubernetes.io/zone In [eastus-1, eastus-2]"
    snap = cluster([workload("web", tolerations=[dedicated], affinity=aff)])
    rec = recommend_spot(snap, placement="required").recommendations[0]
    zone = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eastus-1", "eastus-2"]}
    container = {"name": "app", "image": "registry.example/web:1",
                 "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
    manifest = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [container], "tolerations": [dedicated],
                     "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                         "nodeSelectorTerms": [{"matchExpressions": [zone]}]}},
                         "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                             "weight": 50, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                               "labelSelector": {"matchLabels": {"app": "web"}}}}]}}}}}}
    spec = _kustomize(tmp_path, manifest, rec.pod_spec_patch)["spec"]["template"]["spec"]
    assert spec["tolerations"] == [dedicated, AKS_TOL]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [zone, {"key": AKS_KEY, "operator": "In", "values": ["spot"]}]}]
    assert spec["affinity"]["podAntiAffinity"] == manifest["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert spec["containers"] == [container]
