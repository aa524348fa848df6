"""The statistics behind right-sizing: recency-weighted quantile grids, the out-of-sample
calibration of each CPU level's risk and the choice of level under the risk target, and the
memory peaks and margins. Split from ``recommenders.rightsizing`` (which turns them into
proposals and records) so each module keeps one job; the method is described there.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from recommenders.policy import RightsizePolicy

WORKLOAD = ["namespace", "workload_kind", "workload"]
KEY = [*WORKLOAD, "container"]
LEVELS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.875, 0.9, 0.925, 0.95, 0.96, 0.97, 0.975, 0.98, 0.985, 0.99, 0.995,
          0.998, 0.999, 1.0)
HOLDOUT = 0.3
HORIZON_DAYS = 7.0
CHANGE_KINDS = ("level_shift", "variance_shift")



def _str_keys(df: pl.DataFrame, cols=KEY) -> pl.DataFrame:
    return df.with_columns(*[pl.col(c).cast(pl.String) for c in cols if c in df.columns])


def _qcol(q: float) -> str:
    return f"q{q:.4f}"


# -- inputs ---------------------------------------------------------------------------------------

def _windowed(usage: pl.DataFrame | pl.LazyFrame, changes: pl.DataFrame) -> pl.LazyFrame:
    """Usage (lazily) with its series' change point; ``use`` marks the samples after it.

    Without change points (drift is opt-in) no join is made: ``use`` is a constant, and nothing is
    copied until each statistic's query runs (a join would materialise the whole usage frame again).
    """
    lazy = usage.lazy()
    if changes.is_empty():
        return lazy.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias("since"),
                                 pl.lit(False).alias("_recent_change"), pl.lit(True).alias("use"))
    schema = lazy.collect_schema()
    ch = changes.select(*KEY, "resource", "since", "recent_change").with_columns(
        *[pl.col(k).cast(schema[k]) for k in (*KEY, "resource")])
    u = lazy.join(ch.lazy(), on=[*KEY, "resource"], how="left")
    return u.with_columns(
        pl.col("recent_change").fill_null(False).alias("_recent_change"),
        (pl.col("since").is_null() | (pl.col("timestamp") >= pl.col("since"))).alias("use"),
    )



# -- CPU ------------------------------------------------------------------------------------------

def _weighted_grid(df: pl.DataFrame, end: pl.Expr, half_life_h: float | None, prefix: str) -> pl.DataFrame:
    """Per container: recency-weighted quantiles of the samples at every level (weight halves every
    ``half_life_h`` hours before ``end``): the value where the cumulative weight first reaches the
    level. Only for ``half_life_hours``; unweighted grids come from sorted lists (``_sorted_level``)."""
    age_h = (end - pl.col("timestamp")).dt.total_seconds() / 3600.0
    w = (pl.lit(0.5) ** (age_h / half_life_h)) if half_life_h else pl.lit(1.0)
    # sorted and windowed by the keys' physical codes (u32 for categoricals): the same groups, and
    # several times faster than comparing strings over millions of rows
    phys = [f"_k{i}" for i in range(len(KEY))]
    ranked = df.with_columns(w.alias("_w"), *[pl.col(k).to_physical().alias(p) for k, p in zip(KEY, phys)]).sort(
        [*phys, "value"]).with_columns((pl.col("_w").cum_sum().over(phys) / pl.col("_w").sum().over(phys)).alias("_cw"))
    return ranked.group_by(KEY).agg(
        *[(pl.col("value").filter(pl.col("_cw") >= q - 1e-12).first() if q < 1 else pl.col("value").max())
          .alias(prefix + _qcol(q)) for q in LEVELS])


def _sorted_level(values: pl.Expr, q: float) -> pl.Expr:
    """The level-q value of each ascending list: the first value whose share of the samples (i/n)
    reaches q, the maximum at q = 1, null for an empty list (``_weighted_grid`` with equal weights).
    n x q is a multiple of 1/1000 for every level, so the 1e-6 only absorbs float rounding."""
    if q >= 1:
        return values.list.max()
    n = values.list.len().cast(pl.Float64)
    return values.list.get(((n * q - 1e-6).ceil().cast(pl.Int64) - 1).clip(lower_bound=0), null_on_oob=True)


def exceedances(held: pl.Series, thresholds: np.ndarray) -> np.ndarray:
    """(n, L): how many values of container i's ascending list ``held[i]`` lie strictly above each of
    its thresholds ``thresholds[i]`` (NaN: 0). All containers in one merge: held values and thresholds
    sorted together by (container, value, held first), so the held values at or below a threshold
    are the ones before it in its container's run; no per-container loop, no samples x levels join."""
    n, n_levels = thresholds.shape
    lens = held.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = held.explode().drop_nulls().to_numpy().astype(np.float64)
    t = thresholds.ravel()
    seg = np.concatenate([np.repeat(np.arange(n), lens), np.repeat(np.arange(n), n_levels)])
    kind = np.concatenate([np.zeros(flat.size, np.int8), np.ones(t.size, np.int8)])
    order = np.lexsort((kind, np.concatenate([flat, t]), seg))
    held_upto = np.cumsum(kind[order] == 0)
    position = np.empty(order.size, np.int64)
    position[order] = np.arange(order.size)
    tseg = seg[flat.size:]
    at_or_below = held_upto[position[flat.size:]] - (np.cumsum(lens) - lens)[tseg]
    out = (lens[tseg] - at_or_below).reshape(n, n_levels)
    out[np.isnan(thresholds)] = 0
    return out


