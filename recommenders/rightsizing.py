"""Right-sizing CPU and memory requests and limits from observed demand, drift and a risk target.

How one container's proposal is made (all containers at once, as Polars expressions):

* **History after the last change point.** Drift events (``forecasting.detect_drift``) mark
  level/variance shifts; CPU is sized from the samples after the last one when at least
  ``min_history_hours`` remain (else from the whole window, said in the evidence). Memory keeps
  the whole window's peak as a floor: a proposal never goes below the observed peak.
* **CPU: calibrated quantiles and a risk budget.** For each container the pooled per-pod samples
  give a grid of quantiles. How often demand really exceeds each quantile *next time* is measured
  out of sample (fit on the first 70% of each container's history, count exceedances on the last
  30%, pooled over all containers): that is the calibrated risk of each level. With
  ``risk_mode="cluster"`` the accepted share of pod-hours above request (``risk``) is spent where
  it saves the most cores (a Lagrangian choice per container: steady containers get a high level
  cheaply, bursty ones a lower level, none above ``max_risk``); with ``"workload"`` every
  container gets the lowest level whose calibrated risk is within ``risk``. Samples are weighted by
  recency (``half_life_hours``). A growth trend (memory leak, rising load) adds its weekly growth
  extrapolated over the horizon.
* **Memory: peak plus a per-container margin.** max(observed peak, trend-extrapolated peak) x
  (1 + margin), the margin scaled by how far the container's daily peaks sit below its peak and
  calibrated out of sample for ``memory_risk`` (see ``_memory_calibrate``), at least ``memory_margin``. OOM-killed containers follow VPA's rule
  (max(used + 100 MiB, used x 1.2) with used = max(peak, limit at the OOM)) and never get less
  than they have: if that is more than today, the recommendation is ``raise-memory``.
* **Edges.** Floors, rounding up to human values, no churn below ``min_change``; HPA-scaled
  resources are skipped with the HPA effect explained (``hpa="allow"`` sizes them anyway);
  BestEffort containers get proposals (with the added cost); too little data -> a Skip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from analyzer.cost import HOURS_PER_MONTH
from analyzer.parts import workload_parts
from analyzer.snapshot import Snapshot
from analyzer.units import GIB, format_cpu, format_memory, human_value
from forecasting import SeriesSet, detect_drift, extract_series, forecast_snapshot
from recommenders.memory_policy import MEM_LEVELS, burstable_requests, memory_request_grid, node_check
from recommenders.policy import RightsizePolicy
from recommenders.rates import WorkloadRates, workload_rates
from recommenders.record import Evidence, Recommendation, RecommendationSet, Skip, Target
from recommenders.rounding import round_cpu, round_memory
from recommenders.sizing_stats import (  # LEVELS and calibrated_risk stay importable from here
    CHANGE_KINDS, HOLDOUT, HORIZON_DAYS, KEY, LEVELS, WORKLOAD, _cpu_stats, _memory_calibrate, _memory_per_container,
    _qcol, _str_keys, _windowed, calibrated_risk, choose_levels,
)

def current_resources(snapshot: Snapshot) -> pl.DataFrame:
    """Per container of a workload: what its newest pod asks for (nulls = not set), and its type."""
    c = _str_keys(snapshot.containers).sort("started_at", nulls_last=False)
    return c.group_by(KEY).agg(
        pl.col("container_type").cast(pl.String).last(),
        *[pl.col(x).last() for x in ("cpu_request", "cpu_limit", "memory_request", "memory_limit")],
        pl.col("cpu_request").n_unique().alias("_cpu_variants"),
        pl.col("pod").n_unique().alias("pods_seen"),
    )


def change_points(snapshot: Snapshot, min_post_hours: float = 72.0, series: SeriesSet | None = None) -> pl.DataFrame:
    """Per (KEY, resource): the last level/variance change point with at least ``min_post_hours`` of
    history after it (``since``), whether a younger one exists (``recent_change``: noted, not used,
    since a few hours cannot size a container), and a growth trend's weekly growth, if any."""
    drift = _str_keys(detect_drift(series if series is not None else snapshot)).filter(
        pl.col("resource").is_in(["cpu", "memory"]))
    end = snapshot.manifest.end
    old_enough = (pl.lit(end) - pl.col("timestamp")).dt.total_seconds() / 3600.0 >= min_post_hours
    change = pl.col("kind").is_in(CHANGE_KINDS)
    return drift.group_by([*KEY, "resource"]).agg(
        pl.col("timestamp").filter(change & old_enough).max().alias("since"),
        pl.col("kind").filter(change & old_enough).last().alias("drift_kind"),
        (change & ~old_enough).any().alias("recent_change"),
        # growth over the trend window (a week), in the resource's unit
        (pl.col("after") - pl.col("before")).filter(pl.col("kind") == "growth_trend").max().alias("trend_growth"),
    )


