"""What a unit of each resource costs for each workload, so every recommendation carries dollars.

Rates come from the cost model's node rates (``analyze_cost(...).nodes``: USD per core-hour, per
GiB-hour and per GPU-hour, split from the node's price), averaged over the nodes a workload's pods
ran on. Workloads whose nodes are unknown get the cluster's average rate; a snapshot without nodes
or prices (e.g. from ``kubetune import``) gets the catalog's fallback on-demand rates, and
``WorkloadRates.basis`` says so, because the user must know the dollars are estimates.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from analyzer.cost import HOURS_PER_MONTH, CostResult, PriceBook, analyze_cost, load_pricing
from analyzer.snapshot import Snapshot
from analyzer.units import GIB

WORKLOAD = ["namespace", "workload_kind", "workload"]
FALLBACK_BASIS = "fallback on-demand rates (the snapshot has no priced nodes)"


@dataclass
class WorkloadRates:
    """``frame``: WORKLOAD + cpu_rate (USD/core-hour), memory_rate (USD/GiB-hour), gpu_rate
    (USD/GPU-hour), capacity_type (where the pods ran: on-demand, spot, mixed, unknown), provider."""

    frame: pl.DataFrame
    basis: str
    default: dict[str, float]

    def monthly(self, resource: str, amount: pl.Expr) -> pl.Expr:
        """Expression: USD/month for ``amount`` (cores, bytes or GPUs) of ``resource`` per pod-month,
        using the joined ``<resource>_rate`` column (call after ``attach``)."""
        scale = 1.0 / GIB if resource == "memory" else 1.0
        return amount * scale * pl.col(f"{resource}_rate") * HOURS_PER_MONTH

    def attach(self, df: pl.DataFrame) -> pl.DataFrame:
        """Left-join the rates onto a frame keyed by WORKLOAD; unknown workloads get the default."""
        keyed = df.with_columns(*[pl.col(k).cast(pl.String) for k in WORKLOAD])
        out = keyed.join(self.frame, on=WORKLOAD, how="left")
        return out.with_columns(
            *[pl.col(f"{r}_rate").fill_null(self.default[r]) for r in ("cpu", "memory", "gpu")],
            pl.col("capacity_type").fill_null("unknown"), pl.col("provider").fill_null("unknown"),
        )


def workload_rates(snapshot: Snapshot, cost: CostResult | None = None, pricing: PriceBook | None = None,
                   pricing_file=None) -> WorkloadRates:
    """Per-workload resource rates from the cost model (see module docstring)."""
    book = pricing if pricing is not None else load_pricing(pricing_file)
    fb = book.fallback["on-demand"]
    fallback = {"cpu": fb.cpu_core_hour, "memory": fb.memory_gib_hour, "gpu": fb.gpu_hour}
    empty = pl.DataFrame(schema={**{k: pl.String for k in WORKLOAD}, "cpu_rate": pl.Float64, "memory_rate": pl.Float64,
                                 "gpu_rate": pl.Float64, "capacity_type": pl.String, "provider": pl.String})
    if snapshot.nodes.is_empty():
        return WorkloadRates(empty, FALLBACK_BASIS, fallback)
    if cost is None:
        cost = analyze_cost(snapshot, pricing=book)
    nodes = cost.nodes.filter(pl.col("cpu_rate").is_not_null() & (pl.col("hours") > 0))
    if nodes.is_empty() or float(nodes["total_cost"].sum()) <= 0:
        return WorkloadRates(empty, FALLBACK_BASIS, fallback)
    w = pl.col("hours")
    default = {r: float(nodes.select((pl.col(f"{r}_rate") * w).sum() / w.sum()).item()) for r in ("cpu", "memory")}
    gpu_nodes = nodes.filter(pl.col("gpu_rate") > 0)
    default["gpu"] = (float(gpu_nodes.select((pl.col("gpu_rate") * w).sum() / w.sum()).item())
                      if gpu_nodes.height else fallback["gpu"])
    placed = (
        snapshot.containers.select(*[pl.col(k).cast(pl.String) for k in WORKLOAD], pl.col("node").cast(pl.String))
        .drop_nulls("node").unique()
        .join(nodes.select("node", "cpu_rate", "memory_rate", "gpu_rate", "capacity_type", "provider"), on="node")
    )
    frame = placed.group_by(WORKLOAD).agg(
        pl.col("cpu_rate").mean(), pl.col("memory_rate").mean(),
        pl.col("gpu_rate").filter(pl.col("gpu_rate") > 0).mean(),
        pl.when(pl.col("capacity_type").n_unique() > 1).then(pl.lit("mixed"))
        .otherwise(pl.col("capacity_type").first()).alias("capacity_type"),
        pl.col("provider").drop_nulls().mode().first().alias("provider"),
    ).with_columns(pl.col("gpu_rate").fill_null(default["gpu"]))
    return WorkloadRates(frame, "node prices", default)