def _cpu_info(ts: pl.Expr) -> list[pl.Expr]:
    return [pl.len().alias("samples"), ts.n_unique().alias("stamps"), ts.min().alias("cpu_start"),
            ts.max().alias("cpu_end"), pl.col("since").first().alias("cpu_since"),
            pl.col("_recent_change").any().alias("cpu_recent_change"),
            *[pl.col("value").quantile(q, "higher").alias(f"raw{_qcol(q)}") for q in (0.5, 0.95, 0.99)]]


def _cpu_stats(u: pl.LazyFrame, step_h: float, half_life_h: float | None) -> pl.DataFrame:
    """Per container: the (recency-weighted) quantile grid of pooled per-pod CPU samples after the
    change point, the same grid fitted on the first 70% only and its exceedances on the last 30%,
    hours, pods and quality.

    Unweighted (the default), one group-by turns the samples into three sorted lists per container
    (all, first 70%, last 30%; ~1 float per sample in all) and every level is read off them; the
    samples are never sorted globally or joined with the grid, which is what bounds the memory."""
    cpu = u.filter((pl.col("resource") == "cpu") & pl.col("use")).select(
        *KEY, "timestamp", "value", "since", "_recent_change")
    if half_life_h:
        return _cpu_stats_weighted(cpu.collect(), step_h, half_life_h)
    ts = pl.col("timestamp")
    cut = ts.min() + (ts.max() - ts.min()) * (1 - HOLDOUT)
    lists = cpu.group_by(KEY).agg(
        *_cpu_info(ts),
        pl.col("value").sort().alias("_all"),
        pl.col("value").filter(ts < cut).sort().alias("_fit_values"),
        pl.col("value").filter(ts >= cut).sort().alias("_held_values"),
    ).collect()
    stats = lists.with_columns(
        *[_sorted_level(pl.col("_all"), q).alias(_qcol(q)) for q in LEVELS],
        *[_sorted_level(pl.col("_fit_values"), q).alias("h" + _qcol(q)) for q in LEVELS],
        pl.col("_held_values").list.len().alias("held_n"),
    )
    fitted = stats.select(["h" + _qcol(q) for q in LEVELS]).to_numpy().astype(float) if stats.height else \
        np.zeros((0, len(LEVELS)))
    x = exceedances(stats["_held_values"], fitted)
    stats = stats.drop("_all", "_fit_values", "_held_values").with_columns(
        *[pl.Series("x" + _qcol(q), x[:, i]) for i, q in enumerate(LEVELS)])
    return _finish_cpu(stats, step_h)


def _cpu_stats_weighted(cpu: pl.DataFrame, step_h: float, half_life_h: float) -> pl.DataFrame:
    """``_cpu_stats`` with recency weights: weighted grids over globally sorted samples, and the
    holdout's exceedances by a join of its samples with the fitted grid (opt-in, so its memory is
    accepted)."""
    t0 = pl.col("timestamp").min().over(KEY)
    t1 = pl.col("timestamp").max().over(KEY)
    cpu = cpu.with_columns((t0 + (t1 - t0) * (1 - HOLDOUT)).alias("_cut"), t1.alias("_end"))
    cpu = cpu.with_columns((pl.col("timestamp") < pl.col("_cut")).alias("_fit"))
    info = cpu.group_by(KEY).agg(*_cpu_info(pl.col("timestamp")))
    grid = _weighted_grid(cpu, pl.col("_end"), half_life_h, "").join(
        _weighted_grid(cpu.filter(pl.col("_fit")), pl.col("_cut"), half_life_h, "h"), on=KEY, how="left")
    # out-of-sample exceedance of each level fitted on the first 70%, counted on the last 30%
    held = cpu.filter(~pl.col("_fit")).join(grid.select(*KEY, *["h" + _qcol(q) for q in LEVELS]), on=KEY)
    exceed = held.group_by(KEY).agg(
        pl.len().alias("held_n"),
        *[(pl.col("value") > pl.col("h" + _qcol(q))).sum().alias("x" + _qcol(q)) for q in LEVELS],
    )
    return _finish_cpu(info.join(grid, on=KEY).join(exceed, on=KEY, how="left"), step_h)


