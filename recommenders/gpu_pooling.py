"""Time-slicing pools framebuffer: admit pods whose peak alone is too big for 1/2 of a GPU when their
history shows they never needed it at the same time as the others.

Time-slicing limits no replica's memory (``GpuSettings.sharing="time-slicing"``, chosen where
isolation does not matter): a CUDA OOM happens only when the pods on one GPU *together* exceed it.
The per-pod rule (peak x (1 + margin) <= GPU / replicas) ignores that two pods seldom peak at once.
Here a pod the per-pod rule keeps whole (single device, light compute: its busy need fits half a GPU)
joins the 2-replica pool when, for every pod already in the pool, the pair's *summed* framebuffer
over the shared history, times ``1 + margin`` (the fixed margin, or the one calibrated on pairs),
stays below the GPU: the device plugin, not kubetune, picks who shares a GPU, so every pair must
fit. Candidates are tried smallest peak first, per GPU model and device size.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from recommenders.gpu_calibration import fb_matrix
from recommenders.gpu_settings import GpuSettings

POOL_REPLICAS = 2


def pool_time_sliced(rows: pl.DataFrame, per_pod: pl.DataFrame, key: list[str], st: GpuSettings) -> pl.DataFrame:
    """``rows`` (the GPU recommender's decisions) with admitted pods turned into 2-replica time-slicing
    proposals (``pooled`` = True, ``pool_pairs`` = how many pool members each was checked against)."""
    base = (pl.col("devices") == 1) & pl.col("device_memory").is_not_null() & pl.col("fb_peak").is_not_null()
    members = rows.filter(base & (pl.col("action") == "share-ts") & (pl.col("ts_replicas") == POOL_REPLICAS))
    cands = rows.filter(base & (pl.col("action") == "keep") & (pl.col("need_busy") <= 1.0 / POOL_REPLICAS)
                        & ~pl.col("preallocated").fill_null(False))
    if cands.is_empty():
        return rows.with_columns(pl.lit(None, dtype=pl.Int64).alias("pool_pairs"))
    names, _, fb = fb_matrix(per_pod, key)
    col = {n: i for i, n in enumerate(names)}
    admitted: dict[tuple[str, ...], int] = {}
    for (model, memory), group in cands.sort("fb_peak").group_by(["model", "device_memory"], maintain_order=True):
        pool = [col[tuple(r[k] for k in key)] for r in members.filter(
            (pl.col("model") == model) & (pl.col("device_memory") == memory)).iter_rows(named=True)
            if tuple(r[k] for k in key) in col]
        for r in group.iter_rows(named=True):
            me = tuple(r[k] for k in key)
            if me not in col:
                continue
            i = col[me]
            summed = fb[:, pool] + fb[:, [i]]  # NaN where either has no sample: pairs that never met are not checked
            met = ~np.isnan(summed).all(axis=0)
            joint = np.nanmax(summed[:, met], axis=0) if met.any() else np.zeros(0)
            if (joint * (1 + r["fb_m"]) <= memory).all() and r["fb_peak"] * (1 + r["fb_m"]) <= memory:
                admitted[me] = int(met.sum())
                pool.append(i)
    if not admitted:
        return rows.with_columns(pl.lit(None, dtype=pl.Int64).alias("pool_pairs"))
    adm = pl.DataFrame([{**dict(zip(key, k, strict=True)), "pool_pairs": n} for k, n in admitted.items()],
                       schema={**{k: pl.String for k in key}, "pool_pairs": pl.Int64})
    hit = pl.col("pool_pairs").is_not_null()
    return rows.join(adm, on=key, how="left").with_columns(
        pl.when(hit).then(pl.lit("share-ts")).otherwise(pl.col("action")).alias("action"),
        pl.when(hit).then(pl.lit(POOL_REPLICAS, dtype=pl.Int64)).otherwise(pl.col("ts_replicas")).alias("ts_replicas"),
        (pl.col("pooled") | hit).alias("pooled"))
