"""Calibrated framebuffer margins and busy quantiles per GPU container, out of sample.

The way the CPU right-sizer calibrates (``recommenders.rightsizing``): inside the history the
recommender is given, each container's samples are split in time, the first 70% is the *fit*
part, the last 30% the *held* part, and what the fit part would have proposed is checked against
what the held part did. Nothing outside the history is looked at.

* **Framebuffer** (a CUDA out-of-memory kills the server): per container the growth of the held
  peak over the fit peak, ``held_peak / fit_peak - 1``. Pooled over all containers, the margin is
  the smallest one that fewer than ``fb_risk`` of them outgrew (the ``1 - fb_risk`` quantile of the
  growths), never below ``min_fb_margin``; a container that outgrew the pool's margin in its own
  history keeps its own growth as its margin; one that grew beyond ``max_fb_margin`` is erratic.
* **Framebuffer shared by time-slicing**: nothing limits one pod's memory; an OOM happens when the
  pods on a GPU *together* outgrow it, and two pods seldom peak at once. The margin for time-sliced
  proposals is calibrated the same way on the summed framebuffer of pairs of containers (up to
  ``MAX_PAIRS`` random pairs, split at 70% of the shared window), so it is smaller where peaks do not
  coincide. (MPS limits each client's memory, so MPS proposals keep the per-pod margin.)
* **Busy** (above the compute share = slowdown, not a crash): a grid of quantiles of the fit part,
  their exceedances counted on the held part, blended with the pool (``calibrated_risk``); the
  lowest level whose calibrated exceedance is within ``busy_risk`` is used on the whole history.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from recommenders.gpu_settings import GpuSettings
from recommenders.sizing_stats import LEVELS, calibrated_risk

HOLDOUT = 0.3
MIN_POOL = 5  # fewer calibrating containers: the pooled margin falls back to FALLBACK_MARGIN
FALLBACK_MARGIN = 0.2
OWN_WEIGHT = 0.5
MAX_PAIRS = 2000


def _q(q: float) -> str:
    return f"q{q:.4f}"


def calibrate(per_pod: pl.DataFrame, key: list[str], settings: GpuSettings, step_h: float = 0.0
              ) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Per container (``key``): ``fb_margin`` (isolated), ``fb_margin_shared`` (time-slicing),
    ``fb_growth``, ``busy_level``, ``busy_need`` (the busy fraction to provide), ``busy_cal_risk``;
    and a summary of the pooled calibration. Only containers with ``min_history_hours`` calibrate
    (the horizon of the proposals they would get).

    ``per_pod`` has one row per (container, pod, timestamp) with ``busy_sum`` and ``fb_sum``."""
    t0, t1 = pl.col("timestamp").min().over(key), pl.col("timestamp").max().over(key)
    long_enough = ((t1 - t0).dt.total_seconds() / 3600.0 + step_h) >= settings.min_history_hours
    s = per_pod.with_columns((pl.col("timestamp") < t0 + (t1 - t0) * (1 - HOLDOUT)).alias("_fit"))
    fit, held = s.filter(pl.col("_fit")), s.filter(~pl.col("_fit"))
    grid = fit.group_by(key).agg(
        pl.col("fb_sum").max().alias("fb_fit_peak"),
        *[pl.col("busy_sum").quantile(q, "higher").alias("h" + _q(q)) for q in LEVELS])
    whole = s.group_by(key).agg(*[pl.col("busy_sum").quantile(q, "higher").alias(_q(q)) for q in LEVELS])
    exceed = held.join(grid, on=key).group_by(key).agg(
        pl.len().alias("held_n"), pl.col("fb_sum").max().alias("fb_held_peak"),
        *[(pl.col("busy_sum") > pl.col("h" + _q(q)) + 1e-9).sum().alias("x" + _q(q)) for q in LEVELS])
    st = whole.join(grid, on=key, how="left").join(exceed, on=key, how="left").sort(key).with_columns(
        pl.when(pl.col("fb_fit_peak") > 0)
        .then((pl.col("fb_held_peak") / pl.col("fb_fit_peak") - 1).clip(lower_bound=0.0))
        .alias("fb_growth"))
    pool = set(map(tuple, per_pod.filter(long_enough).select(key).unique().rows()))
    growth = st.filter(pl.Series([tuple(r) in pool for r in st.select(key).rows()], dtype=pl.Boolean))["fb_growth"]
    growth = growth.drop_nulls()
    if growth.len() >= MIN_POOL:
        pooled = float(growth.quantile(1 - settings.fb_risk, "higher")) if settings.fb_risk > 0 else float(growth.max())
        basis = f"pooled over {growth.len()} containers"
    else:
        pooled, basis = FALLBACK_MARGIN, f"fallback: only {growth.len()} containers to calibrate on"
    pooled = max(pooled, settings.min_fb_margin)
    shared, pairs = _pair_margin(per_pod.filter(long_enough), key, settings)
    shared = max(pooled if shared is None else shared, settings.min_fb_margin)
    # busy: lowest level whose out-of-sample exceedance (own blended with pooled) is within busy_risk
    risk = calibrated_risk(st, OWN_WEIGHT) if st.height else np.zeros((0, len(LEVELS)))
    within = risk <= settings.busy_risk
    idx = np.where(within.any(axis=1), np.argmax(within, axis=1), len(LEVELS) - 1) if st.height else np.zeros(0, int)
    values = np.stack([st[_q(q)].to_numpy().astype(float) for q in LEVELS], axis=1) if st.height else np.zeros((0, 1))
    rows = np.arange(st.height)
    out = st.select(*key, "fb_growth", "fb_fit_peak", "fb_held_peak").with_columns(
        pl.max_horizontal(pl.lit(pooled), pl.col("fb_growth").fill_null(0.0)).alias("fb_margin"),
        pl.lit(shared).alias("fb_margin_shared"),
        pl.Series("busy_level", np.array(LEVELS)[idx] if st.height else [], dtype=pl.Float64),
        pl.Series("busy_need", values[rows, idx] if st.height else [], dtype=pl.Float64),
        pl.Series("busy_cal_risk", risk[rows, idx] if st.height else [], dtype=pl.Float64),
    )
    return out, {"fb_margin_pooled": pooled, "fb_margin_basis": basis, "fb_margin_shared": shared,
                 "fb_margin_shared_pairs": pairs, "fb_risk": settings.fb_risk, "busy_risk": settings.busy_risk,
                 "holdout": HOLDOUT}


