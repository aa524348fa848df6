"""Spot readiness, vectorised: every workload's hard and soft checks at once, each failure in plain words.

Checks follow the Kubecost spot-readiness checklist (docs/domain-reference.md section 6) with
kubetune's additions; ``recommenders.spot`` explains them and turns the ready ones into patches.
"""

from __future__ import annotations

import re

import polars as pl

from analyzer.kube import parse_affinity
from analyzer.snapshot import Snapshot
from recommenders.rates import WORKLOAD
from recommenders.spot_platform import PLATFORMS, Detected, detect_platform


SPOT_ANNOTATION = "kubetune.io/spot"


KUBECOST_READY = "spot.kubecost.com/spot-ready"


SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"


PDB_MAX_MIN_AVAILABLE = 0.5  # Kubecost: PDB minAvailable / replicas above this = not spot-ready


ROLLING_MAX_MIN_AVAILABLE = 0.9  # Kubecost: rolling-update min available / replicas above this = not ready


# Labels that pin pods to one node pool: a nodeSelector on them conflicts with moving to spot.
POOL_LABELS = ("karpenter.sh/nodepool", "eks.amazonaws.com/nodegroup", "cloud.google.com/gke-nodepool",
               "kubernetes.azure.com/agentpool", "agentpool")


# nodeSelector keys every node carries: never a conflict.
GENERIC_LABELS = ("kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch")


CONTROLLERS = ("Deployment", "Rollout", "StatefulSet", "CronJob")


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

    Length: one column per check in a single ``with_columns``, so every check reads next to its reason text.
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
