"""Time series the pages chart, read from the snapshot behind the results and cached per question.

One workload's usage (hourly max over its pods, as the forecaster sees it) with its requests and
limits, its 7-day forecast band and drift points; the GPU busy/framebuffer matrix; the backtest.
Each is cached (``st.cache_data``) by the results' key plus the question's arguments, so a page
that was seen once opens instantly.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
import streamlit as st

from dashboards.app.data import snapshot_for
from dashboards.app.results import Results
from forecasting import backtest_snapshot, detect_drift, extract_series, forecast_snapshot
from forecasting.series import SeriesSet

TS = pl.Datetime("us", "UTC")


def _workload_usage(snapshot, namespace: str, kind: str, workload: str) -> pl.DataFrame:
    return snapshot.usage.lazy().filter(
        (pl.col("namespace").cast(pl.String) == namespace) & (pl.col("workload_kind").cast(pl.String) == kind)
        & (pl.col("workload").cast(pl.String) == workload) & pl.col("resource").is_in(["cpu", "memory"])
    ).collect()


def _long(ss: SeriesSet) -> pl.DataFrame:
    n, t = ss.values.shape
    if n == 0:
        return pl.DataFrame(schema={"container": pl.String, "resource": pl.String, "timestamp": TS, "usage": pl.Float64})
    return ss.keys.select("container", "resource").select(pl.all().repeat_by(t).explode()).with_columns(
        pl.Series("timestamp", np.tile(ss.times, n)).dt.replace_time_zone("UTC").cast(TS),
        pl.Series("usage", ss.values.ravel()),
    ).drop_nulls("usage").filter(pl.col("usage").is_not_nan())


@st.cache_data(show_spinner="Forecasting this workload...", max_entries=64)
def workload_series(_results: Results, key: str, namespace: str, kind: str, workload: str) -> dict[str, pl.DataFrame]:
    """usage (container, resource, timestamp, usage), settings (container, resource, request, limit),
    forecast (container, resource, timestamp, p50, p95, peak), drift (container, resource, timestamp, kind)."""
    snapshot = snapshot_for(_results)
    empty = pl.DataFrame()
    if snapshot is None:
        return {"usage": empty, "settings": empty, "forecast": empty, "drift": empty}
    ss = extract_series(_workload_usage(snapshot, namespace, kind, workload))
    usage = _long(ss)
    c = snapshot.containers.filter(
        (pl.col("namespace").cast(pl.String) == namespace) & (pl.col("workload_kind").cast(pl.String) == kind)
        & (pl.col("workload").cast(pl.String) == workload)
    ).sort("started_at", nulls_last=False).group_by(pl.col("container").cast(pl.String)).agg(
        pl.col("cpu_request").last(), pl.col("cpu_limit").last(),
        pl.col("memory_request").last().cast(pl.Float64), pl.col("memory_limit").last().cast(pl.Float64))
    settings = pl.concat([
        c.select("container", pl.lit("cpu").alias("resource"), pl.col("cpu_request").alias("request"),
                 pl.col("cpu_limit").alias("limit")),
        c.select("container", pl.lit("memory").alias("resource"), pl.col("memory_request").alias("request"),
                 pl.col("memory_limit").alias("limit")),
    ])
    forecast = drift = empty
    if ss.n_series and ss.values.shape[1] >= 48:
        forecast = forecast_snapshot(ss, horizon=timedelta(days=7)).select(
            "container", "resource", "timestamp", "p50", "p95", "peak")
        drift = detect_drift(ss).select("container", "resource", "timestamp", "kind")
    return {"usage": usage, "settings": settings, "forecast": forecast, "drift": drift}


@st.cache_data(show_spinner="Reading GPU samples...", max_entries=8)
def gpu_matrix(_results: Results, key: str) -> pl.DataFrame:
    """Per GPU device (or MIG slice) and hour: busy % and framebuffer % (of the device's memory)."""
    snapshot = snapshot_for(_results)
    if snapshot is None:
        return pl.DataFrame()
    samples = snapshot.usage.lazy().filter(
        pl.col("resource").is_in(["gpu", "gpu_memory"]) & pl.col("device").is_not_null()
    ).with_columns(pl.col("device").cast(pl.String), pl.col("timestamp").dt.truncate("1h").alias("hour"))
    per_hour = samples.group_by("device", "hour").agg(
        (pl.col("value").filter(pl.col("resource") == "gpu").mean() * 100).alias("busy_pct"),
        pl.col("value").filter(pl.col("resource") == "gpu_memory").mean().alias("_mem"),
    ).collect()
    sizes = _results.gpus.select("device", "node", "memory_total", "mig_profile")
    return per_hour.join(sizes, on="device", how="left").with_columns(
        pl.when(pl.col("memory_total") > 0).then(pl.col("_mem") / pl.col("memory_total") * 100)
        .alias("framebuffer_pct"),
        pl.concat_str(pl.col("node"), pl.lit(" / "), pl.col("device"),
                      pl.when(pl.col("mig_profile").is_not_null()).then(pl.lit(" (") + pl.col("mig_profile") + ")")
                      .otherwise(pl.lit("")), ignore_nulls=True).alias("gpu"),
    ).drop("_mem").sort("gpu", "hour")


@st.cache_data(show_spinner="Backtesting the forecaster against the baselines (this takes a while once)...",
               max_entries=4)
def backtest(_results: Results, key: str) -> pl.DataFrame:
    """Per model: scaled pinball loss and coverage per quantile, MASE of the median (forecasting.backtest_snapshot)."""
    snapshot = snapshot_for(_results)
    if snapshot is None:
        return pl.DataFrame()
    return backtest_snapshot(snapshot)