def fb_matrix(per_pod: pl.DataFrame, key: list[str]) -> tuple[list[tuple[str, ...]], pl.Series, np.ndarray]:
    """Framebuffer per container (max over its pods) and timestamp: (container keys, timestamps,
    array timestamps x containers with NaN where a container has no sample)."""
    if per_pod.is_empty():
        return [], pl.Series("timestamp", []), np.zeros((0, 0))
    sep = "\x1f"
    series = (per_pod.with_columns(pl.concat_str([pl.col(k) for k in key], separator=sep).alias("_c"))
              .group_by("_c", "timestamp").agg(pl.col("fb_sum").max())
              .pivot(on="_c", index="timestamp", values="fb_sum").sort("timestamp"))
    names = sorted(c for c in series.columns if c != "timestamp")  # the pivot's column order varies run to run
    return ([tuple(n.split(sep)) for n in names], series["timestamp"],
            series.select(names).to_numpy().astype(float) if names else np.zeros((series.height, 0)))


def _pair_margin(per_pod: pl.DataFrame, key: list[str], settings: GpuSettings) -> tuple[float | None, int]:
    """The ``1 - fb_risk`` quantile of the growth of pairs' summed framebuffer (held peak over fit
    peak, split at 70% of the window); None when fewer than ``MIN_POOL`` pairs calibrate."""
    names, times, fb = fb_matrix(per_pod, key)
    if len(names) < 2:
        return None, 0
    cut = times.min() + (times.max() - times.min()) * (1 - HOLDOUT)
    fit = (times < cut).to_numpy()
    rng = np.random.default_rng(0)
    n = len(names)
    all_pairs = n * (n - 1) // 2
    if all_pairs <= MAX_PAIRS:
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    else:
        pairs = list({tuple(sorted(rng.choice(n, 2, replace=False))) for _ in range(MAX_PAIRS)})
    growth = []
    for i, j in pairs:
        both = ~np.isnan(fb[:, i]) & ~np.isnan(fb[:, j])
        f, h = both & fit, both & ~fit
        if f.sum() < 2 or h.sum() < 2:
            continue
        total = fb[:, i] + fb[:, j]
        fit_peak = total[f].max()
        if fit_peak > 0:
            growth.append(max(total[h].max() / fit_peak - 1.0, 0.0))
    if len(growth) < MIN_POOL:
        return None, len(growth)
    g = np.array(growth)
    return (float(np.quantile(g, 1 - settings.fb_risk, method="higher")) if settings.fb_risk > 0 else float(g.max()),
            len(growth))
