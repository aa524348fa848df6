"""Memory policies of right-sizing: the burstable request's calibrated quantile and the node check.

``guaranteed`` (request = limit) needs nothing here. ``burstable`` sets the request at the lowest
level of a quantile grid of the container's memory use whose out-of-sample memory above request
is within ``memory_overcommit`` (``memory_request_grid``, ``overcommit_by_level``,
``burstable_requests``), falls back to guaranteed with the reason where a quantile cannot be
trusted, and is then checked against node memory pressure (``node_check``, built on
``recommenders.nodecheck``). Called by ``recommenders.rightsizing.sizing_table`` and
``recommend_rightsizing``; the columns it reads and writes are theirs.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from analyzer.snapshot import Snapshot
from analyzer.units import GIB
from recommenders.policy import RightsizePolicy
from recommenders.record import RecommendationSet
from recommenders.rounding import round_memory

KEY = ["namespace", "workload_kind", "workload", "container"]


def _qcol(q: float) -> str:
    return f"q{q:.4f}"


def _str_keys(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(*[pl.col(c).cast(pl.String) for c in KEY if c in df.columns])


MEM_LEVELS = (0.9, 0.95, 0.975, 0.99, 0.995, 0.998, 0.999, 1.0)
BURSTABLE_MIN_HOURS = 72.0


def memory_request_grid(u: pl.DataFrame | pl.LazyFrame, holdout: float = 0.3) -> pl.DataFrame:
    """Per container: quantiles of per-pod memory samples (the whole window: memory that was used
    once is used again, a change point does not lower it) at MEM_LEVELS, and
    how much memory use would have been above each level out of sample (fit on the first 70% of the
    container's history, summed (use - level)+ and use on the last 30%): the burstable request's
    calibration."""
    mem = u.lazy().filter(pl.col("resource") == "memory").select(*KEY, "timestamp", "value").collect()
    t0, t1 = pl.col("timestamp").min().over(KEY), pl.col("timestamp").max().over(KEY)
    mem = mem.with_columns((pl.col("timestamp") < t0 + (t1 - t0) * (1 - holdout)).alias("_fit"))
    grid = mem.group_by(KEY).agg(
        *[pl.col("value").quantile(q, "higher").alias("m" + _qcol(q)) for q in MEM_LEVELS],
        pl.col("value").min().alias("mem_min"))
    fit = mem.filter(pl.col("_fit")).group_by(KEY).agg(
        *[pl.col("value").quantile(q, "higher").alias("h" + _qcol(q)) for q in MEM_LEVELS])
    held = mem.filter(~pl.col("_fit")).join(fit, on=KEY).group_by(KEY).agg(
        pl.col("value").sum().alias("mheld_use"),
        *[(pl.col("value") - pl.col("h" + _qcol(q))).clip(lower_bound=0).sum().alias("mx" + _qcol(q))
          for q in MEM_LEVELS])
    return _str_keys(grid.join(held, on=KEY, how="left"))


def overcommit_by_level(grid: pl.DataFrame, own_weight: float) -> np.ndarray:
    """(n, len(MEM_LEVELS)) calibrated memory above request / memory use at each level: each
    container's own out-of-sample ratio blended with the pooled one (``own_weight`` of its own),
    never rising with the level."""
    use = grid["mheld_use"].fill_null(0).to_numpy().astype(float)
    x = np.stack([grid["mx" + _qcol(q)].fill_null(0).to_numpy().astype(float) for q in MEM_LEVELS], axis=1) \
        if grid.height else np.zeros((0, len(MEM_LEVELS)))
    if not use.sum():
        return np.tile(np.array([1 - q for q in MEM_LEVELS]), (grid.height, 1))
    pooled = x.sum(axis=0) / use.sum()
    own = np.where(use[:, None] > 0, x / np.maximum(use[:, None], 1.0), pooled[None, :])
    return np.minimum.accumulate(own_weight * own + (1 - own_weight) * pooled[None, :], axis=1)


def burstable_requests(table: pl.DataFrame, grid: pl.DataFrame | None, policy: RightsizePolicy) -> pl.DataFrame:
    """``proposed_memory_request``: the guaranteed value, or under the burstable policy the lowest
    quantile level whose calibrated memory above request is within ``memory_overcommit`` (never
    above the guaranteed value), with ``memory_fallback`` saying why a container stays guaranteed."""
    if grid is None or policy.memory_policy != "burstable":  # guaranteed: no quantile grid needed
        return table.with_columns(
            pl.lit(None, pl.Float64).alias("memory_level"), pl.lit(None, pl.Float64).alias("memory_overcommit_risk"),
            pl.lit(None, pl.String).alias("memory_fallback"), pl.col("_mem_guaranteed").alias("proposed_memory_request"),
            pl.lit(False).alias("memory_burstable"))
    table = table.join(grid, on=KEY, how="left")
    n = table.height
    over = overcommit_by_level(table, policy.own_risk_weight) if n else np.zeros((0, len(MEM_LEVELS)))
    within = over <= policy.memory_overcommit
    idx = np.where(within.any(axis=1), np.argmax(within, axis=1), len(MEM_LEVELS) - 1) if n else np.zeros(0, int)
    values = table.select(["m" + _qcol(q) for q in MEM_LEVELS]).to_numpy().astype(float) if n else \
        np.zeros((0, len(MEM_LEVELS)))
    rows = np.arange(n)
    table = table.with_columns(
        pl.Series("memory_level", np.array(MEM_LEVELS)[idx] if n else np.zeros(0)),
        pl.Series("memory_overcommit_risk", over[rows, idx] if n else np.zeros(0)),
        pl.Series("_mem_q", values[rows, idx] if n else np.zeros(0)),
    )
    hours = pl.col("mem_hours").fill_null(0)
    fallback = (pl.when(pl.lit(policy.memory_policy != "burstable")).then(None)
                .when(pl.col("ooms") > 0).then(pl.lit("OOM-killed in the window"))
                .when(pl.col("mem_peak").fill_null(0) <= 0).then(pl.lit("its memory use is all zero"))
                .when(hours < max(BURSTABLE_MIN_HOURS, policy.min_history_hours)).then(
                    pl.format("only {} h of memory history (a calibrated quantile needs {} h)", hours.round(1),
                              pl.lit(max(BURSTABLE_MIN_HOURS, policy.min_history_hours))))
                .when((pl.col("mem_peak") - pl.col("mem_min")) <= 0.01 * pl.col("mem_peak"))
                .then(pl.lit("its memory use is constant"))
                .when(pl.col("_mem_q").is_null() | pl.col("mheld_use").is_null())
                .then(pl.lit("no out-of-sample history to calibrate a quantile on")))
    table = table.with_columns(fallback.alias("memory_fallback"))
    burst = pl.lit(policy.memory_policy == "burstable") & pl.col("memory_fallback").is_null()
    request = round_memory(pl.max_horizontal(pl.col("_mem_q"), pl.lit(float(policy.memory_floor))))
    return table.with_columns(
        pl.when(burst).then(pl.min_horizontal(request, pl.col("_mem_guaranteed")))
        .otherwise(pl.col("_mem_guaranteed")).alias("proposed_memory_request"),
        burst.alias("memory_burstable"),
    )


def node_check(snapshot: Snapshot, table: pl.DataFrame, policy: RightsizePolicy, out: RecommendationSet) -> pl.DataFrame:
    """Burstable only: pack the new requests, replay the history, raise pods on nodes over
    allocatable back to guaranteed (``recommenders.nodecheck``); the cluster note says what it found."""
    if policy.memory_policy != "burstable":
        return table.with_columns(pl.lit(False).alias("node_raised"), pl.lit(None, pl.String).alias("_node_note"))
    from recommenders.nodecheck import node_size, run_node_check

    mem, cpu, why = node_size(snapshot, float(policy.node_memory), policy.node_cpu)
    table, check = run_node_check(snapshot, table, mem, cpu, policy.node_pressure_risk)
    if check is None:
        return table.with_columns(pl.lit(None, pl.String).alias("_node_note"))
    if why:
        out.notes.append(why[0].upper() + why[1:] + ".")
    s = check.summary()
    note = (f"node check: the new requests pack onto {check.nodes_after} node(s) of {mem / GIB:.1f} GiB / {cpu:g} cores "
            f"(today's requests: {check.nodes_today}); replaying the history, {check.pressure_first:.2%} of node-time "
            f"had memory use over allocatable at first, {check.pressure_after:.2%} after raising "
            f"{s['pods_raised']} pod(s) to guaranteed (limit {policy.node_pressure_risk:.2%})"
            + (f"; {check.oversized} pod(s) need more memory than one node and were sized guaranteed, not packed"
               if check.oversized else ""))
    out.notes.append(note[0].upper() + note[1:] + ".")
    out.cluster_notes["node_check"] = {**s, "node_pressure_risk": policy.node_pressure_risk,
                                       "node_size_from": "--node-size" if why else "snapshot nodes"}
    return table.with_columns(pl.lit(note).alias("_node_note"))


__all__ = ["BURSTABLE_MIN_HOURS", "MEM_LEVELS", "burstable_requests", "memory_request_grid", "node_check",
           "overcommit_by_level"]
