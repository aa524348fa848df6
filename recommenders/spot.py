"""Spot placement: which workloads can run on spot capacity, what it saves, and the pod-spec patch.

Readiness is computed for every workload at once with Polars (``spot_readiness``): one column per
check, each holding the failed check's reason in plain words (null = passed). Checks follow the
Kubecost spot-readiness checklist (docs/domain-reference.md section 6) with kubetune's additions:

*hard* (nothing overrides them, because a spot reclaim would take the workload down or lose data):
  DaemonSet (one pod per node by design), bare Pod (nothing re-creates it), bare Job (its template
  is immutable and the run is one-off), a single replica (or none), local persistent volumes, a
  nodeSelector pinning it to nodes that are not spot (the patch could not take effect), a node
  affinity the snapshot cannot read back (the patch would have to replace it blind);
*soft* (an opt-in annotation, ``kubetune.io/spot: "true"`` or Kubecost's
  ``spot.kubecost.com/spot-ready: "true"``, on the controller or as a namespace label, overrides
  them): StatefulSet (stable identity, ordered restarts), CronJob (a reclaimed run restarts from
  scratch), emptyDir (lost with the node; fine for a cache, hence overridable), a PDB keeping more
  than half the pods, rolling-update headroom (Kubecost: min available / replicas > 0.9),
  ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"``.

``kubetune.io/spot: "false"`` opts out; workloads already on spot (all pods on spot nodes, or a spot
nodeSelector / node affinity) are skipped. Every workload not recommended gets a ``Skip`` naming the
failed checks.

The patch is a strategic-merge fragment of the pod spec touching only placement: node affinity (or a
nodeSelector) on the capacity-type label the cluster actually uses, plus a toleration where spot
nodes are tainted (AKS). PodSpec ``tolerations`` and ``nodeSelectorTerms`` /
``preferredDuringScheduling...`` lists have no merge key, so a patch *replaces* them: the patch
carries the workload's existing entries plus the new one.

Saving = on-demand rate x spot discount x requested CPU/memory per pod (mean usage when nothing is
requested) x replicas x 730 h, with the provider's ``SpotDiscount`` from the price book.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from analyzer.cost import HOURS_PER_MONTH, PriceBook, load_pricing
from analyzer.kube import SPOT_PLATFORMS, parse_affinity
from analyzer.kube import SpotPlatform as Platform
from analyzer.snapshot import Snapshot
from analyzer.units import GIB
from recommenders.rates import WORKLOAD, WorkloadRates, workload_rates
from recommenders.record import Evidence, Recommendation, RecommendationSet, Skip, Target


SPOT_ANNOTATION = "kubetune.io/spot"
KUBECOST_READY = "spot.kubecost.com/spot-ready"
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
PLACEMENTS = ("preferred", "required", "selector")
PDB_MAX_MIN_AVAILABLE = 0.5  # Kubecost: PDB minAvailable / replicas above this = not spot-ready
ROLLING_MAX_MIN_AVAILABLE = 0.9  # Kubecost: rolling-update min available / replicas above this = not ready
SPOT_WEIGHT = 100
# Labels that pin pods to one node pool: a nodeSelector on them conflicts with moving to spot.
POOL_LABELS = ("karpenter.sh/nodepool", "eks.amazonaws.com/nodegroup", "cloud.google.com/gke-nodepool",
               "kubernetes.azure.com/agentpool", "agentpool")
# nodeSelector keys every node carries: never a conflict.
GENERIC_LABELS = ("kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch")
CONTROLLERS = ("Deployment", "Rollout", "StatefulSet", "CronJob")


# docs/domain-reference.md section 6 (the table lives in analyzer.kube); order = preference.
PLATFORMS: dict[str, Platform] = SPOT_PLATFORMS
DEFAULT_PLATFORM = {"aws": "karpenter", "gcp": "gke", "azure": "aks"}

# (risk, words): the risk figure is a monthly interruption probability per node, the only published
# one being AWS's Spot Instance Advisor global rate "<10%" (domain-reference section 6).
INTERRUPTION: dict[str, tuple[float, str]] = {
    "aws": (0.10, ("AWS Spot: 2-minute interruption notice; the Spot Instance Advisor's global interruption "
                  "frequency is <10% a month (by instance type from <5% to >20%): spread over several types")),
    "gcp": (0.10, ("GKE Spot VMs: 30-second notice and no published interruption rate (risk figure assumed "
                  "like AWS's global <10% a month)")),
    "azure": (0.10, ("Azure Spot: eviction with about 30 s notice when Azure needs the capacity or the price "
                    "cap is hit; no published rate (risk figure assumed like AWS's global <10% a month)")),
}
UNKNOWN_INTERRUPTION = (0.10, ("spot capacity can be reclaimed at short notice; no published rate for this "
                              "platform (risk figure assumed like AWS's global <10% a month)"))


# ---------------------------------------------------------------------------------------------
# Platform detection


@dataclass(frozen=True)
class Detected:
    """The spot label the cluster uses, where it came from, and how many spot nodes there are."""

    platform: Platform
    provider: str
    value: str
    taints: tuple[tuple[str, str | None, str], ...]
    spot_nodes: int
    how: str


def detect_platform(nodes: pl.DataFrame) -> Detected:
    """Which spot label the cluster actually uses: the one its spot nodes carry, else a label every
    node carries (Karpenter, EKS), else the provider's default (``nodes.provider``)."""
    providers = (nodes.select(pl.col("provider").cast(pl.String)).drop_nulls()
                 .filter(~pl.col("provider").is_in(["unknown", "on-prem", ""]))["provider"]) if nodes.height else None
    provider = str(providers.mode().sort()[0]) if providers is not None and providers.len() else "unknown"
    if nodes.is_empty():
        p = PLATFORMS["karpenter"]
        return Detected(p, provider, p.value, p.taints, 0,
                        "the snapshot has no nodes: assumed Karpenter's label; use your platform's if it differs")
    labels = (nodes.select(pl.col("node").cast(pl.String), pl.col("capacity_type").cast(pl.String),
                           pl.col("gpu_count").fill_null(0), "labels", "taints")
              .explode("labels").drop_nulls("labels").unnest("labels"))
    spot = labels.filter(pl.col("capacity_type") == "spot")
    n_spot = int(nodes.filter(pl.col("capacity_type").cast(pl.String) == "spot").height)
    best: tuple[int, str] | None = None
    for name, p in PLATFORMS.items():
        count = spot.filter((pl.col("key") == p.key) & (pl.col("value").str.to_lowercase() == p.value.lower())).height
        if count and (best is None or count > best[0]):
            best = (count, name)
    if best is not None:
        p = PLATFORMS[best[1]]
        hits = spot.filter((pl.col("key") == p.key) & (pl.col("value").str.to_lowercase() == p.value.lower()))
        value = str(hits["value"].mode().sort()[0])
        taints = _observed_taints(nodes, set(hits["node"].to_list()))
        taints = tuple(dict.fromkeys(p.taints + taints))
        prov = provider if provider != "unknown" else p.provider
        return Detected(p, prov, value, taints, n_spot,
                        f"{best[0]} spot node(s) carry {p.key}={value} ({p.name})")
    keys = set(labels["key"].unique().to_list())
    for name in ("karpenter", "eks"):  # these label every node, spot or not
        p = PLATFORMS[name]
        if p.key in keys:
            prov = provider if provider != "unknown" else p.provider
            return Detected(p, prov, p.value, p.taints, n_spot,
                            f"no spot nodes yet; the nodes carry {p.key} ({p.name})")
    if provider == "aws" and "eks.amazonaws.com/nodegroup" in keys:
        p = PLATFORMS["eks"]
    else:
        p = PLATFORMS[DEFAULT_PLATFORM.get(provider, "karpenter")]
    start = (f"{n_spot} spot node(s) but none carries a known spot label" if n_spot else "no spot nodes")
    how = (f"{start}; {p.name}'s label is the default for provider {provider}" if provider in DEFAULT_PLATFORM
           else f"{start} and no known provider: assumed Karpenter's label; use your platform's if it differs")
    return Detected(p, provider, p.value, p.taints, n_spot, how)


