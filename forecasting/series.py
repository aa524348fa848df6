"""Series extraction: a Snapshot's usage as a dense (series x hour) matrix.

One series per (namespace, workload_kind, workload, container, resource). At each sample time the
workload's pods are combined by their max (a container is sized per replica), then samples are
bucketed (default 1 h) keeping the bucket's max and a high quantile, so peaks are not averaged away.
Bad values are cleaned explicitly: NaN/Inf and negative values (counter glitches) become gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from analyzer.parts import workload_parts

DEFAULT_QUANTILES = (0.5, 0.9, 0.95, 0.99)  # the forecasters' default output quantiles

KEY = ["namespace", "workload_kind", "workload", "container", "resource"]


@dataclass
class SeriesSet:
    """keys: one row per series (KEY columns); values: float array (n_series, n_buckets), NaN = gap."""

    keys: pl.DataFrame
    times: np.ndarray  # datetime64[us], length n_buckets (bucket starts, UTC)
    values: np.ndarray  # bucket max
    high: np.ndarray  # bucket high quantile
    bucket_seconds: int

    @property
    def n_series(self) -> int:
        return self.values.shape[0]


def extract_series(usage: pl.DataFrame | pl.LazyFrame, bucket: str = "1h", high_quantile: float = 0.95) -> SeriesSet:
    """Usage (long format, as in a Snapshot; eager or lazy) -> SeriesSet on a common bucket grid."""
    seconds = _parse(bucket)
    # keys stay categorical on the big frame (strings for tens of millions of rows cost GBs);
    # they become strings once aggregated to buckets
    df = usage.lazy().select("timestamp", *KEY, pl.col("value").cast(pl.Float64)).filter(
        pl.col("value").is_finite() & (pl.col("value") >= 0))
    empty = SeriesSet(pl.DataFrame(schema={k: pl.String for k in KEY}), np.array([], "datetime64[us]"),
                      np.zeros((0, 0)), np.zeros((0, 0)), seconds)
    # per-sample: max across pods (and GPU devices), then per bucket: max and a high quantile; a few
    # workloads at a time (the per-sample table is as large as the rows it reads)
    parts = workload_parts(df)
    per_b = pl.concat([
        part.group_by([*KEY, "timestamp"]).agg(pl.col("value").max())
        .with_columns(pl.col("timestamp").dt.truncate(bucket).alias("bucket")).group_by([*KEY, "bucket"]).agg(
            pl.col("value").max().alias("vmax"), pl.col("value").quantile(high_quantile, "linear").alias("vq"))
        .with_columns(*[pl.col(k).cast(pl.String) for k in KEY]).collect() for part in parts], how="vertical_relaxed")
    if per_b.is_empty():
        return empty
    keys = per_b.select(KEY).unique().sort(KEY).with_row_index("sid")
    start, end = per_b["bucket"].min(), per_b["bucket"].max()
    times = pl.datetime_range(start, end, interval=bucket, eager=True)
    per_b = per_b.join(keys, on=KEY).with_columns(
        ((pl.col("bucket") - pl.lit(start)).dt.total_seconds() // seconds).cast(pl.Int64).alias("tidx")
    )
    n, t = keys.height, times.len()
    vals = np.full((n, t), np.nan)
    high = np.full((n, t), np.nan)
    sid = per_b["sid"].to_numpy().astype(np.int64)
    tidx = per_b["tidx"].to_numpy()
    vals[sid, tidx] = per_b["vmax"].to_numpy()
    high[sid, tidx] = per_b["vq"].to_numpy()
    return SeriesSet(keys.drop("sid"), times.dt.replace_time_zone(None).to_numpy().astype("datetime64[us]"), vals, high, seconds)


def _parse(bucket: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return int(bucket[:-1]) * units[bucket[-1]]


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """Gaps filled by the last value (then the next value); all-gap rows become 0. Vectorised."""
    v = values.copy()
    n, t = v.shape
    if t == 0:
        return v
    idx = np.where(np.isnan(v), 0, np.arange(t)[None, :])
    np.maximum.accumulate(idx, axis=1, out=idx)
    v = v[np.arange(n)[:, None], idx]
    # leading gaps: backfill from the first valid value
    first = np.argmax(~np.isnan(v), axis=1)
    fv = v[np.arange(n), first]
    lead = np.isnan(v)
    v = np.where(lead, fv[:, None], v)
    return np.nan_to_num(v, nan=0.0)


def to_datetime(t: np.datetime64) -> datetime:
    return t.astype("datetime64[us]").astype(datetime)
