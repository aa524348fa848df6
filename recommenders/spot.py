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

from typing import Any

import polars as pl

from analyzer.cost import HOURS_PER_MONTH, PriceBook, load_pricing
from analyzer.kube import parse_affinity
from analyzer.snapshot import Snapshot
from analyzer.units import GIB
from recommenders.rates import WORKLOAD, WorkloadRates, workload_rates
from recommenders.record import Evidence, Recommendation, RecommendationSet, Skip, Target
from recommenders.spot_checks import KUBECOST_READY, SPOT_ANNOTATION, spot_readiness
from recommenders.spot_platform import (
    INTERRUPTION,
    PLATFORMS,
    UNKNOWN_INTERRUPTION,
    Detected,
    Platform,
    detect_platform,
)
from recommenders.spot_settings import PLACEMENTS


SPOT_WEIGHT = 100


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

    Length: notes, discount, pricing and one record per ready workload in order; the checks and the patch are
    their own functions.
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
