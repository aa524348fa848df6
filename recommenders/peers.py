"""The peers' sizing formulas (Robusta KRR ``simple``, the Kubernetes VPA recommender), vectorised.

Both take a long usage frame (``analyzer.schema.USAGE``: cpu in cores, memory in bytes; other
resources are ignored) and return one row per (namespace, workload_kind, workload, container)
with ``cpu_request`` (cores, Float64), ``cpu_limit`` (always null: neither peer sets one),
``memory_request`` and ``memory_limit`` (bytes, Int64); key columns are Strings. A container
gets a row when it has cpu or memory samples; a resource without usable samples is null.

They exist to be compared with kubetune in ``benchmarks/replay.py``; sources and constants are in
``docs/peers.md`` and ``domain-reference.md`` section 1.

**Memory limit rule (the same for every method in the replay).** KRR sets limit = request. The VPA
recommends requests only and scales the existing limit to keep the workload's original
limit:request ratio; here ``vpa`` emits limit = request (ratio 1, what KRR and kubetune's default
do), so all methods are compared on the same footing. The replay's OOM threshold for a container
is its proposed memory limit, and falls back to the memory request only where the limit is unset
(null): one rule for all methods, the peers included.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import polars as pl
from analyzer.units import MIB

KEY = ["namespace", "workload_kind", "workload", "container"]
DAY_US = 86_400 * 1_000_000

# Robusta KRR `simple` strategy (robusta_krr/strategies/simple.py, v1.29 defaults).
KRR_CPU_PERCENTILE = 0.95
KRR_MEMORY_BUFFER = 0.15
KRR_OOM_BUFFER = 0.25
KRR_POINTS_REQUIRED = 100
KRR_CPU_MIN = 0.010  # cores (10m)
KRR_MEMORY_MIN = 100 * MIB

# VPA recommender defaults (pkg/recommender/model/aggregations_config.go, logic/recommender.go).
VPA_PERCENTILE = 0.9
VPA_MARGIN = 0.15
VPA_HALF_LIFE_US = DAY_US
VPA_RATIO = 1.05
VPA_CPU_FIRST_BUCKET, VPA_CPU_MAX = 0.01, 1000.0  # cores
VPA_MEMORY_FIRST_BUCKET, VPA_MEMORY_MAX = 1e7, 1e12  # bytes
VPA_CPU_SAMPLE_WEIGHT = 0.1  # minSampleWeight (HEAD): constant, so it cancels out of percentiles
VPA_MEMORY_INTERVAL_US = DAY_US
VPA_MEMORY_INTERVALS = 8
VPA_OOM_RATIO = 1.2
VPA_OOM_MIN_BUMP = 100 * MIB
VPA_POD_MIN_CPU = 0.025  # cores per pod
VPA_POD_MIN_MEMORY = 250 * MIB  # --pod-recommendation-min-memory-mb x 1024 x 1024

OUTPUT_SCHEMA = {
    "namespace": pl.String, "workload_kind": pl.String, "workload": pl.String, "container": pl.String,
    "cpu_request": pl.Float64, "cpu_limit": pl.Float64, "memory_request": pl.Int64, "memory_limit": pl.Int64,
}


def _resource(usage: pl.DataFrame, resource: str) -> pl.LazyFrame:
    """Rows of one resource with String keys and finite, non-negative values."""
    return (
        usage.lazy()
        .filter((pl.col("resource").cast(pl.String) == resource) & pl.col("value").is_finite() & (pl.col("value") >= 0))
        .select(
            pl.col("timestamp"),
            *(pl.col(c).cast(pl.String) for c in [*KEY[:3], "pod", "container"]),
            pl.col("value").cast(pl.Float64),
        )
    )


def _oom_events(events: pl.DataFrame | None) -> pl.LazyFrame | None:
    if events is None or events.is_empty():
        return None
    return (
        events.lazy()
        .filter(pl.col("reason") == "OOMKilled")
        .select(pl.col("timestamp"), *(pl.col(c).cast(pl.String) for c in [*KEY[:3], "pod", "container"]),
                pl.col("memory_limit"))
    )


def _ceil_to(expr: pl.Expr, unit: float) -> pl.Expr:
    """Round up to a multiple of ``unit``, forgiving float noise (0.588 stays 0.588 at 1m)."""
    return ((expr / unit - 1e-9).ceil() * unit).round(9)  # 13 x 0.001 -> 0.013, not 0.013000000000000001


def _finish(keys: pl.LazyFrame, cpu: pl.LazyFrame, memory: pl.LazyFrame) -> pl.DataFrame:
    mem = pl.col("memory_request").cast(pl.Int64)
    return (
        keys.join(cpu, on=KEY, how="left", nulls_equal=True)
        .join(memory, on=KEY, how="left", nulls_equal=True)
        .select(*KEY, pl.col("cpu_request").cast(pl.Float64), pl.lit(None, pl.Float64).alias("cpu_limit"),
                mem.alias("memory_request"), mem.alias("memory_limit"))
        .sort(KEY)
        .collect()
        .cast(OUTPUT_SCHEMA)  # type: ignore[arg-type]
    )


def _keys(*frames: pl.LazyFrame) -> pl.LazyFrame:
    return pl.concat([f.select(KEY) for f in frames]).unique()


# --------------------------------------------------------------------------------------------- KRR


def krr_simple(usage: pl.DataFrame, events: pl.DataFrame | None = None) -> pl.DataFrame:
    """Robusta KRR's ``simple`` strategy over the whole frame (KRR's default history is 14 days).

    * CPU request = max over the workload's pods of each pod's p95 CPU (linear interpolation, as
      Prometheus ``quantile_over_time``); no CPU limit.
    * Memory request = limit = peak working set over all pods x 1.15; with ``events``, at least
      the memory limit in force at an OOMKilled event x 1.25 (KRR's optional OOM data).
    * A resource with fewer than 100 samples (all pods together) gets no value (KRR prints "?").
    * Floors 10m / 100Mi, then rounded up to 1m / 1MiB.
    """
    cpu_rows, mem_rows = _resource(usage, "cpu"), _resource(usage, "memory")
    cpu = (
        cpu_rows.group_by([*KEY, "pod"])
        .agg(pl.col("value").quantile(KRR_CPU_PERCENTILE, interpolation="linear").alias("p"), pl.len().alias("n"))
        .group_by(KEY)
        .agg(pl.col("p").max(), pl.col("n").sum())
        .filter(pl.col("n") >= KRR_POINTS_REQUIRED)
        .select(*KEY, _ceil_to(pl.max_horizontal(pl.col("p"), pl.lit(KRR_CPU_MIN)), 0.001).alias("cpu_request"))
    )
    memory = (
        mem_rows.group_by(KEY)
        .agg((pl.col("value").max() * (1 + KRR_MEMORY_BUFFER)).alias("m"), pl.len().alias("n"))
        .filter(pl.col("n") >= KRR_POINTS_REQUIRED)
    )
    oom = _oom_events(events)
    if oom is not None:
        bump = (
            oom.filter(pl.col("memory_limit").is_not_null())
            .group_by(KEY).agg((pl.col("memory_limit").max() * (1 + KRR_OOM_BUFFER)).alias("oom"))
        )
        memory = (memory.join(bump, on=KEY, how="left", nulls_equal=True)
                  .with_columns(pl.max_horizontal("m", "oom").alias("m")))
    memory = memory.select(
        *KEY, _ceil_to(pl.max_horizontal(pl.col("m"), pl.lit(float(KRR_MEMORY_MIN))), float(MIB)).alias("memory_request")
    )
    return _finish(_keys(cpu_rows, mem_rows), cpu, memory)


# --------------------------------------------------------------------------------------------- VPA


def _num_buckets(first: float, maximum: float, ratio: float = VPA_RATIO) -> int:
    return math.ceil(math.log(maximum * (ratio - 1) / first + 1) / math.log(ratio)) + 1


def _bucket(value: pl.Expr, first: float, maximum: float, ratio: float = VPA_RATIO) -> pl.Expr:
    """VPA ``exponentialHistogramOptions.FindBucket``: floor(log_r(v (r-1)/first + 1)), clamped."""
    n = _num_buckets(first, maximum, ratio)
    b = ((value * (ratio - 1) / first + 1).log() / math.log(ratio)).floor().cast(pl.Int64)
    return pl.when(value < first).then(0).otherwise(b.clip(0, n - 1))


def _bucket_start(bucket: pl.Expr, first: float, ratio: float = VPA_RATIO) -> pl.Expr:
    """``GetBucketStart``: first (r^b - 1)/(r - 1); 0 for bucket 0."""
    return pl.when(bucket == 0).then(0.0).otherwise(first * (pl.lit(ratio).pow(bucket) - 1) / (ratio - 1))


def _histogram_percentile(samples: pl.LazyFrame, first: float, maximum: float, p: float) -> pl.LazyFrame:
    """Weighted percentile per KEY over (value, weight) rows, as VPA's ``histogram.Percentile``:
    the end of the first bucket whose cumulative weight reaches p x total (the last bucket: its start)."""
    n = _num_buckets(first, maximum)
    hist = (
        samples.with_columns(_bucket(pl.col("value"), first, maximum).alias("bucket"))
        .group_by([*KEY, "bucket"]).agg(pl.col("weight").sum())
        .sort([*KEY, "bucket"])
        .with_columns(pl.col("weight").cum_sum().over(KEY).alias("cum"), pl.col("weight").sum().over(KEY).alias("total"))
    )
    chosen = hist.group_by(KEY).agg(
        pl.col("bucket").filter(pl.col("cum") >= p * pl.col("total") * (1 - 1e-12)).min().fill_null(pl.col("bucket").max())
    )
    end = pl.when(pl.col("bucket") < n - 1).then(pl.col("bucket") + 1).otherwise(pl.col("bucket"))
    return chosen.select(*KEY, _bucket_start(end, first).alias("percentile"))


def vpa(usage: pl.DataFrame, events: pl.DataFrame | None = None, *, containers: pl.DataFrame | None = None,
        now: datetime | None = None) -> pl.DataFrame:
    """The VPA recommender's *target* for every container, from the samples in ``usage``.

    * CPU: every sample of every pod of the workload goes into one decaying histogram (exponential
      buckets, first 0.01 core, 5% growth, max 1000 cores) with weight 0.1 x 2^((t - now)/24 h),
      ``now`` = the last sample in ``usage`` unless given (a constant reference cancels out of the
      percentile, so "relative to the last sample" is exact). Target = p90 x 1.15. All samples
      given are used (older ones weigh < 2^-8 after 8 days).
    * Memory: only samples after now - 8 days (VPA's history length); each pod container gives one
      peak per 24 h interval (intervals aligned to its first sample in that range, as the VPA aligns
      ``WindowEnd``), stamped at the interval's end, weight 1.0 decayed like CPU; histogram first
      bucket 10 MB, 5% growth, max 1 TB. Target = p90 x 1.15.
    * OOM (``events`` with reason OOMKilled in the range): memoryUsed = max(the container's request
      from ``containers`` if given, the pod's peak in that interval), needed = max(used + 100 MiB,
      used x 1.2), which replaces the interval's peak when higher (VPA ``RecordOOM``).
    * Minimums 25m CPU / 250 MiB per pod, divided by the workload's containers per pod (the most
      containers seen in one of its pods). The target has no confidence multiplier.
    * CPU rounded up to 1m, memory up to a byte. ``cpu_limit`` null; ``memory_limit`` = request
      (the VPA itself would keep the original limit:request ratio; see the module docstring for
      the one limit rule the replay applies to every method).

    Length: VPA's histogram, decay and margins follow its Go source step by step (links inline), which keeps
    the port checkable.
    """
    cpu_rows, mem_rows = _resource(usage, "cpu"), _resource(usage, "memory")
    last = pl.concat([cpu_rows.select("timestamp"), mem_rows.select("timestamp")]).select(pl.col("timestamp").max())
    last_ts = now if now is not None else last.collect().item()
    if last_ts is None:
        return pl.DataFrame(schema=OUTPUT_SCHEMA)
    now_lit = pl.lit(last_ts).cast(pl.Datetime("us", "UTC"))

    def decay(ts: pl.Expr) -> pl.Expr:
        age = (ts.cast(pl.Datetime("us", "UTC")) - now_lit).dt.total_microseconds().cast(pl.Float64)
        return pl.lit(2.0).pow(age / VPA_HALF_LIFE_US)

    cpu = _histogram_percentile(
        cpu_rows.select(*KEY, "value", (VPA_CPU_SAMPLE_WEIGHT * decay(pl.col("timestamp"))).alias("weight")),
        VPA_CPU_FIRST_BUCKET, VPA_CPU_MAX, VPA_PERCENTILE,
    ).select(*KEY, (pl.col("percentile") * (1 + VPA_MARGIN)).alias("cpu"))

    # Memory: one peak per pod container and 24 h interval over the last 8 days.
    recent = mem_rows.filter(
        pl.col("timestamp") > now_lit - timedelta(microseconds=VPA_MEMORY_INTERVAL_US * VPA_MEMORY_INTERVALS))
    pod_key = [*KEY, "pod"]
    starts = recent.group_by(pod_key).agg(pl.col("timestamp").min().alias("t0"))

    def interval(ts: str) -> pl.Expr:
        return ((pl.col(ts) - pl.col("t0")).dt.total_microseconds() // VPA_MEMORY_INTERVAL_US).alias("k")

    peaks = recent.join(starts, on=pod_key, nulls_equal=True).group_by([*pod_key, "t0", interval("timestamp")]).agg(
        pl.col("value").max().alias("peak"))
    oom = _oom_events(events)
    if oom is not None:
        oom = oom.join(starts, on=pod_key, nulls_equal=True).filter(pl.col("timestamp") >= pl.col("t0"))
        oom = oom.with_columns(interval("timestamp")).join(
            peaks.select(*pod_key, "k", "peak"), on=[*pod_key, "k"], how="left", nulls_equal=True)
        used = pl.col("peak").fill_null(0.0)
        if containers is not None and "memory_request" in containers.columns:
            req = containers.lazy().select(
                *(pl.col(c).cast(pl.String) for c in ["namespace", "pod", "container"]),
                pl.col("memory_request").cast(pl.Float64).alias("req"),
            ).unique(["namespace", "pod", "container"])
            oom = oom.join(req, on=["namespace", "pod", "container"], how="left")
            used = pl.max_horizontal(used, pl.col("req").fill_null(0.0))
        needed = pl.max_horizontal(used + VPA_OOM_MIN_BUMP, used * VPA_OOM_RATIO).alias("peak")
        peaks = pl.concat([peaks, oom.select(*pod_key, "t0", "k", needed)]).group_by([*pod_key, "t0", "k"]).agg(
            pl.col("peak").max())
    window_end = pl.col("t0") + pl.duration(microseconds=(pl.col("k") + 1) * VPA_MEMORY_INTERVAL_US)
    memory = _histogram_percentile(
        peaks.select(*KEY, pl.col("peak").alias("value"), decay(window_end).alias("weight")),
        VPA_MEMORY_FIRST_BUCKET, VPA_MEMORY_MAX, VPA_PERCENTILE,
    ).select(*KEY, (pl.col("percentile") * (1 + VPA_MARGIN)).alias("memory"))

    per_pod = (
        pl.concat([cpu_rows.select(*pod_key), mem_rows.select(*pod_key)]).unique()
        .group_by([*KEY[:3], "pod"]).agg(pl.len().alias("n"))
        .group_by(KEY[:3]).agg(pl.col("n").max().alias("containers_per_pod"))
    )
    keys = _keys(cpu_rows, mem_rows).join(per_pod, on=KEY[:3], how="left", nulls_equal=True)
    n = pl.col("containers_per_pod").cast(pl.Float64)
    out = keys.join(cpu, on=KEY, how="left", nulls_equal=True).join(memory, on=KEY, how="left", nulls_equal=True)
    cpu_out = out.select(*KEY, pl.when(pl.col("cpu").is_not_null()).then(
        _ceil_to(pl.max_horizontal(pl.col("cpu"), VPA_POD_MIN_CPU / n), 0.001)).alias("cpu_request"))
    mem_out = out.select(*KEY, pl.when(pl.col("memory").is_not_null()).then(
        _ceil_to(pl.max_horizontal(pl.col("memory"), VPA_POD_MIN_MEMORY / n), 1.0)).alias("memory_request"))
    return _finish(keys.select(KEY), cpu_out, mem_out)
