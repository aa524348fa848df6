"""One call for every recommender, and the tabular view the CLI, report and dashboard print."""

from __future__ import annotations

from collections import Counter

import polars as pl

from analyzer.snapshot import Snapshot
from recommenders.policy import RightsizePolicy
from recommenders.rates import workload_rates
from recommenders.record import COLUMNS, RecommendationSet
from recommenders.rightsizing import recommend_rightsizing

KINDS = ("rightsize", "gpu", "spot")

ROW_SCHEMA = {
    "namespace": pl.String, "workload_kind": pl.String, "workload": pl.String, "container": pl.String,
    "container_type": pl.String, "kind": pl.String, "resource": pl.String, "current_request": pl.Float64,
    "proposed_request": pl.Float64, "current_limit": pl.Float64, "proposed_limit": pl.Float64, "replicas": pl.Int64,
    "monthly_saving_usd": pl.Float64, "risk": pl.Float64, "confidence": pl.Float64, "confidence_label": pl.String,
    "reason": pl.String,
}


def recommend(snapshot: Snapshot, policy: RightsizePolicy | None = None, *, kinds=KINDS, pricing_file=None,
              spot_placement: str = "preferred", gpu_settings=None, progress=None) -> RecommendationSet:
    """Run the chosen recommenders (rightsize, gpu, spot) over one snapshot with shared rates.

    ``gpu_settings`` (``GpuSettings``) defaults to the GPU defaults with the policy's
    ``min_history_hours`` (the shared knob). ``progress(kind, done, total)`` hears as each
    recommender starts and when all are done."""
    chosen = [k for k in KINDS if k in kinds]
    tell = progress or (lambda kind, done, total: None)
    unknown = set(kinds) - set(KINDS)
    if unknown:
        from analyzer.errors import InputError

        raise InputError(f"unknown recommendation kind(s) {', '.join(sorted(unknown))}; use {', '.join(KINDS)}.")
    rates = workload_rates(snapshot, pricing_file=pricing_file)
    out = RecommendationSet()
    if rates.basis != "node prices":
        out.notes.append(f"Savings use {rates.basis}.")
    if "rightsize" in kinds:
        tell("rightsize", chosen.index("rightsize"), len(chosen))
        out.extend(recommend_rightsizing(snapshot, policy, rates))
    if "gpu" in kinds:
        from recommenders.gpu import recommend_gpu
        from recommenders.gpu_settings import GpuSettings

        tell("gpu", chosen.index("gpu"), len(chosen))
        if gpu_settings is None:
            gpu_settings = GpuSettings(min_history_hours=(policy or RightsizePolicy()).min_history_hours)
        out.extend(recommend_gpu(snapshot, rates, gpu_settings))
    if "spot" in kinds:
        from recommenders.spot import recommend_spot

        tell("spot", chosen.index("spot"), len(chosen))
        out.extend(recommend_spot(snapshot, rates, placement=spot_placement))
    tell("done", len(chosen), len(chosen))
    out.recommendations.sort(key=lambda r: -r.monthly_saving_usd)
    out.container_order = container_order(snapshot)
    return out


def container_order(snapshot: Snapshot) -> dict[tuple[str, str, str], dict[str, list[str]]]:
    """Per workload, its containers and init containers in pod-spec order, taken from the newest pod's
    rows (collectors write a pod's containers in spec order: init containers first, then the rest)."""
    c = snapshot.containers.with_row_index("_row").with_columns(
        *[pl.col(k).cast(pl.String) for k in ("namespace", "workload_kind", "workload", "pod", "container")],
        pl.col("container_type").cast(pl.String))
    if c.is_empty():
        return {}
    newest = c.sort("started_at", nulls_last=False).group_by("namespace", "workload_kind", "workload").agg(
        pl.col("pod").last())
    rows = c.join(newest, on=["namespace", "workload_kind", "workload", "pod"]).sort("_row")
    out: dict[tuple[str, str, str], dict[str, list[str]]] = {}
    for r in rows.iter_rows(named=True):
        lists = out.setdefault((r["namespace"], r["workload_kind"], r["workload"]), {"containers": [], "initContainers": []})
        key = "containers" if r["container_type"] == "app" else "initContainers"
        if r["container"] not in lists[key]:
            lists[key].append(r["container"])
    return out


def recommendations_frame(result: RecommendationSet, *, include_skipped: bool = False) -> pl.DataFrame:
    """The flat records (record.COLUMNS) as one frame, biggest saving first; skips appended if asked."""
    rows = [r.row() for r in result.recommendations]
    if include_skipped:
        rows += [{**{c: None for c in COLUMNS}, **s.row()} for s in result.skipped]
    if not rows:
        return pl.DataFrame(schema=ROW_SCHEMA)
    return pl.DataFrame(rows, schema=ROW_SCHEMA)


def skip_summary(result: RecommendationSet, top: int = 5) -> list[str]:
    """The most common reasons for skipping, grouped by their first words, for a footer."""
    counts = Counter(s.reason.split(";")[0].split(":")[0] for s in result.skipped)
    return [f"{n} x {reason}" for reason, n in counts.most_common(top)]
