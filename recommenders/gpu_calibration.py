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
* **Busy** (above the compute share = slowdown, not a crash): a grid of quantiles of the fit part,
  their exceedances counted on the held part, blended with the pool (``calibrated_risk``); the
  lowest level whose calibrated exceedance is within ``busy_risk`` is used on the whole history.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from recommenders.gpu_settings import GpuSettings
from recommenders.rightsizing import LEVELS, calibrated_risk

HOLDOUT = 0.3
MIN_POOL = 5  # fewer calibrating containers: the pooled margin falls back to FALLBACK_MARGIN
FALLBACK_MARGIN = 0.2
OWN_WEIGHT = 0.5


def _q(q: float) -> str:
    return f"q{q:.4f}"


def calibrate(per_pod: pl.DataFrame, key: list[str], settings: GpuSettings) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Per container (``key``): ``fb_margin``, ``fb_growth``, ``busy_level``, ``busy_need`` (the busy
    fraction to provide) and ``busy_cal_risk``; and a summary of the pooled calibration.

    ``per_pod`` has one row per (container, pod, timestamp) with ``busy_sum`` and ``fb_sum``."""
    t0, t1 = pl.col("timestamp").min().over(key), pl.col("timestamp").max().over(key)
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
    growth = st["fb_growth"].drop_nulls()
    if growth.len() >= MIN_POOL:
        pooled = float(growth.quantile(1 - settings.fb_risk, "higher")) if settings.fb_risk > 0 else float(growth.max())
        basis = f"pooled over {growth.len()} containers"
    else:
        pooled, basis = FALLBACK_MARGIN, f"fallback: only {growth.len()} containers to calibrate on"
    pooled = max(pooled, settings.min_fb_margin)
    # busy: lowest level whose out-of-sample exceedance (own blended with pooled) is within busy_risk
    risk = calibrated_risk(st, OWN_WEIGHT) if st.height else np.zeros((0, len(LEVELS)))
    within = risk <= settings.busy_risk
    idx = np.where(within.any(axis=1), np.argmax(within, axis=1), len(LEVELS) - 1) if st.height else np.zeros(0, int)
    values = np.stack([st[_q(q)].to_numpy().astype(float) for q in LEVELS], axis=1) if st.height else np.zeros((0, 1))
    rows = np.arange(st.height)
    out = st.select(*key, "fb_growth", "fb_fit_peak", "fb_held_peak").with_columns(
        pl.max_horizontal(pl.lit(pooled), pl.col("fb_growth").fill_null(0.0)).alias("fb_margin"),
        pl.Series("busy_level", np.array(LEVELS)[idx] if st.height else [], dtype=pl.Float64),
        pl.Series("busy_need", values[rows, idx] if st.height else [], dtype=pl.Float64),
        pl.Series("busy_cal_risk", risk[rows, idx] if st.height else [], dtype=pl.Float64),
    )
    return out, {"fb_margin_pooled": pooled, "fb_margin_basis": basis, "fb_risk": settings.fb_risk,
                 "busy_risk": settings.busy_risk, "holdout": HOLDOUT}