def _forecast(series: SeriesSet | None, policy: RightsizePolicy) -> pl.DataFrame:
    """Per container: the forecaster's (``forecasting.forecast_snapshot``) peak and P95 over the next
    7 days for CPU and memory, for the evidence and as a memory floor (a forecast peak above the
    observed one raises memory; it never lowers it)."""
    cols = ["forecast_cpu_p95", "forecast_cpu_peak", "forecast_memory_p95", "forecast_memory_peak"]
    empty = pl.DataFrame(schema={**{k: pl.String for k in KEY}, **{c: pl.Float64 for c in cols}})
    if series is None or not policy.use_forecast or series.n_series == 0:
        return empty
    fc = forecast_snapshot(series)
    if fc.is_empty():
        return empty
    wide = fc.group_by([*KEY, "resource"]).agg(pl.col("p95").max(), pl.col("peak").max()).pivot(
        on="resource", index=KEY, values=["p95", "peak"], aggregate_function="first")
    for r in ("cpu", "memory"):
        for q in ("p95", "peak"):
            name = f"{q}_{r}"
            wide = wide.rename({name: f"forecast_{r}_{q}"}) if name in wide.columns else wide.with_columns(
                pl.lit(None, pl.Float64).alias(f"forecast_{r}_{q}"))
    return wide.select(*KEY, *cols)


def _ooms(snapshot: Snapshot) -> pl.DataFrame:
    ev = _str_keys(snapshot.events).filter(pl.col("reason") == "OOMKilled")
    return ev.group_by(KEY).agg(pl.len().alias("ooms"), pl.col("memory_limit").max().alias("oom_limit"),
                                pl.col("timestamp").max().alias("last_oom"))


def _hpa(snapshot: Snapshot) -> pl.DataFrame:
    """Per workload: HPA/KEDA name and its cpu / memory *Utilization* targets (percent), if any. Only
    utilization targets depend on the request; an AverageValue target (absolute cores or bytes per
    pod) scales the same whatever the request, so it does not stop a resize."""
    w = _str_keys(snapshot.workloads, WORKLOAD).filter(pl.col("hpa_name").is_not_null())
    if w.is_empty():
        return pl.DataFrame(schema={**{k: pl.String for k in WORKLOAD}, "hpa_name": pl.String,
                                    "hpa_cpu": pl.Float64, "hpa_memory": pl.Float64})
    m = w.select(*WORKLOAD, "hpa_name", "hpa_metrics").explode("hpa_metrics").unnest("hpa_metrics")
    return m.group_by(*WORKLOAD, "hpa_name").agg(
        *[pl.col("target").filter((pl.col("metric") == r) & (pl.col("target_type") == "Utilization")).first()
          .alias(f"hpa_{r}") for r in ("cpu", "memory")])


# -- the table ------------------------------------------------------------------------------------