def _observed_taints(nodes: pl.DataFrame, spot_nodes: set[str]) -> tuple[tuple[str, str | None, str], ...]:
    """Scheduling taints every non-GPU spot node carries (GPU taints belong to the GPU pools)."""
    rows = nodes.filter(pl.col("node").cast(pl.String).is_in(list(spot_nodes)) & (pl.col("gpu_count").fill_null(0) == 0))
    common: set[tuple[str, str | None, str]] | None = None
    for taints in rows["taints"].to_list():
        found = {(t["key"], t.get("value"), t["effect"]) for t in taints or []
                 if t.get("key") and t.get("effect") in ("NoSchedule", "NoExecute")}
        common = found if common is None else common & found
    return tuple(sorted(common or (), key=lambda t: (t[0], t[1] or "", t[2])))


# ---------------------------------------------------------------------------------------------
# Readiness, vectorised


def _kv_get(col: str, key: str) -> pl.Expr:
    """Value of ``key`` in a key/value list column (null when absent)."""
    return (pl.col(col).list.eval(pl.element().filter(pl.element().struct.field("key") == key)
                                  .struct.field("value")).list.first())


def _count(written: pl.Expr, replicas: pl.Expr, round_up: bool) -> pl.Expr:
    """An int-or-percent field as a pod count of ``replicas`` (Kubernetes' GetScaledValueFromIntOrPercent)."""
    pct = written.str.strip_suffix("%").cast(pl.Float64, strict=False) / 100.0 * replicas
    scaled = pct.ceil() if round_up else pct.floor()
    return (pl.when(written.str.ends_with("%")).then(scaled)
            .otherwise(written.cast(pl.Float64, strict=False)))


