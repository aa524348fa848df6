"""One call for every registered recommender (``recommend``), and the tabular view the CLI, report and
dashboard print."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import Any

import polars as pl

from analyzer.cost import PriceBook
from analyzer.snapshot import Snapshot
from recommenders.contract import Context, registered
from recommenders.record import COLUMNS, RecommendationSet

KINDS = ("rightsize", "gpu", "spot")  # the built-in recommenders; recommenders.contract.REGISTRY has all

ROW_SCHEMA = {
    "namespace": pl.String, "workload_kind": pl.String, "workload": pl.String, "container": pl.String,
    "container_type": pl.String, "kind": pl.String, "resource": pl.String, "current_request": pl.Float64,
    "proposed_request": pl.Float64, "current_limit": pl.Float64, "proposed_limit": pl.Float64, "replicas": pl.Int64,
    "monthly_saving_usd": pl.Float64, "risk": pl.Float64, "confidence": pl.Float64, "confidence_label": pl.String,
    "reason": pl.String,
}


def recommend(snapshot: Snapshot, settings: Mapping[str, Any] | Any = None, *, kinds=None,
              pricing: PriceBook | None = None, pricing_file=None, spot_placement: str | None = None,
              gpu_settings: Any = None, ctx: Context | None = None, progress=None) -> RecommendationSet:
    """Run the registered recommenders (all, or ``kinds``) over one snapshot with one shared context.

    ``settings`` maps a recommender's name to its Settings instance (missing: its defaults); a
    bare ``RightsizePolicy`` is accepted as the right-sizer's, ``gpu_settings`` as the GPU
    recommender's and ``spot_placement`` as the spot recommender's placement (the older call forms).
    A knob several recommenders share (same field name, e.g. ``min_history_hours``) given in one's
    settings is used by the others whose settings were not given. The context carries the user's
    price book (``pricing`` or ``pricing_file``, else the bundled one) to every recommender, spot included.
    ``progress(kind, done, total)`` hears as each recommender starts and when all are done.
    """
    from recommenders.policy import RightsizePolicy

    chosen = registered(tuple(kinds) if kinds is not None else None)
    given = dict(settings) if isinstance(settings, Mapping) else {}
    if isinstance(settings, RightsizePolicy):
        given["rightsize"] = settings
    if spot_placement is not None:
        from recommenders.spot_settings import SpotSettings

        given["spot"] = SpotSettings(placement=spot_placement)
    if gpu_settings is not None:
        given["gpu"] = gpu_settings
    given = _share_knobs(chosen, given)
    ctx = ctx or Context.build(snapshot, pricing=pricing, pricing_file=pricing_file)
    out = RecommendationSet()
    if ctx.rates.basis != "node prices":
        out.notes.append(f"Savings use {ctx.rates.basis}.")
    tell = progress or (lambda kind, done, total: None)
    for i, cls in enumerate(chosen):
        tell(cls.name, i, len(chosen))
        out.extend(cls(given.get(cls.name)).run(snapshot, ctx))
    tell("done", len(chosen), len(chosen))
    # biggest saving first; ties in a fixed order (group-by orders vary run to run, diffs should not)
    out.recommendations.sort(key=lambda r: (-r.monthly_saving_usd, r.target.namespace, r.target.workload_kind,
                                            r.target.workload, r.target.container, r.resource, r.kind))
    out.skipped.sort(key=lambda s: (s.target.namespace, s.target.workload_kind, s.target.workload, s.target.container,
                                    s.kind, s.resource))
    out.container_order = container_order(snapshot)
    return out


def _share_knobs(chosen, given: dict[str, Any]) -> dict[str, Any]:
    """Defaults for the recommenders not given settings, with the shared knobs the given ones set."""
    shared = {f.name: getattr(s, f.name) for s in given.values() if is_dataclass(s) for f in fields(s)}
    out = dict(given)
    for cls in chosen:
        if cls.name not in out:
            names = {f.name for f in fields(cls.Settings)} & shared.keys()
            out[cls.name] = cls.Settings(**{n: shared[n] for n in names})
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
