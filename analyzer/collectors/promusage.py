"""Prometheus range answers straight into ``usage`` rows (split from ``prometheus.py``: decoding,
not orchestration). Samples stay in NumPy/Polars columns: the per-series labels (a small frame,
categorical) are gathered by series index, never turned into per-sample Python objects."""

from __future__ import annotations

import numpy as np
import polars as pl

from analyzer.collectors.promframes import USAGE_COLUMNS, dcgm_labels, epoch_series, labels_frame, usage_empty
from analyzer.schema import RESOURCE


def usage_rows(shards: list, resource: str, owners: pl.DataFrame, *, dcgm: bool = False,
               scale: float = 1.0) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(usage rows, each container's first and last sample time, samples dropped as NaN/Inf or
    without a pod label) for the answers of one range query."""
    parts, spans = [], []
    dropped = 0
    shards = list(shards)
    while shards:
        m = shards.pop(0)  # each answer is freed as soon as its rows are built, not when all are
        if not m.labels:
            continue
        lab = dcgm_labels(m.labels) if dcgm else labels_frame(m.labels, ["namespace", "pod", "container"])
        lab = lab.with_row_index("series").join(owners, on=["namespace", "pod"], how="left",
                                                maintain_order="left")
        lab = lab.with_columns(pl.col("workload_kind").fill_null("Pod"), pl.coalesce("workload", "pod").alias("workload"))
        valid = lab.select(pl.col("pod").is_not_null() & pl.col("namespace").is_not_null()
                           & pl.col("container").is_not_null()).to_series()
        samples = m.samples
        keep = samples.get_column("v").is_finite() & valid.gather(samples.get_column("series"))
        if not keep.all():
            dropped += samples.height - int(keep.sum())
            samples = samples.filter(keep)
        idx = samples.get_column("series")
        cat = lab.select(pl.col("namespace", "workload_kind", "workload", "pod", "container").cast(pl.Categorical),
                         (pl.col("device") if dcgm else pl.lit(None, pl.String)).cast(pl.Categorical).alias("device"))
        part = pl.DataFrame({
            "timestamp": epoch_series(samples.get_column("t")),
            **{c: cat.get_column(c).gather(idx) for c in ("namespace", "workload_kind", "workload", "pod",
                                                          "container")},
            "resource": pl.Series("resource", [resource], dtype=RESOURCE).gather(np.zeros(samples.height, np.uint32)),
            "device": cat.get_column("device").gather(idx),
            "value": samples.get_column("v") * scale if scale != 1.0 else samples.get_column("v"),
        })
        twins = None if dcgm else lab.select(pl.struct("namespace", "pod", "container").is_duplicated()).to_series()
        if twins is not None and twins.any():
            # Raw series with the same container (a restarted container's old and new cgroup, a
            # stray duplicate target): one value per time, the highest. Only their rows are grouped.
            mask = twins.gather(idx)
            key = ["timestamp", "namespace", "workload_kind", "workload", "pod", "container", "resource", "device"]
            part = pl.concat([part.filter(~mask), part.filter(mask).group_by(key).agg(pl.col("value").max())
                              .select(USAGE_COLUMNS)], how="vertical")
        parts.append(part)
        spans.append(samples.group_by("series").agg(pl.col("t").min().alias("first"), pl.col("t").max().alias("last"))
                     .join(lab.select(pl.col("series").cast(pl.UInt32), "namespace", "pod", "container",
                                      *(["device", "node"] if dcgm else [])), on="series").drop("series"))
        del m, samples, idx
    usage = pl.concat(parts, how="vertical") if parts else usage_empty()
    span = pl.concat(spans, how="vertical_relaxed") if spans else pl.DataFrame(
        schema={"namespace": pl.String, "pod": pl.String, "container": pl.String, "first": pl.Float64,
                "last": pl.Float64})
    if dcgm and usage.height:
        # Hostname/hostname renames or GPU_UTIL and GR_ENGINE for one device: one value per time.
        usage = usage.group_by(["timestamp", "namespace", "workload_kind", "workload", "pod", "container",
                                "resource", "device"]).agg(pl.col("value").max()).select(USAGE_COLUMNS)
    return usage, span, dropped
