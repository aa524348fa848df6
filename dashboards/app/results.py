"""One run's results as the dashboard pages read them, computed from a Snapshot or read from a saved run.

The pages compute nothing of their own: cost comes from ``analyzer.cost``, recommendations from
``recommenders.api`` (or a saved run's ``recommendations.json``), GPUs from the cost model's device
table. What a snapshot cannot give (no GPUs, no prices, no requests) is kept as a sentence in
``missing`` for the page to show instead of an empty chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from analyzer.cost import analyze_cost, rollup
from analyzer.snapshot import Snapshot
from recommenders.api import recommend, recommendations_frame
from recommenders.record import RecommendationSet

WORKLOAD = ["namespace", "workload_kind", "workload"]
NO_TEAM = "(no team label)"

NO_GPUS = ("This snapshot has no GPUs: no GPU devices and no DCGM samples, so there is nothing to show here "
           "(GPU nodes appear once DCGM metrics are collected).")
NO_PRICES = ("This snapshot has no nodes, so there are no prices: costs cannot be computed and savings use the "
             "catalog's fallback rates (collect with the Kubernetes API, or from OpenCost, to price nodes).")
NO_REQUESTS = ("No container in this snapshot has CPU or memory requests (usage imported without a containers "
               "file?), so efficiency and waste cannot be computed and right-sizing has nothing to compare with.")
NO_USAGE = "This snapshot has no usage samples, so there is no usage over time and nothing to recommend from."


@dataclass
class Results:
    """What every page shows. Frames use base units (cores, bytes) and USD; ``_monthly`` = $/month."""

    origin: str
    cluster: str
    window: str
    key: str  # identifies the snapshot/run: the cache key of everything derived from it
    workloads: pl.DataFrame  # one row per workload: team, cost, efficiency, waste, recommendation
    daily: pl.DataFrame  # day, namespace, workload_kind, workload, team, cost (USD that day)
    headline: dict[str, Any]
    recommendations: RecommendationSet
    recs: pl.DataFrame  # flat records + rid, team, memory_policy
    gpus: pl.DataFrame  # analyzer.cost.gpu.GPU_SCHEMA rows
    missing: dict[str, str] = field(default_factory=dict)  # part -> sentence (gpu, prices, requests, usage, cost)
    notes: list[str] = field(default_factory=list)
    snapshot_dir: str | None = None  # where the usage series can be read, when there are any
    backtest: pl.DataFrame | None = None  # from a saved run that kept it
    team_label: str = "team"
    report: dict[str, Any] = field(default_factory=dict)  # a saved run's report.json, as read
    by_group: dict[str, pl.DataFrame] = field(default_factory=dict)  # saved run: cost by namespace / team
    daily_totals: pl.DataFrame | None = None  # saved run: per day allocated and idle USD (cluster)


def potential_saving(result: RecommendationSet) -> float:
    """What the changes that save money would save ($/month), as the report's headline counts it; the net
    figure (``monthly_saving_usd``) also subtracts raising memory that was too low."""
    return float(sum(max(0.0, r.monthly_saving_usd) for r in result.recommendations))


def snapshot_gaps(snapshot: Snapshot) -> dict[str, str]:
    """Sentences for the parts this snapshot lacks."""
    gaps: dict[str, str] = {}
    has_gpu_usage = snapshot.usage.filter(pl.col("resource").is_in(["gpu", "gpu_memory"])).height > 0
    if snapshot.gpus.height == 0 and not has_gpu_usage:
        gaps["gpu"] = NO_GPUS
    if snapshot.nodes.height == 0 or snapshot.nodes.get_column("instance_type").is_null().all() \
            and snapshot.nodes.get_column("hourly_price").is_null().all():
        gaps["prices"] = NO_PRICES
    c = snapshot.containers
    if c.height == 0 or (c.get_column("cpu_request").is_null().all() and c.get_column("memory_request").is_null().all()
                         and c.get_column("cpu_limit").is_null().all() and c.get_column("memory_limit").is_null().all()):
        gaps["requests"] = NO_REQUESTS
    if snapshot.usage.height == 0:
        gaps["usage"] = NO_USAGE
    return gaps


def with_memory_policy(recs: pl.DataFrame) -> pl.DataFrame:
    """Memory records: ``guaranteed`` when the proposed limit equals the request (never below the peak,
    KRR's convention), else ``burstable``; other records: ``n/a``. A record that names its policy keeps it."""
    derived = (
        pl.when(pl.col("resource") != "memory").then(pl.lit("n/a"))
        .when(pl.col("proposed_limit").is_not_null() & (pl.col("proposed_limit") == pl.col("proposed_request")))
        .then(pl.lit("guaranteed")).otherwise(pl.lit("burstable"))
    )
    if "memory_policy" in recs.columns:
        derived = pl.coalesce(pl.col("memory_policy"), derived)
    return recs.with_columns(derived.alias("memory_policy"))


def human(column: str) -> pl.Expr:
    """Base units as people read them (edge only): 250m / 1.5 cores, 512Mi / 2.5Gi, else the number."""
    v, res = pl.col(column), pl.col("resource")
    cpu = pl.when(v < 1).then((v * 1000).round(0).cast(pl.Int64).cast(pl.String) + "m").otherwise(
        v.round(2).cast(pl.String))
    mem = pl.when(v >= 2**30).then((v / 2**30).round(2).cast(pl.String) + "Gi").otherwise(
        (v / 2**20).round(0).cast(pl.Int64).cast(pl.String) + "Mi")
    return (pl.when(v.is_null()).then(pl.lit("unset")).when(res == "cpu").then(cpu).when(res == "memory").then(mem)
            .otherwise(v.round(3).cast(pl.String))).alias(f"{column}_h")


def flat_recommendations(result: RecommendationSet, teams: pl.DataFrame) -> pl.DataFrame:
    """Flat records with a stable row id (index into ``result.recommendations``), team and memory policy."""
    frame = recommendations_frame(result).with_row_index("rid")
    frame = frame.with_columns(human(c) for c in ("current_request", "proposed_request", "current_limit",
                                                   "proposed_limit"))
    frame = frame.join(teams, on=WORKLOAD, how="left").with_columns(pl.col("team").fill_null(NO_TEAM))
    return with_memory_policy(frame).sort("rid")


def _teams(cost_rollup: pl.DataFrame, label_col: str) -> pl.DataFrame:
    return cost_rollup.select(*WORKLOAD, pl.col(label_col).replace("__unlabeled__", NO_TEAM).alias("team"))


def compute_results(snapshot: Snapshot, *, origin: str, key: str, team_label: str = "team",
                    recommendations: RecommendationSet | None = None, snapshot_dir: str | None = None) -> Results:
    """Cost, recommendations and GPUs of one snapshot (recommendations given = a saved run's, not recomputed)."""
    m = snapshot.manifest
    gaps = snapshot_gaps(snapshot)
    notes = list(m.warnings)
    label_col = f"label:{team_label}"
    cost = analyze_cost(snapshot)
    notes += cost.warnings
    by_workload = rollup(cost, f"workload,{label_col}").filter(pl.col("namespace") != "__idle__")
    teams = _teams(by_workload, label_col).unique(subset=WORKLOAD)
    if recommendations is None:
        if "usage" in gaps:
            recommendations = RecommendationSet()
        else:
            recommendations = recommend(snapshot)
    notes += recommendations.notes
    recs = flat_recommendations(recommendations, teams)
    per_workload_recs = recs.group_by(WORKLOAD).agg(
        pl.col("monthly_saving_usd").sum().alias("saving_monthly"),
        pl.col("kind").unique().sort().str.join(", ").alias("recommendation"),
    )
    workloads = (
        by_workload.join(teams, on=WORKLOAD, how="left")
        .select(*WORKLOAD, "team", pl.col("total_cost_monthly").alias("cost_monthly"), "waste_monthly",
                "cpu_efficiency", "memory_efficiency", "gpu_efficiency", "total_efficiency",
                "cpu_requested", "cpu_used", "memory_requested", "memory_used")
        .join(per_workload_recs, on=WORKLOAD, how="left")
        .with_columns(pl.col("saving_monthly").fill_null(0.0), pl.col("recommendation").fill_null(""))
        .sort("cost_monthly", descending=True)
    )
    ident = cost.containers.select(pl.col("namespace", "pod", "container", "workload_kind", "workload")
                                   .cast(pl.String)).unique(
        subset=["namespace", "pod", "container"])
    daily = (
        cost.daily.with_columns(pl.col(c).cast(pl.String) for c in ("namespace", "pod", "container"))
        .join(ident, on=["namespace", "pod", "container"], how="inner")
        .group_by("day", *WORKLOAD).agg(pl.col("cost").sum())
        .join(teams, on=WORKLOAD, how="left").with_columns(pl.col("team").fill_null(NO_TEAM))
        .sort("day", *WORKLOAD)
    ) if cost.daily.height else pl.DataFrame(schema={"day": pl.Date, **dict.fromkeys(WORKLOAD, pl.String),
                                                     "cost": pl.Float64, "team": pl.String})
    s = cost.summary()
    saving_by_kind = recs.group_by("kind").agg(pl.col("monthly_saving_usd").sum()).sort("kind")
    headline = {
        "cost_monthly": s["total_cost_monthly"], "idle_monthly": s["idle_cost_monthly"],
        "idle_fraction": s["idle_fraction"], "waste_monthly": s["waste_monthly"],
        "efficiency": s["total_efficiency"], "saving_monthly": recommendations.monthly_saving_usd,
        "potential_saving_monthly": potential_saving(recommendations),
        "saving_by_kind": dict(zip(saving_by_kind["kind"].to_list(), saving_by_kind["monthly_saving_usd"].to_list(),
                                   strict=True)),
        "hours": cost.hours, "nodes": s["nodes"], "containers": s["containers"],
    }
    if "requests" not in gaps and not recs.height and "usage" not in gaps:
        notes.append("No recommendation: every workload is within the policy's bounds or was skipped.")
    return Results(
        origin=origin, cluster=m.cluster, window=f"{cost.window_start:%Y-%m-%d %H:%M} to {cost.window_end:%Y-%m-%d %H:%M} UTC",
        key=key, workloads=workloads, daily=daily, headline=headline, recommendations=recommendations, recs=recs,
        gpus=cost.gpus, missing=gaps, notes=list(dict.fromkeys(notes)), snapshot_dir=snapshot_dir, team_label=team_label,
    )


def _frame(rows: Any, schema: dict[str, Any]) -> pl.DataFrame:
    """A list of JSON objects -> a frame with (at least) ``schema``'s columns; anything else -> empty."""
    rows = [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []
    if not rows:
        return pl.DataFrame(schema=schema)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(pl.lit(None, dtype).alias(c) for c, dtype in schema.items() if c not in frame.columns)


def results_without_snapshot(recommendations: RecommendationSet, *, origin: str, key: str, report: dict[str, Any],
                             headline: dict[str, Any], team_label: str = "team") -> Results:
    """A saved run whose snapshot is not kept: its recommendations and what its report.json holds
    (headline, cost by namespace/team, daily totals, top waste, GPU fleet), read as written."""
    from analyzer.cost.gpu import GPU_SCHEMA

    cost = report.get("cost") if isinstance(report.get("cost"), dict) else {}
    head = report.get("headline") if isinstance(report.get("headline"), dict) else {}
    team_label = str(report.get("team_label") or team_label)
    teams = _frame(cost.get("by_team"), {"team": pl.String})
    recs = flat_recommendations(recommendations, pl.DataFrame(schema={**dict.fromkeys(WORKLOAD, pl.String),
                                                                      "team": pl.String}))
    per_workload = recs.group_by(WORKLOAD).agg(
        pl.col("monthly_saving_usd").sum().alias("saving_monthly"),
        pl.col("kind").unique().sort().str.join(", ").alias("recommendation"))
    waste = _frame(cost.get("top_waste"), {**dict.fromkeys(WORKLOAD, pl.String), "cost_monthly": pl.Float64,
                                           "waste_monthly": pl.Float64}).select(*WORKLOAD, "cost_monthly",
                                                                                 "waste_monthly")
    workloads = (
        per_workload.join(waste, on=WORKLOAD, how="full", coalesce=True)
        .with_columns(pl.lit(NO_TEAM).alias("team"), pl.col("saving_monthly").fill_null(0.0),
                      pl.col("recommendation").fill_null(""))
        .select(*WORKLOAD, "team", "cost_monthly", "waste_monthly", "saving_monthly", "recommendation")
        .sort("saving_monthly", descending=True)
    )
    saving_by_kind = recs.group_by("kind").agg(pl.col("monthly_saving_usd").sum()).sort("kind")
    h = {
        "cost_monthly": head.get("monthly_cost_usd", headline.get("cost_monthly")),
        "idle_monthly": head.get("idle_monthly_usd", headline.get("idle_monthly")),
        "idle_fraction": head.get("idle_fraction"), "waste_monthly": head.get("waste_monthly_usd"),
        "efficiency": cost.get("efficiency"), "saving_monthly": recommendations.monthly_saving_usd,
        "potential_saving_monthly": head.get("potential_saving_monthly_usd", potential_saving(recommendations)),
        "saving_by_kind": dict(zip(saving_by_kind["kind"].to_list(), saving_by_kind["monthly_saving_usd"].to_list(),
                                   strict=True)),
        "hours": (cost.get("window") or {}).get("hours") if isinstance(cost.get("window"), dict) else None,
    }
    window = cost.get("window") if isinstance(cost.get("window"), dict) else {}
    missing = {"series": "This saved run keeps no snapshot, so per-workload usage series, the GPU heatmap and "
                         "cost over time by namespace are not available (its totals are); start the dashboard on "
                         "the snapshot itself to see them."}
    if not cost:
        missing["cost"] = "This saved run's report.json holds no cost section (written by an older kubetune)."
    return Results(
        origin=origin, cluster=str(report.get("cluster") or (report.get("summary") or {}).get("cluster") or "?"),
        window=f"{window.get('start', '')} to {window.get('end', '')}" if window else "", key=key,
        workloads=workloads,
        daily=pl.DataFrame(schema={"day": pl.Date, **dict.fromkeys(WORKLOAD, pl.String), "cost": pl.Float64,
                                   "team": pl.String}),
        headline=h, recommendations=recommendations, recs=recs, gpus=pl.DataFrame(schema=GPU_SCHEMA),
        missing=missing, notes=list(recommendations.notes) + [str(n) for n in report.get("notes") or []],
        team_label=team_label, report=report,
        by_group={"namespace": _frame(cost.get("by_namespace"), {"namespace": pl.String, "total_cost": pl.Float64}),
                  "team": teams.with_columns(pl.lit(None, pl.Float64).alias("total_cost"))
                  if "total_cost" not in teams.columns else teams},
        daily_totals=_frame(cost.get("daily"), {"day": pl.String, "allocated_usd": pl.Float64, "idle_usd": pl.Float64}),
    )