def _spot_placed() -> pl.Expr:
    """True when the pod template already selects spot nodes (nodeSelector or node affinity)."""
    pairs = pl.lit(False)
    aff = pl.lit(False)
    for p in PLATFORMS.values():
        pairs = pairs | (_kv_get("node_selector", p.key).str.to_lowercase() == p.value.lower()).fill_null(False)
        pattern = f"(?i){re.escape(p.key)} In \\[[^\\]]*\\b{re.escape(p.value)}\\b"
        aff = aff | pl.col("affinity").str.contains(pattern).fill_null(False)
    return pairs | aff


def _reason(cond: pl.Expr, text: pl.Expr | str) -> pl.Expr:
    text = pl.lit(text) if isinstance(text, str) else text
    return pl.when(cond.fill_null(False)).then(text).otherwise(pl.lit(None, dtype=pl.String))


def _pct(x: pl.Expr) -> pl.Expr:
    return (x * 100).round(0).cast(pl.Int64).cast(pl.String) + pl.lit("%")


def spot_readiness(snapshot: Snapshot, capacity: pl.DataFrame | None = None,
                   detected: Detected | None = None) -> pl.DataFrame:
    """Every workload with one column per check (the failed check's reason, or null), ``hard`` and
    ``soft`` (lists of failed reasons), ``opt_in``, ``opt_out``, ``already`` and ``ready``.

    ``capacity``: WORKLOAD + ``capacity_type`` (where the pods ran), e.g. ``WorkloadRates.frame``.
    """
    detected = detected or detect_platform(snapshot.nodes)
    w = snapshot.workloads.with_columns(*[pl.col(k).cast(pl.String) for k in WORKLOAD])
    ns = snapshot.namespaces.select(pl.col("namespace").cast(pl.String), pl.col("labels").alias("_ns_labels"))
    w = w.join(ns, on="namespace", how="left")
    if capacity is not None and capacity.height:
        w = w.join(capacity.select(*[pl.col(k).cast(pl.String) for k in WORKLOAD],
                                   pl.col("capacity_type").cast(pl.String).alias("_ran_on")), on=WORKLOAD, how="left")
    else:
        w = w.with_columns(pl.lit(None, dtype=pl.String).alias("_ran_on"))

    kind, replicas = pl.col("workload_kind"), pl.col("replicas")
    r = replicas.cast(pl.Float64)
    flag = _kv_get("annotations", SPOT_ANNOTATION).str.to_lowercase()
    ns_flag = _kv_get("_ns_labels", SPOT_ANNOTATION).str.to_lowercase()
    kubecost = (_kv_get("annotations", KUBECOST_READY).str.to_lowercase() == "true") | (
        _kv_get("_ns_labels", KUBECOST_READY).str.to_lowercase() == "true")
    # The controller's own annotation wins over its namespace's label.
    opt_out = pl.when(flag.is_not_null()).then(flag == "false").otherwise(ns_flag == "false").fill_null(False)
    opt_in = (pl.when(flag.is_not_null()).then(flag == "true").otherwise(ns_flag == "true").fill_null(False)
              | kubecost.fill_null(False)) & ~opt_out

    # PDB: minAvailable as a share of replicas (Kubecost: > 0.5 not ready); maxUnavailable 0 blocks every drain.
    pdb_min = _count(pl.col("pdb_min_available"), r, round_up=True)
    pdb_allowed = _count(pl.col("pdb_max_unavailable"), r, round_up=True)
    pdb_frac = pdb_min / r
    # Rolling update (Deployments, Rollouts): maxUnavailable rounds down, maxSurge up; both 0 -> 1 unavailable.
    rolling = kind.is_in(["Deployment", "Rollout"]) & pl.col("update_strategy").fill_null("RollingUpdate").is_in(
        ["RollingUpdate", "Canary"])
    mu_written = pl.col("max_unavailable").fill_null("25%")
    mu = _count(mu_written, r, round_up=False).fill_null(0)
    surge = _count(pl.col("max_surge").fill_null("25%"), r, round_up=True).fill_null(0)
    mu = pl.when((mu == 0) & (surge == 0)).then(1.0).otherwise(mu)
    roll_frac = (r - mu).clip(lower_bound=0) / r

    # nodeSelector entries that no spot node satisfies (or, with no spot nodes, a node-pool pin).
    conflict = _selector_conflicts(w, snapshot.nodes, detected)
    w = w.join(conflict, on=WORKLOAD, how="left")
    aff_text = pl.col("affinity")

    out = w.with_columns(
        opt_in.alias("opt_in"), opt_out.alias("opt_out"),
        (pl.col("_ran_on") == "spot").fill_null(False).alias("_on_spot"),
        _spot_placed().alias("_spot_placed"),
    ).with_columns(
        # -- hard checks
        _reason(kind == "DaemonSet", "DaemonSet: it runs one pod on every node by design, spot placement does not "
                                     "apply").alias("check_daemonset"),
        _reason(kind == "Pod", "bare Pod: no controller re-creates it after a spot reclaim").alias("check_bare_pod"),
        _reason(kind == "Job", "Job: its pod template is immutable and the run is one-off; set the placement in "
                               "whatever creates the Job").alias("check_job"),
        _reason(~kind.is_in([*CONTROLLERS, "DaemonSet", "Pod", "Job"]),
                pl.format("{}: not a controller kubetune patches for spot", kind)).alias("check_kind"),
        _reason(kind.is_in(["Deployment", "Rollout", "StatefulSet"]) & replicas.is_null(),
                "replica count unknown").alias("check_replicas_unknown"),
        _reason(kind.is_in(["Deployment", "Rollout", "StatefulSet"]) & (replicas == 0),
                "scaled to zero: nothing runs, nothing to save").alias("check_scaled_to_zero"),
        _reason(kind.is_in(["Deployment", "Rollout", "StatefulSet"]) & (replicas == 1),
                "a single replica: one spot reclaim takes the whole workload down until a new pod "
                "starts").alias("check_single_replica"),
        _reason(pl.col("uses_local_storage"), "uses local persistent volumes: the data lives on one node and is "
                                              "lost with it").alias("check_local_storage"),
        _reason(pl.col("_conflict").is_not_null(), pl.col("_conflict")).alias("check_node_selector"),
        _reason(aff_text.is_not_null() & ~pl.col("_spot_placed")
                & aff_text.map_elements(lambda s: parse_affinity(s) is None, return_dtype=pl.Boolean),
                pl.format("its node affinity ({}) cannot be read back from the snapshot, and a patch would "
                          "replace it", aff_text)).alias("check_affinity"),
        # -- soft checks (an opt-in overrides them)
        _reason(kind == "StatefulSet", "StatefulSet: stable identities and ordered restarts make spot reclaims "
                                       "disruptive (Kubecost counts StatefulSets as not spot-ready)")
        .alias("check_statefulset"),
        _reason(kind == "CronJob", "CronJob: a run killed by a spot reclaim restarts from scratch; opt in if runs "
                                   "are short or checkpointed").alias("check_cronjob"),
        _reason(pl.col("uses_empty_dir"), "mounts an emptyDir: its contents are lost when a spot node is reclaimed "
                                          "(opt in if it is only a cache)").alias("check_empty_dir"),
        _reason(pdb_frac > PDB_MAX_MIN_AVAILABLE,
                pl.format("PodDisruptionBudget {} keeps minAvailable {} of {} pods ({}), more than half: drains of "
                          "spot nodes stall (Kubecost: > 50% is not spot-ready)", pl.col("pdb_name"),
                          pl.col("pdb_min_available"), replicas, _pct(pdb_frac))).alias("check_pdb"),
        _reason(pl.col("pdb_max_unavailable").is_not_null() & (pdb_allowed <= 0),
                pl.format("PodDisruptionBudget {} allows no disruption (maxUnavailable {}): spot nodes cannot be "
                          "drained", pl.col("pdb_name"), pl.col("pdb_max_unavailable"))).alias("check_pdb_blocking"),
        _reason(rolling & replicas.is_not_null() & (replicas > 1) & (roll_frac > ROLLING_MAX_MIN_AVAILABLE),
                pl.format("rolling update keeps {} of {} pods available (maxUnavailable {}, {}): no headroom to lose "
                          "a pod (Kubecost: above 90% is not spot-ready)", (r - mu).cast(pl.Int64), replicas,
                          mu_written, _pct(roll_frac))).alias("check_rolling_update"),
        _reason(_kv_get("annotations", SAFE_TO_EVICT).str.to_lowercase() == "false",
                f'annotated {SAFE_TO_EVICT}: "false": it asks never to be evicted').alias("check_safe_to_evict"),
        # -- not a check: already there
        _reason(pl.col("_on_spot"), "already runs on spot nodes").alias("_already_ran"),
        _reason(pl.col("_spot_placed"), "already placed on spot by its nodeSelector or node affinity")
        .alias("_already_placed"),
    )
    hard = [c for c in out.columns if c.startswith("check_") and c in HARD_CHECKS]
    soft = [c for c in out.columns if c.startswith("check_") and c in SOFT_CHECKS]
    return out.with_columns(
        pl.concat_list(hard).list.drop_nulls().alias("hard"),
        pl.concat_list(soft).list.drop_nulls().alias("soft"),
        pl.coalesce("_already_placed", "_already_ran").alias("already"),
    ).with_columns(
        (~pl.col("opt_out") & pl.col("already").is_null() & (pl.col("hard").list.len() == 0)
         & ((pl.col("soft").list.len() == 0) | pl.col("opt_in"))).alias("ready"),
    ).drop("_ns_labels", "_conflict", "_already_ran", "_already_placed", "_spot_placed")


