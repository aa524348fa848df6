"""Efficiency = usage / request, per resource and cost-weighted, OpenCost's formulas.

From opencost ``core/pkg/opencost/allocation.go`` (docs/domain-reference.md section 2):

* ``CPUEfficiency = usage core-hours / request core-hours``; with no request it is 1.0 when
  there was usage and cost, else 0. Memory and GPU work the same way.
* ``TotalEfficiency = (CPUEff x CPUCost + RAMEff x RAMCost) / (CPUCost + RAMCost)``; kubetune
  adds the GPU term when DCGM measured GPU usage, because on GPU nodes the GPU is most of the
  money and leaving it out would flatter idle accelerators.

Usage and request are compared over the same hours (hours with usage samples), so a gap in
monitoring does not read as idleness. A resource never measured has efficiency null (unknown),
not 0 as OpenCost reports for GPUs without DCGM.
"""

from __future__ import annotations

import polars as pl

RESOURCES = ("cpu", "memory", "gpu")

# Columns a frame must hold (summed over whatever it groups) to compute efficiency.
SUM_COLUMNS = [
    *[f"{r}_{n}_hours" for r in RESOURCES for n in ("request", "usage", "allocated", "observed_request")],
    *[f"{r}_cost" for r in RESOURCES],
    *[f"{r}_waste" for r in RESOURCES],
]


def resource_efficiency(r: str) -> pl.Expr:
    usage, request, cost = pl.col(f"{r}_usage_hours"), pl.col(f"{r}_observed_request_hours"), pl.col(f"{r}_cost")
    return (
        pl.when(usage.is_null()).then(None)
        .when(request > 0).then(usage / request)
        .when((usage > 0) & (cost > 0)).then(1.0)
        .otherwise(0.0)
        .cast(pl.Float64)
        .alias(f"{r}_efficiency")
    )


def total_efficiency() -> pl.Expr:
    """Cost-weighted efficiency over the resources whose efficiency is known."""
    num = pl.sum_horizontal((pl.col(f"{r}_efficiency") * pl.col(f"{r}_cost")).fill_null(0.0) for r in RESOURCES)
    den = pl.sum_horizontal(
        pl.when(pl.col(f"{r}_efficiency").is_not_null()).then(pl.col(f"{r}_cost")).otherwise(0.0) for r in RESOURCES)
    return pl.when(den > 0).then(num / den).otherwise(None).cast(pl.Float64).alias("total_efficiency")


def with_efficiency(df: pl.DataFrame) -> pl.DataFrame:
    """Add ``{cpu,memory,gpu,total}_efficiency`` to a frame of summed SUM_COLUMNS."""
    return df.with_columns(resource_efficiency(r) for r in RESOURCES).with_columns(total_efficiency())


def summed() -> list[pl.Expr]:
    """Aggregations that sum SUM_COLUMNS, keeping 'never measured' as null (not 0)."""
    out = []
    for c in SUM_COLUMNS:
        if c.endswith("_usage_hours"):
            out.append(pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).otherwise(None).alias(c))
        else:
            out.append(pl.col(c).sum())
    return out


def efficiency_row(containers: pl.DataFrame) -> dict[str, float | None]:
    """Cluster-wide efficiencies from a per-container frame."""
    if containers.height == 0:
        return {f"{r}_efficiency": None for r in (*RESOURCES, "total")}
    row = with_efficiency(containers.select(summed())).row(0, named=True)
    return {f"{r}_efficiency": row[f"{r}_efficiency"] for r in (*RESOURCES, "total")}