def sizing_table(snapshot: Snapshot, policy: RightsizePolicy | None = None, series=None) -> pl.DataFrame:
    """One row per container with usage: current values, evidence columns and proposals (base units).

    ``series``: the per-container CPU/memory ``SeriesSet`` if the caller has it (or a callable making it
    on demand, e.g. the recommender context's shared one); built here otherwise, only when drift or
    forecasts need it.
    """
    policy = policy or RightsizePolicy()
    step_h = snapshot.manifest.step_seconds / 3600.0
    # the big frame keeps its categorical keys (strings for 40 M rows cost GBs); only the per-container
    # aggregates are turned into strings
    # lazy: each statistic's query reads the few columns it needs; no filtered copy of the usage frame
    usage = snapshot.usage.lazy().select("timestamp", *KEY, "pod", "resource", "value").filter(
        pl.col("resource").is_in(["cpu", "memory"]) & pl.col("value").is_finite() & (pl.col("value") >= 0))
    rows = usage.select(pl.len()).collect().item()
    if not rows:
        return pl.DataFrame()
    if not (policy.use_drift or policy.use_forecast):
        series = None
    elif callable(series):
        series = series()
    elif series is None:
        # lazy: the filter is fused into the hourly aggregation, no filtered copy of the usage frame
        series = extract_series(snapshot.usage.lazy().filter(pl.col("resource").is_in(["cpu", "memory"])))
    changes = change_points(snapshot, max(policy.min_history_hours, policy.min_post_change_hours), series) \
        if policy.use_drift else pl.DataFrame(
        schema={**{k: pl.String for k in KEY}, "resource": pl.String, "since": pl.Datetime("us", "UTC"),
                "drift_kind": pl.String, "recent_change": pl.Boolean, "trend_growth": pl.Float64})
    u = _windowed(usage, changes)
    # per-container statistics part by part (bounded memory), pooled calibration over all of them
    parts = workload_parts(u, rows)
    cpu = pl.concat([_cpu_stats(part, step_h, policy.half_life_hours) for part in parts], how="vertical_relaxed")
    risk_by_level = calibrated_risk(cpu, policy.own_risk_weight)
    rows = np.arange(cpu.height)
    grid = cpu.select([_qcol(q) for q in LEVELS]).to_numpy().astype(float) if cpu.height else np.zeros((0, len(LEVELS)))
    eligible = (cpu["cpu_hours"].to_numpy() >= policy.min_history_hours) if cpu.height else np.zeros(0, bool)
    idx = np.full(cpu.height, len(LEVELS) - 1, dtype=int)
    if eligible.any():
        idx[eligible] = choose_levels(grid[eligible], cpu["avg_pods"].to_numpy()[eligible], risk_by_level[eligible], policy)
    cpu = cpu.with_columns(
        pl.Series("cpu_level", np.array(LEVELS)[idx]),
        pl.Series("cpu_risk", risk_by_level[rows, idx] if cpu.height else np.zeros(0)),
        pl.Series("cpu_base", grid[np.arange(cpu.height), idx] if cpu.height else np.zeros(0)),
    ).select(*KEY, "cpu_level", "cpu_risk", "cpu_base", "samples", "cpu_hours", "avg_pods", "coverage", "cpu_start",
             "cpu_end", "cpu_since", "cpu_recent_change",
             *[pl.col(f"raw{_qcol(q)}").alias(f"cpu_p{round(q * 1000) / 10:g}") for q in (0.5, 0.95, 0.99)],
             pl.col(_qcol(1.0)).alias("cpu_peak"))

    mem = _memory_calibrate(pl.concat([_memory_per_container(part) for part in parts], how="vertical_relaxed"),
                            policy.memory_risk, step_h, policy.memory_margin, float(policy.memory_headroom))
    mem_grid = pl.concat([memory_request_grid(part, HOLDOUT) for part in parts], how="vertical_relaxed") \
        if policy.memory_policy == "burstable" else None
    trend = changes.pivot(on="resource", index=KEY, values="trend_growth", aggregate_function="max") if changes.height else None
    table = current_resources(snapshot).join(cpu, on=KEY, how="full", coalesce=True).join(mem, on=KEY, how="full", coalesce=True)
    for r in ("cpu", "memory"):
        t = trend.select(*KEY, pl.col(r).alias(f"{r}_trend")) if trend is not None and r in trend.columns else None
        table = table.join(t, on=KEY, how="left") if t is not None else table.with_columns(pl.lit(None, pl.Float64).alias(f"{r}_trend"))
    kinds = changes.select(*KEY, "resource", "drift_kind").filter(pl.col("drift_kind").is_not_null())
    for r in ("cpu", "memory"):
        table = table.join(kinds.filter(pl.col("resource") == r).select(*KEY, pl.col("drift_kind").alias(f"{r}_drift")),
                           on=KEY, how="left")
    table = table.join(_forecast(series, policy), on=KEY, how="left")
    table = table.join(_ooms(snapshot), on=KEY, how="left").join(_hpa(snapshot), on=WORKLOAD, how="left")
    table = table.with_columns(pl.col("ooms").fill_null(0), pl.col("container_type").fill_null("app"),
                               pl.lit(step_h).alias("_step_h"))

    # a steady trend adds its weekly growth over the horizon on top of today's value (never subtracts)
    growth = {r: pl.col(f"{r}_trend").fill_null(0).clip(lower_bound=0) * HORIZON_DAYS / 7.0 for r in ("cpu", "memory")}
    margin = (pl.col("_cv_margin").fill_null(policy.memory_margin) if policy.memory_spread else pl.lit(policy.memory_margin)
              ).clip(policy.memory_margin, max(policy.max_memory_margin, policy.memory_margin))
    used_at_oom = pl.max_horizontal(pl.col("mem_peak"), pl.col("oom_limit"), pl.col("memory_request"))
    oom_need = pl.max_horizontal(used_at_oom + policy.oom_min_bump, used_at_oom * policy.oom_bump_ratio)
    # the forecast peak already carries its own (calibrated) uncertainty: no margin on top of it
    peak = pl.max_horizontal(pl.col("mem_peak"), pl.col("mem_peak_post") + growth["memory"])
    mem_base = pl.max_horizontal(peak * (1 + margin), peak + float(policy.memory_headroom), pl.col("forecast_memory_peak"))
    mem_prop = pl.when(pl.col("ooms") > 0).then(
        pl.max_horizontal(mem_base, oom_need, pl.col("memory_limit"), pl.col("memory_request"))).otherwise(mem_base)
    table = table.with_columns(
        margin.alias("memory_margin"),
        round_cpu(pl.max_horizontal(pl.col("cpu_base") + growth["cpu"], pl.lit(policy.cpu_floor))).alias("proposed_cpu_request"),
        round_memory(pl.max_horizontal(mem_prop, pl.lit(float(policy.memory_floor)), pl.col("mem_peak"))).alias("_mem_guaranteed"),
        (growth["cpu"] > 0).alias("cpu_grew"), (growth["memory"] > 0).alias("memory_grew"),
    )
    blim = pl.max_horizontal(peak * (1 + max(policy.burstable_limit_margin, policy.memory_margin)),
                             peak + float(policy.memory_headroom), pl.col("_mem_guaranteed"))
    table = table.with_columns(round_memory(blim).alias("_mem_burst_limit"))
    table = burstable_requests(table, mem_grid, policy)
    ratio = policy.cpu_limit_ratio
    cpu_limit = (round_cpu(pl.col("proposed_cpu_request") * ratio) if ratio is not None else
                 pl.when(pl.col("cpu_limit").is_not_null() & (pl.col("cpu_limit") < pl.col("proposed_cpu_request")))
                 .then(pl.col("proposed_cpu_request")).otherwise(pl.col("cpu_limit")))
    # "keep": today's limit stays when it is at least the policy's limit (never below the observed peak)
    base_limit = pl.when(pl.col("memory_burstable")).then(pl.col("_mem_burst_limit")).otherwise(pl.col("_mem_guaranteed"))
    mem_limit = (base_limit if policy.memory_limit == "request" else
                 pl.when(pl.col("memory_limit").is_null() | (pl.col("memory_limit") < base_limit))
                 .then(base_limit).otherwise(pl.col("memory_limit")))
    return table.with_columns(cpu_limit.alias("proposed_cpu_limit"), mem_limit.alias("proposed_memory_limit"))