HARD_CHECKS = ("check_daemonset", "check_bare_pod", "check_job", "check_kind", "check_replicas_unknown",
               "check_scaled_to_zero", "check_single_replica", "check_local_storage", "check_node_selector",
               "check_affinity")
SOFT_CHECKS = ("check_statefulset", "check_cronjob", "check_empty_dir", "check_pdb", "check_pdb_blocking",
               "check_rolling_update", "check_safe_to_evict")


def _selector_conflicts(w: pl.DataFrame, nodes: pl.DataFrame, detected: Detected) -> pl.DataFrame:
    """WORKLOAD + ``_conflict``: nodeSelector pairs that keep the pods off spot nodes, in words."""
    pairs = (w.select(*WORKLOAD, "node_selector").explode("node_selector").drop_nulls("node_selector")
             .unnest("node_selector").filter(~pl.col("key").is_in(list(GENERIC_LABELS))))
    spot_keys = {p.key for p in PLATFORMS.values()}
    pairs = pairs.filter(~pl.col("key").is_in(list(spot_keys)))
    if detected.spot_nodes:
        spot_pairs = (nodes.filter(pl.col("capacity_type").cast(pl.String) == "spot").select("labels")
                      .explode("labels").drop_nulls().unnest("labels").unique())
        bad = pairs.join(spot_pairs, on=["key", "value"], how="anti")
        why = "no spot node has it"
    else:
        bad = pairs.filter(pl.col("key").is_in(list(POOL_LABELS)))
        why = "it pins the pods to an existing node pool"
    return (bad.group_by(WORKLOAD).agg(pl.format("{}={}", "key", "value").sort().str.join(", ").alias("_sel"))
            .select(*WORKLOAD, pl.format("nodeSelector {}: {}, so a spot placement cannot take effect (give it a "
                                         "spot node pool first)", "_sel", pl.lit(why)).alias("_conflict")))


