"""The report's numbers: one JSON-ready document computed from a Snapshot.

Everything the HTML page, the Markdown and report.json show comes from this one document (so the
three never disagree): cost headline and roll-ups from ``analyzer.cost``, recommendations from
``recommenders.api``, drift from ``forecasting`` and a 7-day forecast band for the few workloads
charted. Money is USD ($/month unless a key says otherwise), CPU in cores, memory in bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from analyzer.cost import analyze_cost, rollup, top_waste
from analyzer.cost.rollup import IDLE
from analyzer.snapshot import Snapshot
from analyzer.summary import summarize
from forecasting import detect_drift, extract_series, forecast_snapshot
from forecasting.series import SeriesSet
from recommenders.api import recommend
from recommenders.record import RecommendationSet

REPORT_FORMAT = "kubetune-report"
REPORT_VERSION = 2
CHARTED_WORKLOADS = 4  # requested vs used vs recommended charts (one per container and resource)
TOP_ROWS = 10
DRIFT_ROWS = 20


@dataclass
class ReportOptions:
    title: str | None = None
    window: timedelta | None = timedelta(days=7)
    team_label: str = "team"
    pricing_file: Path | None = None
    progress: Callable[[str], None] = field(default=lambda line: None)


def _iso(t: Any) -> str | None:
    if t is None:
        return None
    if isinstance(t, np.datetime64):
        t = t.astype("datetime64[us]").astype(datetime)
    if isinstance(t, datetime):
        t = t if t.tzinfo else t.replace(tzinfo=UTC)
        return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(t)


def _f(v: Any, nd: int = 4) -> float | None:
    return None if v is None or (isinstance(v, float) and not np.isfinite(v)) else round(float(v), nd)


def _rows(df: pl.DataFrame, cols: list[str]) -> list[dict[str, Any]]:
    out = []
    for r in df.select([c for c in cols if c in df.columns]).iter_rows(named=True):
        out.append({k: (_f(v) if isinstance(v, float) else v) for k, v in r.items()})
    return out


def cost_section(snapshot: Snapshot, opts: ReportOptions) -> tuple[dict[str, Any], Any]:
    result = analyze_cost(snapshot, window=opts.window, pricing_file=opts.pricing_file)
    s = result.summary()
    f = result.monthly_factor
    money = ["cpu_cost", "memory_cost", "gpu_cost", "idle_cost", "total_cost"]
    by_ns = rollup(result, "namespace").with_columns(pl.col(c) * f for c in money)
    team_key = f"label:{opts.team_label}"
    by_team = rollup(result, team_key).with_columns(pl.col(c) * f for c in money).rename({team_key: "team"})
    daily = (result.timeline.group_by(pl.col("hour").dt.truncate("1d").alias("day"))
             .agg(pl.col("total_cost", "allocated_cost", "idle_cost").sum()).sort("day"))
    waste = top_waste(result, TOP_ROWS)
    gpus = result.gpus
    section = {
        "window": {"start": _iso(result.window_start), "end": _iso(result.window_end), "hours": _f(result.hours, 2)},
        "monthly_cost_usd": _f(s["total_cost_monthly"], 2),
        "idle_monthly_usd": _f(s["idle_cost_monthly"], 2),
        "idle_fraction": _f(s["idle_fraction"]),
        "waste_monthly_usd": _f(s["waste_monthly"], 2),
        "window_cost_usd": _f(s["total_cost"], 2),
        "efficiency": _f(s["total_efficiency"]),
        "by_namespace": _rows(by_ns, ["namespace", *money, "share"]),
        "by_team": _rows(by_team, ["team", *money, "share"]),
        "daily": [{"day": _iso(r["day"]), "total_usd": _f(r["total_cost"], 2), "allocated_usd": _f(r["allocated_cost"], 2),
                   "idle_usd": _f(r["idle_cost"], 2)} for r in daily.iter_rows(named=True)],
        "top_waste": _rows(waste.with_columns(pl.col(c).cast(pl.String) for c in ("namespace", "workload_kind", "workload")),
                           ["namespace", "workload_kind", "workload", "waste_monthly", "cpu_waste_monthly",
                            "memory_waste_monthly", "gpu_waste_monthly", "cost_monthly", "waste_fraction"]),
        "gpu_devices": gpus.select(
            pl.len().alias("devices"),
            pl.col("busy_fraction").mean().alias("busy"),
            pl.col("memory_used_fraction").mean().alias("fb"),
            (pl.col("idle_cost").sum() * f).alias("idle_monthly"),
            (pl.col("cost").sum() * f).alias("cost_monthly"),
        ).row(0, named=True) if gpus.height else None,
        "gpu_by_model": _rows(gpus.group_by("model").agg(
            pl.len().alias("devices"), pl.col("busy_fraction").mean().alias("busy_fraction"),
            pl.col("memory_used_fraction").mean().alias("memory_used_fraction"),
            (pl.col("idle_cost").sum() * f).alias("idle_monthly_usd"), (pl.col("cost").sum() * f).alias("cost_monthly_usd"),
        ).sort("cost_monthly_usd", descending=True), ["model", "devices", "busy_fraction", "memory_used_fraction",
                                                     "idle_monthly_usd", "cost_monthly_usd"]) if gpus.height else [],
        "prices": sorted({f"{r['source']} ({r['date']})" for r in result.prices.iter_rows(named=True)}),
        "warnings": list(result.warnings),
    }
    g = section.pop("gpu_devices")
    section["gpu"] = None if g is None else {
        "devices": g["devices"], "busy_fraction": _f(g["busy"]), "memory_used_fraction": _f(g["fb"]),
        "idle_monthly_usd": _f(g["idle_monthly"], 2), "cost_monthly_usd": _f(g["cost_monthly"], 2)}
    return section, result


def _saving_by_kind(recs: RecommendationSet) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for r in recs.recommendations:
        k = rows.setdefault(r.kind, {"kind": r.kind, "count": 0, "monthly_saving_usd": 0.0, "risks": []})
        k["count"] += 1
        k["monthly_saving_usd"] += r.monthly_saving_usd
        k["risks"].append(r.risk)
    out = []
    for k in sorted(rows.values(), key=lambda k: -k["monthly_saving_usd"]):
        risks = k.pop("risks")
        out.append({**k, "monthly_saving_usd": round(k["monthly_saving_usd"], 2),
                    "mean_risk": _f(sum(risks) / len(risks)), "max_risk": _f(max(risks))})
    return out


def recommendation_rows(recs: RecommendationSet) -> list[dict[str, Any]]:
    return [{**r.row(), "saving_basis": r.saving_basis, "risk": _f(r.risk)} for r in recs.recommendations]


def _sub(ss: SeriesSet, idx: list[int]) -> SeriesSet:
    return SeriesSet(ss.keys[idx], ss.times, ss.values[idx], ss.high[idx], ss.bucket_seconds)


def workload_charts(ss: SeriesSet, recs: RecommendationSet, drift: pl.DataFrame) -> list[dict[str, Any]]:
    """Usage (hourly max per replica), request now, proposal, a 7-day forecast band (p50..p95) and
    drift markers for the containers whose right-sizing saves the most."""
    if ss.n_series == 0:
        return []
    index = {tuple(k): i for i, k in enumerate(ss.keys.iter_rows())}
    picked, seen = [], set()
    for r in recs.recommendations:
        if r.kind not in ("rightsize", "raise-memory") or r.resource not in ("cpu", "memory"):
            continue
        t = r.target
        key = (t.namespace, t.workload_kind, t.workload, t.container, r.resource)
        if key in index and key not in seen:
            seen.add(key)
            picked.append((key, r))
        if len(picked) == CHARTED_WORKLOADS:
            break
    if not picked:
        return []
    sub = _sub(ss, [index[k] for k, _ in picked])
    try:
        fc = forecast_snapshot(sub, horizon=timedelta(days=7), quantiles=(0.5, 0.95))
    except Exception:  # the band is decoration: a chart without it beats no report  # noqa: BLE001
        fc = None
    out = []
    for i, (key, r) in enumerate(picked):
        times = [_iso(t) for t in ss.times]
        vals = [None if not np.isfinite(v) else _f(v, 6 if key[4] == "cpu" else 0) for v in sub.values[i]]
        band = None
        if fc is not None and fc.height:
            part = fc.filter(*[pl.col(c) == v for c, v in zip(("namespace", "workload_kind", "workload", "container",
                                                                  "resource"), key, strict=True)])
            band = {"times": [_iso(t) for t in part["timestamp"].to_list()],
                    "p50": [_f(v, 6) for v in part["p50"].to_list()], "p95": [_f(v, 6) for v in part["p95"].to_list()]}
        marks = drift.filter(*[pl.col(c) == v for c, v in zip(("namespace", "workload_kind", "workload", "container",
                                                                  "resource"), key, strict=True)])
        out.append({
            "namespace": key[0], "workload_kind": key[1], "workload": key[2], "container": key[3], "resource": key[4],
            "unit": "cores" if key[4] == "cpu" else "bytes", "times": times, "usage": vals,
            "current_request": r.current_request, "proposed_request": r.proposed_request, "kind": r.kind,
            "monthly_saving_usd": round(r.monthly_saving_usd, 2), "forecast": band,
            "drift": [{"timestamp": _iso(t), "kind": k} for t, k in marks.select("timestamp", "kind").iter_rows()],
        })
    return out


def gpu_sharing(recs: RecommendationSet) -> list[dict[str, Any]]:
    rows = []
    for r in recs.recommendations:
        if not r.kind.startswith("gpu"):
            continue
        setup = r.resource.removeprefix("nvidia.com/")
        if r.resource == "nvidia.com/gpu.shared":
            replicas = re.search(r"time-slicing (?:with )?(\d+) replicas", r.evidence.reason)
            setup = f"time-slicing x{replicas.group(1)}" if replicas else "time-slicing"
        elif r.kind == "gpu-remove":
            setup = "none (remove)"
        rows.append({"namespace": r.target.namespace, "workload_kind": r.target.workload_kind,
                     "workload": r.target.workload, "container": r.target.container, "kind": r.kind,
                     "setup": setup, "current": r.current_request, "proposed": r.proposed_request,
                     "monthly_saving_usd": round(r.monthly_saving_usd, 2), "reason": r.evidence.reason})
    return rows


def current_requests(snapshot: Snapshot) -> pl.DataFrame:
    """The newest pod's request per (workload, container, resource): what a taken recommendation moved."""
    c = snapshot.containers.with_columns(pl.col(k).cast(pl.String) for k in ("namespace", "workload_kind", "workload",
                                                                                "container"))
    newest = c.sort("started_at", nulls_last=False).group_by("namespace", "workload_kind", "workload", "container").agg(
        pl.col("cpu_request").last().cast(pl.Float64).alias("cpu"), pl.col("memory_request").last().cast(pl.Float64).alias("memory"))
    return newest.unpivot(index=["namespace", "workload_kind", "workload", "container"], on=["cpu", "memory"],
                          variable_name="resource", value_name="request")