def _finish_cpu(stats: pl.DataFrame, step_h: float) -> pl.DataFrame:
    span_h = ((pl.col("cpu_end") - pl.col("cpu_start")).dt.total_seconds() / 3600.0 + step_h)
    return _str_keys(stats).with_columns(
        span_h.alias("cpu_hours"),
        (pl.col("samples") / pl.col("stamps")).alias("avg_pods"),
        (pl.col("stamps") * step_h / span_h).clip(upper_bound=1.0).alias("coverage"),
    )


def calibrated_risk(stats: pl.DataFrame, own_weight: float = 0.5) -> np.ndarray:
    """Out-of-sample exceedance of each quantile level per container, (n, len(LEVELS)).

    Each container's own holdout exceedance is blended with the pooled one (``own_weight`` of its
    own): a container whose recent demand outgrew its earlier quantiles is riskier at every level
    than the pool says, a steady one safer; the pool keeps short or noisy holdouts honest."""
    held = stats["held_n"].fill_null(0).to_numpy().astype(float)
    x = np.stack([stats["x" + _qcol(q)].fill_null(0).to_numpy().astype(float) for q in LEVELS], axis=1) \
        if stats.height else np.zeros((0, len(LEVELS)))
    total = held.sum()
    if not total:
        return np.tile(np.array([1 - q for q in LEVELS]) * 1.5, (stats.height, 1))
    pooled = x.sum(axis=0) / total
    own = np.where(held[:, None] > 0, x / np.maximum(held[:, None], 1), pooled[None, :])
    raw = own_weight * own + (1 - own_weight) * pooled[None, :]
    # monotone (a higher level is never riskier) and never better than half a sample
    floor = 0.5 / np.maximum(held[:, None] + total * (1 - own_weight), 1)
    return np.maximum(np.minimum.accumulate(raw, axis=1), floor)


def choose_levels(grid: np.ndarray, weights: np.ndarray, risk: np.ndarray, policy: RightsizePolicy) -> np.ndarray:
    """Index into LEVELS per container. ``grid`` (n, L): the value at each level; ``risk`` (n, L):
    its calibrated risk; ``weights``: pods.

    Workload mode: lowest level within ``risk``. Cluster mode: minimise value + lambda x risk per
    container (so the accepted pod-hours above request go where they save the most), with lambda
    bisected until the pod-weighted risk meets the budget; no container beyond ``max_risk``.
    """
    n, L = grid.shape
    rows = np.arange(n)
    within = risk <= policy.risk
    first_ok = np.where(within.any(axis=1), np.argmax(within, axis=1), L - 1)
    if policy.risk_mode == "workload" or n == 0:
        return first_ok
    penalty = np.where(risk <= policy.max_risk, 0.0, np.inf)
    penalty[:, -1] = 0.0  # the top level is always allowed
    w = weights / max(weights.sum(), 1e-12)

    def pick(lam: float) -> np.ndarray:  # per container: cores + lam x risk (lam: cores per unit of risk)
        return np.argmin(grid + lam * risk + penalty, axis=1)

    def spent(idx: np.ndarray) -> float:
        return float((w * risk[rows, idx]).sum())

    lo, hi = 0.0, max(float(grid.max()) if grid.size else 1.0, 1e-9) * 1e4
    best = pick(hi)
    if spent(best) > policy.risk:  # budget unreachable: the safest allowed level
        return best
    for _ in range(60):
        lam = (lo + hi) / 2
        idx = pick(lam)
        if spent(idx) <= policy.risk:
            best, hi = idx, lam
        else:
            lo = lam
    return best


# -- memory ---------------------------------------------------------------------------------------