# ---------------------------------------------------------------------------------------------
# Requests per pod, for the saving


def pod_requests(snapshot: Snapshot) -> pl.DataFrame:
    """WORKLOAD + cpu (cores) and memory (bytes) per pod, ``basis`` (requests or usage) and
    ``avg_pods`` (pod-hours inside the window / window hours: what a CronJob really occupies).

    Sums app and sidecar requests per pod (init containers do not hold capacity while the pod
    runs), averaged over the running pods (all pods when none is running). A workload with no
    requests falls back to its mean per-pod usage: BestEffort pods still occupy nodes.
    """
    c = (snapshot.containers.filter(pl.col("container_type").cast(pl.String) != "init")
         .with_columns(*[pl.col(k).cast(pl.String) for k in WORKLOAD]))
    m = snapshot.manifest
    window_h = max((m.end - m.start).total_seconds() / 3600.0, 0.0) if m.start and m.end else 0.0
    lo, hi = pl.lit(m.start).cast(pl.Datetime("us", "UTC")), pl.lit(m.end).cast(pl.Datetime("us", "UTC"))
    per_pod = c.group_by([*WORKLOAD, "pod"]).agg(
        pl.col("cpu_request").sum().alias("cpu"), pl.col("memory_request").sum().cast(pl.Float64).alias("memory"),
        pl.col("ended_at").is_null().any().alias("running"),
        pl.col("started_at").min().alias("_from"), pl.col("ended_at").max().alias("_to"),
    ).with_columns(  # hours each pod ran inside the window (unknown start = the whole window)
        ((pl.min_horizontal(pl.col("_to").fill_null(hi), hi) - pl.max_horizontal(pl.col("_from").fill_null(lo), lo))
         .dt.total_seconds() / 3600.0).clip(lower_bound=0.0).alias("_hours"))
    req = per_pod.group_by(WORKLOAD).agg(
        *[pl.coalesce(pl.col(x).filter(pl.col("running")).mean(), pl.col(x).mean()).alias(x) for x in ("cpu", "memory")],
        (pl.col("_hours").sum() / window_h if window_h > 0 else pl.lit(None, dtype=pl.Float64)).alias("avg_pods"))
    need = req.filter((pl.col("cpu").fill_null(0) <= 0) | (pl.col("memory").fill_null(0) <= 0)).select(WORKLOAD)
    usage = pl.DataFrame(schema={**{k: pl.String for k in WORKLOAD}, "u_cpu": pl.Float64, "u_memory": pl.Float64})
    if need.height and snapshot.usage.height:
        # filter the big frame on its categorical keys first; strings only after aggregation
        need_cat = need.with_columns(*[pl.col(k).cast(snapshot.usage.schema[k]) for k in WORKLOAD])
        u = (snapshot.usage.lazy().filter(pl.col("resource").is_in(["cpu", "memory"]))
             .join(need_cat.lazy(), on=WORKLOAD, how="semi")
             .group_by([*WORKLOAD, "pod", "timestamp", "resource"]).agg(pl.col("value").sum())
             .group_by([*WORKLOAD, "resource"]).agg(pl.col("value").mean())
             .with_columns(*[pl.col(k).cast(pl.String) for k in WORKLOAD], pl.col("resource").cast(pl.String))
             .collect())
        if u.height:
            usage = (u.pivot(on="resource", index=WORKLOAD, values="value")
                     .rename({"cpu": "u_cpu", "memory": "u_memory"}, strict=False))
            for col in ("u_cpu", "u_memory"):
                if col not in usage.columns:
                    usage = usage.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    out = req.join(usage, on=WORKLOAD, how="left")
    cpu_from_req = pl.col("cpu").fill_null(0) > 0
    mem_from_req = pl.col("memory").fill_null(0) > 0
    return out.select(
        *WORKLOAD, "avg_pods",
        pl.when(cpu_from_req).then(pl.col("cpu")).otherwise(pl.col("u_cpu")).fill_null(0.0).alias("cpu"),
        pl.when(mem_from_req).then(pl.col("memory")).otherwise(pl.col("u_memory")).fill_null(0.0).alias("memory"),
        pl.when(cpu_from_req & mem_from_req).then(pl.lit("requests"))
        .when(~cpu_from_req & ~mem_from_req).then(pl.lit("mean usage (no requests set)"))
        .otherwise(pl.lit("requests, mean usage where a request is missing")).alias("basis"),
    )