def build_document(snapshot: Snapshot, opts: ReportOptions, *, source: str) -> tuple[dict[str, Any], RecommendationSet]:
    """Compute the whole report document (report.json) and the recommendation set (for patches/)."""
    say = opts.progress
    say("summarising the snapshot")
    summary = summarize(snapshot)
    say("allocating cost")
    cost, _ = cost_section(snapshot, opts)
    say("recommending")
    recs = recommend(snapshot, pricing_file=opts.pricing_file)
    say("detecting drift")
    ss = extract_series(snapshot.usage)
    drift = detect_drift(ss)
    say("forecasting the charted workloads")
    charts = workload_charts(ss, recs, drift)
    by_kind = _saving_by_kind(recs)
    positive = sum(r.monthly_saving_usd for r in recs.recommendations if r.monthly_saving_usd > 0)
    m = snapshot.manifest
    drift_rows = drift.sort("timestamp", descending=True).head(DRIFT_ROWS).with_columns(
        pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    doc = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generated_at": _iso(datetime.now(UTC)),
        "title": opts.title or f"kubetune report: {m.cluster}",
        "cluster": m.cluster,
        "source": source,
        "snapshot": {"start": _iso(m.start), "end": _iso(m.end), "step_seconds": m.step_seconds, "source": m.source},
        "headline": {
            "monthly_cost_usd": cost["monthly_cost_usd"],
            "idle_monthly_usd": cost["idle_monthly_usd"],
            "idle_fraction": cost["idle_fraction"],
            "waste_monthly_usd": cost["waste_monthly_usd"],
            "potential_saving_monthly_usd": round(positive, 2),
            "net_saving_monthly_usd": round(recs.monthly_saving_usd, 2),
            "recommendations": len(recs.recommendations),
            "saving_by_kind": by_kind,
        },
        "summary": summary.to_json(),
        "cost": cost,
        "workload_charts": charts,
        "gpu": {"fleet": cost.pop("gpu"), "by_model": cost.pop("gpu_by_model"), "sharing": gpu_sharing(recs),
                "packing": recs.cluster_notes.get("gpu")},
        "drift": {"events": drift.height, "series": drift.select("namespace", "workload_kind", "workload", "container",
                                                                 "resource").unique().height,
                  "recent": _rows(drift_rows, ["namespace", "workload_kind", "workload", "container", "resource",
                                                "timestamp", "kind", "before", "after"])},
        "recommendations": recommendation_rows(recs),
        "skipped": len(recs.skipped),
        "notes": list(recs.notes) + list(cost["warnings"]) + list(summary.warnings),
        "history": None,
    }
    return doc, recs
