"""What GPU samples can be trusted before anything is sized on them, and engine preallocation.

* **Glitches**: busy above 100% (DCGM counters that wrapped, exporter restarts) and framebuffer above
  the device's memory cannot be real. They are dropped, counted per container, and a container with
  more than ``max_glitch_fraction`` of them gets no recommendation (its exporter is not trustworthy).
* **Gaps**: the longest hole between a pod's consecutive GPU samples and the share of its window
  that has samples (``coverage``, per resource, the worse of busy and framebuffer). A peak can
  hide in a hole, so long holes or thin coverage mean no recommendation.
* **Preallocation**: serving engines reserve framebuffer up front (vLLM ``gpu_memory_utilization``,
  TensorRT-LLM ``kv_cache_free_gpu_mem_fraction``, SGLang ``mem_fraction_static``). A framebuffer
  flat within ``prealloc_spread`` at ``prealloc_min_share`` of the device or more is flagged: it says
  what the engine reserved, not what the model needs.
"""

from __future__ import annotations

import polars as pl

from analyzer.units import GIB
from recommenders.gpu_settings import GpuSettings

BUSY_MAX = 1.0 + 1e-6  # a busy fraction a hair above 1 is rounding, not a glitch


def clean(samples: pl.DataFrame, device_memory: pl.DataFrame, key: list[str], step_h: float,
          settings: GpuSettings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(samples with glitches set to null, quality per container). ``samples`` has one row per
    (container, pod, device, timestamp) with raw ``busy`` and ``fb``; ``device_memory`` maps the
    container key to its device's bytes (null = unknown: no framebuffer check)."""
    s = samples.join(device_memory, on=key, how="left").with_columns(
        ((pl.col("busy") > BUSY_MAX) | (pl.col("busy") < 0)).fill_null(False).alias("_bad_busy"),
        ((pl.col("fb") > pl.col("device_memory")) | (pl.col("fb") < 0)).fill_null(False).alias("_bad_fb"))
    gaps = (s.sort("timestamp").group_by([*key, "pod", "device"])
            .agg((pl.col("timestamp").diff().dt.total_seconds().max() / 3600.0).alias("gap_h"),
                 ((pl.col("timestamp").max() - pl.col("timestamp").min()).dt.total_seconds() / 3600.0 + step_h)
                 .alias("span_h"),
                 (~pl.col("_bad_busy") & pl.col("busy").is_not_null()).sum().alias("n_busy"),
                 (~pl.col("_bad_fb") & pl.col("fb").is_not_null()).sum().alias("n_fb"))
            .group_by(key).agg(
                pl.col("gap_h").max().fill_null(0.0).alias("max_gap_h"),
                (pl.min_horizontal(pl.col("n_busy").sum(), pl.col("n_fb").sum()) * step_h
                 / pl.col("span_h").sum()).clip(upper_bound=1.0).alias("coverage")))
    quality = s.group_by(key).agg(
        pl.len().alias("n_raw"), pl.col("_bad_busy").sum().alias("busy_glitches"),
        pl.col("_bad_fb").sum().alias("fb_glitches"),
        (pl.col("_bad_busy") | pl.col("_bad_fb")).mean().alias("glitch_fraction"),
        pl.col("device_memory").first().alias("_dm"),
    ).join(gaps, on=key, how="left")
    reason = (
        pl.when(pl.col("glitch_fraction") > settings.max_glitch_fraction)
        .then(pl.format("{} of its GPU samples are impossible ({} with busy above 100%, {} with framebuffer above "
                        "the device's {} GiB): exporter glitches, nothing is sized on this data",
                        (pl.col("glitch_fraction") * 100).round(1).cast(pl.String) + pl.lit("%"),
                        "busy_glitches", "fb_glitches", (pl.col("_dm") / GIB).round(1).cast(pl.String)))
        .when(pl.col("max_gap_h") > settings.max_gap_hours)
        .then(pl.format("its GPU samples have a {} h gap (more than {} h): a peak can hide in it",
                        pl.col("max_gap_h").round(1).cast(pl.String), pl.lit(f"{settings.max_gap_hours:g}")))
        .when(pl.col("coverage") < settings.min_coverage)
        .then(pl.format("only {} of its history window has GPU samples (at least {} needed)",
                        (pl.col("coverage") * 100).round(0).cast(pl.Int64).cast(pl.String) + pl.lit("%"),
                        pl.lit(f"{settings.min_coverage:.0%}")))
    )
    quality = quality.with_columns(reason.alias("quality_reason")).drop("_dm")
    cleaned = s.with_columns(
        pl.when(pl.col("_bad_busy")).then(None).otherwise(pl.col("busy")).alias("busy"),
        pl.when(pl.col("_bad_fb")).then(None).otherwise(pl.col("fb")).alias("fb"),
    ).drop("_bad_busy", "_bad_fb", "device_memory")
    return cleaned, quality


def preallocation(per_pod: pl.DataFrame, device_memory: pl.DataFrame, key: list[str],
                  settings: GpuSettings) -> pl.DataFrame:
    """Per container: ``preallocated`` (flat framebuffer at a fixed share of the device) and that share."""
    flat = per_pod.filter(pl.col("fb_sum").is_not_null()).group_by(key).agg(
        pl.col("fb_sum").quantile(0.01, "lower").alias("_lo"), pl.col("fb_sum").quantile(0.99, "higher").alias("_hi"),
        pl.col("fb_sum").median().alias("_mid"))
    return flat.join(device_memory, on=key, how="left").select(
        *key,
        ((pl.col("_hi") > 0) & (pl.col("_hi") - pl.col("_lo") <= settings.prealloc_spread * pl.col("_hi"))
         & (pl.col("_mid") >= settings.prealloc_min_share * pl.col("device_memory"))).fill_null(False)
        .alias("preallocated"),
        (pl.col("_mid") / pl.col("device_memory")).alias("prealloc_share"))