# ---------------------------------------------------------------------------------------------
# The patch


def _tolerates(tol: dict, taint: tuple[str, str | None, str]) -> bool:
    key, value, effect = taint
    if tol.get("effect") and tol["effect"] != effect:
        return False
    op = tol.get("operator") or "Equal"
    if not tol.get("key"):
        return op == "Exists"
    if tol["key"] != key:
        return False
    return op == "Exists" or (tol.get("value") or "") == (value or "")


def _clean(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


def spot_patch(detected: Detected, placement: str, tolerations: list[dict] | None,
               affinity: str | None) -> tuple[dict[str, Any], list[str]]:
    """The pod-spec fragment (placement fields only) and notes on what it had to carry over."""
    key, value = detected.platform.key, detected.value
    notes: list[str] = []
    patch: dict[str, Any] = {}
    expr = {"key": key, "operator": "In", "values": [value]}
    if placement == "selector":
        patch["nodeSelector"] = {key: value}  # a map: strategic merge adds the key, keeps the others
    else:
        node = (parse_affinity(affinity) or {}).get("nodeAffinity", {})
        if placement == "required":
            terms = node.get("requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms") or [{}]
            new_terms = []
            for t in terms:  # terms are ORed: the spot expression must join every one of them
                exprs = [e for e in t.get("matchExpressions", []) if e.get("key") != "metadata.name"]
                fields = [e for e in t.get("matchExpressions", []) if e.get("key") == "metadata.name"]
                term = {"matchExpressions": [*exprs, expr]}
                if fields:
                    term["matchFields"] = fields
                new_terms.append(term)
            if node.get("requiredDuringSchedulingIgnoredDuringExecution"):
                notes.append("its required node affinity terms are carried into the patch (the list is replaced "
                             "as a whole), each with the spot expression added")
            patch["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": new_terms}}}
        else:
            prefs = list(node.get("preferredDuringSchedulingIgnoredDuringExecution") or [])
            if prefs:
                notes.append("its preferred node affinity terms are carried into the patch (the list is replaced as "
                             "a whole); the snapshot does not keep their weights, so they are written as 100: check")
            prefs.append({"weight": SPOT_WEIGHT, "preference": {"matchExpressions": [expr]}})
            patch["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": prefs}}
    existing = [_clean(t) for t in tolerations or []]
    needed = [t for t in detected.taints if not any(_tolerates(e, t) for e in existing)]
    if needed:
        new = [_clean({"key": k, "operator": "Equal" if v is not None else "Exists", "value": v, "effect": e})
               for k, v, e in needed]
        patch["tolerations"] = existing + new
        if existing:
            notes.append(f"its {len(existing)} existing toleration(s) are carried into the patch (tolerations have no "
                         "merge key, so the list is replaced); the snapshot does not keep tolerationSeconds")
    return patch, notes


# ---------------------------------------------------------------------------------------------
# The recommender