def proposed_requests(snapshot: Snapshot, **policy: Any) -> pl.DataFrame:
    """KEY + cpu_request, cpu_limit, memory_request, memory_limit as kubetune would set them (base
    units), null where it makes no recommendation (for replays and comparisons with peers)."""
    recs = recommend_rightsizing(snapshot, RightsizePolicy(**policy), rates=None, with_rates=False)
    return requests_frame(recs)


def requests_frame(recs: RecommendationSet) -> pl.DataFrame:
    """KEY + cpu/memory request/limit (base units) of a set of right-sizing recommendations."""
    rows = [{**dict(zip(KEY, (r.target.namespace, r.target.workload_kind, r.target.workload, r.target.container))),
             "resource": r.resource, "request": r.proposed_request, "limit": r.proposed_limit} for r in recs.recommendations]
    schema = {**{k: pl.String for k in KEY}, "cpu_request": pl.Float64, "cpu_limit": pl.Float64,
              "memory_request": pl.Float64, "memory_limit": pl.Float64}
    if not rows:
        return pl.DataFrame(schema=schema)
    df = pl.DataFrame(rows, schema={**{k: pl.String for k in KEY}, "resource": pl.String, "request": pl.Float64,
                                    "limit": pl.Float64})
    wide = df.pivot(on="resource", index=KEY, values=["request", "limit"], aggregate_function="first")
    out = wide.rename({c: f"{c.split('_', 1)[1]}_{c.split('_', 1)[0]}" for c in wide.columns if c not in KEY})
    for c in schema:
        if c not in out.columns:
            out = out.with_columns(pl.lit(None, pl.Float64).alias(c))
    return out.select(list(schema))


