"""Rounding proposals up to human quantities, vectorised (a request is never rounded down)."""

from __future__ import annotations

import polars as pl

from analyzer.units import GIB, MIB


def round_cpu(x: pl.Expr) -> pl.Expr:
    step = pl.when(x < 0.1).then(0.005).when(x < 1).then(0.01).when(x < 4).then(0.05).otherwise(0.1)
    return ((x / step - 1e-9).ceil() * step).round(4)


def round_memory(x: pl.Expr) -> pl.Expr:
    # fine steps: rounding up is paid for every hour (256Mi steps added ~1% to 8-64Gi containers)
    step = (pl.when(x < GIB).then(4 * MIB).when(x < 8 * GIB).then(16 * MIB).when(x < 64 * GIB).then(64 * MIB)
            .otherwise(256 * MIB)).cast(pl.Float64)
    return ((x / step - 1e-9).ceil() * step).cast(pl.Int64)
