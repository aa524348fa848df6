"""Shaping result frames for the human table: which columns, what headers, how values read.

Machine formats (JSON, CSV, Parquet) keep the frames' own columns and base units; only the
``table`` format goes through here.
"""

from __future__ import annotations

import polars as pl

from analyzer.units import human_value


def usd(value: object) -> str:
    return f"${value:,.2f}"


def ratio(value: object) -> str:
    return f"{value * 100:.0f}%"


# (column, table header, formatter) for the human table; machine formats keep the column names.
COST_TABLE_COLUMNS = [
    ("total_cost", "cost", usd), ("total_cost_monthly", "$/month", usd), ("share", "share", ratio),
    ("idle_cost", "idle", usd), ("cpu_efficiency", "CPU eff", ratio), ("memory_efficiency", "mem eff", ratio),
    ("gpu_efficiency", "GPU eff", ratio), ("waste_monthly", "waste $/mo", usd),
]
WASTE_TABLE_COLUMNS = [
    ("namespace", "namespace", None), ("workload_kind", "kind", None), ("workload", "workload", None),
    ("waste_monthly", "waste $/mo", usd), ("cpu_waste_monthly", "CPU", usd), ("memory_waste_monthly", "memory", usd),
    ("gpu_waste_monthly", "GPU", usd), ("waste_fraction", "unused", ratio),
]


def human_table(df: pl.DataFrame, spec) -> tuple[pl.DataFrame, dict]:
    """Select, rename and format columns for a rich table."""
    present = [(c, h, f) for c, h, f in spec if c in df.columns]
    shown = df.select([pl.col(c).alias(h) for c, h, _ in present])
    return shown, {h: f for _, h, f in present if f is not None}


def recommendation_table(frame: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    """One line per recommendation: workload, container, kind, now -> proposed (human units), $/month, why."""
    shown = frame.with_columns(
        pl.concat_str(pl.col("namespace"), pl.col("workload_kind"), pl.col("workload"), separator="/").alias("workload"),
        pl.struct("resource", "current_request", "kind").map_elements(
            lambda s: ("gpu " if s["kind"].startswith("gpu") else "")
            + human_value(s["resource"], s["current_request"], "-"), return_dtype=pl.String).alias("now"),
        pl.struct("resource", "proposed_request", "kind").map_elements(
            lambda s: (s["resource"].rsplit("/", 1)[-1] + " " if s["kind"].startswith("gpu") else "")
            + human_value(s["resource"], s["proposed_request"], "-"), return_dtype=pl.String).alias("proposed"),
        pl.col("reason").str.split(";").list.first().str.slice(0, 44).alias("why"),
    ).select("workload", "container", "kind", "resource", "now", "proposed", "monthly_saving_usd",
             "confidence_label", "why")
    return shown.rename({"monthly_saving_usd": "$/month", "confidence_label": "confidence"}), {"$/month": usd}
