"""Per GPU device (or MIG slice): how busy it was, how full its memory, and what its idle hours cost.

Container allocation charges GPUs by devices requested, which is right for billing but hides
the question FinOps asks about accelerators: how much of each device did anyone use? This
answers it from DCGM samples in the snapshot (``usage`` rows with resource ``gpu`` /
``gpu_memory`` and a ``device``) and the ``gpus`` frame.

* ``busy_fraction`` = busy device-hours / device-hours the node existed. Time with no sample
  for the device (no pod on it) counts as idle, which is what it was; a device with no sample
  at all has busy_fraction null and no idle cost is claimed.
* ``memory_used_fraction`` = mean framebuffer used while sampled / the device's memory.
* ``cost`` = node GPU rate x share of a physical GPU (MIG ``<g>g``: g/7) x hours;
  ``idle_cost`` = cost x (1 - busy_fraction).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl
from analyzer.units import GIB

MIG_SLICES_PER_GPU = 7  # a GPU has 7 compute slices (docs/domain-reference.md section 5)

GPU_SCHEMA = {
    "node": pl.String, "device": pl.String, "model": pl.String, "mig_profile": pl.String, "share": pl.Float64,
    "assigned": pl.String, "hours": pl.Float64, "sampled_hours": pl.Float64, "busy_fraction": pl.Float64,
    "memory_total": pl.Int64, "memory_used_fraction": pl.Float64, "gpu_rate": pl.Float64, "cost": pl.Float64,
    "idle_gpu_hours": pl.Float64, "idle_cost": pl.Float64,
}


def gpu_devices(snapshot, nodes: pl.DataFrame, w_start: datetime, w_end: datetime) -> pl.DataFrame:
    """One row per GPU device or MIG slice seen in the snapshot (see the module docstring)."""
    step_h = snapshot.manifest.step_seconds / 3600.0
    samples = (
        snapshot.usage.lazy()
        .filter(pl.col("resource").is_in(["gpu", "gpu_memory"]) & pl.col("device").is_not_null()
                & (pl.col("timestamp") >= w_start) & (pl.col("timestamp") < w_end))
        .with_columns(pl.col("device").cast(pl.String))
        .collect()
    )
    # A time-sliced device can appear under several containers: it is one device, so take the max.
    per_ts = samples.group_by(["device", "timestamp"]).agg(
        pl.col("value").filter(pl.col("resource") == "gpu").max().alias("busy"),
        pl.col("value").filter(pl.col("resource") == "gpu_memory").max().alias("mem"),
    )
    measured = per_ts.group_by("device").agg(
        (pl.col("busy").is_not_null().sum() * step_h).alias("sampled_hours"),
        (pl.col("busy").fill_null(0.0).clip(0.0, 1.0).sum() * step_h).alias("busy_hours"),
        pl.col("busy").is_not_null().any().alias("busy_measured"),
        pl.col("mem").mean().alias("mem_used"),
    )
    owners = samples.with_columns(
        pl.concat_str(pl.col("namespace").cast(pl.String), pl.lit("/"), pl.col("pod").cast(pl.String), pl.lit("/"),
                      pl.col("container").cast(pl.String)).alias("owner")
    ).group_by("device").agg(
        pl.col("owner").unique().sort().str.join(", ").alias("_seen_owner"),
        pl.col("namespace").first(), pl.col("pod").first(), pl.col("container").first(),
    )
    placed = owners.join(
        snapshot.containers.select("namespace", "pod", "container", pl.col("node").cast(pl.String).alias("_c_node")),
        on=["namespace", "pod", "container"], how="left",
    ).select("device", "_seen_owner", "_c_node")
    listed = snapshot.gpus.select(
        pl.col("node").cast(pl.String), pl.col("device").cast(pl.String), "model", "mig_profile", "memory_total",
        pl.when(pl.col("pod").is_not_null()).then(pl.concat_str(
            pl.col("namespace").cast(pl.String), pl.lit("/"), pl.col("pod").cast(pl.String), pl.lit("/"),
            pl.col("container").cast(pl.String).fill_null(""))).alias("_listed_owner"),
    )
    devices = listed.join(placed, on="device", how="full", coalesce=True).with_columns(
        pl.coalesce("node", "_c_node").alias("node"),
        pl.coalesce("_listed_owner", "_seen_owner").alias("assigned"),
    )
    if devices.height == 0:
        return pl.DataFrame(schema=GPU_SCHEMA)
    node_info = nodes.select(
        "node", "gpu_rate", pl.col("gpu_model").alias("_node_model"), pl.col("gpu_memory").alias("_node_mem"),
        ((pl.col("n_end") - pl.col("n_start")).dt.total_microseconds().cast(pl.Float64) / 3.6e9)
        .clip(lower_bound=0.0).alias("hours"),
    )
    mig_g = pl.col("mig_profile").str.extract(r"^(\d+)g", 1).cast(pl.Float64)
    mig_mem = pl.col("mig_profile").str.extract(r"(\d+)gb", 1).cast(pl.Int64) * GIB
    out = (
        devices.join(node_info, on="node", how="left")
        .join(measured, on="device", how="left")
        .with_columns(
            pl.coalesce("model", "_node_model").alias("model"),
            pl.coalesce(mig_g / MIG_SLICES_PER_GPU, pl.lit(1.0)).alias("share"),
            pl.coalesce("memory_total", mig_mem, "_node_mem").alias("memory_total"),
            pl.col("hours").fill_null(0.0),
            pl.col("sampled_hours").fill_null(0.0),
        )
        .with_columns(
            pl.when(pl.col("busy_measured").fill_null(False) & (pl.col("hours") > 0))
            .then((pl.col("busy_hours") / pl.col("hours")).clip(0.0, 1.0)).alias("busy_fraction"),
            pl.when(pl.col("memory_total") > 0).then(pl.col("mem_used") / pl.col("memory_total"))
            .alias("memory_used_fraction"),
            (pl.col("hours") * pl.col("share") * pl.col("gpu_rate").fill_null(0.0)).alias("cost"),
        )
        .with_columns(
            (pl.col("hours") * pl.col("share") * (1 - pl.col("busy_fraction"))).alias("idle_gpu_hours"),
            (pl.col("cost") * (1 - pl.col("busy_fraction"))).alias("idle_cost"),
        )
    )
    return out.select(list(GPU_SCHEMA)).cast(GPU_SCHEMA).sort(
        ["idle_cost", "node", "device"], descending=[True, False, False], nulls_last=True)