def _memory_per_container(u: pl.LazyFrame) -> pl.DataFrame:
    """The per-container part of the memory statistics (peaks, daily peaks and their fit/holdout split):
    it can run on a part of the containers at a time (``workload_parts``)."""
    mem = u.filter(pl.col("resource") == "memory").select(*KEY, "timestamp", "value", "use")
    per_t = mem.group_by([*KEY, "timestamp"]).agg(pl.col("value").max(), pl.col("use").first()).collect()
    daily = per_t.filter(pl.col("use")).group_by([*KEY, pl.col("timestamp").dt.truncate("1d").alias("day")]).agg(
        pl.col("value").max().alias("peak"), pl.len().alias("n"))
    # only days with most of their samples count for variation (a half day has a lower peak)
    full = daily.filter(pl.col("n") >= pl.col("n").max().over(KEY) * 0.5).with_columns(
        (pl.col("day").rank("dense").over(KEY) <= (pl.len().over(KEY) * (1 - HOLDOUT)).ceil()).alias("_fit"))
    var = full.group_by(KEY).agg(
        pl.col("peak").mean().alias("daily_mean"), pl.col("peak").std().alias("daily_sd"), pl.len().alias("days"),
        pl.col("peak").median().alias("daily_median"),
        pl.col("peak").filter(pl.col("_fit")).max().alias("_fit_peak"),
        pl.col("peak").filter(pl.col("_fit")).median().alias("_fit_median"),
        pl.col("peak").filter(~pl.col("_fit")).max().alias("_held_max"),
    ).with_columns(
        ((pl.col("_fit_peak") - pl.col("_fit_median")) / pl.col("_fit_peak").clip(lower_bound=1.0))
        .clip(lower_bound=0.01).alias("_fit_spread"),
        ((pl.col("daily_mean").is_not_null()) & (pl.col("days") >= 4)).alias("_calibrates"),
    )
    peak = per_t.group_by(KEY).agg(
        pl.col("value").max().alias("mem_peak"),
        pl.col("value").filter(pl.col("use")).max().alias("mem_peak_post"),
        pl.col("value").filter(pl.col("use")).quantile(0.5).alias("mem_p50"),
        pl.col("value").filter(pl.col("use")).quantile(0.95).alias("mem_p95"),
        pl.len().alias("mem_stamps"),
        pl.col("timestamp").min().alias("mem_start"),
        pl.col("timestamp").max().alias("mem_end"),
    )
    return _str_keys(peak.join(var, on=KEY, how="left"))


def _memory_calibrate(stats: pl.DataFrame, memory_risk: float, step_h: float, margin: float,
                      headroom: float) -> pl.DataFrame:
    """Per container (from every container's ``_memory_per_container`` row): whole-window peak, daily
    peaks after the change point, and a calibrated margin.

    The margin answers "by how much can next week's peak beat the peak seen so far?". Its scale per
    container is the spread of its daily peaks, (peak - median daily peak) / peak: a flat container
    needs almost none, a swinging one more. The factor is calibrated out of sample, pooled over all
    containers: fit on the first 70% of each container's days, see by how much the later days' max
    beat that fit's peak, in units of the fit's spread, and take the (1 - memory_risk) quantile.
    """
    var = stats.filter(pl.col("_calibrates").fill_null(False) & pl.col("_held_max").is_not_null())
    cal = var.select(((pl.col("_held_max") / pl.col("_fit_peak").clip(lower_bound=1.0) - 1).clip(lower_bound=0)
                      / pl.col("_fit_spread")).alias("r"))
    factor = float(cal["r"].quantile(1 - memory_risk, "higher")) if cal.height >= 5 else 1.0
    # expected OOM risk of the flat limit: the share of containers whose later days beat the earlier
    # days' peak x (1 + margin) (at least + headroom), out of sample
    beat = var.select(
        (pl.col("_held_max") > pl.max_horizontal(pl.col("_fit_peak") * (1 + margin), pl.col("_fit_peak") + headroom))
        .mean())
    oom_risk = float(beat.item()) if beat.height and beat.item() is not None and cal.height >= 5 else None
    spread = ((pl.col("mem_peak") - pl.col("daily_median")) / pl.col("mem_peak").clip(lower_bound=1.0)).clip(0.0, 1.0)
    return stats.with_columns(
        (pl.lit(factor) * spread).alias("_cv_margin"),
        pl.lit(factor).alias("_margin_factor"),
        pl.lit(oom_risk, pl.Float64).alias("memory_oom_risk"),
        ((pl.col("mem_end") - pl.col("mem_start")).dt.total_seconds() / 3600.0 + step_h).alias("mem_hours"),
    )