# -- records --------------------------------------------------------------------------------------

def _ts(v) -> datetime | None:
    return v if isinstance(v, datetime) else None


def _resources_patch(row: dict, resource: str, request: float | None, limit: float | None,
                     change_limit: bool) -> dict[str, Any]:
    fmt = format_cpu if resource == "cpu" else format_memory
    res: dict[str, Any] = {"requests": {resource: fmt(request)}}
    if change_limit:
        res["limits"] = {resource: fmt(limit) if limit is not None else None}
    key = "initContainers" if row["container_type"] in ("init", "sidecar") else "containers"
    return {key: [{"name": row["container"], "resources": res}]}


def recommend_rightsizing(snapshot: Snapshot, policy: RightsizePolicy | None = None, rates: WorkloadRates | None = None,
                          *, with_rates: bool = True, series=None) -> RecommendationSet:
    """CPU and memory recommendations (and Skips with reasons) for every container with usage.

    ``series``: a shared per-container ``SeriesSet`` (or a callable making it), see ``sizing_table``.
    """
    policy = policy or RightsizePolicy()
    out = RecommendationSet()
    table = sizing_table(snapshot, policy, series)
    if table.is_empty():
        out.notes.append("The snapshot has no CPU or memory usage: nothing to right-size.")
        return out
    table = node_check(snapshot, table, policy, out)
    if with_rates:
        rates = rates or workload_rates(snapshot)
        table = rates.attach(table)
        basis = rates.basis
        if rates.basis != "node prices":
            out.notes.append(f"Savings use {rates.basis}.")
    else:
        table = table.with_columns(pl.lit(0.0).alias("cpu_rate"), pl.lit(0.0).alias("memory_rate"))
        basis = "not priced"
    months = HOURS_PER_MONTH
    for row in table.iter_rows(named=True):
        target = Target(row["namespace"], row["workload_kind"], row["workload"], row["container"], row["container_type"])
        for resource in ("cpu", "memory"):
            rec = _one(row, resource, target, policy, months, basis)
            if isinstance(rec, Skip):
                out.skipped.append(rec)
            elif rec is not None:
                out.recommendations.append(rec)
    return out