def recommend_spot(snapshot: Snapshot, rates: WorkloadRates | None = None, *, pricing: PriceBook | None = None,
                   placement: str = "preferred") -> RecommendationSet:
    """Spot recommendations (kind ``spot``, resource ``placement``) and a Skip for every other workload.

    ``placement``: ``preferred`` node affinity (the default: pods fall back to on-demand when no spot
    node is free), ``required`` node affinity, or a ``selector`` (nodeSelector). Without spot nodes in
    the cluster a required placement is downgraded to preferred: pods would otherwise stay Pending.
    """
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}, not {placement!r}")
    book = pricing if pricing is not None else load_pricing()
    rates = rates if rates is not None else workload_rates(snapshot, pricing=book)
    detected = detect_platform(snapshot.nodes)
    out = RecommendationSet()
    if snapshot.workloads.is_empty():
        out.notes.append("spot: the snapshot has no workloads frame rows, so no spot readiness could be checked.")
        return out
    ready = spot_readiness(snapshot, rates.frame, detected)
    p = detected.platform
    used = placement
    set_notes = [f"spot: {detected.how}; patches select {p.key}={detected.value}"
                 + (f" and tolerate {', '.join(_taint_text(t) for t in detected.taints)}" if detected.taints else "")]
    if not detected.spot_nodes:
        if placement != "preferred":
            used = "preferred"
            set_notes.append(f"spot: the cluster has no spot nodes, so the {placement} placement asked for was "
                             "downgraded to preferred node affinity (pods would otherwise stay Pending)")
        set_notes.append(f"spot: the cluster has no spot nodes: a spot node pool labelled {p.key}={detected.value} "
                         "must exist before these patches save anything")
    if p.provider == "gcp" and not detected.taints:
        set_notes.append("spot: no taint seen on the GKE spot nodes; if the spot pool is tainted "
                         "cloud.google.com/gke-spot=true:NoSchedule (Autopilot does it), add that toleration")
    if rates.basis != "node prices":
        set_notes.append(f"spot: savings use {rates.basis}")
    out.notes += set_notes

    provider = detected.provider
    discount = book.spot_discounts.get(provider) or book.spot_discounts.get("*")
    od, sp = book.fallback["on-demand"], book.fallback["spot"]
    if discount is not None:
        f_cpu = f_mem = discount.fraction
        discount_note = (f"spot discount {discount.fraction:.1%} off on-demand for {provider}: {discount.source} "
                         f"({discount.date}{'; ' + discount.derived if discount.derived else ''})")
    else:
        f_cpu = 1 - sp.cpu_core_hour / od.cpu_core_hour
        f_mem = 1 - sp.memory_gib_hour / od.memory_gib_hour
        discount_note = (f"no spot discount for provider {provider}: fallback spot vs on-demand rates, "
                         f"{f_cpu:.1%} off CPU and {f_mem:.1%} off memory ({sp.source}, {sp.date})")
    risk, risk_words = INTERRUPTION.get(provider, UNKNOWN_INTERRUPTION)

    cand = ready.filter(pl.col("ready"))
    req = pod_requests(snapshot)
    # On-demand rates: a workload's own when it ran on on-demand nodes, else the cluster's average.
    priced = rates.attach(cand.select(*WORKLOAD, "replicas")).join(req, on=WORKLOAD, how="left").with_columns(
        pl.col("cpu").fill_null(0.0), pl.col("memory").fill_null(0.0), pl.col("basis").fill_null("no requests or usage"),
        *[pl.when(pl.col("capacity_type") == "on-demand").then(pl.col(f"{r}_rate")).otherwise(rates.default[r])
          .alias(f"{r}_rate") for r in ("cpu", "memory")],
        # A CronJob holds capacity only while a run is going: its average running pods, not its parallelism.
        pl.when(pl.col("workload_kind") == "CronJob").then(pl.col("avg_pods"))
        .otherwise(pl.col("replicas").cast(pl.Float64)).fill_null(0.0).alias("pods"),
    ).with_columns(
        ((pl.col("cpu") * pl.col("cpu_rate") * f_cpu + pl.col("memory") / GIB * pl.col("memory_rate") * f_mem)
         * pl.col("pods") * HOURS_PER_MONTH).alias("saving"))
    facts = cand.join(priced.select(*WORKLOAD, "cpu", "memory", "basis", "cpu_rate", "memory_rate", "pods", "saving"),
                      on=WORKLOAD, how="left")

    m = snapshot.manifest
    for row in facts.iter_rows(named=True):
        target = Target(row["namespace"], row["workload_kind"], row["workload"])
        patch, patch_notes = spot_patch(detected, used, row["tolerations"], row["affinity"])
        overridden = row["soft"]
        notes = [discount_note, f"interruption risk: {risk_words}", f"platform: {detected.how}"]
        if overridden:
            notes.append("opted in (" + _opt_in_source(row) + "), overriding: " + "; ".join(overridden))
        if not detected.spot_nodes:
            notes.append(f"the cluster has no spot nodes: a spot node pool labelled {p.key}={detected.value} must "
                         "exist; the node affinity is preferred, so the pods fall back to on-demand meanwhile")
        if row["hpa_name"]:
            notes.append(f"HPA {row['hpa_name']} scales it ({row['hpa_min_replicas']}-{row['hpa_max_replicas']} "
                         f"replicas); the saving uses the current {row['replicas']}")
        notes.append(f"per-pod amounts from {row['basis']}")
        if row["workload_kind"] == "CronJob":
            notes.append(f"CronJob: its runs averaged {row['pods'] or 0:.2f} pods over the window; the saving uses "
                         "that, not its parallelism")
        notes += patch_notes
        confidence = _confidence(len(overridden), row["replicas"] or 0, bool(detected.spot_nodes))
        where = {"preferred": "preferred node affinity", "required": "required node affinity",
                 "selector": "a nodeSelector"}[used]
        reason = (f"spot-ready {row['workload_kind']} with {row['replicas']} replicas: move it to spot capacity "
                  f"({where} on {p.key}={detected.value}), saving about ${row['saving'] or 0:,.2f}/month")
        ev = Evidence(
            reason=reason, history_start=m.start, history_end=m.end,
            history_hours=(m.end - m.start).total_seconds() / 3600.0 if m.start and m.end else 0.0,
            observed={"cpu_per_pod": float(row["cpu"] or 0), "memory_per_pod": float(row["memory"] or 0),
                      "replicas": float(row["replicas"] or 0), "pods_priced": float(row["pods"] or 0),
                      "cpu_rate": float(row["cpu_rate"] or 0),
                      "memory_rate": float(row["memory_rate"] or 0), "spot_discount_cpu": float(f_cpu),
                      "spot_discount_memory": float(f_mem)},
            hpa=row["hpa_name"], notes=tuple(notes))
        out.recommendations.append(Recommendation(
            target=target, kind="spot", resource="placement", current_request=None, proposed_request=None,
            current_limit=None, proposed_limit=None, monthly_saving_usd=float(row["saving"] or 0.0), risk=risk,
            confidence=confidence, evidence=ev, replicas=int(row["replicas"] or 0), pod_spec_patch=patch,
            saving_basis=rates.basis))

    for row in ready.filter(~pl.col("ready")).iter_rows(named=True):
        out.skipped.append(Skip(Target(row["namespace"], row["workload_kind"], row["workload"]), "spot", "placement",
                                _skip_reason(row)))
    out.cluster_notes["spot"] = {
        "platform": p.name, "label": f"{p.key}={detected.value}", "provider": provider,
        "spot_nodes": detected.spot_nodes, "placement": used,
        "tolerations": [_taint_text(t) for t in detected.taints],
        "recommended": len(out.recommendations), "monthly_saving_usd": round(out.monthly_saving_usd, 2),
    }
    return out