def _one(row: dict, resource: str, target: Target, policy: RightsizePolicy, months: float, basis: str):
    hours = (row.get("cpu_hours") if resource == "cpu" else row.get("mem_hours")) or 0.0
    if resource == "cpu":
        if row.get("cpu_base") is None:
            return Skip(target, "rightsize", "cpu", "no CPU usage samples for this container")
        if hours < policy.min_history_hours:
            why = ("init container: it ran only briefly, sized by its app containers"
                   if row["container_type"] == "init" else
                   f"only {hours:.1f} h of CPU history (at least {policy.min_history_hours:g} h needed)")
            return Skip(target, "rightsize", "cpu", why)
    elif row.get("mem_peak") is None:
        return Skip(target, "rightsize", "memory", "no memory usage samples for this container")
    elif hours < policy.min_history_hours and not row["ooms"]:
        return Skip(target, "rightsize", "memory", f"only {hours:.1f} h of history (at least {policy.min_history_hours:g} h needed)")

    hpa_target = row.get(f"hpa_{resource}")
    if hpa_target is not None and policy.hpa == "skip" and not (resource == "memory" and row["ooms"]):
        cur = row[f"{resource}_request"]
        prop = row[f"proposed_{resource}_request"]
        effect = ""
        if cur and prop:
            effect = (f"; at the proposed {human_value(resource, prop)} (now {human_value(resource, cur)}) the same load would read "
                      f"{hpa_target * cur / prop:.0f}% of request and the HPA would scale to about {cur / prop:.2f}x the "
                      f"replicas: change its target to {min(hpa_target * cur / prop, 100):.0f}% together with the request, "
                      "or pass --allow-hpa")
        return Skip(target, "rightsize", resource,
                    f"HPA {row['hpa_name']} scales on {resource} utilization ({hpa_target:g}% of request){effect}")

    cur_req, cur_lim = row[f"{resource}_request"], row[f"{resource}_limit"]
    prop_req, prop_lim = row[f"proposed_{resource}_request"], row[f"proposed_{resource}_limit"]
    if resource == "memory":
        prop_req, prop_lim = int(prop_req), (int(prop_lim) if prop_lim is not None else None)
    ooms = int(row["ooms"]) if resource == "memory" else 0
    current = cur_req if cur_req is not None else cur_lim
    if current is not None and current > 0 and not ooms:
        change = abs(prop_req - current) / current
        lim_changes = prop_lim != cur_lim and not (prop_lim is None and cur_lim is None)
        if change < policy.min_change and not (lim_changes and cur_lim is not None and prop_lim is not None
                                               and abs(prop_lim - cur_lim) / cur_lim >= policy.min_change):
            return Skip(target, "rightsize", resource,
                        f"already right-sized: proposed {human_value(resource, prop_req)} is within {policy.min_change:.0%} "
                        f"of the current {human_value(resource, current)}")
    kind = "rightsize"
    if ooms and (cur_lim is None or prop_req > cur_lim) and (cur_req is None or prop_req >= cur_req):
        kind = "raise-memory"
    change_limit = prop_lim != cur_lim
    pods = row.get("avg_pods") or 1.0
    rate = row["cpu_rate"] if resource == "cpu" else row["memory_rate"] / GIB
    before = cur_req if cur_req is not None else 0.0
    saving = (before - prop_req) * pods * rate * months

    ev = _evidence(row, resource, policy, hours, ooms, prop_req, cur_req)
    hours_conf = min(1.0, hours / policy.full_confidence_hours)
    coverage = row.get("coverage") if resource == "cpu" else min(1.0, (row.get("mem_stamps") or 0) * (
        row["_step_h"]) / max(hours, 1e-9))
    confidence = hours_conf * min(1.0, coverage or 0.0) * (0.7 if row.get(f"{resource}_drift") else 1.0)
    risk = row["cpu_risk"] if resource == "cpu" else (row.get("memory_oom_risk") if row.get("memory_oom_risk")
                                                       is not None else policy.memory_risk)
    return Recommendation(
        target=target, kind=kind, resource=resource, current_request=cur_req, proposed_request=prop_req,
        current_limit=cur_lim, proposed_limit=prop_lim, monthly_saving_usd=float(saving), risk=float(risk),
        confidence=float(confidence), evidence=ev, replicas=max(1, round(pods)),
        pod_spec_patch=_resources_patch(row, resource, prop_req, prop_lim, change_limit),
        saving_basis=basis,
    )