def _taint_text(t: tuple[str, str | None, str]) -> str:
    return f"{t[0]}={t[1]}:{t[2]}" if t[1] is not None else f"{t[0]}:{t[2]}"


def _opt_in_source(row: dict) -> str:
    ann = {a["key"]: a["value"] for a in row["annotations"] or []}
    if str(ann.get(SPOT_ANNOTATION, "")).lower() == "true":
        return f'annotation {SPOT_ANNOTATION}: "true"'
    if str(ann.get(KUBECOST_READY, "")).lower() == "true":
        return f'annotation {KUBECOST_READY}: "true"'
    return "a namespace label"


def _confidence(overridden: int, replicas: int, has_spot_nodes: bool) -> float:
    """High when every soft check passes; each check the user overrode costs 0.15 (floor 0.3);
    two replicas are thin redundancy (-0.1); no spot pool yet makes the saving hypothetical (x 0.85)."""
    c = 0.9 - 0.15 * overridden - (0.1 if replicas == 2 else 0.0)
    c = max(0.3, c)
    return round(c * (1.0 if has_spot_nodes else 0.85), 3)


def _skip_reason(row: dict) -> str:
    if row["opt_out"]:
        return f'opted out with {SPOT_ANNOTATION}: "false"'
    if row["already"]:
        return row["already"]
    hard, soft = list(row["hard"]), list(row["soft"])
    if hard:
        text = "not spot-ready: " + "; ".join(hard)
        text += " (no opt-in overrides this)" if row["opt_in"] else ""
        return text + ("; also: " + "; ".join(soft) if soft else "")
    return ("not spot-ready: " + "; ".join(soft)
            + f' (annotate {SPOT_ANNOTATION}: "true" to opt in if you accept this)')


__all__ = ["PLATFORMS", "Detected", "Platform", "detect_platform", "pod_requests", "recommend_spot",
           "spot_patch", "spot_readiness"]