def _evidence(row: dict, resource: str, policy: RightsizePolicy, hours: float, ooms: int, prop: float,
              cur: float | None) -> Evidence:
    notes: list[str] = []
    since = _ts(row.get("cpu_since")) if resource == "cpu" else None
    drift = row.get(f"{resource}_drift")
    if resource == "cpu" and since is not None:
        notes.append(f"CPU behaviour changed ({drift}) at {since:%Y-%m-%d %H:%M} UTC; only the history after it was used")
    elif resource == "cpu" and row.get("cpu_recent_change"):
        notes.append("CPU behaviour changed again recently, too recently to size from alone; it was not used")
    if resource == "memory" and drift:
        notes.append(f"memory behaviour changed ({drift}); the whole window's peak is kept as a floor")
    if row.get(f"{resource}_grew"):
        notes.append(f"{resource} grows steadily (+{human_value(resource, row[f'{resource}_trend'])} per week); the value is "
                     f"extrapolated over {HORIZON_DAYS:g} days")
    if cur is None:
        notes.append(f"no {resource} request is set today (BestEffort/Burstable): setting one adds cost but "
                     "protects the pod from eviction and noisy neighbours")
    if row.get("_cpu_variants", 1) and row.get("_cpu_variants", 1) > 1:
        notes.append("pods of this workload ran with different requests in the window; the newest is shown as current")
    if resource == "cpu":
        observed = {k: float(row[f"cpu_{k}"]) for k in ("p50", "p95", "p99", "peak") if row.get(f"cpu_{k}") is not None}
        level = row["cpu_level"]
        reason = (f"CPU request from the p{level * 100:g} of per-pod demand"
                  f"{' (trend-adjusted)' if row.get('cpu_grew') else ''}: calibrated risk {row['cpu_risk']:.1%} of "
                  f"hours above request ({'cluster risk budget' if policy.risk_mode == 'cluster' else 'per workload'} "
                  f"{policy.risk:.1%}); now {human_value('cpu', cur) if cur is not None else 'unset'} -> {human_value('cpu', prop)}")
        forecast = {f"p{level * 100:g}": float(row["cpu_base"])}
        forecast |= {f"model {q} (7d)": float(row[f"forecast_cpu_{q}"]) for q in ("p95", "peak")
                     if row.get(f"forecast_cpu_{q}") is not None}
        return Evidence(reason=reason, history_start=_ts(row.get("cpu_start")), history_end=_ts(row.get("cpu_end")),
                        history_hours=float(hours), post_drift_start=since, drift_kind=drift, observed=observed,
                        forecast=forecast, quantile_used=f"calibrated p{level * 100:g}", margin=0.0, ooms=0,
                        hpa=row.get("hpa_name"), notes=tuple(notes))
    peak = float(row["mem_peak"])
    observed = {"peak": peak}
    for k in ("p50", "p95"):
        if row.get(f"mem_{k}") is not None:
            observed[k] = float(row[f"mem_{k}"])
    if row.get("daily_mean") is not None:
        observed["daily_peak_mean"] = float(row["daily_mean"])
    m = float(row["memory_margin"])
    burst = bool(row.get("memory_burstable")) and not row.get("node_raised")
    limit = row.get("proposed_memory_limit")
    if ooms:
        reason = (f"OOM-killed {ooms} time(s): VPA's bump (max(used + 100Mi, used x 1.2)) over the peak "
                  f"{format_memory(peak)} and the limit at the kill; never less than today")
    else:
        spread = (peak - (row.get("daily_median") or peak)) / max(peak, 1.0)
        how = (f"+ {m:.0%} margin (its daily peaks sit {spread:.0%} below the peak; margin calibrated for "
               f"{policy.memory_risk:.0%} risk of a higher peak next week)" if policy.memory_spread else
               f"+ max({m:.0%}, {format_memory(policy.memory_headroom)})")
        reason = f"memory limit from the observed peak {format_memory(peak)} {how}"
        if burst:
            reason += (f"; burstable request at the p{row['memory_level'] * 100:g} of memory use (calibrated: "
                       f"{row['memory_overcommit_risk']:.2%} of use above request, within {policy.memory_overcommit:.1%})")
        else:
            reason += "; request = limit (guaranteed)"
    reason += f"; now {human_value('memory', cur) if cur is not None else 'unset'} -> {human_value('memory', prop)}"
    if limit is not None and limit != prop:
        reason += f", limit {human_value('memory', limit)}"
    policy_used = "burstable" if burst else "guaranteed"
    if policy.memory_policy == "burstable" and not burst:
        why = row.get("memory_fallback") or ("the node check raised it: its node's memory use went over allocatable"
                                             if row.get("node_raised") else None)
        if why:
            notes.append(f"burstable fell back to guaranteed: {why}")
    if policy.memory_policy == "burstable" and row.get("_node_note"):
        notes.append(row["_node_note"])
    quantile = f"p{row['memory_level'] * 100:g} (calibrated)" if burst else "peak"
    forecast = ({"trend peak": float(row["mem_peak_post"] + (row.get("memory_trend") or 0) * HORIZON_DAYS / 7.0)}
                if row.get("memory_grew") else {})
    forecast |= {f"model {q} (7d)": float(row[f"forecast_memory_{q}"]) for q in ("p95", "peak")
                 if row.get(f"forecast_memory_{q}") is not None}
    return Evidence(reason=reason, history_start=_ts(row.get("mem_start")), history_end=_ts(row.get("mem_end")),
                    history_hours=float(hours), post_drift_start=None, drift_kind=drift, observed=observed,
                    forecast=forecast, quantile_used=quantile, margin=m, ooms=ooms, hpa=row.get("hpa_name"),
                    notes=tuple(notes), policy=policy_used,
                    expected_oom_risk=row.get("memory_oom_risk"),
                    expected_memory_above_request=float(row["memory_overcommit_risk"]) if burst else 0.0)


__all__ = ["LEVELS", "MEM_LEVELS", "RightsizePolicy", "calibrated_risk", "choose_levels", "current_resources",
           "proposed_requests", "recommend_rightsizing", "requests_frame", "sizing_table"]
